"""A/B timings for the decode step's kernels on the GPU host, from PyTorch (no Rust binary):

1. decode attention: the kernel at several (warps, stages) settings, and optionally a baseline file of the same
   interface, on the 0.5B/1.5B shapes at the bench's batch sizes: max |diff| against an f32 reference and the time
   per call replayed from a CUDA graph;
2. the sampler against a baseline file: the same tokens for the same uniforms, and the time;
3. the decode step's matrix products (M = batch rows): every algorithm cuBLASLt's heuristic offers for each, timed,
   next to the ATen call the engine makes (`linear` with bias, `addmm_` with the residual, `mm`).

    python scripts/gpu/decode_tune.py [--baseline DIR] [--only attention,sampler,gemm] [--out DIR]

DIR holds `decode_attention.cu` / `sample_rows.cu` of an earlier commit (e.g. `git show REV:crates/shim/kernels/...`).
"""
import argparse
import ctypes
import glob
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decode_kernels import Attention, Kernel, graph_time  # noqa: E402  (a sibling script)

SHAPES = {"0.5b": dict(C=896, I=4864, H=14, KV=2, D=64, V=151936),
          "1.5b": dict(C=1536, I=8960, H=12, KV=2, D=128, V=151936)}


def relative_to_kernels(path):
    """A path as Module wants it: relative to crates/shim/kernels."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.relpath(os.path.abspath(path), os.path.join(root, "crates/shim/kernels"))


def rotated_time(fn, copies, iters=20):
    """Microseconds per call of fn(i) over `copies` inputs in turn, replayed from one CUDA graph: with more bytes in
    the copies than L2 holds (50 MB on an H200), every call reads from HBM, as each layer of a forward does."""
    return graph_time(lambda: [fn(i) for i in range(copies)], iters=iters) / copies


def attention(report, baseline, batches, settings, cold):
    torch.manual_seed(0)
    for name in ("0.5b", "1.5b"):
        s = SHAPES[name]
        h, kv, d = s["H"], s["KV"], s["D"]
        kernels = []
        if baseline:
            kernels.append(("baseline", Attention(d, h // kv, warps=4, source=relative_to_kernels(
                os.path.join(baseline, "decode_attention.cu")))))
        for warps, stages in settings:
            kernels.append((f"warps {warps} stages {stages}", Attention(d, h // kv, warps=warps, stages=stages)))
        for b in batches:
            for slot, attended, cap in ((287, 384, 640), (543, 576, 640)):
                pads = torch.randint(0, 32, (b,), device="cuda", dtype=torch.int64)
                store_k = torch.randn(b, kv, cap, d, device="cuda", dtype=torch.bfloat16)
                store_v = torch.randn(b, kv, cap, d, device="cuda", dtype=torch.bfloat16)
                qkv = torch.randn(b, h + 2 * kv, d, device="cuda", dtype=torch.bfloat16)
                q = qkv[:, :h]
                ids = torch.arange(attended, device="cuda")
                valid = (ids[None, :] >= pads[:, None]) & (ids[None, :] <= slot)
                ref = F.scaled_dot_product_attention(
                    q.reshape(b, kv, h // kv, d).float(), store_k[:, :, :attended].float(),
                    store_v[:, :, :attended].float(), attn_mask=valid.view(b, 1, 1, attended)).reshape(b, h, d)
                slots = torch.full((b, 1), slot, device="cuda", dtype=torch.int64)
                kv_bytes = 2 * (slot + 1 - pads).sum().item() * kv * d * 2
                # Copies of the cache for cold (HBM) reads: enough for ~400 MB in all.
                copies = max(2, int(4e8 // (2 * store_k.numel() * 2))) if cold else 1
                caches = [(store_k, store_v)] + [(store_k.clone(), store_v.clone()) for _ in range(copies - 1)]
                cells = []
                for label, k in kernels:
                    diff = (k(q, store_k, store_v, pads, slots, attended).float() - ref).abs().max().item()
                    if cold:
                        t = rotated_time(lambda i: k(q, caches[i][0], caches[i][1], pads, slots, attended), copies)
                    else:
                        t = graph_time(lambda: k(q, store_k, store_v, pads, slots, attended), iters=100)
                    splits, _ = k.plan(b, kv, attended)
                    cells.append(f"{label}: {t:.1f} us {kv_bytes / (t * 1e-6) / 1e12:.2f} TB/s "
                                 f"({splits} split{'s' if splits > 1 else ''}, |diff| {diff:.1e})")
                if cold:
                    # Anchor: a bf16 `sum` over as many contiguous bytes as the live K/V, from HBM as well.
                    flat = [torch.empty(kv_bytes // 2, device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
                    t = rotated_time(lambda i: flat[i].sum(), copies)
                    cells.append(f"anchor (sum over as many bytes): {t:.1f} us {kv_bytes / (t * 1e-6) / 1e12:.2f} TB/s")
                    del flat
                report(f"attention {name} B={b} slot={slot}{' (cold: HBM reads)' if cold else ''}: " + "; ".join(cells))
                del store_k, store_v, caches
                torch.cuda.empty_cache()


def sampler(report, baseline, batches):
    torch.manual_seed(0)
    v = 151936
    new = Kernel(1)
    old = Kernel(1, source=relative_to_kernels(os.path.join(baseline, "sample_rows.cu"))) if baseline else None
    for b in batches:
        logits = (torch.randn(b, v, device="cuda") * 3).to(torch.bfloat16)
        logits[:, 1000:1200] = float("-inf")
        u = torch.rand(b, device="cuda")
        outs = {}
        for label, k in (("new", new), ("baseline", old)):
            if k is None:
                continue
            tok = torch.empty(b, dtype=torch.long, device="cuda")
            lp = torch.empty(b, device="cuda")
            draws = []
            for inv_t, greedy in ((1.0, False), (1.0 / 0.7, False), (1.0, True)):
                k(logits, u, inv_t, greedy, tok, lp)
                draws.append((tok.clone(), lp.clone()))
            t = graph_time(lambda: k(logits, u, 1.0, False, tok, lp), iters=100)
            outs[label] = (draws, t)
        line = f"sampler B={b}: new {outs['new'][1]:.1f} us ({b * v * 2 / (outs['new'][1] * 1e-6) / 1e12:.2f} TB/s)"
        if old is not None:
            same = all(torch.equal(a[0], c[0]) and torch.equal(a[1], c[1])
                       for a, c in zip(outs["new"][0], outs["baseline"][0]))
            line += f", baseline {outs['baseline'][1]:.1f} us; identical tokens and log-probs (T=1, T=0.7, greedy): {same}"
        report(line)


class Lt:
    """cuBLASLt through ctypes: row-major out[M, N] = x[M, K] @ w[N, K]^T (+ bias | + out), bf16, f32 compute."""

    def __init__(self):
        lib = None
        here = os.path.dirname(torch.__file__)
        for cand in glob.glob(os.path.join(os.path.dirname(here), "nvidia/cu*/lib/libcublasLt.so*")):
            lib = cand
        self.lt = ctypes.CDLL(lib or "libcublasLt.so")
        self.handle = ctypes.c_void_p()
        assert self.lt.cublasLtCreate(ctypes.byref(self.handle)) == 0
        self.workspace = torch.empty(32 << 20, dtype=torch.uint8, device="cuda")

    def _attr(self, set_fn, obj, attr, value):
        assert set_fn(obj, attr, ctypes.byref(value), ctypes.sizeof(value)) == 0

    def plan(self, m, n, k, bias=None, count=32):
        """The heuristic's algorithms for this product: [(algo bytes, workspace, waves)] plus the descriptors
        (β, whether the product accumulates into `out`, is set per call in `run`)."""
        lt = self.lt
        desc = ctypes.c_void_p()
        assert lt.cublasLtMatmulDescCreate(ctypes.byref(desc), 68, 0) == 0  # CUBLAS_COMPUTE_32F, CUDA_R_32F
        self._attr(lt.cublasLtMatmulDescSetAttribute, desc, 3, ctypes.c_int(1))  # TRANSA = T
        self._attr(lt.cublasLtMatmulDescSetAttribute, desc, 4, ctypes.c_int(0))  # TRANSB = N
        if bias is not None:
            self._attr(lt.cublasLtMatmulDescSetAttribute, desc, 7, ctypes.c_int(4))  # EPILOGUE_BIAS
            self._attr(lt.cublasLtMatmulDescSetAttribute, desc, 8, ctypes.c_void_p(bias.data_ptr()))
            self._attr(lt.cublasLtMatmulDescSetAttribute, desc, 26, ctypes.c_int(14))  # bias bf16
        layouts = []
        for rows, cols, ld in ((k, n, k), (k, m, k), (n, m, n)):  # A = w (K x N col-major), B = x, C = D = out
            layout = ctypes.c_void_p()
            assert lt.cublasLtMatrixLayoutCreate(ctypes.byref(layout), 14, ctypes.c_uint64(rows),
                                                 ctypes.c_uint64(cols), ctypes.c_int64(ld)) == 0
            layouts.append(layout)
        pref = ctypes.c_void_p()
        assert lt.cublasLtMatmulPreferenceCreate(ctypes.byref(pref)) == 0
        self._attr(lt.cublasLtMatmulPreferenceSetAttribute, pref, 1, ctypes.c_uint64(self.workspace.numel()))
        results = (ctypes.c_uint8 * (96 * count))()
        returned = ctypes.c_int()
        rc = lt.cublasLtMatmulAlgoGetHeuristic(self.handle, desc, layouts[0], layouts[1], layouts[2], layouts[2], pref,
                                               count, results, ctypes.byref(returned))
        assert rc == 0, rc
        algos = []
        for i in range(returned.value):
            raw = bytes(results[96 * i:96 * (i + 1)])
            state = int.from_bytes(raw[72:76], "little")
            if state == 0:
                algos.append((raw[:64], int.from_bytes(raw[64:72], "little"),
                              ctypes.c_float.from_buffer_copy(raw[76:80]).value))
        return desc, layouts, algos

    def run(self, desc, layouts, algo, x, w, out, accumulate):
        alpha, beta = ctypes.c_float(1.0), ctypes.c_float(1.0 if accumulate else 0.0)
        algo_buf = (ctypes.c_uint8 * 64).from_buffer_copy(algo)
        stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
        rc = self.lt.cublasLtMatmul(self.handle, desc, ctypes.byref(alpha), ctypes.c_void_p(w.data_ptr()), layouts[0],
                                    ctypes.c_void_p(x.data_ptr()), layouts[1], ctypes.byref(beta),
                                    ctypes.c_void_p(out.data_ptr()), layouts[2], ctypes.c_void_p(out.data_ptr()),
                                    layouts[2], algo_buf, ctypes.c_void_p(self.workspace.data_ptr()),
                                    ctypes.c_size_t(self.workspace.numel()), stream)
        assert rc == 0, rc


def gemm(report, batches):
    torch.manual_seed(0)
    lt = Lt()
    for name in ("0.5b", "1.5b"):
        s = SHAPES[name]
        C, I, H, KV, D = s["C"], s["I"], s["H"], s["KV"], s["D"]
        products = [("qkv (+bias)", (H + 2 * KV) * D, C, "bias"), ("o_proj (+=)", C, H * D, "acc"),
                    ("gate_up", 2 * I, C, None), ("down (+=)", C, I, "acc"), ("lm_head", s["V"], C, None)]
        for b in batches:
            total_aten, total_best = 0.0, 0.0
            for label, n, k, kind in products:
                x = torch.randn(b, k, device="cuda", dtype=torch.bfloat16)
                w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02
                bias = torch.randn(n, device="cuda", dtype=torch.bfloat16) if kind == "bias" else None
                out = torch.zeros(b, n, device="cuda", dtype=torch.bfloat16)
                if kind == "bias":
                    aten = lambda: F.linear(x, w, bias)  # noqa: E731
                elif kind == "acc":
                    aten = lambda: out.addmm_(x, w.t())  # noqa: E731
                else:
                    aten = lambda: torch.mm(x, w.t())  # noqa: E731
                t_aten = graph_time(aten, iters=200)
                if kind == "acc":
                    expect = out.float() + x.float() @ w.float().t()
                else:
                    expect = x.float() @ w.float().t() + (bias.float() if bias is not None else 0.0)
                desc, layouts, algos = lt.plan(b, n, k, bias=bias)
                timings = []
                for i, (algo, _, waves) in enumerate(algos):
                    if kind == "acc":
                        base = out.clone()
                        lt.run(desc, layouts, algo, x, w, out, True)
                        got = out.float()
                        expect_i = base.float() + x.float() @ w.float().t()
                        out.copy_(base)
                    else:
                        lt.run(desc, layouts, algo, x, w, out, False)
                        got, expect_i = out.float(), expect
                    err = (got - expect_i).abs().max().item() / max(1e-6, expect_i.abs().max().item())
                    t = graph_time(lambda: lt.run(desc, layouts, algo, x, w, out, kind == "acc"), iters=200)
                    timings.append((t, i, waves, err))
                timings.sort()
                flops = 2 * b * n * k
                best = timings[0] if timings else (float("nan"), -1, 0.0, 0.0)
                total_aten += t_aten
                total_best += min(best[0], t_aten)
                top = ", ".join(f"#{i} {t:.1f} us (waves {wv:.2f}, rel err {e:.1e})" for t, i, wv, e in timings[:4])
                report(f"gemm {name} B={b} {label} [{b}x{k}]x[{k}x{n}]: ATen {t_aten:.1f} us "
                       f"({flops / (t_aten * 1e-6) / 1e12:.0f} TFLOP/s); cuBLASLt heuristic, {len(algos)} algos, "
                       f"fastest: {top}")
                del x, w, out
            report(f"gemm {name} B={b}: sum over one layer's products + LM head: ATen {total_aten:.1f} us, "
                   f"best of each {total_best:.1f} us")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("--baseline", default=None, help="folder with baseline decode_attention.cu / sample_rows.cu")
    p.add_argument("--only", default="attention,sampler,gemm")
    p.add_argument("--batches", default="64,256,512")
    p.add_argument("--settings", default="2x2,4x2,2x3,4x3", help="attention warps x stages to time")
    p.add_argument("--cold", action="store_true", help="attention: time over cache copies larger than L2")
    a = p.parse_args()
    lines = [f"device {torch.cuda.get_device_name()}, torch {torch.__version__}"]
    path = os.path.join(a.out, "decode_tune.txt")

    def report(line):
        print(line, flush=True)
        lines.append(line)
        with open(path, "w") as fh:
            fh.write("\n".join(lines) + "\n")

    batches = [int(x) for x in a.batches.split(",")]
    parts = a.only.split(",")
    for part, fn in (("sampler", lambda: sampler(report, a.baseline, batches)),
                     ("attention", lambda: attention(report, a.baseline, batches,
                                                     [tuple(int(v) for v in s.split("x")) for s in a.settings.split(",")],
                                                     a.cold)),
                     ("gemm", lambda: gemm(report, batches))):
        if part in parts:
            try:
                fn()
            except Exception as e:  # report and go on with the next part
                report(f"{part} FAILED: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
