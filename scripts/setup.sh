#!/usr/bin/env bash
# Creates .venv and installs the project into it. Used by run.sh and test.sh.
# Torch: a plain `pip install torch` pulls a CUDA build of several GB; when no torch is installed
# yet we take the CPU build (set TORCH_INDEX_URL to another PyTorch index for a GPU build).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install -q torch --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
fi
.venv/bin/python -m pip install -q -e ".${1:-}"
