//! The GRPO run configuration: one TOML file, overridable with `--set section.key=value`.
//!
//! Defaults are the paper's (§4.2): policy learning rate 1e-6, KL coefficient β = 0.04, 64 outputs per question,
//! max length 1024, 1024 outputs per step (16 questions × 64), one policy update per exploration stage (μ = 1).
//! `configs/grpo-deepseekmath.toml` spells them out.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::advantage::{AdvantageEstimator, AdvantageOptions};
use crate::loss::GrpoLossOptions;
use crate::reward::VerifierRewardConfig;
use crate::rollout::RolloutParams;
use crate::task::ArithmeticOptions;

/// The whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct GrpoConfig {
    /// Policy/reference model and numerics.
    pub model: ModelSection,
    /// Where questions come from and how they are prompted.
    pub task: TaskSection,
    /// Sampling of the exploration stage.
    pub rollout: RolloutParams,
    /// Group size, batch shape, updates per stage, loss and advantage options.
    pub grpo: GrpoSection,
    /// Optimiser.
    pub optim: OptimSection,
    /// Rule-based reward.
    pub reward: VerifierRewardConfig,
    /// Learned reward models (outcome reward mixed into the verifier reward; process reward for §4.1.3).
    pub reward_model: RewardModelSection,
    /// Periodic held-out evaluation.
    pub eval: EvalSection,
    /// Output folder, logging, checkpoints.
    pub output: OutputSection,
    /// Seed of everything random (task generation, sampling, data order).
    pub seed: u64,
}

/// `[model]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSection {
    /// Initial policy: Hugging Face folder or `.gguf` file.
    pub path: PathBuf,
    /// Reference policy; empty = the initial policy.
    pub reference: Option<PathBuf>,
    /// `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when available).
    pub device: String,
    /// Compute precision: `bf16` (fp32 master weights, bf16 autocast and bf16 rollout/reference copies) or `f32`.
    pub precision: String,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            reference: None,
            device: "auto".into(),
            precision: "bf16".into(),
        }
    }
}

/// `[task]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskSection {
    /// `arithmetic` (generated), `gsm8k` (JSONL with `####` answers) or `jsonl` (`question`/`answer` records).
    pub kind: String,
    /// Training file (`gsm8k`/`jsonl`).
    pub train_path: Option<PathBuf>,
    /// Held-out file (`gsm8k`/`jsonl`).
    pub eval_path: Option<PathBuf>,
    /// Number of generated training problems (`arithmetic`).
    pub train_size: usize,
    /// Number of held-out problems (generated, or the first N of the file; 0 = all of the file).
    pub eval_size: usize,
    /// Generator difficulty (`arithmetic`).
    pub arithmetic: ArithmeticOptions,
    /// User message; `{question}` is replaced by the question.
    pub prompt_template: String,
    /// Optional system message.
    pub system_prompt: Option<String>,
    /// Render prompts with the tokenizer's chat template (instruct models); else the raw template text.
    pub chat_template: bool,
}

impl Default for TaskSection {
    fn default() -> Self {
        Self {
            kind: "arithmetic".into(),
            train_path: None,
            eval_path: None,
            train_size: 20_000,
            eval_size: 500,
            arithmetic: ArithmeticOptions::default(),
            prompt_template:
                "{question}\nThink step by step, then finish with \"The answer is N.\" where N is a number.".into(),
            system_prompt: None,
            chat_template: true,
        }
    }
}

/// `[grpo]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpoSection {
    /// Outputs sampled per question (G).
    pub group_size: usize,
    /// Questions per step; outputs per step = `questions_per_step × group_size`.
    pub questions_per_step: usize,
    /// Number of steps (exploration stages).
    pub steps: usize,
    /// Policy updates per exploration stage (μ); each update uses all of the stage's outputs.
    pub updates_per_stage: usize,
    /// Sequences per forward/backward; gradients are accumulated over the step.
    pub micro_batch_size: usize,
    /// Advantage estimator.
    pub estimator: AdvantageEstimator,
    /// Outcome-advantage options (scaling = `none` gives Dr. GRPO).
    pub advantage: AdvantageOptions,
    /// Loss options (ε, ε_high, β, aggregation).
    pub loss: GrpoLossOptions,
    /// Exclude completions that hit the length limit from the loss (DAPO's overlong masking).
    pub mask_truncated: bool,
    /// Drop groups whose rewards are all equal before the update (their advantages are 0 anyway; dropping saves
    /// compute and, under `grpo` aggregation, stops them diluting the mean).
    pub filter_zero_variance: bool,
}

impl Default for GrpoSection {
    fn default() -> Self {
        Self {
            group_size: 64,
            questions_per_step: 16,
            steps: 1000,
            updates_per_stage: 1,
            micro_batch_size: 16,
            estimator: AdvantageEstimator::Outcome,
            advantage: AdvantageOptions::default(),
            loss: GrpoLossOptions::default(),
            mask_truncated: false,
            filter_zero_variance: false,
        }
    }
}

