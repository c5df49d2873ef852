#!/usr/bin/env bash
# Model core on CUDA: the same f32 weights give the same logits on GPU as on CPU, through `forward` and the
# KV-cache `forward_step` (unit test `model::tests::cuda_matches_cpu_when_available`, which skips without CUDA).
#
#   Here (build host):  scripts/gpu/model_core.sh build   -> .gpu/seekmath_model_tests
#   GPU host:           scripts/gpu/model_core.sh run     -> $OUT/model_core_cuda.txt
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
case "${1:-run}" in
build)
    source scripts/env.sh
    bin=$(cargo test --release -p seekmath-model --lib --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="seekmath_model": print(m["executable"])' | tail -n1)
    mkdir -p .gpu
    cp "$bin" .gpu/seekmath_model_tests
    ls -l .gpu/seekmath_model_tests
    ;;
run)
    OUT="${OUT:-$ROOT/.gpu/out}"
    mkdir -p "$OUT"
    .gpu/seekmath_model_tests cuda_matches_cpu_when_available --nocapture 2>&1 | tee "$OUT/model_core_cuda.txt"
    grep -q "SKIP" "$OUT/model_core_cuda.txt" && { echo "CUDA was not visible" >&2; exit 1; }
    echo "model core CUDA check passed"
    ;;
*) echo "usage: $0 build|run" >&2; exit 2 ;;
esac
