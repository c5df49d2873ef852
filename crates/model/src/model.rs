//! The decoder-only transformer: RMSNorm, rotary embeddings, grouped-query attention through
//! `scaled_dot_product_attention` (K/V heads are never expanded: `enable_gqa`), SwiGLU MLP.
//!
//! Parameter names are exactly Hugging Face's (`model.layers.3.self_attn.q_proj.weight`, `lm_head.weight`, ...) so
//! that safetensors checkpoints map 1:1 onto the `VarStore`. Numerics follow transformers' Llama/Qwen2 code
//! (RMSNorm in f32, RoPE tables in f32 cast to the activation dtype) so that f32 logits agree to ~1e-5.

use anyhow::Result;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use crate::config::ModelConfig;
use crate::kv_cache::KvCache;
use crate::rope::Rope;

/// How fresh parameters are filled when a model is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightInit {
    /// transformers' `_init_weights`: normal(0, `initializer_range`) matrices, zero biases, unit norms. Uses tch's
    /// global RNG (seed it with `tch::manual_seed`).
    Random,
    /// Zeros everywhere (norms included): cheap placeholder before a checkpoint is copied in.
    Zeros,
}

/// Root-mean-square layer norm, computed in f32 like transformers' `LlamaRMSNorm`.
#[derive(Debug)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(vs: nn::Path, size: usize, eps: f64, init: WeightInit) -> Self {
        let fill = if init == WeightInit::Random { 1.0 } else { 0.0 };
        RmsNorm {
            weight: vs.var("weight", &[size as i64], nn::Init::Const(fill)),
            eps,
        }
    }
}

impl Module for RmsNorm {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let kind = xs.kind();
        let xs32 = xs.to_kind(Kind::Float);
        let variance = xs32.square().mean_dim(-1, true, Kind::Float);
        let normed = xs32 * (variance + self.eps).rsqrt();
        &self.weight * normed.to_kind(kind)
    }
}

fn linear(vs: nn::Path, in_dim: usize, out_dim: usize, bias: bool, cfg: &ModelConfig, init: WeightInit) -> nn::Linear {
    let ws_init = match init {
        WeightInit::Random => nn::Init::Randn {
            mean: 0.0,
            stdev: cfg.initializer_range,
        },
        WeightInit::Zeros => nn::Init::Const(0.0),
    };
    nn::linear(
        vs,
        in_dim as i64,
        out_dim as i64,
        nn::LinearConfig {
            ws_init,
            bs_init: Some(nn::Init::Const(0.0)),
            bias,
        },
    )
}

/// Which keys each query may see.
enum AttentionMask<'a> {
    /// Plain causal attention over the tokens of this call.
    Causal,
    /// Explicit boolean mask (true = attend), broadcastable to [B, heads, T, S].
    Explicit(&'a Tensor),
}

/// Multi-head self-attention with grouped K/V heads.
#[derive(Debug)]
struct Attention {
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    o_proj: nn::Linear,
    num_heads: i64,
    num_kv_heads: i64,
    head_dim: i64,
}

impl Attention {
    fn new(vs: nn::Path, cfg: &ModelConfig, init: WeightInit) -> Self {
        let (h, kv, d) = (cfg.num_attention_heads, cfg.num_kv_heads(), cfg.head_dim());
        Attention {
            q_proj: linear(&vs / "q_proj", cfg.hidden_size, h * d, cfg.qkv_bias(), cfg, init),
            k_proj: linear(&vs / "k_proj", cfg.hidden_size, kv * d, cfg.qkv_bias(), cfg, init),
            v_proj: linear(&vs / "v_proj", cfg.hidden_size, kv * d, cfg.qkv_bias(), cfg, init),
            o_proj: linear(&vs / "o_proj", h * d, cfg.hidden_size, cfg.o_bias(), cfg, init),
            num_heads: h as i64,
            num_kv_heads: kv as i64,
            head_dim: d as i64,
        }
    }

