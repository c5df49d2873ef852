//! The training configuration: one TOML file with every hyper-parameter of DeepSeekMath §2.2.1 (continued
//! pre-training) and §3.2 (SFT) as a named key, plus `--set key=value` overrides.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default). The paper's values ship as
//! `configs/pretrain-deepseekmath.toml`, `configs/pretrain-corpus-ablation-1.3b.toml` and
//! `configs/sft-deepseekmath.toml`.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which stage a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Continued pre-training on a token mixture.
    Pretrain,
    /// Supervised fine-tuning on prompt/response records.
    Sft,
}

/// Numeric precision of the forward/backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// Everything in f32 (CPU default; what the parity tests use).
    F32,
    /// f32 master weights and optimizer state; matmuls and attention in bf16 through autocast (PyTorch AMP).
    Bf16Autocast,
}

/// Learning-rate schedule shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// DeepSeek's multi-step schedule: warm-up, then constant with step-downs at milestones.
    MultiStep,
    /// Warm-up, then constant (the paper's SFT schedule, with no warm-up).
    Constant,
    /// Warm-up, then cosine decay to `min_lr_ratio * peak_lr`.
    Cosine,
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Run-level settings.
    pub run: RunConfig,
    /// Model initialisation.
    pub model: ModelSection,
    /// Pre-training data mixture (used by `train pretrain`).
    #[serde(default)]
    pub data: DataConfig,
    /// SFT data (used by `train sft`).
    #[serde(default)]
    pub sft: SftConfig,
    /// Optimizer and batch.
    pub optim: OptimConfig,
    /// Learning-rate schedule.
    pub schedule: ScheduleConfig,
    /// Checkpointing.
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    /// Metrics and logging.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Held-out evaluation.
    #[serde(default)]
    pub eval: EvalConfig,
}

/// `[run]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Folder for checkpoints, metrics, and the final export (`<output_dir>/final`).
    pub output_dir: PathBuf,
    /// Seed for data order, mixture sampling, SFT concatenation and random initialisation.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when available).
    #[serde(default = "default_device")]
    pub device: String,
    /// Compute precision.
    #[serde(default = "default_precision")]
    pub precision: Precision,
    /// Recompute each decoder layer's activations in the backward pass (saves memory, costs ~30% compute).
    #[serde(default)]
    pub activation_checkpointing: bool,
}

/// `[model]`: exactly one of `path` (load weights) or `config_json` (random initialisation) must be set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// The model to start from: Hugging Face folder, `.gguf` or llama2.c `.bin` (what `seekmath_model::load` reads).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// A Hugging Face `config.json` to initialise randomly (from scratch, seeded by `run.seed`).
    #[serde(default)]
    pub config_json: Option<PathBuf>,
    /// A tokenizer folder (tokenizer.json + tokenizer_config.json) when the model file has none.
    #[serde(default)]
    pub tokenizer: Option<PathBuf>,
}

/// `[data]`: the pre-training mixture (§2.2.1: 56% math corpus, 4% AlgebraicStack, 10% arXiv, 20% code, 10% NL).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Tokens per training sequence (4K in the paper).
    #[serde(default = "default_context")]
    pub context_length: usize,
    /// Stop attention at document boundaries inside a packed sequence (the paper packs without it; off by default).
    #[serde(default)]
    pub document_boundary_attention: bool,
    /// The sources and their sampling weights (normalised to sum to 1).
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
}

/// One `[[data.sources]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Name used in logs and metrics.
    pub name: String,
    /// Share of training sequences drawn from this source.
    pub weight: f64,
    /// Token shard files (`*.smtok`, written by `seekmath train tokenize`) or folders of them.
    pub paths: Vec<PathBuf>,
}

/// `[sft]`: §3.2 instruction tuning data.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftConfig {
    /// JSONL files of records: `{"messages":[{"role","content"}...]}`, `{"prompt","response"}`,
    /// `{"question","answer"}` (GSM8K) or `{"problem","solution"}` (MATH).
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// Randomly concatenate examples up to the context length (the paper does); else one example per row.
    #[serde(default = "default_true")]
    pub concatenate: bool,
    /// Wrap records with the tokenizer's chat template (else plain `prompt + response + eos`).
    #[serde(default = "default_true")]
    pub use_chat_template: bool,
    /// Optional system prompt prepended to every conversation.
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Examples longer than the context are truncated (response side) when true, else skipped with a count.
    #[serde(default)]
    pub truncate_long: bool,
}

