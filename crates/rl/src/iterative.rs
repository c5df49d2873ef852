//! Iterative RL with GRPO (DeepSeekMath §4.1.4, Algorithm 1), process supervision:
//!
//! ```text
//! for iteration = 1..I:
//!     π_ref ← π_θ
//!     M GRPO steps with the PRM's step rewards
//!     new PRM data from policy samples (Math-Shepherd labels)
//!     continue training the PRM on the new data + a replay of 10% of the historical data
//! ```
//!
//! The PRM update happens between iterations (after the last one it would never be used, so it is skipped). The
//! GRPO optimiser state persists across iterations; the PRM's too. Output: `metrics.jsonl` (every GRPO step, global
//! numbering, step 0 = accuracy before training), `iterations.jsonl` (per iteration: held-out accuracy, PRM data
//! sizes, PRM held-out step accuracy), `curves.png`, `summary.json`, `final/` (HF export), `reward_model/`, and
//! `checkpoints/iteration-N` after every iteration (resume continues after the latest one).

use anyhow::Context;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::advantage::AdvantageEstimator;
use crate::config::GrpoConfig;
use crate::metrics::{plot_curves, JsonlWriter, StepMetrics};
use crate::models::Models;
use crate::reward::RewardFunction;
use crate::reward_model::{evaluate_rm, RewardModel, RewardModelKind, RmExample, RmTrainer};
use crate::reward_training::{shepherd_examples, RmSection};
use crate::rollout::RolloutSampler;
use crate::run::{load_task, question_at};
use crate::task::Problem;
use crate::trainer::{evaluate, GrpoTrainer};

/// `[iterative]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IterativeSection {
    /// Iterations I (each starts with a reference reset).
    pub iterations: usize,
    /// GRPO steps M per iteration.
    pub steps_per_iteration: usize,
    /// Fraction of the historical PRM data replayed with each iteration's new data (paper: 10%).
    pub replay_fraction: f64,
}

impl Default for IterativeSection {
    fn default() -> Self {
        Self {
            iterations: 2,
            steps_per_iteration: 10,
            replay_fraction: 0.1,
        }
    }
}

/// The extra tables of an iterative-RL config: `[rm]` (the PRM and its Math-Shepherd data) and `[iterative]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IterativeConfig {
    /// The process reward model: initial training and per-iteration data.
    pub rm: RmSection,
    /// Iterations, steps and replay.
    pub iterative: IterativeSection,
}

/// Loads an iterative-RL config (a GRPO config plus `[rm]` and `[iterative]`).
pub fn load_iterative(path: &std::path::Path, overrides: &[String]) -> anyhow::Result<(GrpoConfig, IterativeConfig)> {
    let (config, tables) = crate::config::load_with_tables(path, overrides, &["rm", "iterative"])?;
    let extra: IterativeConfig = toml::Value::Table(tables)
        .try_into()
        .map_err(|e| anyhow::anyhow!("invalid [rm]/[iterative] in {}: {e}", path.display()))?;
    anyhow::ensure!(extra.iterative.iterations >= 1, "iterative.iterations must be ≥ 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&extra.iterative.replay_fraction),
        "iterative.replay_fraction must lie in [0, 1]"
    );
    Ok((config, extra))
}

/// One line of `iterations.jsonl`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IterationRecord {
    /// 1-based iteration.
    pub iteration: usize,
    /// Global GRPO steps done at the end of the iteration.
    pub steps: usize,
    /// Whether the reference was reset to the policy at the start of this iteration.
    pub reference_reset: bool,
    /// Held-out accuracy at the end of the iteration.
    pub eval_accuracy: Option<f64>,
    /// New PRM examples built after the iteration.
    pub new_rm_examples: usize,
    /// Historical examples replayed.
    pub replayed_rm_examples: usize,
    /// PRM held-out step accuracy after its update.
    pub rm_step_accuracy: Option<f64>,
}

/// Position of an iterative run, saved with every iteration checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct IterativeState {
    iteration: usize,
    grpo_step: usize,
    questions_seen: usize,
    rm_questions_seen: usize,
    rm_steps: usize,
    baseline_eval: Option<f64>,
}

