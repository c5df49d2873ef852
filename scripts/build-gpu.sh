#!/usr/bin/env bash
# Builds a stripped release `seekmath` into .gpu/ (git-ignored), ready to be carried to the GPU host.
# Run there as: export LD_LIBRARY_PATH=/opt/torch/.venv/lib/python3.12/site-packages/torch/lib:$LD_LIBRARY_PATH
#               .gpu/seekmath doctor --device cuda
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
./scripts/setup.sh
source scripts/env.sh
cargo build --release --locked -p seekmath
mkdir -p .gpu
cp target/release/seekmath .gpu/seekmath
strip .gpu/seekmath
if ! ldd .gpu/seekmath | grep -q libtorch_cuda; then
    echo "error: .gpu/seekmath does not link libtorch_cuda (CUDA would be invisible on the GPU host)" >&2
    exit 1
fi
ls -l .gpu/seekmath
