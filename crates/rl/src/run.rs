//! A whole GRPO run: data, periodic held-out evaluation, metrics, curves, checkpoints, `--resume`, HF export.
//!
//! Run folder layout: `config.toml` (the resolved config), `metrics.jsonl` (one [`StepMetrics`] per step, plus the
//! step-0 evaluation as a record with `step = 0`), `tensorboard/` (the same scalars as `grpo/*`), `samples.jsonl`,
//! `curves.png`, `checkpoints/step-N/`
//! (`policy.safetensors`, `optimizer.safetensors`, `state.json`), and `final/` (Hugging Face folder).

use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::GrpoConfig;
use crate::metrics::{plot_curves, read_metrics, JsonlWriter, StepMetrics};
use crate::models::Models;
use crate::reward::RewardFunction;
use crate::rollout::RolloutSampler;
use crate::task::{arithmetic_splits, read_gsm8k, read_problems, Problem};
use crate::trainer::{evaluate, GrpoTrainer};

/// Training and held-out problems of a run.
pub fn load_task(config: &GrpoConfig) -> anyhow::Result<(Vec<Problem>, Vec<Problem>)> {
    let t = &config.task;
    let (train, mut eval) = match t.kind.as_str() {
        "arithmetic" => {
            let s = arithmetic_splits(config.seed, t.train_size, t.eval_size, &t.arithmetic)?;
            (s.train, s.held_out)
        }
        kind => {
            let read = |p: &Option<PathBuf>, what: &str| -> anyhow::Result<Vec<Problem>> {
                let p = p
                    .as_ref()
                    .with_context(|| format!("task.kind = {kind} needs task.{what}"))?;
                let (problems, skipped) = if kind == "gsm8k" {
                    read_gsm8k(p)?
                } else {
                    read_problems(p)?
                };
                if skipped > 0 {
                    tracing::warn!("{}: {skipped} malformed records skipped", p.display());
                }
                Ok(problems)
            };
            // No held-out file: a run without periodic evaluation (speed runs).
            let eval = match &t.eval_path {
                Some(_) => read(&t.eval_path, "eval_path")?,
                None => Vec::new(),
            };
            (read(&t.train_path, "train_path")?, eval)
        }
    };
    if t.eval_size > 0 && eval.len() > t.eval_size {
        eval.truncate(t.eval_size);
    }
    anyhow::ensure!(!train.is_empty(), "the task has no training problems");
    let eval_questions: std::collections::HashSet<&str> = eval.iter().map(|p| p.question.as_str()).collect();
    let overlap = train
        .iter()
        .filter(|p| eval_questions.contains(p.question.as_str()))
        .count();
    anyhow::ensure!(
        overlap == 0,
        "{overlap} training questions also appear in the held-out set"
    );
    Ok((train, eval))
}

/// Persistent position of a run, written beside every checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RunState {
    /// Steps completed.
    pub step: usize,
    /// Questions consumed so far (the order is a seeded shuffle per epoch).
    pub questions_seen: usize,
    /// Held-out accuracy before training.
    pub baseline_eval: Option<f64>,
}

/// The `i`-th question of the seeded epoch-wise shuffled order.
pub(crate) fn question_at(train: &[Problem], seed: u64, index: usize) -> &Problem {
    let epoch = index / train.len();
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(
        seed ^ (epoch as u64).wrapping_mul(0xA24B_AED4_963E_E407),
    ));
    &train[order[index % train.len()]]
}

fn checkpoint_dir(out: &Path, step: usize) -> PathBuf {
    out.join("checkpoints").join(format!("step-{step}"))
}

/// Latest complete checkpoint in `out`, if any.
pub fn latest_checkpoint(out: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(out.join("checkpoints")).ok()?;
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let step: usize = e.file_name().to_str()?.strip_prefix("step-")?.parse().ok()?;
            e.path().join("state.json").is_file().then_some((step, e.path()))
        })
        .max_by_key(|(s, _)| *s)
        .map(|(_, p)| p)
}

