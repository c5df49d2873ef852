//! `seekmath eval`: evaluate a model on math benchmarks (few-shot / zero-shot CoT, PoT, tool-integrated).
//!
//! Everything except loading the model lives in `seekmath-bench`; this module adapts the model crate's batched
//! [`Engine`] to the bench crate's [`Generator`] trait and maps flags to [`EvalOptions`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use seekmath_bench::registry::parse_selection;
use seekmath_bench::{
    run_benchmark, write_report, EvalOptions, GeneratedText, GenerationRequest, Generator, PromptMode, Sandbox,
    SandboxConfig, Scorer,
};
use seekmath_model::engine::{Engine, EngineOptions, SamplingParams};
use seekmath_model::{ChatMessage, Tokenizer};

/// Arguments of `seekmath eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model: Hugging Face folder, `.gguf` file or llama2.c `.bin` (not needed with --compare).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Comma-separated benchmarks; `name=PATH` reads that benchmark's format from any file.
    #[arg(long, default_value = "gsm8k")]
    bench: String,
    /// Benchmark data root (holds `gsm8k/`, `math500/`, ..., `fewshot/`).
    #[arg(long, env = "SEEKMATH_BENCH_DATA")]
    data: Option<PathBuf>,
    /// Few-shot exemplars (default: the DeepSeek-Math set's count); 0 = zero-shot with the chat template.
    #[arg(long)]
    shots: Option<usize>,
    /// cot (chain of thought), pot (program of thought, PAL prompts) or tir (tool-integrated, zero-shot).
    #[arg(long, default_value = "cot")]
    mode: PromptMode,
    /// Samples per problem; k > 1 reports maj@k and pass@k.
    #[arg(long, default_value_t = 1)]
    samples: usize,
    /// Sampling temperature (default 0 = greedy for one sample, 0.7 for several).
    #[arg(long)]
    temperature: Option<f64>,
    /// Nucleus sampling mass (default 1.0 for greedy, 0.95 when sampling).
    #[arg(long)]
    top_p: Option<f64>,
    /// Most new tokens per generation.
    #[arg(long, default_value_t = 512)]
    max_new_tokens: usize,
    /// Evaluate only the first N problems of each benchmark.
    #[arg(long)]
    limit: Option<usize>,
    /// Problems per generation call (and checkpoint granularity).
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Most rows (problems × samples) the engine decodes at once.
    #[arg(long, default_value_t = 512)]
    max_batch_rows: usize,
    /// Base seed (logged; same seed, same samples).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Verifier strictness: strict or deepseek-compat.
    #[arg(long, default_value = "strict")]
    verify_mode: seekmath_verify::Mode,
    /// Code executions per tool-integrated trajectory.
    #[arg(long, default_value_t = 3)]
    tir_rounds: usize,
    /// Wall-clock seconds per program run (CPU limit: the same minus one).
    #[arg(long, default_value_t = 15)]
    exec_timeout: u64,
    /// Device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Weights dtype: auto (bf16 on CUDA, f32 on CPU), f32, bf16 or f16.
    #[arg(long, default_value = "auto")]
    dtype: String,
    /// Output directory (`<bench>/items.jsonl` etc., `summary.json`, `report.md`); an existing run resumes.
    #[arg(long)]
    output: PathBuf,
    /// Instead of generating: compare `<output>/<bench>/items.jsonl` with this reference completion file (from
    /// `crates/bench/scripts/hf_greedy.py`) and write `<output>/<bench>/parity.json`.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Hide the progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// Adapts the model crate's engine to the bench crate's generator interface.
struct EngineGenerator<'a> {
    engine: Engine<'a>,
    tokenizer: &'a Tokenizer,
}

impl Generator for EngineGenerator<'_> {
    fn generate(&mut self, prompts: &[String], req: &GenerationRequest) -> Result<Vec<Vec<GeneratedText>>> {
        // Tokenizer defaults (add_special_tokens), as transformers' `tokenizer(prompt)` does.
        let ids: Vec<Vec<u32>> = prompts
            .iter()
            .map(|p| self.tokenizer.encode(p, true))
            .collect::<Result<_>>()?;
        let params = SamplingParams {
            max_new_tokens: req.max_new_tokens,
            temperature: req.temperature,
            top_p: req.top_p,
            top_k: 0,
            seed: req.seed,
            stop: req.stop.clone(),
            n: req.n,
            ignore_eos: false,
        };
        let mut out: Vec<Vec<GeneratedText>> = (0..prompts.len()).map(|_| Vec::with_capacity(req.n)).collect();
        for c in self.engine.generate(&ids, &params)? {
            let slot = out
                .get_mut(c.prompt_index)
                .context("engine returned an unknown prompt index")?;
            slot.push(GeneratedText {
                text: c.text,
                num_tokens: c.tokens.len(),
                finish_reason: c.finish_reason.as_str().to_string(),
            });
        }
        Ok(out)
    }

    fn chat_prompt(&self, messages: &[(String, String)]) -> Result<String> {
        let messages: Vec<ChatMessage> = messages
            .iter()
            .map(|(role, content)| ChatMessage {
                role: role.clone(),
                content: content.clone(),
            })
            .collect();
        self.tokenizer.apply_chat_template(&messages, true)
    }
}

