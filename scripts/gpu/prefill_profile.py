"""Where the prompt prefill's time goes on the GPU host, kernel by kernel.

The engine prefills a call's prompts once, eagerly, with `CausalLm::forward_prefill_hidden` (crates/model). At batch
256 × 32 prompt tokens it was ~19 ms of a ~0.82 s bench call. This script replays its ATen calls from PyTorch on
random weights of a Qwen2.5-shaped model (B prompts × T tokens of one length, as in `generate bench`), in two forms:
  masked:  session 9's prefill: RoPE as ATen ops (multiply, cat, multiply-add) on q and k, the cache write as a
           scatter, SDPA with an explicit boolean mask;
  kernel:  RoPE + the K/V write as one `seekmath_rope_kv_write` over all B·T tokens
           (crates/shim/kernels/layer_ops.cu), then plain causal SDPA (prompts of one length need no mask).
Both end as the engine's prefill does: final RMSNorm, LM head on each row's last token, f32 logits. The script checks
that the two give the same logits up to bf16 rounding, times each (CUDA events around eager calls, as the engine
runs them) and lists each form's kernels by GPU time (torch.profiler).

    python scripts/gpu/prefill_profile.py --shape 0.5b --batch 256 --prompt-len 32
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decode_layer import LayerOps  # noqa: E402  (sibling scripts)
from decode_profile import SHAPES, build  # noqa: E402

FORMS = ("masked", "kernel")


def rotate_half(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin


def prefill(st, ops, form, ids, cos, sin, slots, mask):
    """The engine's fused prefill of `ids` [B, T]; `cos`/`sin` [B, 1, T, D]; `slots` [B, T]; returns f32 logits [B, V]."""
    s = st["shape"]
    C, H, KV, D = s["C"], s["H"], s["KV"], s["D"]
    B, T = ids.shape
    token_cos, token_sin, token_slots = cos.reshape(B * T, D), sin.reshape(B * T, D), slots.reshape(B * T)
    x = F.embedding(ids.reshape(-1), st["emb"])
    for i, l in enumerate(st["layers"]):
        keys, values = st["ck"][i], st["cv"][i]
        h = torch._fused_rms_norm(x, [C], l["n1"], 1e-6)[0]
        qkv = F.linear(h, l["wqkv"], l["bqkv"])
        if form == "kernel":
            q = ops.rope_kv_write(qkv, token_cos, token_sin, H, KV, keys, values, token_slots)
            y = F.scaled_dot_product_attention(q.view(B, T, H, D).transpose(1, 2), keys, values, is_causal=True,
                                               enable_gqa=True)
        else:
            heads = qkv.view(B, T, H + 2 * KV, D).transpose(1, 2)
            q = rotate_half(heads.narrow(1, 0, H), cos, sin)
            k = rotate_half(heads.narrow(1, H, KV), cos, sin)
            v = heads.narrow(1, H + KV, KV)
            index = slots.view(B, 1, T, 1).expand(k.shape)
            keys.scatter_(2, index, k)
            values.scatter_(2, index, v)
            y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, enable_gqa=True)
        x.addmm_(y.transpose(1, 2).reshape(B * T, H * D), l["wo"].t())
        h = torch._fused_rms_norm(x, [C], l["n2"], 1e-6)[0]
        x.addmm_(ops.silu_mul(F.linear(h, l["wgu"])), l["wd"].t())
    h = torch._fused_rms_norm(x, [C], st["norm"], 1e-6)[0].view(B, T, C)
    return F.linear(h[:, -1], st["emb"]).float()


def timed(fn, iters=10):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def kernel_table(fn, top, runs=3):
    from torch.profiler import ProfilerActivity, profile
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(runs):
            fn()
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_time_total > 0]
    total = sum(e.device_time_total for e in events) / runs
    count = sum(e.count for e in events) / runs
    lines = [f"kernels per prefill {count:.0f}, summed GPU time {total / 1e3:.3f} ms"]
    events.sort(key=lambda e: -e.device_time_total)
    for e in events[:top]:
        lines.append(f"  {e.device_time_total / runs / 1e3:8.3f} ms  {e.count / runs:6.0f}x  {e.key[:110]}")
    return "\n".join(lines)


def attention_backends(st, B, T, say):
    """One layer's prefill attention (plain causal, GQA, q as the RoPE kernel leaves it) under each SDPA backend."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    s = st["shape"]
    H, D = s["H"], s["D"]
    q = torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
    k, v = st["ck"][0], st["cv"][0]
    reference = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    line = []
    for backend in (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                    SDPBackend.MATH):
        try:
            with sdpa_kernel(backend):
                def call():
                    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                diff = (call() - reference).abs().max().item()
                line.append(f"{backend.name} {timed(call, iters=20) * 1e3:.1f} us (|diff| {diff:.1e})")
        except RuntimeError as e:
            line.append(f"{backend.name} unavailable ({str(e).splitlines()[0][:80]})")
    say("attention of one layer, SDPA backends: " + "; ".join(line))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shape", default="0.5b", choices=sorted(SHAPES))
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--prompt-len", type=int, default=32)
    p.add_argument("--top", type=int, default=16)
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    a = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    B, T = a.batch, a.prompt_len
    report = []

    def say(line):
        print(line, flush=True)
        report.append(line)

    with torch.no_grad():
        st = build(a.shape, B, T, "cuda", torch.bfloat16)
        s = st["shape"]
        ops = LayerOps()
        ids = torch.randint(16, s["V"], (B, T), device="cuda")
        positions = torch.arange(T, device="cuda").expand(B, T)
        freqs = positions.float().unsqueeze(-1) * st["inv_freq"]
        emb = torch.cat([freqs, freqs], -1).unsqueeze(1)
        cos, sin = emb.cos().to(torch.bfloat16), emb.sin().to(torch.bfloat16)
        slots = positions.contiguous()
        mask = (torch.arange(T, device="cuda").view(1, 1, T) <= slots.unsqueeze(-1)).unsqueeze(1)
        logits = {}
        for form in FORMS:
            logits[form] = prefill(st, ops, form, ids, cos, sin, slots, mask)
        diff = (logits["masked"] - logits["kernel"]).abs().max().item()
        agree = (logits["masked"].argmax(-1) == logits["kernel"].argmax(-1)).float().mean().item()
        say(f"== {a.shape}, {B} prompts x {T} tokens: |logits masked - kernel| max {diff:.4f} "
            f"(logit scale {logits['masked'].abs().max().item():.2f}), argmax agreement {agree:.4f}")
        for form in FORMS:
            ms = timed(lambda: prefill(st, ops, form, ids, cos, sin, slots, mask))
            say(f"-- {form}: {ms:.3f} ms per prefill (median of 10, eager)")
            say(kernel_table(lambda: prefill(st, ops, form, ids, cos, sin, slots, mask), a.top))
        attention_backends(st, B, T, say)
    with open(os.path.join(a.out, f"prefill_{a.shape}.txt"), "w") as f:
        f.write("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