/// Writes a checkpoint folder atomically: `fill` writes into `dir.partial`, which then replaces `dir`, so a crash
/// leaves either the old checkpoint or the new one, never half of one. The policy weights and its optimiser state
/// (`policy.safetensors`, `optimizer.safetensors`) are written first; `fill` adds the rest, `state.json` included.
pub(crate) fn write_checkpoint(
    dir: &Path,
    models: &Models,
    optimizer: &crate::optim::AdamW,
    fill: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let tmp = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    models
        .policy
        .vs
        .save(tmp.join("policy.safetensors"))
        .context("saving policy weights")?;
    optimizer.save(&tmp.join("optimizer.safetensors"))?;
    fill(&tmp)?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir).with_context(|| format!("finalising checkpoint {}", dir.display()))?;
    tracing::info!("checkpoint {}", dir.display());
    Ok(())
}

fn save_checkpoint(out: &Path, trainer: &GrpoTrainer, models: &Models, state: &RunState) -> anyhow::Result<()> {
    write_checkpoint(&checkpoint_dir(out, state.step), models, &trainer.optimizer, |tmp| {
        Ok(std::fs::write(
            tmp.join("state.json"),
            serde_json::to_string_pretty(state)?,
        )?)
    })
}

/// Copies weights saved by `VarStore::save` into `vs` in place, so samplers borrowing the network see them.
pub(crate) fn load_weights(vs: &tch::nn::VarStore, path: &Path) -> anyhow::Result<()> {
    let saved: std::collections::HashMap<String, tch::Tensor> = tch::Tensor::read_safetensors(path)
        .with_context(|| format!("reading {}", path.display()))?
        .into_iter()
        .collect();
    let _guard = tch::no_grad_guard();
    for (name, mut var) in vs.variables() {
        let src = saved
            .get(&name)
            .with_context(|| format!("{}: missing {name}", path.display()))?;
        var.copy_(src);
    }
    Ok(())
}

fn load_checkpoint(dir: &Path, trainer: &mut GrpoTrainer, models: &Models) -> anyhow::Result<RunState> {
    let state: RunState = serde_json::from_str(&std::fs::read_to_string(dir.join("state.json"))?)
        .with_context(|| format!("reading {}/state.json", dir.display()))?;
    load_weights(&models.policy.vs, &dir.join("policy.safetensors"))?;
    trainer.optimizer.load(&dir.join("optimizer.safetensors"))?;
    trainer.step = state.step;
    models.sync_rollout()?;
    Ok(state)
}

/// Options of [`run_grpo`] that are not part of the config.
pub struct RunOptions {
    /// Continue from the latest checkpoint in the output folder.
    pub resume: bool,
}

/// Final numbers of a run.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    /// Held-out accuracy before training.
    pub baseline_eval: Option<f64>,
    /// Held-out accuracy after the last step.
    pub final_eval: Option<f64>,
    /// Steps completed.
    pub steps: usize,
    /// Mean seconds per step (this process only).
    pub seconds_per_step: f64,
}

/// Runs GRPO as `config` says, sampling with `sampler` (which must run `models.sampling_model()`).
pub fn run_grpo(
    config: &GrpoConfig,
    models: &Models,
    sampler: &mut dyn RolloutSampler,
    reward: &dyn RewardFunction,
    options: &RunOptions,
) -> anyhow::Result<RunSummary> {
    run_grpo_with_process(config, models, sampler, reward, None, options)
}

