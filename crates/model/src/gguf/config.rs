//! A Hugging Face `config.json` for the model a GGUF file holds, from its `<arch>.*` metadata.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::reader::GgufFile;

/// HF `model_type` for the file's `general.architecture` (and name, since llama.cpp files Mistral under llama).
pub fn model_type(file: &GgufFile) -> Result<&'static str> {
    let arch = file.get_str("general.architecture")?;
    let name = file
        .get("general.name")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_lowercase();
    Ok(match arch {
        "llama" if name.contains("mistral") => "mistral",
        "llama" => "llama",
        "qwen2" => "qwen2",
        other => bail!("unsupported GGUF architecture {other:?} (supported: llama, qwen2)"),
    })
}

/// The HF config for `file`. `vocab_size` falls back to the embedding's row count.
pub fn hf_config(file: &GgufFile) -> Result<Value> {
    let arch = file.get_str("general.architecture")?.to_string();
    let model_type = model_type(file)?;
    let key = |suffix: &str| format!("{arch}.{suffix}");
    let required = |suffix: &str| -> Result<u64> {
        file.get_u64(&key(suffix))?
            .with_context(|| format!("missing metadata key {}", key(suffix)))
    };
    let hidden = required("embedding_length")?;
    let heads = required("attention.head_count")?;
    let kv_heads = file.get_u64(&key("attention.head_count_kv"))?.unwrap_or(heads);
    let head_dim = file
        .get_u64(&key("attention.key_length"))?
        .unwrap_or(hidden / heads.max(1));
    let embedding = file
        .tensor("token_embd.weight")
        .context("missing tensor token_embd.weight")?;
    let vocab = match file.get_u64(&key("vocab_size"))? {
        Some(v) => v,
        None => *embedding.dims.get(1).context("token_embd.weight is not 2-D")?,
    };
    let tied = file.tensor("output.weight").is_none();
    if file.tensor("rope_freqs.weight").is_some() {
        bail!("llama3-style rope frequency factors (rope_freqs.weight) are not supported in GGUF files yet");
    }
    let rope_scaling = match file.get(&key("rope.scaling.type")).and_then(|v| v.as_str()) {
        None | Some("none") => Value::Null,
        Some(kind @ ("linear" | "yarn")) => {
            let factor = file
                .get_f64(&key("rope.scaling.factor"))?
                .context("rope scaling without a factor")?;
            let mut scaling = json!({"rope_type": kind, "factor": factor});
            if let Some(orig) = file.get_u64(&key("rope.scaling.original_context_length"))? {
                scaling["original_max_position_embeddings"] = json!(orig);
            }
            scaling
        }
        Some(other) => bail!("unsupported GGUF rope scaling type {other:?}"),
    };
    let token_id = |k: &str| file.get_u64(k).map(|v| v.map_or(Value::Null, |id| json!(id)));
    let architecture = match model_type {
        "mistral" => "MistralForCausalLM",
        "qwen2" => "Qwen2ForCausalLM",
        _ => "LlamaForCausalLM",
    };
    let mut config = json!({
        "architectures": [architecture],
        "model_type": model_type,
        "hidden_size": hidden,
        "intermediate_size": required("feed_forward_length")?,
        "num_hidden_layers": required("block_count")?,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": file.get_f64(&key("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-6),
        "rope_theta": file.get_f64(&key("rope.freq_base"))?.unwrap_or(10_000.0),
        "rope_scaling": rope_scaling,
        "max_position_embeddings": file.get_u64(&key("context_length"))?.unwrap_or(2048),
        "vocab_size": vocab,
        "tie_word_embeddings": tied,
        "attention_bias": file.tensor("blk.0.attn_q.bias").is_some(),
        "mlp_bias": false,
        "bos_token_id": token_id("tokenizer.ggml.bos_token_id")?,
        "eos_token_id": token_id("tokenizer.ggml.eos_token_id")?,
        "pad_token_id": token_id("tokenizer.ggml.padding_token_id")?,
        "torch_dtype": "float32",
    });
    if model_type == "mistral" {
        config["sliding_window"] = Value::Null;
    }
    if model_type == "qwen2" {
        config["use_sliding_window"] = json!(false);
    }
    Ok(config)
}
