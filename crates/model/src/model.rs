//! The decoder-only transformer: RMSNorm, rotary embeddings, grouped-query attention through
//! `scaled_dot_product_attention` (K/V heads are never expanded: `enable_gqa`), SwiGLU MLP.
//!
//! Parameter names are exactly Hugging Face's (`model.layers.3.self_attn.q_proj.weight`, `lm_head.weight`, ...) so
//! that safetensors checkpoints map 1:1 onto the `VarStore`. Numerics follow transformers' Llama/Qwen2 code
//! (RMSNorm in f32, RoPE tables in f32 cast to the activation dtype) so that f32 logits agree to ~1e-5.

use anyhow::{Context, Result};
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

impl RmsNorm {
    /// The same normalisation as one fused kernel (`at::_fused_rms_norm`): computed in f32 and rounded once at
    /// the end, where the plain form rounds before the weight multiply (so bf16 results can differ by an ulp).
    fn forward_fused(&self, xs: &Tensor) -> Tensor {
        let width = self.weight.size()[0];
        xs.internal_fused_rms_norm([width], Some(&self.weight), self.eps).0
    }

    /// The product of the normalised `xs` [N,C] with a projection whose `weight` has this norm's weight folded
    /// into its columns ([`StackedProjections`]), plus `bias`: `xs · weightᵀ` scaled per row by
    /// `rsqrt(mean(xs²) + eps)` in f32, rounded once to xs's kind. The ATen form of what the layer kernels do
    /// with a [`seekmath_shim::FoldedNorm`].
    fn folded_linear(&self, xs: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let scale = xs
            .to_kind(Kind::Float)
            .square()
            .mean_dim(-1, true, Kind::Float)
            .g_add_scalar(self.eps)
            .rsqrt();
        let product = xs.linear(weight, None::<&Tensor>).to_kind(Kind::Float) * scale;
        match bias {
            Some(bias) => product + bias.to_kind(Kind::Float),
            None => product,
        }
        .to_kind(xs.kind())
    }

    /// This norm folded into the product of `input`'s rows that a layer kernel reads, with the product's `bias`.
    fn folded<'a>(&self, input: &'a Tensor, bias: Option<&'a Tensor>) -> seekmath_shim::FoldedNorm<'a> {
        seekmath_shim::FoldedNorm {
            input: Some(input),
            eps: self.eps,
            bias,
        }
    }

    /// [`RmsNorm::forward_fused`] of `xs` [B,C] for the decode step: seekmath's one-block-per-row kernel
    /// ([`seekmath_shim::rms_norm`], the same function) when `kernel`.
    fn forward_decode(&self, xs: &Tensor, kernel: bool) -> Result<Tensor> {
        if kernel {
            seekmath_shim::rms_norm(xs, &self.weight, self.eps).context("seekmath RMSNorm kernel")
        } else {
            Ok(self.forward_fused(xs))
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
#[derive(Clone, Copy)]
enum AttentionMask<'a> {
    /// Plain causal attention over the tokens of this call.
    Causal,
    /// Explicit boolean mask (true = attend), broadcastable to [B, heads, T, S].
    Explicit(&'a Tensor),
}

impl AttentionMask<'_> {
    /// The cache slots attention reads: the explicit mask's width, else all `cache_len` of them.
    fn attended_slots(&self, cache_len: i64) -> i64 {
        match self {
            AttentionMask::Explicit(m) => m.size().last().copied().unwrap_or(cache_len),
            AttentionMask::Causal => cache_len,
        }
    }
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
        let y = self.attend(
            &self.q_proj.forward(xs),
            &self.k_proj.forward(xs),
            &self.v_proj.forward(xs),
            cos,
            sin,
            mask,
            cache,
        );
        self.o_proj.forward(&y)
    }

    /// Attention from the projected `q` [B,T,H·D], `k` and `v` [B,T,KVH·D] (last dims contiguous): RoPE, the cache
    /// write and SDPA as in [`Attention::forward`]; returns [B,T,H·D] for the output projection.
    #[allow(clippy::too_many_arguments)]
    fn attend(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: AttentionMask,
        cache: Option<(&mut KvCache, usize, &Tensor)>,
    ) -> Tensor {
        let (b, t, _) = q.size3().expect("attention input must be [B,T,H*D]");
        let q = q.view([b, t, self.num_heads, self.head_dim]).transpose(1, 2);
        let k = k.view([b, t, self.num_kv_heads, self.head_dim]).transpose(1, 2);
        let v = v.view([b, t, self.num_kv_heads, self.head_dim]).transpose(1, 2);
        let q = apply_rotary(&q, cos, sin);
        let k = apply_rotary(&k, cos, sin);
        let (k, v) = match cache {
            None => (k, v),
            Some((cache, layer, slots)) => {
                let attended = mask.attended_slots(cache.max_len());
                cache.write(layer, slots, &k, &v);
                (
                    cache.keys[layer].narrow(2, 0, attended),
                    cache.values[layer].narrow(2, 0, attended),
                )
            }
        };
        self.sdpa(&q, &k, &v, mask)
    }

    /// SDPA of rotated queries `q` [B,H,T,D] over keys and values [B,KVH,S,D] (K/V heads shared by their query
    /// group, not expanded); returns [B,T,H·D] for the output projection.
    fn sdpa(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: AttentionMask) -> Tensor {
        let (b, _, t, _) = q.size4().expect("queries must be [B,H,T,D]");
        let gqa = self.num_heads != self.num_kv_heads;
        let y = match mask {
            AttentionMask::Causal => {
                Tensor::scaled_dot_product_attention(q, k, v, None::<&Tensor>, 0.0, t > 1, None::<f64>, gqa)
            }
            AttentionMask::Explicit(m) => {
                Tensor::scaled_dot_product_attention(q, k, v, Some(m), 0.0, false, None::<f64>, gqa)
            }
        };
        y.transpose(1, 2).reshape([b, t, self.num_heads * self.head_dim])
    }
}

/// The attention kernel of [`CausalLm::forward_decode_hidden`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecodeAttention {
    /// [`DecodeAttention::Kernel`] where it is available and wins (bf16/f16, a supported head shape, at least
    /// [`KERNEL_MIN_ROW_HEADS`] rows × K/V heads), else [`DecodeAttention::Sdpa`].
    #[default]
    Auto,
    /// `scaled_dot_product_attention`, which picks the backend (cuDNN's flash kernel on an H200 for bf16).
    Sdpa,
    /// The memory-efficient (CUTLASS) kernel called directly.
    MemoryEfficient,
    /// seekmath's split-K decode kernel ([`seekmath_shim::decode_attention`]): reads K/V at ~1.6-2.8 TB/s on an
    /// H200 where SDPA reaches ~1.1-1.6 at batch 256-512, but loses to it on narrow batches (fewer, longer
    /// blocks). Needs the rows' first valid slots ([`DecodeRows::starts`]).
    Kernel,
}

