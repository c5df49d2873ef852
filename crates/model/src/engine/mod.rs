//! The batched sampling engine: many prompts of different lengths, `n` samples each, decoded together through
//! a preallocated KV cache.
//!
//! Why this shape: GRPO spends most of its time here, generating groups of samples per question. Prompts are
//! prefilled once (left-padded into one batch) and the prefilled cache rows are copied `n` times, so a group
//! shares its prompt's prefill. Decoding then runs one token per step for the whole batch; rows that finish are
//! dropped when the live rows fit a smaller batch-size bucket (powers of two), so long tails do not pay for the
//! whole batch. Sampling happens on the device with one counter-based uniform per row (see [`rng`]), which makes
//! every sample a function of (seed, prompt index, sample index) only.
//!
//! Cache layout (the contract of [`crate::KvCache`]): with prompts padded to length `P`, prompt `i` (length
//! `L_i`) occupies slots `P - L_i .. P`; generated token `s` sits in slot `P + s` at RoPE position `L_i + s`;
//! a `valid` [B, S] mask says which slots hold real tokens.
//!
//! On CUDA, decode steps can be replayed from CUDA graphs ([`EngineOptions::cuda_graphs`]): one graph per
//! (batch bucket, attention-length bucket), captured on first use, with static input buffers. The eager path is
//! always available and is the reference the graph path is checked against.

mod graph;
pub mod params;
pub mod rng;
pub mod sampler;
pub mod stop;

use anyhow::{bail, ensure, Result};
use tch::{Device, Kind, Tensor};

use crate::kv_cache::KvCache;
use crate::model::CausalLm;
use crate::tokenizer::Tokenizer;

pub use params::{Completion, FinishReason, SamplingParams};

/// Engine settings that are not per request.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// Most rows (prompts × n) decoded at once; larger requests run in waves of whole prompts.
    pub max_batch_rows: usize,
    /// Replay decode steps from CUDA graphs when the model is on a CUDA device.
    pub cuda_graphs: bool,
    /// Attention-length granularity of the CUDA-graph path (graphs attend over a multiple of this many slots).
    pub graph_slot_bucket: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_batch_rows: 512,
            cuda_graphs: true,
            graph_slot_bucket: 128,
        }
    }
}

/// Generates continuations with one model and its tokenizer.
pub struct Engine<'a> {
    model: &'a CausalLm,
    tokenizer: &'a Tokenizer,
    options: EngineOptions,
}

/// Bookkeeping of one sample on the host.
struct Row {
    prompt_index: usize,
    sample_index: usize,
    prompt_len: usize,
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
    finish: Option<FinishReason>,
}

/// Smallest power of two ≥ `n`: the batch sizes the decode loop (and its graphs) uses.
fn bucket(n: usize) -> usize {
    n.next_power_of_two()
}

impl<'a> Engine<'a> {
    /// An engine with default options (CUDA graphs on when the model is on CUDA).
    pub fn new(model: &'a CausalLm, tokenizer: &'a Tokenizer) -> Self {
        Self::with_options(model, tokenizer, EngineOptions::default())
    }

    /// An engine with explicit options.
    pub fn with_options(model: &'a CausalLm, tokenizer: &'a Tokenizer, options: EngineOptions) -> Self {
        Engine {
            model,
            tokenizer,
            options,
        }
    }

    /// The options in use.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// All prompts batched (different lengths), `n` samples each sharing the prompt's prefill. Output order:
    /// prompt-major, then sample index. Same seed ⇒ same output.
    pub fn generate(&self, prompts: &[Vec<u32>], params: &SamplingParams) -> Result<Vec<Completion>> {
        params.validate()?;
        let vocab = self.model.config().vocab_size;
        for (i, p) in prompts.iter().enumerate() {
            ensure!(
                !p.is_empty(),
                "prompt {i} is empty (it needs at least one token, e.g. BOS)"
            );
            if let Some(bad) = p.iter().find(|&&t| t as usize >= vocab) {
                bail!("prompt {i} has token id {bad}, outside the vocabulary of {vocab}");
            }
        }
        let prompts_per_wave = (self.options.max_batch_rows / params.n).max(1);
        let mut out = Vec::with_capacity(prompts.len() * params.n);
        for (wave, chunk) in prompts.chunks(prompts_per_wave).enumerate() {
            out.extend(self.generate_wave(chunk, wave * prompts_per_wave, params)?);
        }
        Ok(out)
    }

    fn use_graphs(&self) -> bool {
        self.options.cuda_graphs && self.model.device().is_cuda() && seekmath_shim::built_with_cuda()
    }

