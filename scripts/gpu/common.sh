# Shared preamble of the GPU scripts; each sources it right after `set -euo pipefail`. It sets:
#   ROOT  the repository root, also made the working directory;
#   OUT   where results go ($OUT, which the device tool sets; default .gpu/out), created;
#   PY    a Python with torch: $PYTHON, else $TORCH_VENV/bin/python (TORCH_VENV defaults to the GPU host's
#         /opt/torch/.venv), else the project venv through scripts/env.sh (CPU smoke runs here);
#   LD_LIBRARY_PATH  prefixed with that torch's lib folder, which the seekmath binary links against;
#   BIN   the seekmath binary: $SEEKMATH_BIN, else .gpu/seekmath (scripts/build-gpu.sh), else target/release/seekmath;
# and defines parse_run_args (below) for the scripts that take --model/--set/--cpu-smoke.
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

# parse_run_args ARGS...: the arguments of the RL run scripts. Sets MODEL (--model PATH, required, must exist),
# SMOKE (1 with --cpu-smoke) and EXTRA (each --set key=value, and --resume where the caller set RESUMABLE=1).
parse_run_args() {
    MODEL=""
    SMOKE=0
    EXTRA=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --model) MODEL="$2"; shift 2 ;;
            --set) EXTRA+=(--set "$2"); shift 2 ;;
            --cpu-smoke) SMOKE=1; shift ;;
            --resume) [ "${RESUMABLE:-0}" = 1 ] || { echo "--resume is not supported by $0" >&2; exit 2; }
                EXTRA+=(--resume); shift ;;
            *) echo "unknown argument $1" >&2; exit 2 ;;
        esac
    done
    [ -n "$MODEL" ] && [ -e "$MODEL" ] || { echo "usage: $0 --model PATH (missing: '$MODEL')" >&2; exit 2; }
}