/// Rows × K/V heads from which [`DecodeAttention::Auto`] takes the kernel (measured on an H200 with the 0.5B and
/// 1.5B shapes: SDPA wins at 64 rows × 2 heads, the kernel at 96, 128, 192, 256 and 512 rows; the engine's batch
/// buckets are powers of two, so this means 128 rows and up there; `scripts/gpu/decode_kernels.py`).
pub const KERNEL_MIN_ROW_HEADS: i64 = 256;

impl DecodeAttention {
    /// The concrete kernel for `rows` rows of a model with these attention shapes and kind.
    pub fn resolve(self, rows: i64, kv_heads: i64, group: i64, head_dim: i64, kind: Kind, device: Device) -> Self {
        match self {
            DecodeAttention::Auto => {
                let usable = device.is_cuda()
                    && seekmath_shim::decode_attention_supports(kind, head_dim, group)
                    && seekmath_shim::cuda_kernels_status().is_ok();
                if usable && rows * kv_heads >= KERNEL_MIN_ROW_HEADS {
                    DecodeAttention::Kernel
                } else {
                    DecodeAttention::Sdpa
                }
            }
            chosen => chosen,
        }
    }
}

/// The optional CUDA kernels of [`CausalLm::forward_decode_hidden`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeKernels {
    /// The attention kernel.
    pub attention: DecodeAttention,
    /// seekmath's layer ops where they can run (a CUDA device, NVRTC found): RoPE of the query and key heads
    /// together with the K/V cache write ([`seekmath_shim::rope_kv_write`], or inside the attention kernel,
    /// [`seekmath_shim::decode_attention_rope`], when that runs) and SiLU·up ([`seekmath_shim::silu_mul`]), one
    /// or two launches per layer where ATen takes seven, each applying the RMSNorm folded into the product before
    /// it ([`StackedProjections`]), and the final RMSNorm ([`seekmath_shim::rms_norm`]). Off, or where they
    /// cannot run: the ATen ops (the folded norms as [`RmsNorm::folded_linear`]).
    pub layer_ops: bool,
}

impl Default for DecodeKernels {
    fn default() -> Self {
        DecodeKernels {
            attention: DecodeAttention::Auto,
            layer_ops: true,
        }
    }
}

impl DecodeKernels {
    /// ATen only: SDPA and no layer-op kernels (the form that runs anywhere).
    pub const ATEN: DecodeKernels = DecodeKernels {
        attention: DecodeAttention::Sdpa,
        layer_ops: false,
    };
}

