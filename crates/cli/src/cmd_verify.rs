//! `seekmath verify`: answer equivalence from the command line (thin wrapper over `seekmath-verify`).
//!
//! Stable interface (used by scripts outside this repo):
//! - `seekmath verify --gold G --pred P [--mode strict|deepseek-compat]` prints `true` or `false` (exit 0 either way);
//! - `seekmath verify --batch FILE.jsonl` (`-` for stdin) writes each record with `equal`, `pred_extracted` and
//!   `gold_extracted` added to stdout.
//!
//! Subcommands for interactive use: `check`, `extract`, `file`.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use seekmath_verify::batch::{extract_with, score_jsonl, Extraction};
use seekmath_verify::extract::AnswerKind;
use seekmath_verify::{Mode, Options, PercentPolicy, Verifier};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `seekmath verify`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct VerifyArgs {
    #[command(subcommand)]
    command: Option<VerifyCommand>,
    /// Reference answer (or a text to extract it from).
    #[arg(long, requires = "pred", conflicts_with = "batch")]
    gold: Option<String>,
    /// Predicted answer (or a completion to extract it from).
    #[arg(long, requires = "gold")]
    pred: Option<String>,
    /// JSONL file of {gold, pred} records (`-` for stdin); annotated records go to stdout.
    #[arg(long)]
    batch: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

/// Options shared by every verify command.
#[derive(Args, Debug, Clone)]
struct CommonArgs {
    /// Strictness: `strict` (mathematically right, the RL reward) or `deepseek-compat` (DeepSeek-Math leniencies).
    #[arg(long, value_enum, default_value_t = ModeArg::Strict)]
    mode: ModeArg,
    /// How the prediction is extracted: `auto` (boxed / `####` / "The answer is", else the whole text) or a kind.
    #[arg(long, value_enum, default_value_t = KindArg::Auto)]
    kind: KindArg,
    /// Treat `%` only as a unit (`50\%` = `50` but not `0.5`).
    #[arg(long)]
    percent_unit_only: bool,
}

#[derive(Subcommand, Debug)]
enum VerifyCommand {
    /// Compare one prediction with one reference; prints `true` or `false`.
    Check {
        /// Reference answer.
        #[arg(long)]
        gold: String,
        /// Predicted answer or completion.
        #[arg(long)]
        pred: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Print the answer extracted from a text (`--text`, or a file/stdin with `--input`).
    Extract {
        /// Text to extract from.
        #[arg(long, conflicts_with = "input")]
        text: Option<String>,
        /// File to read the text from (`-` for stdin).
        #[arg(long)]
        input: Option<PathBuf>,
        /// Answer kind.
        #[arg(long, value_enum, default_value_t = KindArg::Expression)]
        kind: KindArg,
    },
    /// Score a JSONL file of {gold, pred} records; prints accuracy to stderr, records to `--output` or stdout.
    File {
        /// Input JSONL (`-` for stdin).
        #[arg(long)]
        input: PathBuf,
        /// Output JSONL (default stdout).
        #[arg(long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ModeArg {
    Strict,
    DeepseekCompat,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum KindArg {
    Auto,
    Number,
    Expression,
    Choice,
    MultiBlank,
}

impl KindArg {
    fn extraction(self) -> Extraction {
        match self {
            KindArg::Auto => Extraction::Auto,
            KindArg::Number => Extraction::Kind(AnswerKind::Number),
            KindArg::Expression => Extraction::Kind(AnswerKind::Expression),
            KindArg::Choice => Extraction::Kind(AnswerKind::Choice),
            KindArg::MultiBlank => Extraction::Kind(AnswerKind::MultiBlank),
        }
    }
}

impl CommonArgs {
    fn verifier(&self) -> Verifier {
        let mode = match self.mode {
            ModeArg::Strict => Mode::Strict,
            ModeArg::DeepseekCompat => Mode::DeepseekCompat,
        };
        let percent = if self.percent_unit_only {
            PercentPolicy::UnitOnly
        } else {
            PercentPolicy::UnitOrValue
        };
        Verifier::with_options(Options {
            mode,
            percent,
            ..Options::default()
        })
    }
}

/// Runs `seekmath verify`.
pub fn run(args: VerifyArgs) -> Result<ExitCode> {
    match args.command {
        Some(VerifyCommand::Check { gold, pred, common }) => check(&gold, &pred, &common),
        Some(VerifyCommand::Extract { text, input, kind }) => {
            let text = match (text, input) {
                (Some(t), _) => t,
                (None, Some(path)) => read_all(&path)?,
                (None, None) => bail!("give --text or --input"),
            };
            match extract_with(&text, kind.extraction()) {
                Some(answer) => println!("{answer}"),
                None => eprintln!("no answer found"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(VerifyCommand::File { input, output, common }) => batch(&input, output.as_deref(), &common),
        None => match (args.gold, args.pred, args.batch) {
            (Some(gold), Some(pred), None) => check(&gold, &pred, &args.common),
            (None, None, Some(path)) => batch(&path, None, &args.common),
            _ => bail!("usage: seekmath verify --gold G --pred P | --batch FILE.jsonl | <check|extract|file>"),
        },
    }
}

fn check(gold: &str, pred: &str, common: &CommonArgs) -> Result<ExitCode> {
    let verifier = common.verifier();
    let gold = extract_with(gold, Extraction::Auto).unwrap_or_default();
    let equal = extract_with(pred, common.kind.extraction()).is_some_and(|p| verifier.is_equivalent(&p, &gold));
    println!("{equal}");
    Ok(ExitCode::SUCCESS)
}

fn batch(input: &std::path::Path, output: Option<&std::path::Path>, common: &CommonArgs) -> Result<ExitCode> {
    let verifier = common.verifier();
    let name = input.display().to_string();
    let reader: Box<dyn BufRead> = if name == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::new(
            std::fs::File::open(input).with_context(|| format!("opening {name}"))?,
        ))
    };
    let writer: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let stats = score_jsonl(reader, writer, &verifier, common.kind.extraction(), &name)
        .with_context(|| format!("scoring {name}"))?;
    let accuracy = stats.equal as f64 / stats.scored.max(1) as f64;
    tracing::info!(
        scored = stats.scored,
        equal = stats.equal,
        skipped = stats.skipped,
        accuracy,
        "verify batch done"
    );
    Ok(ExitCode::SUCCESS)
}

fn read_all(path: &std::path::Path) -> Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    }
}