/// `[optim]`: AdamW and the batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// Peak learning rate (4.2e-4 for DeepSeekMath-Base 7B, 5.3e-4 for the 1.3B ablations, 5e-5 for SFT).
    pub peak_lr: f64,
    /// AdamW β1.
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    /// AdamW β2 (0.95 in the paper).
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// AdamW ε.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Decoupled weight decay (0.1), applied to matrices only — never to norms or biases.
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// Clip the global gradient L2 norm to this value (0 = off).
    #[serde(default = "default_clip")]
    pub grad_clip: f64,
    /// Tokens per optimizer step (10M for the 7B run, 4M for the 1.3B ablations, 256×4K for SFT); divided by the
    /// context length into sequences, reached by gradient accumulation over micro-batches.
    pub batch_tokens: usize,
    /// Sequences per forward/backward pass.
    #[serde(default = "default_micro_batch")]
    pub micro_batch_size: usize,
    /// Use the fused multi-tensor AdamW kernel (through seekmath-shim) instead of per-parameter tensor ops.
    #[serde(default = "default_true")]
    pub fused: bool,
}

/// `[schedule]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Shape.
    pub kind: ScheduleKind,
    /// Linear warm-up steps to the peak (2000 in the paper).
    #[serde(default)]
    pub warmup_steps: usize,
    /// Total optimizer steps; when 0, derived from `train_tokens / batch_tokens`.
    #[serde(default)]
    pub total_steps: usize,
    /// Training tokens (500B for DeepSeekMath-Base, 150B for the 1.3B ablations); used when `total_steps` is 0.
    #[serde(default)]
    pub train_tokens: f64,
    /// Multi-step milestones as fractions of training (0.8, 0.9).
    #[serde(default = "default_milestones")]
    pub milestones: Vec<f64>,
    /// LR multipliers from each milestone on (0.316, 0.1).
    #[serde(default = "default_milestone_factors")]
    pub milestone_factors: Vec<f64>,
    /// Cosine floor as a fraction of the peak.
    #[serde(default = "default_min_lr_ratio")]
    pub min_lr_ratio: f64,
}

/// `[checkpoint]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Write checkpoints at all (benchmarks turn this off; `--resume` then has nothing to resume from).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Save every N optimizer steps (0 = only at the end).
    #[serde(default = "default_checkpoint_every")]
    pub every_steps: usize,
    /// Keep this many most recent checkpoints (older ones are deleted after a newer one is complete).
    #[serde(default = "default_keep_last")]
    pub keep_last: usize,
    /// Write the final model in Hugging Face format to `<output_dir>/final`.
    #[serde(default = "default_true")]
    pub export_final: bool,
}

/// `[metrics]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Log every N steps.
    #[serde(default = "default_one")]
    pub log_every: usize,
    /// Also write TensorBoard event files under `<output_dir>/tensorboard`.
    #[serde(default = "default_true")]
    pub tensorboard: bool,
    /// Peak dense bf16 FLOP/s of one device for MFU (0 = known GPUs by name; CPU: MFU not reported).
    #[serde(default)]
    pub peak_flops: f64,
    /// Show a progress bar (off automatically when stderr is not a terminal).
    #[serde(default = "default_true")]
    pub progress_bar: bool,
}

/// `[eval]`: held-out loss.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(Default)]
pub struct EvalConfig {
    /// Evaluate every N steps (0 = only before and after training).
    #[serde(default)]
    pub every_steps: usize,
    /// SFT: hold out this many examples (chosen by seed) from the training records for the held-out loss.
    #[serde(default)]
    pub holdout_examples: usize,
    /// Separate held-out files (same formats as the training data); take precedence over `holdout_examples`.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// Pre-training: number of sequences for the held-out loss (drawn from a separate seed stream).
    #[serde(default)]
    pub sequences: usize,
}

fn default_seed() -> u64 {
    42
}
fn default_device() -> String {
    "auto".into()
}
fn default_precision() -> Precision {
    Precision::F32
}
fn default_context() -> usize {
    4096
}
fn default_true() -> bool {
    true
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.95
}
fn default_eps() -> f64 {
    1e-8
}
fn default_weight_decay() -> f64 {
    0.1
}
fn default_clip() -> f64 {
    1.0
}
fn default_micro_batch() -> usize {
    1
}
fn default_milestones() -> Vec<f64> {
    vec![0.8, 0.9]
}
fn default_milestone_factors() -> Vec<f64> {
    vec![0.316, 0.1]
}
fn default_min_lr_ratio() -> f64 {
    0.1
}
fn default_checkpoint_every() -> usize {
    1000
}
fn default_keep_last() -> usize {
    2
}
fn default_one() -> usize {
    1
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            context_length: default_context(),
            document_boundary_attention: false,
            sources: Vec::new(),
        }
    }
}
impl Default for SftConfig {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            concatenate: true,
            use_chat_template: true,
            system_prompt: None,
            truncate_long: false,
        }
    }
}
impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            every_steps: default_checkpoint_every(),
            keep_last: default_keep_last(),
            export_final: true,
        }
    }
}
impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            log_every: 1,
            tensorboard: true,
            peak_flops: 0.0,
            progress_bar: true,
        }
    }
}