/// Whether [`DecodeKernels::layer_ops`] can run for this kind and device.
fn layer_ops_usable(kind: Kind, device: Device) -> bool {
    device.is_cuda()
        && matches!(kind, Kind::Float | Kind::BFloat16 | Kind::Half)
        && seekmath_shim::cuda_kernels_status().is_ok()
}

/// Where each row's tokens sit in the cache, for [`DecodeAttention::Kernel`]: row b attends to slots
/// `starts[b] ..= slots[b]` (its left-padded prompt begins at `starts[b]`; `slots[b]` is written by this step).
#[derive(Debug)]
pub struct DecodeRows<'a> {
    /// `[B]` i64: the first valid slot of each row.
    pub starts: &'a Tensor,
    /// `[B]` i64 (contiguous): the slot each row writes this step.
    pub slots: &'a Tensor,
}

/// Per-step tensors shared by every layer of [`CausalLm::forward_decode_hidden`].
struct DecodeInputs<'a> {
    /// Resolved: never `Auto`.
    attention: DecodeAttention,
    rows: Option<DecodeRows<'a>>,
    /// Slots attended (the length of the `valid` mask).
    attended: i64,
    rotation: Rotation,
    /// RoPE, SiLU·up and the final RMSNorm through seekmath's kernels (resolved: only where they can run).
    layer_kernels: bool,
    /// Additive attention bias [B,1,1,S]: 0 where a slot is valid, -inf elsewhere (not built for the kernel).
    bias: Option<Tensor>,
}

/// How a decode step applies RoPE and writes K/V.
enum Rotation {
    /// ATen: one gather and one fused multiply-add (`x·cos + x[rotate_index]·signed_sin`), then two cache copies.
    Aten {
        /// RoPE cosines [B,1,D], broadcast over heads.
        cos: Tensor,
        /// `sin` with the sign of `rotate_half` folded in (negative on the first half of each head), [B,1,D].
        signed_sin: Tensor,
        /// Lane `i` of a rotated head reads lane `(i + d/2) mod d`.
        rotate_index: Tensor,
    },
    /// [`seekmath_shim::rope_kv_write`] (or [`seekmath_shim::decode_attention_rope`] with the attention kernel)
    /// with the angles [B,D].
    Kernel { cos: Tensor, sin: Tensor },
}

/// `residual += input · linear.weightᵀ (+ bias)`, in place: the residual add rides in the matrix product's
/// epilogue (`addmm_` with β = 1) when the projection has no bias.
fn project_into(residual: &mut Tensor, linear: &nn::Linear, input: &Tensor) {
    match &linear.bs {
        None => {
            let _ = residual.addmm_(input, &linear.ws.tr());
        }
        Some(bias) => {
            let _ = residual.g_add_(&input.linear(&linear.ws, Some(bias)));
        }
    }
}

/// The decode step's stacked projection weights, per layer `[q; k; v]` (with biases) and `[gate; up]`, so that
/// each group is one matrix product (and RoPE runs once over the query and key heads together), with the RMSNorm
/// before each group folded in: the norm's weight multiplies the weight columns, so the product is taken of the
/// un-normalised rows and only the norm's per-row factor is left, which the next kernel applies
/// ([`seekmath_shim::FoldedNorm`]; [`RmsNorm::folded_linear`] in ATen). That saves the step an RMSNorm kernel
/// per norm. A copy of the model's parameters: [`CausalLm::stacked_projections`] makes it and
/// [`CausalLm::refresh_stacked_projections`] updates it in place after the parameters change (the sampling engine
/// does so at the start of every call).
#[derive(Debug)]
pub struct StackedProjections {
    layers: Vec<StackedLayer>,
}

#[derive(Debug)]
struct StackedLayer {
    qkv: Tensor,
    qkv_bias: Option<Tensor>,
    gate_up: Tensor,
    gate_up_bias: Option<Tensor>,
}

