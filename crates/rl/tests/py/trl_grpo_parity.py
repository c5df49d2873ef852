"""Reference GRPO losses and gradients from TRL's own GRPOTrainer, for the Rust parity test.

Usage: python trl_grpo_parity.py OUT_DIR

Builds a tiny random Llama with transformers (saved to OUT_DIR/model as a Hugging Face folder), fixed prompts,
"sampled" completions (fixed token ids, right-padded, one truncated completion masked out), fixed rewards, old-policy
and reference log-probabilities, then for each case constructs a real `trl.GRPOTrainer` and calls its
`GRPOTrainer._compute_loss(model, inputs)` (TRL's training loss path: fused LM head log-probs, clipped ratio, k3 KL,
loss-type normalisation), back-propagates, and writes OUT_DIR/<case>.safetensors with the inputs, the loss, the
gradient of every parameter, and the final-norm hidden states with their gradient (so the loss can be checked
without the model crate: logits = hidden @ lm_head.weight.T). Advantages are computed with the same formula as
`GRPOTrainer._generate_and_score_completions` (group mean, `trl.trainer.utils.nanstd`, + 1e-4).
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
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import nanstd

VOCAB = 64
G = 3
GROUPS = 2
PROMPT_LEN = 5
COMPLETION_LEN = 7
TEMPERATURE = 0.9
CASES = {
    # name: (loss_type, beta, epsilon_high, use_bias_correction_kl, scale_rewards)
    "grpo_beta0.04": ("grpo", 0.04, None, False, "group"),
    "dapo_beta0.04": ("dapo", 0.04, None, False, "group"),
    "dr_grpo_beta0.04": ("dr_grpo", 0.04, None, False, "none"),
    "grpo_beta0_eps_high": ("grpo", 0.0, 0.28, False, "group"),
    "dapo_kl_correction": ("dapo", 0.04, 0.28, True, "group"),
}


def tiny_tokenizer():
    vocab = {f"t{i}": i for i in range(VOCAB)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="t0"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="t0", eos_token="t1", unk_token="t0")


def build_model(out_dir):
    torch.manual_seed(1234)
    cfg = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=False,
        pad_token_id=0, eos_token_id=1, bos_token_id=2, torch_dtype="float32",
    )
    model = LlamaForCausalLM(cfg).float()
    model.save_pretrained(os.path.join(out_dir, "model"), safe_serialization=True)
    return os.path.join(out_dir, "model")


def fixed_batch():
    g = torch.Generator().manual_seed(99)
    b = G * GROUPS
    prompt_ids = torch.randint(3, VOCAB, (GROUPS, PROMPT_LEN), generator=g).repeat_interleave(G, dim=0)
    prompt_mask = torch.ones_like(prompt_ids)
    completion_ids = torch.randint(3, VOCAB, (b, COMPLETION_LEN), generator=g)
    lengths = [7, 4, 2, 5, 7, 3]  # output 4 ran to the limit: "truncated"
    completion_mask = torch.zeros(b, COMPLETION_LEN, dtype=torch.long)
    for i, n in enumerate(lengths):
        completion_mask[i, :n] = 1
        if n < COMPLETION_LEN:
            completion_ids[i, n - 1] = 1  # eos
            completion_ids[i, n:] = 0  # pad
    truncated = torch.tensor([i == 4 for i in range(b)])
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.0, 1.0, 1.0])
    return prompt_ids, prompt_mask, completion_ids, completion_mask, truncated, rewards


def trl_advantages(rewards, scale_rewards):
    # Same arithmetic as GRPOTrainer._generate_and_score_completions (num_generations=G).
    mean = rewards.view(-1, G).mean(dim=1).repeat_interleave(G, dim=0)
    adv = rewards - mean
    if scale_rewards == "group":
        std = nanstd(rewards.view(-1, G), dim=1).repeat_interleave(G, dim=0)
        adv = adv / (std + 1e-4)
    return adv


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    model_dir = build_model(out_dir)
    tokenizer = tiny_tokenizer()
    prompt_ids, prompt_mask, completion_ids, completion_mask, truncated, rewards = fixed_batch()
    # mask_truncated_completions=True, as the trainer applies it when building the loss mask.
    loss_mask = completion_mask * (~truncated).unsqueeze(1).long()
    g = torch.Generator().manual_seed(7)
    old_noise = torch.randn(loss_mask.shape, generator=g) * 0.3
    ref_noise = torch.randn(loss_mask.shape, generator=g) * 0.3
    manifest = {"cases": {}, "temperature": TEMPERATURE, "group_size": G, "max_completion_length": COMPLETION_LEN}
    for name, (loss_type, beta, eps_high, kl_corr, scale) in CASES.items():
        model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
        with tempfile.TemporaryDirectory() as tmp:
            args = GRPOConfig(
                output_dir=tmp, loss_type=loss_type, beta=beta, epsilon=0.2, epsilon_high=eps_high,
                use_bias_correction_kl=kl_corr, scale_rewards=scale, num_generations=G,
                per_device_train_batch_size=G * GROUPS, gradient_accumulation_steps=1,
                max_completion_length=COMPLETION_LEN, temperature=TEMPERATURE, use_cpu=True, report_to="none",
                mask_truncated_completions=True, logging_steps=1, bf16=False, fp16=False,
            )
            trainer = GRPOTrainer(
                model=model, reward_funcs=lambda completions, **kw: [0.0] * len(completions), args=args,
                train_dataset=Dataset.from_list([{"prompt": "t3 t4"}] * (G * GROUPS)), processing_class=tokenizer,
            )
            model = trainer.model
            model.train()
            # Set by Trainer's training loop before each step; one accumulation step here.
            trainer.current_gradient_accumulation_steps = 1
            # Current-policy log-probs via TRL's own scorer; old/ref = current + fixed noise so ratios are clipped.
            input_ids = torch.cat([prompt_ids, completion_ids], 1)
            attn = torch.cat([prompt_mask, completion_mask], 1)
            with torch.no_grad():
                cur, _, _ = trainer._get_per_token_logps_and_entropies(model, input_ids, attn, COMPLETION_LEN)
            old = cur + old_noise
            ref = cur + ref_noise
            advantages = trl_advantages(rewards, scale)
            inputs = {
                "prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
                "completion_mask": loss_mask, "advantages": advantages, "old_per_token_logps": old,
                "ref_per_token_logps": ref, "num_items_in_batch": loss_mask.sum(),
            }
            captured = {}

            def keep(_module, _inp, out):
                out.retain_grad()
                captured["hidden"] = out

            handle = model.model.norm.register_forward_hook(keep)
            model.zero_grad()
            loss = trainer._compute_loss(model, inputs)
            loss.backward()
            handle.remove()
        tensors = {
            "prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
            "completion_mask": completion_mask, "loss_mask": loss_mask, "truncated": truncated.long(),
            "rewards": rewards, "advantages": advantages, "old_logprobs": old, "ref_logprobs": ref,
            "current_logprobs": cur, "loss": loss.detach().reshape(1), "hidden": captured["hidden"].detach(),
            "hidden_grad": captured["hidden"].grad, "lm_head_weight": model.lm_head.weight.detach(),
        }
        for pname, p in model.named_parameters():
            tensors["grad." + pname] = p.grad.detach().clone()
        save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out_dir, f"{name}.safetensors"))
        manifest["cases"][name] = {
            "loss_type": loss_type, "beta": beta, "epsilon": 0.2, "epsilon_high": eps_high,
            "use_bias_correction_kl": kl_corr, "scale_rewards": scale, "loss": loss.item(),
        }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps(manifest))


if __name__ == "__main__":
    main(sys.argv[1])