impl TrainConfig {
    /// Reads `path`, applies `overrides` (`key.path=value`, value parsed as TOML, else taken as a string), and
    /// validates. Relative paths inside the file are resolved against the file's folder.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml_str(&text, overrides, base).with_context(|| format!("config {}", path.display()))
    }

    /// Parses TOML text with overrides; relative paths are resolved against `base`.
    pub fn from_toml_str(text: &str, overrides: &[String], base: &Path) -> Result<Self> {
        let mut value: toml::Table = toml::from_str(text).context("parsing TOML")?;
        for item in overrides {
            apply_override(&mut value, item)?;
        }
        let mut cfg: TrainConfig = toml::Value::Table(value)
            .try_into()
            .context("invalid configuration (unknown key or wrong type?)")?;
        cfg.resolve_paths(base);
        cfg.validate()?;
        Ok(cfg)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.run.output_dir);
        for p in [
            &mut self.model.path,
            &mut self.model.config_json,
            &mut self.model.tokenizer,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
        for source in &mut self.data.sources {
            source.paths.iter_mut().for_each(fix);
        }
        self.sft.paths.iter_mut().for_each(fix);
        self.eval.paths.iter_mut().for_each(fix);
    }

    /// Checks consistency; errors name the offending key.
    pub fn validate(&self) -> Result<()> {
        if self.model.path.is_some() == self.model.config_json.is_some() {
            bail!("exactly one of model.path and model.config_json must be set");
        }
        if self.data.context_length < 2 {
            bail!("data.context_length must be at least 2");
        }
        if self.optim.micro_batch_size == 0 {
            bail!("optim.micro_batch_size must be positive");
        }
        if self.optim.batch_tokens < self.data.context_length {
            bail!(
                "optim.batch_tokens ({}) is smaller than one sequence ({})",
                self.optim.batch_tokens,
                self.data.context_length
            );
        }
        if !(0.0..1.0).contains(&self.optim.beta1) || !(0.0..1.0).contains(&self.optim.beta2) {
            bail!("optim.beta1/beta2 must be in [0, 1)");
        }
        if self.optim.peak_lr <= 0.0 {
            bail!("optim.peak_lr must be positive");
        }
        if self.schedule.milestones.len() != self.schedule.milestone_factors.len() {
            bail!("schedule.milestones and schedule.milestone_factors must have the same length");
        }
        if self.schedule.milestones.windows(2).any(|w| w[0] >= w[1])
            || self.schedule.milestones.iter().any(|m| !(0.0..=1.0).contains(m))
        {
            bail!("schedule.milestones must be increasing fractions in [0, 1]");
        }
        if self.schedule.total_steps == 0 && self.schedule.train_tokens <= 0.0 {
            bail!("set schedule.total_steps or schedule.train_tokens");
        }
        for s in &self.data.sources {
            if !(s.weight >= 0.0 && s.weight.is_finite()) {
                bail!("data.sources '{}': weight must be a non-negative number", s.name);
            }
        }
        Ok(())
    }

    /// Sequences per optimizer step: `batch_tokens / context_length`, rounded to a multiple of the micro-batch.
    pub fn sequences_per_step(&self) -> usize {
        let seqs = (self.optim.batch_tokens as f64 / self.data.context_length as f64).round() as usize;
        let micro = self.optim.micro_batch_size;
        (seqs.div_ceil(micro) * micro).max(micro)
    }

    /// Gradient-accumulation micro-batches per optimizer step.
    pub fn accumulation_steps(&self) -> usize {
        self.sequences_per_step() / self.optim.micro_batch_size
    }

    /// Total optimizer steps (given, or derived from the token budget).
    pub fn total_steps(&self) -> usize {
        if self.schedule.total_steps > 0 {
            return self.schedule.total_steps;
        }
        let tokens_per_step = (self.sequences_per_step() * self.data.context_length) as f64;
        (self.schedule.train_tokens / tokens_per_step).ceil().max(1.0) as usize
    }
}

