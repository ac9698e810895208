#!/usr/bin/env bash
# Creates .venv and installs the project into it (editable), with the extras in $1 (e.g. "[test]").
# Used by run.sh and test.sh.
#
# pip runs with your own configuration (pip.conf, PIP_* variables: index, mirror, proxy,
# constraints); this script names no index unless you ask for one. Torch:
#   - a torch already in .venv is kept, whatever its build (install another one first to choose it);
#   - TORCH_BACKEND=cpu, cu126, cu128, cu130, rocm6.4, xpu...: that build from PyTorch's own index,
#     https://download.pytorch.org/whl/$TORCH_BACKEND (the index URLs PyTorch's install page gives);
#   - TORCH_INDEX_URL=URL: torch from that index (a mirror of PyTorch's, say);
#   - neither: torch comes from your pip index like every other dependency. From PyPI that is a
#     CUDA build on Linux x86_64 (about 5 GB installed; it runs on a CPU too) and the CPU build on
#     macOS and Windows.
# When pyproject.toml and the extras are those of the last install, pip is not run at all.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
EXTRAS=${1:-}

say() { echo "setup: $*" >&2; }

if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi

# One stamp per set of extras, holding the sha256 of the pyproject.toml it was installed from.
stamp_of() { echo ".venv/.installed${1:+-$(echo "$1" | tr -cd 'a-z0-9,')}"; }
wanted=$(.venv/bin/python -c "import hashlib; print(hashlib.sha256(open('pyproject.toml', 'rb').read()).hexdigest())")
installed=false
[ -x .venv/bin/forecaster ] && [ "$(cat "$(stamp_of "$EXTRAS")" 2>/dev/null)" = "$wanted" ] && installed=true
if $installed && [ -z "${TORCH_INDEX_URL:-}${TORCH_BACKEND:-}" ]; then
  exit 0
fi

torch_version=$(.venv/bin/python -c "
from importlib import metadata
try: print(metadata.version('torch'))
except metadata.PackageNotFoundError: pass")
index=${TORCH_INDEX_URL:-}
if [ -z "$index" ] && [ -n "${TORCH_BACKEND:-}" ]; then
  if ! [[ $TORCH_BACKEND =~ ^(cpu|cu[0-9]+|rocm[0-9][0-9.]*|xpu)$ ]]; then
    say "error: TORCH_BACKEND=$TORCH_BACKEND is not a PyTorch build name (cpu, cu126, cu128, rocm6.4, xpu...)"
    exit 2
  fi
  index=https://download.pytorch.org/whl/$TORCH_BACKEND
fi
if [ -n "$torch_version" ]; then
  [ -z "$index" ] || say "keeping torch $torch_version already in .venv (remove .venv to install the one from $index)"
elif [ -n "$index" ]; then
  say "installing torch from $index"
  .venv/bin/python -m pip install -q torch --index-url "$index"
else
  say "installing torch from your pip index (from PyPI on Linux x86_64: a CUDA build, about 5 GB;" \
      "TORCH_BACKEND=cpu for the CPU-only build, see README)"
fi

$installed && exit 0
say "installing the project${EXTRAS:+ with $EXTRAS} and its dependencies"
.venv/bin/python -m pip install -q -e ".$EXTRAS"
echo "$wanted" > "$(stamp_of "$EXTRAS")"
# The extras install the base dependencies too.
[ -z "$EXTRAS" ] || echo "$wanted" > "$(stamp_of "")"
