"""Reference DPO losses and gradients from TRL's own DPOTrainer, for the Rust parity test (tests/dpo_parity.rs).

Usage: python trl_dpo_parity.py OUT_DIR

Builds a tiny random Llama (saved to OUT_DIR/model as a Hugging Face folder), fixed preference pairs (prompt, chosen
and rejected completions as token ids, right-padded, different lengths) and fixed reference log-probabilities, then
constructs a real `trl.DPOTrainer` (`loss_type=["sigmoid"]`, `precompute_ref_log_probs=True`) and calls its
`DPOTrainer._compute_loss(model, inputs, return_outputs=False)` (TRL's training loss path: fused LM head
log-probs summed over completion tokens, sigmoid loss averaged over pairs), back-propagates, and writes
OUT_DIR/<case>.safetensors with the inputs, the loss, every parameter gradient, and the policy's sequence
log-probabilities (plain forward, so the loss formula can also be checked without the model crate).
"""

import json
import os
import sys
import tempfile

import torch
from datasets import Dataset
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from trl import DPOConfig, DPOTrainer

VOCAB = 64
PAIRS = 3
PROMPT_LEN = 4
COMPLETION_LEN = 6
CASES = {"sigmoid_beta0.1": 0.1, "sigmoid_beta0.5": 0.5}


def tiny_tokenizer():
    vocab = {f"t{i}": i for i in range(VOCAB)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="t0"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="t0", eos_token="t1", unk_token="t0")


def build_model(out_dir):
    torch.manual_seed(4321)
    cfg = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False,
        pad_token_id=0, eos_token_id=1, bos_token_id=2, torch_dtype="float32",
    )
    LlamaForCausalLM(cfg).float().save_pretrained(os.path.join(out_dir, "model"), safe_serialization=True)
    return os.path.join(out_dir, "model")


def fixed_pairs():
    g = torch.Generator().manual_seed(11)
    prompts = torch.randint(3, VOCAB, (PAIRS, PROMPT_LEN), generator=g)
    lengths = {"chosen": [6, 3, 5], "rejected": [2, 6, 4]}
    seqs = {}
    for side in ("chosen", "rejected"):
        comp = torch.randint(3, VOCAB, (PAIRS, COMPLETION_LEN), generator=g)
        mask = torch.zeros(PAIRS, COMPLETION_LEN, dtype=torch.long)
        for i, n in enumerate(lengths[side]):
            mask[i, :n] = 1
            comp[i, n:] = 0
        seqs[side] = (comp, mask)
    ref_chosen = -torch.rand(PAIRS, generator=g) * 10 - 15
    ref_rejected = -torch.rand(PAIRS, generator=g) * 10 - 15
    return prompts, seqs, ref_chosen, ref_rejected


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    model_dir = build_model(out_dir)
    prompts, seqs, ref_chosen, ref_rejected = fixed_pairs()
    ids = torch.cat([torch.cat([prompts, seqs[s][0]], 1) for s in ("chosen", "rejected")], 0)
    prompt_mask = torch.ones(2 * PAIRS, PROMPT_LEN, dtype=torch.long)
    comp_mask = torch.cat([seqs["chosen"][1], seqs["rejected"][1]], 0)
    attention = torch.cat([prompt_mask, comp_mask], 1)
    completion_mask = torch.cat([torch.zeros_like(prompt_mask), comp_mask], 1)
    manifest = {"cases": {}}
    for name, beta in CASES.items():
        model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
        with tempfile.TemporaryDirectory() as tmp:
            args = DPOConfig(
                output_dir=tmp, beta=beta, loss_type=["sigmoid"], precompute_ref_log_probs=True, use_cpu=True,
                report_to="none", per_device_train_batch_size=PAIRS, bf16=False, fp16=False,
            )
            data = Dataset.from_list([{"prompt": "t3 t4", "chosen": " t5", "rejected": " t6"}] * PAIRS)
            trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tiny_tokenizer())
            model = trainer.model
            model.train()
            inputs = {
                "input_ids": ids, "attention_mask": attention, "completion_mask": completion_mask,
                "ref_chosen_logps": ref_chosen, "ref_rejected_logps": ref_rejected,
            }
            model.zero_grad()
            loss = trainer._compute_loss(model, inputs, return_outputs=False)
            loss.backward()
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
            lp = logits.log_softmax(-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
            seq_logps = (lp * completion_mask[:, 1:]).sum(1)
        tensors = {
            "input_ids": ids, "attention_mask": attention, "completion_mask": completion_mask,
            "ref_chosen": ref_chosen, "ref_rejected": ref_rejected, "seq_logps": seq_logps,
            "loss": loss.detach().reshape(1),
        }
        for pname, p in model.named_parameters():
            tensors["grad." + pname] = p.grad.detach().clone()
        save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out_dir, f"{name}.safetensors"))
        manifest["cases"][name] = {"beta": beta, "loss": loss.item(), "prompt_len": PROMPT_LEN, "pairs": PAIRS}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps(manifest))


if __name__ == "__main__":
    main(sys.argv[1])
