//! The eval runner: prompts a [`Generator`] over a whole benchmark in batches, runs programs in the sandbox for
//! PoT / tool-integrated modes, scores every sample, and appends one JSON line per item so that a killed run
//! resumes where it stopped.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use seekmath_verify::Mode;
use serde::{Deserialize, Serialize};

use crate::data::{self, Problem};
use crate::metrics::majority_vote;
use crate::paper::Setting;
use crate::program::{feedback_block, pot_program, tir_program};
use crate::prompt::{PromptBuilder, PromptMode};
use crate::registry::BenchmarkSelection;
use crate::report::{summarize, BenchSummary};
use crate::sandbox::{ExecStatus, Sandbox};
use crate::scoring::Scorer;

/// What the eval runner needs from a model; the CLI adapts seekmath-model's engine to it.
pub trait Generator {
    /// One completion list per prompt (n samples each), texts only, stop strings applied.
    fn generate(&mut self, prompts: &[String], params: &GenerationRequest) -> Result<Vec<Vec<GeneratedText>>>;
    /// Render a chat-format prompt with the model's template.
    fn chat_prompt(&self, messages: &[(String, String)]) -> Result<String>;
}

/// Sampling parameters for one [`Generator::generate`] call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationRequest {
    /// Most tokens to generate per completion.
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 = greedy.
    pub temperature: f64,
    /// Nucleus sampling mass (1 = off).
    pub top_p: f64,
    /// Samples per prompt.
    pub n: usize,
    /// RNG seed (same seed, same outputs).
    pub seed: u64,
    /// Strings that end a completion (not included in the returned text).
    pub stop: Vec<String>,
}

/// One completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratedText {
    /// Completion text without the prompt and without the stop string.
    pub text: String,
    /// Generated tokens.
    pub num_tokens: usize,
    /// `eos`, `stop` (a stop string matched) or `length`.
    pub finish_reason: String,
}

/// How to run one benchmark.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Prompting mode.
    pub mode: PromptMode,
    /// `None` = the published few-shot count, `Some(0)` = zero-shot chat, `Some(n)` = first n exemplars.
    pub shots: Option<usize>,
    /// Samples per problem (1 = greedy top-1; k > 1 enables maj@k and pass@k).
    pub samples: usize,
    /// Sampling temperature (0 = greedy).
    pub temperature: f64,
    /// Nucleus sampling mass.
    pub top_p: f64,
    /// Most new tokens per generation call.
    pub max_new_tokens: usize,
    /// Base seed.
    pub seed: u64,
    /// Evaluate only the first N problems.
    pub limit: Option<usize>,
    /// Problems per generation call (also the checkpoint granularity).
    pub batch_size: usize,
    /// Verifier strictness.
    pub verify_mode: Mode,
    /// Most code executions per tool-integrated trajectory.
    pub tir_rounds: usize,
    /// Folder of the few-shot prompt sets.
    pub fewshot_dir: PathBuf,
    /// Model identifier recorded in outputs (path or name).
    pub model: String,
    /// Show a progress bar.
    pub progress: bool,
}

impl EvalOptions {
    /// The paper setting these options correspond to.
    pub fn setting(&self, builder: &PromptBuilder) -> Setting {
        match (self.mode, builder.shots()) {
            (PromptMode::Cot, 0) => Setting::ZeroShotCot,
            (PromptMode::Cot, _) => Setting::FewShotCot,
            (PromptMode::Pot, _) => Setting::FewShotPot,
            (PromptMode::Tir, _) => Setting::ZeroShotTir,
        }
    }
}

/// Everything that must match for a run directory to be resumed (written to `run.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Benchmark name.
    pub bench: String,
    /// Data file.
    pub data_file: PathBuf,
    /// Model identifier.
    pub model: String,
    /// Prompting mode.
    pub mode: PromptMode,
    /// Exemplars in the prompt.
    pub shots: usize,
    /// Samples per problem.
    pub samples: usize,
    /// Temperature.
    pub temperature: f64,
    /// Top-p.
    pub top_p: f64,
    /// Max new tokens.
    pub max_new_tokens: usize,
    /// Seed.
    pub seed: u64,
    /// Verifier mode.
    pub verify_mode: String,
    /// Batch size (fixes batch boundaries, hence per-batch seeds).
    pub batch_size: usize,
    /// Tool-integrated rounds.
    pub tir_rounds: usize,
    /// Stop strings sent with every generation call.
    pub stop: Vec<String>,
}