    /// `xs` [B,T,C]; with `cache`, K/V of this call are written at `slots` [B,T] of layer `layer` and attention runs
    /// over the first `S` cache slots, S being the mask's last dimension.
    fn forward(
        &self,
        xs: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: AttentionMask,
        cache: Option<(&mut KvCache, usize, &Tensor)>,
    ) -> Tensor {
        let (b, t, _) = xs.size3().expect("attention input must be [B,T,C]");
        let q = self
            .q_proj
            .forward(xs)
            .view([b, t, self.num_heads, self.head_dim])
            .transpose(1, 2);
        let k = self
            .k_proj
            .forward(xs)
            .view([b, t, self.num_kv_heads, self.head_dim])
            .transpose(1, 2);
        let v = self
            .v_proj
            .forward(xs)
            .view([b, t, self.num_kv_heads, self.head_dim])
            .transpose(1, 2);
        let q = apply_rotary(&q, cos, sin);
        let k = apply_rotary(&k, cos, sin);
        let (k, v) = match cache {
            None => (k, v),
            Some((cache, layer, slots)) => {
                let attended = match &mask {
                    AttentionMask::Explicit(m) => m.size().last().copied().unwrap_or(cache.max_len()),
                    AttentionMask::Causal => cache.max_len(),
                };
                cache.write(layer, slots, &k, &v);
                (
                    cache.keys[layer].narrow(2, 0, attended),
                    cache.values[layer].narrow(2, 0, attended),
                )
            }
        };
        let gqa = self.num_heads != self.num_kv_heads;
        let y = match mask {
            AttentionMask::Causal => {
                Tensor::scaled_dot_product_attention(&q, &k, &v, None::<&Tensor>, 0.0, t > 1, None::<f64>, gqa)
            }
            AttentionMask::Explicit(m) => {
                Tensor::scaled_dot_product_attention(&q, &k, &v, Some(m), 0.0, false, None::<f64>, gqa)
            }
        };
        self.o_proj
            .forward(&y.transpose(1, 2).reshape([b, t, self.num_heads * self.head_dim]))
    }
}

/// `rotate_half` RoPE as in transformers: the two halves of each head are the real/imaginary parts.
fn apply_rotary(xs: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let half = xs.size().last().copied().unwrap_or(0) / 2;
    let x1 = xs.narrow(-1, 0, half);
    let x2 = xs.narrow(-1, half, half);
    let rotated = Tensor::cat(&[x2.neg(), x1], -1);
    xs * cos + rotated * sin
}

/// Gated MLP: `down(silu(gate(x)) * up(x))`.
#[derive(Debug)]
struct Mlp {
    gate_proj: nn::Linear,
    up_proj: nn::Linear,
    down_proj: nn::Linear,
}

impl Mlp {
    fn new(vs: nn::Path, cfg: &ModelConfig, init: WeightInit) -> Self {
        let (c, i) = (cfg.hidden_size, cfg.intermediate_size);
        Mlp {
            gate_proj: linear(&vs / "gate_proj", c, i, cfg.mlp_bias, cfg, init),
            up_proj: linear(&vs / "up_proj", c, i, cfg.mlp_bias, cfg, init),
            down_proj: linear(&vs / "down_proj", i, c, cfg.mlp_bias, cfg, init),
        }
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.down_proj
            .forward(&(self.gate_proj.forward(xs).silu() * self.up_proj.forward(xs)))
    }
}

/// One pre-norm decoder block.
#[derive(Debug)]
struct DecoderLayer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

impl DecoderLayer {
    fn new(vs: nn::Path, cfg: &ModelConfig, init: WeightInit) -> Self {
        DecoderLayer {
            input_layernorm: RmsNorm::new(&vs / "input_layernorm", cfg.hidden_size, cfg.rms_norm_eps, init),
            self_attn: Attention::new(&vs / "self_attn", cfg, init),
            post_attention_layernorm: RmsNorm::new(
                &vs / "post_attention_layernorm",
                cfg.hidden_size,
                cfg.rms_norm_eps,
                init,
            ),
            mlp: Mlp::new(&vs / "mlp", cfg, init),
        }
    }
}

/// What every decoder layer of a full-sequence forward shares: RoPE tables and the attention mask.
struct LayerInputs {
    cos: Tensor,
    sin: Tensor,
    /// Explicit mask (padding present), or None for plain causal attention.
    mask: Option<Tensor>,
}

impl DecoderLayer {
    /// Pre-norm residual block over a full sequence (no cache).
    fn forward(&self, xs: &Tensor, inputs: &LayerInputs) -> Tensor {
        let mask = match &inputs.mask {
            Some(m) => AttentionMask::Explicit(m),
            None => AttentionMask::Causal,
        };
        let h = self
            .self_attn
            .forward(&self.input_layernorm.forward(xs), &inputs.cos, &inputs.sin, mask, None);
        let xs = xs + h;
        &xs + self.mlp.forward(&self.post_attention_layernorm.forward(&xs))
    }
}

