#!/usr/bin/env bash
# Greedy generation on CUDA equals CPU for SmolLM2-135M-Instruct (f32), and the CUDA-graph decode path equals the
# eager one (f32 and bf16). The CUDA decode step is the fused one (stacked projections, fused RMSNorm: the same
# function up to rounding order), so the CPU comparison is made for both the plain step (--no-fused-decode, whose
# ops are the CPU's) and the fused one. Writes the JSONL outputs and a verdict to $OUT.
#
# Prerequisites: scripts/build-gpu.sh (binary in .gpu/seekmath); the GGUF on the host (MODEL=...; see docs/gpu.md
# for carrying it in parts). Run from the repo root on the GPU host:
#   OUT=/path MODEL=/tmp/SmolLM2-135M-Instruct.Q4_1.gguf scripts/gpu/generate_parity.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
MODEL="${MODEL:-$ROOT/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
NEW="${NEW_TOKENS:-64}"

cat > "$OUT/parity_prompts.jsonl" <<'JSONL'
{"messages": [{"role": "user", "content": "What is 7 * 8?"}]}
{"prompt": "The capital of France is"}
{"prompt": "def fibonacci(n):"}
{"prompt": "1 + 1 = 2. 2 + 2 ="}
{"messages": [{"role": "user", "content": "Solve for x: 3x + 5 = 20. Put the answer in \\boxed{}."}]}
JSONL
run() { # name device dtype [extra]
    "$BIN" generate --model "$MODEL" --prompts "$OUT/parity_prompts.jsonl" --max-new-tokens "$NEW" --ignore-eos \
        --device "$2" --dtype "$3" ${4:-} --output "$OUT/parity_$1.jsonl"
}
run cpu_f32 cpu f32
run cuda_f32_graphs cuda f32
run cuda_f32_plain_graphs cuda f32 --no-fused-decode
run cuda_f32_eager cuda f32 --no-cuda-graphs
run cuda_bf16_graphs cuda bf16
run cuda_bf16_eager cuda bf16 --no-cuda-graphs
# seekmath's decode-attention kernel forced at this small batch (the default picks it only for wide batches), and
# the ATen-only configuration (SDPA attention, ATen sampler, ATen RoPE/K/V write and SiLU·up) for reference.
run cuda_bf16_kernel_graphs cuda bf16 "--decode-attention kernel"
run cuda_bf16_kernel_eager cuda bf16 "--decode-attention kernel --no-cuda-graphs"
run cuda_bf16_aten cuda bf16 "--decode-attention sdpa --no-sampler-kernel --no-layer-kernels"
"$PY" - "$OUT" <<'PY' | tee "$OUT/generate_parity.txt"
import json, sys
out = sys.argv[1]
load = lambda name: [json.loads(l)["tokens"] for l in open(f"{out}/parity_{name}.jsonl")]
def same(a, b):
    x, y = load(a), load(b)
    agree = sum(p == q for p, q in zip(x, y))
    first = [next((i for i, (s, t) in enumerate(zip(p, q)) if s != t), None) for p, q in zip(x, y)]
    print(f"{a} vs {b}: {agree}/{len(x)} prompts identical; first divergence per prompt: {first}")
    return agree == len(x)
ok = same("cpu_f32", "cuda_f32_plain_graphs") & same("cuda_f32_graphs", "cuda_f32_eager")
ok &= same("cpu_f32", "cuda_f32_graphs")
ok &= same("cuda_bf16_graphs", "cuda_bf16_eager")
ok &= same("cuda_bf16_kernel_graphs", "cuda_bf16_kernel_eager")
same("cpu_f32", "cuda_bf16_graphs")  # informative: bf16 may diverge
same("cuda_bf16_aten", "cuda_bf16_graphs")  # informative: the sampler kernel (greedy argmax) on the same logits
same("cuda_bf16_aten", "cuda_bf16_kernel_graphs")  # informative: attention kernel vs SDPA, bf16 rounding order
same("cpu_f32", "cuda_bf16_kernel_graphs")  # informative
print("PASS" if ok else "FAIL")
PY
