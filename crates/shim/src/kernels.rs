//! The decode step's own CUDA kernels (`kernels/*.cu`): a one-pass token sampler, split-K decode attention, and
//! the layer's elementwise ops (RMSNorm, RoPE fused with the K/V cache write, SiLU·up).
//!
//! Why custom kernels: on an H200 at batch 256-512 the ATen sampler made five passes over the [B, V] logits
//! (~0.45 ms of a 3 ms step with a 152k vocabulary), and SDPA's kernels read the K/V cache of one-token queries at
//! ~1.1-1.6 TB/s. The sampler kernel reads each row once; the attention kernel splits the history into tiles that
//! are copied two deep into shared memory and multiplied on tensor cores, and reads K/V at ~1.6-2.8 TB/s
//! (`scripts/gpu/decode_kernels.py` checks both against references and times them; docs/benchmarks.md). With one
//! token per row a layer's elementwise work is a few hundred KB, so each ATen op of it costs its launch, not its
//! bytes: the layer ops turn seven such launches per layer into two, and run RMSNorm in one block per row
//! (`scripts/gpu/decode_layer.py`).
//!
//! The kernels are compiled at run time by NVRTC (shipped with torch's CUDA wheels) for the device's exact
//! architecture and launched on libtorch's current stream, so they are captured into CUDA graphs like ATen ops;
//! nothing is needed at build time. Outputs are allocated here through tch, so inside a graph capture they come
//! from the graph's memory pool. The first call per kernel variant compiles it, which a graph capture cannot do:
//! call once outside a capture (the engine's warm-up step does).

use std::ffi::{c_char, CStr};
use std::sync::OnceLock;

use tch::{Device, Kind, Tensor};
use torch_sys::C_tensor;

use crate::{ffi, Result, ShimError};

fn raw(t: &Tensor) -> *mut C_tensor {
    t.as_ptr() as *mut C_tensor
}

