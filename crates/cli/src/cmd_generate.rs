//! `seekmath generate`: sample continuations from a model (HF folder, GGUF or llama2.c file), for one prompt or a
//! JSONL batch, and `seekmath generate bench`: decode throughput on a model folder.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use seekmath_model::engine::{Engine, EngineOptions, SamplingParams};
use seekmath_model::DecodeAttention;
use seekmath_model::{load, ChatMessage, LoadedModel, Tokenizer};
use serde::Serialize;
use tch::{Device, Kind};

/// Arguments of `seekmath generate`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GenerateArgs {
    #[command(subcommand)]
    command: Option<GenerateCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum GenerateCommand {
    /// Decode throughput (tokens/s) at several batch sizes, EOS ignored, fixed lengths; JSON out.
    Bench(BenchArgs),
}

/// Device choice on the command line.
#[derive(Clone, Copy, ValueEnum)]
enum DeviceArg {
    Cpu,
    Cuda,
}

impl DeviceArg {
    fn device(self) -> Result<Device> {
        match self {
            DeviceArg::Cpu => Ok(Device::Cpu),
            DeviceArg::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
            DeviceArg::Cuda => bail!("--device cuda: no CUDA device is available to libtorch"),
        }
    }
}

/// Parameter dtype on the command line.
#[derive(Clone, Copy, ValueEnum)]
enum DtypeArg {
    F32,
    Bf16,
    F16,
}

impl DtypeArg {
    fn kind(self) -> Kind {
        match self {
            DtypeArg::F32 => Kind::Float,
            DtypeArg::Bf16 => Kind::BFloat16,
            DtypeArg::F16 => Kind::Half,
        }
    }
}

/// Model, device and engine options shared by generation and the benchmark.
#[derive(Args)]
struct ModelArgs {
    /// Model: a Hugging Face folder, a `.gguf` file, or a llama2.c `.bin` file.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Device to run on.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceArg,
    /// Parameter dtype (default: f32 on CPU, bf16 on CUDA).
    #[arg(long, value_enum)]
    dtype: Option<DtypeArg>,
    /// Decode eagerly even on CUDA (no CUDA graphs).
    #[arg(long)]
    no_cuda_graphs: bool,
    /// Decode with the plain per-layer step on CUDA too (instead of the fused, launch-lean one).
    #[arg(long)]
    no_fused_decode: bool,
    /// Attention kernel of the fused decode step: `auto` (seekmath's split-K kernel for wide batches where it is
    /// available, else SDPA), `kernel`, `sdpa` (PyTorch picks; cuDNN on an H200) or `efficient`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "kernel", "sdpa", "efficient"])]
    decode_attention: String,
    /// Sample with ATen ops on CUDA too (instead of seekmath's one-pass sampler kernel).
    #[arg(long)]
    no_sampler_kernel: bool,
    /// Run the fused decode step's RoPE + K/V write, SiLU·up and RMSNorms (folded or final) as ATen ops on CUDA
    /// too (instead of seekmath's layer kernels).
    #[arg(long)]
    no_layer_kernels: bool,
    /// Most sequences decoded at once.
    #[arg(long, default_value_t = 512)]
    max_batch: usize,
}

impl ModelArgs {
    fn load(&self) -> Result<(LoadedModel, EngineOptions)> {
        let Some(path) = &self.model else {
            bail!("--model PATH is required")
        };
        let device = self.device.device()?;
        let kind =
            self.dtype
                .map(DtypeArg::kind)
                .unwrap_or(if device.is_cuda() { Kind::BFloat16 } else { Kind::Float });
        let started = Instant::now();
        let loaded = load(path, device, kind).with_context(|| format!("loading model {}", path.display()))?;
        tracing::info!(model = %path.display(), ?device, ?kind, secs = started.elapsed().as_secs_f64(), "model loaded");
        let options = EngineOptions {
            max_batch_rows: self.max_batch.max(1),
            cuda_graphs: !self.no_cuda_graphs,
            fused_decode: !self.no_fused_decode,
            decode_attention: match self.decode_attention.as_str() {
                "efficient" => DecodeAttention::MemoryEfficient,
                "sdpa" => DecodeAttention::Sdpa,
                "kernel" => DecodeAttention::Kernel,
                _ => DecodeAttention::Auto,
            },
            sampler_kernel: !self.no_sampler_kernel,
            layer_kernels: !self.no_layer_kernels,
            ..EngineOptions::default()
        };
        Ok((loaded, options))
    }
}

