"""Reference runs of official fastText (pip fasttext / fasttext-wheel) for seekmath's parity tests and benchmarks.

Usage:
  fasttext_ref.py predict MODEL LINES_FILE K        -> one JSON list [[label, prob], ...] per input line
  fasttext_ref.py train INPUT OUTPUT KEY=VALUE...   -> trains a supervised model, prints {"seconds": s, "words": n}
  fasttext_ref.py bench MODEL LINES_FILE REPEAT     -> prints {"seconds": s, "docs": n} for predicting every line
"""
import json
import sys
import time

import fasttext

fasttext.FastText.eprint = lambda *a, **k: None


def predict(model, line, k):
    """fastText's Python `predict` (appends the newline that ends the example) without its numpy-2-incompatible
    array conversion."""
    return [(label, float(prob)) for prob, label in model.f.predict(line + "\n", k, 0.0, "strict")]


def lines_of(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def main():
    cmd = sys.argv[1]
    if cmd == "predict":
        model = fasttext.load_model(sys.argv[2])
        k = int(sys.argv[4])
        out = sys.stdout
        for line in lines_of(sys.argv[3]):
            out.write(json.dumps([[l, p] for l, p in predict(model, line, k)]) + "\n")
    elif cmd == "train":
        kwargs = {}
        for kv in sys.argv[4:]:
            key, value = kv.split("=", 1)
            kwargs[key] = value if key == "loss" else (float(value) if key == "lr" else int(value))
        start = time.perf_counter()
        model = fasttext.train_supervised(input=sys.argv[2], verbose=0, **kwargs)
        seconds = time.perf_counter() - start
        model.save_model(sys.argv[3])
        words = sum(len(line.split()) for line in lines_of(sys.argv[2]))
        print(json.dumps({"seconds": seconds, "words": words}))
    elif cmd == "bench":
        model = fasttext.load_model(sys.argv[2])
        lines = lines_of(sys.argv[3])
        repeat = int(sys.argv[4])
        start = time.perf_counter()
        for _ in range(repeat):
            for line in lines:
                predict(model, line, 1)
        print(json.dumps({"seconds": time.perf_counter() - start, "docs": len(lines) * repeat}))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
