//! `seekmath rl ...`: reinforcement learning (GRPO with outcome or process supervision, reward models, iterative
//! RL, the §5.2 methods) and its task tools. All behaviour lives in `seekmath-rl`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use seekmath_rl::advantage::AdvantageEstimator;
use seekmath_rl::config::{load_with_section, GrpoConfig};
use seekmath_rl::iterative::{load_iterative, run_iterative};
use seekmath_rl::models::Models;
use seekmath_rl::paradigm::Method;
use seekmath_rl::reward::VerifierReward;
use seekmath_rl::reward_model::{configured_outcome_reward, configured_process_reward};
use seekmath_rl::reward_training::{initial_reward_model, train_reward_model, RmSection};
use seekmath_rl::rollout::EngineSampler;
use seekmath_rl::run::{load_task, run_grpo_with_process, RunOptions};
use seekmath_rl::task::{arithmetic_splits, ArithmeticOptions};
use seekmath_rl::unified::{load_unified, run_unified};

/// `seekmath rl`.
#[derive(Args, Debug)]
pub struct RlArgs {
    #[command(subcommand)]
    command: RlCommand,
}

#[derive(Subcommand, Debug)]
enum RlCommand {
    /// GRPO (DeepSeekMath §4.1): sample G outputs per question, group-relative advantages, clipped ratio with k3
    /// KL to the reference; outcome reward from the verifier and/or an ORM (`[reward_model]`), or process
    /// supervision from a PRM (`grpo.estimator = "process"`); metrics, eval, checkpoints, HF export.
    Grpo(GrpoArgs),
    /// Train an outcome or process reward model (`[rm]`): Math-Shepherd labels from policy rollouts or a
    /// user-labelled JSONL file; reports held-out step-level accuracy.
    TrainRm(GrpoArgs),
    /// Iterative RL (Algorithm 1): PRM training, then iterations of process-supervised GRPO, each followed by new
    /// PRM data with 10% replay and a reference reset (`[rm]`, `[iterative]`).
    Iterative(GrpoArgs),
    /// One of the §5.2 methods from a config with `[method] name = sft|rft|online_rft|dpo|ppo|grpo`.
    Train(GrpoArgs),
    /// Write the generated arithmetic word-problem task (train and disjoint held-out JSONL).
    MakeTask(MakeTaskArgs),
    /// Draw a run's curves (training reward, held-out accuracy) from its metrics.jsonl, e.g. again on a machine
    /// with fonts when the run's host had none (the plot then carries no labels).
    Plot(PlotArgs),
}