/// `seekmath generate` proper.
#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// One prompt; the continuation is printed to stdout.
    #[arg(long, conflicts_with = "prompts")]
    prompt: Option<String>,
    /// JSONL file of prompts (`{"prompt": ...}` or `{"messages": [{"role","content"}...]}` per line); one JSONL
    /// record per sample goes to stdout (or --output): prompt_index, sample_index, text, tokens, logprobs,
    /// finish_reason.
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// Where to write the JSONL results (default stdout).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Wrap each prompt as a user message in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// Most new tokens per sample.
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Nucleus sampling threshold (1 = off).
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Keep only the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Seed of the sampling streams (logged).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Samples per prompt.
    #[arg(long, default_value_t = 1)]
    n: usize,
    /// Stop string (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Do not stop at end-of-sequence tokens.
    #[arg(long)]
    ignore_eos: bool,
}

/// One JSONL output record.
#[derive(Serialize)]
struct Record<'a> {
    prompt_index: usize,
    sample_index: usize,
    text: &'a str,
    tokens: &'a [u32],
    logprobs: &'a [f32],
    finish_reason: &'a str,
}

/// Runs `seekmath generate`.
pub fn run(args: GenerateArgs) -> Result<ExitCode> {
    match args.command {
        Some(GenerateCommand::Bench(bench)) => run_bench(bench),
        None => run_generate(args.run),
    }
}

fn tokenizer_of(loaded: &LoadedModel) -> Result<&Tokenizer> {
    loaded
        .tokenizer
        .as_ref()
        .context("the model has no tokenizer (a HF folder needs tokenizer.json)")
}

/// Turns a prompt into ids: raw text, or a conversation rendered by the chat template.
fn encode(tokenizer: &Tokenizer, prompt: &Prompt, chat: bool) -> Result<Vec<u32>> {
    let text = match prompt {
        Prompt::Messages(messages) => tokenizer.apply_chat_template(messages, true)?,
        Prompt::Text(text) if chat => tokenizer.apply_chat_template(&[ChatMessage::new("user", text.clone())], true)?,
        Prompt::Text(text) => text.clone(),
    };
    // A rendered template already holds its special tokens; plain text gets the tokenizer's (e.g. BOS).
    let add_special = !(chat || matches!(prompt, Prompt::Messages(_)));
    tokenizer.encode(&text, add_special)
}

enum Prompt {
    Text(String),
    Messages(Vec<ChatMessage>),
}

/// Reads the prompts of a JSONL file; malformed lines are reported, counted and skipped.
fn read_prompts(path: &Path) -> Result<Vec<Prompt>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut prompts = Vec::new();
    let mut skipped = 0usize;
    for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_prompt(&line) {
            Ok(prompt) => prompts.push(prompt),
            Err(err) => {
                skipped += 1;
                tracing::warn!(file = %path.display(), line = number + 1, "skipping record: {err:#}");
            }
        }
    }
    if skipped > 0 {
        tracing::warn!(file = %path.display(), skipped, kept = prompts.len(), "skipped malformed prompt records");
    }
    Ok(prompts)
}

