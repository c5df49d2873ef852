//! `seekmath rl train-rm`: builds reward-model data (a user-labelled file, or Math-Shepherd labels from policy
//! samples), splits it by question into train and held-out, trains the ORM/PRM with BCE and reports held-out
//! step-level accuracy before and after training.
//!
//! Output folder: the reward model (`reward_model.safetensors`, `reward_model.json`), `train.jsonl` and
//! `held_out.jsonl` (the token-space examples, reused by iterative RL as replay history), `report.json`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::config::GrpoConfig;
use crate::models::Models;
use crate::reward::RewardFunction;
use crate::reward_model::{
    evaluate_rm, read_labelled, split_by_question, RewardModel, RewardModelKind, RmEvaluation, RmExample,
    RmTrainOptions, RmTrainer,
};
use crate::rollout::RolloutSampler;
use crate::run::question_at;
use crate::shepherd::{shepherd_label, ShepherdOptions};
use crate::task::Problem;

/// `[rm]`: what reward model to train and on which labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RmSection {
    /// Outcome or process reward model.
    pub kind: RewardModelKind,
    /// Backbone initialisation; unset = `model.path` (the policy, as the paper initialises its RMs).
    pub base: Option<PathBuf>,
    /// Continue from a saved reward model instead of a fresh head on `base`.
    pub init: Option<PathBuf>,
    /// User-labelled JSONL (see [`crate::reward_model::read_labelled`]); unset = Math-Shepherd labels.
    pub labelled_path: Option<PathBuf>,
    /// Math-Shepherd: training questions whose policy samples get labelled.
    pub questions: usize,
    /// Fraction of questions held out for the step-accuracy report.
    pub held_out_fraction: f64,
    /// Math-Shepherd settings (also the PRM's step boundary).
    pub shepherd: ShepherdOptions,
    /// Optimisation.
    pub train: RmTrainOptions,
    /// Output folder.
    pub out: PathBuf,
    /// Examples per scoring forward in evaluation.
    pub eval_batch_size: usize,
}

impl Default for RmSection {
    fn default() -> Self {
        Self {
            kind: RewardModelKind::Process,
            base: None,
            init: None,
            labelled_path: None,
            questions: 64,
            held_out_fraction: 0.2,
            shepherd: ShepherdOptions::default(),
            train: RmTrainOptions::default(),
            out: PathBuf::from("runs/rm"),
            eval_batch_size: 32,
        }
    }
}

/// What `report.json` holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RmReport {
    /// Label source: `labelled:<path>` or `math-shepherd`.
    pub source: String,
    /// Training examples (completions) and labelled positions.
    pub train_examples: usize,
    /// Held-out examples.
    pub held_out_examples: usize,
    /// Held-out quality before training (zero head: every probability 0.5).
    pub before: RmEvaluation,
    /// Held-out quality after training.
    pub after: RmEvaluation,
    /// Mean training BCE per epoch.
    pub epoch_losses: Vec<f64>,
    /// Math-Shepherd: accuracy of the labelled policy samples.
    pub sample_accuracy: Option<f64>,
    /// Math-Shepherd: completions rolled out for step labels.
    pub completions: usize,
}

/// Builds a fresh (or continued) reward model as `section` says.
pub fn build_reward_model(
    config: &GrpoConfig,
    section: &RmSection,
    device: tch::Device,
) -> anyhow::Result<RewardModel> {
    match &section.init {
        Some(dir) => {
            let rm = RewardModel::load(dir, device)?;
            anyhow::ensure!(
                rm.meta.kind == section.kind,
                "{}: a {:?} reward model, rm.kind is {:?}",
                dir.display(),
                rm.meta.kind,
                section.kind
            );
            Ok(rm)
        }
        None => {
            let base = section.base.as_deref().unwrap_or(&config.model.path);
            RewardModel::new(base, section.kind, section.shepherd.boundary.clone(), device)
        }
    }
}

/// Math-Shepherd data on the first `count` training questions starting at `offset` (seeded order).
#[allow(clippy::too_many_arguments)]
pub fn shepherd_examples(
    config: &GrpoConfig,
    section: &RmSection,
    models: &Models,
    sampler: &mut dyn RolloutSampler,
    verifier: &dyn RewardFunction,
    train: &[Problem],
    offset: usize,
    seed: u64,
) -> anyhow::Result<(Vec<RmExample>, f64, usize)> {
    let questions: Vec<Problem> = (0..section.questions)
        .map(|k| question_at(train, config.seed ^ 0x5EED_5EED, offset + k).clone())
        .collect();
    // An ORM only needs each sample's verdict: label the last step only, so no completions are rolled out.
    let mut options = section.shepherd.clone();
    if section.kind == RewardModelKind::Outcome {
        options.max_steps = 1;
    }
    let data = shepherd_label(
        config,
        models.tokenizer(),
        sampler,
        verifier,
        &questions,
        &options,
        seed,
    )?;
    let examples = match section.kind {
        RewardModelKind::Process => data.process,
        RewardModelKind::Outcome => data.outcome,
    };
    Ok((examples, data.sample_accuracy, data.completions))
}

