#!/usr/bin/env bash
# Evaluation runs of issue 5 on the GPU host, SmolLM2-135M-Instruct:
#   gpu:    full GSM8K test (1319) 8-shot CoT greedy; MATH-500 4-shot CoT greedy; GSM8K maj@16 (T=0.7, top-p 0.95)
#   parity: CPU acceptance on the host's cores: 200 GSM8K test problems 8-shot greedy with `seekmath eval --device
#           cpu`, the same prompts through transformers greedy (crates/bench/scripts/hf_greedy.py), and the per-item
#           prediction agreement (`seekmath eval --compare`; acceptance: >= 98%).
# Results (at most 8 files, top level of $OUT): eval_results.md (all tables + wall times), gsm8k_greedy.json,
# math500_greedy.json, gsm8k_maj16.json, parity.json, eval.log.
#
# On the CPU machine first:
#   scripts/build-gpu.sh                       # .gpu/seekmath
#   scripts/gpu/eval.sh prepare                # copies the benchmark files + prompt sets into .gpu/benchdata
# On the GPU host (device tool: carry `.gpu`; the 98 MB GGUF travels separately into /tmp, see docs/gpu.md):
#   MODEL=/tmp/SmolLM2-135M-Instruct.Q4_1.gguf scripts/gpu/eval.sh gpu      # or: parity, all
# Knobs: MODEL, SEEKMATH_BIN (.gpu/seekmath), DATA (.gpu/benchdata), TORCH_VENV (/opt/torch/.venv, for
#        transformers), MAX_NEW_TOKENS (512), PARITY_N (200), PARITY_MAX_NEW_TOKENS (256), THREADS (CPU threads
#        per process, default nproc/2), HF_SHARDS (transformers processes of 1 thread each sharing the parity items,
#        default 1), GSM_LIMIT / MATH_LIMIT (full sets by default).
# CPU smoke test of the whole script: SEEKMATH_BIN=target/debug/seekmath DATA=../shared/data/benchmarks \
#   GSM_LIMIT=2 MATH_LIMIT=2 PARITY_N=2 MAX_NEW_TOKENS=16 PARITY_MAX_NEW_TOKENS=16 DEVICE=cpu TORCH_VENV=.venv \
#   MODEL=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf scripts/gpu/eval.sh all
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
STEP="${1:-all}"