fn parse_prompt(line: &str) -> Result<Prompt> {
    let value: serde_json::Value = serde_json::from_str(line).context("not JSON")?;
    if let Some(text) = value.get("prompt").and_then(|p| p.as_str()) {
        return Ok(Prompt::Text(text.to_string()));
    }
    if let Some(messages) = value.get("messages").and_then(|m| m.as_array()) {
        let messages = messages
            .iter()
            .map(|m| {
                let role = m
                    .get("role")
                    .and_then(|r| r.as_str())
                    .context("message without a role")?;
                let content = m
                    .get("content")
                    .and_then(|c| c.as_str())
                    .context("message without content")?;
                Ok(ChatMessage::new(role, content))
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(Prompt::Messages(messages));
    }
    bail!("record has neither a \"prompt\" string nor a \"messages\" list")
}

fn run_generate(args: RunArgs) -> Result<ExitCode> {
    let prompts = match (&args.prompt, &args.prompts) {
        (Some(p), None) => vec![Prompt::Text(p.clone())],
        (None, Some(path)) => read_prompts(path)?,
        _ => bail!("give either --prompt TEXT or --prompts FILE.jsonl"),
    };
    let (loaded, options) = args.model.load()?;
    let tokenizer = tokenizer_of(&loaded)?;
    let ids = prompts
        .iter()
        .map(|p| encode(tokenizer, p, args.chat))
        .collect::<Result<Vec<_>>>()?;
    let params = SamplingParams {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        seed: args.seed,
        stop: args.stop.clone(),
        n: args.n,
        ignore_eos: args.ignore_eos,
    };
    tracing::info!(seed = params.seed, prompts = ids.len(), n = params.n, "generating");
    let engine = Engine::with_options(&loaded.model, tokenizer, options);
    let started = Instant::now();
    let completions = engine.generate(&ids, &params)?;
    let generated: usize = completions.iter().map(|c| c.tokens.len()).sum();
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        tokens = generated,
        secs,
        tokens_per_s = generated as f64 / secs.max(1e-9),
        "done"
    );

    if args.prompt.is_some() && args.output.is_none() && params.n == 1 {
        println!("{}", completions[0].text);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    for c in &completions {
        let record = Record {
            prompt_index: c.prompt_index,
            sample_index: c.sample_index,
            text: &c.text,
            tokens: &c.tokens,
            logprobs: &c.logprobs,
            finish_reason: c.finish_reason.as_str(),
        };
        serde_json::to_writer(&mut out, &record)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `seekmath generate bench`.
#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Batch sizes (sequences decoded together), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,64,256,512")]
    batch_sizes: Vec<usize>,
    /// New tokens per sequence (EOS ignored, so every sequence runs this long).
    #[arg(long, default_value_t = 512)]
    new_tokens: usize,
    /// Prompt length in tokens (random ids, seeded).
    #[arg(long, default_value_t = 32)]
    prompt_len: usize,
    /// Sampling temperature (0 = greedy); 1.0 matches `generate(do_sample=True)`.
    #[arg(long, default_value_t = 1.0)]
    temperature: f64,
    /// Untimed warm-up tokens per batch size (captures CUDA graphs, fills allocator caches).
    #[arg(long, default_value_t = 16)]
    warmup_tokens: usize,
    /// Peak memory bandwidth for the roofline fraction, bytes/s (H200: 4.8e12).
    #[arg(long, default_value_t = 4.8e12)]
    hbm_bytes_per_s: f64,
    /// Write the results as JSON here (also printed).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Time the decode phases (device syncs between them, so a little slower) and report them per batch size.
    #[arg(long)]
    profile: bool,
}

/// One measured batch size.
#[derive(Serialize)]
struct BenchRow {
    batch: usize,
    new_tokens: usize,
    /// The first full-length call: records the CUDA graphs it needs.
    cold_seconds: f64,
    cold_tokens_per_s: f64,
    /// The same call again (graphs kept between calls, as in a training loop): the steady state.
    seconds: f64,
    tokens_per_s: f64,
    /// Per-phase seconds of the steady-state call (with `--profile`).
    profile: Option<serde_json::Value>,
    /// Bytes of weights + KV cache one decode step must read, averaged over the run.
    bytes_per_step: f64,
    /// Achieved bytes/s over the peak bandwidth.
    hbm_fraction: f64,
}

fn run_bench(args: BenchArgs) -> Result<ExitCode> {
    let (loaded, mut options) = args.model.load()?;
    options.profile = args.profile;
    let tokenizer = tokenizer_of(&loaded)?;
    let cfg = &loaded.config;
    let device = loaded.model.device();
    let elem = loaded.model.kind().elt_size_in_bytes() as f64;
    let weight_bytes: f64 = loaded
        .vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as f64 * elem)
        .sum::<f64>();
    let kv_bytes_per_token = (2 * cfg.num_hidden_layers * cfg.num_kv_heads() * cfg.head_dim()) as f64 * elem;
    let vocab = cfg.vocab_size as u64;
    let mut rows = Vec::new();
    for &batch in &args.batch_sizes {
        options.max_batch_rows = options.max_batch_rows.max(batch);
        let engine = Engine::with_options(&loaded.model, tokenizer, options.clone());
        // Distinct random prompts per row (ids avoid 0..16, where special tokens usually live).
        let prompts: Vec<Vec<u32>> = (0..batch)
            .map(|b| {
                (0..args.prompt_len)
                    .map(|t| {
                        16 + (seekmath_model::engine::rng::uniform(7, b, 0, t) as f64 * (vocab - 16) as f64) as u32
                    })
                    .collect()
            })
            .collect();
        let params = |tokens| SamplingParams {
            max_new_tokens: tokens,
            temperature: args.temperature,
            ignore_eos: true,
            seed: 0,
            ..SamplingParams::default()
        };
        engine.generate(&prompts, &params(args.warmup_tokens.max(1)))?;
        let timed_call = || -> Result<(f64, usize)> {
            synchronize(device);
            engine.take_profile();
            let started = Instant::now();
            let out = engine.generate(&prompts, &params(args.new_tokens))?;
            synchronize(device);
            Ok((
                started.elapsed().as_secs_f64(),
                out.iter().map(|c| c.tokens.len()).sum(),
            ))
        };
        let (cold_seconds, cold_tokens) = timed_call()?;
        let (seconds, tokens) = timed_call()?;
        let profile = engine.take_profile();
        let profile = options.profile.then(|| {
            serde_json::json!({
                "prefill_s": profile.prefill.as_secs_f64(),
                "setup_s": profile.setup.as_secs_f64(),
                "capture_s": profile.capture.as_secs_f64(),
                "steps_s": profile.steps.as_secs_f64(),
                "readback_s": profile.readback.as_secs_f64(),
                "host_s": profile.host.as_secs_f64(),
                "finish_s": profile.finish.as_secs_f64(),
                "step_count": profile.step_count,
                "graphs_captured": profile.graphs_captured,
                "ms_per_step": profile.steps.as_secs_f64() * 1e3 / profile.step_count.max(1) as f64,
            })
        });
        let mean_context = args.prompt_len as f64 + args.new_tokens as f64 / 2.0;
        let bytes_per_step = weight_bytes + kv_bytes_per_token * batch as f64 * mean_context;
        let step_seconds = seconds / args.new_tokens as f64;
        let row = BenchRow {
            batch,
            new_tokens: args.new_tokens,
            cold_seconds,
            cold_tokens_per_s: cold_tokens as f64 / cold_seconds,
            seconds,
            tokens_per_s: tokens as f64 / seconds,
            profile,
            bytes_per_step,
            hbm_fraction: bytes_per_step / step_seconds / args.hbm_bytes_per_s,
        };
        tracing::info!(
            batch,
            tokens_per_s = row.tokens_per_s,
            hbm_fraction = row.hbm_fraction,
            "measured"
        );
        rows.push(row);
    }
    let report = serde_json::json!({
        "engine": "seekmath",
        "model": args.model.model,
        "device": format!("{device:?}"),
        "dtype": format!("{:?}", loaded.model.kind()),
        "cuda_graphs": options.cuda_graphs && device.is_cuda(),
        "fused_decode": options.fused_decode && device.is_cuda(),
        "decode_attention": format!("{:?}", options.decode_attention),
        "sampler_kernel": options.sampler_kernel && device.is_cuda(),
        "layer_kernels": options.layer_kernels && options.fused_decode && device.is_cuda(),
        "cuda_kernels": match seekmath_shim::cuda_kernels_status() {
            Ok(()) => "available".to_string(),
            Err(reason) => reason,
        },
        "weight_bytes": weight_bytes,
        "kv_bytes_per_token": kv_bytes_per_token,
        "prompt_len": args.prompt_len,
        "temperature": args.temperature,
        "results": rows,
    });
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(path) = &args.json {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn synchronize(device: Device) {
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}
