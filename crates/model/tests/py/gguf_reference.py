"""Reference outputs for seekmath's GGUF loader, from llama.cpp's `gguf` package and transformers.

    gguf_reference.py quant OUT_DIR           random blocks of every supported encoding + gguf-py's dequantisation
    gguf_reference.py tiny OUT_DIR            tiny random llama (GQA) and qwen2 models written as GGUF the way
                                              llama.cpp's converter does, loaded back by transformers
    gguf_reference.py spm OUT_DIR             a small sentencepiece-style GGUF vocabulary and transformers' ids
    gguf_reference.py smollm GGUF OUT_DIR     transformers on a real GGUF: tokenizer ids, chat template, logits,
                                              greedy continuations
    gguf_reference.py all GGUF OUT_DIR        all of the above (smollm only if GGUF exists)

Each command writes JSON (and .gguf / .safetensors files) into OUT_DIR for the Rust tests to compare against.
"""

import json
import os
import sys

import numpy as np

TEXTS = [
    "Hello world! The quick brown fox jumps over the lazy dog.",
    "Let $f(x) = x^2 + 3x - 7$. Find $\\frac{d}{dx} f(x)$ at $x = 12$; answer: \\boxed{27}.",
    "求解方程 x^2 - 5x + 6 = 0，答案是 x=2 或 x=3。",
    "  leading spaces,\ttabs\nnewlines\n\n and numbers 1234567 3.14159 1,000,000",
    "Émilie Du Châtelet — naïve café; 数学是科学的皇后。",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n",
]


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)


def quant(out_dir):
    import gguf
    from gguf import GGMLQuantizationType as T
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(os.path.join(out_dir, "quant.gguf"), "llama")
    expected = {}
    types = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"]
    rows, cols = 3, 512
    for name in types:
        qtype = T[name]
        block, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
        n_blocks = rows * cols // block
        if name in ("F32", "F16", "BF16"):
            values = rng.standard_normal((rows, cols)).astype(np.float32)
            data = gguf.quantize(values, qtype) if name == "BF16" else values.astype(
                np.float16 if name == "F16" else np.float32)
        else:
            data = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
            # Overwrite the f16 scale fields with finite values so no NaN/inf pattern hides a mismatch.
            scale_offsets = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
                             "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [block_bytes - 2]}[name]
            for off in scale_offsets:
                scales = rng.uniform(-0.1, 0.1, size=n_blocks).astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
                data[:, off:off + 2] = scales
            data = data.reshape(rows, -1)
        writer.add_tensor(f"t.{name}", data, raw_dtype=qtype)
        expected[f"t.{name}"] = np.ascontiguousarray(gguf.dequantize(np.asarray(data), qtype).reshape(rows, cols))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    save_file({k: v.astype(np.float32) for k, v in expected.items()}, os.path.join(out_dir, "quant_expected.safetensors"))