if [ "$STEP" = prepare ]; then
    SRC="${SEEKMATH_SHARED_DATA:-$ROOT/../shared/data}/benchmarks"
    DST="$ROOT/.gpu/benchdata"
    mkdir -p "$DST/gsm8k" "$DST/math500" "$DST/fewshot"
    cp "$SRC/gsm8k/test.jsonl" "$DST/gsm8k/"
    cp "$SRC/math500/test.jsonl" "$DST/math500/"
    cp "$SRC"/fewshot/*.json "$DST/fewshot/"
    # transformers needs the pure-Python `gguf` package to read GGUF; the host may lack it and has no network.
    GGUF_VERSION="$(.venv/bin/python -c 'import gguf, importlib.metadata as m; print(m.version("gguf"))')"
    .venv/bin/pip download -q --no-deps -d "$ROOT/.gpu/wheels" "gguf==$GGUF_VERSION"
    du -sh "$DST" "$ROOT/.gpu/wheels"
    exit 0
fi

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
export SEEKMATH_PYTHON="${SEEKMATH_PYTHON:-$PY}"   # sandbox interpreter (only PoT/TIR use it)
MODEL="${MODEL:-/tmp/SmolLM2-135M-Instruct.Q4_1.gguf}"
DATA="${DATA:-$ROOT/.gpu/benchdata}"
DEVICE="${DEVICE:-cuda}"
MAX_NEW_TOKENS="${MAX_NEW_TOKENS:-512}"
PARITY_N="${PARITY_N:-200}"
PARITY_MAX_NEW_TOKENS="${PARITY_MAX_NEW_TOKENS:-256}"
THREADS="${THREADS:-$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 ))}"
RUNS="$OUT/runs"
LOG="$OUT/eval.log"
RESULTS="$OUT/eval_results.md"
[ -f "$MODEL" ] || { echo "model $MODEL not found (set MODEL=...)" >&2; exit 1; }
[ -d "$DATA/fewshot" ] || { echo "benchmark data $DATA not found (run 'scripts/gpu/eval.sh prepare' first)" >&2; exit 1; }
touch "$LOG"
{ echo "# seekmath eval on $(hostname), $(date -u +%FT%TZ)"; echo; echo "model: \`$MODEL\`"; echo; } >> "$RESULTS"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >> "$RESULTS" || true

# run NAME ARGS...: one timed `seekmath eval`, its report appended to the results.
run() {
    local name="$1"; shift
    local start end
    start=$(date +%s.%N)
    "$BIN" eval --model "$MODEL" --data "$DATA" --output "$RUNS/$name" --no-progress "$@" >> "$LOG" 2>&1 \
        || { tail -n 40 "$LOG"; exit 1; }
    end=$(date +%s.%N)
    local wall
    wall=$(awk "BEGIN{printf \"%.1f\", $end - $start}")
    {
        echo; echo "## $name"; echo
        echo "command: \`seekmath eval $*\`, wall time (incl. model load): ${wall} s"; echo
        grep -v '^# Evaluation' "$RUNS/$name/report.md"
    } >> "$RESULTS"
}

if [ "$STEP" = gpu ] || [ "$STEP" = all ]; then
    "$BIN" doctor --device "$DEVICE" >> "$LOG" 2>&1 || { tail -n 20 "$LOG"; exit 1; }
    run gsm8k_greedy --device "$DEVICE" --bench gsm8k --shots 8 --mode cot --max-new-tokens "$MAX_NEW_TOKENS" \
        --batch-size 256 --max-batch-rows 256 ${GSM_LIMIT:+--limit $GSM_LIMIT}
    cp "$RUNS/gsm8k_greedy/gsm8k/summary.json" "$OUT/gsm8k_greedy.json"
    run math500_greedy --device "$DEVICE" --bench math500 --shots 4 --mode cot --max-new-tokens "$MAX_NEW_TOKENS" \
        --batch-size 256 --max-batch-rows 256 ${MATH_LIMIT:+--limit $MATH_LIMIT}
    cp "$RUNS/math500_greedy/math500/summary.json" "$OUT/math500_greedy.json"
    run gsm8k_maj16 --device "$DEVICE" --bench gsm8k --shots 8 --mode cot --samples 16 --temperature 0.7 --top-p 0.95 \
        --max-new-tokens "$MAX_NEW_TOKENS" --batch-size 32 --max-batch-rows 512 --seed 0 ${GSM_LIMIT:+--limit $GSM_LIMIT}
    cp "$RUNS/gsm8k_maj16/gsm8k/summary.json" "$OUT/gsm8k_maj16.json"
fi

if [ "$STEP" = parity ] || [ "$STEP" = all ]; then
    if ! "$PY" -c 'import gguf' 2>/dev/null; then
        "$PY" -m pip install -q --no-deps --no-index --target "$ROOT/.gpu/pylib" "$ROOT"/.gpu/wheels/gguf-*.whl >> "$LOG" 2>&1
        export PYTHONPATH="$ROOT/.gpu/pylib${PYTHONPATH:+:$PYTHONPATH}"
    fi
    # Ours on the CPU, then transformers on the same prompts; each gets half the cores.
    export OMP_NUM_THREADS="$THREADS"
    run gsm8k_cpu_parity --device cpu --dtype f32 --bench gsm8k --shots 8 --mode cot --limit "$PARITY_N" \
        --max-new-tokens "$PARITY_MAX_NEW_TOKENS" --batch-size 8
    # transformers greedy runs one prompt at a time (padding would change the numerics), so on a many-core host
    # HF_SHARDS processes of one thread each share the items; their outputs are concatenated.
    start=$(date +%s.%N)
    HF_SHARDS="${HF_SHARDS:-1}"
    hf_threads=$(( HF_SHARDS > 1 ? 1 : THREADS ))
    pids=()
    for ((k = 0; k < HF_SHARDS; k++)); do
        OMP_NUM_THREADS="$hf_threads" "$PY" "$ROOT/crates/bench/scripts/hf_greedy.py" --run "$RUNS/gsm8k_cpu_parity/gsm8k" \
            --model "$MODEL" --threads "$hf_threads" --shard "$k/$HF_SHARDS" --out "$RUNS/hf_completions.$k.jsonl" \
            >> "$LOG.hf$k" 2>&1 &
        pids+=($!)
    done
    for k in "${!pids[@]}"; do
        wait "${pids[$k]}" || { cat "$LOG.hf$k" >> "$LOG"; tail -n 40 "$LOG"; exit 1; }
        cat "$LOG.hf$k" >> "$LOG"; rm -f "$LOG.hf$k"
    done
    cat "$RUNS"/hf_completions.*.jsonl > "$RUNS/hf_completions.jsonl"
    hf_wall=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $start}")
    "$BIN" eval --bench gsm8k --data "$DATA" --output "$RUNS/gsm8k_cpu_parity" \
        --compare "$RUNS/hf_completions.jsonl" | tee -a "$LOG" > "$RUNS/parity.txt"
    cp "$RUNS/gsm8k_cpu_parity/gsm8k/parity.json" "$OUT/parity.json"
    {
        echo; echo "## CPU parity vs transformers greedy ($PARITY_N GSM8K test problems, 8-shot, $PARITY_MAX_NEW_TOKENS new tokens)"; echo
        echo "transformers wall time: ${hf_wall} s ($HF_SHARDS process(es) x $hf_threads thread(s))"; echo
        cat "$RUNS/parity.txt"
    } >> "$RESULTS"
fi
cat "$RESULTS"
