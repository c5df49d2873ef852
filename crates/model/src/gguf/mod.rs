//! GGUF files (llama.cpp's single-file format): the header reader, dequantisation of the common encodings on
//! load, the mapping from llama.cpp tensor names to Hugging Face ones, the config, and the tokenizer and chat
//! template stored in the metadata.
//!
//! Why dequantise on load instead of running quantised kernels: seekmath trains and samples the same weights in
//! f32/bf16 through libtorch, and a GGUF file here is a *source* of weights (the small real model ships only as
//! GGUF). Values are decoded exactly as llama.cpp does, and the Q/K row interleaving that llama.cpp's converter
//! applies is undone, so a GGUF-loaded model equals transformers' `from_pretrained(..., gguf_file=...)`.

mod config;
pub mod dequant;
pub mod names;
pub mod reader;
pub mod tokenizer;

use anyhow::{Context, Result};
use tch::{Kind, Tensor};

pub use config::{hf_config, model_type};
pub use dequant::GgmlType;
pub use reader::{GgufFile, MetadataValue, TensorInfo};
pub use tokenizer::{read_tokenizer, GgufTokenizer};

use names::{hf_name, row_permutation, unpermute_rows, RowPermutation};

/// Every tensor of `file` as (Hugging Face name, f32 CPU tensor in HF layout), decoded one at a time so that peak
/// memory stays near one tensor above the model. Tensors with no HF counterpart are skipped.
pub fn hf_tensors(file: &GgufFile) -> Result<impl Iterator<Item = Result<(String, Tensor)>> + '_> {
    let arch = file.get_str("general.architecture")?.to_string();
    let cfg = hf_config(file)?;
    let heads = cfg["num_attention_heads"].as_u64().unwrap_or(0) as usize;
    let kv_heads = cfg["num_key_value_heads"].as_u64().unwrap_or(0) as usize;
    Ok(file.tensors.iter().filter_map(move |info| {
        let name = match hf_name(&info.name) {
            Ok(Some(name)) => name,
            Ok(None) => {
                tracing::debug!(tensor = %info.name, "skipping GGUF tensor with no Hugging Face counterpart");
                return None;
            }
            Err(e) => return Some(Err(e.context(format!("in {}", file.path().display())))),
        };
        let load = || -> Result<(String, Tensor)> {
            let values = file.tensor_f32(info)?;
            let tensor = Tensor::from_slice(&values).reshape(info.torch_shape().as_slice());
            let tensor = match row_permutation(&arch, &info.name, heads, kv_heads) {
                RowPermutation::None => tensor,
                RowPermutation::Heads(n) => {
                    unpermute_rows(&tensor, n).with_context(|| format!("tensor {}", info.name))?
                }
            };
            Ok((name, tensor))
        };
        Some(load().with_context(|| format!("loading {} from {}", info.name, file.path().display())))
    }))
}

/// Dequantised tensor `name` (llama.cpp name) in PyTorch layout without any renaming or permutation, as f32.
pub fn raw_tensor(file: &GgufFile, name: &str) -> Result<Tensor> {
    let info = file
        .tensor(name)
        .with_context(|| format!("no tensor {name} in {}", file.path().display()))?;
    let values = file.tensor_f32(info)?;
    Ok(Tensor::from_slice(&values)
        .reshape(info.torch_shape().as_slice())
        .to_kind(Kind::Float))
}

/// Loads a GGUF model file on `device` with parameters of kind `dtype`: config from the metadata, weights
/// dequantised and renamed to Hugging Face's layout, tokenizer and chat template from the metadata.
pub fn load(path: &std::path::Path, device: tch::Device, dtype: Kind) -> Result<crate::loader::LoadedModel> {
    let file = GgufFile::open(path)?;
    let config_json = hf_config(&file).with_context(|| format!("reading the config of {}", path.display()))?;
    let config: crate::config::ModelConfig =
        serde_json::from_value(config_json).with_context(|| format!("config of {}", path.display()))?;
    let tokenizer = match read_tokenizer(&file).with_context(|| format!("tokenizer of {}", path.display()))? {
        Some(spec) => Some(to_tokenizer(&spec)?),
        None => None,
    };
    tracing::info!(path = %path.display(), tensors = file.tensors.len(), "loading GGUF model");
    let loaded = crate::loader::from_named_tensors(config, hf_tensors(&file)?, device, dtype, tokenizer)?;
    Ok(loaded)
}

/// Wraps a GGUF tokenizer description as seekmath's [`crate::tokenizer::Tokenizer`].
pub fn to_tokenizer(spec: &GgufTokenizer) -> Result<crate::tokenizer::Tokenizer> {
    let token = |id: Option<u32>| id.and_then(|i| spec.token(i));
    let special = crate::tokenizer::SpecialTokens {
        bos_token: token(spec.bos_token_id),
        eos_token: token(spec.eos_token_ids.first().copied()),
        pad_token: token(spec.pad_token_id),
        unk_token: token(spec.unk_token_id),
        extra_eos_ids: spec.eos_token_ids.clone(),
    };
    Ok(crate::tokenizer::Tokenizer::from_hf(
        spec.build()?,
        special,
        spec.chat_template.clone(),
    ))
}
