//! One decode step, eager or replayed from a CUDA graph.
//!
//! Eager decode of a small model is launch-bound (hundreds of kernels per step, ~9 µs each to launch); a CUDA
//! graph replays the same kernels for ~1 µs each. Graphs need static shapes and addresses, so the runner keeps
//! static input buffers per batch size and captures one graph per attention-length bucket (attention over the
//! first `S` cache slots, `S` a multiple of the bucket). The caller calls [`DecodeRunner::reset`] whenever the
//! batch (and thus the cache and `valid` tensors) is rebuilt.

use std::collections::HashMap;

use anyhow::{Context, Result};
use seekmath_shim::CudaGraph;
use tch::{Kind, Tensor};

use crate::kv_cache::KvCache;
use crate::model::CausalLm;

/// Static buffers and the graphs captured over them.
struct Captured {
    ids: Tensor,
    positions: Tensor,
    slots: Tensor,
    /// Graph and its output logits [B, 1, V], by attended slot count.
    graphs: HashMap<usize, (CudaGraph, Tensor)>,
}

/// Runs decode steps for one batch layout.
pub(super) struct DecodeRunner {
    use_graphs: bool,
    slot_bucket: usize,
    max_len: usize,
    captured: Option<Captured>,
}

impl DecodeRunner {
    pub(super) fn new(use_graphs: bool, slot_bucket: usize, max_len: usize) -> Self {
        DecodeRunner {
            use_graphs,
            slot_bucket: slot_bucket.max(1),
            max_len,
            captured: None,
        }
    }

    /// Forgets graphs and buffers (the cache or batch changed).
    pub(super) fn reset(&mut self) {
        self.captured = None;
    }

    /// Feeds `ids` [B,1] at `positions` [B,1] into cache slot `slot` (already marked in `valid` [B, max_len]) and
    /// returns next-token logits [B, V] in f32.
    pub(super) fn step(
        &mut self,
        model: &CausalLm,
        cache: &mut KvCache,
        valid: &Tensor,
        ids: &Tensor,
        positions: &Tensor,
        slot: usize,
    ) -> Result<Tensor> {
        if !self.use_graphs {
            let slots = Tensor::full([ids.size()[0], 1], slot as i64, (Kind::Int64, ids.device()));
            let logits = forward(model, cache, valid, ids, positions, &slots, slot + 1);
            return Ok(logits.select(1, 0).to_kind(Kind::Float));
        }
        let attended = ((slot + 1).div_ceil(self.slot_bucket) * self.slot_bucket).min(self.max_len);
        let captured = self.captured.get_or_insert_with(|| Captured {
            ids: ids.zeros_like(),
            positions: positions.zeros_like(),
            slots: positions.zeros_like(),
            graphs: HashMap::new(),
        });
        captured.ids.copy_(ids);
        captured.positions.copy_(positions);
        let _ = captured.slots.fill_(slot as i64);
        if !captured.graphs.contains_key(&attended) {
            // Warm up outside the capture (lazy allocations, cuBLAS handles), then record. Both runs write the
            // same K/V into the same slot, so repeating them is harmless.
            let _ = forward(
                model,
                cache,
                valid,
                &captured.ids,
                &captured.positions,
                &captured.slots,
                attended,
            );
            let mut graph = CudaGraph::new(ids.device()).context("creating a CUDA graph")?;
            let output = graph
                .capture(|| {
                    forward(
                        model,
                        cache,
                        valid,
                        &captured.ids,
                        &captured.positions,
                        &captured.slots,
                        attended,
                    )
                })
                .context("capturing the decode step")?;
            captured.graphs.insert(attended, (graph, output));
        }
        let (graph, output) = &captured.graphs[&attended];
        graph.replay().context("replaying the decode step")?;
        Ok(output.select(1, 0).to_kind(Kind::Float))
    }
}

/// The decode step itself: attention over the first `attended` slots.
fn forward(
    model: &CausalLm,
    cache: &mut KvCache,
    valid: &Tensor,
    ids: &Tensor,
    positions: &Tensor,
    slots: &Tensor,
    attended: usize,
) -> Tensor {
    let mask = KvCache::attention_mask(slots, &valid.narrow(1, 0, attended as i64));
    model.forward_step(ids, positions, cache, slots, &mask)
}
