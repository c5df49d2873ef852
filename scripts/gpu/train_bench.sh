#!/usr/bin/env bash
# Side-by-side training throughput on the GPU host: seekmath vs a plain PyTorch/transformers loop, same Llama-shaped
# models (~0.5B and ~1.5B), same 4K context, same batch (micro-batch x accumulation), bf16 autocast over f32 master
# weights, SDPA attention, fused AdamW, grad clipping. Reports tokens/s and MFU (dense bf16 peak 989 TFLOP/s on an
# H100/H200; same FLOP formula for both: 6*N + 12*L*d*T per token).
#
# Prerequisites: scripts/build-gpu.sh on the CPU machine (binary in .gpu/seekmath); carry `.gpu`.
# Run from the repo root on the GPU host:
#   OUT=/path/for/results scripts/gpu/train_bench.sh            (the device tool sets $OUT)
# Knobs: SIZES="0.5b 1.5b", STEPS=12, WARMUP=4, MICRO=4, ACCUM=2, CONTEXT=4096, TORCH_VENV=/opt/torch/.venv
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
SIZES="${SIZES:-0.5b 1.5b}"
STEPS="${STEPS:-12}"
WARMUP="${WARMUP:-4}"
MICRO="${MICRO:-4}"
ACCUM="${ACCUM:-2}"
CONTEXT="${CONTEXT:-4096}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

"$BIN" doctor --device cuda --matmul-iters 10 > "$OUT/doctor.txt" 2>&1 || { cat "$OUT/doctor.txt"; exit 1; }

# Random-token shards in seekmath's .smtok format (throughput does not depend on the text).
"$PY" - "$WORK/data" "$(( (STEPS + 2) * MICRO * ACCUM * (CONTEXT + 1) ))" <<'PY'
import os, struct, sys
import numpy as np
out, need = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
doc_len = 8192
docs = need // doc_len + 2
tokens = rng.integers(1, 32000, size=docs * doc_len, dtype=np.uint32)
offsets = np.arange(docs + 1, dtype=np.uint64) * doc_len
with open(os.path.join(out, "random.smtok"), "wb") as f:
    f.write(b"SMTOKv01" + struct.pack("<QQ", docs, tokens.size))
    f.write(offsets.astype("<u8").tobytes())
    f.write(tokens.astype("<u4").tobytes())
PY

model_config() { # size -> Llama config.json
    case "$1" in
        0.5b) echo '{"model_type":"llama","architectures":["LlamaForCausalLM"],"vocab_size":32000,"hidden_size":1280,"intermediate_size":3456,"num_hidden_layers":24,"num_attention_heads":20,"num_key_value_heads":20,"max_position_embeddings":4096,"rms_norm_eps":1e-5,"rope_theta":10000.0,"tie_word_embeddings":false,"hidden_act":"silu","initializer_range":0.02}' ;;
        1.5b) echo '{"model_type":"llama","architectures":["LlamaForCausalLM"],"vocab_size":32000,"hidden_size":2048,"intermediate_size":5504,"num_hidden_layers":28,"num_attention_heads":16,"num_key_value_heads":16,"max_position_embeddings":4096,"rms_norm_eps":1e-5,"rope_theta":10000.0,"tie_word_embeddings":false,"hidden_act":"silu","initializer_range":0.02}' ;;
        *) echo "unknown size $1" >&2; exit 2 ;;
    esac
}

echo '[' > "$OUT/train_bench.json"
first=1
for size in $SIZES; do
    model_config "$size" > "$WORK/$size.json"
    cat > "$WORK/$size.toml" <<TOML
[run]
output_dir = "$WORK/run-$size"
seed = 1
device = "cuda"
precision = "bf16-autocast"
[model]
config_json = "$WORK/$size.json"
[data]
context_length = $CONTEXT
[[data.sources]]
name = "random"
weight = 1.0
paths = ["$WORK/data"]
[optim]
peak_lr = 1e-4
batch_tokens = $(( MICRO * ACCUM * CONTEXT ))
micro_batch_size = $MICRO
fused = true
[schedule]
kind = "constant"
total_steps = $STEPS
[checkpoint]
enabled = false
export_final = false
[metrics]
progress_bar = false
TOML
    echo "== $size: seekmath" >&2
    "$BIN" train pretrain --config "$WORK/$size.toml" 2> "$OUT/seekmath-$size.log" || { tail -30 "$OUT/seekmath-$size.log"; exit 1; }
    cp "$WORK/run-$size/metrics.jsonl" "$OUT/seekmath-$size.metrics.jsonl"
    ours="$("$PY" - "$WORK/run-$size/metrics.jsonl" "$WARMUP" "$size" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
rows = [r for r in rows if r["step"] > int(sys.argv[2])]
tps = statistics.median(r["tokens_per_second"] for r in rows)
mfu = statistics.median(r["mfu"] for r in rows) if all("mfu" in r for r in rows) else None
print(json.dumps({"impl": "seekmath", "size": sys.argv[3], "tokens_per_second": tps, "mfu": mfu,
                  "last_loss": rows[-1]["loss"], "steps_measured": len(rows)}))
PY
)"
    echo "== $size: pytorch" >&2
    theirs="$("$PY" scripts/gpu/torch_train_loop.py --config "$WORK/$size.json" --context "$CONTEXT" \
        --micro-batch "$MICRO" --accum "$ACCUM" --steps "$STEPS" --warmup "$WARMUP" 2> "$OUT/pytorch-$size.log" | tail -n1)"
    theirs="$(echo "$theirs" | "$PY" -c "import json,sys; d=json.load(sys.stdin); d['size']='$size'; print(json.dumps(d))")"
    [ $first -eq 1 ] || echo ',' >> "$OUT/train_bench.json"
    first=0
    printf '%s,\n%s\n' "$ours" "$theirs" >> "$OUT/train_bench.json"
    echo "$ours"
    echo "$theirs"
done
echo ']' >> "$OUT/train_bench.json"

"$PY" - "$OUT/train_bench.json" "$MICRO" "$ACCUM" "$CONTEXT" <<'PY' | tee "$OUT/train_bench.md"
import json, sys
rows = json.load(open(sys.argv[1]))
print(f"micro-batch {sys.argv[2]} x accumulation {sys.argv[3]} x context {sys.argv[4]}, bf16 autocast, SDPA, fused AdamW")
print("| size | impl | tokens/s | MFU | ratio vs PyTorch |")
print("|---|---|---|---|---|")
for size in dict.fromkeys(r["size"] for r in rows):
    pt = next(r for r in rows if r["size"] == size and r["impl"] == "pytorch")
    for r in (x for x in rows if x["size"] == size):
        mfu = f'{100 * r["mfu"]:.1f}%' if r.get("mfu") else "n/a"
        print(f'| {size} | {r["impl"]} | {r["tokens_per_second"]:.0f} | {mfu} | {r["tokens_per_second"] / pt["tokens_per_second"]:.2f}x |')
PY