/// Whether the kernels can run here: `Ok` when NVRTC and the CUDA driver library load (checked once), else why
/// not. A CUDA device of compute capability 8.0 or newer is also needed; launching on an older one returns an
/// error.
pub fn cuda_kernels_status() -> std::result::Result<(), String> {
    static STATUS: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    STATUS
        .get_or_init(|| {
            if !crate::built_with_cuda() {
                return Err("seekmath-shim was built without CUDA headers".into());
            }
            let mut buffer = vec![0 as c_char; 1024];
            // SAFETY: the buffer outlives the call and its size is passed; the shim NUL-terminates.
            unsafe { ffi::seekmath_cuda_kernels_status(buffer.as_mut_ptr(), buffer.len() as i32) };
            // SAFETY: NUL-terminated within the buffer.
            let text = unsafe { CStr::from_ptr(buffer.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            if text.is_empty() {
                Ok(())
            } else {
                Err(text)
            }
        })
        .clone()
}

/// Samples one token per row of `logits` [B, V] (f32, bf16 or f16, on CUDA, rows contiguous) with `uniforms` `[B]`
/// f32: greedy takes the first maximum; otherwise the first token whose running sum of `exp((l - max) / T)` exceeds
/// `u` times the total (inverse CDF, no top-p/top-k). Returns (tokens `[B]` i64, log-probs `[B]` f32 of the token under
/// the temperature-1 softmax). Deterministic; no host sync.
pub fn sample_rows(logits: &Tensor, uniforms: &Tensor, temperature: f64, greedy: bool) -> Result<(Tensor, Tensor)> {
    let rows = logits.size().first().copied().unwrap_or(0);
    let device = logits.device();
    let uniforms = uniforms.to_kind(Kind::Float).contiguous();
    let tokens = Tensor::empty([rows], (Kind::Int64, device));
    let logprobs = Tensor::empty([rows], (Kind::Float, device));
    let inv_temperature = inverse_temperature(temperature, greedy);
    // SAFETY: all tensors are live for the call; the shim validates shapes, kinds and devices.
    ffi::check(unsafe {
        ffi::seekmath_sample_rows(
            raw(logits),
            raw(&uniforms),
            inv_temperature,
            greedy as i32,
            raw(&tokens),
            raw(&logprobs),
        )
    })?;
    Ok((tokens, logprobs))
}

fn inverse_temperature(temperature: f64, greedy: bool) -> f64 {
    if greedy || temperature <= 0.0 {
        1.0
    } else {
        1.0 / temperature
    }
}

/// A decode step's per-row state that [`sample_rows_advance`] reads and advances (B rows, all on the logits'
/// device, contiguous).
pub struct DecodeStepState<'a> {
    /// `[B, S]` f32 (rows contiguous): row r's uniform for generated token s at column s.
    pub uniforms: &'a Tensor,
    /// B i64: the token each row feeds next (written).
    pub ids: &'a Tensor,
    /// B i64: its RoPE position (advanced by one).
    pub positions: &'a Tensor,
    /// B i64: the cache slot this step wrote (advanced by one).
    pub slots: &'a Tensor,
    /// 1 i64: the slot of the first decode step (whose token is generated token 1).
    pub first_slot: &'a Tensor,
    /// `[2, B]` f64: receives (tokens, log-probs) for the host to read back.
    pub packed: &'a Tensor,
}

/// [`sample_rows`] as the end of a decode step, in the same kernel: row r samples with uniform
/// `uniforms[r, slots[r] - first_slot + 1]`, then `ids[r]` = its token, `positions[r]` and `slots[r]` advance by
/// one and `packed` receives (token, log-prob). The same tokens and log-probs as [`sample_rows`] on that column;
/// what it saves is the eight small kernels of that bookkeeping (~15 µs of a 1.6 ms step on an H200).
pub fn sample_rows_advance(logits: &Tensor, temperature: f64, greedy: bool, state: &DecodeStepState<'_>) -> Result<()> {
    // SAFETY: all tensors are live for the call; the shim validates shapes, kinds and devices.
    ffi::check(unsafe {
        ffi::seekmath_sample_rows_advance(
            raw(logits),
            raw(state.uniforms),
            inverse_temperature(temperature, greedy),
            greedy as i32,
            raw(state.ids),
            raw(state.positions),
            raw(state.slots),
            raw(state.first_slot),
            raw(state.packed),
        )
    })
}

/// What a layer kernel applies to each element of the matrix product it reads, before its own math: the row
/// factor of an RMSNorm folded into that product, then the product's bias. The default applies nothing.
///
/// Folding: the norm's weight is multiplied into the product's weight columns, so the product is taken of the
/// un-normalised rows x and the kernel scales product row n by `rsqrt(mean(x_n²) + eps)`, computed in f32 from
/// `input` (the same function as normalising first; the rounding differs). The step then needs no RMSNorm kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct FoldedNorm<'a> {
    /// The norm's input rows [N, C], one per product row (rows contiguous, the product's kind); `None`: no norm.
    pub input: Option<&'a Tensor>,
    /// The norm's epsilon.
    pub eps: f64,
    /// The product's bias, one value per product column (contiguous, the product's kind); `None`: no bias.
    pub bias: Option<&'a Tensor>,
}

impl FoldedNorm<'_> {
    fn raw_input(&self) -> *mut C_tensor {
        self.input.map_or(std::ptr::null_mut(), raw)
    }

    fn raw_bias(&self) -> *mut C_tensor {
        self.bias.map_or(std::ptr::null_mut(), raw)
    }
}

/// True when [`decode_attention`] takes this shape and kind: bf16 or f16, head dim a multiple of 16 up to 128,
/// at most 16 query heads per K/V head.
pub fn decode_attention_supports(kind: Kind, head_dim: i64, group: i64) -> bool {
    matches!(kind, Kind::BFloat16 | Kind::Half) && head_dim % 16 == 0 && head_dim <= 128 && (1..=16).contains(&group)
}

