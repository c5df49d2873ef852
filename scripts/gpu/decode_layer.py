"""The decode step's layer ops on the GPU host: seekmath's fused elementwise kernels against the ATen ops they replace.

The engine's CUDA decode step (crates/model `CausalLm::forward_decode_hidden`) runs, per layer: RMSNorm, the stacked
q/k/v product, RoPE + the K/V cache write, attention, the output product, RMSNorm, the stacked gate/up product,
SiLU·up and the down product. This script replays that step from PyTorch on random weights of a Qwen2.5-shaped
model (crates/shim/kernels compiled by NVRTC exactly as the shim does) in two forms:
  aten:  RoPE as multiply + gather + multiply-add, two `index_copy_` cache writes, `silu_` then a multiply
         (the engine up to session 5);
  fused: `seekmath_rope_kv_write` and `seekmath_silu_mul` (crates/shim/kernels/layer_ops.cu).
Both use seekmath's decode-attention kernel. It then
  1. checks the two kernels against f32 references and the ATen forms, and the two forwards against each other;
  2. times the forward (and forward + sampler kernel) replayed from a CUDA graph, and lists the fused step's
     kernels by GPU time (torch.profiler);
  3. times decode attention for several split counts (the shim's plan included), and the down projection's
     matrix product in the forms cuBLAS offers (addmm with β = 1, mm then add).

    python scripts/gpu/decode_layer.py --shape 0.5b --batch-sizes 256,512 --slots 384 [--out DIR]
"""
import argparse
import ctypes
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decode_kernels import Attention, Kernel, Module, folded_norm_args  # noqa: E402  (sibling scripts)
from decode_profile import SHAPES, build, timed_graph  # noqa: E402
from decode_tune import relative_to_kernels  # noqa: E402


