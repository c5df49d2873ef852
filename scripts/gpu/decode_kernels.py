"""Checks and times the two decode-step kernels of the engine on the GPU host, from PyTorch (no Rust binary):

1. the one-pass sampler (crates/shim/kernels/sample_rows.cu, compiled here with NVRTC exactly as the shim does)
   against the ATen reference sampler: greedy tokens, sampled tokens for the same uniforms, log-probs; and its time
   against the ATen sampler the engine used before (max, shift, exp, two-level inverse CDF);
2. decode attention over a token-major K/V cache: FlashAttention's varlen path with per-row start offsets and
   `seqused_k` (no mask) against SDPA with an additive padding bias (the previous path), outputs and time, both
   replayed from CUDA graphs.

Usage on the GPU host: python scripts/gpu/decode_kernels.py [--out DIR]
"""
import argparse
import ctypes
import glob
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decode_profile import timed_graph  # noqa: E402  (a sibling script)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KERNEL = os.path.join(ROOT, "crates/shim/kernels/sample_rows.cu")


def nvrtc_library_dir():
    here = os.path.dirname(torch.__file__)
    for cand in glob.glob(os.path.join(os.path.dirname(here), "nvidia/cu*/lib")) + ["/usr/local/cuda/lib64"]:
        if glob.glob(os.path.join(cand, "libnvrtc.so*")):
            return cand
    raise RuntimeError("libnvrtc not found")


class Module:
    """A .cu file of crates/shim/kernels compiled by NVRTC for this GPU (as the shim does) and loaded."""

    def __init__(self, source, defines, names):
        d = nvrtc_library_dir()
        for b in sorted(glob.glob(os.path.join(d, "libnvrtc-builtins.so.*"))):
            if ".alt." not in b:
                ctypes.CDLL(b, mode=ctypes.RTLD_GLOBAL)
        nv = ctypes.CDLL(sorted(p for p in glob.glob(os.path.join(d, "libnvrtc.so.*")) if ".alt." not in p)[0])
        cu = ctypes.CDLL("libcuda.so.1")
        major, minor = torch.cuda.get_device_capability()
        src = open(os.path.join(ROOT, "crates/shim/kernels", source), "rb").read()
        self.source = src.decode()
        prog = ctypes.c_void_p()
        common = open(os.path.join(ROOT, "crates/shim/kernels/common.cuh"), "rb").read()
        headers = (ctypes.c_char_p * 1)(common)
        header_names = (ctypes.c_char_p * 1)(b"common.cuh")
        assert nv.nvrtcCreateProgram(ctypes.byref(prog), src, source.encode(), 1, headers, header_names) == 0
        opts = [b"--gpu-architecture=sm_%d%d" % (major, minor)] + [b"-D%s=%d" % (k.encode(), v) for k, v in defines.items()]
        arr = (ctypes.c_char_p * len(opts))(*opts)
        rc = nv.nvrtcCompileProgram(prog, len(opts), arr)
        n = ctypes.c_size_t()
        nv.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
        log = ctypes.create_string_buffer(n.value)
        nv.nvrtcGetProgramLog(prog, log)
        if rc != 0:
            raise RuntimeError(log.value.decode())
        nv.nvrtcGetCUBINSize(prog, ctypes.byref(n))
        cubin = ctypes.create_string_buffer(n.value)
        nv.nvrtcGetCUBIN(prog, cubin)
        torch.cuda.init()
        torch.empty(1, device="cuda")
        self.module = ctypes.c_void_p()
        assert cu.cuModuleLoadData(ctypes.byref(self.module), cubin) == 0
        self.funcs = {}
        for name in names:
            f = ctypes.c_void_p()
            assert cu.cuModuleGetFunction(ctypes.byref(f), self.module, name.encode()) == 0
            self.funcs[name] = f
        self.cu = cu

    def launch(self, name, grid, block, shared, args):
        ptrs = (ctypes.c_void_p * len(args))(*[ctypes.cast(ctypes.pointer(a), ctypes.c_void_p) for a in args])
        stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
        rc = self.cu.cuLaunchKernel(self.funcs[name], *grid, *block, shared, stream, ptrs, None)
        assert rc == 0, rc