impl StackedLayer {
    fn of(layer: &DecoderLayer) -> Self {
        let (a, m) = (&layer.self_attn, &layer.mlp);
        let stack = |parts: &[Option<&Tensor>]| -> Option<Tensor> {
            let parts: Option<Vec<&Tensor>> = parts.iter().copied().collect();
            parts.map(|p| Tensor::cat(&p, 0))
        };
        fn weights<'a>(ls: &[&'a nn::Linear]) -> Vec<Option<&'a Tensor>> {
            ls.iter().map(|l| Some(&l.ws)).collect()
        }
        fn biases<'a>(ls: &[&'a nn::Linear]) -> Vec<Option<&'a Tensor>> {
            ls.iter().map(|l| l.bs.as_ref()).collect()
        }
        let (attn, mlp) = ([&a.q_proj, &a.k_proj, &a.v_proj], [&m.gate_proj, &m.up_proj]);
        let _no_grad = tch::no_grad_guard();
        let mut stacked = StackedLayer {
            qkv: stack(&weights(&attn)).expect("weights exist"),
            qkv_bias: stack(&biases(&attn)),
            gate_up: stack(&weights(&mlp)).expect("weights exist"),
            gate_up_bias: stack(&biases(&mlp)),
        };
        stacked.refresh(layer);
        stacked
    }

    /// Copies the layer's current parameters into the stacked tensors with the norms folded in, in place (their
    /// addresses stay): one pass per part.
    fn refresh(&mut self, layer: &DecoderLayer) {
        // A copy for inference: no graph back to the parameters.
        let _no_grad = tch::no_grad_guard();
        let (a, m) = (&layer.self_attn, &layer.mlp);
        let fill = |dst: &mut Tensor, parts: &[&Tensor], norm: Option<&RmsNorm>| {
            let mut row = 0;
            for part in parts {
                let rows = part.size()[0];
                let mut dst = dst.narrow(0, row, rows);
                match norm {
                    Some(norm) => {
                        let _ = part.mul_out(&dst, &norm.weight);
                    }
                    None => dst.copy_(part),
                }
                row += rows;
            }
        };
        let (input_norm, post_norm) = (Some(&layer.input_layernorm), Some(&layer.post_attention_layernorm));
        fill(&mut self.qkv, &[&a.q_proj.ws, &a.k_proj.ws, &a.v_proj.ws], input_norm);
        if let (Some(dst), Some(q), Some(k), Some(v)) =
            (self.qkv_bias.as_mut(), &a.q_proj.bs, &a.k_proj.bs, &a.v_proj.bs)
        {
            fill(dst, &[q, k, v], None);
        }
        fill(&mut self.gate_up, &[&m.gate_proj.ws, &m.up_proj.ws], post_norm);
        if let (Some(dst), Some(g), Some(u)) = (self.gate_up_bias.as_mut(), &m.gate_proj.bs, &m.up_proj.bs) {
            fill(dst, &[g, u], None);
        }
    }
}

