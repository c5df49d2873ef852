"""Where the time of one decode step goes, kernel by kernel, on the GPU host.

seekmath's CUDA decode step (crates/model `CausalLm::forward_decode_hidden` + `engine::sampler`) is a fixed
sequence of ATen calls replayed from a CUDA graph, so the profiler cannot see inside it from Rust. This script issues
the same ATen calls from PyTorch (same shapes, kinds and order) on random weights of a Qwen2.5-shaped model, then:
  1. times the whole step replayed from a CUDA graph (to check that the replica matches the engine's ms/step),
     and the forward alone, the sampler alone, one layer alone;
  2. profiles the eager step with torch.profiler and lists the kernels by GPU time (sum of kernel durations per
     step, so launch gaps show up as the difference to the replayed step time);
  3. prints which SDPA backend PyTorch picks for the decode attention.

    python scripts/gpu/decode_profile.py --shape 0.5b --batch-sizes 1,256 --slots 384
"""
import argparse

import torch
import torch.nn.functional as F

SHAPES = {
    "0.5b": dict(C=896, I=4864, L=24, H=14, KV=2, D=64, V=151936),
    "1.5b": dict(C=1536, I=8960, L=28, H=12, KV=2, D=128, V=151936),
}


def build(shape, batch, slots, dev, dt):
    s = SHAPES[shape]
    g = torch.Generator(device=dev).manual_seed(0)

    def rnd(*size):
        return (torch.randn(*size, generator=g, device=dev) * 0.02).to(dt)

    C, I, H, KV, D = s["C"], s["I"], s["H"], s["KV"], s["D"]
    layers = [dict(n1=torch.ones(C, device=dev, dtype=dt), n2=torch.ones(C, device=dev, dtype=dt),
                   wqkv=rnd((H + 2 * KV) * D, C), bqkv=rnd((H + 2 * KV) * D), wo=rnd(C, H * D),
                   wgu=rnd(2 * I, C), wd=rnd(C, I))
              for _ in range(s["L"])]
    state = dict(
        emb=rnd(s["V"], C), norm=torch.ones(C, device=dev, dtype=dt), layers=layers,
        ck=[torch.zeros(batch, KV, slots, D, device=dev, dtype=dt) for _ in range(s["L"])],
        cv=[torch.zeros(batch, KV, slots, D, device=dev, dtype=dt) for _ in range(s["L"])],
        valid=torch.ones(batch, slots, device=dev, dtype=torch.bool),
        ids=torch.randint(16, 1000, (batch, 1), device=dev), positions=torch.full((batch, 1), 40, device=dev),
        slots=torch.full((batch, 1), slots - 1, device=dev), step=torch.ones(1, dtype=torch.long, device=dev),
        uniforms=torch.rand(batch, 1024, device=dev) * 0.98 + 0.01,
        inv_freq=1.0 / (1e6 ** (torch.arange(0, D, 2, device=dev).float() / D)), shape=s, dt=dt)
    return state


