//! The training run: model and data set-up, the step loop with metrics and progress, held-out evaluation,
//! checkpoints, `--resume`, and the final Hugging Face export.

use crate::checkpoint::{CheckpointDir, TrainState};
use crate::config::{Precision, Stage, TrainConfig};
use crate::data::pretrain::MixtureStream;
use crate::data::sft::{fit_examples, load_examples, split_holdout, SftExample, SftStream, TokenizerEncoder};
use crate::data::{collate, derive_seed, Batch, Sequence, SequenceStream};
use crate::metrics::{flops_per_token, known_peak_flops, JsonlWriter, TensorBoardWriter};
use crate::optim::{AdamW, AdamWSettings};
use crate::schedule::LrSchedule;
use crate::step::{eval_loss, train_step, StepSettings};
use anyhow::{bail, Context, Result};
use seekmath_model::{LoadedModel, ModelConfig, Tokenizer};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind};

/// Options of one invocation (not part of the reproducible configuration).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Continue from the latest checkpoint in the output folder (start fresh if there is none).
    pub resume: bool,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Steps completed in total.
    pub steps: u64,
    /// Loss of the last step.
    pub final_loss: f64,
    /// Held-out loss before training (when evaluation is configured and the run started from step 0).
    pub eval_loss_before: Option<f64>,
    /// Held-out loss at the end.
    pub eval_loss_after: Option<f64>,
    /// The Hugging Face export, when written.
    pub export_dir: Option<PathBuf>,
}

/// Parses `cpu`, `cuda`, `cuda:N`, `auto`.
pub fn resolve_device(spec: &str) -> Result<Device> {
    Ok(match spec {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        s => match s.strip_prefix("cuda:").and_then(|i| i.parse().ok()) {
            Some(i) => Device::Cuda(i),
            None => bail!("run.device '{s}': expected cpu, cuda, cuda:N or auto"),
        },
    })
}

fn load_model(cfg: &TrainConfig, device: Device) -> Result<LoadedModel> {
    let mut loaded = if let Some(path) = &cfg.model.path {
        seekmath_model::load(path, device, Kind::Float).with_context(|| format!("loading model {}", path.display()))?
    } else {
        let path = cfg.model.config_json.as_ref().expect("validated");
        let config = ModelConfig::from_file(path)?;
        LoadedModel::random(
            config,
            derive_seed(cfg.run.seed, 0x494E_4954, 0) as i64 & i64::MAX,
            device,
            Kind::Float,
        )?
    };
    if let Some(dir) = &cfg.model.tokenizer {
        loaded.tokenizer =
            Some(Tokenizer::from_hf_folder(dir).with_context(|| format!("tokenizer {}", dir.display()))?);
    }
    Ok(loaded)
}

/// Non-embedding parameter count and the output-projection size, for the FLOP estimate.
fn model_flops_per_token(loaded: &LoadedModel, context: usize) -> f64 {
    let total: i64 = loaded.vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
    let c = &loaded.config;
    let (v, d) = (c.vocab_size as f64, c.hidden_size as f64);
    let embeddings = if c.tie_word_embeddings { v * d } else { 2.0 * v * d };
    flops_per_token(
        total as f64 - embeddings,
        v,
        d,
        c.num_hidden_layers as f64,
        context as f64,
    )
}

struct Streams {
    train: Box<dyn SequenceStream>,
    eval: Vec<Sequence>,
}

