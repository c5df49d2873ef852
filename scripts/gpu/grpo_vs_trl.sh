#!/usr/bin/env bash
# Speed side by side (issue 7): seconds per GRPO step of `seekmath rl grpo` and TRL's GRPOTrainer (transformers
# generation, no vLLM) with the same model, G, questions per step, micro-batch and lengths, on the same task.
# Writes $OUT/grpo_vs_trl.md (+ trl_speed.json, seekmath metrics).
#
# Prepare: scripts/build-gpu.sh (carry .gpu); the model GGUF in the host's /tmp (docs/gpu.md). TRL on the host:
# if `import trl` fails in $TORCH_VENV, wheels are installed from $WHEELS (default .gpu/wheels), e.g. prepared with
#   pip download trl datasets --python-version 3.12 --only-binary=:all: -d .gpu/wheels
# Run on the GPU host:  OUT=... scripts/gpu/grpo_vs_trl.sh --model /tmp/SmolLM2-135M-Instruct.Q4_1.gguf
# CPU smoke test:       scripts/gpu/grpo_vs_trl.sh --model M --cpu-smoke
# Knobs (env): G (16), Q (32), MICRO (64), LEN (256), STEPS (5).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/.gpu/out}"
mkdir -p "$OUT"
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
TORCH_VENV="${TORCH_VENV:-/opt/torch/.venv}"
if [ -x "$TORCH_VENV/bin/python" ]; then
    PY="$TORCH_VENV/bin/python"
else
    source "$ROOT/scripts/env.sh"; PY="$SEEKMATH_PYTHON"
fi
TORCH_LIB="$("$PY" -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')"
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ! "$PY" -c "import trl" 2>/dev/null; then
    WHEELS="${WHEELS:-$ROOT/.gpu/wheels}"
    "$PY" -m pip install -q --no-index --find-links "$WHEELS" trl datasets
fi
BIN="${SEEKMATH_BIN:-}"
if [ -z "$BIN" ]; then
    if [ -x "$ROOT/.gpu/seekmath" ]; then BIN="$ROOT/.gpu/seekmath"; else BIN="$ROOT/target/release/seekmath"; fi
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
