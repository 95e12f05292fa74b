#!/usr/bin/env bash
# Renders the HTML report of `xai compare` in headless Chromium and saves a screenshot, to see
# that it opens offline and draws (pictures embedded, inline SVG charts). Not part of
# `cargo test`: it needs Debian's chromium (`apt-get install -y chromium`).
#
#   bash tools/report/check_compare_html.sh [OUT_DIR]     # default: target/compare_check
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-target/compare_check}"
browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
    echo "no chromium found: apt-get install -y chromium" >&2
    exit 2
fi
cargo run --release --quiet -- compare --scenes 4 --lime-samples 300 --out "$out"
shot="$out/report.png"
# --no-sandbox: CI and these machines run as root, where Chromium's sandbox refuses to start.
"$browser" --headless --no-sandbox --disable-gpu --window-size=1300,2000 \
    --screenshot="$shot" "file://$(realpath "$out/report.html")" 2>/dev/null
test -s "$shot" || { echo "no screenshot written" >&2; exit 1; }
echo "screenshot: $shot"