def folded_norm_args(norm):
    """The trailing kernel arguments of a layer kernel's folded RMSNorm (kernels/common.cuh, folded_norm_scale):
    `norm` = (input [N, C], eps, bias [columns] or None), or None for neither norm nor bias."""
    if norm is None:
        return [ctypes.c_void_p(None), ctypes.c_longlong(0), ctypes.c_int(0), ctypes.c_float(0.0), ctypes.c_void_p(None)]
    x, eps, bias = norm
    return [ctypes.c_void_p(x.data_ptr()), ctypes.c_longlong(x.stride(0)), ctypes.c_int(x.shape[1]), ctypes.c_float(eps),
            ctypes.c_void_p(None if bias is None else bias.data_ptr())]


class Kernel(Module):
    """The sampler kernel (plain mode: one uniform per row, tokens and log-probs out). `extra`: more -D defines."""

    def __init__(self, kind_code, source="sample_rows.cu", extra=None):
        super().__init__(source, {"SEEKMATH_KIND": kind_code, **(extra or {})}, ["seekmath_sample_rows"])
        # Kernels before the decode-step bookkeeping (an A/B baseline) take the short argument list.
        self.step_arguments = "uniform_row_stride" in self.source

    def __call__(self, logits, uniforms, inv_t, greedy, tokens, logprobs):
        b, v = logits.shape
        tiles = (v + 255) // 256  # shared memory for 256-logit tiles: an upper bound for any TILE >= 256
        null = ctypes.c_void_p(None)
        args = [ctypes.c_void_p(logits.data_ptr()), ctypes.c_longlong(logits.stride(0)), ctypes.c_int(v),
                ctypes.c_void_p(uniforms.data_ptr())]
        if self.step_arguments:
            args.append(ctypes.c_longlong(1))
        args += [ctypes.c_float(inv_t), ctypes.c_int(int(greedy)), ctypes.c_void_p(tokens.data_ptr()),
                 ctypes.c_void_p(logprobs.data_ptr())]
        if self.step_arguments:
            args += [null] * 5
        self.launch("seekmath_sample_rows", (b, 1, 1), (1024, 1, 1), 3 * tiles * 4, args)


