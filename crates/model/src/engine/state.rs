//! The decode loop's device state and the step that advances it, eager or replayed from a CUDA graph.
//!
//! Why this shape: eager decode of a small model is launch-bound (hundreds of kernels per step at ~9 µs each to
//! launch, against ~1 µs replayed from a graph), and any per-step host work (uploading positions or random
//! numbers, re-binding tensors) sits between the GPU's steps. So one step is a pure function of static device
//! buffers that also *advances* them: it marks the new slot valid, runs the model, samples with the step's column
//! of a precomputed uniform table (found from the slot), feeds the sampled tokens back as the next input and
//! increments positions and slots; with the sampler kernel, that bookkeeping runs inside the kernel (as eight
//! ATen launches it cost ~15 µs of a 1.6 ms step at batch 256 on an H200). The host only replays and reads back
//! one packed [2, B] tensor (tokens, log-probs), and queues the next step before it reads ([`Readback`]), so its
//! bookkeeping and launch overlap the GPU's step.
//!
//! Graphs are keyed by (attention-length bucket, sampling settings) and kept with their buffers between
//! `generate` calls ([`DecodeBuffers`] per batch-size bucket), so a training loop that calls `generate` again
//! and again captures each graph once. Parameters must be updated in place (as optimizers do) for replays to
//! see new weights.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use seekmath_shim::{CudaEvent, CudaGraph};
use tch::{Device, Kind, Tensor};

use super::params::SamplingParams;
use super::sampler;
use crate::kv_cache::KvCache;
use crate::model::{CausalLm, DecodeKernels, DecodeRows, StackedProjections};

/// The static tensors one step reads and advances, for `batch` rows and `capacity` cache slots.
pub(super) struct StepTensors {
    pub cache: KvCache,
    /// [batch, capacity] bool: which cache slots hold real tokens.
    pub valid: Tensor,
    /// [batch, 1] i64: the token each row feeds next.
    pub ids: Tensor,
    /// [batch, 1] i64: its RoPE position.
    pub positions: Tensor,
    /// [batch, 1] i64: the cache slot it is written to (the same for every row).
    pub slots: Tensor,
    /// `[batch]` i64: the row's first valid slot (where its left-padded prompt begins), for the attention kernel.
    pub starts: Tensor,
    /// [1] i64: the slot of the first decode step; a row at slot s samples generated token s - first_slot + 1,
    /// with column s - first_slot + 1 of `uniforms`.
    pub first_slot: Tensor,
    /// [batch, capacity] f32: row r's uniform for generated token s at column s.
    pub uniforms: Tensor,
}

/// How one step runs: the fused forward (with the stacked projections and its kernel choices) or the plain one,
/// and whether the sampler uses seekmath's CUDA kernel.
#[derive(Clone, Copy)]
pub(super) struct StepPlan<'a> {
    pub fused: Option<(&'a StackedProjections, DecodeKernels)>,
    pub sampler_kernel: bool,
}

/// Sampling settings a captured graph has baked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SamplerKey {
    temperature_bits: u64,
    top_p_bits: u64,
    top_k: usize,
}

impl SamplerKey {
    fn of(params: &SamplingParams) -> Self {
        SamplerKey {
            temperature_bits: params.temperature.to_bits(),
            top_p_bits: params.top_p.to_bits(),
            top_k: params.top_k,
        }
    }
}

/// A recorded step and the packed output it writes.
struct Captured {
    graph: CudaGraph,
    packed: Tensor,
}

/// Graphs per buffer set above which old ones are dropped (each holds its own memory pool).
const MAX_GRAPHS: usize = 64;

/// Step tensors of one batch-size bucket and the graphs recorded over them.
pub(super) struct DecodeBuffers {
    pub capacity: usize,
    pub tensors: StepTensors,
    graphs: HashMap<(usize, SamplerKey), Captured>,
}