impl Attention {
    /// One new token per row: attention of `residual` [B,C] normalised by `norm` (folded into the stacked q/k/v
    /// weights), added into `residual`. The query heads of each K/V group are folded into the query axis
    /// ([B, kv, group, d]), so attention reads each K/V head once and needs no GQA expansion.
    #[allow(clippy::too_many_arguments)]
    fn forward_decode_into(
        &self,
        residual: &mut Tensor,
        norm: &RmsNorm,
        stacked: &StackedLayer,
        inputs: &DecodeInputs,
        cache: &mut KvCache,
        layer: usize,
        slot: &Tensor,
    ) -> Result<()> {
        let b = residual.size()[0];
        let (h, kv, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let group = h / kv;
        // The layer kernels apply the norm's factor and the bias; the ATen form does it here.
        let qkv = match inputs.rotation {
            Rotation::Kernel { .. } => residual.linear(&stacked.qkv, None::<&Tensor>),
            Rotation::Aten { .. } => norm.folded_linear(residual, &stacked.qkv, stacked.qkv_bias.as_ref()),
        };
        let folded = norm.folded(residual, stacked.qkv_bias.as_ref());
        let attended = inputs.attended;
        let kernel_rows = || {
            inputs
                .rows
                .as_ref()
                .context("the decode-attention kernel needs the rows' start slots")
        };
        if let (DecodeAttention::Kernel, Rotation::Kernel { cos, sin }) = (inputs.attention, &inputs.rotation) {
            // RoPE, the K/V write and attention in one kernel (same results as the two kernels below).
            let rows = kernel_rows()?;
            let y = seekmath_shim::decode_attention_rope(
                &qkv,
                cos,
                sin,
                h,
                &cache.keys[layer],
                &cache.values[layer],
                rows.starts,
                rows.slots,
                attended,
                &folded,
            )
            .context("seekmath decode-attention kernel with RoPE")?;
            project_into(residual, &self.o_proj, &y.reshape([b, h * d]));
            return Ok(());
        }
        // [B, H, D], heads contiguous.
        let q_heads = match &inputs.rotation {
            Rotation::Kernel { cos, sin } => seekmath_shim::rope_kv_write(
                &qkv,
                cos,
                sin,
                h,
                kv,
                &cache.keys[layer],
                &cache.values[layer],
                slot,
                &folded,
            )
            .context("seekmath RoPE and K/V write kernel")?,
            Rotation::Aten {
                cos,
                signed_sin,
                rotate_index,
            } => {
                let heads = qkv.view([b, h + 2 * kv, d]);
                let qk = heads.narrow(1, 0, h + kv);
                let rotated = (&qk * cos).addcmul_(&qk.index_select(-1, rotate_index), signed_sin);
                let k = rotated.narrow(1, h, kv).view([b, kv, 1, d]);
                let v = heads.narrow(1, h + kv, kv).view([b, kv, 1, d]);
                cache.write_slot(layer, slot, &k, &v);
                rotated.narrow(1, 0, h)
            }
        };
        let q = q_heads.view([b, kv, group, d]);
        let (keys, values) = (
            cache.keys[layer].narrow(2, 0, attended),
            cache.values[layer].narrow(2, 0, attended),
        );
        let bias = || inputs.bias.as_ref().expect("the SDPA paths build the bias");
        let y = match inputs.attention {
            DecodeAttention::Kernel => {
                let rows = kernel_rows()?;
                seekmath_shim::decode_attention(
                    &q_heads,
                    &cache.keys[layer],
                    &cache.values[layer],
                    rows.starts,
                    rows.slots,
                    attended,
                )
                .context("seekmath decode-attention kernel")?
            }
            DecodeAttention::Sdpa | DecodeAttention::Auto => {
                Tensor::scaled_dot_product_attention(&q, &keys, &values, Some(bias()), 0.0, false, None::<f64>, false)
            }
            DecodeAttention::MemoryEfficient => {
                let bias = bias().expand([b, kv, group, attended], false);
                Tensor::internal_scaled_dot_product_efficient_attention(
                    &q,
                    &keys,
                    &values,
                    Some(&bias),
                    false,
                    0.0,
                    false,
                    None::<f64>,
                )
                .0
            }
        };
        project_into(residual, &self.o_proj, &y.reshape([b, self.num_heads * d]));
        Ok(())
    }
}

impl Mlp {
    /// Adds the MLP output of `residual` [N,C] normalised by `norm` (folded into the stacked gate/up weights) into
    /// `residual`: gate and up as one product, the norm's factor, bias and SiLU·up as one kernel when `silu_kernel`.
    fn forward_into(
        &self,
        residual: &mut Tensor,
        norm: &RmsNorm,
        stacked: &StackedLayer,
        silu_kernel: bool,
    ) -> Result<()> {
        let bias = stacked.gate_up_bias.as_ref();
        let hidden = if silu_kernel {
            let gate_up = residual.linear(&stacked.gate_up, None::<&Tensor>);
            seekmath_shim::silu_mul(&gate_up, &norm.folded(residual, bias)).context("seekmath SiLU·up kernel")?
        } else {
            let gate_up = norm.folded_linear(residual, &stacked.gate_up, bias);
            let width = gate_up.size()[1] / 2;
            gate_up.narrow(1, 0, width).silu_() * gate_up.narrow(1, width, width)
        };
        project_into(residual, &self.down_proj, &hidden);
        Ok(())
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

    /// [`CausalLm::forward_step_hidden`] with the decode step's fusions, for the engine's prompt prefill on CUDA:
    /// the stacked q/k/v and gate/up products with the layers' RMSNorms folded in ([`StackedProjections`]), the
    /// residual adds inside the output and down products and, when `layer_kernels` allows it and the layer kernels
    /// are usable, RoPE with the K/V cache write as one kernel over all B·T tokens ([`seekmath_shim::rope_kv_write`])
    /// and SiLU·up as another, each applying its folded norm; otherwise the folded norms in ATen. The same function
    /// up to rounding, like [`CausalLm::forward_decode_hidden`]; the plain form makes ~20 passes per layer over
    /// [B·T, C]-sized activations where this runs seven kernels (four products, RoPE, attention, SiLU·up).
    ///
    /// `attention_mask` as in [`CausalLm::forward_step_hidden`], or `None` when every row's T tokens are all valid
    /// and sit at slots 0..T (plain causal attention: no mask to build or read, and cuDNN's attention kernel, which
    /// SDPA picks either way on an H200, takes ~20% less time without one; docs/benchmarks.md, session 10).
    #[allow(clippy::too_many_arguments)] // the plain step's inputs plus the stacked weights and the kernel switch
    pub fn forward_prefill_hidden(
        &self,
        stacked: &StackedProjections,
        input_ids: &Tensor,
        positions: &Tensor,
        cache: &mut KvCache,
        cache_slots: &Tensor,
        attention_mask: Option<&Tensor>,
        layer_kernels: bool,
    ) -> Result<Tensor> {
        let (b, t) = input_ids.size2().context("prefill ids must be [B,T]")?;
        let width = self.config.hidden_size as i64;
        let layer_kernels = layer_kernels && layer_ops_usable(self.kind(), self.device);
        let mask = attention_mask.map_or(AttentionMask::Causal, AttentionMask::Explicit);
        let attended = mask.attended_slots(cache.max_len());
        let (cos, sin) = self.rope.cos_sin(positions, self.kind());
        // The RoPE kernel takes one angle row and one slot per token.
        let (token_cos, token_sin) = (cos.view([b * t, -1]), sin.view([b * t, -1]));
        let token_slots = cache_slots.reshape([b * t]);
        let mut xs = self.embed(input_ids).view([b * t, width]);
        for (i, (layer, stacked)) in self.layers.iter().zip(&stacked.layers).enumerate() {
            let attention = &layer.self_attn;
            let (heads, kv_heads, dim) = (attention.num_heads, attention.num_kv_heads, attention.head_dim);
            let (norm, bias) = (&layer.input_layernorm, stacked.qkv_bias.as_ref());
            let y = if layer_kernels {
                let q = seekmath_shim::rope_kv_write(
                    &xs.linear(&stacked.qkv, None::<&Tensor>),
                    &token_cos,
                    &token_sin,
                    heads,
                    kv_heads,
                    &cache.keys[i],
                    &cache.values[i],
                    &token_slots,
                    &norm.folded(&xs, bias),
                )
                .context("seekmath RoPE + K/V write kernel")?;
                attention.sdpa(
                    &q.view([b, t, heads, dim]).transpose(1, 2),
                    &cache.keys[i].narrow(2, 0, attended),
                    &cache.values[i].narrow(2, 0, attended),
                    mask,
                )
            } else {
                let qkv = norm.folded_linear(&xs, &stacked.qkv, bias).view([b, t, -1]);
                let (q_width, kv_width) = (heads * dim, kv_heads * dim);
                attention.attend(
                    &qkv.narrow(2, 0, q_width),
                    &qkv.narrow(2, q_width, kv_width),
                    &qkv.narrow(2, q_width + kv_width, kv_width),
                    &cos,
                    &sin,
                    mask,
                    Some((&mut *cache, i, cache_slots)),
                )
            };
            project_into(&mut xs, &attention.o_proj, &y.view([b * t, heads * dim]));
            layer
                .mlp
                .forward_into(&mut xs, &layer.post_attention_layernorm, stacked, layer_kernels)?;
        }
        Ok(self.norm.forward_fused(&xs).view([b, t, width]))
    }

    /// A stacked copy of the projection weights for [`CausalLm::forward_decode_hidden`].
    pub fn stacked_projections(&self) -> StackedProjections {
        StackedProjections {
            layers: self.layers.iter().map(StackedLayer::of).collect(),
        }
    }

    /// Copies the current parameters into `stacked` (made by [`CausalLm::stacked_projections`]), in place.
    pub fn refresh_stacked_projections(&self, stacked: &mut StackedProjections) {
        for (dst, layer) in stacked.layers.iter_mut().zip(&self.layers) {
            dst.refresh(layer);
        }
    }

    /// One decode step (one new token per row) written for few kernel launches, for the CUDA-graph decode path
    /// where launches, not bytes, set the step time: stacked q/k/v and gate/up products with the layers' RMSNorms
    /// folded in (`stacked`, from [`CausalLm::stacked_projections`] and current), RoPE once over the query and key
    /// heads together with the K/V write and the folded input norm (one kernel with [`DecodeKernels::layer_ops`],
    /// else a gather, a fused multiply-add and two copies), SiLU·up with the folded post-attention norm as one
    /// kernel (same switch), the final RMSNorm as one kernel, query heads folded into their K/V group
    /// (no GQA expansion, no transposes), residual adds inside the output projections' matrix products, and one
    /// additive attention bias for all layers.
    ///
    /// Same contract as [`CausalLm::forward_step_hidden`] with T = 1 (`input_ids`, `positions` [B,1]), except
    /// that every row writes the same cache slot, `slot` [1] i64 (the engine's layout, so the K/V write is one
    /// strided copy), and attention is given as `valid` [B,S] bool: the first S cache slots each row sees (its
    /// own slot, written by this call, included); `valid` must hold one contiguous run per row when
    /// `kernels.attention` may resolve to [`DecodeAttention::Kernel`], which reads `rows` instead of the mask (pass
    /// `rows` whenever the kernel may run; without them only the SDPA paths are possible). Returns hidden states
    /// [B,C] after the final norm. It computes the same function up to rounding order (a few ulps in f32), so the
    /// engine uses it on CUDA only and CPU results stay bit-identical to the plain path (and to transformers).
    #[allow(clippy::too_many_arguments)] // the step's static buffers, each one a graph input
    pub fn forward_decode_hidden(
        &self,
        stacked: &StackedProjections,
        input_ids: &Tensor,
        positions: &Tensor,
        cache: &mut KvCache,
        slot: &Tensor,
        valid: &Tensor,
        kernels: DecodeKernels,
        rows: Option<DecodeRows<'_>>,
    ) -> Result<Tensor> {
        let kind = self.kind();
        let (b, s) = valid.size2().expect("valid must be [B,S]");
        let head_dim = self.config.head_dim() as i64;
        let kv_heads = self.config.num_kv_heads() as i64;
        let group = self.config.num_attention_heads as i64 / kv_heads;
        let attention = match (kernels.attention, &rows) {
            (DecodeAttention::Auto, None) => DecodeAttention::Sdpa,
            (attention, _) => attention.resolve(b, kv_heads, group, head_dim, kind, self.device),
        };
        let layer_ops = kernels.layer_ops && layer_ops_usable(kind, self.device);
        let (cos, sin) = self.rope.cos_sin(positions, kind);
        let rotation = if layer_ops {
            Rotation::Kernel {
                cos: cos.reshape([b, head_dim]),
                sin: sin.reshape([b, head_dim]),
            }
        } else {
            let half = head_dim / 2;
            let lanes = Tensor::arange(head_dim, (Kind::Int64, self.device));
            let sign = lanes.ge(half).to_kind(kind) * 2.0 - 1.0;
            Rotation::Aten {
                cos: cos.view([b, 1, head_dim]),
                signed_sin: (sin * sign).view([b, 1, head_dim]),
                rotate_index: (lanes + half).remainder(head_dim),
            }
        };
        let inputs = DecodeInputs {
            attention,
            rows,
            attended: s,
            rotation,
            layer_kernels: layer_ops,
            // log(1) = 0 and log(0) = -inf: the additive mask in one kernel after the cast.
            bias: (attention != DecodeAttention::Kernel).then(|| valid.to_kind(kind).log().view([b, 1, 1, s])),
        };
        let mut xs = self.embed(&input_ids.view([b]));
        let kernels = inputs.layer_kernels;
        for (i, (layer, stacked)) in self.layers.iter().zip(&stacked.layers).enumerate() {
            layer
                .self_attn
                .forward_decode_into(&mut xs, &layer.input_layernorm, stacked, &inputs, cache, i, slot)?;
            layer
                .mlp
                .forward_into(&mut xs, &layer.post_attention_layernorm, stacked, kernels)?;
        }
        self.norm.forward_decode(&xs, kernels)
    }

    /// The storage address of every parameter, in a fixed order. It changes when a parameter is re-bound to new
    /// memory (not when it is updated in place, as optimizers do), which is what invalidates recorded CUDA graphs.
    pub fn parameter_addresses(&self) -> Vec<usize> {
        fn linear(l: &nn::Linear) -> [Option<&Tensor>; 2] {
            [Some(&l.ws), l.bs.as_ref()]
        }
        let mut tensors = vec![&self.embed_tokens, &self.lm_head, &self.norm.weight];
        for layer in &self.layers {
            let (a, m) = (&layer.self_attn, &layer.mlp);
            tensors.push(&layer.input_layernorm.weight);
            tensors.push(&layer.post_attention_layernorm.weight);
            for l in [
                &a.q_proj,
                &a.k_proj,
                &a.v_proj,
                &a.o_proj,
                &m.gate_proj,
                &m.up_proj,
                &m.down_proj,
            ] {
                tensors.extend(linear(l).into_iter().flatten());
            }
        }
        tensors.iter().map(|t| t.data_ptr() as usize).collect()
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
    fn fused_decode_step_matches_plain_step() {
        let m = tiny(Kind::Float);
        tch::no_grad(|| {
            for (name, mut v) in m.vs.variables() {
                if name.contains("norm") {
                    let _ = v.uniform_(0.5, 1.5);
                }
            }
        });
        // Three rows at different prompt lengths (left-padded to 5 slots), then two decode steps each.
        let (rows, slots_total) = (3i64, 8i64);
        let prompt = Tensor::from_slice(&[3i64, 9, 27, 1, 44, 0, 0, 12, 5, 7, 0, 0, 0, 0, 33]).view([rows, 5]);
        let valid = Tensor::from_slice(&[1u8, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1])
            .to_kind(Kind::Bool)
            .view([rows, 5]);
        let positions = (valid.to_kind(Kind::Int64).cumsum(1, Kind::Int64) - 1).clamp_min(0);
        let slots = Tensor::arange(5, (Kind::Int64, Device::Cpu))
            .unsqueeze(0)
            .repeat([rows, 1]);
        let eye = Tensor::eye(5, (Kind::Bool, Device::Cpu)).view([1, 1, 5, 5]);
        let mask = KvCache::attention_mask(&slots, &valid).logical_or(&eye);
        let mut plain_cache = m.model.new_kv_cache(rows, slots_total);
        let plain_prefill = tch::no_grad(|| {
            m.model
                .forward_step_hidden(&prompt, &positions, &mut plain_cache, &slots, &mask)
        });
        let mut fused_cache = m.model.new_kv_cache(rows, slots_total);
        fused_cache.copy_from(&plain_cache);
        let all_valid = Tensor::zeros([rows, slots_total], (Kind::Bool, Device::Cpu));
        all_valid.narrow(1, 0, 5).copy_(&valid);
        let mut next_position = positions.narrow(1, 4, 1) + 1;
        // Stacked from zeroed weights, then refreshed: the refresh must copy every part in place.
        let mut stacked = m.model.stacked_projections();
        tch::no_grad(|| {
            for layer in &mut stacked.layers {
                let _ = layer.qkv.zero_();
                let _ = layer.gate_up.zero_();
                if let Some(b) = layer.qkv_bias.as_mut() {
                    let _ = b.zero_();
                }
            }
        });
        m.model.refresh_stacked_projections(&mut stacked);
        // The fused prefill: the same hidden states and cache up to rounding.
        let mut prefill_cache = m.model.new_kv_cache(rows, slots_total);
        let fused_prefill = tch::no_grad(|| {
            m.model
                .forward_prefill_hidden(
                    &stacked,
                    &prompt,
                    &positions,
                    &mut prefill_cache,
                    &slots,
                    Some(&mask),
                    true,
                )
                .unwrap()
        });
        let diff = (&plain_prefill - &fused_prefill).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "fused prefill differs by {diff}");
        // Unpadded prompts (the first row's five tokens, twice) without a mask: plain causal attention.
        let (unpadded, causal_positions) = (
            prompt.narrow(0, 0, 1).repeat([2, 1]),
            positions.narrow(0, 0, 1).repeat([2, 1]),
        );
        let causal_slots = slots.narrow(0, 0, 2);
        let causal_mask = KvCache::attention_mask(&causal_slots, &Tensor::ones([2, 5], (Kind::Bool, Device::Cpu)));
        let mut masked_cache = m.model.new_kv_cache(2, 5);
        let mut causal_cache = m.model.new_kv_cache(2, 5);
        let (masked, causal) = tch::no_grad(|| {
            let masked = m.model.forward_step_hidden(
                &unpadded,
                &causal_positions,
                &mut masked_cache,
                &causal_slots,
                &causal_mask,
            );
            let causal = m
                .model
                .forward_prefill_hidden(
                    &stacked,
                    &unpadded,
                    &causal_positions,
                    &mut causal_cache,
                    &causal_slots,
                    None,
                    true,
                )
                .unwrap();
            (masked, causal)
        });
        let diff = (&masked - &causal).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "causal fused prefill differs by {diff}");
        let diff = (&masked_cache.values[1] - &causal_cache.values[1])
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-5, "causal fused prefill's cache differs by {diff}");
        for (plain, fused) in plain_cache
            .keys
            .iter()
            .chain(&plain_cache.values)
            .zip(prefill_cache.keys.iter().chain(&prefill_cache.values))
        {
            let diff = (plain - fused).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "fused prefill's cache differs by {diff}");
        }
        for (step, token) in [[17i64, 2, 60], [8, 30, 4]].iter().enumerate() {
            let ids = Tensor::from_slice(token).view([rows, 1]);
            let slot = Tensor::full([rows, 1], 5 + step as i64, (Kind::Int64, Device::Cpu));
            let _ = all_valid.narrow(1, 5 + step as i64, 1).fill_(1);
            let seen = all_valid.narrow(1, 0, 6 + step as i64);
            let plain = tch::no_grad(|| {
                let mask = KvCache::attention_mask(&slot, &seen);
                m.model
                    .forward_step_hidden(&ids, &next_position, &mut plain_cache, &slot, &mask)
                    .squeeze_dim(1)
            });
            let fused = tch::no_grad(|| {
                m.model
                    .forward_decode_hidden(
                        &stacked,
                        &ids,
                        &next_position,
                        &mut fused_cache,
                        &slot.select(0, 0),
                        &seen,
                        DecodeKernels::ATEN,
                        None,
                    )
                    .unwrap()
            });
            let diff = (plain - fused).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "step {step}: fused decode differs by {diff}");
            next_position += 1;
        }
        let cache_diff = (&plain_cache.keys[1] - &fused_cache.keys[1])
            .abs()
            .max()
            .double_value(&[]);
        assert!(cache_diff < 1e-5, "cached keys differ by {cache_diff}");
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