def permute(w, n_head, n_head_kv):
    """llama.cpp's converter interleaves each head's rotary halves (HF order → GGUF order)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape))


def write_tiny_gguf(model, arch, path, weight_type):
    import gguf
    from gguf import GGMLQuantizationType as T

    cfg = model.config
    writer = gguf.GGUFWriter(path, arch)
    writer.add_name(f"tiny-{arch}")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_freq_base(cfg.rope_parameters["rope_theta"] if getattr(cfg, "rope_parameters", None) else cfg.rope_theta)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    names = {
        "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    layer_names = {
        "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    }
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        data = tensor.float().numpy()
        if hf_name in names:
            name = names[hf_name]
        else:
            parts = hf_name.split(".")
            module = ".".join(parts[3:-1])
            name = f"blk.{parts[2]}.{layer_names[module]}.{parts[-1]}"
        if arch == "llama" and (".attn_q." in name or ".attn_k." in name):
            data = permute(data, cfg.num_attention_heads,
                           cfg.num_attention_heads if ".attn_q." in name else cfg.num_key_value_heads)
        if data.ndim == 2 and weight_type != "F32":
            qtype = T[weight_type]
            writer.add_tensor(name, gguf.quantize(data, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def tiny(out_dir):
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    torch.manual_seed(0)
    cases = {
        "llama_f32": ("llama", LlamaConfig, "F32", dict(tie_word_embeddings=False)),
        "llama_q8": ("llama", LlamaConfig, "Q8_0", dict(tie_word_embeddings=True)),
        "qwen2_f16": ("qwen2", Qwen2Config, "F16", dict(tie_word_embeddings=True)),
    }
    prompts = [[1, 5, 9, 200, 33, 7, 81, 2], [3, 100, 4]]
    results = {}
    for case, (arch, config_class, weight_type, extra) in cases.items():
        cfg = config_class(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                           rms_norm_eps=1e-5, **extra)
        model = AutoModelForCausalLM.from_config(cfg).eval()
        if arch == "qwen2":  # give the biases values, transformers initialises them to zero
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if name.endswith(".bias"):
                        p.normal_(0, 0.5)
        path = os.path.join(out_dir, f"{case}.gguf")
        write_tiny_gguf(model, arch, path, weight_type)
        loaded = AutoModelForCausalLM.from_pretrained(out_dir, gguf_file=f"{case}.gguf", dtype=torch.float32).eval()
        state = {k: v.contiguous() for k, v in loaded.state_dict().items()}
        if loaded.config.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        save_file(state, os.path.join(out_dir, f"{case}_state.safetensors"))
        with torch.no_grad():
            logits = [loaded(torch.tensor([p])).logits[0].tolist() for p in prompts]
        results[case] = {"prompts": prompts, "logits": logits}
    write_json(os.path.join(out_dir, "tiny.json"), results)


def spm(out_dir):
    import gguf
    from transformers import AutoTokenizer

    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    words = ["\u2581", "a", "b", "c", "d", "e", "h", "l", "o", "r", "w", "t", "\u2581h", "\u2581w", "he", "ll",
             "llo", "\u2581he", "\u2581hello", "\u2581wor", "or", "\u2581world", "ld", "\u2581the", "th", "\u2581t"]
    tokens = pieces + words
    scores = [0.0] * len(pieces) + [-float(i) for i in range(len(words))]
    types = [2, 3, 3] + [6] * 256 + [1] * len(words)
    path = os.path.join(out_dir, "spm.gguf")
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_tensor("token_embd.weight", np.zeros((len(tokens), 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tok = AutoTokenizer.from_pretrained(out_dir, gguf_file="spm.gguf")
    texts = ["hello world", "the world hello", " hello  wor", "héllo wörld ∑", "abc\nhe"]
    ids = [tok(t).input_ids for t in texts]
    decoded = [tok.decode(i, skip_special_tokens=True) for i in ids]
    write_json(os.path.join(out_dir, "spm.json"), {"texts": texts, "ids": ids, "decoded": decoded})


def smollm(gguf_path, out_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = os.path.dirname(gguf_path), os.path.basename(gguf_path)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    ids_plain = [tok(t, add_special_tokens=False).input_ids for t in TEXTS]
    ids_special = [tok(t).input_ids for t in TEXTS]
    decoded = [tok.decode(i) for i in ids_plain]
    messages = [{"role": "user", "content": "What is 7 * 8?"}]
    chat = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    prompts = [tok(p, add_special_tokens=False).input_ids for p in
               [chat, "The capital of France is", "def fibonacci(n):", "1 + 1 = 2. 2 + 2 ="]]
    logits, greedy, margins = [], [], []
    with torch.no_grad():
        for p in prompts:
            logits.append(model(torch.tensor([p])).logits[0, -3:].tolist())
            seq = list(p)
            for _ in range(64):
                last = model(torch.tensor([seq])).logits[0, -1]
                top = torch.topk(last, 2).values
                margins.append(float(top[0] - top[1]))
                seq.append(int(last.argmax()))
            greedy.append(seq[len(p):])
    sd = model.state_dict()
    probes = {k: sd[k][:4, :8].tolist() for k in ["model.layers.0.self_attn.q_proj.weight",
                                                  "model.layers.0.self_attn.k_proj.weight",
                                                  "model.embed_tokens.weight"]}
    write_json(os.path.join(out_dir, "smollm.json"), {
        "texts": TEXTS, "ids_plain": ids_plain, "ids_special": ids_special, "decoded": decoded,
        "chat": chat, "prompts": prompts, "logits_last3": logits, "greedy": greedy,
        "min_greedy_margin": min(margins), "probes": probes, "config": model.config.to_dict(),
    })


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "quant":
        quant(args[0])
    elif command == "tiny":
        tiny(args[0])
    elif command == "spm":
        spm(args[0])
    elif command == "smollm":
        smollm(args[0], args[1])
    elif command == "all":  # one interpreter start for the whole test binary
        quant(args[1])
        tiny(args[1])
        spm(args[1])
        if os.path.isfile(args[0]):
            smollm(args[0], args[1])
    else:
        raise SystemExit(f"unknown command {command}")
