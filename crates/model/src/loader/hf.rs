//! Hugging Face model folders: `config.json`, `model.safetensors` or a sharded index, tokenizer files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::{Device, Kind};

use super::{tensors::read_safetensors, LoadedModel, ParamLoader};
use crate::config::ModelConfig;
use crate::tokenizer::Tokenizer;

/// The safetensors files of a folder: the shards named by `model.safetensors.index.json`, else
/// `model.safetensors`.
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).with_context(|| format!("reading {}", index.display()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", index.display()))?;
        let Some(map) = json.get("weight_map").and_then(|m| m.as_object()) else {
            bail!("{} has no weight_map object", index.display());
        };
        let files: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    bail!(
        "{} has neither model.safetensors nor model.safetensors.index.json",
        dir.display()
    )
}

/// Loads a Hugging Face folder (see [`crate::load`]). The tokenizer is loaded when `tokenizer.json` exists.
pub fn load_folder(dir: &Path, device: Device, dtype: Kind) -> Result<LoadedModel> {
    let config = ModelConfig::from_file(&dir.join("config.json"))?;
    let files = safetensors_files(dir)?;
    let mut loader = ParamLoader::new(config, device, dtype)?;
    for file in &files {
        // One shard in memory at a time.
        for (name, tensor) in read_safetensors(file)? {
            loader
                .put(&name, &tensor)
                .with_context(|| format!("loading {}", file.display()))?;
        }
    }
    let tokenizer = if dir.join("tokenizer.json").is_file() {
        Some(Tokenizer::from_hf_folder(dir)?)
    } else {
        None
    };
    let loaded = loader
        .finish(tokenizer)
        .with_context(|| format!("loading {}", dir.display()))?;
    tracing::info!(path = %dir.display(), shards = files.len(), ?dtype, ?device, "loaded Hugging Face model");
    Ok(loaded)
}