impl DecodeBuffers {
    /// Zeroed buffers for `batch` rows of `capacity` slots.
    pub fn new(model: &CausalLm, batch: usize, capacity: usize) -> Self {
        let device = model.device();
        let (b, s) = (batch as i64, capacity as i64);
        let ints = |shape: &[i64]| Tensor::zeros(shape, (Kind::Int64, device));
        DecodeBuffers {
            capacity,
            tensors: StepTensors {
                cache: model.new_kv_cache(b, s),
                valid: Tensor::zeros([b, s], (Kind::Bool, device)),
                ids: ints(&[b, 1]),
                positions: ints(&[b, 1]),
                slots: ints(&[b, 1]),
                starts: ints(&[b]),
                first_slot: ints(&[1]),
                uniforms: Tensor::full([b, s], 0.5, (Kind::Float, device)),
            },
            graphs: HashMap::new(),
        }
    }

    /// Runs one step over the first `attended` slots (with the fused decode forward when `fused` holds the stacked
    /// projections) and returns the packed [2, batch] f64 (tokens, log-probs).
    /// With `use_graph`, the step is replayed from its graph, or, the first time, run eagerly (which also warms
    /// up lazy initialisations) and then recorded for later replays (recording does not execute). `timing`
    /// receives the time spent recording.
    pub fn step(
        &mut self,
        model: &CausalLm,
        params: &SamplingParams,
        attended: usize,
        plan: StepPlan<'_>,
        use_graph: bool,
        timing: &mut Duration,
    ) -> Result<Tensor> {
        if !use_graph {
            return advance(model, &mut self.tensors, params, attended, plan);
        }
        let key = (attended, SamplerKey::of(params));
        if let Some(captured) = self.graphs.get(&key) {
            captured.graph.replay().context("replaying the decode step")?;
            return Ok(captured.packed.shallow_clone());
        }
        let out = advance(model, &mut self.tensors, params, attended, plan)?;
        let started = Instant::now();
        if self.graphs.len() >= MAX_GRAPHS {
            self.graphs.clear();
        }
        let mut graph = CudaGraph::new(model.device()).context("creating a CUDA graph")?;
        let tensors = &mut self.tensors;
        let packed = graph
            .capture(|| advance(model, tensors, params, attended, plan))
            .context("capturing the decode step")??;
        self.graphs.insert(key, Captured { graph, packed });
        *timing += started.elapsed();
        Ok(out)
    }
}

/// One decode step over static buffers (see the module docs); returns [2, batch] f64: sampled tokens, log-probs.
fn advance(
    model: &CausalLm,
    t: &mut StepTensors,
    params: &SamplingParams,
    attended: usize,
    plan: StepPlan<'_>,
) -> Result<Tensor> {
    let _ = t.valid.scatter_value_(1, &t.slots, 1);
    let valid = t.valid.narrow(1, 0, attended as i64);
    let logits = if let Some((stacked, kernels)) = plan.fused {
        let slot = t.slots.select(0, 0);
        let row_slots = t.slots.view([-1]);
        let rows = DecodeRows {
            starts: &t.starts,
            slots: &row_slots,
        };
        model.logits(&model.forward_decode_hidden(
            stacked,
            &t.ids,
            &t.positions,
            &mut t.cache,
            &slot,
            &valid,
            kernels,
            Some(rows),
        )?)
    } else {
        let mask = KvCache::attention_mask(&t.slots, &valid);
        model
            .forward_step(&t.ids, &t.positions, &mut t.cache, &t.slots, &mask)
            .squeeze_dim(1)
    };
    if sampler::kernel_takes(&logits, params, plan.sampler_kernel) {
        // The kernel also picks the uniforms, feeds the tokens back, advances the counters and packs the read-back
        // (one launch instead of nine).
        let packed = Tensor::empty([2, t.ids.size()[0]], (Kind::Double, logits.device()));
        let state = seekmath_shim::DecodeStepState {
            uniforms: &t.uniforms,
            ids: &t.ids,
            positions: &t.positions,
            slots: &t.slots,
            first_slot: &t.first_slot,
            packed: &packed,
        };
        seekmath_shim::sample_rows_advance(&logits, params.temperature, params.is_greedy(), &state)
            .context("seekmath sampler kernel")?;
        return Ok(packed);
    }
    let column = (&t.slots - &t.first_slot).g_add_scalar_(1);
    let uniforms = t.uniforms.gather(1, &column, false).squeeze_dim(1);
    let (tokens, logprobs) = sampler::sample(&logits, params, &uniforms, plan.sampler_kernel)?;
    t.ids.copy_(&tokens.view([-1, 1]));
    let _ = t.positions.g_add_scalar_(1);
    let _ = t.slots.g_add_scalar_(1);
    Ok(Tensor::stack(
        &[tokens.to_kind(Kind::Double), logprobs.to_kind(Kind::Double)],
        0,
    ))
}

