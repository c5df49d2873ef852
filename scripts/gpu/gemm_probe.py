"""How fast could a matrix-product kernel of our own be at the decode step's shapes? A probe, not engine code.

The decode step at batch 256 spends ~0.86 ms of ~1.7 in cuBLAS products of M = 256 rows (docs/benchmarks.md,
session 7). This times, for each product of the 0.5B/1.5B shapes, a plain Triton kernel (tiles, stages, warps and
split-K searched here) against ATen's call, both over 24 copies of the weights in turn (cold, as a forward reads
them) and replayed from a CUDA graph; and the same Triton kernel with the layer's RMSNorm applied to its input
rows on the fly (the norm's kernel then disappears). If Triton gets close to cuBLAS, a kernel of our own with the
fusions is worth writing; if it is far off, it is not.

    python scripts/gpu/gemm_probe.py [--out DIR] [--batches 256]
"""
import argparse
import itertools
import os
import sys

import torch
import triton
import triton.language as tl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decode_profile import timed_graph  # noqa: E402  (a sibling script)

SHAPES = {"0.5b": dict(C=896, I=4864, H=14, KV=2, D=64), "1.5b": dict(C=1536, I=8960, H=12, KV=2, D=128)}
COPIES = 24


@triton.jit
def matmul_kernel(x_ptr, w_ptr, out_ptr, norm_ptr, M, N, K, eps,
                  NORM: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, SPLIT: tl.constexpr):
    """out[M, N] (+)= (rmsnorm(x) if NORM else x)[M, K] @ w[N, K]^T; split-K adds f32 partials atomically (the
    probe's timings leave out zeroing and converting that f32 buffer)."""
    pid_m, pid_n, pid_k = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    sq = tl.zeros((BM,), dtype=tl.float32)
    k_per = tl.cdiv(K, SPLIT * BK) * BK
    for k0 in range(pid_k * k_per, tl.minimum((pid_k + 1) * k_per, K), BK):
        rk = k0 + tl.arange(0, BK)
        a = tl.load(x_ptr + rm[:, None] * K + rk[None, :], mask=(rm[:, None] < M) & (rk[None, :] < K), other=0.0)
        if NORM:
            g = tl.load(norm_ptr + rk, mask=rk < K, other=0.0)
            af = a.to(tl.float32)
            sq += tl.sum(af * af, axis=1)
            a = (af * g.to(tl.float32)[None, :]).to(tl.bfloat16)
        b = tl.load(w_ptr + rn[None, :] * K + rk[:, None], mask=(rn[None, :] < N) & (rk[:, None] < K), other=0.0)
        acc += tl.dot(a, b)
    if NORM:
        acc = acc * (1.0 / tl.sqrt(sq / K + eps))[:, None]
    mask = (rm[:, None] < M) & (rn[None, :] < N)
    if SPLIT == 1:
        tl.store(out_ptr + rm[:, None] * N + rn[None, :], acc.to(tl.bfloat16), mask=mask)
    else:
        tl.atomic_add(out_ptr + rm[:, None] * N + rn[None, :], acc, mask=mask)


def run(x, w, out, norm, cfg):
    bm, bn, bk, split, warps, stages = cfg
    m, k = x.shape
    n = w.shape[0]
    grid = (triton.cdiv(m, bm), triton.cdiv(n, bn), split)
    matmul_kernel[grid](x, w, out, norm if norm is not None else x, m, n, k, 1e-6, NORM=norm is not None,
                        BM=bm, BN=bn, BK=bk, SPLIT=split, num_warps=warps, num_stages=stages)


def probe(report, shape, batch):
    s = SHAPES[shape]
    C, I, H, KV, D = s["C"], s["I"], s["H"], s["KV"], s["D"]
    products = [("qkv", (H + 2 * KV) * D, C, True), ("o_proj", C, H * D, False), ("gate_up", 2 * I, C, True),
                ("down", C, I, False)]
    configs = [(bm, bn, 64, split, 4, stages)
               for bm, bn, split, stages in itertools.product((64, 128), (32, 64, 128), (1, 2, 4), (3, 4))]
    for name, n, k, normed in products:
        x = torch.randn(batch, k, device="cuda", dtype=torch.bfloat16)
        g = torch.rand(k, device="cuda", dtype=torch.bfloat16) + 0.5
        ws = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02 for _ in range(COPIES)]
        out = torch.empty(batch, n, device="cuda", dtype=torch.bfloat16)
        out32 = torch.zeros(batch, n, device="cuda", dtype=torch.float32)
        aten = timed_graph(lambda: [torch.mm(x, w.t()) for w in ws], 20) * 1e3 / COPIES
        norm_aten = timed_graph(lambda: [torch._fused_rms_norm(x, [k], g, 1e-6)[0] for _ in ws], 20) * 1e3 / COPIES
        ref = x.float() @ ws[0].float().t()
        ref_norm = torch._fused_rms_norm(x, [k], g, 1e-6)[0].float() @ ws[0].float().t()
        best = {}
        for fused in ((False, True) if normed else (False,)):
            for cfg in configs:
                split = cfg[3]
                if fused and split > 1:  # the norm needs whole rows
                    continue
                target = out if split == 1 else out32
                try:
                    target.zero_()
                    run(x, ws[0], target, g if fused else None, cfg)
                    err = (target.float() - (ref_norm if fused else ref)).abs().max().item()
                    if err > 0.05 * max(1.0, ref.abs().max().item()):
                        continue
                    t = timed_graph(lambda: [run(x, w, target, g if fused else None, cfg) for w in ws], 20) * 1e3 / COPIES
                except Exception:  # a config Triton cannot compile here (shared memory, registers)
                    continue
                if fused not in best or t < best[fused][0]:
                    best[fused] = (t, cfg, err)
        line = (f"probe {shape} B={batch} {name} [{batch}x{k}]x[{k}x{n}] cold weights: ATen mm {aten:.1f} us "
                f"({2 * batch * n * k / (aten * 1e-6) / 1e12:.0f} TFLOP/s)")
        if False in best:
            t, cfg, err = best[False]
            line += f"; Triton best {t:.1f} us (BM, BN, BK, split, warps, stages = {cfg}, |err| {err:.1e})"
        if True in best:
            t, cfg, err = best[True]
            line += (f"; Triton with RMSNorm fused {t:.1f} us {cfg} against ATen RMSNorm + mm "
                     f"{norm_aten + aten:.1f} us")
        report(line)
        del ws


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("--batches", default="256")
    p.add_argument("--shapes", default="0.5b")
    a = p.parse_args()
    lines = [f"device {torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}"]

    def report(line):
        print(line, flush=True)
        lines.append(line)
        with open(os.path.join(a.out, "gemm_probe.txt"), "w") as fh:
            fh.write("\n".join(lines) + "\n")

    for shape in a.shapes.split(","):
        for b in a.batches.split(","):
            probe(report, shape, int(b))


if __name__ == "__main__":
    main()