/// Writes examples as JSONL.
pub fn write_examples(path: &Path, examples: &[RmExample]) -> anyhow::Result<()> {
    let text: String = examples
        .iter()
        .map(|e| serde_json::to_string(e).map(|l| l + "\n"))
        .collect::<Result<_, _>>()?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Reads examples written by [`write_examples`].
pub fn read_examples(path: &Path) -> anyhow::Result<Vec<RmExample>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1)))
        .collect()
}

/// Trains a reward model end to end; returns it with its held-out examples and the report (also written to
/// `section.out`).
pub fn train_reward_model(
    config: &GrpoConfig,
    section: &RmSection,
    models: &Models,
    sampler: &mut dyn RolloutSampler,
    verifier: &dyn RewardFunction,
    train: &[Problem],
) -> anyhow::Result<(RewardModel, RmTrainer, Vec<RmExample>, Vec<RmExample>, RmReport)> {
    let rm = build_reward_model(config, section, models.device)?;
    let mut report = RmReport::default();
    let examples = match &section.labelled_path {
        Some(path) => {
            let (examples, skipped) = read_labelled(path, &rm, config)?;
            if skipped > 0 {
                tracing::warn!("{}: {skipped} records skipped", path.display());
            }
            report.source = format!("labelled:{}", path.display());
            examples
        }
        None => {
            let seed = config.seed.wrapping_add(0xA5A5);
            let (examples, acc, completions) =
                shepherd_examples(config, section, models, sampler, verifier, train, 0, seed)?;
            report.source = "math-shepherd".into();
            report.sample_accuracy = Some(acc);
            report.completions = completions;
            examples
        }
    };
    let (train_set, held_out) = split_by_question(examples, section.held_out_fraction, config.seed);
    anyhow::ensure!(
        !train_set.is_empty(),
        "no reward-model training examples after the held-out split"
    );
    report.train_examples = train_set.len();
    report.held_out_examples = held_out.len();
    report.before = evaluate_rm(&rm, &held_out, section.eval_batch_size)?;
    let mut trainer = RmTrainer::new(&rm);
    report.epoch_losses = trainer.train(&rm, &train_set, &section.train)?;
    report.after = evaluate_rm(&rm, &held_out, section.eval_batch_size)?;
    tracing::info!(
        before = report.before.step_accuracy,
        after = report.after.step_accuracy,
        positions = report.after.positions,
        "reward model held-out step accuracy"
    );
    rm.save(&section.out)?;
    write_examples(&section.out.join("train.jsonl"), &train_set)?;
    write_examples(&section.out.join("held_out.jsonl"), &held_out)?;
    std::fs::write(section.out.join("report.json"), serde_json::to_string_pretty(&report)?)?;
    Ok((rm, trainer, train_set, held_out, report))
}

/// The PRM iterative RL starts from: `section.init` with its saved `train.jsonl` (history) and `held_out.jsonl`
/// when that folder came from `rl train-rm` (the optimiser restarts: Adam moments are not saved), else a PRM trained
/// now with [`train_reward_model`].
pub fn initial_reward_model(
    config: &GrpoConfig,
    section: &RmSection,
    models: &Models,
    sampler: &mut dyn RolloutSampler,
    verifier: &dyn RewardFunction,
    train: &[Problem],
) -> anyhow::Result<(RewardModel, RmTrainer, Vec<RmExample>, Vec<RmExample>)> {
    if let Some(dir) = &section.init {
        let history_path = dir.join("train.jsonl");
        if history_path.is_file() {
            let rm = build_reward_model(config, section, models.device)?;
            let history = read_examples(&history_path)?;
            let held_path = dir.join("held_out.jsonl");
            let held_out = if held_path.is_file() {
                read_examples(&held_path)?
            } else {
                Vec::new()
            };
            tracing::info!(dir = %dir.display(), history = history.len(), held_out = held_out.len(), "PRM reused");
            let trainer = RmTrainer::new(&rm);
            return Ok((rm, trainer, history, held_out));
        }
    }
    let (rm, trainer, history, held_out, _) = train_reward_model(config, section, models, sampler, verifier, train)?;
    Ok((rm, trainer, history, held_out))
}
