#!/usr/bin/env bash
# Creates tools/parity/.venv with the Python references (torch, torchvision, scikit-image,
# safetensors) from PyPI. Only the parity scripts need it; the Rust build and tests never do.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python3 -m venv "$here/.venv"
"$here/.venv/bin/pip" install -q --upgrade pip
"$here/.venv/bin/pip" install -q -r "$here/requirements.txt"
echo "ready: $here/.venv/bin/python"