    fn generate_wave(
        &self,
        prompts: &[Vec<u32>],
        first_index: usize,
        params: &SamplingParams,
    ) -> Result<Vec<Completion>> {
        let rows: Vec<Row> = prompts
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                (0..params.n).map(move |j| Row {
                    prompt_index: first_index + i,
                    sample_index: j,
                    prompt_len: p.len(),
                    tokens: Vec::new(),
                    logprobs: Vec::new(),
                    finish: None,
                })
            })
            .collect();
        let mut rows = rows;
        if params.max_new_tokens > 0 {
            tch::no_grad(|| self.decode(prompts, params, &mut rows))?;
        }
        rows.into_iter().map(|row| self.finish_row(row, params)).collect()
    }

    /// Prefill, then the decode loop; fills `rows` in place.
    fn decode(&self, prompts: &[Vec<u32>], params: &SamplingParams, rows: &mut [Row]) -> Result<()> {
        let device = self.model.device();
        let n = params.n;
        let padded = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let max_len = padded + params.max_new_tokens;
        let (logits, prefill_cache, prefill_valid) = self.prefill(prompts)?;

        // Expand to prompt-major × n rows, inside a cache of a bucketed batch size.
        let live = rows.len();
        let mut batch = bucket(live);
        let expand: Vec<i64> = (0..prompts.len() as i64)
            .flat_map(|i| std::iter::repeat_n(i, n))
            .collect();
        let expand = Tensor::from_slice(&expand).to_device(device);
        let mut cache = self.model.new_kv_cache(batch as i64, max_len as i64);
        for (dst, src) in cache
            .keys
            .iter_mut()
            .zip(&prefill_cache.keys)
            .chain(cache.values.iter_mut().zip(&prefill_cache.values))
        {
            dst.narrow(0, 0, live as i64)
                .narrow(2, 0, padded as i64)
                .copy_(&src.index_select(0, &expand));
        }
        drop(prefill_cache);
        let mut valid = Tensor::zeros([batch as i64, max_len as i64], (Kind::Bool, device));
        valid
            .narrow(0, 0, live as i64)
            .narrow(1, 0, padded as i64)
            .copy_(&prefill_valid.index_select(0, &expand));
        let mut logits = pad_rows(&logits.index_select(0, &expand), batch);

        // `slot_rows[r]` = index into `rows` of batch row r (None for filler rows of the bucket).
        let mut slot_rows: Vec<Option<usize>> = (0..batch).map(|r| (r < live).then_some(r)).collect();
        let mut runner = graph::DecodeRunner::new(self.use_graphs(), self.options.graph_slot_bucket, max_len);
        let eos: Vec<u32> = if params.ignore_eos {
            Vec::new()
        } else {
            self.tokenizer.eos_token_ids().to_vec()
        };
        let tail = stop::tail_tokens(&params.stop);

        for step in 0..params.max_new_tokens {
            let uniforms: Vec<f32> = slot_rows
                .iter()
                .map(|r| {
                    r.map_or(0.0, |r| {
                        rng::uniform(params.seed, rows[r].prompt_index, rows[r].sample_index, step)
                    })
                })
                .collect();
            let uniforms = Tensor::from_slice(&uniforms).to_device(device);
            let (tokens, logprobs) = sampler::sample(&logits, params, &uniforms);
            let host_tokens = Vec::<i64>::try_from(tokens.to_device(Device::Cpu))?;
            let host_logprobs = Vec::<f32>::try_from(logprobs.to_device(Device::Cpu))?;
            for (r, slot_row) in slot_rows.iter().enumerate() {
                let Some(i) = *slot_row else { continue };
                let row = &mut rows[i];
                if row.finish.is_some() {
                    continue;
                }
                let token = host_tokens[r] as u32;
                row.tokens.push(token);
                row.logprobs.push(host_logprobs[r]);
                if eos.contains(&token) {
                    row.finish = Some(FinishReason::Eos);
                } else if !params.stop.is_empty() {
                    let from = row.tokens.len().saturating_sub(tail);
                    let text = self.tokenizer.decode(&row.tokens[from..], false)?;
                    if stop::first_stop(&text, &params.stop).is_some() {
                        row.finish = Some(FinishReason::Stop);
                    }
                }
                if row.finish.is_none() && row.tokens.len() == params.max_new_tokens {
                    row.finish = Some(FinishReason::Length);
                }
            }
            let live_rows: Vec<usize> = (0..batch)
                .filter(|&r| slot_rows[r].is_some_and(|i| rows[i].finish.is_none()))
                .collect();
            if live_rows.is_empty() {
                break;
            }
            let mut tokens = tokens;
            // Drop finished rows once the live ones fit a smaller bucket.
            if bucket(live_rows.len()) < batch {
                let new_batch = bucket(live_rows.len());
                let mut keep: Vec<i64> = live_rows.iter().map(|&r| r as i64).collect();
                keep.resize(new_batch, live_rows[0] as i64);
                let keep_t = Tensor::from_slice(&keep).to_device(device);
                cache = cache.select_rows(&keep_t);
                valid = valid.index_select(0, &keep_t);
                tokens = tokens.index_select(0, &keep_t);
                slot_rows = (0..new_batch)
                    .map(|k| (k < live_rows.len()).then(|| slot_rows[live_rows[k]]).flatten())
                    .collect();
                batch = new_batch;
                runner.reset();
            }
            let slot = padded + step;
            let positions: Vec<i64> = slot_rows
                .iter()
                .map(|r| r.map_or(0, |i| (rows[i].prompt_len + step) as i64))
                .collect();
            let positions = Tensor::from_slice(&positions).to_device(device).view([batch as i64, 1]);
            let _ = valid.narrow(1, slot as i64, 1).fill_(1);
            let ids = tokens.view([batch as i64, 1]);
            logits = runner.step(self.model, &mut cache, &valid, &ids, &positions, slot)?;
        }
        Ok(())
    }

    /// Runs the prompts (left-padded) through the model: last-position logits [B, V] f32, the prefill cache
    /// [B, .., P, ..] and the valid-slot mask [B, P].
    fn prefill(&self, prompts: &[Vec<u32>]) -> Result<(Tensor, KvCache, Tensor)> {
        let device = self.model.device();
        let b = prompts.len();
        let p = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let pad = self.tokenizer.pad_token_id().unwrap_or(0) as i64;
        let mut ids = vec![pad; b * p];
        let mut positions = vec![0i64; b * p];
        let mut valid = vec![false; b * p];
        for (i, prompt) in prompts.iter().enumerate() {
            let offset = p - prompt.len();
            for (t, &token) in prompt.iter().enumerate() {
                ids[i * p + offset + t] = token as i64;
                positions[i * p + offset + t] = t as i64;
                valid[i * p + offset + t] = true;
            }
        }
        let shape = [b as i64, p as i64];
        let ids = Tensor::from_slice(&ids).view(shape).to_device(device);
        let positions = Tensor::from_slice(&positions).view(shape).to_device(device);
        let valid = Tensor::from_slice(&valid).view(shape).to_device(device);
        let slots = Tensor::arange(p as i64, (Kind::Int64, device))
            .unsqueeze(0)
            .expand(shape, true)
            .contiguous();
        // A pad query would see no key (NaN rows whose K/V then poison later layers); let it see itself.
        let eye = Tensor::eye(p as i64, (Kind::Bool, device)).view([1, 1, p as i64, p as i64]);
        let mask = KvCache::attention_mask(&slots, &valid).logical_or(&eye);
        let mut cache = self.model.new_kv_cache(b as i64, p as i64);
        let hidden = self
            .model
            .forward_step_hidden(&ids, &positions, &mut cache, &slots, &mask);
        let logits = self.model.logits(&hidden.select(1, p as i64 - 1)).to_kind(Kind::Float);
        Ok((logits, cache, valid))
    }

    fn finish_row(&self, row: Row, params: &SamplingParams) -> Result<Completion> {
        let finish_reason = row.finish.unwrap_or(FinishReason::Length);
        let text_tokens = match finish_reason {
            FinishReason::Eos => &row.tokens[..row.tokens.len() - 1],
            _ => &row.tokens[..],
        };
        let mut text = self.tokenizer.decode(text_tokens, true)?;
        if finish_reason == FinishReason::Stop {
            if let Some(at) = stop::first_stop(&text, &params.stop) {
                text.truncate(at);
            }
        }
        Ok(Completion {
            prompt_index: row.prompt_index,
            sample_index: row.sample_index,
            tokens: row.tokens,
            logprobs: row.logprobs,
            text,
            finish_reason,
        })
    }
}

/// `t` [R, ..] padded with copies of row 0 to `rows` rows.
fn pad_rows(t: &Tensor, rows: usize) -> Tensor {
    let have = t.size()[0] as usize;
    if have == rows {
        return t.shallow_clone();
    }
    let filler = t.narrow(0, 0, 1).expand([(rows - have) as i64, t.size()[1]], true);
    Tensor::cat(&[t.shallow_clone(), filler], 0)
}
