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
//! On CUDA, decode steps are replayed from CUDA graphs ([`EngineOptions::cuda_graphs`]): one graph per
//! (batch bucket, attention-length bucket, sampling settings), captured on first use over static buffers that the
//! engine keeps between calls (see [`state`]), and the step runs the launch-lean
//! [`CausalLm::forward_decode_hidden`] ([`EngineOptions::fused_decode`]). The eager path is always available and
//! is the reference the graph path is checked against.

pub mod params;
pub mod rng;
pub mod sampler;
mod state;
pub mod stop;

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use anyhow::{bail, ensure, Result};
use rayon::prelude::*;
use tch::{Kind, Tensor};

use crate::kv_cache::KvCache;
use crate::model::{CausalLm, DecodeAttention, DecodeKernels, StackedProjections};
use crate::tokenizer::Tokenizer;

pub use params::{Completion, FinishReason, SamplingParams};
pub use state::DecodeProfile;
use state::{sync_if, DecodeBuffers, Readback, StepPlan};

/// Whether seekmath's CUDA kernels can be loaded here; logs the reason once when not.
fn kernels_usable() -> bool {
    match seekmath_shim::cuda_kernels_status() {
        Ok(()) => true,
        Err(reason) => {
            static LOGGED: std::sync::Once = std::sync::Once::new();
            LOGGED.call_once(|| tracing::warn!(%reason, "seekmath CUDA kernels unavailable; using ATen ops"));
            false
        }
    }
}

/// Engine settings that are not per request.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// Most rows (prompts × n) decoded at once; larger requests run in waves of whole prompts.
    pub max_batch_rows: usize,
    /// Replay decode steps from CUDA graphs when the model is on a CUDA device.
    pub cuda_graphs: bool,
    /// Attention-length granularity of the CUDA-graph path (graphs attend over a multiple of this many slots).
    pub graph_slot_bucket: usize,
    /// On CUDA, decode with [`CausalLm::forward_decode_hidden`] (fewer kernels, same function up to rounding
    /// order). CPU decoding always uses the plain step, whose numbers match transformers bit for bit.
    pub fused_decode: bool,
    /// The attention kernel of the fused decode step ([`DecodeAttention::Auto`]: seekmath's kernel for wide
    /// batches where it is available, SDPA otherwise).
    pub decode_attention: DecodeAttention,
    /// On CUDA, run the fused decode step's RoPE + K/V write and SiLU·up (each with its folded RMSNorm) and the
    /// final RMSNorm as seekmath's kernels ([`DecodeKernels::layer_ops`]) when they are available.
    pub layer_kernels: bool,
    /// On CUDA, sample greedy and plain-temperature tokens with seekmath's one-pass kernel
    /// ([`seekmath_shim::sample_rows`]) when it is available (NVRTC found, compute capability ≥ 8.0).
    pub sampler_kernel: bool,
    /// Synchronise the device between decode phases and accumulate a [`DecodeProfile`] (slower; for benchmarks).
    pub profile: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_batch_rows: 512,
            cuda_graphs: true,
            graph_slot_bucket: 128,
            fused_decode: true,
            decode_attention: DecodeAttention::default(),
            layer_kernels: true,
            sampler_kernel: true,
            profile: false,
        }
    }
}