/// Attention of one query token per row over a head-major K/V cache, for grouped-query attention.
///
/// `q` [B, H, D] (heads and dims contiguous; any batch stride, e.g. a narrow of a stacked q/k/v projection);
/// `keys`, `values` [B, KVH, S, D] (rows of D contiguous, the same strides); row b attends to slots
/// `starts[b] ..= slots[b]` (`starts`, `slots`: B i64 each, contiguous), and only slots below `attended` are
/// planned for. Returns [B, H, D] in q's kind. Scale 1/√D, no other mask.
pub fn decode_attention(
    q: &Tensor,
    keys: &Tensor,
    values: &Tensor,
    starts: &Tensor,
    slots: &Tensor,
    attended: i64,
) -> Result<Tensor> {
    let (_, heads, _) = q.size3().map_err(|err| ShimError::InvalidArgument(err.to_string()))?;
    attention_launch(q, heads, keys, values, starts, slots, attended, None)
}

/// The rotary angles and the projection's [`FoldedNorm`] of [`decode_attention_rope`].
type Rotation<'a> = (&'a Tensor, &'a Tensor, &'a FoldedNorm<'a>);

/// [`decode_attention`] with RoPE and the K/V cache write of the step fused in: one kernel where
/// [`rope_kv_write`] + [`decode_attention`] take two, with bit-identical results.
///
/// `qkv` [B, (H + 2·KVH)·D] is the stacked q/k/v projection (rows contiguous) and `cos`, `sin` [B, D] the rows'
/// angles, and `folded` what applies to the projection first, as for [`rope_kv_write`]; the rotated key and the
/// value of row b are written at slot `slots[b]`, the last slot it attends to. Returns the attention output
/// [B, H, D].
#[allow(clippy::too_many_arguments)] // the kernel's operands, each a distinct tensor or shape
pub fn decode_attention_rope(
    qkv: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    heads: i64,
    keys: &Tensor,
    values: &Tensor,
    starts: &Tensor,
    slots: &Tensor,
    attended: i64,
    folded: &FoldedNorm<'_>,
) -> Result<Tensor> {
    attention_launch(
        qkv,
        heads,
        keys,
        values,
        starts,
        slots,
        attended,
        Some((cos, sin, folded)),
    )
}

#[allow(clippy::too_many_arguments)]
fn attention_launch(
    q: &Tensor,
    heads: i64,
    keys: &Tensor,
    values: &Tensor,
    starts: &Tensor,
    slots: &Tensor,
    attended: i64,
    rope: Option<Rotation<'_>>,
) -> Result<Tensor> {
    let Device::Cuda(index) = q.device() else {
        return Err(ShimError::InvalidArgument(
            "decode_attention runs on CUDA tensors".into(),
        ));
    };
    let batch = q.size().first().copied().unwrap_or(0);
    let (kv_heads, dim) = match keys.size()[..] {
        [_, kv_heads, _, dim] => (kv_heads, dim),
        _ => return Err(ShimError::InvalidArgument("keys must be [B, KVH, S, D]".into())),
    };
    let (mut splits, mut tiles_per_split) = (1i64, 1i64);
    // SAFETY: out-pointers are live locals.
    ffi::check(unsafe {
        ffi::seekmath_decode_attention_plan(
            index as i32,
            batch,
            kv_heads,
            dim,
            attended,
            &mut splits,
            &mut tiles_per_split,
        )
    })?;
    let group = heads / kv_heads.max(1);
    let device = q.device();
    let scratch = |n: i64| Tensor::empty([if splits > 1 { n } else { 0 }], (Kind::Float, device));
    let part_max = scratch(batch * kv_heads * splits * group);
    let part_sum = scratch(batch * kv_heads * splits * group);
    let part_acc = scratch(batch * kv_heads * splits * group * dim);
    let out = Tensor::empty([batch, heads, dim], (q.kind(), device));
    let none = FoldedNorm::default();
    let (cos, sin, folded) = match rope {
        Some((cos, sin, folded)) => (raw(cos), raw(sin), folded),
        None => (std::ptr::null_mut(), std::ptr::null_mut(), &none),
    };
    // SAFETY: all tensors are live for the call; the shim validates shapes, strides, kinds and devices.
    ffi::check(unsafe {
        ffi::seekmath_decode_attention(
            raw(q),
            raw(keys),
            raw(values),
            raw(starts),
            raw(slots),
            splits,
            tiles_per_split,
            raw(&part_max),
            raw(&part_sum),
            raw(&part_acc),
            raw(&out),
            cos,
            sin,
            folded.raw_input(),
            folded.eps,
            folded.raw_bias(),
        )
    })?;
    Ok(out)
}