/// `[reward_model]`: learned rewards. The outcome reward is `verifier_weight · verifier + outcome_weight · ORM`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardModelSection {
    /// Outcome reward model folder (`seekmath rl train-rm --kind outcome`); `None` = verifier only.
    pub outcome: Option<PathBuf>,
    /// Process reward model folder; required by `grpo.estimator = "process"`.
    pub process: Option<PathBuf>,
    /// Weight of the verifier reward in the outcome reward (0 = ORM alone).
    pub verifier_weight: f64,
    /// Weight of the ORM's probability of correctness in the outcome reward.
    pub outcome_weight: f64,
}

impl Default for RewardModelSection {
    fn default() -> Self {
        Self {
            outcome: None,
            process: None,
            verifier_weight: 1.0,
            outcome_weight: 0.0,
        }
    }
}

/// `[optim]` (AdamW).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimSection {
    /// Learning rate (paper: 1e-6).
    pub lr: f64,
    /// Adam β1.
    pub beta1: f64,
    /// Adam β2.
    pub beta2: f64,
    /// Adam ε.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value (0 = off).
    pub max_grad_norm: f64,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
}

impl Default for OptimSection {
    fn default() -> Self {
        Self {
            lr: 1e-6,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            warmup_steps: 0,
        }
    }
}

/// `[eval]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalSection {
    /// Evaluate every N steps (0 = only before and after training).
    pub every: usize,
    /// Greedy completion length limit.
    pub max_new_tokens: usize,
    /// Prompts per generation batch.
    pub batch_size: usize,
}

impl Default for EvalSection {
    fn default() -> Self {
        Self {
            every: 10,
            max_new_tokens: 512,
            batch_size: 64,
        }
    }
}

/// `[output]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputSection {
    /// Run folder: metrics.jsonl, curves.png, checkpoints/, final/ (Hugging Face export).
    pub dir: PathBuf,
    /// Save a checkpoint every N steps (0 = only at the end).
    pub checkpoint_every: usize,
    /// Write a few sample completions per step to samples.jsonl.
    pub log_samples: usize,
}

impl Default for OutputSection {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("runs/grpo"),
            checkpoint_every: 50,
            log_samples: 2,
        }
    }
}

