//! `seekmath train`: continued pre-training, SFT, and tokenising text into the shards pre-training reads.
//!
//! ```text
//! seekmath train tokenize --model PATH --output DIR INPUT...      # JSONL {"text": ..} → *.smtok shards
//! seekmath train pretrain --config configs/pretrain-deepseekmath.toml [--set key=value ...] [--resume]
//! seekmath train sft      --config configs/sft-deepseekmath.toml      [--set key=value ...] [--resume]
//! ```

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use seekmath_train::{RunOptions, Stage, TrainConfig};
use std::path::PathBuf;
use std::process::ExitCode;

/// `seekmath train <command>`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(subcommand)]
    command: TrainCommand,
}

#[derive(Subcommand, Debug)]
enum TrainCommand {
    /// Continued pre-training on a weighted mixture of token shards (paper §2.2.1).
    Pretrain(RunArgs),
    /// Supervised fine-tuning on prompt/response records, loss on responses only (paper §3.2).
    Sft(RunArgs),
    /// Tokenise JSON-lines documents (a `text` field each) into token shards for `train pretrain`.
    Tokenize(TokenizeArgs),
}

/// Arguments shared by the training stages.
#[derive(Args, Debug)]
struct RunArgs {
    /// The TOML configuration (see configs/).
    #[arg(long)]
    config: PathBuf,
    /// Override a configuration key, e.g. `--set optim.peak_lr=1e-4` (repeatable; values parsed as TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Continue from the latest checkpoint in run.output_dir.
    #[arg(long)]
    resume: bool,
}

/// Arguments of `train tokenize`.
#[derive(Args, Debug)]
struct TokenizeArgs {
    /// A model folder / .gguf file whose tokenizer to use, or a tokenizer folder (tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Output folder for the shards.
    #[arg(long)]
    output: PathBuf,
    /// Shard file name prefix.
    #[arg(long, default_value = "shard")]
    prefix: String,
    /// Approximate tokens per shard.
    #[arg(long, default_value_t = 100_000_000)]
    tokens_per_shard: usize,
    /// Add the tokenizer's special tokens (e.g. BOS) to each document.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    add_special_tokens: bool,
    /// Input files.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

/// Runs `seekmath train ...`.
pub fn run(args: TrainArgs) -> Result<ExitCode> {
    match args.command {
        TrainCommand::Pretrain(a) => run_stage(a, Stage::Pretrain),
        TrainCommand::Sft(a) => run_stage(a, Stage::Sft),
        TrainCommand::Tokenize(a) => tokenize(a),
    }
}

fn run_stage(args: RunArgs, stage: Stage) -> Result<ExitCode> {
    let cfg = TrainConfig::load(&args.config, &args.overrides)?;
    let summary = seekmath_train::run(&cfg, stage, &RunOptions { resume: args.resume })?;
    let mut report = serde_json::json!({
        "steps": summary.steps,
        "final_loss": summary.final_loss,
        "eval_loss_before": summary.eval_loss_before,
        "eval_loss_after": summary.eval_loss_after,
    });
    if let Some(dir) = &summary.export_dir {
        report["export_dir"] = serde_json::json!(dir);
    }
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn tokenize(args: TokenizeArgs) -> Result<ExitCode> {
    let tokenizer = if args.model.join("tokenizer.json").is_file() {
        seekmath_model::Tokenizer::from_hf_folder(&args.model)?
    } else {
        seekmath_model::load(&args.model, tch::Device::Cpu, tch::Kind::Float)?
            .tokenizer
            .with_context(|| format!("{} has no tokenizer", args.model.display()))?
    };
    let eos = *tokenizer
        .eos_token_ids()
        .first()
        .context("the tokenizer has no EOS token")?;
    let add_special = args.add_special_tokens;
    let encode = |text: &str| tokenizer.encode(text, add_special);
    let stats = seekmath_train::data::shards::tokenize_files(
        &args.inputs,
        &encode,
        eos,
        &args.output,
        &args.prefix,
        args.tokens_per_shard,
    )?;
    println!("{}", serde_json::to_string(&stats)?);
    Ok(ExitCode::SUCCESS)
}
