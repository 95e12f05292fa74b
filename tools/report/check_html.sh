#!/usr/bin/env bash
# Opens an HTML report of `xai dissect` / `xai dissect-compare` in headless Chromium and saves
# a screenshot, to check by eye that it renders offline (charts and montages load from the
# folder). Not part of `cargo test`. Needs chromium (Debian: apt-get install -y chromium).
#
#   tools/report/check_html.sh OUT_DIR/report.html [screenshot.png] [width,height]
set -euo pipefail
html=${1:?usage: check_html.sh REPORT.html [SCREENSHOT.png] [W,H]}
shot=${2:-${html%.html}.screenshot.png}
size=${3:-1280,2400}
[ -f "$html" ] || { echo "no such file: $html" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "chromium not found: apt-get install -y chromium" >&2; exit 1; }
url="file://$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
# --no-sandbox: containers often lack user namespaces; the page is our own local file.
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size="$size" --screenshot="$shot" "$url" 2>/dev/null
[ -s "$shot" ] || { echo "no screenshot written" >&2; exit 1; }
echo "wrote $shot"
