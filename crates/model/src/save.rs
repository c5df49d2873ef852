//! Saving in Hugging Face format: `config.json`, `model.safetensors`, `generation_config.json` and the tokenizer,
//! loadable by `transformers.AutoModelForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained`.

use std::path::Path;

use anyhow::{Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use tch::Kind;

use crate::loader::LoadedModel;

fn dtype_name(kind: Kind) -> &'static str {
    match kind {
        Kind::BFloat16 => "bfloat16",
        Kind::Half => "float16",
        Kind::Double => "float64",
        _ => "float32",
    }
}

fn safetensors_dtype(kind: Kind) -> Result<Dtype> {
    Ok(match kind {
        Kind::Float => Dtype::F32,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Half => Dtype::F16,
        Kind::Double => Dtype::F64,
        other => anyhow::bail!("cannot save a parameter of kind {other:?}"),
    })
}

/// Writes `model` into `dir` (created if needed): `config.json` (with `architectures` and `dtype`),
/// `model.safetensors` (parameters in the model's kind, HF names, `lm_head.weight` left out when tied — as
/// transformers does), `generation_config.json` (BOS/EOS ids), and `tokenizer.json` + `tokenizer_config.json`
/// when the model has a Hugging Face tokenizer (a llama2.c tokenizer is skipped with a warning).
pub fn save_pretrained(model: &LoadedModel, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let kind = model.model.kind();

    let mut config = serde_json::to_value(&model.config)?;
    let obj = config.as_object_mut().expect("config serialises to an object");
    if model.config.architectures.is_none() {
        let arch = match model.config.model_type.as_str() {
            "qwen2" => "Qwen2ForCausalLM",
            "mistral" => "MistralForCausalLM",
            _ => "LlamaForCausalLM",
        };
        obj.insert("architectures".into(), serde_json::json!([arch]));
    }
    obj.insert("dtype".into(), dtype_name(kind).into());
    obj.remove("torch_dtype");
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&config)?)
        .with_context(|| format!("writing {}", path.display()))?;

    let mut generation = serde_json::Map::new();
    if let Some(bos) = model
        .config
        .bos_token_id
        .or(model.tokenizer.as_ref().and_then(|t| t.bos_token_id()))
    {
        generation.insert("bos_token_id".into(), bos.into());
    }
    let mut eos = model.config.eos_token_ids();
    if let Some(tok) = &model.tokenizer {
        eos.extend(
            tok.eos_token_ids()
                .iter()
                .filter(|id| !model.config.eos_token_ids().contains(id)),
        );
    }
    if !eos.is_empty() {
        let value = if eos.len() == 1 {
            serde_json::json!(eos[0])
        } else {
            serde_json::json!(eos)
        };
        generation.insert("eos_token_id".into(), value);
    }
    if let Some(pad) = model.config.pad_token_id {
        generation.insert("pad_token_id".into(), pad.into());
    }
    let path = dir.join("generation_config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&generation)?)
        .with_context(|| format!("writing {}", path.display()))?;

    // Parameters to host memory in their kind, sorted by name for a deterministic file.
    let mut named: Vec<(String, Vec<u8>, Vec<usize>, Dtype)> = Vec::new();
    let mut vars: Vec<(String, tch::Tensor)> = model.vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in vars {
        let t = var.detach().to_device(tch::Device::Cpu).contiguous();
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, numel)
            .with_context(|| format!("copying {name}"))?;
        let shape = t.size().iter().map(|&d| d as usize).collect();
        named.push((name, bytes, shape, safetensors_dtype(t.kind())?));
    }
    let views = named
        .iter()
        .map(|(name, bytes, shape, dtype)| Ok((name.as_str(), TensorView::new(*dtype, shape.clone(), bytes)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut metadata = std::collections::HashMap::new();
    metadata.insert("format".to_string(), "pt".to_string());
    let path = dir.join("model.safetensors");
    safetensors::serialize_to_file(views, Some(metadata), &path)
        .with_context(|| format!("writing {}", path.display()))?;

    match &model.tokenizer {
        Some(tok) if tok.hf_tokenizer().is_some() => tok.save(dir)?,
        Some(_) => tracing::warn!(dir = %dir.display(), "llama2.c tokenizer not saved (no Hugging Face equivalent)"),
        None => {}
    }
    tracing::info!(dir = %dir.display(), dtype = dtype_name(kind), "saved model in Hugging Face format");
    Ok(())
}
