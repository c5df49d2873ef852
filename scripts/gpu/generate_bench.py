"""The transformers side of scripts/gpu/generate_bench.sh, and the shared random-weight model folders.

    generate_bench.py make  --shape 0.5b|1.5b|tiny --out DIR     random Qwen2.5-shaped weights, save_pretrained
                                                               (bf16 safetensors + a word-level tokenizer.json)
    generate_bench.py run   --model DIR --batch-sizes 1,64 --new-tokens 512 --prompt-len 32 --json OUT
                                                               transformers `generate` tokens/s, EOS ignored
    generate_bench.py report DIR                               markdown table from DIR/*.json

Both engines load the same folder, so they decode the same weights.
"""

import argparse
import glob
import json
import os
import time

SHAPES = {
    # Qwen2.5-0.5B and -1.5B configs (architecture only; weights are random).
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    # For checking the pipeline on a CPU.
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512, tie_word_embeddings=True),
}


def make(shape, out):
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(0)
    cfg = Qwen2Config(max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
                      bos_token_id=0, eos_token_id=1, pad_token_id=1, **SHAPES[shape])
    model = AutoModelForCausalLM.from_config(cfg).to(torch.bfloat16)
    model.save_pretrained(out)
    vocab = {f"t{i}": i for i in range(cfg.vocab_size)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="t0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(os.path.join(out, "tokenizer.json"))
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "t0", "eos_token": "t1", "pad_token": "t1", "unk_token": "t0"}, f)


def run(model_dir, batch_sizes, new_tokens, prompt_len, warmup_tokens, temperature, out):
    import torch
    from transformers import AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa").to(device).eval()
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(7)
    rows = []
    for batch in batch_sizes:
        ids = torch.randint(16, vocab, (batch, prompt_len), generator=gen).to(device)
        mask = torch.ones_like(ids)
        kwargs = dict(attention_mask=mask, do_sample=temperature > 0, top_p=1.0, top_k=0,
                      pad_token_id=model.config.pad_token_id, eos_token_id=None)
        if temperature > 0:
            kwargs["temperature"] = temperature
        with torch.no_grad():
            model.generate(ids, max_new_tokens=warmup_tokens, min_new_tokens=warmup_tokens, **kwargs)
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            out_ids = model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **kwargs)
            if device == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
        generated = (out_ids.shape[1] - prompt_len) * batch
        rows.append(dict(batch=batch, new_tokens=new_tokens, seconds=seconds, tokens_per_s=generated / seconds))
        print(f"transformers batch {batch}: {generated / seconds:.1f} tok/s", flush=True)
    import transformers
    report = dict(engine="transformers", version=transformers.__version__, torch=torch.__version__,
                  model=model_dir, device=device, dtype=str(dtype), prompt_len=prompt_len,
                  temperature=temperature, results=rows)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)


def report(folder):
    lines = ["| shape | batch | seekmath tok/s (steady) | seekmath tok/s (first call) | transformers tok/s | "
             "speed-up (steady / first) | HBM fraction (steady) | ms per step |",
             "|---|---|---|---|---|---|---|---|"]
    ok = True
    for path in sorted(glob.glob(os.path.join(folder, "*.seekmath.json"))):
        shape = os.path.basename(path).split(".seekmath.json")[0]
        ours = json.load(open(path))
        theirs_path = os.path.join(folder, f"{shape}.transformers.json")
        theirs = json.load(open(theirs_path)) if os.path.exists(theirs_path) else {"results": []}
        by_batch = {r["batch"]: r for r in theirs["results"]}
        for r in ours["results"]:
            t = by_batch.get(r["batch"])
            cold = r.get("cold_tokens_per_s", r["tokens_per_s"])
            theirs_tps = t["tokens_per_s"] if t else float("nan")
            speedup, cold_speedup = r["tokens_per_s"] / theirs_tps, cold / theirs_tps
            ok &= bool(t) and min(speedup, cold_speedup) >= 10
            step_ms = r["seconds"] * 1e3 / r["new_tokens"]
            lines.append(f"| {shape} | {r['batch']} | {r['tokens_per_s']:.0f} | {cold:.0f} | {theirs_tps:.0f} | "
                         f"{speedup:.1f}x / {cold_speedup:.1f}x | {r['hbm_fraction']:.3f} | {step_ms:.2f} |")
            if r.get("profile"):
                p = r["profile"]
                lines.append(f"|  | profile: prefill {p['prefill_s']*1e3:.1f} ms, setup {p['setup_s']*1e3:.1f} ms, "
                             f"capture {p['capture_s']*1e3:.1f} ms ({p['graphs_captured']} graphs), steps "
                             f"{p['ms_per_step']:.3f} ms each, readback {p['readback_s']*1e3:.1f} ms, "
                             f"host {p['host_s']*1e3:.1f} ms | | | | | |")
    print("\n".join(lines))
    print(f"\n>= 10x at every batch size (steady state and first call): {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--shape", choices=sorted(SHAPES), required=True)
    m.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--model", required=True)
    r.add_argument("--batch-sizes", default="1,64,256,512")
    r.add_argument("--new-tokens", type=int, default=512)
    r.add_argument("--prompt-len", type=int, default=32)
    r.add_argument("--warmup-tokens", type=int, default=16)
    r.add_argument("--temperature", type=float, default=1.0)
    r.add_argument("--json", required=True)
    s = sub.add_parser("report")
    s.add_argument("folder")
    a = p.parse_args()
    if a.cmd == "make":
        make(a.shape, a.out)
    elif a.cmd == "run":
        run(a.model, [int(b) for b in a.batch_sizes.split(",")], a.new_tokens, a.prompt_len, a.warmup_tokens,
            a.temperature, a.json)
    else:
        report(a.folder)