/// A program run recorded with its sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// The program as run.
    pub code: String,
    /// How it ended.
    pub status: ExecStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error (tail).
    pub stderr: String,
}

/// One sample of one problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    /// The model's text (for tool-integrated runs: the whole trajectory including fed-back outputs).
    pub completion: String,
    /// Extracted answer (`None` = no answer found).
    pub extracted: Option<String>,
    /// Whether the extracted answer is right.
    pub correct: bool,
    /// Generated tokens (all rounds).
    pub tokens: usize,
    /// Finish reason of the last generation.
    pub finish_reason: String,
    /// Programs run for this sample (PoT and tool-integrated modes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executions: Vec<Execution>,
}

/// One line of `items.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRecord {
    /// Position in the benchmark file (0-based, after skipping malformed records).
    pub index: usize,
    /// Problem id.
    pub id: String,
    /// The prompt sent to the model.
    pub prompt: String,
    /// Gold answer.
    pub gold: String,
    /// Final prediction: sample 0 for a single sample, the majority answer otherwise.
    pub prediction: Option<String>,
    /// Whether `prediction` is right.
    pub correct: bool,
    /// Number of correct samples.
    pub num_correct: usize,
    /// Generated tokens over all samples.
    pub tokens: usize,
    /// Generation + execution seconds attributed to this item (its batch's time divided evenly).
    pub seconds: f64,
    /// All samples.
    pub samples: Vec<SampleRecord>,
}

/// Files of one benchmark's run directory.
pub struct RunFiles {
    /// Directory.
    pub dir: PathBuf,
}

impl RunFiles {
    /// `items.jsonl`.
    pub fn items(&self) -> PathBuf {
        self.dir.join("items.jsonl")
    }
    /// `run.json`.
    pub fn config(&self) -> PathBuf {
        self.dir.join("run.json")
    }
    /// `summary.json`.
    pub fn summary(&self) -> PathBuf {
        self.dir.join("summary.json")
    }
}

/// Evaluates one benchmark, resuming from `out_dir/<bench>/items.jsonl` if present. Returns its summary, which is
/// also written to `summary.json` in that directory.
pub fn run_benchmark(
    generator: &mut dyn Generator,
    selection: &BenchmarkSelection,
    options: &EvalOptions,
    sandbox: Option<&Sandbox>,
    out_dir: &Path,
) -> Result<BenchSummary> {
    let spec = selection.spec;
    let loaded = data::load(spec, &selection.path)?;
    let mut problems = loaded.problems;
    if let Some(limit) = options.limit {
        problems.truncate(limit);
    }
    if problems.is_empty() {
        bail!("{}: no problems to evaluate in {}", spec.name, selection.path.display());
    }
    let builder = PromptBuilder::new(spec, options.mode, options.shots, &options.fewshot_dir)?;
    if matches!(options.mode, PromptMode::Pot | PromptMode::Tir) && sandbox.is_none() {
        bail!("{} mode runs model-written programs and needs a sandbox", options.mode);
    }
    let scorer = Scorer::new(spec.answer_kind, options.verify_mode);
    let files = RunFiles {
        dir: out_dir.join(spec.name),
    };
    std::fs::create_dir_all(&files.dir).with_context(|| format!("creating {}", files.dir.display()))?;

    let config = RunConfig {
        bench: spec.name.to_string(),
        data_file: selection.path.clone(),
        model: options.model.clone(),
        mode: options.mode,
        shots: builder.shots(),
        samples: options.samples.max(1),
        temperature: options.temperature,
        top_p: options.top_p,
        max_new_tokens: options.max_new_tokens,
        seed: options.seed,
        verify_mode: format!("{:?}", options.verify_mode),
        batch_size: options.batch_size.max(1),
        tir_rounds: options.tir_rounds,
        stop: builder.stop_words().to_vec(),
    };
    check_or_write_config(&files, &config)?;
    let mut done = load_done(&files.items(), &problems)?;
    let todo: Vec<usize> = (0..problems.len())
        .filter(|i| !done.iter().any(|r| r.index == *i))
        .collect();
    if !done.is_empty() {
        tracing::info!(
            "{}: resuming, {} of {} items already done",
            spec.name,
            done.len(),
            problems.len()
        );
    }

    let progress = make_progress(options.progress, todo.len() as u64, spec.name);
    let mut writer = OpenOptions::new().create(true).append(true).open(files.items())?;
    let ctx = BatchContext {
        builder: &builder,
        scorer: &scorer,
        sandbox,
        config: &config,
    };
    // Batches are fixed chunks of the full index range, so a resumed run draws the same per-batch seeds.
    for batch_start in (0..problems.len()).step_by(config.batch_size) {
        let batch_end = (batch_start + config.batch_size).min(problems.len());
        let batch: Vec<usize> = todo
            .iter()
            .copied()
            .filter(|i| (batch_start..batch_end).contains(i))
            .collect();
        if batch.is_empty() {
            continue;
        }
        let seed = options.seed.wrapping_add((batch_start / config.batch_size) as u64);
        let records = ctx.run_batch(generator, &problems, &batch, seed)?;
        for record in records {
            serde_json::to_writer(&mut writer, &record)?;
            writer.write_all(b"\n")?;
            progress.inc(1);
            done.push(record);
        }
        writer.flush()?;
        writer.sync_data()?;
        let correct = done.iter().filter(|r| r.correct).count();
        progress.set_message(format!(
            "{} acc {:.1}%",
            spec.name,
            100.0 * correct as f64 / done.len() as f64
        ));
    }
    progress.finish_and_clear();
    done.sort_by_key(|r| r.index);
    let setting = options.setting(&builder);
    let summary = summarize(spec, &config, setting, &done, loaded.skipped.len());
    std::fs::write(files.summary(), serde_json::to_string_pretty(&summary)?)?;
    Ok(summary)
}

