//! `seekmath`: the DeepSeekMath recipe as one tool.
//!
//! The binary is deliberately thin: each command group lives in its own `cmd_<group>.rs` module that parses
//! arguments and calls into the library crates, where all behaviour (and its tests) lives.

mod cmd_corpus;
mod cmd_doctor;
mod cmd_eval;
mod cmd_generate;
mod cmd_rl;
mod cmd_train;
mod cmd_verify;

use clap::{Parser, Subcommand};

/// Top-level command line.
#[derive(Parser)]
#[command(
    name = "seekmath",
    version,
    about = "Mine a math corpus, train, reinforce with GRPO, evaluate."
)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `seekmath_corpus=debug`.
    #[arg(long, global = true, env = "SEEKMATH_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

/// Command groups, in data-flow order: corpus → train → rl → eval.
#[derive(Subcommand)]
enum Command {
    /// Check the installation: versions, devices, and on a GPU a bf16 matmul and SDPA check.
    Doctor(cmd_doctor::DoctorArgs),
    /// Mine the web for math: read crawls, extract text with math, identify languages, classify, rank.
    Corpus(cmd_corpus::CorpusArgs),
    /// Continued pre-training and SFT (`train pretrain|sft --config FILE.toml`), and `train tokenize`.
    Train(cmd_train::TrainArgs),
    /// Reinforcement learning: `rl grpo --config FILE.toml` (GRPO with the verifier reward), `rl make-task`.
    Rl(cmd_rl::RlArgs),
    /// Evaluate a model on math benchmarks (few-shot/zero-shot CoT, program-of-thought, tool-integrated).
    Eval(cmd_eval::EvalArgs),
    /// Check answers: `--gold G --pred P` prints true/false; `--batch FILE.jsonl` scores records.
    Verify(cmd_verify::VerifyArgs),
    /// Sample continuations from a model (`--prompt` or `--prompts FILE.jsonl`); `generate bench` measures decode speed.
    Generate(cmd_generate::GenerateArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Doctor(args) => cmd_doctor::run(args),
        Command::Corpus(args) => cmd_corpus::run(args),
        Command::Train(args) => cmd_train::run(args),
        Command::Rl(args) => cmd_rl::run(args),
        Command::Eval(args) => cmd_eval::run(args),
        Command::Verify(args) => cmd_verify::run(args),
        Command::Generate(args) => cmd_generate::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