/// A decoder-only causal language model (Llama / Mistral / Qwen2 / DeepSeek-LLM).
#[derive(Debug)]
pub struct CausalLm {
    embed_tokens: Tensor,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    lm_head: Tensor,
    rope: Rope,
    config: ModelConfig,
    device: Device,
}

impl CausalLm {
    /// Builds the model's parameters under `vs` (pass the var store's root) with transformers' random
    /// initialisation; see [`CausalLm::with_init`].
    pub fn new(vs: &nn::Path, cfg: &ModelConfig) -> Result<Self> {
        Self::with_init(vs, cfg, WeightInit::Random)
    }

    /// Builds the model's parameters under `vs` with names `model.embed_tokens.weight`, `model.layers.N....`,
    /// `model.norm.weight`, `lm_head.weight` (absent when embeddings are tied: `lm_head` then shares the embedding).
    /// Parameters are created in the var store's kind (f32 unless changed); cast with `VarStore::set_kind`.
    pub fn with_init(vs: &nn::Path, cfg: &ModelConfig, init: WeightInit) -> Result<Self> {
        cfg.validate()?;
        let model = vs / "model";
        let embed_init = match init {
            WeightInit::Random => nn::Init::Randn {
                mean: 0.0,
                stdev: cfg.initializer_range,
            },
            WeightInit::Zeros => nn::Init::Const(0.0),
        };
        let shape = [cfg.vocab_size as i64, cfg.hidden_size as i64];
        let embed_tokens = (&model / "embed_tokens").var("weight", &shape, embed_init);
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| DecoderLayer::new(&model / "layers" / i, cfg, init))
            .collect();
        let norm = RmsNorm::new(&model / "norm", cfg.hidden_size, cfg.rms_norm_eps, init);
        let lm_head = if cfg.tie_word_embeddings {
            embed_tokens.shallow_clone()
        } else {
            (vs / "lm_head").var("weight", &shape, embed_init)
        };
        let rope = Rope::new(cfg, vs.device())?;
        Ok(CausalLm {
            embed_tokens,
            layers,
            norm,
            lm_head,
            rope,
            config: cfg.clone(),
            device: vs.device(),
        })
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Device of the parameters.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Kind (dtype) of the parameters, e.g. `Kind::BFloat16`.
    pub fn kind(&self) -> Kind {
        self.embed_tokens.kind()
    }

    /// Training/scoring forward. `input_ids` [B,T] i64; `attention_mask` [B,T] (1 token, 0 pad; pads may be on
    /// either side). Positions are derived from the mask (`cumsum - 1`, as transformers' `generate` does), so a
    /// left-padded row gets the same logits as the unpadded sequence. Returns logits [B,T,V] in the model's kind.
    /// Logits at pad positions are meaningless. Autograd-friendly.
    pub fn forward(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>) -> Tensor {
        let hidden = self.forward_hidden(input_ids, attention_mask);
        self.logits(&hidden)
    }

    /// Like [`CausalLm::forward`] but stops after the final norm: hidden states [B,T,C] (for callers that only
    /// need logits at some positions, e.g. the last prompt token).
    pub fn forward_hidden(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>) -> Tensor {
        let inputs = self.prepare(input_ids, attention_mask);
        let mut xs = self.embed(input_ids);
        for layer in &self.layers {
            xs = layer.forward(&xs, &inputs);
        }
        self.norm.forward(&xs)
    }

    /// Forward and backward with per-layer activation checkpointing: the forward keeps only each decoder layer's
    /// input, and the backward recomputes one layer at a time from it, so activation memory is one layer's worth
    /// plus `L` residual-stream tensors instead of every layer's intermediates (about 30% more compute).
    ///
    /// `head` maps the final hidden states [B,T,C] (after the final norm) to a scalar loss; its gradient, and the
    /// recomputed layers' gradients, are accumulated into the parameters' `.grad` exactly as
    /// `head(&self.forward_hidden(..)).backward()` would (same ops, so the same numbers up to summation order).
    /// Run it under the same autocast as the plain path: recomputation then repeats the forward's numerics.
    /// Returns the loss, detached.
    pub fn backward_checkpointed(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        head: impl FnOnce(&Tensor) -> Tensor,
    ) -> Tensor {
        let inputs = self.prepare(input_ids, attention_mask);
        let mut layer_inputs = Vec::with_capacity(self.layers.len());
        let last = tch::no_grad(|| {
            let mut xs = self.embed(input_ids);
            for layer in &self.layers {
                let next = layer.forward(&xs, &inputs);
                layer_inputs.push(xs);
                xs = next;
            }
            xs
        });
        // Back through the head, then layer by layer: d/dθ Σ(y ⊙ g) = gᵀ ∂y/∂θ carries the upstream gradient g.
        let leaf = last.detach().set_requires_grad(true);
        let loss = head(&self.norm.forward(&leaf));
        loss.backward();
        let mut grad = leaf.grad();
        for (layer, input) in self.layers.iter().zip(layer_inputs).rev() {
            let leaf = input.detach().set_requires_grad(true);
            let output = layer.forward(&leaf, &inputs);
            (output * grad.detach()).sum(Kind::Float).backward();
            grad = leaf.grad();
        }
        (self.embed(input_ids) * grad.detach()).sum(Kind::Float).backward();
        loss.detach()
    }