fn make_progress(show: bool, len: u64, name: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:>20} [{bar:30}] {pos}/{len} [{elapsed_precise} < {eta_precise}]")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(name.to_string());
    bar
}

fn check_or_write_config(files: &RunFiles, config: &RunConfig) -> Result<()> {
    let path = files.config();
    if path.exists() {
        let old: RunConfig = serde_json::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("{} is not a run config", path.display()))?;
        if &old != config {
            bail!(
                "{} holds a run with different settings ({:?}); choose another --output or delete it",
                files.dir.display(),
                old
            );
        }
    } else {
        std::fs::write(&path, serde_json::to_string_pretty(config)?)?;
    }
    Ok(())
}

/// Reads finished items; a torn last line (the run was killed mid-write) is cut off so appending can continue.
fn load_done(path: &Path, problems: &[Problem]) -> Result<Vec<ItemRecord>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut records = Vec::new();
    let mut good_bytes = 0u64;
    let mut torn = false;
    for line in BufReader::new(File::open(path)?).split(b'\n') {
        let line = line?;
        match serde_json::from_slice::<ItemRecord>(&line) {
            Ok(record) if !torn => {
                good_bytes += line.len() as u64 + 1;
                // Items beyond a smaller --limit stay in the file but are not part of this run.
                let Some(problem) = problems.get(record.index) else {
                    continue;
                };
                if problem.id != record.id {
                    bail!(
                        "{}: item {} ({}) does not match the benchmark file",
                        path.display(),
                        record.index,
                        record.id
                    );
                }
                records.push(record);
            }
            _ if line.iter().all(u8::is_ascii_whitespace) => good_bytes += line.len() as u64 + 1,
            _ if !torn => torn = true,
            _ => bail!(
                "{}: corrupt line after a torn record; delete the file to start over",
                path.display()
            ),
        }
    }
    if torn {
        tracing::warn!("{}: dropping a partially written last line", path.display());
        OpenOptions::new().write(true).open(path)?.set_len(good_bytes)?;
    } else if good_bytes > std::fs::metadata(path)?.len() {
        // Killed between a record and its newline: terminate the line so the next append starts a new one.
        OpenOptions::new().append(true).open(path)?.write_all(b"\n")?;
    }
    records.sort_by_key(|r| r.index);
    records.dedup_by_key(|r| r.index);
    Ok(records)
}