impl GrpoConfig {
    /// Reads `path` and applies `--set key=value` overrides (dotted keys; values parsed as TOML, else strings).
    pub fn load(path: &Path, overrides: &[String]) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        let mut value: toml::Value =
            toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
        for o in overrides {
            apply_override(&mut value, o)?;
        }
        let config: GrpoConfig = value
            .try_into()
            .with_context(|| format!("invalid config {} (after --set overrides)", path.display()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the combinations that would otherwise fail deep inside a run.
    pub fn validate(&self) -> anyhow::Result<()> {
        let g = &self.grpo;
        anyhow::ensure!(
            g.group_size >= 2,
            "grpo.group_size must be ≥ 2 (advantages are relative to the group)"
        );
        anyhow::ensure!(g.questions_per_step >= 1, "grpo.questions_per_step must be ≥ 1");
        anyhow::ensure!(g.updates_per_stage >= 1, "grpo.updates_per_stage (μ) must be ≥ 1");
        anyhow::ensure!(g.micro_batch_size >= 1, "grpo.micro_batch_size must be ≥ 1");
        anyhow::ensure!(
            g.loss.epsilon > 0.0 && g.loss.epsilon < 1.0,
            "grpo.loss.epsilon must be in (0, 1)"
        );
        anyhow::ensure!(g.loss.beta >= 0.0, "grpo.loss.beta must be ≥ 0");
        anyhow::ensure!(
            self.reward_model.outcome.is_some() || self.reward_model.outcome_weight == 0.0,
            "reward_model.outcome_weight ≠ 0 needs reward_model.outcome"
        );
        anyhow::ensure!(self.optim.lr > 0.0, "optim.lr must be positive");
        anyhow::ensure!(
            matches!(self.model.precision.as_str(), "bf16" | "f32"),
            "model.precision: bf16 or f32"
        );
        anyhow::ensure!(
            matches!(self.task.kind.as_str(), "arithmetic" | "gsm8k" | "jsonl"),
            "task.kind {:?}: expected arithmetic, gsm8k or jsonl",
            self.task.kind
        );
        anyhow::ensure!(
            self.task.prompt_template.contains("{question}"),
            "task.prompt_template lacks {{question}}"
        );
        Ok(())
    }
}

/// Reads a config that is a [`GrpoConfig`] plus one extra top-level table `section` (e.g. `[method]`, `[rm]`,
/// `[iterative]`), applying `--set` overrides to both; the extra table is absent = its defaults.
pub fn load_with_section<T: serde::de::DeserializeOwned + Default>(
    path: &Path,
    overrides: &[String],
    section: &str,
) -> anyhow::Result<(GrpoConfig, T)> {
    let (config, mut tables) = load_with_tables(path, overrides, &[section])?;
    let extra: T = match tables.remove(section) {
        Some(v) => v
            .try_into()
            .with_context(|| format!("invalid [{section}] in {} (after --set overrides)", path.display()))?,
        None => T::default(),
    };
    Ok((config, extra))
}

/// Reads a config that is a [`GrpoConfig`] plus the extra top-level tables `sections`; returns the GRPO part and a
/// table holding those of the extra tables that are present (deserialise it into a struct with those fields).
pub fn load_with_tables(
    path: &Path,
    overrides: &[String],
    sections: &[&str],
) -> anyhow::Result<(GrpoConfig, toml::Table)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
    let mut value: toml::Value = toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
    for o in overrides {
        apply_override(&mut value, o)?;
    }
    let root = value
        .as_table_mut()
        .with_context(|| format!("{}: not a TOML table", path.display()))?;
    let mut extra = toml::Table::new();
    for s in sections {
        if let Some(v) = root.remove(*s) {
            extra.insert(s.to_string(), v);
        }
    }
    let config: GrpoConfig = value
        .try_into()
        .with_context(|| format!("invalid config {} (after --set overrides)", path.display()))?;
    config.validate()?;
    Ok((config, extra))
}

/// Sets `a.b.c = value` in a TOML tree, creating tables as needed.
pub fn apply_override(root: &mut toml::Value, assignment: &str) -> anyhow::Result<()> {
    let (key, raw) = assignment
        .split_once('=')
        .with_context(|| format!("--set {assignment:?}: expected key=value"))?;
    let key = key.trim();
    anyhow::ensure!(!key.is_empty(), "--set {assignment:?}: empty key");
    let raw = raw.trim();
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let mut node = root;
    let parts: Vec<&str> = key.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        let table = node
            .as_table_mut()
            .with_context(|| format!("--set {key}: {part} is not a table"))?;
        node = table
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    let table = node
        .as_table_mut()
        .with_context(|| format!("--set {key}: parent is not a table"))?;
    table.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_papers() {
        let c = GrpoConfig::default();
        assert_eq!(c.optim.lr, 1e-6);
        assert_eq!(c.grpo.loss.beta, 0.04);
        assert_eq!(c.grpo.group_size, 64);
        assert_eq!(c.rollout.max_new_tokens, 1024);
        assert_eq!(c.grpo.group_size * c.grpo.questions_per_step, 1024);
        assert_eq!(c.grpo.updates_per_stage, 1);
        assert_eq!(c.grpo.loss.aggregation, crate::loss::LossAggregation::Grpo);
    }

    #[test]
    fn overrides_parse_types_and_create_tables() {
        let mut v: toml::Value = toml::from_str("[grpo]\ngroup_size = 4\n").unwrap();
        apply_override(&mut v, "grpo.group_size=8").unwrap();
        apply_override(&mut v, "grpo.loss.aggregation=dapo").unwrap();
        apply_override(&mut v, "optim.lr = 2e-6").unwrap();
        apply_override(&mut v, "model.path=/tmp/m").unwrap();
        let c: GrpoConfig = v.try_into().unwrap();
        assert_eq!(c.grpo.group_size, 8);
        assert_eq!(c.grpo.loss.aggregation, crate::loss::LossAggregation::Dapo);
        assert_eq!(c.optim.lr, 2e-6);
        assert_eq!(c.model.path, PathBuf::from("/tmp/m"));
        let mut v: toml::Value = toml::from_str("").unwrap();
        assert!(apply_override(&mut v, "novalue").is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[grpo]\ngroup_sise = 4\n").unwrap();
        let err = GrpoConfig::load(&p, &[]).unwrap_err();
        assert!(format!("{err:#}").contains("group_sise"), "{err:#}");
        std::fs::write(&p, "[grpo]\ngroup_size = 1\n").unwrap();
        assert!(GrpoConfig::load(&p, &[]).is_err());
    }

    #[test]
    fn shipped_config_is_the_paper_default() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/grpo-deepseekmath.toml");
        let c = GrpoConfig::load(&p, &["model.path=/x".into()]).unwrap();
        let d = GrpoConfig::default();
        assert_eq!(c.optim, d.optim);
        assert_eq!(
            c.grpo,
            GrpoSection {
                steps: c.grpo.steps,
                micro_batch_size: c.grpo.micro_batch_size,
                ..d.grpo
            }
        );
        assert_eq!(c.rollout.max_new_tokens, 1024);
    }
}