class Attention(Module):
    """The decode-attention kernel; `warps`/`stages` override the kernel's defaults (None keeps them: 2 warps,
    2 stages), `source` another file of the same interface (an A/B baseline), `extra` more -D defines."""

    def __init__(self, head_dim, group, warps=None, stages=None, source="decode_attention.cu", extra=None):
        defines = {"SEEKMATH_KIND": 1, "HEAD_DIM": head_dim, "GROUP": group, **(extra or {})}
        if warps is not None:
            defines["WARPS"] = warps
        if stages is not None:
            defines["STAGES"] = stages
        names = ["seekmath_decode_attention_partial", "seekmath_decode_attention_combine"]
        if source == "decode_attention.cu":
            names.append("seekmath_decode_attention_rope")
        super().__init__(source, defines, names)
        self.d, self.g = head_dim, group
        self.threads = 32 * (warps or 2)
        self.smem = (stages or 2) * 2 * 64 * (head_dim + 8) * 2

    def plan(self, b, kvh, attended):
        """(splits, tiles per split) as the shim chooses them (seekmath_decode_attention_plan): split only while each
        split keeps four 64-key tiles and all blocks fit on the GPU at once."""
        tiles = (attended + 63) // 64
        props = torch.cuda.get_device_properties(0)
        per_sm = max(1, props.shared_memory_per_multiprocessor // (self.smem + 1024))
        splits = max(1, min(tiles // 4, props.multi_processor_count * per_sm // max(1, b * kvh), 256))
        per = -(-tiles // splits)
        return -(-tiles // per), per

    def rope(self, qkv, cos, sin, heads, keys, values, starts, slots, attended, norm=None):
        """seekmath_decode_attention_rope: RoPE, the K/V write at slots[b] and attention in one kernel (one split
        or more, merged as in __call__). qkv [B, (H + 2 KVH) D], cos/sin [B, D]; `norm` as for folded_norm_args;
        returns [B, H, D]."""
        b, kvh = keys.shape[0], keys.shape[1]
        splits, per = self.plan(b, kvh, attended)
        pm = torch.empty(b, kvh, splits, self.g, device=qkv.device)
        ps, pa = torch.empty_like(pm), torch.empty(b, kvh, splits, self.g, self.d, device=qkv.device)
        out = torch.empty(b, heads, self.d, device=qkv.device, dtype=qkv.dtype)
        scale = (1.0 / self.d ** 0.5) * 1.4426950408889634
        self.cu.cuFuncSetAttribute(self.funcs["seekmath_decode_attention_rope"], 8, self.smem)
        self.launch("seekmath_decode_attention_rope", (splits, kvh, b), (self.threads, 1, 1), self.smem,
                    [ctypes.c_void_p(qkv.data_ptr()), ctypes.c_longlong(qkv.stride(0)), ctypes.c_void_p(cos.data_ptr()),
                     ctypes.c_void_p(sin.data_ptr()), ctypes.c_longlong(cos.stride(0)), ctypes.c_int(heads),
                     ctypes.c_void_p(keys.data_ptr()), ctypes.c_void_p(values.data_ptr()),
                     ctypes.c_longlong(keys.stride(0)), ctypes.c_longlong(keys.stride(1)),
                     ctypes.c_void_p(starts.data_ptr()), ctypes.c_void_p(slots.data_ptr()), ctypes.c_float(scale),
                     ctypes.c_int(per), ctypes.c_void_p(pm.data_ptr()), ctypes.c_void_p(ps.data_ptr()),
                     ctypes.c_void_p(pa.data_ptr()), ctypes.c_void_p(out.data_ptr())] + folded_norm_args(norm))
        if splits > 1:
            self.launch("seekmath_decode_attention_combine", (kvh, b, 1), (128, 1, 1), 0,
                        [ctypes.c_void_p(pm.data_ptr()), ctypes.c_void_p(ps.data_ptr()), ctypes.c_void_p(pa.data_ptr()),
                         ctypes.c_int(splits), ctypes.c_void_p(out.data_ptr())])
        return out

    def __call__(self, q, keys, values, starts, slots, attended, phase=None):
        """q [B, H, D]; keys/values [B, KVH, S, D] head-major; returns [B, H, D]."""
        b, kvh = keys.shape[0], keys.shape[1]
        splits, per = self.plan(b, kvh, attended)
        parts = splits
        if phase is None or not hasattr(self, "_bufs") or self._bufs[0].shape[:3] != (b, kvh, parts):
            pm = torch.empty(b, kvh, parts, self.g, device=q.device)
            self._bufs = (pm, torch.empty_like(pm), torch.empty(b, kvh, parts, self.g, self.d, device=q.device),
                          torch.empty(b, kvh * self.g, self.d, device=q.device, dtype=q.dtype))
        pm, ps, pa, out = self._bufs
        scale = (1.0 / self.d ** 0.5) * 1.4426950408889634
        smem = self.smem
        self.cu.cuFuncSetAttribute(self.funcs["seekmath_decode_attention_partial"], 8, smem)
        if phase in (None, "partial"):
            self.launch("seekmath_decode_attention_partial", (splits, kvh, b), (self.threads, 1, 1), smem,
                        [ctypes.c_void_p(q.data_ptr()), ctypes.c_longlong(q.stride(0)), ctypes.c_void_p(keys.data_ptr()),
                         ctypes.c_void_p(values.data_ptr()), ctypes.c_longlong(keys.stride(0)),
                         ctypes.c_longlong(keys.stride(1)), ctypes.c_void_p(starts.data_ptr()),
                         ctypes.c_void_p(slots.data_ptr()), ctypes.c_float(scale), ctypes.c_int(per),
                         ctypes.c_void_p(pm.data_ptr()), ctypes.c_void_p(ps.data_ptr()), ctypes.c_void_p(pa.data_ptr()),
                         ctypes.c_void_p(out.data_ptr())])
        if phase in (None, "combine") and splits > 1:
            self.launch("seekmath_decode_attention_combine", (kvh, b, 1), (128, 1, 1), 0,
                        [ctypes.c_void_p(pm.data_ptr()), ctypes.c_void_p(ps.data_ptr()), ctypes.c_void_p(pa.data_ptr()),
                         ctypes.c_int(parts), ctypes.c_void_p(out.data_ptr())])
        return out


def reference_sample(logits, uniforms, temperature):
    x = logits.float()
    m = x.max(-1, keepdim=True).values
    w = ((x - m) / temperature).exp()
    cdf = w.cumsum(-1, dtype=torch.float64)
    target = uniforms.double().unsqueeze(-1) * cdf[:, -1:]
    tok = torch.searchsorted(cdf, target, right=True).clamp_max(x.shape[1] - 1).squeeze(-1)
    lp = x.gather(-1, tok.unsqueeze(-1)).squeeze(-1) - x.logsumexp(-1)
    return tok, lp


def aten_sampler(logits, uniforms):
    """The engine's previous ATen sampler at T = 1 (max, shift, exp, two-level inverse CDF)."""
    b, v = logits.shape
    max_, argmax = logits.max(-1, keepdim=True)
    max_ = max_.float()
    w = (logits - max_).exp()
    by = w.view(b, v // 128, 128)
    outer = by.sum(-1, dtype=torch.float32).cumsum(-1)
    total = outer[:, -1:]
    target = uniforms.unsqueeze(-1) * total
    blk = torch.searchsorted(outer, target, right=True).clamp_max(v // 128 - 1)
    before = outer.gather(-1, (blk - 1).clamp_min(0)) * (blk > 0)
    inner = by.gather(1, blk.unsqueeze(-1).expand(b, 1, 128)).squeeze(1).cumsum(-1)
    within = torch.searchsorted(inner, target - before, right=True).clamp_max(127)
    tok = blk * 128 + within
    tok = torch.where(w.gather(-1, tok) > 0, tok, argmax)
    lp = logits.gather(-1, tok).float() - (total.log() + max_)
    return tok, lp


def graph_time(fn, iters=50):
    """Microseconds per call of `fn`, replayed from a CUDA graph."""
    return timed_graph(fn, iters) * 1000.0


def check_sampler(report):
    torch.manual_seed(0)
    v = 151936
    for dtype, code in ((torch.bfloat16, 1), (torch.float32, 0), (torch.float16, 2)):
        k = Kernel(code)
        for b in (1, 7, 256):
            logits = (torch.randn(b, v, device="cuda") * 3).to(dtype)
            logits[:, 1000:1200] = float("-inf")
            u = torch.rand(b, device="cuda")
            for temperature in (1.0, 0.7):
                tok = torch.empty(b, dtype=torch.long, device="cuda")
                lp = torch.empty(b, dtype=torch.float32, device="cuda")
                k(logits, u, 1.0 / temperature, False, tok, lp)
                rt, rlp = reference_sample(logits, u, temperature)
                same = (tok == rt).float().mean().item()
                report.append(f"sampler {dtype} B={b} T={temperature}: same token as float64 reference {same:.4f}, "
                              f"log-prob max |diff| {(lp - rlp).abs().max().item():.2e}, "
                              f"masked picked {(tok >= 1000).logical_and(tok < 1200).sum().item()}")
            k(logits, u, 1.0, True, tok, lp)
            ref = logits.float().argmax(-1)
            report.append(f"sampler {dtype} B={b} greedy: argmax equal {(tok == ref).all().item()}, "
                          f"log-prob max |diff| {(lp - logits.float().log_softmax(-1).gather(-1, ref[:, None]).squeeze(-1)).abs().max().item():.2e}")
        # distribution check: many draws from one small-support row
    k = Kernel(1)
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4])
    row = torch.full((1, v), float("-inf"))
    row[0, [5, 70000, 70001, v - 1]] = probs.log()
    logits = row.to(torch.bfloat16).cuda().expand(20000, v).contiguous()
    u = torch.rand(20000, device="cuda")
    tok = torch.empty(20000, dtype=torch.long, device="cuda")
    lp = torch.empty(20000, device="cuda")
    k(logits, u, 1.0, False, tok, lp)
    counts = torch.stack([(tok == i).float().mean() for i in (5, 70000, 70001, v - 1)]).cpu()
    report.append(f"sampler frequencies over 20k draws of (0.1, 0.2, 0.3, 0.4): {counts.tolist()}")
    del logits
    torch.cuda.empty_cache()
    # time: kernel vs the previous ATen sampler, bf16; and the kernel with narrower tiles per warp (TILE logits; 256
    # was the default until session 9: more warp reductions per logit), checked against the float64 inverse CDF
    wider = {t: Kernel(1, extra={"TILE": t}) for t in (256, 512)}
    for b in (1, 64, 256, 512):
        logits = (torch.randn(b, v, device="cuda") * 3).to(torch.bfloat16)
        u = torch.rand(b, device="cuda")
        tok = torch.empty(b, dtype=torch.long, device="cuda")
        lp = torch.empty(b, device="cuda")
        t_k = graph_time(lambda: k(logits, u, 1.0, False, tok, lp))
        t_a = graph_time(lambda: aten_sampler(logits, u))
        gbs = b * v * 2 / (t_k * 1e-6) / 1e9
        line = f"sampler time B={b}: kernel {t_k:.1f} us ({gbs:.0f} GB/s of logits), ATen {t_a:.1f} us"
        ref_tok, ref_lp = reference_sample(logits, u, 1.0)
        k(logits, u, 1.0, False, tok, lp)
        line += f" (same token as float64 {(tok == ref_tok).float().mean().item():.4f})"
        for n, kernel in wider.items():
            kernel(logits, u, 1.0, False, tok, lp)
            agree = (tok == ref_tok).float().mean().item()
            lp_err = (lp - ref_lp)[tok == ref_tok].abs().max().item()
            kernel(logits, u, 1.0, True, tok, lp)
            greedy_ok = torch.equal(tok, logits.float().argmax(-1))
            line += (f"; TILE={n}: {graph_time(lambda: kernel(logits, u, 1.0, False, tok, lp)):.1f} us, same token as "
                     f"float64 {agree:.4f}, log-prob |diff| {lp_err:.1e}, greedy argmax {greedy_ok}")
        report.append(line)


def check_attention(report, batches=(1, 64, 256, 512)):
    torch.manual_seed(0)
    shapes = {"0.5b": (14, 2, 64), "1.5b": (12, 2, 128), "smollm2": (9, 3, 64), "mha": (4, 4, 128)}
    cap, attended = 640, 384
    for name, (h, kv, d) in shapes.items():
        kernel = Attention(d, h // kv)
        for b in (batches if name in ("0.5b", "1.5b") else (3,)):
            for slot in (5, 100, 287, 383):
                pads = torch.randint(0, 32, (b,), device="cuda", dtype=torch.int64).clamp_max(slot)
                store_k = torch.randn(b, kv, cap, d, device="cuda", dtype=torch.bfloat16)
                store_v = torch.randn(b, kv, cap, d, device="cuda", dtype=torch.bfloat16)
                qkv = torch.randn(b, h + 2 * kv, d, device="cuda", dtype=torch.bfloat16)
                q = qkv[:, :h]  # a view with the batch stride of the stacked projection, as in the engine
                keys = store_k[:, :, :attended]
                values = store_v[:, :, :attended]
                ids = torch.arange(attended, device="cuda")
                valid = (ids[None, :] >= pads[:, None]) & (ids[None, :] <= slot)
                bias = valid.to(torch.bfloat16).log().view(b, 1, 1, attended)
                qg = q.reshape(b, kv, h // kv, d)
                slots = torch.full((b, 1), slot, device="cuda", dtype=torch.int64)

                def sdpa():
                    return torch.nn.functional.scaled_dot_product_attention(qg, keys, values, attn_mask=bias)

                def mine():
                    return kernel(q, store_k, store_v, pads, slots, attended)

                ref = torch.nn.functional.scaled_dot_product_attention(
                    qg.float(), keys.float(), values.float(), attn_mask=valid.view(b, 1, 1, attended)).reshape(b, h, d)
                a = sdpa().reshape(b, h, d).float()
                f = mine().float()
                line = (f"attention {name} B={b} slot={slot}: |kernel - f32 ref| {(f - ref).abs().max().item():.2e}, "
                        f"|SDPA bf16 - f32 ref| {(a - ref).abs().max().item():.2e}")
                if slot == 287:
                    kv_bytes = 2 * (slot + 1 - pads).sum().item() * kv * d * 2
                    t_s = graph_time(sdpa)
                    t_k = graph_time(mine)
                    t_p = graph_time(lambda: kernel(q, store_k, store_v, pads, slots, attended, "partial"))
                    t_c = (graph_time(lambda: kernel(q, store_k, store_v, pads, slots, attended, "combine"))
                           if kernel.plan(b, kv, attended)[0] > 1 else 0.0)
                    anchor = torch.empty(kv_bytes // 2, device="cuda", dtype=torch.bfloat16)
                    t_a = graph_time(lambda: anchor.sum())
                    del anchor
                    splits, per = kernel.plan(b, kv, attended)
                    line += (f"; per call SDPA {t_s:.1f} us ({kv_bytes / (t_s * 1e-6) / 1e12:.2f} TB/s), kernel "
                             f"{t_k:.1f} us ({kv_bytes / (t_k * 1e-6) / 1e12:.2f} TB/s; partial {t_p:.1f} + combine {t_c:.1f}, "
                             f"{splits} splits x {per} tiles) on {kv_bytes / 1e6:.1f} MB of valid K/V; "
                             f"anchor: sum of as many bf16 bytes {t_a:.1f} us ({kv_bytes / (t_a * 1e-6) / 1e12:.2f} TB/s)")
                report.append(line)
                del store_k, store_v
                torch.cuda.empty_cache()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("--only", choices=["sampler", "attention"], default=None)
    p.add_argument("--batches", default="1,64,256,512", help="attention batch sizes of the 0.5B/1.5B shapes")
    a = p.parse_args()
    report = [f"device {torch.cuda.get_device_name()}, torch {torch.__version__}"]
    try:
        if a.only in (None, "sampler"):
            check_sampler(report)
    except Exception as e:  # report and go on to the attention part
        report.append(f"sampler FAILED: {type(e).__name__}: {e}")
    print("\n".join(report), flush=True)
    if a.only in (None, "attention"):
        check_attention(report, tuple(int(x) for x in a.batches.split(",")))
    text = "\n".join(report)
    print(text)
    with open(os.path.join(a.out, "decode_kernels.txt"), "w") as fh:
        fh.write(text + "\n")


if __name__ == "__main__":
    main()
