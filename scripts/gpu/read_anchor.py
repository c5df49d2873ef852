"""How fast can the decode step's K/V bytes be read at all? Cold-cache timings (copies larger than L2, replayed from
one CUDA graph, as in decode_tune.py --cold) of the decode-attention kernel next to plain streaming reads of the
same bytes (scripts/gpu/read_anchor.cu): per (K/V head, row) region as the attention kernel reads them, and as one
flat buffer; plus ATen's `sum`, the anchor used so far.

    python scripts/gpu/read_anchor.py [--out DIR] [--variant STAGES=3 --variant WARPS=2,STAGES=3 ...]
        [--only-variants]

`--variant` also times the attention kernel compiled with those -D overrides, and says whether its output is
bit-identical to the default build's.
"""
import argparse
import ctypes
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decode_kernels import Attention, Module  # noqa: E402  (sibling scripts)
from decode_tune import SHAPES, relative_to_kernels, rotated_time  # noqa: E402

SOURCE = relative_to_kernels(os.path.join(os.path.dirname(os.path.abspath(__file__)), "read_anchor.cu"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("--variant", action="append", default=[], help="-D overrides, e.g. WARPS=2,STAGES=3")
    p.add_argument("--only-variants", action="store_true", help="skip the plain reads and the ATen sum")
    p.add_argument("--baseline", help="a decode_attention.cu of the same interface (e.g. an earlier commit's) to time")
    a = p.parse_args()
    variants = [{k: int(v) for k, v in (kv.split("=") for kv in spec.split(","))} for spec in a.variant]
    report = [f"device {torch.cuda.get_device_name()}, torch {torch.__version__}"]
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    readers = {(t, u): Module(SOURCE, {"READ_THREADS": t, "UNROLL": u}, ["read_regions", "read_flat"])
               for t, u in ((128, 4), (256, 4), (256, 8), (1024, 2))}
    sink = torch.zeros(1 << 20, dtype=torch.int32, device="cuda")
    torch.manual_seed(0)
    for name, b, slot in (("0.5b", 256, 287), ("0.5b", 256, 383), ("0.5b", 64, 287), ("0.5b", 512, 543),
                          ("1.5b", 256, 287), ("1.5b", 64, 543)):
        s = SHAPES[name]
        h, kv, d = s["H"], s["KV"], s["D"]
        cap = slot + 1
        attention = Attention(d, h // kv)
        starts = torch.randint(0, 32, (b,), device="cuda", dtype=torch.int64)
        slots = torch.full((b,), slot, device="cuda", dtype=torch.int64)
        kv_bytes = 2 * (slot + 1 - starts).sum().item() * kv * d * 2
        copies = max(2, int(4e8 // (2 * b * kv * cap * d * 2)))
        caches = [(torch.randn(b, kv, cap, d, device="cuda", dtype=torch.bfloat16),
                   torch.randn(b, kv, cap, d, device="cuda", dtype=torch.bfloat16)) for _ in range(copies)]
        q = torch.randn(b, h, d, device="cuda", dtype=torch.bfloat16)
        cells = []

        def rate(t):
            return f"{t:.1f} us {kv_bytes / (t * 1e-6) / 1e12:.2f} TB/s"

        t = rotated_time(lambda i: attention(q, caches[i][0], caches[i][1], starts, slots.view(b, 1), cap), copies)
        cells.append(f"attention kernel {rate(t)}")
        reference = attention(q, caches[0][0], caches[0][1], starts, slots.view(b, 1), cap).clone()
        builds = [(",".join(f"{k}={v}" for k, v in defines.items()),
                   Attention(d, h // kv, stages=defines.get("STAGES"), warps=defines.get("WARPS"), extra=defines))
                  for defines in variants]
        if a.baseline:
            builds.append(("baseline", Attention(d, h // kv, source=relative_to_kernels(a.baseline))))
        for label, variant in builds:
            same = torch.equal(variant(q, caches[0][0], caches[0][1], starts, slots.view(b, 1), cap), reference)
            t = rotated_time(lambda i: variant(q, caches[i][0], caches[i][1], starts, slots.view(b, 1), cap), copies)
            cells.append(f"attention {label} {rate(t)} (identical {same})")
        if a.only_variants:
            report.append(f"{name} B={b} slot={slot}, {kv_bytes / 2**20:.1f} MiB live K/V: " + "; ".join(cells))
            print(report[-1], flush=True)
            del caches
            torch.cuda.empty_cache()
            continue
        for (threads, unroll), m in readers.items():
            def regions(i, m=m, threads=threads):
                k, v = caches[i]
                m.launch("read_regions", (kv, b, 1), (threads, 1, 1), 0,
                         [ctypes.c_void_p(k.data_ptr()), ctypes.c_void_p(v.data_ptr()),
                          ctypes.c_longlong(k.stride(0) * 2), ctypes.c_longlong(k.stride(1) * 2), ctypes.c_int(d * 2),
                          ctypes.c_void_p(starts.data_ptr()), ctypes.c_void_p(slots.data_ptr()),
                          ctypes.c_void_p(sink.data_ptr())])
            cells.append(f"regions {threads}x{unroll} {rate(rotated_time(regions, copies))}")
        flat = [torch.empty(kv_bytes // 16 * 8, device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
        for (threads, unroll) in ((256, 8), (1024, 2)):
            m = readers[(threads, unroll)]
            for per_sm in (2, 4, 8):
                def flat_read(i, m=m, threads=threads, per_sm=per_sm):
                    m.launch("read_flat", (sms * per_sm, 1, 1), (threads, 1, 1), 0,
                             [ctypes.c_void_p(flat[i].data_ptr()), ctypes.c_longlong(flat[i].numel() * 2),
                              ctypes.c_void_p(sink.data_ptr())])
                cells.append(f"flat {threads}x{unroll} {per_sm}/SM {rate(rotated_time(flat_read, copies))}")
        cells.append(f"ATen sum {rate(rotated_time(lambda i: flat[i].sum(), copies))}")
        report.append(f"{name} B={b} slot={slot}, {kv_bytes / 2**20:.1f} MiB live K/V, {copies} copies: " + "; ".join(cells))
        print(report[-1], flush=True)
        del caches, flat
        torch.cuda.empty_cache()
    with open(os.path.join(a.out, "read_anchor.txt"), "w") as fh:
        fh.write("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