/// [`run_grpo`] with process supervision from `process` (needs `grpo.estimator = "process"`).
pub fn run_grpo_with_process(
    config: &GrpoConfig,
    models: &Models,
    sampler: &mut dyn RolloutSampler,
    reward: &dyn RewardFunction,
    process: Option<&dyn crate::process::StepScorer>,
    options: &RunOptions,
) -> anyhow::Result<RunSummary> {
    let out = config.output.dir.clone();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("config.toml"), toml::to_string_pretty(config)?)?;
    let (train, eval) = load_task(config)?;
    tracing::info!(
        train = train.len(),
        held_out = eval.len(),
        seed = config.seed,
        "task loaded"
    );
    let mut trainer = GrpoTrainer::new(config.clone(), models);
    let mut state = RunState::default();
    if options.resume {
        match latest_checkpoint(&out) {
            Some(dir) => {
                state = load_checkpoint(&dir, &mut trainer, models)?;
                tracing::info!("resumed from {} (step {})", dir.display(), state.step);
            }
            None => tracing::info!("--resume: no checkpoint in {}, starting fresh", out.display()),
        }
    } else if out.join("metrics.jsonl").exists() {
        std::fs::remove_file(out.join("metrics.jsonl"))?;
        let _ = std::fs::remove_file(out.join("samples.jsonl"));
    }
    let metrics_path = out.join("metrics.jsonl");
    if options.resume {
        // Drop records of steps after the checkpoint (they will be redone).
        if let Ok(old) = read_metrics(&metrics_path) {
            let kept: Vec<String> = old
                .iter()
                .filter(|m| m.step <= state.step)
                .map(serde_json::to_string)
                .collect::<Result<_, _>>()?;
            std::fs::write(&metrics_path, kept.iter().map(|l| format!("{l}\n")).collect::<String>())?;
        }
    }
    let mut writer = JsonlWriter::append(&metrics_path)?;
    // TensorBoard: one event file per process in `tensorboard/`; a resumed run adds a file, which TensorBoard merges.
    let mut board = seekmath_train::metrics::TensorBoardWriter::create(&out.join("tensorboard"))?;
    let mut samples = JsonlWriter::append(&out.join("samples.jsonl"))?;
    let has_eval = !eval.is_empty();
    if has_eval && state.baseline_eval.is_none() {
        let acc = evaluate(config, models, sampler, &eval)?;
        tracing::info!(accuracy = acc, "held-out accuracy before training");
        state.baseline_eval = Some(acc);
        let before = StepMetrics {
            step: 0,
            eval_accuracy: Some(acc),
            ..Default::default()
        };
        writer.write(&before)?;
        // Step 0 carries only the evaluation: the other (zero) fields are not measurements.
        board.scalars(0, &[("grpo/eval_accuracy", acc as f32)])?;
    }
    let bar = indicatif::ProgressBar::new(config.grpo.steps as u64);
    bar.set_position(state.step as u64);
    let started = std::time::Instant::now();
    let first_step = state.step;
    let mut final_eval = None;
    while state.step < config.grpo.steps {
        let questions: Vec<Problem> = (0..config.grpo.questions_per_step)
            .map(|k| question_at(&train, config.seed, state.questions_seen + k).clone())
            .collect();
        let (mut m, step_samples) = trainer.step_with_process(models, sampler, reward, process, &questions)?;
        state.questions_seen += questions.len();
        state.step = trainer.step;
        let last = state.step == config.grpo.steps;
        if has_eval && (last || (config.eval.every > 0 && state.step % config.eval.every == 0)) {
            let acc = evaluate(config, models, sampler, &eval)?;
            m.eval_accuracy = Some(acc);
            if last {
                final_eval = Some(acc);
            }
        }
        tracing::info!(
            step = m.step,
            reward = format!("{:.3}", m.reward_mean),
            acc = format!("{:.3}", m.accuracy),
            kl = format!("{:.4}", m.kl),
            eval = ?m.eval_accuracy,
            "step"
        );
        writer.write(&m)?;
        let scalars = crate::metrics::tensorboard_scalars(&m);
        let named: Vec<(&str, f32)> = scalars.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        board.scalars(m.step as i64, &named)?;
        for (problem, rollout, r) in step_samples
            .iter()
            .step_by(config.grpo.group_size.max(1))
            .take(config.output.log_samples)
        {
            samples.write(&serde_json::json!({
                "step": m.step, "question": problem.question, "answer": problem.answer,
                "completion": rollout.text, "reward": r, "truncated": rollout.truncated,
            }))?;
        }
        if let Ok(all) = read_metrics(&metrics_path) {
            let steps: Vec<StepMetrics> = all.into_iter().filter(|m| m.step > 0).collect();
            if let Err(e) = plot_curves(&steps, state.baseline_eval, &out.join("curves.png")) {
                tracing::warn!("plot failed: {e:#}");
            }
        }
        if last || (config.output.checkpoint_every > 0 && state.step % config.output.checkpoint_every == 0) {
            save_checkpoint(&out, &trainer, models, &state)?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if state.step > 0 {
        seekmath_model::save_pretrained(&models.policy, &out.join("final")).context("exporting the final policy")?;
        tracing::info!("exported {}", out.join("final").display());
    }
    let done = state.step - first_step;
    let summary = RunSummary {
        baseline_eval: state.baseline_eval,
        final_eval,
        steps: state.step,
        seconds_per_step: if done > 0 {
            started.elapsed().as_secs_f64() / done as f64
        } else {
            0.0
        },
    };
    std::fs::write(out.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    Ok(summary)
}