/// Copies rows `keep` (i64 on the device) of `from` into the first rows of `to` (same capacity), in place so
/// that `to`'s graphs stay valid.
pub(super) fn copy_rows(from: &StepTensors, to: &mut StepTensors, keep: &Tensor) {
    for (dst, src) in to
        .cache
        .keys
        .iter_mut()
        .zip(&from.cache.keys)
        .chain(to.cache.values.iter_mut().zip(&from.cache.values))
    {
        dst.copy_(&src.index_select(0, keep));
    }
    for (dst, src) in [
        (&mut to.valid, &from.valid),
        (&mut to.ids, &from.ids),
        (&mut to.positions, &from.positions),
        (&mut to.slots, &from.slots),
        (&mut to.starts, &from.starts),
        (&mut to.uniforms, &from.uniforms),
    ] {
        dst.copy_(&src.index_select(0, keep));
    }
    to.first_slot.copy_(&from.first_slot);
}

/// Where the decode loop's time goes, for `generate bench --profile` (each phase ends with a device sync while
/// profiling, so the phases add up to the wall time).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodeProfile {
    /// Prompt prefill (forward over the padded prompts).
    pub prefill: Duration,
    /// Buffer set-up per call: cache rows from the prefill, uniform table, first sampled token.
    pub setup: Duration,
    /// Recording CUDA graphs (first use of an attention bucket or sampler setting).
    pub capture: Duration,
    /// The decode steps themselves (graph replays or eager steps), including first-use eager steps.
    pub steps: Duration,
    /// Reading sampled tokens and log-probs back to the host.
    pub readback: Duration,
    /// Host bookkeeping: EOS and stop strings, row compaction into a smaller batch bucket.
    pub host: Duration,
    /// Turning the finished rows into completions (detokenising them).
    pub finish: Duration,
    /// Decode steps run.
    pub step_count: usize,
    /// Graphs recorded.
    pub graphs_captured: usize,
}

impl std::ops::AddAssign for DecodeProfile {
    fn add_assign(&mut self, other: DecodeProfile) {
        self.prefill += other.prefill;
        self.setup += other.setup;
        self.capture += other.capture;
        self.steps += other.steps;
        self.readback += other.readback;
        self.host += other.host;
        self.finish += other.finish;
        self.step_count += other.step_count;
        self.graphs_captured += other.graphs_captured;
    }
}

/// Waits for the device when profiling, so the time of the phase just queued is measured.
/// Reads a step's packed [2, B] results back to the host without waiting for work queued after them: on CUDA an
/// asynchronous copy into pinned memory, marked by an event, so that the next decode step can be queued first.
pub(super) struct Readback {
    event: Option<CudaEvent>,
    host: Option<Tensor>,
}

impl Readback {
    pub fn new(device: Device) -> Result<Self> {
        let event = match device {
            Device::Cuda(_) => Some(CudaEvent::new(device).context("creating the readback event")?),
            _ => None,
        };
        Ok(Readback { event, host: None })
    }

    /// Queues the copy of `packed` (f64) to the host.
    pub fn start(&mut self, packed: &Tensor) -> Result<()> {
        match &self.event {
            Some(event) => {
                // Non-blocking to the CPU: ATen allocates the destination in pinned memory.
                self.host = Some(packed.to_device_(Device::Cpu, Kind::Double, true, false));
                event.record().context("recording the readback event")?;
            }
            None => self.host = Some(packed.to_device(Device::Cpu)),
        }
        Ok(())
    }

    /// Waits for the copy queued last and returns its values in row-major order.
    pub fn wait(&mut self) -> Result<Vec<f64>> {
        if let Some(event) = &self.event {
            event.synchronize().context("waiting for the readback")?;
        }
        let host = self.host.take().context("no readback was started")?;
        Ok(Vec::<f64>::try_from(host.view([-1]))?)
    }
}

pub(super) fn sync_if(profiling: bool, device: Device) {
    if profiling {
        if let Device::Cuda(index) = device {
            tch::Cuda::synchronize(index as i64);
        }
    }
}