fn build_streams(cfg: &TrainConfig, stage: Stage, tokenizer: Option<&Tokenizer>) -> Result<Streams> {
    let context = cfg.data.context_length;
    match stage {
        Stage::Pretrain => {
            let train = MixtureStream::new(&cfg.data.sources, context, cfg.run.seed)?;
            let mut eval = Vec::new();
            if !cfg.eval.paths.is_empty() && cfg.eval.sequences > 0 {
                let source = crate::config::SourceConfig {
                    name: "eval".into(),
                    weight: 1.0,
                    paths: cfg.eval.paths.clone(),
                };
                let mut stream = MixtureStream::new(&[source], context, cfg.run.seed)?;
                for _ in 0..cfg.eval.sequences {
                    eval.push(stream.next_sequence()?);
                }
            }
            Ok(Streams {
                train: Box::new(train),
                eval,
            })
        }
        Stage::Sft => {
            let tokenizer = tokenizer.context("SFT needs a tokenizer: the model has none; set model.tokenizer")?;
            if cfg.sft.paths.is_empty() {
                bail!("sft.paths is empty");
            }
            let encoder = TokenizerEncoder {
                tokenizer,
                use_chat_template: cfg.sft.use_chat_template,
                system_prompt: cfg.sft.system_prompt.clone(),
            };
            let (examples, stats) = load_examples(&cfg.sft.paths, &encoder)?;
            tracing::info!(
                "SFT data: {} records, {} malformed lines skipped",
                stats.records,
                stats.malformed
            );
            let (examples, dropped) = fit_examples(examples, context, cfg.sft.truncate_long);
            if dropped > 0 {
                tracing::warn!(
                    "SFT data: {dropped} examples longer than {context} tokens skipped (sft.truncate_long = false)"
                );
            }
            let (train, mut held): (Vec<SftExample>, Vec<SftExample>) = if cfg.eval.paths.is_empty() {
                split_holdout(examples, cfg.eval.holdout_examples, cfg.run.seed)
            } else {
                let (eval_examples, _) = load_examples(&cfg.eval.paths, &encoder)?;
                (examples, fit_examples(eval_examples, context, true).0)
            };
            let pad = tokenizer
                .pad_token_id()
                .or(tokenizer.eos_token_ids().first().copied())
                .unwrap_or(0);
            let eval = if held.is_empty() {
                Vec::new()
            } else {
                // Held-out examples one per row, so the loss does not depend on which examples share a row.
                SftStream::new(std::mem::take(&mut held), context, pad, false, cfg.run.seed)?.epoch_sequences()
            };
            tracing::info!("SFT data: {} training examples, {} held out", train.len(), eval.len());
            let stream = SftStream::new(train, context, pad, cfg.sft.concatenate, cfg.run.seed)?;
            tracing::info!("SFT data: {} packed rows per epoch", stream.rows_per_epoch());
            Ok(Streams {
                train: Box::new(stream),
                eval,
            })
        }
    }
}

fn micro_batches(sequences: &[Sequence], micro: usize, isolate: bool) -> Vec<Batch> {
    sequences.chunks(micro).map(|chunk| collate(chunk, isolate)).collect()
}

/// Drops metric records after `step` (they belong to steps a killed run did not checkpoint).
fn truncate_metrics(path: &Path, step: u64) -> Result<()> {
    if !path.is_file() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path)?;
    let kept: String = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let tmp = path.with_extension("jsonl.tmp");
    std::fs::write(&tmp, kept)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Runs a whole training stage as configured.