struct BatchContext<'a> {
    builder: &'a PromptBuilder,
    scorer: &'a Scorer,
    sandbox: Option<&'a Sandbox>,
    config: &'a RunConfig,
}

/// A sample in progress (one trajectory for tool-integrated mode).
struct Trajectory {
    item: usize,
    text: String,
    tokens: usize,
    finish_reason: String,
    executions: Vec<Execution>,
}

impl BatchContext<'_> {
    fn request(&self, n: usize, seed: u64) -> GenerationRequest {
        GenerationRequest {
            max_new_tokens: self.config.max_new_tokens,
            temperature: self.config.temperature,
            top_p: self.config.top_p,
            n,
            seed,
            stop: self.builder.stop_words().to_vec(),
        }
    }

    fn run_batch(
        &self,
        generator: &mut dyn Generator,
        problems: &[Problem],
        batch: &[usize],
        seed: u64,
    ) -> Result<Vec<ItemRecord>> {
        let start = Instant::now();
        let prompts: Vec<String> = batch
            .iter()
            .map(|&i| self.builder.build(&problems[i], &*generator))
            .collect::<Result<_>>()?;
        let samples = self.config.samples;
        let outputs = generator.generate(&prompts, &self.request(samples, seed))?;
        if outputs.len() != prompts.len() || outputs.iter().any(|o| o.len() != samples) {
            bail!(
                "generator returned {} completion lists for {} prompts (expected {samples} each)",
                outputs.len(),
                prompts.len()
            );
        }
        let mut trajectories: Vec<Trajectory> = Vec::with_capacity(batch.len() * samples);
        for (item, completions) in outputs.into_iter().enumerate() {
            for c in completions {
                trajectories.push(Trajectory {
                    item,
                    text: c.text,
                    tokens: c.num_tokens,
                    finish_reason: c.finish_reason,
                    executions: Vec::new(),
                });
            }
        }
        match self.builder.mode() {
            PromptMode::Cot => {}
            PromptMode::Pot => self.run_pot(&mut trajectories)?,
            PromptMode::Tir => self.run_tir(generator, &prompts, &mut trajectories, seed)?,
        }
        let seconds = start.elapsed().as_secs_f64() / batch.len() as f64;
        let mut records = Vec::with_capacity(batch.len());
        for (slot, &index) in batch.iter().enumerate() {
            let problem = &problems[index];
            let samples: Vec<SampleRecord> = trajectories
                .iter()
                .filter(|t| t.item == slot)
                .map(|t| self.score_sample(t, &problem.gold))
                .collect();
            records.push(self.item_record(index, problem, &prompts[slot], samples, seconds));
        }
        Ok(records)
    }

    fn score_sample(&self, t: &Trajectory, gold: &str) -> SampleRecord {
        let extracted = match self.builder.mode() {
            PromptMode::Pot => t
                .executions
                .last()
                .filter(|e| e.status == ExecStatus::Success)
                .and_then(|e| self.scorer.extract_program_output(&e.stdout)),
            _ => self.scorer.extract(&t.text),
        };
        let correct = extracted.as_deref().is_some_and(|p| self.scorer.is_correct(p, gold));
        SampleRecord {
            completion: t.text.clone(),
            extracted,
            correct,
            tokens: t.tokens,
            finish_reason: t.finish_reason.clone(),
            executions: t.executions.clone(),
        }
    }

    fn item_record(
        &self,
        index: usize,
        problem: &Problem,
        prompt: &str,
        samples: Vec<SampleRecord>,
        seconds: f64,
    ) -> ItemRecord {
        let answers: Vec<Option<String>> = samples.iter().map(|s| s.extracted.clone()).collect();
        let prediction = if samples.len() == 1 {
            answers[0].clone()
        } else {
            majority_vote(&answers, |a, b| self.scorer.same_answer(a, b)).and_then(|i| answers[i].clone())
        };
        let correct = prediction
            .as_deref()
            .is_some_and(|p| self.scorer.is_correct(p, &problem.gold));
        ItemRecord {
            index,
            id: problem.id.clone(),
            prompt: prompt.to_string(),
            gold: problem.gold.clone(),
            prediction,
            correct,
            num_correct: samples.iter().filter(|s| s.correct).count(),
            tokens: samples.iter().map(|s| s.tokens).sum(),
            seconds,
            samples,
        }
    }

    /// Runs every program of the batch, in parallel across the machine's cores.
    fn execute_all(&self, programs: Vec<(usize, String)>, trajectories: &mut [Trajectory]) -> Result<()> {
        let sandbox = self.sandbox.context("no sandbox")?;
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .max(1);
        let mut results: Vec<(usize, Execution)> = Vec::with_capacity(programs.len());
        for chunk in programs.chunks(workers) {
            let chunk_results: Vec<Result<(usize, Execution)>> = std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|(slot, code)| {
                        scope.spawn(move || {
                            let r = sandbox.run(code)?;
                            let stderr_tail: String = tail(&r.stderr, 2000);
                            Ok((
                                *slot,
                                Execution {
                                    code: code.clone(),
                                    status: r.status,
                                    stdout: r.stdout,
                                    stderr: stderr_tail,
                                },
                            ))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("sandbox thread panicked")))
                    })
                    .collect()
            });
            for r in chunk_results {
                results.push(r?);
            }
        }
        for (slot, execution) in results {
            trajectories[slot].executions.push(execution);
        }
        Ok(())
    }

    fn run_pot(&self, trajectories: &mut [Trajectory]) -> Result<()> {
        let style = self
            .builder
            .program_style()
            .context("PoT prompt without a program style")?;
        let programs: Vec<(usize, String)> = trajectories
            .iter()
            .enumerate()
            .filter_map(|(i, t)| pot_program(&t.text, style).map(|p| (i, p)))
            .collect();
        self.execute_all(programs, trajectories)
    }

    fn run_tir(
        &self,
        generator: &mut dyn Generator,
        prompts: &[String],
        trajectories: &mut [Trajectory],
        seed: u64,
    ) -> Result<()> {
        for round in 0..self.config.tir_rounds {
            // A trajectory continues when generation stopped at "```output" right after a code block.
            let programs: Vec<(usize, String)> = trajectories
                .iter()
                .enumerate()
                .filter(|(_, t)| t.finish_reason == "stop")
                .filter_map(|(i, t)| tir_program(&t.text).map(|p| (i, p)))
                .collect();
            if programs.is_empty() {
                break;
            }
            let slots: Vec<usize> = programs.iter().map(|(i, _)| *i).collect();
            self.execute_all(programs, trajectories)?;
            let mut continuation_prompts = Vec::with_capacity(slots.len());
            for &slot in &slots {
                let t = &mut trajectories[slot];
                let last = t.executions.last().expect("just executed");
                let shown = if last.status == ExecStatus::Success {
                    last.stdout.clone()
                } else {
                    let summary = crate::sandbox::ExecResult {
                        status: last.status.clone(),
                        stdout: String::new(),
                        stderr: last.stderr.clone(),
                        wall: Default::default(),
                    }
                    .error_summary();
                    format!("Runtime errors: {summary}")
                };
                let trimmed = t.text.trim_end().len();
                t.text.truncate(trimmed);
                t.text.push_str(&feedback_block(&shown));
                continuation_prompts.push(format!("{}{}", prompts[t.item], t.text));
            }
            let round_seed = seed.wrapping_mul(31).wrapping_add(round as u64 + 1);
            let outputs = generator.generate(&continuation_prompts, &self.request(1, round_seed))?;
            if outputs.len() != slots.len() {
                bail!(
                    "generator returned {} completions for {} prompts",
                    outputs.len(),
                    slots.len()
                );
            }
            for (&slot, mut out) in slots.iter().zip(outputs) {
                let c = out.pop().context("generator returned no sample")?;
                let t = &mut trajectories[slot];
                t.text.push_str(&c.text);
                t.tokens += c.num_tokens;
                t.finish_reason = c.finish_reason;
            }
        }
        Ok(())
    }
}

fn tail(s: &str, max_chars: usize) -> String {
    let n = s.chars().count();
    if n <= max_chars {
        s.to_string()
    } else {
        s.chars().skip(n - max_chars).collect()
    }
}
