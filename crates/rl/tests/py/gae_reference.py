"""Reference PPO advantages for the Rust test (tests/paradigm_reference.rs): batched GAE over right-padded
trajectories, written the way PPO trainers for LLMs run it (TRL's former PPOTrainer, OpenRLHF): one backwards loop
over time for the whole batch, padding zeroed, then advantages whitened over the valid tokens with the
Bessel-corrected variance and rsqrt(var + 1e-8).

Usage: python gae_reference.py OUT_DIR   (writes OUT_DIR/gae.safetensors)
"""

import os
import sys

import torch
from safetensors.torch import save_file


def batched_gae(rewards, values, mask, gamma, lam):
    rewards = rewards * mask
    values = values * mask
    steps = rewards.shape[1]
    last = torch.zeros(rewards.shape[0], dtype=rewards.dtype)
    out = []
    for t in reversed(range(steps)):
        next_values = values[:, t + 1] if t < steps - 1 else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_values - values[:, t]
        last = delta + gamma * lam * last
        out.append(last)
    advantages = torch.stack(out[::-1], dim=1)
    return advantages, advantages + values


def masked_whiten(x, mask):
    n = mask.sum()
    mean = (x * mask).sum() / n
    var = (((x - mean) ** 2) * mask).sum() / n * (n / (n - 1))
    return (x - mean) * torch.rsqrt(var + 1e-8)


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    g = torch.Generator().manual_seed(5)
    lengths = torch.tensor([7, 3, 5, 1])
    steps = int(lengths.max())
    mask = (torch.arange(steps).unsqueeze(0) < lengths.unsqueeze(1)).double()
    rewards = torch.randn(4, steps, generator=g, dtype=torch.float64) * 0.05
    rewards[torch.arange(4), lengths - 1] += torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    values = torch.randn(4, steps, generator=g, dtype=torch.float64) * 0.5
    tensors = {"rewards": rewards, "values": values, "mask": mask, "lengths": lengths}
    for name, gamma, lam in [("g1_l095", 1.0, 0.95), ("g099_l09", 0.99, 0.9)]:
        adv, ret = batched_gae(rewards, values, mask, gamma, lam)
        tensors[f"{name}.advantages"] = adv * mask
        tensors[f"{name}.returns"] = ret * mask
        tensors[f"{name}.whitened"] = masked_whiten(adv, mask) * mask
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out_dir, "gae.safetensors"))
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1])
