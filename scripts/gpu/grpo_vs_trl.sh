#!/usr/bin/env bash
# Speed side by side (issue 7): seconds per GRPO step of `seekmath rl grpo` and TRL's GRPOTrainer (transformers
# generation, no vLLM) with the same model, G, questions per step, micro-batch and lengths, on the same task.
# Writes $OUT/grpo_vs_trl.md (+ trl_speed.json, seekmath metrics).
#
# Prepare: scripts/build-gpu.sh (carry .gpu); the model GGUF in the host's /tmp (docs/gpu.md). TRL on the host:
# if `import trl` fails in $TORCH_VENV, the wheels in $WHEELS (default .gpu/wheels) are unpacked into $PYLIB
# (/tmp/pylib). The host has transformers, accelerate, numpy and torch; bring the rest (~70 MB, over one call's
# carry limit, so in two calls like the model; pyarrow alone is 55 MB), prepared here with
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
#     --platform manylinux2014_x86_64 -d WHEELS trl==1.16.0 datasets==5.2.0 pyarrow pandas dill multiprocess \
#     xxhash fsspec python-dateutil six gguf
# Run on the GPU host:  OUT=... scripts/gpu/grpo_vs_trl.sh --model /tmp/SmolLM2-135M-Instruct.Q4_1.gguf
# CPU smoke test:       scripts/gpu/grpo_vs_trl.sh --model M --cpu-smoke
# Knobs (env): G (16), Q (32), MICRO (64), LEN (256), STEPS (5).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
MODEL=""
SMOKE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --model) MODEL="$2"; shift 2 ;;
        --cpu-smoke) SMOKE=1; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$MODEL" ] && [ -e "$MODEL" ] || { echo "usage: $0 --model PATH (missing: '$MODEL')" >&2; exit 2; }
G="${G:-16}"; Q="${Q:-32}"; MICRO="${MICRO:-64}"; LEN="${LEN:-256}"; STEPS="${STEPS:-5}"; DEVICE=cuda
if [ "$SMOKE" = 1 ]; then G=2; Q=2; MICRO=2; LEN=8; STEPS=2; DEVICE=cpu; fi
if ! "$PY" -c "import trl" 2>/dev/null; then
    # The host's venv has no pip: wheels are zip archives, so unpack them into a folder on PYTHONPATH.
    WHEELS="${WHEELS:-$ROOT/.gpu/wheels}"
    PYLIB="${PYLIB:-/tmp/pylib}"
    mkdir -p "$PYLIB"
    for w in "$WHEELS"/*.whl; do "$PY" -m zipfile -e "$w" "$PYLIB"; done
    export PYTHONPATH="$PYLIB${PYTHONPATH:+:$PYTHONPATH}"
fi
TASK="$OUT/arith-task"
"$BIN" rl make-task --out "$TASK" --seed 0 --train 2000 --held-out 500 > /dev/null

# seekmath: same task file, no held-out eval inside the timed run.
RUN="$OUT/seekmath-speed"
"$BIN" rl grpo --config configs/grpo-smollm2-arith.toml --set "model.path=$MODEL" --set "output.dir=$RUN" \
    --set task.kind=jsonl --set "task.train_path=$TASK/train.jsonl" \
    --set task.eval_size=0 --set eval.every=0 --set "grpo.steps=$STEPS" --set "grpo.group_size=$G" \
    --set "grpo.questions_per_step=$Q" --set "grpo.micro_batch_size=$MICRO" --set "rollout.max_new_tokens=$LEN" \
    --set optim.lr=1e-6 --set "model.device=$DEVICE" 2> "$OUT/seekmath_speed.log" > /dev/null
"$PY" scripts/gpu/trl_grpo_speed.py --model "$MODEL" --task "$TASK" --out "$OUT" --group-size "$G" \
    --questions "$Q" --micro-batch "$MICRO" --max-new-tokens "$LEN" --steps "$STEPS" --device "$DEVICE" \
    2> "$OUT/trl_speed.log" > /dev/null
"$PY" - "$RUN/metrics.jsonl" "$OUT/trl_speed.json" <<'PY' | tee "$OUT/grpo_vs_trl.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
steps = [r for r in rows if r["step"] > 0]
ours = [r["time_generate"] + r["time_score"] + r["time_train"] for r in steps]
ours_steady = ours[1:] or ours
trl = json.load(open(sys.argv[2]))
o = sum(ours_steady) / len(ours_steady)
t = trl["mean_seconds_per_step_after_first"]
print(f"device: {trl['device']}; G={trl['group_size']}, questions/step={trl['questions_per_step']}, "
      f"micro-batch={trl['micro_batch']}, max new tokens={trl['max_new_tokens']}, steps={trl['steps']} "
      f"(mean over steps after the first)\n")
print("| trainer | s/step | generate | train | mean completion tokens |\n|---|---:|---:|---:|---:|")
g = sum(r["time_generate"] for r in steps[1:] or steps) / len(steps[1:] or steps)
tr = sum(r["time_train"] for r in steps[1:] or steps) / len(steps[1:] or steps)
ln = sum(r["response_length"] for r in steps) / len(steps)
print(f"| seekmath rl grpo | {o:.2f} | {g:.2f} | {tr:.2f} | {ln:.0f} |")
print(f"| TRL {trl['trl_version']} GRPOTrainer | {t:.2f} | | | |")
print(f"\nspeed-up: {t / o:.2f}×")
PY