fn device(spec: &str) -> Result<tch::Device> {
    Ok(match spec {
        "auto" => tch::Device::cuda_if_available(),
        "cpu" => tch::Device::Cpu,
        "cuda" => tch::Device::Cuda(0),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => tch::Device::Cuda(n),
            None => bail!("unknown device {other:?} (expected auto, cpu, cuda or cuda:N)"),
        },
    })
}

fn dtype(spec: &str, device: tch::Device) -> Result<tch::Kind> {
    Ok(match spec {
        "auto" if device.is_cuda() => tch::Kind::BFloat16,
        "auto" | "f32" | "float32" => tch::Kind::Float,
        "bf16" | "bfloat16" => tch::Kind::BFloat16,
        "f16" | "float16" => tch::Kind::Half,
        other => bail!("unknown dtype {other:?} (expected auto, f32, bf16 or f16)"),
    })
}

/// Default benchmark data: `SEEKMATH_SHARED_DATA/benchmarks`, else `shared/data/benchmarks` beside the repository.
fn default_data_root() -> PathBuf {
    if let Some(shared) = std::env::var_os("SEEKMATH_SHARED_DATA") {
        return PathBuf::from(shared).join("benchmarks");
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/benchmarks")
}

/// Runs `seekmath eval`.
pub fn run(args: EvalArgs) -> Result<ExitCode> {
    let data_root = args.data.clone().unwrap_or_else(default_data_root);
    let selections = parse_selection(&args.bench, &data_root)?;
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    if let Some(reference) = &args.compare {
        return compare(&args, &selections, reference);
    }
    let model_path = args
        .model
        .as_ref()
        .context("--model is required (except with --compare)")?;
    let device = device(&args.device)?;
    let kind = dtype(&args.dtype, device)?;
    let sampling = args.samples > 1;
    let temperature = args.temperature.unwrap_or(if sampling { 0.7 } else { 0.0 });
    let top_p = args.top_p.unwrap_or(if temperature > 0.0 { 0.95 } else { 1.0 });
    tracing::info!(
        "eval: model {} on {device:?} ({kind:?}), mode {}, samples {}, temperature {temperature}, seed {}",
        model_path.display(),
        args.mode,
        args.samples,
        args.seed
    );

    let sandbox = match args.mode {
        PromptMode::Cot => None,
        PromptMode::Pot | PromptMode::Tir => {
            let config = SandboxConfig {
                wall_time: Duration::from_secs(args.exec_timeout.max(2)),
                cpu_seconds: args.exec_timeout.saturating_sub(1).max(1),
                ..SandboxConfig::default()
            };
            let sandbox = Sandbox::new(config)?;
            tracing::info!("sandbox layers: {:?}", sandbox.layers());
            Some(sandbox)
        }
    };

    let loaded = seekmath_model::load(model_path, device, kind)?;
    let tokenizer = loaded
        .tokenizer
        .as_ref()
        .context("the model has no tokenizer; eval needs one")?;
    let options = EngineOptions {
        max_batch_rows: args.max_batch_rows.max(1),
        ..EngineOptions::default()
    };
    let mut generator = EngineGenerator {
        engine: Engine::with_options(&loaded.model, tokenizer, options),
        tokenizer,
    };

    let eval_options = EvalOptions {
        mode: args.mode,
        shots: args.shots,
        samples: args.samples.max(1),
        temperature,
        top_p,
        max_new_tokens: args.max_new_tokens,
        seed: args.seed,
        limit: args.limit,
        batch_size: args.batch_size.max(1),
        verify_mode: args.verify_mode,
        tir_rounds: args.tir_rounds,
        fewshot_dir: data_root.join("fewshot"),
        model: model_path.display().to_string(),
        progress: !args.no_progress,
    };
    let mut summaries = Vec::new();
    for selection in &selections {
        let summary = run_benchmark(&mut generator, selection, &eval_options, sandbox.as_ref(), &args.output)?;
        tracing::info!(
            "{}: accuracy {:.2}% on {} items ({:.1} s, {:.1} tok/s)",
            summary.display,
            summary.accuracy,
            summary.n_items,
            summary.seconds,
            summary.tokens_per_second
        );
        summaries.push(summary);
        // Rewrite the combined report after each benchmark so a later failure keeps the finished ones.
        write_report(&args.output, &eval_options.model, &summaries)?;
    }
    print!("{}", seekmath_bench::markdown(&eval_options.model, &summaries));
    Ok(ExitCode::SUCCESS)
}

fn compare(
    args: &EvalArgs,
    selections: &[seekmath_bench::BenchmarkSelection],
    reference: &std::path::Path,
) -> Result<ExitCode> {
    let [selection] = selections else {
        bail!("--compare takes exactly one --bench")
    };
    let spec = selection.spec;
    let scorer = Scorer::new(spec.answer_kind, args.verify_mode);
    let ours = args.output.join(spec.name).join("items.jsonl");
    let report = seekmath_bench::parity::compare(spec, &scorer, &ours, reference)?;
    let path = args.output.join(spec.name).join("parity.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!(
        "{}: {} items, same prediction on {} ({:.2}%), identical completions {}; accuracy ours {:.2}% vs reference {:.2}% ({})",
        spec.display,
        report.n,
        report.same_prediction,
        report.agreement,
        report.same_completion,
        report.our_accuracy,
        report.reference_accuracy,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
