#!/usr/bin/env bash
# Side-by-side decode throughput on the GPU host: seekmath's sampling engine vs transformers `generate`, the same
# random-weight Qwen2.5-0.5B- and 1.5B-shaped models (saved once with save_pretrained, loaded by both), bf16,
# sampling at temperature 1, EOS ignored, 32-token prompts, 512 new tokens, batch 1/64/256/512. Also reports the
# fraction of the HBM-bandwidth roofline seekmath reaches (weights + mean KV cache bytes per step / 4.8 TB/s).
#
# Prerequisites: scripts/build-gpu.sh on the CPU machine (binary in .gpu/seekmath); carry `.gpu`.
# Run from the repo root on the GPU host:
#   OUT=/path/for/results scripts/gpu/generate_bench.sh          (the device tool sets $OUT)
# Knobs: SHAPES="0.5b 1.5b", BATCHES=1,64,256,512, NEW_TOKENS=512, PROMPT_LEN=32, TF_BATCHES (default BATCHES),
#        TORCH_VENV=/opt/torch/.venv, SEEKMATH_BIN, EXTRA_ARGS (e.g. --no-cuda-graphs, --profile), DEVICE=cuda,
#        MODELS_DIR (keep the random models there and reuse them on the next run; default: a temporary folder).
# CPU smoke test of the whole pipeline:
#   SHAPES=tiny BATCHES=1,4 NEW_TOKENS=16 DEVICE=cpu PYTHON=.venv/bin/python SEEKMATH_BIN=target/debug/seekmath \
#     scripts/gpu/generate_bench.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
SHAPES="${SHAPES:-0.5b 1.5b}"
BATCHES="${BATCHES:-1,64,256,512}"
TF_BATCHES="${TF_BATCHES:-$BATCHES}"
NEW_TOKENS="${NEW_TOKENS:-512}"
PROMPT_LEN="${PROMPT_LEN:-32}"
DEVICE="${DEVICE:-cuda}"
BENCH_PY="$ROOT/scripts/gpu/generate_bench.py"
if [ -n "${MODELS_DIR:-}" ]; then
    WORK="$MODELS_DIR"
    mkdir -p "$WORK"
else
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
fi

if [ "$DEVICE" = cuda ]; then
    "$BIN" doctor --device cuda > "$OUT/doctor.txt" 2>&1 || { cat "$OUT/doctor.txt"; exit 1; }
fi
for shape in $SHAPES; do
    [ -f "$WORK/$shape/config.json" ] || "$PY" "$BENCH_PY" make --shape "$shape" --out "$WORK/$shape"
    echo "== seekmath $shape"
    "$BIN" generate bench --model "$WORK/$shape" --device "$DEVICE" --batch-sizes "$BATCHES" \
        --new-tokens "$NEW_TOKENS" --prompt-len "$PROMPT_LEN" --json "$OUT/$shape.seekmath.json" ${EXTRA_ARGS:-} \
        > "$OUT/$shape.seekmath.log" 2>&1 || { tail -n 40 "$OUT/$shape.seekmath.log"; exit 1; }
    echo "== transformers $shape"
    "$PY" "$BENCH_PY" run --model "$WORK/$shape" --batch-sizes "$TF_BATCHES" --new-tokens "$NEW_TOKENS" \
        --prompt-len "$PROMPT_LEN" --json "$OUT/$shape.transformers.json"
done
"$PY" "$BENCH_PY" report "$OUT" | tee "$OUT/generate_bench.md"
