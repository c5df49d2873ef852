#!/usr/bin/env bash
# Issue 8 on the H200: reward models, process supervision and iterative RL for SmolLM2-135M-Instruct on the
# arithmetic task of configs/grpo-smollm2-arith.toml (500 held-out problems never seen in training). Four phases,
# all short (sized for ≤ 8 minutes of H200 time in total):
#   1. PRM from verifier-labelled rollouts (Math-Shepherd, configs/prm-smollm2-arith.toml): held-out step accuracy;
#   2. process-supervised GRPO with that PRM (configs/grpo-process-smollm2-arith.toml), 12 steps;
#   3. outcome-supervised GRPO at the same budget (configs/grpo-smollm2-arith.toml with the same shape), the
#      side-by-side baseline;
#   4. iterative RL (configs/iterative-smollm2-arith.toml): 2 iterations × 6 steps starting from the phase-1 PRM,
#      new PRM data + 10% replay between them, one reference reset.
# Held-out greedy accuracy is measured at step 0 and every 4 steps (iterative: at the end of each iteration).
# Writes $OUT/rl_process.md (tables), the run folders (metrics.jsonl, curves.png, summary.json, iterations.jsonl,
# PRM report.json), per-phase logs and rl_process_times.txt (wall seconds per phase).
#
# Prepare on the CPU machine: scripts/build-gpu.sh (→ .gpu/seekmath, carry `.gpu`), and bring the model GGUF into
# the host's /tmp (see docs/gpu.md). Run from the repo root on the GPU host:
#   OUT=... scripts/gpu/rl_process.sh --model /tmp/SmolLM2-135M-Instruct.Q4_1.gguf [--set key=value ...]
# CPU smoke test (tiny settings, checks the pipeline end to end):  scripts/gpu/rl_process.sh --model M --cpu-smoke
# Knobs (env): SEEKMATH_BIN (.gpu/seekmath, else target/release/seekmath; see scripts/gpu/common.sh),
# TORCH_VENV (/opt/torch/.venv). `--set` applies to every phase, so only use keys all four configs share.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
parse_run_args "$@"
[ -x "$BIN" ] || { echo "no seekmath binary (set SEEKMATH_BIN)" >&2; exit 2; }

PRM="$OUT/prm"
COMMON=(--set "model.path=$MODEL")
RM_SET=()
ITER_SET=()
if [ "$SMOKE" = 1 ]; then
    COMMON+=(--set model.device=cpu --set model.precision=f32 --set task.train_size=80 --set task.eval_size=4
        --set eval.max_new_tokens=16 --set eval.every=1 --set eval.batch_size=4 --set rollout.max_new_tokens=16
        --set grpo.steps=2 --set grpo.group_size=2 --set grpo.questions_per_step=2 --set grpo.micro_batch_size=4)
    RM_SET=(--set rm.questions=4 --set rm.shepherd.samples_per_question=2 --set rm.shepherd.rollouts_per_step=2
        --set rm.shepherd.rollout.max_new_tokens=16 --set rm.shepherd.max_steps=3 --set rm.train.epochs=1)
    ITER_SET=(--set iterative.steps_per_iteration=1)
fi
"$BIN" doctor --device "$([ "$SMOKE" = 1 ] && echo cpu || echo cuda)" > "$OUT/doctor.txt" 2>&1 || {
    cat "$OUT/doctor.txt" >&2; exit 1; }
TIMES="$OUT/rl_process_times.txt"
: > "$TIMES"
phase() {  # phase NAME COMMAND...: runs one phase, logs to $OUT/NAME.log, records its wall time
    local name="$1"; shift
    local t0; t0=$(date +%s)
    "$@" 2> "$OUT/$name.log" > "$OUT/$name.json" || { tail -30 "$OUT/$name.log" >&2; exit 1; }
    echo "$name $(( $(date +%s) - t0 ))" | tee -a "$TIMES"
}
phase prm "$BIN" rl train-rm --config configs/prm-smollm2-arith.toml "${COMMON[@]}" "${RM_SET[@]}" \
    --set "rm.out=$PRM" --set "output.dir=$PRM" "${EXTRA[@]}"
phase grpo_process "$BIN" rl grpo --config configs/grpo-process-smollm2-arith.toml "${COMMON[@]}" \
    --set "reward_model.process=$PRM" --set "output.dir=$OUT/grpo-process" "${EXTRA[@]}"
