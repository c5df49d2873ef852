//! A preallocated key/value cache for incremental decoding.
//!
//! Layout per layer: `[B, kv_heads, max_len, head_dim]`, allocated once so that decode steps have static shapes
//! (CUDA graphs). Tokens are written at explicit slots (`scatter_` along the sequence axis), so rows of a batch may
//! sit at different lengths; which slots a query sees is decided by the attention mask passed to
//! [`crate::CausalLm::forward_step`], not by the cache.
//!
//! Contract with the sampling engine (`crate::engine`): the engine owns slot bookkeeping. A typical scheme is
//! left-aligned rows: prompt `i` of length `L_i` padded to `P` occupies slots `0..P` (pads marked invalid),
//! generated token `s` goes to slot `P + s`, its RoPE position is `L_i + s`, and the mask is
//! [`KvCache::attention_mask`] over a `valid` [B, S] bool tensor that the engine keeps.

use tch::{Device, Kind, Tensor};

use crate::config::ModelConfig;

/// Per-layer K and V buffers, `[B, kv_heads, max_len, head_dim]` each.
#[derive(Debug)]
pub struct KvCache {
    /// Keys, one tensor per layer (post-RoPE).
    pub keys: Vec<Tensor>,
    /// Values, one tensor per layer.
    pub values: Vec<Tensor>,
}

impl KvCache {
    /// Zeroed buffers for `batch` rows of `max_len` slots.
    pub fn new(cfg: &ModelConfig, batch: i64, max_len: i64, kind: Kind, device: Device) -> Self {
        let shape = [batch, cfg.num_kv_heads() as i64, max_len, cfg.head_dim() as i64];
        let alloc = || {
            (0..cfg.num_hidden_layers)
                .map(|_| Tensor::zeros(shape, (kind, device)))
                .collect()
        };
        KvCache {
            keys: alloc(),
            values: alloc(),
        }
    }

    /// Number of rows.
    pub fn batch_size(&self) -> i64 {
        self.keys.first().map_or(0, |k| k.size()[0])
    }

    /// Number of slots per row.
    pub fn max_len(&self) -> i64 {
        self.keys.first().map_or(0, |k| k.size()[2])
    }

    /// Writes `k`, `v` [B, kv_heads, T, head_dim] of `layer` at `slots` [B, T] (in place, graph-safe).
    pub fn write(&mut self, layer: usize, slots: &Tensor, k: &Tensor, v: &Tensor) {
        let size = k.size();
        let index = slots.view([size[0], 1, size[2], 1]).expand(size.as_slice(), false);
        let _ = self.keys[layer].scatter_(2, &index, k);
        let _ = self.values[layer].scatter_(2, &index, v);
    }

    /// Writes one token per row, `k`, `v` [B, kv_heads, 1, head_dim] of `layer`, at the same `slot` [1] i64 for
    /// every row (the decode step's layout): one strided copy, where [`KvCache::write`]'s scatter reads an index
    /// per element.
    pub fn write_slot(&mut self, layer: usize, slot: &Tensor, k: &Tensor, v: &Tensor) {
        let _ = self.keys[layer].index_copy_(2, slot, k);
        let _ = self.values[layer].index_copy_(2, slot, v);
    }

    /// Copies `other`'s contents into this cache in place (same shapes); keeps the buffers' addresses stable for
    /// CUDA graphs.
    pub fn copy_from(&mut self, other: &KvCache) {
        for (dst, src) in self
            .keys
            .iter_mut()
            .zip(&other.keys)
            .chain(self.values.iter_mut().zip(&other.values))
        {
            dst.copy_(src);
        }
    }

    /// Mask [B,1,T,S] for [`crate::CausalLm::forward_step`]: token `t` of row `b` sees slot `s` iff
    /// `valid[b, s]` and `s <= cache_slots[b, t]` (causal in slot order). `valid` [B,S] bool must already include
    /// the slots being written by this call.
    pub fn attention_mask(cache_slots: &Tensor, valid: &Tensor) -> Tensor {
        let s = valid.size()[1];
        let slot_ids = Tensor::arange(s, (Kind::Int64, valid.device()));
        let causal = slot_ids.view([1, 1, s]).le_tensor(&cache_slots.unsqueeze(-1));
        causal.logical_and(&valid.unsqueeze(1)).unsqueeze(1)
    }
}
