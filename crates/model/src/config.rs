//! `ModelConfig`: the Hugging Face `config.json` of a decoder-only model, read with serde.
//!
//! One struct covers Llama, Mistral, Qwen2 and DeepSeek-LLM v1 (which ships as `model_type: "llama"`), because they
//! differ only in a few switches (biases, tied embeddings, RoPE scaling). Unknown keys are kept in `extra` so that a
//! config read and written back by seekmath loses nothing transformers needs.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// `eos_token_id` is an int in most configs and a list in some (Llama 3, Qwen2.5 instruct).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    /// A single id.
    One(u32),
    /// Several ids (any of them ends generation).
    Many(Vec<u32>),
}

impl TokenIds {
    /// The ids as a list.
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

/// RoPE parameters: the legacy `rope_scaling` object or transformers 5's `rope_parameters` (which also carries
/// `rope_theta`). Field names are Hugging Face's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RopeParameters {
    /// `default`, `linear`, `dynamic`, `llama3` or `yarn` (legacy configs spell the key `type`).
    #[serde(alias = "type", default, skip_serializing_if = "Option::is_none")]
    pub rope_type: Option<String>,
    /// Base of the rotary frequencies (only in `rope_parameters`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    /// Context-extension factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// Llama 3: wavelengths above `original_max / low_freq_factor` are fully scaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_freq_factor: Option<f64>,
    /// Llama 3: wavelengths below `original_max / high_freq_factor` are left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_freq_factor: Option<f64>,
    /// Context length the model was pre-trained with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_max_position_embeddings: Option<usize>,
    /// YaRN: scale applied to cos/sin (default `0.1 ln(factor) + 1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_factor: Option<f64>,
    /// YaRN: fast boundary of the linear ramp (default 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta_fast: Option<f64>,
    /// YaRN: slow boundary of the linear ramp (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta_slow: Option<f64>,
    /// YaRN (DeepSeek): numerator scale of the default attention factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mscale: Option<f64>,
    /// YaRN (DeepSeek): denominator scale of the default attention factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mscale_all_dim: Option<f64>,
    /// YaRN: whether the correction range is rounded to integers (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<bool>,
    /// Keys seekmath does not interpret, kept for saving.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The Hugging Face `config.json` of a Llama/Mistral/Qwen2/DeepSeek-LLM causal LM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// `llama`, `mistral`, `qwen2` (DeepSeek-LLM v1 checkpoints say `llama`).
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// HF class names, e.g. `["LlamaForCausalLM"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    /// Vocabulary size (rows of the embedding and of `lm_head`).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the SwiGLU hidden layer.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (GQA); defaults to `num_attention_heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width; defaults to `hidden_size / num_attention_heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    /// Longest context the position scheme is configured for.
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    /// Epsilon of every RMSNorm.
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f64,
    /// RoPE base (legacy key; transformers 5 puts it in `rope_parameters`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    /// Legacy RoPE scaling object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeParameters>,
    /// transformers 5 RoPE object (theta + scaling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<RopeParameters>,
    /// Whether `lm_head` shares the embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Llama/Mistral: bias on q/k/v/o projections. (Qwen2 always has q/k/v bias, never o bias.)
    #[serde(default)]
    pub attention_bias: bool,
    /// Bias on the MLP projections.
    #[serde(default)]
    pub mlp_bias: bool,
    /// Activation of the gated MLP; only `silu` is supported.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Std of the normal initialisation of fresh weights.
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    /// Beginning-of-sequence id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence id(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<TokenIds>,
    /// Padding id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<u32>,
    /// Every other key of config.json, preserved verbatim for saving (sliding_window, torch_dtype, ...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn default_model_type() -> String {
    "llama".into()
}
fn default_max_positions() -> usize {
    2048
}
fn default_rms_eps() -> f64 {
    1e-6
}
fn default_act() -> String {
    "silu".into()
}
fn default_init_range() -> f64 {
    0.02
}

