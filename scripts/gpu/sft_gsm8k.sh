#!/usr/bin/env bash
# A short SFT of SmolLM2-135M-Instruct on GSM8K train on the GPU host; shows the held-out loss falling and, when
# the eval command is available, GSM8K test accuracy before and after.
#
# The caller prepares the carried folder `.gpu` on the CPU machine (third-party data is never committed):
#   scripts/build-gpu.sh
#   mkdir -p .gpu/data && cp -r ../shared/data/benchmarks/gsm8k ../shared/data/benchmarks/fewshot .gpu/data/
# and brings the model (98 MB, over the carry limit: send it in parts into the host's /tmp, see docs/gpu.md):
#   MODEL=/tmp/SmolLM2-135M-Instruct.Q4_1.gguf
# Run from the repo root on the GPU host:  OUT=... MODEL=... scripts/gpu/sft_gsm8k.sh
# Knobs: STEPS (60), LR (5e-5), TORCH_VENV (/opt/torch/.venv), EVAL_LIMIT (GSM8K test problems, 500).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
MODEL="${MODEL:-/tmp/SmolLM2-135M-Instruct.Q4_1.gguf}"
DATA="${DATA:-$ROOT/.gpu/data/gsm8k}"
STEPS="${STEPS:-60}"
LR="${LR:-5e-5}"
EVAL_LIMIT="${EVAL_LIMIT:-500}"
RUN="${RUN_DIR:-/tmp/sft-smollm2-gsm8k}"
for f in "$MODEL" "$DATA/train.jsonl"; do
    [ -e "$f" ] || { echo "missing $f (see the header of this script)" >&2; exit 2; }
done
rm -rf "$RUN"

gsm8k_accuracy() { # model path, label: runs the eval harness when this binary has it
    if "$BIN" eval --help >/dev/null 2>&1; then
        # Zero-shot with the chat template: the format the SFT trains (answers end in '#### N').
        "$BIN" eval --model "$1" --bench gsm8k --data "$(dirname "$DATA")" --shots 0 --limit "$EVAL_LIMIT" \
            --device cuda --output "/tmp/eval-$2" 2> "$OUT/eval-$2.log" || echo "eval ($2) failed: see eval-$2.log" >&2
        cp "/tmp/eval-$2/summary.json" "$OUT/gsm8k-$2.json" 2>/dev/null || true
    else
        echo "note: this seekmath binary has no 'eval' command yet; GSM8K accuracy ($2) not measured" | tee -a "$OUT/sft_gsm8k.md" >&2
    fi
}

gsm8k_accuracy "$MODEL" before
"$BIN" train sft --config configs/sft-smollm2-gsm8k.toml \
    --set "model.path=\"$MODEL\"" --set "sft.paths=[\"$DATA/train.jsonl\"]" --set "run.output_dir=\"$RUN\"" \
    --set "run.device=\"cuda\"" --set "schedule.total_steps=$STEPS" --set "optim.peak_lr=$LR" \
    --set "metrics.progress_bar=false" > "$OUT/sft_summary.json" 2> "$OUT/sft.log" || { tail -40 "$OUT/sft.log"; exit 1; }
cp "$RUN/metrics.jsonl" "$OUT/sft_metrics.jsonl"
gsm8k_accuracy "$RUN/final" after

"$PY" - "$OUT/sft_metrics.jsonl" "$OUT/sft_summary.json" <<'PY' | tee -a "$OUT/sft_gsm8k.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
evals = [(r["step"], r["eval_loss"]) for r in rows if "eval_loss" in r]
train = [r for r in rows if "loss" in r]
print("held-out loss by step:", ", ".join(f"{s}: {l:.4f}" for s, l in evals))
print(f"train loss first/last: {train[0]['loss']:.4f} / {train[-1]['loss']:.4f}; "
      f"median tokens/s {sorted(r['tokens_per_second'] for r in train)[len(train)//2]:.0f}")
print("summary:", open(sys.argv[2]).read().strip())
if len(evals) >= 2 and not evals[-1][1] < evals[0][1]:
    sys.exit("held-out loss did not fall")
PY