fn write_lines<T: Serialize>(path: &std::path::Path, items: &[T]) -> anyhow::Result<()> {
    let text: String = items
        .iter()
        .map(|m| serde_json::to_string(m).map(|l| l + "\n"))
        .collect::<Result<_, _>>()?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The checkpoint of the latest completed iteration, `checkpoints/iteration-N` with a `state.json`.
fn latest_iteration_checkpoint(out: &std::path::Path) -> Option<std::path::PathBuf> {
    std::fs::read_dir(out.join("checkpoints"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n: usize = e.file_name().to_str()?.strip_prefix("iteration-")?.parse().ok()?;
            e.path().join("state.json").is_file().then_some((n, e.path()))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, p)| p)
}

/// Policy, GRPO optimiser, PRM and its optimiser, PRM history and position after an iteration (atomically). The
/// reference is not saved: every iteration after the first starts by resetting it to the policy.
fn save_iteration_checkpoint(
    out: &std::path::Path,
    state: &IterativeState,
    models: &Models,
    trainer: &GrpoTrainer,
    rm: &RewardModel,
    rm_trainer: &RmTrainer,
    history: &[RmExample],
) -> anyhow::Result<()> {
    let dir = out.join("checkpoints").join(format!("iteration-{}", state.iteration));
    crate::run::write_checkpoint(&dir, models, &trainer.optimizer, |tmp| {
        rm.save(&tmp.join("reward_model"))?;
        rm_trainer.save(&tmp.join("rm_optimizer.safetensors"))?;
        crate::reward_training::write_examples(&tmp.join("history.jsonl"), history)?;
        Ok(std::fs::write(
            tmp.join("state.json"),
            serde_json::to_string_pretty(state)?,
        )?)
    })
}

/// Final numbers of an iterative run.
#[derive(Clone, Debug, Serialize)]
pub struct IterativeSummary {
    /// Held-out accuracy before training.
    pub baseline_eval: Option<f64>,
    /// Per-iteration records.
    pub iterations: Vec<IterationRecord>,
}

/// A seeded `fraction` of `history` (rounded up; none for an empty history).
pub fn replay_sample(history: &[RmExample], fraction: f64, seed: u64) -> Vec<RmExample> {
    let n = ((history.len() as f64) * fraction).ceil() as usize;
    let mut idx: Vec<usize> = (0..history.len()).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    idx.into_iter()
        .take(n.min(history.len()))
        .map(|i| history[i].clone())
        .collect()
}

/// Runs Algorithm 1. `rm` (a PRM) and `rm_trainer` continue from `train-rm`; `history` is the PRM's training data so
/// far and `rm_held_out` the labelled steps its accuracy is reported on.
#[allow(clippy::too_many_arguments)]
pub fn run_iterative(
    config: &GrpoConfig,
    iterative: &IterativeSection,
    rm_section: &RmSection,
    models: &Models,
    sampler: &mut dyn RolloutSampler,
    verifier: &dyn RewardFunction,
    rm: &RewardModel,
    rm_trainer: &mut RmTrainer,
    mut history: Vec<RmExample>,
    rm_held_out: &[RmExample],
    resume: bool,
) -> anyhow::Result<IterativeSummary> {
    anyhow::ensure!(
        rm.meta.kind == RewardModelKind::Process && config.grpo.estimator == AdvantageEstimator::Process,
        "iterative RL runs process supervision: needs a process reward model and grpo.estimator = \"process\""
    );
    anyhow::ensure!(
        models.reference.is_some() || config.grpo.loss.beta == 0.0,
        "β > 0 needs a reference model"
    );
    let out = config.output.dir.clone();
    std::fs::create_dir_all(&out)?;
    let (train, eval) = load_task(config)?;
    let metrics_path = out.join("metrics.jsonl");
    let records_path = out.join("iterations.jsonl");
    let mut trainer = GrpoTrainer::new(config.clone(), models);
    let mut state = IterativeState {
        rm_questions_seen: rm_section.questions,
        ..Default::default()
    };
    let mut all_steps = Vec::new();
    let mut done_records = Vec::new();
    match resume.then(|| latest_iteration_checkpoint(&out)).flatten() {
        Some(dir) => {
            state = serde_json::from_str(&std::fs::read_to_string(dir.join("state.json"))?)
                .with_context(|| format!("reading {}/state.json", dir.display()))?;
            crate::run::load_weights(&models.policy.vs, &dir.join("policy.safetensors"))?;
            trainer.optimizer.load(&dir.join("optimizer.safetensors"))?;
            trainer.step = state.grpo_step;
            models.sync_rollout()?;
            crate::run::load_weights(&rm.model.vs, &dir.join("reward_model/reward_model.safetensors"))?;
            rm_trainer.load(&dir.join("rm_optimizer.safetensors"))?;
            rm_trainer.steps = state.rm_steps;
            history = crate::reward_training::read_examples(&dir.join("history.jsonl"))?;
            // Keep the records up to the checkpoint; later ones are redone.
            let kept = crate::metrics::read_metrics(&metrics_path).unwrap_or_default();
            let kept: Vec<StepMetrics> = kept.into_iter().filter(|m| m.step <= state.grpo_step).collect();
            write_lines(&metrics_path, &kept)?;
            all_steps = kept.into_iter().filter(|m| m.step > 0).collect();
            done_records = std::fs::read_to_string(&records_path)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<IterationRecord>(l).ok())
                .filter(|r| r.iteration <= state.iteration)
                .collect();
            write_lines(&records_path, &done_records)?;
            tracing::info!("resumed from {} (iteration {})", dir.display(), state.iteration);
        }
        None => {
            let _ = std::fs::remove_file(&metrics_path);
            let _ = std::fs::remove_file(&records_path);
            state.baseline_eval = if eval.is_empty() {
                None
            } else {
                Some(evaluate(config, models, sampler, &eval)?)
            };
            JsonlWriter::append(&metrics_path)?.write(&StepMetrics {
                step: 0,
                eval_accuracy: state.baseline_eval,
                ..Default::default()
            })?;
        }
    }
    let baseline = state.baseline_eval;
    let mut metrics = JsonlWriter::append(&metrics_path)?;
    let mut records = JsonlWriter::append(&records_path)?;
    let mut seen = state.questions_seen;
    let mut rm_questions_seen = state.rm_questions_seen;
    let mut summary = IterativeSummary {
        baseline_eval: baseline,
        iterations: done_records,
    };
    for it in state.iteration + 1..=iterative.iterations {
        let reset = it > 1;
        if reset {
            models.reset_reference()?;
            tracing::info!(iteration = it, "reference model reset to the current policy");
        }
        for s in 0..iterative.steps_per_iteration {
            let questions: Vec<Problem> = (0..config.grpo.questions_per_step)
                .map(|k| question_at(&train, config.seed, seen + k).clone())
                .collect();
            seen += questions.len();
            let (mut m, _) = trainer.step_with_process(models, sampler, verifier, Some(rm), &questions)?;
            let last = s + 1 == iterative.steps_per_iteration;
            let periodic = config.eval.every > 0 && trainer.step % config.eval.every == 0;
            if !eval.is_empty() && (last || periodic) {
                m.eval_accuracy = Some(evaluate(config, models, sampler, &eval)?);
            }
            tracing::info!(iteration = it, step = m.step, reward = format!("{:.3}", m.reward_mean), eval = ?m.eval_accuracy, "step");
            metrics.write(&m)?;
            all_steps.push(m);
            let _ = plot_curves(&all_steps, baseline, &out.join("curves.png"));
        }
        let mut record = IterationRecord {
            iteration: it,
            steps: trainer.step,
            reference_reset: reset,
            eval_accuracy: all_steps.last().and_then(|m| m.eval_accuracy),
            ..Default::default()
        };
        if it < iterative.iterations {
            let seed = config.seed.wrapping_add(0xC0FFEE).wrapping_add(it as u64);
            let (new, acc, _) = shepherd_examples(
                config,
                rm_section,
                models,
                sampler,
                verifier,
                &train,
                rm_questions_seen,
                seed,
            )?;
            rm_questions_seen += rm_section.questions;
            let replay = replay_sample(&history, iterative.replay_fraction, seed);
            record.new_rm_examples = new.len();
            record.replayed_rm_examples = replay.len();
            let mut data = new.clone();
            data.extend(replay);
            if !data.is_empty() {
                rm_trainer.train(rm, &data, &rm_section.train)?;
            }
            history.extend(new);
            if !rm_held_out.is_empty() {
                record.rm_step_accuracy = Some(evaluate_rm(rm, rm_held_out, rm_section.eval_batch_size)?.step_accuracy);
            }
            tracing::info!(iteration = it, sample_accuracy = acc, rm_step_accuracy = ?record.rm_step_accuracy, "PRM updated");
        }
        records.write(&record)?;
        summary.iterations.push(record);
        let state = IterativeState {
            iteration: it,
            grpo_step: trainer.step,
            questions_seen: seen,
            rm_questions_seen,
            rm_steps: rm_trainer.steps,
            baseline_eval: baseline,
        };
        save_iteration_checkpoint(&out, &state, models, &trainer, rm, rm_trainer, &history)?;
    }
    if trainer.step > 0 {
        seekmath_model::save_pretrained(&models.policy, &out.join("final"))?;
        rm.save(&out.join("reward_model"))?;
    }
    std::fs::write(out.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_takes_a_tenth_rounded_up_deterministically() {
        let history: Vec<RmExample> = (0..25)
            .map(|i| RmExample {
                ids: vec![i],
                positions: vec![0],
                labels: vec![1.0],
                question: i.to_string(),
            })
            .collect();
        let a = replay_sample(&history, 0.1, 7);
        assert_eq!(a.len(), 3);
        assert_eq!(a, replay_sample(&history, 0.1, 7));
        assert!(replay_sample(&[], 0.1, 7).is_empty());
    }
}