/// Which RoPE frequency scheme a config asks for, with its parameters resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeKind {
    /// Plain RoPE.
    Default,
    /// Position interpolation: frequencies divided by `factor`.
    Linear {
        /// Divisor of every frequency.
        factor: f64,
    },
    /// Dynamic NTK: the base grows once the sequence exceeds `original_max` (transformers uses
    /// `max_position_embeddings` here, not the rope parameters' `original_max_position_embeddings`).
    Dynamic {
        /// NTK factor.
        factor: f64,
        /// Length beyond which the base is rescaled.
        original_max: usize,
    },
    /// Llama 3.1 wavelength-dependent scaling.
    Llama3 {
        /// Scale of the low frequencies.
        factor: f64,
        /// Low-frequency boundary factor.
        low_freq_factor: f64,
        /// High-frequency boundary factor.
        high_freq_factor: f64,
        /// Pre-training context length.
        original_max: usize,
    },
    /// YaRN (NTK-by-parts + attention temperature).
    Yarn {
        /// Context-extension factor.
        factor: f64,
        /// Pre-training context length.
        original_max: usize,
        /// Multiplier of cos/sin.
        attention_factor: f64,
        /// Ramp boundaries.
        beta_fast: f64,
        /// Ramp boundaries.
        beta_slow: f64,
        /// Round the correction range.
        truncate: bool,
    },
}

