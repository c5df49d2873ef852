"""TRL GRPOTrainer seconds per step, for the side-by-side with `seekmath rl grpo` (scripts/gpu/grpo_vs_trl.sh).

Usage: python trl_grpo_speed.py --model FILE.gguf|HF_DIR --task DIR --out DIR --group-size G --questions Q
           --micro-batch M --max-new-tokens L --steps N [--device cuda|cpu]

Same work per step as seekmath: Q questions × G samples (transformers generation, no vLLM), one optimiser step per
generation (gradient accumulation over micro-batches of M sequences), β = 0.04, loss_type "grpo", lr 1e-6, bf16 on
CUDA. Prompts are the task's questions with the same instruction, rendered by the tokenizer's chat template. Step
times come from TRL's own `step_time` metric and a wall-clock callback; the first step (warm-up) is excluded from
the mean.
"""

import argparse
import json
import os
import re
import time

import uuid

import datasets.fingerprint
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

INSTRUCTION = "{question}\nThink step by step, then finish with \"The answer is N.\" where N is a number."


def tolerate_unhashable_datasets():
    """On the GPU host (Python 3.12, wheels brought in by hand) `datasets` cannot dill-pickle a pyarrow type while
    fingerprinting a new Dataset (PicklingError on `MonthDayNano`). Fingerprints only key the on-disk cache, which
    this script does not use, so fall back to a random one instead of failing; timing is unaffected."""
    original = datasets.fingerprint.Hasher.hash

    def safe_hash(cls, value):
        try:
            return original(value)
        except Exception:  # noqa: BLE001 - any pickling failure: an uncached fingerprint is fine here
            return uuid.uuid4().hex

    datasets.fingerprint.Hasher.hash = classmethod(safe_hash)


def plain_checkpoint(model_path, scratch):
    """A Hugging Face folder for `model_path` (TRL loads its reference model from the policy's folder)."""
    if model_path.endswith(".gguf"):
        # transformers dequantizes GGUF weights but marks the model as quantized, which Trainer refuses to train:
        # rebuild a plain fp32 model of the same config and copy the dequantized weights into it.
        d, f = os.path.split(model_path)
        tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
        loaded = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
        cfg = loaded.config.to_dict()
        cfg.pop("quantization_config", None)
        model = type(loaded)(type(loaded.config).from_dict(cfg)).float()
        model.load_state_dict({k: v.float() for k, v in loaded.state_dict().items()})
        del loaded
        folder = os.path.join(scratch, "dequantized")
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        return folder
    return model_path


def last_number_reward(completions, answer, **_):
    out = []
    for c, a in zip(completions, answer):
        text = c[0]["content"] if isinstance(c, list) else c
        nums = re.findall(r"-?\d+(?:\.\d+)?", text)
        out.append(1.0 if nums and float(nums[-1]) == float(a) else 0.0)
    return out


class Timer(TrainerCallback):
    def __init__(self):
        self.times, self.t0 = [], None

    def on_step_begin(self, args, state, control, **kw):
        self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self.t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--task", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--group-size", type=int, default=16)
    ap.add_argument("--questions", type=int, default=32)
    ap.add_argument("--micro-batch", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    tolerate_unhashable_datasets()
    rows = [json.loads(l) for l in open(os.path.join(a.task, "train.jsonl"))]
    data = Dataset.from_list([
        {"prompt": [{"role": "user", "content": INSTRUCTION.format(question=r["question"])}], "answer": r["answer"]}
        for r in rows[: a.questions * (a.steps + 1)]
    ])
    folder = plain_checkpoint(a.model, a.out)
    tok = AutoTokenizer.from_pretrained(folder)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    total = a.questions * a.group_size
    assert total % a.micro_batch == 0, "questions × group size must be a multiple of the micro-batch"
    cuda = a.device == "cuda"
    args = GRPOConfig(
        output_dir=os.path.join(a.out, "trl-run"), learning_rate=1e-6, beta=0.04, loss_type="grpo",
        num_generations=a.group_size, per_device_train_batch_size=a.micro_batch,
        gradient_accumulation_steps=total // a.micro_batch, max_completion_length=a.max_new_tokens,
        temperature=1.0, max_steps=a.steps, logging_steps=1, report_to="none", save_strategy="no",
        bf16=cuda, use_cpu=not cuda, seed=0, use_vllm=False, shuffle_dataset=False,
        model_init_kwargs={"dtype": torch.float32},
    )
    timer = Timer()
    trainer = GRPOTrainer(model=folder, reward_funcs=last_number_reward, args=args, train_dataset=data,
                          processing_class=tok, callbacks=[timer])
    trainer.train()
    steady = timer.times[1:] or timer.times
    result = {
        "trainer": "trl.GRPOTrainer", "trl_version": __import__("trl").__version__,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu", "group_size": a.group_size,
        "questions_per_step": a.questions, "micro_batch": a.micro_batch, "max_new_tokens": a.max_new_tokens,
        "steps": a.steps, "step_seconds": timer.times, "mean_seconds_per_step_after_first": sum(steady) / len(steady),
    }
    with open(os.path.join(a.out, "trl_speed.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
