# Shared preamble of the GPU scripts; each sources it right after `set -euo pipefail`. It sets:
#   ROOT  the repository root, also made the working directory;
#   OUT   where results go ($OUT, which the device tool sets; default .gpu/out), created;
#   PY    a Python with torch: $PYTHON, else $TORCH_VENV/bin/python (TORCH_VENV defaults to the GPU host's
#         /opt/torch/.venv), else the project venv through scripts/env.sh (CPU smoke runs here);
#   LD_LIBRARY_PATH  prefixed with that torch's lib folder, which the seekmath binary links against;
#   BIN   the seekmath binary: $SEEKMATH_BIN, else .gpu/seekmath (scripts/build-gpu.sh), else target/release/seekmath.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/.gpu/out}"
mkdir -p "$OUT"
TORCH_VENV="${TORCH_VENV:-/opt/torch/.venv}"
if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"
elif [ -x "$TORCH_VENV/bin/python" ]; then
    PY="$TORCH_VENV/bin/python"
else
    source "$ROOT/scripts/env.sh"
    PY="$SEEKMATH_PYTHON"
fi
TORCH_LIB="$("$PY" -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')"
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
BIN="${SEEKMATH_BIN:-}"
if [ -z "$BIN" ]; then
    if [ -x "$ROOT/.gpu/seekmath" ]; then BIN="$ROOT/.gpu/seekmath"; else BIN="$ROOT/target/release/seekmath"; fi
fi
