//! Loading a model from disk: Hugging Face folders, llama2.c checkpoints, and (through [`crate::gguf`]) GGUF files.
//!
//! Every format ends in the same place: a [`ModelConfig`], a set of Hugging Face–named tensors copied into a
//! [`CausalLm`]'s `VarStore` by [`from_named_tensors`], and an optional [`Tokenizer`].

pub mod hf;
pub mod llama2c;
pub mod tensors;

use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::{nn, Device, Kind, Tensor};

use crate::config::ModelConfig;
use crate::model::{CausalLm, WeightInit};
use crate::tokenizer::Tokenizer;

/// A model ready to run: the network, the variables that back it, its config and (when the format carries one)
/// its tokenizer.
#[derive(Debug)]
pub struct LoadedModel {
    /// The network.
    pub model: CausalLm,
    /// The variables (trainable parameters) behind `model`; pass to optimisers and `save_pretrained`.
    pub vs: nn::VarStore,
    /// The model's configuration (same as `model.config()`).
    pub config: ModelConfig,
    /// The tokenizer, when the checkpoint carries one.
    pub tokenizer: Option<Tokenizer>,
}

/// Detects the format of `path` and loads it on `device` with parameters of kind `dtype` (`Kind::Float` or
/// `Kind::BFloat16`, `Kind::Half`):
/// * a folder with `config.json` → Hugging Face (`model.safetensors` or sharded `model.safetensors.index.json`,
///   `tokenizer.json`, `tokenizer_config.json` / `chat_template.jinja`, `generation_config.json`);
/// * a `.gguf` file → GGUF (see [`crate::gguf`]);
/// * a `.bin` file → llama2.c checkpoint, with its tokenizer found beside it (`tok{vocab}.bin` or `tokenizer.bin`).
pub fn load(path: &Path, device: Device, dtype: Kind) -> Result<LoadedModel> {
    if path.is_dir() {
        if path.join("config.json").is_file() {
            return hf::load_folder(path, device, dtype);
        }
        bail!(
            "{} is a folder without config.json (expected a Hugging Face model folder)",
            path.display()
        );
    }
    if !path.is_file() {
        bail!("model path {} does not exist", path.display());
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("gguf") => load_gguf(path, device, dtype),
        Some("bin") => llama2c::load(path, None, device, dtype),
        _ => bail!(
            "cannot tell the format of {}: expected a Hugging Face folder, a .gguf file or a llama2.c .bin file",
            path.display()
        ),
    }
}

/// GGUF loading lives in the `gguf` module (model-engine engineer); this is the single dispatch point.
fn load_gguf(path: &Path, device: Device, dtype: Kind) -> Result<LoadedModel> {
    crate::gguf::load(path, device, dtype)
}

/// Builds a [`LoadedModel`] from a config and Hugging Face–named tensors (any kind, any device): every model
/// parameter must be supplied exactly once with the right shape. `lm_head.weight` is ignored when embeddings are
/// tied, and `*.rotary_emb.inv_freq` buffers are ignored (recomputed from the config); any other unknown name is
/// an error, so a checkpoint for another architecture fails loudly instead of running with zeros.
pub fn from_named_tensors<I>(
    config: ModelConfig,
    tensors: I,
    device: Device,
    dtype: Kind,
    tokenizer: Option<Tokenizer>,
) -> Result<LoadedModel>
where
    I: IntoIterator<Item = Result<(String, Tensor)>>,
{
    let mut loader = ParamLoader::new(config, device, dtype)?;
    for item in tensors {
        let (name, tensor) = item?;
        loader.put(&name, &tensor)?;
    }
    loader.finish(tokenizer)
}

/// Incremental form of [`from_named_tensors`], for loaders that produce tensors one shard at a time.
#[derive(Debug)]
pub struct ParamLoader {
    config: ModelConfig,
    vs: nn::VarStore,
    model: CausalLm,
    vars: std::collections::HashMap<String, Tensor>,
    seen: std::collections::HashSet<String>,
}

impl ParamLoader {
    /// Allocates a zero-initialised model of `config` on `device` in `dtype`.
    pub fn new(config: ModelConfig, device: Device, dtype: Kind) -> Result<Self> {
        if !matches!(dtype, Kind::Float | Kind::BFloat16 | Kind::Half | Kind::Double) {
            bail!("unsupported model dtype {dtype:?} (f32, bf16, f16, f64)");
        }
        let mut vs = nn::VarStore::new(device);
        let model = CausalLm::with_init(&vs.root(), &config, WeightInit::Zeros)?;
        vs.set_kind(dtype);
        let vars = vs.variables();
        Ok(ParamLoader {
            config,
            vs,
            model,
            vars,
            seen: Default::default(),
        })
    }

    /// Copies one checkpoint tensor into the parameter of the same name (converting kind and device).
    pub fn put(&mut self, name: &str, tensor: &Tensor) -> Result<()> {
        if name.ends_with("rotary_emb.inv_freq") || (self.config.tie_word_embeddings && name == "lm_head.weight") {
            return Ok(());
        }
        let Some(var) = self.vars.get_mut(name) else {
            bail!(
                "checkpoint tensor {name} is not a parameter of a {} model",
                self.config.model_type
            );
        };
        if var.size() != tensor.size() {
            bail!(
                "checkpoint tensor {name} has shape {:?}, the config implies {:?}",
                tensor.size(),
                var.size()
            );
        }
        if !self.seen.insert(name.to_string()) {
            bail!("checkpoint tensor {name} appears twice");
        }
        tch::no_grad(|| var.copy_(tensor));
        Ok(())
    }

    /// Checks every parameter was supplied and returns the model.
    pub fn finish(self, tokenizer: Option<Tokenizer>) -> Result<LoadedModel> {
        let mut missing: Vec<&String> = self.vars.keys().filter(|k| !self.seen.contains(*k)).collect();
        if !missing.is_empty() {
            missing.sort();
            let shown: Vec<_> = missing.iter().take(5).collect();
            bail!("checkpoint is missing {} parameter(s), e.g. {:?}", missing.len(), shown);
        }
        Ok(LoadedModel {
            model: self.model,
            vs: self.vs,
            config: self.config,
            tokenizer,
        })
    }
}

impl LoadedModel {
    /// A model of `config` with transformers-style random weights (seeded by `seed` through tch's global RNG).
    pub fn random(config: ModelConfig, seed: i64, device: Device, dtype: Kind) -> Result<Self> {
        tch::manual_seed(seed);
        let mut vs = nn::VarStore::new(device);
        let model = CausalLm::new(&vs.root(), &config).context("building model")?;
        vs.set_kind(dtype);
        Ok(LoadedModel {
            model,
            vs,
            config,
            tokenizer: None,
        })
    }
}