phase grpo_outcome "$BIN" rl grpo --config configs/grpo-smollm2-arith.toml "${COMMON[@]}" \
    --set grpo.steps=12 --set grpo.group_size=8 --set grpo.questions_per_step=16 --set eval.every=4 \
    --set output.checkpoint_every=0 --set "output.dir=$OUT/grpo-outcome" \
    $([ "$SMOKE" = 1 ] && echo "--set grpo.steps=2 --set grpo.group_size=2 --set grpo.questions_per_step=2 --set eval.every=1") \
    "${EXTRA[@]}"
phase iterative "$BIN" rl iterative --config configs/iterative-smollm2-arith.toml "${COMMON[@]}" "${RM_SET[@]}" \
    "${ITER_SET[@]}" --set "rm.init=$PRM" --set "output.dir=$OUT/iterative" "${EXTRA[@]}"
for run in grpo-process grpo-outcome iterative; do
    cp "$OUT/$run/curves.png" "$OUT/${run}_curves.png" 2>/dev/null || true
done
"$PY" - "$OUT" <<'PY' | tee "$OUT/rl_process.md"
import json, os, sys
out = sys.argv[1]
def rows(path):
    return [json.loads(l) for l in open(path)] if os.path.exists(path) else []
prm = json.load(open(f"{out}/prm/report.json"))
b, a = prm["before"], prm["after"]
print("## PRM (Math-Shepherd labels from verifier-checked rollouts)\n")
print(f"labelled policy samples: accuracy {100*prm['sample_accuracy']:.1f}%, {prm['completions']} completions rolled out; "
      f"{prm['train_examples']} train / {prm['held_out_examples']} held-out samples ({a['positions']} held-out steps, "
      f"{100*a['positive_fraction']:.1f}% positive)\n")
print("| | step accuracy | BCE |\n|---|---:|---:|")
print(f"| before training (zero head: p = 0.5, scored as a wrong step) | {100*b['step_accuracy']:.1f}% | {b['bce']:.3f} |")
print(f"| after training | {100*a['step_accuracy']:.1f}% | {a['bce']:.3f} |")
print(f"| majority class | {100*max(a['positive_fraction'], 1-a['positive_fraction']):.1f}% | |\n")
runs = {"process-supervised GRPO": "grpo-process", "outcome-supervised GRPO": "grpo-outcome", "iterative RL (process)": "iterative"}
curves = {name: {r["step"]: r["eval_accuracy"] for r in rows(f"{out}/{d}/metrics.jsonl") if r.get("eval_accuracy") is not None}
          for name, d in runs.items()}
steps = sorted({s for c in curves.values() for s in c})
print("## Held-out accuracy (greedy, problems never seen in training)\n")
print("| step | " + " | ".join(runs) + " |\n|---:|" + "---:|" * len(runs))
for s in steps:
    print(f"| {s} | " + " | ".join(f"{100*curves[n][s]:.1f}%" if s in curves[n] else "" for n in runs) + " |")
for name, d in runs.items():
    m = [r for r in rows(f"{out}/{d}/metrics.jsonl") if r["step"] > 0]
    if m:
        t = sum(r["time_generate"] + r["time_score"] + r["time_train"] for r in m) / len(m)
        prm_r = f", PRM step reward {m[0]['step_reward_mean']:.3f} → {m[-1]['step_reward_mean']:.3f}" if "step_reward_mean" in m[0] else ""
        print(f"\n{name}: train reward {m[0]['reward_mean']:.3f} → {m[-1]['reward_mean']:.3f}{prm_r}, "
              f"train accuracy {100*m[0]['accuracy']:.1f}% → {100*m[-1]['accuracy']:.1f}%, final KL {m[-1]['kl']:.4f}, {t:.2f} s/step")
it = rows(f"{out}/iterative/iterations.jsonl")
if it:
    print("\n## Iterative RL\n\n| iteration | steps | reference reset | held-out accuracy | new PRM samples | replayed | PRM step accuracy |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    for r in it:
        acc = r.get("eval_accuracy"); rm = r.get("rm_step_accuracy")
        print(f"| {r['iteration']} | {r['steps']} | {r['reference_reset']} | {'' if acc is None else f'{100*acc:.1f}%'} | "
              f"{r['new_rm_examples']} | {r['replayed_rm_examples']} | {'' if rm is None else f'{100*rm:.1f}%'} |")
print("\nphase wall times (s): " + ", ".join(l.strip() for l in open(f"{out}/rl_process_times.txt")))
PY
