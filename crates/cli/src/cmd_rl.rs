//! `seekmath rl ...`: reinforcement learning (GRPO) and its task tools. All behaviour lives in `seekmath-rl`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use seekmath_rl::config::GrpoConfig;
use seekmath_rl::models::Models;
use seekmath_rl::reward::VerifierReward;
use seekmath_rl::rollout::EngineSampler;
use seekmath_rl::run::{run_grpo, RunOptions};
use seekmath_rl::task::{arithmetic_splits, ArithmeticOptions};

/// `seekmath rl`.
#[derive(Args, Debug)]
pub struct RlArgs {
    #[command(subcommand)]
    command: RlCommand,
}

#[derive(Subcommand, Debug)]
enum RlCommand {
    /// GRPO (DeepSeekMath §4.1) with the verifier reward: sample G outputs per question, group-relative
    /// advantages, clipped ratio with k3 KL to the reference; metrics, eval, checkpoints, HF export.
    Grpo(GrpoArgs),
    /// Write the generated arithmetic word-problem task (train and disjoint held-out JSONL).
    MakeTask(MakeTaskArgs),
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
        RlCommand::MakeTask(a) => make_task(a),
    }
}

fn grpo(args: GrpoArgs) -> Result<ExitCode> {
    let config = GrpoConfig::load(&args.config, &args.overrides)?;
    tracing::info!(seed = config.seed, model = %config.model.path.display(), "GRPO run");
    let models = Models::load(&config.model, config.grpo.loss.beta != 0.0)?;
    let reward = VerifierReward::new(config.reward.clone())?;
    let mut sampler = EngineSampler::new(models.sampling_model(), models.tokenizer());
    let summary = run_grpo(
        &config,
        &models,
        &mut sampler,
        &reward,
        &RunOptions { resume: args.resume },
    )?;
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