fn cuda_only(t: &Tensor, what: &str) -> Result<()> {
    if t.device().is_cuda() {
        Ok(())
    } else {
        Err(ShimError::InvalidArgument(format!("{what} runs on CUDA tensors")))
    }
}

/// RoPE (transformers' `rotate_half` convention) and the K/V cache write of a decode step or a prefill, in one
/// kernel.
///
/// `qkv` [N, (H + 2·KVH)·D] is a stacked q/k/v projection row per token (rows contiguous, any row stride); `cos`,
/// `sin` [N, D] the token's angles (same kind, rows contiguous). The query heads are rotated into a new contiguous
/// [N, H, D] tensor, which is returned; the rotated key heads and the value heads are written into `keys` and
/// `values` [B, KVH, S, D] (rows of D contiguous) at slot `slots[n]` (i64) of cache row n / T, where T = N / B
/// tokens per cache row (token-major: a decode step has T = 1, a prefill of [B, T] prompts passes them flattened).
/// With T = 1 `slots` may hold one element, the slot of every row. `folded` applies to every element of `qkv`
/// first (a folded input norm, the projection's bias). Computes in f32 and rounds once (ATen's three ops round
/// after each in 16-bit kinds).
#[allow(clippy::too_many_arguments)] // the kernel's operands, each a distinct tensor or shape
pub fn rope_kv_write(
    qkv: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    heads: i64,
    kv_heads: i64,
    keys: &Tensor,
    values: &Tensor,
    slots: &Tensor,
    folded: &FoldedNorm<'_>,
) -> Result<Tensor> {
    cuda_only(qkv, "rope_kv_write")?;
    let (batch, dim) = (qkv.size()[0], keys.size().get(3).copied().unwrap_or(0));
    let q = Tensor::empty([batch, heads, dim], (qkv.kind(), qkv.device()));
    // SAFETY: all tensors are live for the call; the shim validates shapes, strides, kinds and devices.
    ffi::check(unsafe {
        ffi::seekmath_rope_kv_write(
            raw(qkv),
            raw(cos),
            raw(sin),
            heads,
            kv_heads,
            raw(keys),
            raw(values),
            raw(slots),
            raw(&q),
            folded.raw_input(),
            folded.eps,
            folded.raw_bias(),
        )
    })?;
    Ok(q)
}

/// `silu(gate) · up` of a stacked [gate; up] projection, `gate_up` [B, 2W] (rows contiguous) to a new [B, W]
/// tensor, in one kernel (f32 math, one rounding); `folded` applies to every element of `gate_up` first.
pub fn silu_mul(gate_up: &Tensor, folded: &FoldedNorm<'_>) -> Result<Tensor> {
    cuda_only(gate_up, "silu_mul")?;
    let (batch, double_width) = gate_up
        .size2()
        .map_err(|err| ShimError::InvalidArgument(err.to_string()))?;
    let out = Tensor::empty([batch, double_width / 2], (gate_up.kind(), gate_up.device()));
    // SAFETY: both tensors are live for the call; the shim validates shapes, strides, kinds and devices.
    ffi::check(unsafe {
        ffi::seekmath_silu_mul(
            raw(gate_up),
            raw(&out),
            folded.raw_input(),
            folded.eps,
            folded.raw_bias(),
        )
    })?;
    Ok(out)
}