class LayerOps(Module):
    def __init__(self, kind_code=1, extra=None):
        super().__init__("layer_ops.cu", {"SEEKMATH_KIND": kind_code, **(extra or {})},
                         ["seekmath_rope_kv_write", "seekmath_silu_mul", "seekmath_rms_norm"])
        self.probes = Module(relative_to_kernels(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                              "decode_probes.cu")),
                             {"SEEKMATH_KIND": kind_code}, ["probe_prefetch_kv", "probe_add_rms_norm"])

    def prefetch_kv(self, keys, values, starts, slots, max_bytes, mode=0, evict_last=False):
        """L2 prefetch of the live rows [starts[b], slots[b]) of keys/values [B, KVH, S, D], at most `max_bytes` per
        (row, head, K|V) region; mode 0 bulk (TMA), 1 one prefetch per line."""
        b, kvh, _, d = keys.shape
        self.probes.launch("probe_prefetch_kv", (2 * b * kvh, 1, 1), (32, 1, 1), 0,
                           [ctypes.c_void_p(keys.data_ptr()), ctypes.c_void_p(values.data_ptr()),
                            ctypes.c_longlong(keys.stride(0)), ctypes.c_longlong(keys.stride(1)), ctypes.c_int(d),
                            ctypes.c_int(kvh), ctypes.c_void_p(starts.data_ptr()), ctypes.c_void_p(slots.data_ptr()),
                            ctypes.c_longlong(int(max_bytes)), ctypes.c_int(mode), ctypes.c_int(int(evict_last))])

    def rope_kv_write(self, qkv, cos, sin, heads, kv_heads, keys, values, slots, norm=None):
        """qkv [N, (H + 2KVH) D]; cos/sin [N, D]; keys/values [B, KVH, S, D] with N = B T (T tokens per cache row);
        slots [N] or [1]; `norm` as for folded_norm_args; returns q [N, H, D]."""
        b = qkv.shape[0]
        d = keys.shape[3]
        q = torch.empty(b, heads, d, device=qkv.device, dtype=qkv.dtype)
        self.launch("seekmath_rope_kv_write", (b, 1, 1), (256, 1, 1), 0,
                    [ctypes.c_void_p(qkv.data_ptr()), ctypes.c_longlong(qkv.stride(0)), ctypes.c_void_p(cos.data_ptr()),
                     ctypes.c_void_p(sin.data_ptr()), ctypes.c_longlong(cos.stride(0)), ctypes.c_int(heads),
                     ctypes.c_int(kv_heads), ctypes.c_int(d), ctypes.c_void_p(q.data_ptr()),
                     ctypes.c_void_p(keys.data_ptr()), ctypes.c_void_p(values.data_ptr()),
                     ctypes.c_longlong(keys.stride(0)), ctypes.c_longlong(keys.stride(1)),
                     ctypes.c_longlong(keys.stride(2)), ctypes.c_void_p(slots.data_ptr()),
                     ctypes.c_int(0 if slots.numel() == 1 else 1), ctypes.c_int(b // keys.shape[0])]
                    + folded_norm_args(norm))
        return q

    def silu_mul(self, gate_up, threads=256, norm=None):
        b, two_w = gate_up.shape
        w = two_w // 2
        out = torch.empty(b, w, device=gate_up.device, dtype=gate_up.dtype)
        vec = 8 if gate_up.element_size() == 2 else 4
        vectorized = w % vec == 0 and gate_up.stride(0) % vec == 0 and gate_up.data_ptr() % 16 == 0
        per_block = threads * (vec if vectorized else 1)
        self.launch("seekmath_silu_mul", (b, -(-w // per_block), 1), (threads, 1, 1), 0,
                    [ctypes.c_void_p(gate_up.data_ptr()), ctypes.c_longlong(gate_up.stride(0)), ctypes.c_int(w),
                     ctypes.c_int(int(vectorized)), ctypes.c_void_p(out.data_ptr())] + folded_norm_args(norm))
        return out


    def rms_norm(self, x, weight, eps):
        b, c = x.shape
        out = torch.empty(b, c, device=x.device, dtype=x.dtype)
        vec = 8 if x.element_size() == 2 else 4
        vectorized = (c % vec == 0 and x.stride(0) % vec == 0 and x.data_ptr() % 16 == 0 and weight.data_ptr() % 16 == 0
                      and c <= 128 * 4 * vec)
        self.launch("seekmath_rms_norm", (b, 1, 1), (128, 1, 1), 0,
                    [ctypes.c_void_p(x.data_ptr()), ctypes.c_longlong(x.stride(0)), ctypes.c_int(c),
                     ctypes.c_void_p(weight.data_ptr()), ctypes.c_float(eps), ctypes.c_int(int(vectorized)),
                     ctypes.c_void_p(out.data_ptr())])
        return out


    def add_rms_norm(self, x, partials, weight, eps):
        """x += partials.sum(0) in place (f32 [S, B, C], rounded once), then RMSNorm of x (probe kernel)."""
        b, c = x.shape
        out = torch.empty(b, c, device=x.device, dtype=x.dtype)
        self.probes.launch("probe_add_rms_norm", (b, 1, 1), (128, 1, 1), 0,
                           [ctypes.c_void_p(x.data_ptr()), ctypes.c_longlong(x.stride(0)), ctypes.c_int(c),
                            ctypes.c_void_p(weight.data_ptr()), ctypes.c_float(eps),
                            ctypes.c_void_p(out.data_ptr()), ctypes.c_void_p(partials.data_ptr()),
                            ctypes.c_int(partials.shape[0]), ctypes.c_longlong(partials.stride(0))])
        return out


def down_partials(a, wd, splits):
    """The down product a [B, I] @ wd[C, I]^T cut along I into `splits` batched products with f32 outputs [S, B, C]
    (cuBLAS strided-batched, no reduction kernel: the next RMSNorm adds them)."""
    b, i = a.shape
    c = wd.shape[0]
    return torch.bmm(a.view(b, splits, i // splits).transpose(0, 1),
                     wd.view(c, splits, i // splits).permute(1, 2, 0), out_dtype=torch.float32)


class SplitAttention(Attention):
    """The attention kernel with a forced split count (None: the shim's plan)."""

    splits = None

    def plan(self, b, kvh, attended):
        if self.splits is None:
            return super().plan(b, kvh, attended)
        tiles = (attended + 63) // 64
        per = -(-tiles // min(self.splits, tiles))
        return -(-tiles // per), per


def forward(st, fused, ops, attention, norm_kernel=False, rope_in_attention=False, prefetch=None, down_split=0,
            fold_norms=False):
    """The engine's decode forward: ATen ops (fused False), the layer kernels, then also the RMSNorm kernel, then
    also RoPE and the K/V write inside the attention kernel (the engine's default on CUDA up to session 9).

    `fold_norms` (with the layer kernels): the layers' RMSNorms folded into the q/k/v and gate/up products, the
    engine's default since session 10: the products read the un-normalised rows (the norm weights multiply the
    product's weight columns: here they are ones, so the weights stay), and the kernel after each product applies
    the row factor rsqrt(mean(x²) + eps) and the bias (folded_norm_args), so no RMSNorm kernel runs in the layers.
    "attention" or "mlp" folds only the norm before that product (a measurement split).

    `prefetch`: dict(at="attention"|"gate_up"|"down", budget=bytes per layer, mode=0|1, evict_last=bool,
    stream=None|torch.cuda.Stream): each layer asks L2 for the next layer's live K/V cache (at most `budget` bytes)
    right after its attention, before its gate/up product or before its down product; on `stream` the prefetch
    kernel runs as a side branch joined before the next attention.
    `down_split` S > 0: the down product as S batched products with f32 outputs, added to the residual by the next
    RMSNorm (probe kernel probe_add_rms_norm, scripts/gpu/decode_probes.cu) instead of cuBLAS's split-K reduction."""
    fold_attention, fold_mlp = fold_norms in (True, "attention"), fold_norms in (True, "mlp")
    s, dt = st["shape"], st["dt"]
    C, H, KV, D = s["C"], s["H"], s["KV"], s["D"]
    B, S = st["valid"].shape
    freqs = st["positions"].float().unsqueeze(-1) * st["inv_freq"]
    emb = torch.cat([freqs, freqs], -1)
    cos, sin = emb.cos().to(dt).view(B, D), emb.sin().to(dt).view(B, D)
    lanes = torch.arange(D, device=cos.device)
    signed_sin = (sin * ((lanes >= D // 2).to(dt) * 2.0 - 1.0)).view(B, 1, D)
    rot = (lanes + D // 2).remainder(D)
    slot = st["slots"][0]
    row_slots = st["slots"].view(B)
    x = F.embedding(st["ids"].view(B), st["emb"])

    def norm(x, w):
        return ops.rms_norm(x, w, 1e-6) if norm_kernel else torch._fused_rms_norm(x, [C], w, 1e-6)[0]

    regions = 2 * B * KV
    pending = []

    def ask_l2(i, where):
        if prefetch is None or prefetch["at"] != where or i + 1 >= len(st["layers"]):
            return
        args = (st["ck"][i + 1], st["cv"][i + 1], st["starts"], row_slots, prefetch["budget"] // regions,
                prefetch.get("mode", 0), prefetch.get("evict_last", False))
        side = prefetch.get("stream")
        if side is None:
            ops.prefetch_kv(*args)
            return
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            ops.prefetch_kv(*args)
        pending.append(side)

    parts = None

    def norm_after_down(x, w):
        return norm(x, w) if parts is None else ops.add_rms_norm(x, parts, w, 1e-6)

    for i, l in enumerate(st["layers"]):
        folded = (x, 1e-6, l["bqkv"]) if fold_attention else None
        if fold_attention:
            qkv = F.linear(x, l["wqkv"])
        else:
            h = norm_after_down(x, l["n1"])
            qkv = F.linear(h, l["wqkv"], l["bqkv"])
        while pending:
            torch.cuda.current_stream().wait_stream(pending.pop())
        if rope_in_attention:
            y = attention.rope(qkv, cos, sin, H, st["ck"][i], st["cv"][i], st["starts"], row_slots, S, norm=folded)
        elif fused:
            q = ops.rope_kv_write(qkv, cos, sin, H, KV, st["ck"][i], st["cv"][i], slot, norm=folded)
        else:
            heads = qkv.view(B, H + 2 * KV, D)
            qk = heads.narrow(1, 0, H + KV)
            rotated = (qk * cos.view(B, 1, D)).addcmul_(qk.index_select(-1, rot), signed_sin)
            q = rotated.narrow(1, 0, H)
            st["ck"][i].index_copy_(2, slot, rotated.narrow(1, H, KV).view(B, KV, 1, D))
            st["cv"][i].index_copy_(2, slot, heads.narrow(1, H + KV, KV).view(B, KV, 1, D))
        if not rope_in_attention:
            y = attention(q, st["ck"][i], st["cv"][i], st["starts"], row_slots, S)
        ask_l2(i, "attention")
        x.addmm_(y.reshape(B, H * D), l["wo"].t())
        h = x if fold_mlp else norm(x, l["n2"])
        ask_l2(i, "gate_up")
        gu = F.linear(h, l["wgu"])
        if fused:
            a = ops.silu_mul(gu, norm=(x, 1e-6, None) if fold_mlp else None)
        else:
            width = gu.shape[1] // 2
            a = F.silu(gu.narrow(1, 0, width), inplace=True) * gu.narrow(1, width, width)
        ask_l2(i, "down")
        if down_split:
            parts = down_partials(a, l["wd"], down_split)
        else:
            x.addmm_(a, l["wd"].t())
    return F.linear(norm_after_down(x, st["norm"]), st["emb"])


def row_slice(st, start, rows):
    """The decode state of rows [start, start + rows) of `st`, as views (caches, ids, positions, starts)."""
    view = dict(st)
    for key in ("ids", "positions", "slots", "starts", "valid"):
        view[key] = st[key].narrow(0, start, rows)
    view["ck"] = [c.narrow(0, start, rows) for c in st["ck"]]
    view["cv"] = [c.narrow(0, start, rows) for c in st["cv"]]
    return view


def time_streams(report, st, ops, attention, shape, batch, parts):
    """The every-kernel forward + sampler on all rows at once against the rows cut into `parts` groups, each
    group's whole step on its own stream (independent rows: the groups only share weights), in one graph."""
    u = torch.rand(batch, device="cuda")
    tok = torch.empty(batch, dtype=torch.long, device="cuda")
    lp = torch.empty(batch, device="cuda")
    sampler = Kernel(1)

    def step(view, lo, rows):
        logits = forward(view, True, ops, attention, norm_kernel=True, rope_in_attention=True)
        sampler(logits, u[lo:lo + rows], 1.0, False, tok[lo:lo + rows], lp[lo:lo + rows])

    rows = batch // parts
    views = [row_slice(st, i * rows, rows) for i in range(parts)]
    streams = [torch.cuda.Stream() for _ in range(parts)]

    def split():
        main = torch.cuda.current_stream()
        for stream in streams:
            stream.wait_stream(main)
        for i, (stream, view) in enumerate(zip(streams, views)):
            with torch.cuda.stream(stream):
                step(view, i * rows, rows)
        for stream in streams:
            main.wait_stream(stream)

    def serial():
        for i, view in enumerate(views):
            step(view, i * rows, rows)

    whole = timed_graph(lambda: step(st, 0, batch))
    together = timed_graph(split)
    one_by_one = timed_graph(serial)
    report.append(f"streams {shape} B={batch}: forward + sampler on all rows {whole:.3f} ms; {parts} groups of {rows} "
                  f"rows on {parts} streams {together:.3f} ms, the same groups one after another {one_by_one:.3f} ms")


def random_state(shape, batch, slots):
    """build()'s decode state with random caches, prompts starting at random slots 0-31 and this step's slot last."""
    st = build(shape, batch, slots, "cuda", torch.bfloat16)
    st["starts"] = torch.randint(0, 32, (batch,), device="cuda")
    for c in st["ck"] + st["cv"]:
        c.normal_()
    st["slots"].fill_(slots - 1)
    return st


def kernels_for(shape):
    """The step's kernels for `shape`: (layer ops, the shape's sizes, attention, bf16 sampler)."""
    s = SHAPES[shape]
    return LayerOps(1), s, SplitAttention(s["D"], s["H"] // s["KV"]), Kernel(1)


def engine_forward(st, ops, attention, **variant):
    """forward() as the engine runs it on CUDA (every kernel, RoPE inside attention), with a probe `variant`."""
    return forward(st, True, ops, attention, norm_kernel=True, rope_in_attention=True, **variant)


def step_time(st, ops, attention, sampler, **variant):
    """engine_forward + the sampler kernel, ms per step, the best of three graph timings."""
    batch = st["valid"].shape[0]
    tok = torch.empty(batch, dtype=torch.long, device="cuda")
    lp = torch.empty(batch, device="cuda")
    u = torch.rand(batch, device="cuda")

    def step():
        sampler(engine_forward(st, ops, attention, **variant), u, 1.0, False, tok, lp)

    return min(timed_graph(step) for _ in range(3))


def sweep_prefetch(report, shape, batch, slots):
    """forward + sampler (every kernel) with the next layer's K/V prefetched into L2 at several points of the layer,
    byte budgets and policies, against none; each variant must give the same logits as none (a prefetch is a hint)."""
    ops, s, attention, sampler = kernels_for(shape)
    with torch.no_grad():
        st = random_state(shape, batch, slots)
        kv_bytes = 2 * (st["slots"].view(batch) - st["starts"]).sum().item() * s["KV"] * s["D"] * 2
        reference = engine_forward(st, ops, attention).float()
        side = torch.cuda.Stream()
        every = 1 << 40
        variants = [None]
        for at in ("attention", "gate_up", "down"):
            for budget in (every, 24 << 20, 12 << 20):
                variants.append(dict(at=at, budget=budget))
        for at in ("attention", "gate_up"):
            variants.append(dict(at=at, budget=every, evict_last=True))
            variants.append(dict(at=at, budget=24 << 20, evict_last=True))
            variants.append(dict(at=at, budget=every, mode=1))
        variants.append(dict(at="attention", budget=every, stream=side))
        variants.append(dict(at="gate_up", budget=every, stream=side))
        report.append(f"prefetch {shape} B={batch} slots={slots}: live K/V per layer {kv_bytes / 2**20:.1f} MiB")
        base = None
        for v in variants:
            same = torch.equal(engine_forward(st, ops, attention, prefetch=v).float(), reference)
            t = step_time(st, ops, attention, sampler, prefetch=v)
            base = base or t

            def shown(k, x):
                if k == "budget":
                    return "all" if x == every else f"{x >> 20} MiB"
                return "side" if k == "stream" else x

            label = "none" if v is None else ", ".join(f"{k}={shown(k, x)}" for k, x in v.items())
            report.append(f"  {label}: forward + sampler {t:.3f} ms ({(t / base - 1) * 100:+.1f}%), same logits {same}")
            print(report[-1], flush=True)
        del st
        torch.cuda.empty_cache()


def sweep_epilogue(report, shape, batch, slots):
    """What the engine's step added around the sampler before the sampler kernel took it over in session 9 (mark
    the slot valid, pick the step's uniforms, feed the tokens back, advance positions / slots / step, pack tokens
    and log-probs as f64 for the read-back) in ATen ops, against forward + sampler alone. The counters advanced here are copies, so
    every replay attends over the same slots."""
    ops, s, attention, sampler = kernels_for(shape)
    with torch.no_grad():
        st = random_state(shape, batch, slots)
        tok = torch.empty(batch, dtype=torch.long, device="cuda")
        lp = torch.empty(batch, device="cuda")
        uniforms = torch.rand(batch, 1024, device="cuda")
        valid = torch.zeros(batch, 1024, dtype=torch.bool, device="cuda")
        ids, positions = st["ids"].clone(), st["positions"].clone()
        slots_copy, step = st["slots"].clone(), torch.ones(1, dtype=torch.long, device="cuda")
        u = uniforms[:, 1].contiguous()

        def bare():
            sampler(engine_forward(st, ops, attention), u, 1.0, False, tok, lp)

        def engine_step():
            valid.scatter_(1, slots_copy, True)
            logits = engine_forward(st, ops, attention)
            sampler(logits, uniforms.index_select(1, step).squeeze(1), 1.0, False, tok, lp)
            ids.copy_(tok.view(-1, 1))
            positions.add_(1)
            slots_copy.add_(1)
            step.add_(1)
            return torch.stack([tok.double(), lp.double()])

        def one_kernel():
            bare()
            positions.add_(1)

        t_bare = min(timed_graph(bare) for _ in range(3))
        t_step = min(timed_graph(engine_step) for _ in range(3))
        t_one = min(timed_graph(one_kernel) for _ in range(3))
        report.append(f"epilogue {shape} B={batch} slots={slots}: forward + sampler {t_bare:.3f} ms, with the engine's "
                      f"ATen epilogue {t_step:.3f} ms (+{(t_step - t_bare) * 1e3:.1f} us), with one small kernel "
                      f"{t_one:.3f} ms (+{(t_one - t_bare) * 1e3:.1f} us)")
        print(report[-1], flush=True)
        del st
        torch.cuda.empty_cache()


def variant_step(st, cache, ops, attention, sampler, **variant):
    """engine_forward's logits (f32) from the cache contents `cache` (copied back into st's caches first, as the
    forward writes this step's slot) and step_time, for one variant of the step's kernels (and forward's
    keyword `variant`)."""
    for c, r in zip(st["ck"] + st["cv"], cache):
        c.copy_(r)
    return (engine_forward(st, ops, attention, **variant).float(),
            step_time(st, ops, attention, sampler, **variant))


def sweep_attention_settings(report, shape, batch, slots):
    """forward + sampler with the attention kernel built for other warps x stages (decode_tune.py times the kernel
    alone; here it runs between the step's products, as in the engine): same logits, and the time of each."""
    ops, s, attention, sampler = kernels_for(shape)
    with torch.no_grad():
        st = random_state(shape, batch, slots)
        base_k = [c.clone() for c in st["ck"] + st["cv"]]
        reference, base = variant_step(st, base_k, ops, attention, sampler)
        report.append(f"attention settings {shape} B={batch} slots={slots}: default (2 warps x 2 stages) {base:.3f} ms")
        for warps, stages in ((4, 2), (2, 3), (4, 3), (2, 4)):
            variant = SplitAttention(s["D"], s["H"] // s["KV"], warps=warps, stages=stages)
            logits, t = variant_step(st, base_k, ops, variant, sampler)
            report.append(f"  {warps} warps x {stages} stages: forward + sampler {t:.3f} ms ({(t / base - 1) * 100:+.1f}%), "
                          f"|logits - default| {(logits - reference).abs().max().item():.2e}")
            print(report[-1], flush=True)
        del st
        torch.cuda.empty_cache()


def sweep_silu(report, shape, batch, slots):
    """SiLU·up with the accurate exponential and division (SILU_FAST=0) against the fast ones: the kernel alone on
    the step's gate/up output, its distance from f32, and forward + sampler with each."""
    _, s, attention, sampler = kernels_for(shape)
    variants = {fast: LayerOps(1, extra={"SILU_FAST": fast}) for fast in (0, 1)}
    with torch.no_grad():
        gu = torch.randn(batch, 2 * s["I"], device="cuda").to(torch.bfloat16) * 3
        g, u = gu.float()[:, :s["I"]], gu.float()[:, s["I"]:]
        exact = F.silu(g) * u
        st = random_state(shape, batch, slots)
        base_k = [c.clone() for c in st["ck"] + st["cv"]]
        line = []
        for fast, ops in variants.items():
            err = (ops.silu_mul(gu).float() - exact).abs().max().item()
            alone = timed_graph(lambda: ops.silu_mul(gu)) * 1e3
            logits, t = variant_step(st, base_k, ops, attention, sampler)
            line.append(f"SILU_FAST={fast}: kernel {alone:.1f} us, |out - f32| {err:.2e}, forward + sampler {t:.3f} ms, "
                        f"logits sum {logits.double().sum().item():.6e}")
        fast = variants[1]
        for threads in (64, 128, 512, 608):
            same = torch.equal(fast.silu_mul(gu, threads), fast.silu_mul(gu))
            line.append(f"fast, {threads} threads per block: kernel {timed_graph(lambda: fast.silu_mul(gu, threads)) * 1e3:.1f} us"
                        f" (same output {same})")
        report.append(f"silu {shape} B={batch} slots={slots}: " + "; ".join(line))
        print(report[-1], flush=True)
        del st
        torch.cuda.empty_cache()


def sweep_fold(report, shape, batch, slots):
    """The layers' RMSNorms folded into the products (forward fold_norms) against the RMSNorm kernels: the same
    logits up to rounding, and forward + sampler with each."""
    ops, s, attention, sampler = kernels_for(shape)
    with torch.no_grad():
        st = random_state(shape, batch, slots)
        base_k = [c.clone() for c in st["ck"] + st["cv"]]
        line = []
        results = {fold: variant_step(st, base_k, ops, attention, sampler, fold_norms=fold)
                   for fold in (False, True, "attention", "mlp")}
        (plain, t0), (folded, t1) = results[False], results[True]
        agree = (plain.argmax(-1) == folded.argmax(-1)).float().mean().item()
        line.append(f"RMSNorm kernels {t0:.3f} ms, folded {t1:.3f} ms ({(t1 / t0 - 1) * 100:+.1f}%); "
                    f"|logits diff| {(plain - folded).abs().max().item():.3e} at logit scale "
                    f"{plain.abs().max().item():.2f}, argmax agreement {agree:.4f}")
        for part in ("attention", "mlp"):
            t = results[part][1]
            line.append(f"only the norm before the {part} product folded {t:.3f} ms ({(t / t0 - 1) * 100:+.1f}%)")
        report.append(f"fold {shape} B={batch} slots={slots}: " + "; ".join(line))
        print(report[-1], flush=True)
        del st
        torch.cuda.empty_cache()


def sweep_down_split(report, shape, batch, slots):
    """The down product's split-K reduction folded into the next RMSNorm (forward down_split) against cuBLAS's own
    split-K + reduction (addmm_ with β = 1): per-op times, then forward + sampler, and the logits' distance."""
    ops, s, attention, sampler = kernels_for(shape)
    with torch.no_grad():
        st = random_state(shape, batch, slots)
        l = st["layers"][0]
        x = torch.randn(batch, s["C"], device="cuda", dtype=torch.bfloat16)
        act = torch.randn(batch, s["I"], device="cuda", dtype=torch.bfloat16)
        exact = x.double() + act.double() @ l["wd"].double().t()
        line = [f"addmm_ {timed_graph(lambda: x.clone().addmm_(act, l['wd'].t())) * 1e3:.1f} us (with a clone), "
                f"clone alone {timed_graph(lambda: x.clone()) * 1e3:.1f} us",
                f"rms norm kernel {timed_graph(lambda: ops.rms_norm(x, l['n1'], 1e-6)) * 1e3:.1f} us"]
        ref_err = (x.clone().addmm_(act, l["wd"].t()).double() - exact).abs().max().item()
        for splits in (1, 2, 4, 8, 16):
            parts = down_partials(act, l["wd"], splits)
            y = x.clone()
            ops.add_rms_norm(y, parts, l["n1"], 1e-6)
            err = (y.double() - exact).abs().max().item()
            line.append(f"S={splits}: bmm {timed_graph(lambda: down_partials(act, l['wd'], splits)) * 1e3:.1f} us, "
                        f"add+norm {timed_graph(lambda: ops.add_rms_norm(x.clone(), parts, l['n1'], 1e-6)) * 1e3:.1f} "
                        f"us (with a clone), max |x - exact| {err:.2e} (addmm_ {ref_err:.2e})")
        report.append(f"down split {shape} B={batch}: " + "; ".join(line))
        print(report[-1], flush=True)
        reference = engine_forward(st, ops, attention).float()
        base = None
        for splits in (0, 2, 4, 8):
            logits = engine_forward(st, ops, attention, down_split=splits).float()
            t = step_time(st, ops, attention, sampler, down_split=splits)
            base = base or t
            agree = (logits.argmax(-1) == reference.argmax(-1)).float().mean().item()
            report.append(f"  down_split={splits}: forward + sampler {t:.3f} ms ({(t / base - 1) * 100:+.1f}%), "
                          f"|logits - addmm_ path| {(logits - reference).abs().max().item():.3e}, "
                          f"argmax agreement {agree:.4f}")
            print(report[-1], flush=True)
        del st
        torch.cuda.empty_cache()


def check_kernels(report, ops, shape, batch):
    s = SHAPES[shape]
    H, KV, D, I = s["H"], s["KV"], s["D"], s["I"]
    torch.manual_seed(1)
    for dt, code in ((torch.bfloat16, 1), (torch.float32, 0), (torch.float16, 2)):
        k = ops if code == 1 else LayerOps(code)
        qkv = torch.randn(batch, (H + 2 * KV) * D, device="cuda").to(dt)
        pos = torch.randint(0, 4000, (batch, 1), device="cuda").float()
        inv = 1.0 / (1e6 ** (torch.arange(0, D, 2, device="cuda").float() / D))
        emb = torch.cat([pos * inv, pos * inv], -1)
        cos, sin = emb.cos().to(dt), emb.sin().to(dt)
        keys = torch.zeros(batch, KV, 64, D, device="cuda", dtype=dt)
        values = torch.zeros_like(keys)
        slots = torch.randint(0, 64, (batch,), device="cuda")
        q = k.rope_kv_write(qkv, cos, sin, H, KV, keys, values, slots)
        x = qkv.float().view(batch, H + 2 * KV, D)
        x1, x2 = x[..., : D // 2], x[..., D // 2:]
        ref = x * cos.float()[:, None] + torch.cat([-x2, x1], -1) * sin.float()[:, None]
        rows = torch.arange(batch, device="cuda")
        err_q = (q.float() - ref[:, :H]).abs().max().item()
        err_k = (keys[rows, :, slots].float() - ref[:, H:H + KV]).abs().max().item()
        v_exact = torch.equal(values[rows, :, slots], qkv.view(batch, H + 2 * KV, D)[:, H + KV:])
        rest = torch.stack([keys, values]).clone()
        rest[:, rows, :, slots] = 0
        untouched = rest.abs().max().item()
        gu = torch.randn(batch, 2 * I, device="cuda").to(dt) * 3
        a = k.silu_mul(gu)
        g, u = gu.float()[:, :I], gu.float()[:, I:]
        err_s = (a.float() - F.silu(g) * u).abs().max().item()
        aten = F.silu(gu[:, :I]) * gu[:, I:]
        odd = k.silu_mul(gu[:, 1:1 + 2 * (I - 1)])  # unaligned rows: the scalar path
        err_odd = (odd.float() - F.silu(gu.float()[:, 1:I]) * gu.float()[:, I:2 * I - 1]).abs().max().item()
        xs = torch.randn(batch, s["C"], device="cuda").to(dt) * 4
        w = (torch.rand(s["C"], device="cuda") + 0.5).to(dt)
        ref = torch._fused_rms_norm(xs.float(), [s["C"]], w.float(), 1e-6)[0]
        err_n = (k.rms_norm(xs, w, 1e-6).float() - ref).abs().max().item()
        err_n_aten = (torch._fused_rms_norm(xs, [s["C"]], w, 1e-6)[0].float() - ref).abs().max().item()
        odd_n = k.rms_norm(xs[:, 1:], w[1:], 1e-6).float()
        err_n_odd = (odd_n - torch._fused_rms_norm(xs[:, 1:].float(), [s["C"] - 1], w[1:].float(), 1e-6)[0]).abs().max().item()
        report.append(f"kernels {shape} B={batch} {dt}: rms_norm |out - f32 ref| {err_n:.2e} (ATen's {err_n_aten:.2e}), "
                      f"unaligned {err_n_odd:.2e}")
        report.append(
            f"kernels {shape} B={batch} {dt}: rope |q - f32 ref| {err_q:.2e}, |k - f32 ref| {err_k:.2e}, v exact {v_exact}, "
            f"other cache slots untouched {untouched == 0}; silu_mul |out - f32 ref| {err_s:.2e} (ATen's "
            f"{(aten.float() - F.silu(g) * u).abs().max().item():.2e}), unaligned {err_odd:.2e}")


def sweep_splits(report, shape, batches, slot_counts):
    """Decode attention per layer for split counts 1..12 at each batch size and history length (all slots valid)."""
    s = SHAPES[shape]
    H, KV, D = s["H"], s["KV"], s["D"]
    attention = SplitAttention(D, H // KV)
    for slots in slot_counts:
        for b in batches:
            keys = torch.randn(b, KV, slots, D, device="cuda", dtype=torch.bfloat16)
            values = torch.randn_like(keys)
            q = torch.randn(b, H, D, device="cuda", dtype=torch.bfloat16)
            starts = torch.zeros(b, dtype=torch.long, device="cuda")
            rows = torch.full((b,), slots - 1, dtype=torch.long, device="cuda")
            times = {}
            for splits in (None, 1, 2, 3, 4, 6, 8, 12):
                attention.splits = splits
                if splits is not None and splits > (slots + 63) // 64:
                    continue
                times[splits] = timed_graph(lambda: attention(q, keys, values, starts, rows, slots)) * 1e3
            attention.splits = None
            best = min((k for k in times if k is not None), key=lambda k: times[k])
            gbs = 2 * b * KV * slots * D * 2 / (times[best] * 1e-6) / 1e12
            report.append(f"splits {shape} B={b} slots={slots}: plan {attention.plan(b, KV, slots)} {times[None]:.1f} us; "
                          + ", ".join(f"{k}: {v:.1f}" for k, v in times.items() if k is not None)
                          + f"; best {best} ({gbs:.2f} TB/s)")
            print(report[-1], flush=True)
            del keys, values


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shape", default="0.5b", choices=sorted(SHAPES))
    p.add_argument("--batch-sizes", default="256,512")
    p.add_argument("--slots", type=int, default=384)
    p.add_argument("--top", type=int, default=24)
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("--sweep-splits", action="store_true", help="only sweep decode attention's split count")
    p.add_argument("--streams", default="", help="only time the step cut into row groups on streams, e.g. 2,4")
    p.add_argument("--prefetch", action="store_true", help="only time the step with the next layer's K/V prefetched")
    p.add_argument("--down-split", action="store_true", help="only time the down product's reduction in the RMSNorm")
    p.add_argument("--epilogue", action="store_true", help="only time the engine's ATen epilogue after the sampler")
    p.add_argument("--silu", action="store_true", help="only time SiLU·up with the accurate and the fast math")
    p.add_argument("--fold", action="store_true", help="only time the step with the RMSNorms folded into the products")
    p.add_argument("--attention-settings", action="store_true",
                   help="only time the step with the attention kernel at other warps x stages")
    a = p.parse_args()
    for flag, sweep, name in ((a.down_split, sweep_down_split, "down_split"), (a.prefetch, sweep_prefetch, "prefetch"),
                              (a.epilogue, sweep_epilogue, "epilogue"),
                              (a.attention_settings, sweep_attention_settings, "attention_settings"),
                              (a.silu, sweep_silu, "silu"), (a.fold, sweep_fold, "fold")):
        if flag:
            report = [f"device {torch.cuda.get_device_name()}, torch {torch.__version__}"]
            for batch in [int(b) for b in a.batch_sizes.split(",")]:
                sweep(report, a.shape, batch, a.slots)
            with open(os.path.join(a.out, f"{name}_{a.shape}.txt"), "w") as fh:
                fh.write("\n".join(report) + "\n")
            return
    if a.streams:
        report = [f"device {torch.cuda.get_device_name()}, torch {torch.__version__}"]
        s = SHAPES[a.shape]
        attention = SplitAttention(s["D"], s["H"] // s["KV"])
        for batch in [int(b) for b in a.batch_sizes.split(",")]:
            with torch.no_grad():
                st = build(a.shape, batch, a.slots, "cuda", torch.bfloat16)
                st["starts"] = torch.randint(0, 32, (batch,), device="cuda")
                st["slots"].fill_(a.slots - 1)
                for parts in [int(x) for x in a.streams.split(",")]:
                    time_streams(report, st, LayerOps(1), attention, a.shape, batch, parts)
                    print(report[-1], flush=True)
                del st
        with open(os.path.join(a.out, f"streams_{a.shape}.txt"), "w") as fh:
            fh.write("\n".join(report) + "\n")
        return
    if a.sweep_splits:
        report = [f"device {torch.cuda.get_device_name()}, torch {torch.__version__}"]
        sweep_splits(report, a.shape, [int(b) for b in a.batch_sizes.split(",")], (128, 384, 1024))
        with open(os.path.join(a.out, f"attention_splits_{a.shape}.txt"), "w") as fh:
            fh.write("\n".join(report) + "\n")
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    report = [f"device {torch.cuda.get_device_name()}, torch {torch.__version__}"]
    ops = LayerOps(1)
    s = SHAPES[a.shape]
    attention = SplitAttention(s["D"], s["H"] // s["KV"])
    sampler = Kernel(1)

    printed = [0]

    def flush():
        """Prints the lines added since the last call and rewrites the report file."""
        print("\n".join(report[printed[0]:]), flush=True)
        printed[0] = len(report)
        with open(os.path.join(a.out, f"decode_layer_{a.shape}.txt"), "w") as fh:
            fh.write("\n".join(report) + "\n")

    for batch in [int(b) for b in a.batch_sizes.split(",")]:
        check_kernels(report, ops, a.shape, batch)
        with torch.no_grad():
            st = random_state(a.shape, batch, a.slots)
            ref_k = [c.clone() for c in st["ck"]]
            logits_aten = forward(st, False, ops, attention).float()
            cache_aten = [c.clone() for c in st["ck"] + st["cv"]]
            for c, r in zip(st["ck"], ref_k):
                c.copy_(r)
            logits_fused = forward(st, True, ops, attention).float()
            for c, r in zip(st["ck"], ref_k):
                c.copy_(r)
            logits_norm = forward(st, True, ops, attention, norm_kernel=True).float()
            cache_norm = [c.clone() for c in st["ck"] + st["cv"]]
            for c, r in zip(st["ck"], ref_k):
                c.copy_(r)
            logits_rope = forward(st, True, ops, attention, norm_kernel=True, rope_in_attention=True).float()
            same_cache = all(torch.equal(c, r) for c, r in zip(st["ck"] + st["cv"], cache_norm))
            report.append(f"forward {a.shape} B={batch}: RoPE inside the attention kernel gives identical logits "
                          f"{torch.equal(logits_rope, logits_norm)} and cache {same_cache}")
            report.append(f"forward {a.shape} B={batch}: |fused with the RMSNorm kernel - aten| logits max "
                          f"{(logits_norm - logits_aten).abs().max().item():.3e}, argmax agreement "
                          f"{(logits_aten.argmax(-1) == logits_norm.argmax(-1)).float().mean().item():.4f}")
            # An f32 replica (the same bf16-rounded weights and cache, SDPA with the equivalent mask) as the yardstick.
            st32 = dict(st, emb=st["emb"].float(), norm=st["norm"].float(), dt=torch.float32,
                        layers=[{k: v.float() for k, v in l.items()} for l in st["layers"]],
                        ck=[r.float() for r in ref_k], cv=[c.float() for c in st["cv"]])

            def sdpa_masked(q, keys, values, starts, rows, slots):
                ids = torch.arange(slots, device="cuda")
                valid = (ids[None] >= starts[:, None]) & (ids[None] <= rows[:, None])
                g = s["H"] // s["KV"]
                return F.scaled_dot_product_attention(
                    q.reshape(batch, s["KV"], g, s["D"]), keys[:, :, :slots], values[:, :, :slots],
                    attn_mask=valid.view(batch, 1, 1, slots)).reshape(batch, s["H"], s["D"])

            logits32 = forward(st32, False, ops, sdpa_masked)
            del st32
            report.append(
                f"forward {a.shape} B={batch} against an f32 replica: |aten bf16 - f32| "
                f"{(logits_aten - logits32).abs().max().item():.3e}, |fused bf16 - f32| "
                f"{(logits_fused - logits32).abs().max().item():.3e}, |fused + RMSNorm kernel - f32| "
                f"{(logits_norm - logits32).abs().max().item():.3e}")
            cache_diff = max((c - r).abs().max().item() for c, r in zip(st["ck"] + st["cv"], cache_aten))
            agree = (logits_aten.argmax(-1) == logits_fused.argmax(-1)).float().mean().item()
            report.append(
                f"forward {a.shape} B={batch}: |fused - aten| logits max {(logits_fused - logits_aten).abs().max().item():.3e} "
                f"(logit scale {logits_aten.abs().max().item():.2f}), argmax agreement {agree:.4f}, "
                f"cache max diff {cache_diff:.3e}")
            tok = torch.empty(batch, dtype=torch.long, device="cuda")
            lp = torch.empty(batch, device="cuda")
            u = torch.rand(batch, device="cuda")

            def step(fused):
                logits = forward(st, fused, ops, attention, norm_kernel=fused, rope_in_attention=fused)
                sampler(logits, u, 1.0, False, tok, lp)

            times = {f: (timed_graph(lambda: forward(st, f, ops, attention)), timed_graph(lambda: step(f)))
                     for f in (False, True)}
            norm_ms = timed_graph(lambda: forward(st, True, ops, attention, norm_kernel=True))
            rope_ms = timed_graph(lambda: forward(st, True, ops, attention, norm_kernel=True, rope_in_attention=True))
            report.append(
                f"time {a.shape} B={batch}, {a.slots} slots: forward aten {times[False][0]:.3f} ms, layer kernels "
                f"{times[True][0]:.3f} ms, + RMSNorm kernel {norm_ms:.3f} ms, + RoPE in attention {rope_ms:.3f} ms; "
                f"forward + sampler kernel: aten {times[False][1]:.3f} ms, every kernel {times[True][1]:.3f} ms")
            flush()
            # attention split counts
            q = torch.randn(batch, s["H"], s["D"], device="cuda", dtype=torch.bfloat16)
            rows = st["slots"].view(batch)
            line = []
            for splits in (None, 1, 2, 3, 4, 6):
                attention.splits = splits
                t = timed_graph(lambda: attention(q, st["ck"][0], st["cv"][0], st["starts"], rows, a.slots)) * 1e3
                line.append(f"{'plan ' + str(attention.plan(batch, s['KV'], a.slots)) if splits is None else splits}: {t:.1f} us")
            attention.splits = None
            report.append(f"attention {a.shape} B={batch} per layer by splits: " + ", ".join(line))
            # down projection product forms
            l = st["layers"][0]
            x = torch.randn(batch, s["C"], device="cuda", dtype=torch.bfloat16)
            act = torch.randn(batch, s["I"], device="cuda", dtype=torch.bfloat16)
            forms = {
                "addmm_ beta=1": lambda: x.addmm_(act, l["wd"].t()),
                "mm + add_": lambda: x.add_(torch.mm(act, l["wd"].t())),
                "linear qkv+bias": lambda: F.linear(torch._fused_rms_norm(x, [s["C"]], l["n1"], 1e-6)[0], l["wqkv"], l["bqkv"]),
                "rms norm": lambda: torch._fused_rms_norm(x, [s["C"]], l["n1"], 1e-6)[0],
                "gate_up": lambda: F.linear(x, l["wgu"]),
                "o_proj addmm_": lambda: x.addmm_(q.view(batch, -1), l["wo"].t()),
            }
            line = [f"{k} {timed_graph(f) * 1e3:.1f} us" for k, f in forms.items()]
            torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
            line.append(f"addmm_ without reduced-precision reduction {timed_graph(forms['addmm_ beta=1']) * 1e3:.1f} us")
            torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = True
            try:
                torch.backends.cuda.preferred_blas_library("cublaslt")
                line.append(f"addmm_ via cublasLt {timed_graph(forms['addmm_ beta=1']) * 1e3:.1f} us, "
                            f"o_proj via cublasLt {timed_graph(forms['o_proj addmm_']) * 1e3:.1f} us")
            finally:
                torch.backends.cuda.preferred_blas_library("cublas")
            report.append(f"ops {a.shape} B={batch} (one call each): " + ", ".join(line))
            flush()
            # profile of the fused step
            from torch.profiler import ProfilerActivity, profile
            for _ in range(3):
                step(True)
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(5):
                    step(True)
                torch.cuda.synchronize()
            events = [e for e in prof.key_averages() if e.device_time_total > 0]
            total = sum(e.device_time_total for e in events) / 5
            count = sum(e.count for e in events) / 5
            events.sort(key=lambda e: -e.device_time_total)
            report.append(f"step with every kernel {a.shape} B={batch}: {count:.0f} kernels, summed GPU time "
                          f"{total / 1e3:.3f} ms")
            for e in events[: a.top]:
                report.append(f"  {e.device_time_total / 5 / 1e3:8.3f} ms  {e.count / 5:6.0f}x  {e.key[:100]}")
            flush()
            del st
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