    /// RoPE tables and attention mask of a full-sequence forward.
    fn prepare(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>) -> LayerInputs {
        let (b, t) = input_ids.size2().expect("input_ids must be [B,T]");
        let device = input_ids.device();
        let (positions, mask) = match attention_mask {
            None => (
                Tensor::arange(t, (Kind::Int64, device))
                    .unsqueeze(0)
                    .expand([b, t], true),
                None,
            ),
            Some(m) => {
                let keep = m.to_device(device).ne(0);
                let positions = (keep.cumsum(-1, Kind::Int64) - 1).clamp_min(0);
                let causal = Tensor::ones([t, t], (Kind::Bool, device)).tril(0);
                // A pad query would otherwise see no key at all (NaN softmax); let it see itself.
                let diagonal = Tensor::eye(t, (Kind::Bool, device));
                let mask = causal.logical_and(&keep.view([b, 1, 1, t])).logical_or(&diagonal);
                (positions, Some(mask))
            }
        };
        let (cos, sin) = self.rope.cos_sin(&positions, self.kind());
        LayerInputs { cos, sin, mask }
    }

    /// Incremental forward through a [`KvCache`] (prefill and decode steps of the sampling engine).
    ///
    /// * `input_ids` [B,T] i64: the new tokens of each row (B equals the cache's batch size).
    /// * `positions` [B,T] i64: their RoPE positions (e.g. `prompt_len + step`; left pads any value ≥ 0).
    /// * `cache_slots` [B,T] i64: where each new token's K/V is written in the cache (slot < `cache.max_len()`).
    ///   Rows may use different slots; a slot is usually the token's index in the row's padded sequence.
    /// * `attention_mask` bool [B,1,T,S] (true = attend), S ≤ `cache.max_len()`: which of the first S cache slots
    ///   each new token sees, *after* this call's writes (so it must include the token's own slot). Attention reads
    ///   only slots `0..S`, so a caller that knows its longest row can keep S small. Build it with
    ///   [`KvCache::attention_mask`] or by hand.
    ///
    /// Returns logits [B,T,V]. Pure tensor ops with static shapes and no host sync (except for `dynamic` RoPE):
    /// CUDA-graph capturable. Run under `tch::no_grad` for sampling.
    pub fn forward_step(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        cache: &mut KvCache,
        cache_slots: &Tensor,
        attention_mask: &Tensor,
    ) -> Tensor {
        let hidden = self.forward_step_hidden(input_ids, positions, cache, cache_slots, attention_mask);
        self.logits(&hidden)
    }

    /// [`CausalLm::forward_step`] without the final projection: hidden states [B,T,C] after the final norm
    /// (apply [`CausalLm::logits`] to the rows you need).
    pub fn forward_step_hidden(
        &self,
        input_ids: &Tensor,
        positions: &Tensor,
        cache: &mut KvCache,
        cache_slots: &Tensor,
        attention_mask: &Tensor,
    ) -> Tensor {
        let (cos, sin) = self.rope.cos_sin(positions, self.kind());
        let mut xs = self.embed(input_ids);
        for (i, layer) in self.layers.iter().enumerate() {
            let h = layer.self_attn.forward(
                &layer.input_layernorm.forward(&xs),
                &cos,
                &sin,
                AttentionMask::Explicit(attention_mask),
                Some((&mut *cache, i, cache_slots)),
            );
            xs = xs + h;
            xs = &xs + layer.mlp.forward(&layer.post_attention_layernorm.forward(&xs));
        }
        self.norm.forward(&xs)
    }