def forward(st):
    s, dt = st["shape"], st["dt"]
    C, H, KV, D = s["C"], s["H"], s["KV"], s["D"]
    B, S = st["valid"].shape
    st["valid"].scatter_(1, st["slots"], True)
    freqs = st["positions"].float().unsqueeze(-1) * st["inv_freq"]
    emb = torch.cat([freqs, freqs], -1).unsqueeze(1)
    cos, sin = emb.cos().to(dt), emb.sin().to(dt)
    lanes = torch.arange(D, device=cos.device)
    signed_sin = (sin * ((lanes >= D // 2).to(dt) * 2.0 - 1.0)).view(B, 1, D)
    cos = cos.view(B, 1, D)
    slot = st["slots"][0]
    rot = (lanes + D // 2).remainder(D)
    bias = st["valid"].to(dt).log().view(B, 1, 1, S)
    x = F.embedding(st["ids"].view(B), st["emb"])
    for i, l in enumerate(st["layers"]):
        h = torch._fused_rms_norm(x, [C], l["n1"], 1e-6)[0]
        heads = F.linear(h, l["wqkv"], l["bqkv"]).view(B, H + 2 * KV, D)
        qk = heads.narrow(1, 0, H + KV)
        rotated = (qk * cos).addcmul_(qk.index_select(-1, rot), signed_sin)
        q = rotated.narrow(1, 0, H).view(B, KV, H // KV, D)
        k = rotated.narrow(1, H, KV).view(B, KV, 1, D)
        v = heads.narrow(1, H + KV, KV).view(B, KV, 1, D)
        st["ck"][i].index_copy_(2, slot, k)
        st["cv"][i].index_copy_(2, slot, v)
        y = ATTENTION(q, st["ck"][i], st["cv"][i], bias)
        x.addmm_(y.reshape(B, H * D), l["wo"].t())
        h = torch._fused_rms_norm(x, [C], l["n2"], 1e-6)[0]
        gu = F.linear(h, l["wgu"])
        width = gu.shape[1] // 2
        a = F.silu(gu.narrow(1, 0, width), inplace=True) * gu.narrow(1, width, width)
        x.addmm_(a, l["wd"].t())
    h = torch._fused_rms_norm(x, [C], st["norm"], 1e-6)[0]
    return F.linear(h, st["emb"])


def sample(st, logits):
    V = logits.shape[1]
    u = st["uniforms"].index_select(1, st["step"]).squeeze(1)
    mx, am = logits.max(-1, keepdim=True)
    mx = mx.float()
    shifted = logits - mx
    w = shifted.exp()
    total = w.sum(-1, keepdim=True, dtype=torch.float32)
    target = u.unsqueeze(-1) * total
    # Two-level inverse CDF (blocks of 128 for a 151,936-token vocabulary), as engine::sampler::inverse_cdf.
    width = 128
    blocks = w.view(w.shape[0], V // width, width)
    outer = blocks.sum(-1, dtype=torch.float32).cumsum(-1)
    block = torch.searchsorted(outer, target, right=True).clamp_max(V // width - 1)
    before = outer.gather(-1, (block - 1).clamp_min(0)) * (block > 0).float()
    inner = blocks.gather(1, block.unsqueeze(-1).expand(-1, 1, width)).squeeze(1).cumsum(-1)
    pick = block * width + torch.searchsorted(inner, target - before, right=True).clamp_max(width - 1)
    tok = torch.where(w.gather(-1, pick) > 0, pick, am)
    lp = logits.gather(-1, tok).float() - (total.log() + mx)
    st["ids"].copy_(tok)
    st["positions"].add_(1)
    st["slots"].add_(1)
    st["step"].add_(1)
    st["slots"].clamp_max_(st["valid"].shape[1] - 1)  # keep the replica inside its buffers
    return torch.stack([tok.squeeze(-1).double(), lp.squeeze(-1).double()])


def sdpa(q, k, v, bias):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)


def efficient(q, k, v, bias):
    return torch.ops.aten._scaled_dot_product_efficient_attention(q, k, v, bias.expand(-1, q.shape[1], q.shape[2], -1),
                                                                  False)[0]


ATTENTION = sdpa


def timed_graph(fn, iters=50):
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    graph.replay()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shape", default="0.5b", choices=sorted(SHAPES))
    p.add_argument("--batch-sizes", default="1,256")
    p.add_argument("--slots", type=int, default=384, help="attended cache slots (a 128-slot bucket)")
    p.add_argument("--top", type=int, default=22)
    a = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    for batch in [int(b) for b in a.batch_sizes.split(",")]:
        with torch.no_grad():
            st = build(a.shape, batch, a.slots, "cuda", torch.bfloat16)
            step_ms = timed_graph(lambda: sample(st, forward(st)))
            fwd_ms = timed_graph(lambda: forward(st))
            logits = forward(st)
            smp_ms = timed_graph(lambda: sample(st, logits))
            one = dict(st, layers=st["layers"][:1], ck=st["ck"][:1], cv=st["cv"][:1])
            s = st["shape"]
            q = torch.zeros(batch, s["KV"], s["H"] // s["KV"], s["D"], device="cuda", dtype=torch.bfloat16)
            bias = torch.zeros(batch, 1, 1, a.slots, device="cuda", dtype=torch.bfloat16)
            backend = torch._fused_sdp_choice(q, st["ck"][0], st["cv"][0], bias)
            attn_ms = timed_graph(lambda: sdpa(q, st["ck"][0], st["cv"][0], bias))
            global ATTENTION
            try:
                eff_ms = timed_graph(lambda: efficient(q, st["ck"][0], st["cv"][0], bias))
                ATTENTION = efficient
                eff_step_ms = timed_graph(lambda: sample(st, forward(st)))
            except RuntimeError as e:
                print(f"efficient attention failed: {str(e)[:300]}")
                eff_ms, eff_step_ms = float("nan"), float("nan")
            ATTENTION = sdpa
            print(f"\n== {a.shape} batch {batch}, {a.slots} attended slots: graph-replayed step {step_ms:.3f} ms "
                  f"(forward {fwd_ms:.3f}, sampler {smp_ms:.3f}); one SDPA call {attn_ms*1e3:.1f} us "
                  f"(backend {backend}: 0 math, 1 flash, 2 efficient, 3 cudnn); the efficient kernel forced: "
                  f"{eff_ms*1e3:.1f} us per call, step {eff_step_ms:.3f} ms")
            del one
            from torch.profiler import ProfilerActivity, profile
            for _ in range(3):
                sample(st, forward(st))
            torch.cuda.synchronize()
            steps = 5
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(steps):
                    sample(st, forward(st))
                torch.cuda.synchronize()
            events = [e for e in prof.key_averages() if e.device_time_total > 0]
            total = sum(e.device_time_total for e in events) / steps
            count = sum(e.count for e in events) / steps
            print(f"kernels per step {count:.0f}, summed GPU time per step {total/1e3:.3f} ms")
            events.sort(key=lambda e: -e.device_time_total)
            for e in events[:a.top]:
                print(f"  {e.device_time_total/steps/1e3:8.3f} ms  {e.count/steps:6.0f}x  {e.key[:110]}")


if __name__ == "__main__":
    main()
