"""Reference outputs from Hugging Face transformers for seekmath-model's parity tests.

    hf_reference.py make OUT_DIR [--gguf PATH] [--neo-tokenizer PATH]
        Writes tiny random models (one folder per case, saved by transformers) with `expected.json` holding prompt
        logits and 64-token greedy continuations, and tokenizer folders with expected ids / decodes / chat renders.
    hf_reference.py logits DIR...
        Loads each folder (saved by seekmath) with AutoModelForCausalLM and writes DIR/hf_logits.json for the
        prompts in DIR/prompts.json.

Everything runs on CPU in float32 and is deterministic (fixed seeds).
"""

import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

VOCAB = 256
GREEDY_TOKENS = 64

# (name, config class name, config kwargs). Weights are re-drawn with larger scales than transformers' default
# init so that greedy decoding has clear margins.
CASES = [
    ("llama", "LlamaConfig", dict(num_key_value_heads=2, tie_word_embeddings=False, rms_norm_eps=1e-5)),
    ("qwen2", "Qwen2Config", dict(num_key_value_heads=2, tie_word_embeddings=True,
                                  rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
    ("mistral_head_dim", "MistralConfig", dict(num_key_value_heads=1, head_dim=32, sliding_window=None)),
    ("llama_bias", "LlamaConfig", dict(num_key_value_heads=4, attention_bias=True, mlp_bias=True)),
    ("llama3_rope", "LlamaConfig", dict(num_key_value_heads=2, rope_parameters={
        "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 16})),
    ("linear_rope", "LlamaConfig", dict(num_key_value_heads=2, rope_parameters={
        "rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0})),
    ("dynamic_rope", "LlamaConfig", dict(num_key_value_heads=2, max_position_embeddings=32, rope_parameters={
        "rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0})),
    ("yarn_rope", "Qwen2Config", dict(num_key_value_heads=2, max_position_embeddings=128, rope_parameters={
        "rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 32})),
]

PROMPT_LENGTHS = [1, 5, 11]

TEXTS = [
    "The quick brown fox jumps over the lazy dog. It's 3.14 o'clock!",
    "今天的数学作业很难，但是我们一起解决了所有的问题。",
    r"Let $f(x) = \frac{x^2 + 1}{\sqrt{x - 1}}$. Then $\int_0^1 f(x)\,dx \approx 0.42$ and \boxed{42}.",
    "Mixed: 2 + 2 = 4，对吗？ Yes — $\alpha^2$ ✓\n\n  indented\tline",
    "",
]

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2 + 3?"}],
    [{"role": "system", "content": "You are a careful mathematician."},
     {"role": "user", "content": "求 $x^2 = 4$ 的解。"},
     {"role": "assistant", "content": "$x = \\pm 2$"},
     {"role": "user", "content": "Why?"}],
]

# A chat template written for these tests (ChatML-like, exercising loops, conditionals, string methods, tojson).
OWN_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}{{ raise_exception('unknown role') }}{% endif %}"
    "{{ '<|turn|>' + message['role'] + '\\n' + message['content'].strip() + '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|turn|>assistant\\n' }}{% endif %}"
    "{{ '# ' ~ (messages | length) ~ ' ' ~ (messages[0] | tojson) }}"
)


def set_seed(seed):
    torch.manual_seed(seed)


def make_model(case, out_dir):
    name, cls_name, kwargs = case
    cfg_cls = getattr(transformers, cls_name)
    base = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=256, bos_token_id=1, eos_token_id=2)
    base.update(kwargs)
    config = cfg_cls(**base)
    set_seed(1234)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif pname.endswith("bias"):
                p.normal_(0.0, 0.1)
            elif "embed_tokens" in pname or "lm_head" in pname:
                p.normal_(0.0, 0.5)
            else:
                p.normal_(0.0, 0.12)
    path = os.path.join(out_dir, name)
    model.save_pretrained(path)

    gen = torch.Generator().manual_seed(99)
    prompts = [torch.randint(3, VOCAB, (n,), generator=gen).tolist() for n in PROMPT_LENGTHS]
    logits, greedy, margins = [], [], []
    with torch.no_grad():
        for prompt in prompts:
            ids = torch.tensor([prompt])
            logits.append(model(ids).logits[0].tolist())
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=GREEDY_TOKENS, min_new_tokens=GREEDY_TOKENS,
                                 eos_token_id=None, pad_token_id=0, output_scores=True,
                                 return_dict_in_generate=True)
            greedy.append(out.sequences[0, len(prompt):].tolist())
            for s in out.scores:
                top = torch.topk(s[0], 2).values
                margins.append(float(top[0] - top[1]))
    with open(os.path.join(path, "expected.json"), "w") as f:
        json.dump({"prompts": prompts, "logits": logits, "greedy": greedy,
                   "min_greedy_margin": min(margins), "transformers": transformers.__version__}, f)


def tokenizer_expectations(tok, path):
    ids = {}
    for special in (True, False):
        ids[str(special)] = [tok(text, add_special_tokens=special)["input_ids"] for text in TEXTS]
    decoded = {str(skip): [tok.decode(i, skip_special_tokens=skip) for i in ids["True"]] for skip in (True, False)}
    chats = {}
    if tok.chat_template:
        for gen_prompt in (True, False):
            chats[str(gen_prompt)] = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=gen_prompt)
                                      for c in CONVERSATIONS]

    def tid(t):
        return None if t is None else tok.convert_tokens_to_ids(t)

    with open(os.path.join(path, "expected_tokenizer.json"), "w") as f:
        json.dump({"texts": TEXTS, "ids": ids, "decoded": decoded, "conversations": CONVERSATIONS, "chats": chats,
                   "bos_token_id": tid(tok.bos_token), "eos_token_id": tid(tok.eos_token),
                   "pad_token_id": tid(tok.pad_token)}, f, ensure_ascii=False)


def make_tokenizers(out_dir, gguf, neo):
    if gguf and os.path.isfile(gguf):
        tok = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
        path = os.path.join(out_dir, "tok_smollm2")
        tok.save_pretrained(path)
        # Reload from the saved folder: that is what seekmath reads.
        tokenizer_expectations(AutoTokenizer.from_pretrained(path), path)
    if neo and os.path.isfile(neo):
        from transformers import PreTrainedTokenizerFast
        tok = PreTrainedTokenizerFast(tokenizer_file=neo, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
        tok.chat_template = OWN_TEMPLATE
        path = os.path.join(out_dir, "tok_neo")
        tok.save_pretrained(path)
        tokenizer_expectations(AutoTokenizer.from_pretrained(path), path)
        # The same vocabulary behind Qwen2's own pipeline (NFC, digit-by-digit split): transformers >= 5 always
        # tokenises a `qwen2` model folder with Qwen2Tokenizer, so that is what a saved qwen2 model must carry.
        from transformers import Qwen2Tokenizer
        with open(neo) as f:
            bpe = json.load(f)["model"]
        merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in bpe["merges"]]
        tok = Qwen2Tokenizer(vocab=bpe["vocab"], merges=merges, unk_token=None, bos_token=None,
                             eos_token="<|endoftext|>", pad_token="<|endoftext|>")
        tok.chat_template = OWN_TEMPLATE
        path = os.path.join(out_dir, "tok_qwen2")
        tok.save_pretrained(path)
        tokenizer_expectations(AutoTokenizer.from_pretrained(path), path)


def hf_logits(dirs):
    for d in dirs:
        with open(os.path.join(d, "prompts.json")) as f:
            prompts = json.load(f)
        model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
        with torch.no_grad():
            logits = [model(torch.tensor([p])).logits[0].tolist() for p in prompts]
        out = {"logits": logits}
        if os.path.isfile(os.path.join(d, "tokenizer.json")):
            tok = AutoTokenizer.from_pretrained(d)
            out["tokenizer_ids"] = [tok(t)["input_ids"] for t in TEXTS]
        with open(os.path.join(d, "hf_logits.json"), "w") as f:
            json.dump(out, f)


def main(argv):
    torch.set_num_threads(1)
    if argv[0] == "make":
        out = argv[1]
        opts = dict(zip(argv[2::2], argv[3::2]))
        for case in CASES:
            make_model(case, out)
        make_tokenizers(out, opts.get("--gguf"), opts.get("--neo-tokenizer"))
    elif argv[0] == "logits":
        hf_logits(argv[1:])
    else:
        raise SystemExit(f"unknown command {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
