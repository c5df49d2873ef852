#!/usr/bin/env python3
"""Side-by-side of seekmath-verify and Hugging Face math-verify on the same labelled pairs.

Scores every pair of crates/verify/tests/data/labelled_pairs.jsonl with math-verify (`verify(parse(gold), parse(pred))`,
both answers wrapped in `$...$` as math-verify's README recommends for bare LaTeX) and with seekmath (the
`score_pairs` example, release build), then prints accuracy, per-category errors, checks/s and the worst latency of
each. math-verify runs in this process on the main thread, so its own SIGALRM timeouts (5 s) are active.

Usage: .venv/bin/python crates/verify/bench/compare_math_verify.py [--pairs FILE] [--json OUT] [--no-build]
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CRATE = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(CRATE))


def load(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def run_math_verify(pairs):
    from math_verify import parse, verify

    verdicts, times = [], []
    for p in pairs:
        start = time.perf_counter()
        try:
            gold = parse(f"${p['gold']}$")
            pred = parse(f"${p['pred']}$")
            ok = bool(verify(gold, pred))
        except Exception:  # math-verify raises on some malformed inputs; count as "not equal"
            ok = False
        times.append(time.perf_counter() - start)
        verdicts.append(ok)
    return verdicts, times


def run_seekmath(pairs_path, build):
    target = os.environ.get("CARGO_TARGET_DIR", "/work/target-verify")
    exe = os.path.join(target, "release", "examples", "score_pairs")
    if build or not os.path.exists(exe):
        subprocess.run(["cargo", "build", "--release", "-p", "seekmath-verify", "--example", "score_pairs"],
                       cwd=ROOT, check=True, env={**os.environ, "CARGO_TARGET_DIR": target})
    out = subprocess.run([exe, pairs_path, "strict"], capture_output=True, text=True, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    per_pair = [r for r in rows if "summary" not in r]
    return [r["equal"] for r in per_pair], [r["ns"] / 1e9 for r in per_pair]


def report(name, pairs, verdicts, times):
    wrong = [(p, v) for p, v in zip(pairs, verdicts) if v != p["label"]]
    by_cat = collections.Counter(p["category"] for p, _ in wrong)
    total = sum(times)
    result = {
        "name": name,
        "pairs": len(pairs),
        "accuracy": 1 - len(wrong) / len(pairs),
        "false_positives": sum(1 for p, v in wrong if v),
        "false_negatives": sum(1 for p, v in wrong if not v),
        "checks_per_s": len(pairs) / total if total else float("inf"),
        "worst_ms": max(times) * 1e3,
        "errors_by_category": dict(by_cat.most_common()),
    }
    print(f"== {name}: accuracy {result['accuracy']:.4f} ({len(wrong)} wrong: {result['false_positives']} false "
          f"positives, {result['false_negatives']} false negatives); {result['checks_per_s']:.1f} checks/s; "
          f"worst {result['worst_ms']:.2f} ms")
    for cat, n in by_cat.most_common():
        print(f"   {cat:20s} {n}")
    return result, wrong


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default=os.path.join(CRATE, "tests", "data", "labelled_pairs.jsonl"))
    ap.add_argument("--json", help="write the summary here")
    ap.add_argument("--no-build", action="store_true", help="use an existing score_pairs build")
    ap.add_argument("--show-errors", type=int, default=25, help="print this many math-verify errors")
    args = ap.parse_args()
    pairs = load(args.pairs)
    try:
        import math_verify  # noqa: F401
    except ImportError:
        print("math-verify is not installed in this Python (pip install math-verify); skipping", file=sys.stderr)
        return 0
    sk_verdicts, sk_times = run_seekmath(args.pairs, build=not args.no_build)
    mv_verdicts, mv_times = run_math_verify(pairs)
    sk, sk_wrong = report("seekmath-verify (strict)", pairs, sk_verdicts, sk_times)
    mv, mv_wrong = report("math-verify", pairs, mv_verdicts, mv_times)
    ratio = sk["checks_per_s"] / mv["checks_per_s"]
    print(f"speed ratio (checks/s seekmath / math-verify): {ratio:.0f}x")
    for p, v in mv_wrong[: args.show_errors]:
        print(f"   math-verify said {v}: gold={p['gold'][:60]!r} pred={p['pred'][:60]!r} ({p['reason']})")
    for p, v in sk_wrong:
        print(f"   seekmath said {v}: gold={p['gold'][:60]!r} pred={p['pred'][:60]!r} ({p['reason']})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"seekmath": sk, "math_verify": mv, "speed_ratio": ratio}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