    /// Token embeddings [.., C] of `input_ids`.
    pub fn embed(&self, input_ids: &Tensor) -> Tensor {
        Tensor::embedding(&self.embed_tokens, input_ids, -1, false, false)
    }

    /// Output projection of final hidden states [.., C] to logits [.., V].
    pub fn logits(&self, hidden: &Tensor) -> Tensor {
        hidden.linear(&self.lm_head, None::<&Tensor>)
    }

    /// A fresh, zeroed KV cache for `batch` rows of up to `max_len` tokens in the model's kind and device.
    pub fn new_kv_cache(&self, batch: i64, max_len: i64) -> KvCache {
        KvCache::new(&self.config, batch, max_len, self.kind(), self.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::LoadedModel;

    fn tiny(kind: Kind) -> LoadedModel {
        let mut cfg = ModelConfig::llama(64, 32, 48, 2, 4, 2, 64, 1e-5);
        cfg.model_type = "qwen2".into();
        cfg.tie_word_embeddings = true;
        let m = LoadedModel::random(cfg, 3, Device::Cpu, kind).unwrap();
        tch::no_grad(|| {
            for (name, mut v) in m.vs.variables() {
                if !name.contains("norm") {
                    let _ = v.normal_(0.0, 0.3);
                }
            }
        });
        m
    }

    #[test]
    fn parameter_names_are_huggingface_names() {
        let m = tiny(Kind::Float);
        let vars = m.vs.variables();
        for name in [
            "model.embed_tokens.weight",
            "model.layers.1.self_attn.q_proj.weight",
            "model.layers.1.self_attn.q_proj.bias",
            "model.layers.0.self_attn.o_proj.weight",
            "model.layers.0.mlp.gate_proj.weight",
            "model.layers.0.input_layernorm.weight",
            "model.layers.0.post_attention_layernorm.weight",
            "model.norm.weight",
        ] {
            assert!(vars.contains_key(name), "missing {name}");
        }
        assert!(
            !vars.contains_key("lm_head.weight"),
            "tied lm_head must not be a separate parameter"
        );
        assert!(
            !vars.contains_key("model.layers.0.self_attn.o_proj.bias"),
            "qwen2 has no o_proj bias"
        );
    }

    #[test]
    fn incremental_decoding_matches_full_forward() {
        let m = tiny(Kind::Float);
        let ids = Tensor::from_slice(&[3i64, 9, 27, 1, 44, 12, 5]).unsqueeze(0);
        let full = tch::no_grad(|| m.model.forward(&ids, None));
        let mut cache = m.model.new_kv_cache(1, 8);
        let valid = Tensor::zeros([1, 8], (Kind::Bool, Device::Cpu));
        // Prefill 4 tokens, then one at a time.
        let _ = valid.narrow(1, 0, 4).fill_(1);
        let slots = Tensor::arange(4, (Kind::Int64, Device::Cpu)).unsqueeze(0);
        let mask = KvCache::attention_mask(&slots, &valid.narrow(1, 0, 4));
        let mut steps = vec![tch::no_grad(|| {
            m.model
                .forward_step(&ids.narrow(1, 0, 4), &slots, &mut cache, &slots, &mask)
        })];
        for t in 4..7 {
            let _ = valid.narrow(1, t, 1).fill_(1);
            let slot = Tensor::from_slice(&[t]).unsqueeze(0);
            // Mask over all 8 slots: unwritten slots are invalid.
            let mask = KvCache::attention_mask(&slot, &valid);
            steps.push(tch::no_grad(|| {
                m.model
                    .forward_step(&ids.narrow(1, t, 1), &slot, &mut cache, &slot, &mask)
            }));
        }
        let inc = Tensor::cat(&steps, 1);
        let diff = (inc - full).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "incremental logits differ by {diff}");
    }

    #[test]
    fn bf16_forward_tracks_f32() {
        let mut m = tiny(Kind::Float);
        let ids = Tensor::from_slice(&[3i64, 9, 27, 1]).unsqueeze(0);
        let a = tch::no_grad(|| m.model.forward(&ids, None));
        m.vs.bfloat16();
        let b = tch::no_grad(|| m.model.forward(&ids, None));
        assert_eq!(b.kind(), Kind::BFloat16);
        let rel = (&a - b.to_kind(Kind::Float)).abs().max().double_value(&[]) / a.abs().max().double_value(&[]);
        assert!(rel < 0.1, "bf16 logits drift {rel}");
    }

    #[test]
    fn forward_is_differentiable() {
        let m = tiny(Kind::Float);
        let ids = Tensor::from_slice(&[3i64, 9, 27, 1]).unsqueeze(0);
        let mask = Tensor::from_slice(&[0i64, 1, 1, 1]).unsqueeze(0);
        let loss = m
            .model
            .forward(&ids, Some(&mask))
            .log_softmax(-1, Kind::Float)
            .mean(Kind::Float);
        loss.backward();
        let grad = m.vs.variables()["model.layers.0.self_attn.k_proj.weight"].grad();
        assert!(grad.defined() && grad.abs().sum(Kind::Float).double_value(&[]) > 0.0);
    }

    /// Activation checkpointing changes memory, not math: the loss and every parameter gradient equal the plain
    /// forward/backward's (padding mask included).
    #[test]
    fn checkpointed_backward_matches_plain_backward() {
        let m = tiny(Kind::Float);
        let ids = Tensor::from_slice(&[3i64, 9, 27, 1, 5, 0, 8, 2, 2, 6]).view([2, 5]);
        let mask = Tensor::from_slice(&[0i64, 1, 1, 1, 1, 1, 1, 1, 1, 1]).view([2, 5]);
        let targets = Tensor::from_slice(&[9i64, 27, 1, 5, 8, 2, 2, 6]).view([2, 4]);
        let head = |hidden: &Tensor| {
            m.model
                .logits(&hidden.narrow(1, 0, 4))
                .log_softmax(-1, Kind::Float)
                .gather(-1, &targets.unsqueeze(-1), false)
                .mean(Kind::Float)
                .neg()
        };
        let grads = |vs: &nn::VarStore| -> Vec<(String, Tensor)> {
            let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(n, t)| (n, t.grad().copy())).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let plain_loss = head(&m.model.forward_hidden(&ids, Some(&mask)));
        plain_loss.backward();
        let plain = grads(&m.vs);
        for (_, mut t) in m.vs.variables() {
            t.zero_grad();
        }
        let loss = m.model.backward_checkpointed(&ids, Some(&mask), head);
        assert!((loss.double_value(&[]) - plain_loss.double_value(&[])).abs() < 1e-6);
        for ((name, a), (_, b)) in plain.iter().zip(grads(&m.vs)) {
            let diff = (a - &b).abs().max().double_value(&[]);
            let scale = a.abs().max().double_value(&[]).max(1e-6);
            assert!(diff <= 1e-5 * scale.max(1.0), "{name}: max |Δgrad| {diff:e}");
            assert!(
                b.abs().sum(Kind::Float).double_value(&[]) > 0.0 || scale <= 1e-6,
                "{name}: no gradient"
            );
        }
    }

    /// On a machine with CUDA: the same weights give the same f32 logits on GPU as on CPU, through both the
    /// plain forward and the KV-cache path.
    #[test]
    fn cuda_matches_cpu_when_available() {
        if !tch::Cuda::is_available() {
            eprintln!("SKIP: CUDA not available");
            return;
        }
        let cpu = tiny(Kind::Float);
        let gpu = LoadedModel::random(cpu.config.clone(), 0, Device::Cuda(0), Kind::Float).unwrap();
        tch::no_grad(|| {
            let src = cpu.vs.variables();
            for (name, mut v) in gpu.vs.variables() {
                v.copy_(&src[&name]);
            }
        });
        let ids = Tensor::from_slice(&[3i64, 9, 27, 1, 44]).unsqueeze(0);
        let expected = tch::no_grad(|| cpu.model.forward(&ids, None));
        let cuda_ids = ids.to_device(Device::Cuda(0));
        let full = tch::no_grad(|| gpu.model.forward(&cuda_ids, None)).to_device(Device::Cpu);
        let mut cache = gpu.model.new_kv_cache(1, 5);
        let slots = Tensor::arange(5, (Kind::Int64, Device::Cuda(0))).unsqueeze(0);
        let valid = Tensor::ones([1, 5], (Kind::Bool, Device::Cuda(0)));
        let mask = KvCache::attention_mask(&slots, &valid);
        let step = tch::no_grad(|| gpu.model.forward_step(&cuda_ids, &slots, &mut cache, &slots, &mask));
        for (what, got) in [("forward", full), ("forward_step", step.to_device(Device::Cpu))] {
            let diff = (&expected - got).abs().max().double_value(&[]);
            assert!(diff < 1e-4, "{what}: CUDA logits differ from CPU by {diff}");
        }
    }
}