/// Sets `a.b.c = value` in a TOML table; the value is parsed as a TOML value (`1e-4`, `true`, `[1, 2]`, `"x"`),
/// falling back to a bare string.
pub fn apply_override(table: &mut toml::Table, item: &str) -> Result<()> {
    let (key, raw) = item
        .split_once('=')
        .with_context(|| format!("--set '{item}': expected key=value"))?;
    let key = key.trim();
    let raw = raw.trim();
    let parsed: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").expect("parsed key"),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        bail!("--set '{item}': empty key segment");
    }
    let mut current = table;
    for part in &parts[..parts.len() - 1] {
        let entry = current
            .entry(part.to_string())
            .or_insert(toml::Value::Table(Default::default()));
        current = entry
            .as_table_mut()
            .with_context(|| format!("--set '{item}': '{part}' is not a table"))?;
    }
    current.insert(parts[parts.len() - 1].to_string(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [run]
        output_dir = "out"
        [model]
        config_json = "tiny.json"
        [optim]
        peak_lr = 1e-3
        batch_tokens = 64
        [schedule]
        kind = "multi-step"
        total_steps = 10
    "#;

    #[test]
    fn overrides_parse_as_toml_values_and_reach_nested_keys() {
        let cfg = TrainConfig::from_toml_str(
            MINIMAL,
            &[
                "optim.peak_lr=5e-5".into(),
                "data.context_length=16".into(),
                "run.device=cpu".into(),
            ],
            Path::new("/base"),
        )
        .unwrap();
        assert_eq!(cfg.optim.peak_lr, 5e-5);
        assert_eq!(cfg.data.context_length, 16);
        assert_eq!(cfg.run.device, "cpu");
        assert_eq!(cfg.run.output_dir, PathBuf::from("/base/out"));
        assert_eq!(cfg.sequences_per_step(), 4);
        assert_eq!(cfg.optim.beta2, 0.95);
    }

    #[test]
    fn unknown_keys_and_inconsistent_values_are_errors() {
        let err = TrainConfig::from_toml_str(MINIMAL, &["optim.peak_lrr=1".into()], Path::new(".")).unwrap_err();
        assert!(format!("{err:#}").contains("peak_lrr"), "{err:#}");
        assert!(TrainConfig::from_toml_str(
            MINIMAL,
            &["optim.batch_tokens=8".into(), "data.context_length=16".into()],
            Path::new(".")
        )
        .is_err());
        assert!(
            TrainConfig::from_toml_str(MINIMAL, &["schedule.milestones=[0.9, 0.8]".into()], Path::new(".")).is_err()
        );
        assert!(TrainConfig::from_toml_str(MINIMAL, &["novalue".into()], Path::new(".")).is_err());
    }

    #[test]
    fn total_steps_derive_from_the_token_budget() {
        let cfg = TrainConfig::from_toml_str(
            MINIMAL,
            &[
                "schedule.total_steps=0".into(),
                "schedule.train_tokens=1000".into(),
                "data.context_length=16".into(),
            ],
            Path::new("."),
        )
        .unwrap();
        // 64 tokens per step → ceil(1000 / 64) = 16 steps.
        assert_eq!(cfg.total_steps(), 16);
    }

    #[test]
    fn shipped_paper_configs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        for name in [
            "pretrain-deepseekmath.toml",
            "pretrain-corpus-ablation-1.3b.toml",
            "sft-deepseekmath.toml",
        ] {
            let cfg = TrainConfig::load(&dir.join(name), &[]).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(
                (cfg.optim.beta1, cfg.optim.beta2, cfg.optim.weight_decay),
                (0.9, 0.95, 0.1),
                "{name}"
            );
        }
        let pre = TrainConfig::load(&dir.join("pretrain-deepseekmath.toml"), &[]).unwrap();
        assert_eq!(pre.optim.peak_lr, 4.2e-4);
        assert_eq!(pre.schedule.warmup_steps, 2000);
        assert_eq!(pre.schedule.milestone_factors, vec![0.316, 0.1]);
        let weights: Vec<f64> = pre.data.sources.iter().map(|s| s.weight).collect();
        assert_eq!(weights, vec![0.56, 0.04, 0.10, 0.20, 0.10]);
        let sft = TrainConfig::load(&dir.join("sft-deepseekmath.toml"), &[]).unwrap();
        assert_eq!(
            (sft.optim.peak_lr, sft.total_steps(), sft.sequences_per_step()),
            (5e-5, 500, 256)
        );
    }
}