/// Generates continuations with one model and its tokenizer.
///
/// On CUDA the engine keeps its decode buffers and CUDA graphs between calls (one set per batch-size bucket,
/// sized for the longest call so far); [`Engine::release_buffers`] frees them.
pub struct Engine<'a> {
    model: &'a CausalLm,
    tokenizer: &'a Tokenizer,
    options: EngineOptions,
    buffers: RefCell<HashMap<usize, DecodeBuffers>>,
    /// The model's parameter addresses when `buffers` were filled: graphs replay those addresses.
    buffers_for: RefCell<Vec<usize>>,
    /// Stacked projection weights of the fused decode step, refreshed from the model at every call.
    stacked: RefCell<Option<StackedProjections>>,
    profile: RefCell<DecodeProfile>,
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
            buffers: RefCell::new(HashMap::new()),
            buffers_for: RefCell::new(Vec::new()),
            stacked: RefCell::new(None),
            profile: RefCell::new(DecodeProfile::default()),
        }
    }

    /// Frees the decode buffers and CUDA graphs kept between calls (e.g. before a memory-hungry training step).
    pub fn release_buffers(&self) {
        self.buffers.borrow_mut().clear();
        self.stacked.borrow_mut().take();
    }

    /// The decode profile accumulated since the last call (all zero unless [`EngineOptions::profile`]), and resets it.
    pub fn take_profile(&self) -> DecodeProfile {
        self.profile.take()
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
        // Detokenising every row is host work after the last step (~0.03 s of a 0.89 s call for 256 rows of 512
        // tokens on an H200 host, docs/benchmarks.md session 9), so the rows are finished in parallel.
        let started = Instant::now();
        let tokenizer = self.tokenizer;
        let completions = rows
            .into_par_iter()
            .map(|row| finish_row(tokenizer, row, params))
            .collect();
        if self.options.profile {
            self.profile.borrow_mut().finish += started.elapsed();
        }
        completions
    }

    /// Prefill, then the decode loop; fills `rows` in place.
    fn decode(&self, prompts: &[Vec<u32>], params: &SamplingParams, rows: &mut [Row]) -> Result<()> {
        let device = self.model.device();
        let profiling = self.options.profile;
        let use_graphs = self.use_graphs();
        let fused = self.options.fused_decode && device.is_cuda();
        let mut profile = DecodeProfile::default();
        let padded = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let max_len = padded + params.max_new_tokens;

        let mut kept = self.buffers.borrow_mut();
        if use_graphs {
            // A re-bound parameter (e.g. a whole-tensor swap instead of an in-place update) would leave the graphs
            // reading freed memory: start over then.
            let addresses = self.model.parameter_addresses();
            if *self.buffers_for.borrow() != addresses {
                kept.clear();
                self.stacked.borrow_mut().take();
                *self.buffers_for.borrow_mut() = addresses;
            }
        }
        let mut stacked = self.stacked.borrow_mut();
        if fused {
            match stacked.as_mut() {
                Some(s) => self.model.refresh_stacked_projections(s),
                None => *stacked = Some(self.model.stacked_projections()),
            }
        }

        // Set-up, part 1: the buffers and everything uploaded from the host, before the prefill is queued. A copy
        // from pageable host memory waits for the device's queue to drain, so made after the prefill each would
        // stall the host there instead of letting it queue the rest of the set-up behind the prefill.
        // Rows are prompt-major × n, inside buffers of a bucketed batch size. Graph buffers persist between calls
        // (capacity rounded up to the attention bucket so that later calls of similar length reuse them).
        let started = Instant::now();
        let live = rows.len();
        let mut batch = bucket(live);
        let slot_bucket = self.options.graph_slot_bucket.max(1);
        let capacity = if use_graphs {
            max_len.div_ceil(slot_bucket) * slot_bucket
        } else {
            max_len
        };
        let fused = stacked.as_ref().filter(|_| fused);
        let kernels = DecodeKernels {
            attention: self.options.decode_attention,
            layer_ops: self.options.layer_kernels,
        };
        let sampler_kernel = self.options.sampler_kernel && device.is_cuda() && kernels_usable();
        let plan = StepPlan {
            fused: fused.map(|s| (s, kernels)),
            sampler_kernel,
        };
        let mut this_call = HashMap::new();
        let sets: &mut HashMap<usize, DecodeBuffers> = if use_graphs { &mut kept } else { &mut this_call };
        let mut buffers = take_buffers(sets, self.model, batch, capacity);
        // Prompt i's prefilled row feeds rows i·n .. (i + 1)·n; with n = 1 the rows are the prompts themselves.
        let expand = (params.n > 1).then(|| {
            let expand: Vec<i64> = (0..prompts.len() as i64)
                .flat_map(|i| std::iter::repeat_n(i, params.n))
                .collect();
            Tensor::from_slice(&expand).to_device(device)
        });
        let expand_rows = |t: &Tensor| match &expand {
            Some(index) => t.index_select(0, index),
            None => t.shallow_clone(),
        };
        {
            let t = &mut buffers.tensors;
            // Row r's prompt begins at slot padded - L_r; filler rows of the bucket see only their decode slots.
            let starts: Vec<i64> = (0..batch)
                .map(|r| rows.get(r).map_or(padded, |row| padded - row.prompt_len) as i64)
                .collect();
            t.starts.copy_(&Tensor::from_slice(&starts));
            // Row r's uniform for generated token s (filler rows of the bucket get 0.5).
            let steps = params.max_new_tokens;
            let mut table = vec![0.5f32; batch * steps];
            table
                .par_chunks_mut(steps.max(1))
                .zip(rows.par_iter())
                .for_each(|(uniforms, row)| {
                    for (s, u) in uniforms.iter_mut().enumerate() {
                        *u = rng::uniform(params.seed, row.prompt_index, row.sample_index, s);
                    }
                });
            t.uniforms
                .narrow(1, 0, steps as i64)
                .copy_(&Tensor::from_slice(&table).view([batch as i64, steps as i64]));
            let positions: Vec<i64> = (0..batch)
                .map(|r| rows.get(r).map_or(0, |row| row.prompt_len as i64))
                .collect();
            t.positions
                .copy_(&Tensor::from_slice(&positions).view([batch as i64, 1]));
        }
        sync_if(profiling, device);
        profile.setup += started.elapsed();

        let started = Instant::now();
        let fused_prefill = fused.map(|s| (s, self.options.layer_kernels));
        let (logits, prefill_cache, prefill_valid) = match self.prefill(prompts, fused_prefill) {
            Ok(prefilled) => prefilled,
            Err(err) => {
                // Keep the buffers (and their graphs) for the next call.
                sets.insert(batch, buffers);
                return Err(err);
            }
        };
        sync_if(profiling, device);
        profile.prefill += started.elapsed();

        // Set-up, part 2, on the device only: the prefilled cache into the decode buffers, the first token.
        let started = Instant::now();
        let packed = {
            let t = &mut buffers.tensors;
            for (dst, src) in t
                .cache
                .keys
                .iter_mut()
                .zip(&prefill_cache.keys)
                .chain(t.cache.values.iter_mut().zip(&prefill_cache.values))
            {
                dst.narrow(0, 0, live as i64)
                    .narrow(2, 0, padded as i64)
                    .copy_(&expand_rows(src));
            }
            let _ = t.valid.zero_();
            t.valid
                .narrow(0, 0, live as i64)
                .narrow(1, 0, padded as i64)
                .copy_(&expand_rows(&prefill_valid));
            // The first token comes from the prefill's logits; the decode steps take it from there.
            let first_logits = pad_rows(&expand_rows(&logits), batch);
            let (tokens, logprobs) = sampler::sample(&first_logits, params, &t.uniforms.select(1, 0), sampler_kernel)?;
            t.ids.copy_(&tokens.view([batch as i64, 1]));
            let _ = t.slots.fill_(padded as i64);
            let _ = t.first_slot.fill_(padded as i64);
            Tensor::stack(&[tokens.to_kind(Kind::Double), logprobs.to_kind(Kind::Double)], 0)
        };
        drop(prefill_cache);
        sync_if(profiling, device);
        profile.setup += started.elapsed();

        // `slot_rows[r]` = index into `rows` of batch row r (None for filler rows of the bucket).
        let mut slot_rows: Vec<Option<usize>> = (0..batch).map(|r| (r < live).then_some(r)).collect();
        let eos: Vec<u32> = if params.ignore_eos {
            Vec::new()
        } else {
            self.tokenizer.eos_token_ids().to_vec()
        };
        let tail = stop::tail_tokens(&params.stop);
        let mut packed = packed;
        let mut readback = Readback::new(device)?;
        // `packed` holds token `step` of every row. On CUDA the step that feeds it back and samples token `step + 1`
        // is queued before token `step` is read, so the host's bookkeeping and the next launch overlap the GPU's
        // work; a row that finishes at `step` therefore gets one more token sampled, which is dropped. On the CPU
        // nothing would overlap, so the step runs after the bookkeeping.
        let queue_ahead = device.is_cuda();
        for step in 0..params.max_new_tokens {
            readback.start(&packed)?;
            let mut queued = if queue_ahead && step + 1 < params.max_new_tokens {
                Some(self.launch_step(&mut buffers, params, padded + step, plan, use_graphs, &mut profile)?)
            } else {
                None
            };

            let started = Instant::now();
            let host = readback.wait()?;
            let (host_tokens, host_logprobs) = host.split_at(batch);
            profile.readback += started.elapsed();

            let started = Instant::now();
            for (r, slot_row) in slot_rows.iter().enumerate() {
                let Some(i) = *slot_row else { continue };
                let row = &mut rows[i];
                if row.finish.is_some() {
                    continue;
                }
                let token = host_tokens[r] as u32;
                row.tokens.push(token);
                row.logprobs.push(host_logprobs[r] as f32);
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
                profile.host += started.elapsed();
                break;
            }
            // Move the live rows into a smaller bucket's buffers once they fit. A queued step ran on the old
            // buffers: its state is copied over after it (stream order) and its results are gathered the same way.
            if bucket(live_rows.len()) < batch {
                let new_batch = bucket(live_rows.len());
                let mut keep: Vec<i64> = live_rows.iter().map(|&r| r as i64).collect();
                keep.resize(new_batch, live_rows[0] as i64);
                let keep = Tensor::from_slice(&keep).to_device(device);
                let mut smaller = take_buffers(sets, self.model, new_batch, buffers.capacity);
                state::copy_rows(&buffers.tensors, &mut smaller.tensors, &keep);
                queued = queued.map(|next| next.index_select(1, &keep));
                sets.insert(batch, std::mem::replace(&mut buffers, smaller));
                slot_rows = (0..new_batch)
                    .map(|k| (k < live_rows.len()).then(|| slot_rows[live_rows[k]]).flatten())
                    .collect();
                batch = new_batch;
            }
            sync_if(profiling, device);
            profile.host += started.elapsed();
            packed = match queued {
                Some(next) => next,
                None => self.launch_step(&mut buffers, params, padded + step, plan, use_graphs, &mut profile)?,
            };
        }
        sets.insert(batch, buffers);
        if profiling {
            *self.profile.borrow_mut() += profile;
        }
        Ok(())
    }

    /// Queues the decode step that feeds each row's last token at cache slot `slot`; returns its packed results.
    fn launch_step(
        &self,
        buffers: &mut DecodeBuffers,
        params: &SamplingParams,
        slot: usize,
        plan: StepPlan<'_>,
        use_graphs: bool,
        profile: &mut DecodeProfile,
    ) -> Result<Tensor> {
        // Graphs attend over a bucketed number of slots.
        let attended = if use_graphs {
            let bucket = self.options.graph_slot_bucket.max(1);
            ((slot + 1).div_ceil(bucket) * bucket).min(buffers.capacity)
        } else {
            slot + 1
        };
        let started = Instant::now();
        let captured_before = profile.capture;
        let packed = buffers.step(self.model, params, attended, plan, use_graphs, &mut profile.capture)?;
        sync_if(self.options.profile, self.model.device());
        profile.steps += started.elapsed().saturating_sub(profile.capture - captured_before);
        profile.graphs_captured += usize::from(profile.capture > captured_before);
        profile.step_count += 1;
        Ok(packed)
    }

    /// Runs the prompts (left-padded) through the model: last-position logits [B, V] f32, the prefill cache
    /// [B, .., P, ..] and the valid-slot mask [B, P]. With `fused` (the stacked projections and whether
    /// seekmath's layer kernels may run), the fused forward of the CUDA decode path.
    fn prefill(
        &self,
        prompts: &[Vec<u32>],
        fused: Option<(&StackedProjections, bool)>,
    ) -> Result<(Tensor, KvCache, Tensor)> {
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
        let mask = || {
            let eye = Tensor::eye(p as i64, (Kind::Bool, device)).view([1, 1, p as i64, p as i64]);
            KvCache::attention_mask(&slots, &valid).logical_or(&eye)
        };
        let mut cache = self.model.new_kv_cache(b as i64, p as i64);
        let hidden = match fused {
            Some((stacked, layer_kernels)) => {
                // Prompts of one length need no mask: plain causal attention.
                let unpadded = prompts.iter().all(|prompt| prompt.len() == p);
                let mask = (!unpadded).then(mask);
                self.model.forward_prefill_hidden(
                    stacked,
                    &ids,
                    &positions,
                    &mut cache,
                    &slots,
                    mask.as_ref(),
                    layer_kernels,
                )?
            }
            None => self
                .model
                .forward_step_hidden(&ids, &positions, &mut cache, &slots, &mask()),
        };
        let logits = self.model.logits(&hidden.select(1, p as i64 - 1)).to_kind(Kind::Float);
        Ok((logits, cache, valid))
    }
}

/// A finished row as the caller sees it: text decoded (cut at the first stop string when one ended it).
fn finish_row(tokenizer: &Tokenizer, row: Row, params: &SamplingParams) -> Result<Completion> {
    let finish_reason = row.finish.unwrap_or(FinishReason::Length);
    let text_tokens = match finish_reason {
        FinishReason::Eos => &row.tokens[..row.tokens.len() - 1],
        _ => &row.tokens[..],
    };
    let mut text = tokenizer.decode(text_tokens, true)?;
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

/// The buffers of bucket `batch` with at least `capacity` slots, taken out of `sets` (put them back when done),
/// or new ones.
fn take_buffers(
    sets: &mut HashMap<usize, DecodeBuffers>,
    model: &CausalLm,
    batch: usize,
    capacity: usize,
) -> DecodeBuffers {
    match sets.remove(&batch) {
        Some(buffers) if buffers.capacity >= capacity => buffers,
        _ => DecodeBuffers::new(model, batch, capacity),
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
