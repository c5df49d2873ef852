"""Reference for seekmath-train's one-step parity test: a tiny transformers Llama trained for one AdamW step.

    reference_step.py prepare DIR   writes DIR/model (HF folder, random tiny Llama) and DIR/batch.json
    reference_step.py check DIR     runs the same step with PyTorch and compares against DIR/rust_after.safetensors

The step is what seekmath-train does: token-mean cross-entropy over non-ignored labels (labels are already aligned
with positions: labels[t] is the target for the token after input_ids[t]), clip_grad_norm_(1.0), AdamW with
betas (0.9, 0.95), eps 1e-8, weight decay 0.1 on parameters with >= 2 dims and 0 on the rest.
"""
import json
import sys

import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

LR, CLIP, BETAS, EPS, WD = 1e-3, 1.0, (0.9, 0.95), 1e-8, 0.1


def prepare(out):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         rms_norm_eps=1e-6, tie_word_embeddings=False, attn_implementation="sdpa")
    model = LlamaForCausalLM(config).float()
    model.save_pretrained(f"{out}/model", safe_serialization=True)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 96, (2, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # right padding in the second row
    labels = torch.full_like(ids, -100)
    labels[:, :-1] = ids[:, 1:]
    labels[0, :3] = -100  # an SFT-style prompt whose targets carry no loss
    labels[mask == 0] = -100
    labels[1, 8] = -100  # the last real token of row 2 has no next token
    ids[mask == 0] = 0
    json.dump({"input_ids": ids.tolist(), "labels": labels.tolist(), "attention_mask": mask.tolist()},
              open(f"{out}/batch.json", "w"))


def check(out):
    torch.use_deterministic_algorithms(True)
    model = LlamaForCausalLM.from_pretrained(f"{out}/model", dtype=torch.float32, attn_implementation="sdpa")
    model.train()
    batch = json.load(open(f"{out}/batch.json"))
    ids, labels, mask = (torch.tensor(batch[k]) for k in ("input_ids", "labels", "attention_mask"))
    logits = model(input_ids=ids, attention_mask=mask).logits
    loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.view(-1),
                                             ignore_index=-100, reduction="mean")
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP).item()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=BETAS, eps=EPS, foreach=False)
    opt.step()
    ours = load_file(f"{out}/rust_after.safetensors")
    rust = json.load(open(f"{out}/rust_stats.json"))
    max_diff, worst, moved = 0.0, None, 0.0
    start = {k: v for k, v in load_file(f"{out}/model/model.safetensors").items()}
    for name, p in model.named_parameters():
        if name not in ours:
            raise SystemExit(f"parameter {name} missing from the Rust result")
        d = (ours[name].float() - p.detach()).abs().max().item()
        moved = max(moved, (p.detach() - start[name].float()).abs().max().item())
        if d > max_diff:
            max_diff, worst = d, name
    result = {"max_abs_diff": max_diff, "worst_param": worst, "max_update": moved,
              "loss_ref": loss.item(), "loss_rust": rust["loss"],
              "grad_norm_ref": grad_norm, "grad_norm_rust": rust["grad_norm"]}
    print(json.dumps(result))
    ok = (max_diff <= 1e-5 and abs(loss.item() - rust["loss"]) <= 1e-5 * max(1.0, abs(loss.item()))
          and abs(grad_norm - rust["grad_norm"]) <= 1e-5 * max(1.0, grad_norm))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    {"prepare": prepare, "check": check}[sys.argv[1]](sys.argv[2])