/// RMSNorm of `x` [B, C] (rows contiguous) with `weight` `[C]` of the same kind, to a new [B, C] tensor:
/// `x · rsqrt(mean(x²) + eps) · weight` in f32, rounded once (the function of `at::_fused_rms_norm`), one block per
/// row.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    cuda_only(x, "rms_norm")?;
    let out = Tensor::empty(x.size(), (x.kind(), x.device()));
    // SAFETY: all tensors are live for the call; the shim validates shapes, strides, kinds and devices.
    ffi::check(unsafe { ffi::seekmath_rms_norm(raw(x), raw(weight), eps, raw(&out)) })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_shapes() {
        assert!(decode_attention_supports(Kind::BFloat16, 64, 7));
        assert!(decode_attention_supports(Kind::Half, 128, 6));
        assert!(!decode_attention_supports(Kind::Float, 64, 7));
        assert!(!decode_attention_supports(Kind::BFloat16, 256, 2));
        assert!(!decode_attention_supports(Kind::BFloat16, 72, 2));
        assert!(!decode_attention_supports(Kind::BFloat16, 64, 32));
    }

    #[test]
    fn cpu_tensors_are_refused_with_a_clear_error() {
        let q = Tensor::zeros([2, 4, 64], (Kind::BFloat16, Device::Cpu));
        let kv = Tensor::zeros([2, 2, 128, 64], (Kind::BFloat16, Device::Cpu));
        let idx = Tensor::zeros([2], (Kind::Int64, Device::Cpu));
        let err = decode_attention(&q, &kv, &kv, &idx, &idx, 128).unwrap_err();
        assert!(err.to_string().contains("CUDA"), "{err}");
        let qkv = Tensor::zeros([2, (4 + 2 * 2) * 64], (Kind::BFloat16, Device::Cpu));
        let angles = Tensor::zeros([2, 64], (Kind::BFloat16, Device::Cpu));
        let err = decode_attention_rope(
            &qkv,
            &angles,
            &angles,
            4,
            &kv,
            &kv,
            &idx,
            &idx,
            128,
            &FoldedNorm::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("CUDA"), "{err}");
        let logits = Tensor::zeros([2, 300], (Kind::Float, Device::Cpu));
        let u = Tensor::zeros([2], (Kind::Float, Device::Cpu));
        let err = sample_rows(&logits, &u, 1.0, false).unwrap_err();
        assert!(err.to_string().contains("CUDA"), "{err}");
        let table = Tensor::zeros([2, 8], (Kind::Float, Device::Cpu));
        let state = DecodeStepState {
            uniforms: &table,
            ids: &idx,
            positions: &idx,
            slots: &idx,
            first_slot: &idx.narrow(0, 0, 1),
            packed: &Tensor::zeros([2, 2], (Kind::Double, Device::Cpu)),
        };
        let err = sample_rows_advance(&logits, 1.0, false, &state).unwrap_err();
        assert!(err.to_string().contains("CUDA"), "{err}");
        let err = silu_mul(&logits, &FoldedNorm::default()).unwrap_err();
        assert!(err.to_string().contains("CUDA"), "{err}");
        let err = rms_norm(&logits, &u, 1e-6).unwrap_err();
        assert!(err.to_string().contains("CUDA"), "{err}");
        let angles = Tensor::zeros([2, 64], (Kind::BFloat16, Device::Cpu));
        let qkv = Tensor::zeros([2, 8 * 64], (Kind::BFloat16, Device::Cpu));
        let err = rope_kv_write(&qkv, &angles, &angles, 4, 2, &kv, &kv, &idx, &FoldedNorm::default()).unwrap_err();
        assert!(err.to_string().contains("CUDA"), "{err}");
    }
}