pub fn run(cfg: &TrainConfig, stage: Stage, options: &RunOptions) -> Result<RunSummary> {
    let device = resolve_device(&cfg.run.device)?;
    if let Device::Cuda(i) = device {
        if !tch::Cuda::is_available() || i >= tch::Cuda::device_count() as usize {
            bail!(
                "run.device asks for cuda:{i} but libtorch sees {} CUDA device(s)",
                tch::Cuda::device_count()
            );
        }
    }
    let autocast = match (cfg.run.precision, device) {
        (Precision::Bf16Autocast, _) => Some(Kind::BFloat16),
        (Precision::F32, _) => None,
    };
    let out = &cfg.run.output_dir;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let checkpoints = CheckpointDir::new(out.join("checkpoints"));
    let resume_from = checkpoints.latest_dir()?;
    if resume_from.is_some() && !options.resume {
        bail!(
            "{} already has checkpoints: pass --resume to continue, or choose another run.output_dir",
            out.display()
        );
    }
    std::fs::write(out.join("config.resolved.toml"), toml::to_string_pretty(cfg)?)?;
    tracing::info!(
        "stage {stage:?}, seed {}, device {device:?}, precision {:?}",
        cfg.run.seed,
        cfg.run.precision
    );
    tch::manual_seed(derive_seed(cfg.run.seed, 0x544F_5243, 0) as i64 & i64::MAX);

    let loaded = load_model(cfg, device)?;
    let mut streams = build_streams(cfg, stage, loaded.tokenizer.as_ref())?;
    let mut optimizer = AdamW::new(
        &loaded.vs,
        AdamWSettings {
            beta1: cfg.optim.beta1,
            beta2: cfg.optim.beta2,
            eps: cfg.optim.eps,
            weight_decay: cfg.optim.weight_decay,
            fused: cfg.optim.fused,
        },
    )?;
    let total_steps = cfg.total_steps();
    let schedule = LrSchedule::new(&cfg.schedule, cfg.optim.peak_lr, total_steps);
    let stage_name = match stage {
        Stage::Pretrain => "pretrain",
        Stage::Sft => "sft",
    };

    let mut start_step = 0u64;
    let mut tokens_seen = 0u64;
    let metrics_path = out.join("metrics.jsonl");
    if let (true, Some(dir)) = (options.resume, &resume_from) {
        let (state, model_tensors, optim_tensors) = CheckpointDir::load(dir)?;
        if state.stage != stage_name {
            bail!(
                "checkpoint {} is from stage {}, not {stage_name}",
                dir.display(),
                state.stage
            );
        }
        let vars = loaded.vs.variables();
        for (name, t) in &model_tensors {
            let var = vars
                .get(name)
                .with_context(|| format!("checkpoint tensor {name} is not a model parameter"))?;
            tch::no_grad(|| var.shallow_clone().copy_(t));
        }
        if model_tensors.len() != vars.len() {
            bail!(
                "checkpoint has {} model tensors, the model {}",
                model_tensors.len(),
                vars.len()
            );
        }
        optimizer.load_state(optim_tensors, state.step as i64)?;
        streams.train.restore(&state.data_position)?;
        start_step = state.step;
        tokens_seen = state.tokens_seen;
        truncate_metrics(&metrics_path, start_step)?;
        tracing::info!("resumed from {} at step {start_step}", dir.display());
    } else {
        if options.resume {
            tracing::info!(
                "--resume: no checkpoint in {}, starting from step 0",
                checkpoints_root(out).display()
            );
        }
        // A fresh start owns the metrics file (an earlier run in this folder left no checkpoint to continue).
        if metrics_path.exists() {
            std::fs::remove_file(&metrics_path)?;
        }
    }

    let mut jsonl = JsonlWriter::append(&metrics_path)?;
    let mut tensorboard = if cfg.metrics.tensorboard {
        Some(TensorBoardWriter::create(&out.join("tensorboard"))?)
    } else {
        None
    };
    let flops_token = model_flops_per_token(&loaded, cfg.data.context_length);
    let peak_flops = if cfg.metrics.peak_flops > 0.0 {
        Some(cfg.metrics.peak_flops)
    } else if let Device::Cuda(i) = device {
        seekmath_shim::cuda_device_name(i)
            .ok()
            .and_then(|n| known_peak_flops(&n))
    } else {
        None
    };
    let isolate = cfg.data.document_boundary_attention;
    let eval_batches = micro_batches(&streams.eval, cfg.optim.micro_batch_size, isolate);
    let mut summary = RunSummary {
        steps: start_step,
        final_loss: f64::NAN,
        eval_loss_before: None,
        eval_loss_after: None,
        export_dir: None,
    };
    let log_eval = |step: u64, jsonl: &mut JsonlWriter, tb: &mut Option<TensorBoardWriter>| -> Result<Option<f64>> {
        if eval_batches.is_empty() {
            return Ok(None);
        }
        let loss = eval_loss(&loaded.model, &eval_batches, device, autocast)?;
        tracing::info!("step {step}: held-out loss {loss:.4}");
        let mut rec = Map::new();
        rec.insert("step".into(), json!(step));
        rec.insert("eval_loss".into(), json!(loss));
        jsonl.write(&rec)?;
        if let Some(tb) = tb {
            tb.scalars(step as i64, &[("eval/loss", loss as f32)])?;
        }
        Ok(Some(loss))
    };
    if start_step == 0 {
        summary.eval_loss_before = log_eval(0, &mut jsonl, &mut tensorboard)?;
    }

    let bar = if cfg.metrics.progress_bar {
        indicatif::ProgressBar::new(total_steps as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} steps (eta {eta}) {msg}",
        )
        .expect("static template"),
    );
    bar.set_position(start_step);
    let sequences_per_step = cfg.sequences_per_step();
    tracing::info!(
        "{total_steps} steps of {sequences_per_step} sequences × {} tokens ({} micro-batches of {})",
        cfg.data.context_length,
        cfg.accumulation_steps(),
        cfg.optim.micro_batch_size
    );
    for step in start_step..total_steps as u64 {
        // Any torch-side randomness of this step is a function of (seed, step): resuming reproduces it.
        tch::manual_seed(derive_seed(cfg.run.seed, 0x5354_4550, step) as i64 & i64::MAX);
        let sequences = (0..sequences_per_step)
            .map(|_| streams.train.next_sequence())
            .collect::<Result<Vec<_>>>()?;
        let batches = micro_batches(&sequences, cfg.optim.micro_batch_size, isolate);
        let lr = schedule.lr(step as usize);
        let started = Instant::now();
        let settings = StepSettings {
            lr,
            grad_clip: cfg.optim.grad_clip,
            device,
            autocast,
            activation_checkpointing: cfg.run.activation_checkpointing,
        };
        let stats = train_step(&loaded.model, &mut optimizer, &batches, &settings)?;
        if !stats.loss.is_finite() {
            bail!("step {}: loss is {} (lr {lr:e}); stopping", step + 1, stats.loss);
        }
        let seconds = started.elapsed().as_secs_f64();
        tokens_seen += stats.input_tokens as u64;
        let done = step + 1;
        let tokens_per_second = stats.input_tokens as f64 / seconds.max(1e-9);
        let mfu = peak_flops.map(|p| tokens_per_second * flops_token / p);
        summary.final_loss = stats.loss;
        summary.steps = done;
        if done % cfg.metrics.log_every.max(1) as u64 == 0 || done == total_steps as u64 {
            let mut rec = Map::new();
            rec.insert("step".into(), json!(done));
            rec.insert("loss".into(), json!(stats.loss));
            rec.insert("lr".into(), json!(lr));
            rec.insert("grad_norm".into(), json!(stats.grad_norm));
            rec.insert("tokens".into(), json!(tokens_seen));
            rec.insert("target_tokens".into(), json!(stats.target_tokens));
            rec.insert("tokens_per_second".into(), json!(tokens_per_second));
            rec.insert("step_seconds".into(), json!(seconds));
            if let Some(m) = mfu {
                rec.insert("mfu".into(), json!(m));
            }
            jsonl.write(&rec)?;
            if let Some(tb) = tensorboard.as_mut() {
                let mut scalars = vec![
                    ("train/loss", stats.loss as f32),
                    ("train/lr", lr as f32),
                    ("train/grad_norm", stats.grad_norm as f32),
                    ("train/tokens_per_second", tokens_per_second as f32),
                ];
                if let Some(m) = mfu {
                    scalars.push(("train/mfu", m as f32));
                }
                tb.scalars(done as i64, &scalars)?;
            }
            tracing::debug!(
                step = done,
                loss = stats.loss,
                lr,
                grad_norm = stats.grad_norm,
                tokens_per_second
            );
        }
        bar.set_position(done);
        bar.set_message(format!(
            "loss {:.4} lr {lr:.2e} {:.0} tok/s{}",
            stats.loss,
            tokens_per_second,
            mfu.map(|m| format!(" MFU {:.1}%", m * 100.0)).unwrap_or_default()
        ));
        if cfg.eval.every_steps > 0 && done % cfg.eval.every_steps as u64 == 0 && done != total_steps as u64 {
            log_eval(done, &mut jsonl, &mut tensorboard)?;
        }
        let last = done == total_steps as u64;
        if cfg.checkpoint.enabled
            && ((cfg.checkpoint.every_steps > 0 && done % cfg.checkpoint.every_steps as u64 == 0) || last)
        {
            let state = TrainState {
                step: done,
                tokens_seen,
                seed: cfg.run.seed,
                data_position: streams.train.position(),
                stage: stage_name.into(),
            };
            let mut model_tensors: Vec<(String, tch::Tensor)> = loaded.vs.variables().into_iter().collect();
            model_tensors.sort_by(|a, b| a.0.cmp(&b.0));
            let dir = checkpoints.save(
                &state,
                &model_tensors,
                &optimizer.state_tensors(),
                cfg.checkpoint.keep_last,
            )?;
            tracing::debug!("checkpoint {}", dir.display());
        }
    }
    bar.finish_and_clear();
    summary.eval_loss_after = log_eval(summary.steps, &mut jsonl, &mut tensorboard)?;
    if cfg.checkpoint.export_final {
        let dir = out.join("final");
        seekmath_model::save_pretrained(&loaded, &dir).with_context(|| format!("exporting to {}", dir.display()))?;
        tracing::info!("exported Hugging Face model to {}", dir.display());
        summary.export_dir = Some(dir);
    }
    Ok(summary)
}

fn checkpoints_root(out: &Path) -> PathBuf {
    out.join("checkpoints")
}