impl ModelConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let cfg: ModelConfig =
            serde_json::from_str(&text).with_context(|| format!("parsing model config {}", path.display()))?;
        cfg.validate()
            .with_context(|| format!("unsupported model config {}", path.display()))?;
        Ok(cfg)
    }

    /// Checks the architecture is one this crate implements and the shapes are consistent.
    pub fn validate(&self) -> Result<()> {
        match self.model_type.as_str() {
            "llama" | "mistral" | "qwen2" | "deepseek" => {}
            other => bail!("model_type {other:?} is not supported (llama, mistral, qwen2, deepseek)"),
        }
        if self.hidden_act != "silu" {
            bail!("hidden_act {:?} is not supported (silu only)", self.hidden_act);
        }
        if self.num_attention_heads == 0 || self.num_attention_heads % self.num_kv_heads() != 0 {
            bail!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads,
                self.num_kv_heads()
            );
        }
        if self.head_dim() % 2 != 0 {
            bail!("head_dim {} must be even for RoPE", self.head_dim());
        }
        self.rope_kind()?;
        Ok(())
    }

    /// Key/value heads (GQA groups).
    pub fn num_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Whether q/k/v projections carry a bias (always for Qwen2).
    pub fn qkv_bias(&self) -> bool {
        self.model_type == "qwen2" || self.attention_bias
    }

    /// Whether the output projection carries a bias (Qwen2 never has one).
    pub fn o_bias(&self) -> bool {
        self.model_type != "qwen2" && self.attention_bias
    }

    /// RoPE base.
    pub fn rope_theta(&self) -> f64 {
        self.rope_parameters
            .as_ref()
            .and_then(|p| p.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(10_000.0)
    }

    /// End-of-sequence ids from the config (may be empty).
    pub fn eos_token_ids(&self) -> Vec<u32> {
        self.eos_token_id.as_ref().map(TokenIds::to_vec).unwrap_or_default()
    }

    /// The RoPE scheme with Hugging Face's defaults filled in.
    pub fn rope_kind(&self) -> Result<RopeKind> {
        let Some(p) = self.rope_parameters.as_ref().or(self.rope_scaling.as_ref()) else {
            return Ok(RopeKind::Default);
        };
        let kind = p.rope_type.as_deref().unwrap_or("default");
        let factor = || p.factor.with_context(|| format!("rope type {kind} needs `factor`"));
        let original_max = p
            .original_max_position_embeddings
            .unwrap_or(self.max_position_embeddings);
        Ok(match kind {
            "default" => RopeKind::Default,
            "linear" => RopeKind::Linear { factor: factor()? },
            "dynamic" => RopeKind::Dynamic {
                factor: factor()?,
                original_max: self.max_position_embeddings,
            },
            "llama3" => RopeKind::Llama3 {
                factor: factor()?,
                low_freq_factor: p.low_freq_factor.unwrap_or(1.0),
                high_freq_factor: p.high_freq_factor.unwrap_or(4.0),
                original_max: p
                    .original_max_position_embeddings
                    .context("rope type llama3 needs `original_max_position_embeddings`")?,
            },
            "yarn" => {
                // DeepSeek-V3-style configs omit `factor`: it is the ratio of the context lengths.
                let factor = p
                    .factor
                    .unwrap_or(self.max_position_embeddings as f64 / original_max as f64);
                let mscale = |scale: f64| {
                    if factor <= 1.0 {
                        1.0
                    } else {
                        0.1 * scale * factor.ln() + 1.0
                    }
                };
                let default_attention = match (p.mscale, p.mscale_all_dim) {
                    (Some(m), Some(all)) if m != 0.0 && all != 0.0 => mscale(m) / mscale(all),
                    _ => mscale(1.0),
                };
                RopeKind::Yarn {
                    factor,
                    original_max,
                    attention_factor: p.attention_factor.unwrap_or(default_attention),
                    beta_fast: p.beta_fast.unwrap_or(32.0),
                    beta_slow: p.beta_slow.unwrap_or(1.0),
                    truncate: p.truncate.unwrap_or(true),
                }
            }
            other => bail!("rope type {other:?} is not supported (default, linear, dynamic, llama3, yarn)"),
        })
    }

    /// A fresh Llama-style config (used by tests, benchmarks and the llama2.c loader).
    #[allow(clippy::too_many_arguments)]
    pub fn llama(
        vocab_size: usize,
        hidden_size: usize,
        intermediate_size: usize,
        num_hidden_layers: usize,
        num_attention_heads: usize,
        num_key_value_heads: usize,
        max_position_embeddings: usize,
        rms_norm_eps: f64,
    ) -> Self {
        ModelConfig {
            model_type: "llama".into(),
            architectures: Some(vec!["LlamaForCausalLM".into()]),
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads: Some(num_key_value_heads),
            head_dim: None,
            max_position_embeddings,
            rms_norm_eps,
            rope_theta: Some(10_000.0),
            rope_scaling: None,
            rope_parameters: None,
            tie_word_embeddings: false,
            attention_bias: false,
            mlp_bias: false,
            hidden_act: "silu".into(),
            initializer_range: 0.02,
            bos_token_id: None,
            eos_token_id: None,
            pad_token_id: None,
            extra: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transformers5_qwen2_config() {
        let cfg: ModelConfig = serde_json::from_str(
            r#"{"model_type":"qwen2","vocab_size":100,"hidden_size":32,"intermediate_size":64,
            "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"rms_norm_eps":1e-6,
            "rope_parameters":{"rope_theta":1000000.0,"rope_type":"default"},"tie_word_embeddings":true,
            "eos_token_id":[5,6],"sliding_window":null}"#,
        )
        .unwrap();
        cfg.validate().unwrap();
        assert!(cfg.qkv_bias() && !cfg.o_bias());
        assert_eq!(cfg.rope_theta(), 1e6);
        assert_eq!(cfg.head_dim(), 8);
        assert_eq!(cfg.num_kv_heads(), 2);
        assert_eq!(cfg.eos_token_ids(), vec![5, 6]);
        assert_eq!(cfg.rope_kind().unwrap(), RopeKind::Default);
        // Unknown keys survive a round trip.
        let back = serde_json::to_value(&cfg).unwrap();
        assert!(back.get("sliding_window").is_some());
    }

    #[test]
    fn parses_legacy_llama3_rope_scaling() {
        let cfg: ModelConfig = serde_json::from_str(
            r#"{"vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,
            "num_attention_heads":2,"rope_theta":500000.0,"rope_scaling":{"type":"llama3","factor":8.0,
            "low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}"#,
        )
        .unwrap();
        assert_eq!(cfg.rope_theta(), 500000.0);
        assert!(matches!(
            cfg.rope_kind().unwrap(),
            RopeKind::Llama3 { original_max: 8192, .. }
        ));
        assert_eq!(cfg.num_kv_heads(), 2);
    }

    #[test]
    fn rejects_unknown_architecture() {
        let mut cfg = ModelConfig::llama(10, 8, 16, 1, 2, 2, 64, 1e-5);
        cfg.model_type = "gpt2".into();
        assert!(cfg.validate().is_err());
    }
}
