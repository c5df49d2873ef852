"""The plain PyTorch/transformers training loop that `train_bench.sh` runs beside seekmath.

Same recipe as `seekmath train pretrain` with `precision = "bf16-autocast"`: a LlamaForCausalLM with f32 master
weights, bf16 autocast, SDPA attention, token-mean cross-entropy, clip_grad_norm_(1.0), fused AdamW
(β=(0.9, 0.95), weight decay 0.1 on matrices), gradient accumulation over micro-batches. Random tokens (throughput
does not depend on them). Prints one JSON line with tokens/s and MFU (same FLOP formula as seekmath).

    python torch_train_loop.py --config config.json --context 4096 --micro-batch 4 --accum 2 --steps 12 --warmup 3
"""
import argparse
import json
import statistics
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

PEAK = {"h200": 989e12, "h100": 989e12, "a100": 312e12}


def flops_per_token(model, cfg, context):
    total = sum(p.numel() for p in model.parameters())
    v, d = cfg.vocab_size, cfg.hidden_size
    emb = v * d if cfg.tie_word_embeddings else 2 * v * d
    return 6.0 * (total - emb + v * d) + 12.0 * cfg.num_hidden_layers * d * context


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--context", type=int, default=4096)
    ap.add_argument("--micro-batch", type=int, default=4)
    ap.add_argument("--accum", type=int, default=2)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--peak-flops", type=float, default=0.0)
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = True
    cfg = LlamaConfig(**json.load(open(args.config)))
    cfg._attn_implementation = "sdpa"
    device = torch.device("cuda")
    model = LlamaForCausalLM(cfg).to(device=device, dtype=torch.float32)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "norm" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "norm" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8, fused=True)
    ids = torch.randint(0, cfg.vocab_size, (args.accum, args.micro_batch, args.context + 1), device=device)
    fpt = flops_per_token(model, cfg, args.context)
    name = torch.cuda.get_device_name(0)
    peak = args.peak_flops or next((v for k, v in PEAK.items() if k in name.lower()), 0.0)
    times = []
    for step in range(args.steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        n_targets = args.accum * args.micro_batch * args.context
        for a in range(args.accum):
            x, y = ids[a, :, :-1], ids[a, :, 1:]
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(input_ids=x).logits
            loss = torch.nn.functional.cross_entropy(logits.float().view(-1, cfg.vocab_size), y.reshape(-1),
                                                     reduction="sum") / n_targets
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_value = loss.item()  # one host sync per step, as the seekmath loop does
        torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - t0)
    tokens = args.accum * args.micro_batch * args.context
    step_s = statistics.median(times)
    tps = tokens / step_s
    out = {"impl": "pytorch", "device": name, "params": sum(p.numel() for p in model.parameters()),
           "tokens_per_step": tokens, "median_step_s": step_s, "tokens_per_second": tps,
           "mfu": tps * fpt / peak if peak else None, "flops_per_token": fpt, "last_loss": loss_value,
           "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
