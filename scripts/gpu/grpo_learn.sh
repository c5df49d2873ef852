#!/usr/bin/env bash
# The GRPO learning run (issue 7): SmolLM2-135M-Instruct, generated arithmetic word problems (500 held-out
# problems never seen in training), strict verifier reward, configs/grpo-smollm2-arith.toml. Held-out greedy
# accuracy is measured before training (step 0), every 10 steps, and after the last step; the run folder holds
# metrics.jsonl, curves.png, samples.jsonl, summary.json, checkpoints and the final HF export.
#
# Prepare on the CPU machine: scripts/build-gpu.sh (→ .gpu/seekmath, carry `.gpu`), and bring the model GGUF into
# the host's /tmp in parts (see docs/gpu.md).
# Run from the repo root on the GPU host:
#   OUT=... scripts/gpu/grpo_learn.sh --model /tmp/SmolLM2-135M-Instruct.Q4_1.gguf [--set key=value ...]
# CPU smoke test (tiny settings):  scripts/gpu/grpo_learn.sh --model M --cpu-smoke
# Knobs (env): SEEKMATH_BIN (.gpu/seekmath, else target/release/seekmath), TORCH_VENV (/opt/torch/.venv),
#   RUN_DIR (run folder with checkpoints; default /tmp/grpo-smollm2-arith, outside $OUT because checkpoints are
#   large), TIME_LIMIT (seconds; the run is stopped after it and continues with `--resume` on the next call,
#   from the last checkpoint: the device tool allows 10 minutes per command).
# `--resume` continues the run in RUN_DIR; the tables in $OUT always cover every step done so far.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
RESUMABLE=1 parse_run_args "$@"
RUN="${RUN_DIR:-/tmp/grpo-smollm2-arith}"
SETTINGS=(--set "model.path=$MODEL" --set "output.dir=$RUN")
if [ "$SMOKE" = 1 ]; then
    SETTINGS+=(--set model.device=cpu --set grpo.steps=2 --set grpo.group_size=4 --set grpo.questions_per_step=2
        --set grpo.micro_batch_size=4 --set rollout.max_new_tokens=16 --set eval.max_new_tokens=16
        --set task.eval_size=8 --set task.train_size=50 --set eval.every=1)
fi
"$BIN" doctor --device "$([ "$SMOKE" = 1 ] && echo cpu || echo cuda)" > "$OUT/doctor.txt" 2>&1 || {
    cat "$OUT/doctor.txt" >&2; exit 1; }
rc=0
timeout --signal=KILL "${TIME_LIMIT:-100000}" "$BIN" rl grpo --config configs/grpo-smollm2-arith.toml \
    "${SETTINGS[@]}" "${EXTRA[@]}" 2>> "$OUT/grpo_learn.log" > "$OUT/summary.json" || rc=$?
[ "$rc" = 0 ] || echo "seekmath rl grpo stopped with status $rc (137: TIME_LIMIT reached; continue with --resume)"
for f in metrics.jsonl samples.jsonl config.toml; do cp "$RUN/$f" "$OUT/grpo_$f" 2>/dev/null || true; done
"$PY" - "$RUN" <<'PY' | tee "$OUT/grpo_learn.md"
import json, sys
run = sys.argv[1]
rows = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
evals = [(r["step"], r["eval_accuracy"]) for r in rows if r.get("eval_accuracy") is not None]
steps = [r for r in rows if r["step"] > 0]
print("| step | held-out accuracy |\n|---:|---:|")
for s, a in evals:
    print(f"| {s} | {100*a:.1f}% |")
if evals:
    print(f"\nbefore {100*evals[0][1]:.1f}% → after {100*evals[-1][1]:.1f}% "
          f"({100*(evals[-1][1]-evals[0][1]):+.1f} points) over {len(steps)} steps")
if steps:
    t = [r["time_generate"] + r["time_score"] + r["time_train"] for r in steps]
    g = sum(r["time_generate"] for r in steps) / len(steps)
    tr = sum(r["time_train"] for r in steps) / len(steps)
    print(f"mean s/step {sum(t)/len(t):.2f} (generate {g:.2f}, train {tr:.2f}); "
          f"train reward {steps[0]['reward_mean']:.3f} → {steps[-1]['reward_mean']:.3f}; "
          f"final KL {steps[-1]['kl']:.4f}")
PY
cp "$RUN/curves.png" "$OUT/grpo_curves.png" 2>/dev/null || true
exit "$rc"
