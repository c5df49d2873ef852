# Source this file: the environment for building and running the tch crates against the project venv.
# torch-sys finds libtorch by running the venv's python (LIBTORCH_USE_PYTORCH=1); no rpath reaches the binaries,
# so the library path is set here too.
SEEKMATH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SEEKMATH_ROOT
export LIBTORCH_USE_PYTORCH=1
export PATH="$SEEKMATH_ROOT/.venv/bin:$PATH"
export SEEKMATH_PYTHON="$SEEKMATH_ROOT/.venv/bin/python"
_torch_lib="$(ls -d "$SEEKMATH_ROOT"/.venv/lib/python3*/site-packages/torch/lib 2>/dev/null | head -n1)"
if [ -n "$_torch_lib" ]; then
    export LD_LIBRARY_PATH="$_torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
unset _torch_lib