#[derive(Args, Debug)]
struct PlotArgs {
    /// A run's metrics.jsonl.
    #[arg(long)]
    metrics: PathBuf,
    /// Output PNG.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args, Debug)]
struct GrpoArgs {
    /// TOML config (see configs/grpo-deepseekmath.toml).
    #[arg(long)]
    config: PathBuf,
    /// Override a config key, e.g. `--set grpo.group_size=8` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Continue from the latest checkpoint in the output folder.
    #[arg(long)]
    resume: bool,
}

#[derive(Args, Debug)]
struct MakeTaskArgs {
    /// Output folder: writes train.jsonl and test.jsonl.
    #[arg(long)]
    out: PathBuf,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of training problems.
    #[arg(long, default_value_t = 20_000)]
    train: usize,
    /// Number of held-out problems.
    #[arg(long, default_value_t = 500)]
    held_out: usize,
    /// Fewest operations per problem.
    #[arg(long, default_value_t = 1)]
    min_steps: usize,
    /// Most operations per problem.
    #[arg(long, default_value_t = 3)]
    max_steps: usize,
    /// Largest operand.
    #[arg(long, default_value_t = 20)]
    max_operand: u64,
}

/// Runs `seekmath rl <command>`.
pub fn run(args: RlArgs) -> Result<ExitCode> {
    match args.command {
        RlCommand::Grpo(a) => grpo(a),
        RlCommand::TrainRm(a) => train_rm(a),
        RlCommand::Iterative(a) => iterative(a),
        RlCommand::Train(a) => train(a),
        RlCommand::MakeTask(a) => make_task(a),
        RlCommand::Plot(a) => plot(a),
    }
}

fn plot(args: PlotArgs) -> Result<ExitCode> {
    let all = seekmath_rl::metrics::read_metrics(&args.metrics)?;
    let baseline = all.iter().find(|m| m.step == 0).and_then(|m| m.eval_accuracy);
    let steps: Vec<_> = all.into_iter().filter(|m| m.step > 0).collect();
    anyhow::ensure!(
        !steps.is_empty(),
        "{}: no training steps recorded",
        args.metrics.display()
    );
    seekmath_rl::metrics::plot_curves(&steps, baseline, &args.out)?;
    println!("{}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn grpo(args: GrpoArgs) -> Result<ExitCode> {
    let config = GrpoConfig::load(&args.config, &args.overrides)?;
    tracing::info!(seed = config.seed, model = %config.model.path.display(), "GRPO run");
    let models = Models::load(&config.model, config.grpo.loss.beta != 0.0)?;
    let reward = configured_outcome_reward(&config, models.device)?;
    let prm = configured_process_reward(&config, models.device)?;
    anyhow::ensure!(
        prm.is_some() == (config.grpo.estimator == AdvantageEstimator::Process),
        "grpo.estimator = \"process\" and reward_model.process go together"
    );
    let mut sampler = EngineSampler::new(models.sampling_model(), models.tokenizer());
    let summary = run_grpo_with_process(
        &config,
        &models,
        &mut sampler,
        reward.as_ref(),
        prm.as_ref().map(|p| p as &dyn seekmath_rl::process::StepScorer),
        &RunOptions { resume: args.resume },
    )?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(ExitCode::SUCCESS)
}

fn train_rm(args: GrpoArgs) -> Result<ExitCode> {
    anyhow::ensure!(!args.resume, "rl train-rm has no --resume");
    let (config, section) = load_with_section::<RmSection>(&args.config, &args.overrides, "rm")?;
    let models = Models::load(&config.model, false)?;
    let verifier = VerifierReward::new(config.reward.clone())?;
    let (train, _) = load_task(&config)?;
    let mut sampler = EngineSampler::new(models.sampling_model(), models.tokenizer());
    let (_, _, _, _, report) = train_reward_model(&config, &section, &models, &mut sampler, &verifier, &train)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

fn iterative(args: GrpoArgs) -> Result<ExitCode> {
    let (config, extra) = load_iterative(&args.config, &args.overrides)?;
    let models = Models::load(&config.model, config.grpo.loss.beta != 0.0)?;
    let verifier = VerifierReward::new(config.reward.clone())?;
    let (train, _) = load_task(&config)?;
    let mut sampler = EngineSampler::new(models.sampling_model(), models.tokenizer());
    let (rm, mut rm_trainer, history, held_out) =
        initial_reward_model(&config, &extra.rm, &models, &mut sampler, &verifier, &train)?;
    let summary = run_iterative(
        &config,
        &extra.iterative,
        &extra.rm,
        &models,
        &mut sampler,
        &verifier,
        &rm,
        &mut rm_trainer,
        history,
        &held_out,
        args.resume,
    )?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(ExitCode::SUCCESS)
}

fn train(args: GrpoArgs) -> Result<ExitCode> {
    let (config, method) = load_unified(&args.config, &args.overrides)?;
    tracing::info!(method = ?method.name, seed = config.seed, "§5.2 run");
    let need_reference = method.name == Method::Ppo || (method.name == Method::Grpo && config.grpo.loss.beta != 0.0);
    let models = Models::load(&config.model, need_reference)?;
    let reward = configured_outcome_reward(&config, models.device)?;
    let mut sampler = EngineSampler::new(models.sampling_model(), models.tokenizer());
    let summary = run_unified(&config, &method, &models, &mut sampler, reward.as_ref(), args.resume)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(ExitCode::SUCCESS)
}

fn make_task(args: MakeTaskArgs) -> Result<ExitCode> {
    let options = ArithmeticOptions {
        min_steps: args.min_steps,
        max_steps: args.max_steps,
        max_operand: args.max_operand,
    };
    let splits = arithmetic_splits(args.seed, args.train, args.held_out, &options)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    for (name, problems) in [("train.jsonl", &splits.train), ("test.jsonl", &splits.held_out)] {
        let path = args.out.join(name);
        let text: String = problems
            .iter()
            .map(|p| serde_json::to_string(p).map(|l| l + "\n"))
            .collect::<Result<_, _>>()?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("{}: {} problems", path.display(), problems.len());
    }
    Ok(ExitCode::SUCCESS)
}
