#!/usr/bin/env python3
"""Independent reference for `seekmath eval`: greedy decoding of the *same prompts* with Hugging Face transformers.

Reads a benchmark run directory written by `seekmath eval` (`<output>/<bench>/run.json` for max_new_tokens and stop
strings, `items.jsonl` for the exact prompts) and writes one JSON line per item,
`{"index", "id", "completion", "num_tokens"}`, to `--out` (default `<run>/hf_completions.jsonl`). Compare with
`seekmath eval --compare <that file> --bench <bench> --output <output>`, which extracts both sides with the same
extractor and reports per-item agreement.

The model is a Hugging Face folder or a `.gguf` file (transformers dequantises GGUF weights to float32 on load).
Prompts are tokenised with the tokenizer's defaults (`add_special_tokens=True`), as the seekmath adapter does.
Batch size 1 by default: padding changes float rounding, and parity is about identical numerics.
"""
import argparse
import json
import os
import sys
import time


def load(model_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if model_path.endswith(".gguf"):
        folder, name = os.path.split(os.path.abspath(model_path))
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32)
    else:
        tok = AutoTokenizer.from_pretrained(model_path)
        model = AutoModelForCausalLM.from_pretrained(model_path, torch_dtype=torch.float32)
    model.eval()
    return tok, model


def cut_at_stop(text, stops):
    cut = len(text)
    for s in stops:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="benchmark run directory (holds run.json and items.jsonl)")
    ap.add_argument("--model", required=True, help="HF model folder or .gguf file")
    ap.add_argument("--out", help="output JSONL (default: <run>/hf_completions.jsonl)")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="only the first N items")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--shard", default="0/1", help="K/N: only items K, K+N, K+2N, ... (run N processes, concatenate)")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with open(os.path.join(args.run, "run.json")) as f:
        config = json.load(f)
    if config.get("temperature", 0) != 0 or config.get("samples", 1) != 1:
        sys.exit("hf_greedy.py reproduces greedy single-sample runs only")
    items = []
    with open(os.path.join(args.run, "items.jsonl")) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                items.append((r["index"], r["id"], r["prompt"]))
    items.sort()
    if args.limit is not None:
        items = items[: args.limit]
    shard, shards = (int(x) for x in args.shard.split("/"))
    if not 0 <= shard < shards:
        sys.exit(f"--shard {args.shard}: want K/N with 0 <= K < N")
    items = items[shard::shards]
    stops = config.get("stop", [])
    max_new = int(config["max_new_tokens"])

    tok, model = load(args.model)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    out_path = args.out or os.path.join(args.run, "hf_completions.jsonl")
    start = time.time()
    generated = 0
    with open(out_path, "w") as out:
        for b in range(0, len(items), args.batch_size):
            batch = items[b : b + args.batch_size]
            enc = tok([p for _, _, p in batch], return_tensors="pt", padding=True)
            with torch.no_grad():
                gen = model.generate(
                    **enc,
                    do_sample=False,
                    max_new_tokens=max_new,
                    stop_strings=stops or None,
                    tokenizer=tok,
                    pad_token_id=tok.pad_token_id,
                )
            for row, (index, item_id, _) in enumerate(batch):
                new_ids = gen[row, enc["input_ids"].shape[1] :].tolist()
                # Drop padding after EOS and the EOS itself.
                eos = tok.eos_token_id
                eos_ids = set(eos if isinstance(eos, list) else [eos])
                for k, t in enumerate(new_ids):
                    if t in eos_ids:
                        new_ids = new_ids[:k]
                        break
                text = cut_at_stop(tok.decode(new_ids, skip_special_tokens=True), stops)
                generated += len(new_ids)
                out.write(json.dumps({"index": index, "id": item_id, "completion": text, "num_tokens": len(new_ids)}, ensure_ascii=False) + "\n")
            out.flush()
            done = b + len(batch)
            rate = generated / max(time.time() - start, 1e-9)
            print(f"hf_greedy: {done}/{len(items)} items, {rate:.1f} tok/s", file=sys.stderr, flush=True)
    print(f"hf_greedy: wrote {out_path} in {time.time() - start:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
