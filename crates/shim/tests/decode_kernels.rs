//! The decode kernels against ATen references on a GPU: the sampler's tokens and log-probs (greedy and sampled),
//! decode attention against SDPA with the equivalent mask, over head shapes of the supported models, ragged
//! row starts and split plans, eagerly and replayed from a CUDA graph, and the layer ops (RoPE with the K/V
//! write, SiLU·up, RMSNorm) against f32 references in every element kind; attention with RoPE and the K/V write
//! fused in against the two kernels it replaces, bit for bit. Without a CUDA device the test prints why
//! it did not run (the CPU-side argument checks are unit tests in src/kernels.rs).

use seekmath_shim::{
    cuda_device_count, cuda_kernels_status, decode_attention, decode_attention_rope, rms_norm, rope_kv_write,
    sample_rows, sample_rows_advance, silu_mul, CudaGraph, DecodeStepState, FoldedNorm,
};
use tch::{Device, Kind, Tensor};

fn gpu() -> Option<Device> {
    if cuda_device_count() == 0 {
        eprintln!("no CUDA device: decode kernels not exercised here");
        return None;
    }
    if let Err(reason) = cuda_kernels_status() {
        panic!("a CUDA device is visible but the kernels cannot load: {reason}");
    }
    Some(Device::Cuda(0))
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Float) - b.to_kind(Kind::Float))
        .abs()
        .max()
        .double_value(&[])
}

#[test]
fn sampler_kernel_matches_the_float64_inverse_cdf() {
    let Some(device) = gpu() else { return };
    tch::manual_seed(0);
    for kind in [Kind::BFloat16, Kind::Float] {
        let (rows, vocab) = (64, 151_936);
        let logits = (Tensor::randn([rows, vocab], (Kind::Float, device)) * 3.0).to_kind(kind);
        let _ = logits.narrow(1, 1000, 200).fill_(f64::NEG_INFINITY);
        let u = Tensor::rand([rows], (Kind::Float, device));
        let x = logits.to_kind(Kind::Double);
        let log_z = x.logsumexp([-1], true);
        for temperature in [1.0, 0.7] {
            let (tokens, logprobs) = sample_rows(&logits, &u, temperature, false).unwrap();
            let max = x.amax([-1], true);
            let cdf = ((&x - &max) / temperature).exp().cumsum(-1, Kind::Double);
            let target = u.to_kind(Kind::Double).unsqueeze(-1) * cdf.narrow(1, vocab - 1, 1);
            let expected = target
                .searchsorted(&cdf, false, true, "right", None::<Tensor>)
                .squeeze_dim(-1);
            let same = tokens
                .eq_tensor(&expected)
                .to_kind(Kind::Float)
                .mean(Kind::Float)
                .double_value(&[]);
            // A row may differ only where u·total sits within summation rounding of a CDF step.
            assert!(same >= 0.95, "{kind:?} T={temperature}: {same} of tokens agree");
            let masked = tokens
                .ge(1000)
                .logical_and(&tokens.lt(1200))
                .sum(Kind::Int64)
                .int64_value(&[]);
            assert_eq!(masked, 0, "a -inf logit was sampled");
            let expected_lp = (x.gather(-1, &tokens.unsqueeze(-1), false) - &log_z).squeeze_dim(-1);
            assert!(max_abs(&logprobs, &expected_lp) < 1e-4);
        }
        let (tokens, logprobs) = sample_rows(&logits, &u, 1.0, true).unwrap();
        assert!(tokens.eq_tensor(&x.argmax(-1, false)).all().int64_value(&[]) == 1);
        let expected_lp = (x.amax([-1], false) - log_z.squeeze_dim(-1)).to_kind(Kind::Float);
        assert!(max_abs(&logprobs, &expected_lp) < 1e-4);
    }
}

#[test]
fn sampler_kernel_frequencies_follow_the_distribution() {
    let Some(device) = gpu() else { return };
    let vocab = 50_000;
    let row = Tensor::full([vocab], f64::NEG_INFINITY, (Kind::Float, Device::Cpu));
    let ids = [7i64, 20_000, 20_001, vocab - 1];
    for (id, p) in ids.iter().zip([0.1f64, 0.2, 0.3, 0.4]) {
        let _ = row.get(*id).fill_(p.ln());
    }
    let draws = 20_000;
    let logits = row
        .to_kind(Kind::BFloat16)
        .to_device(device)
        .unsqueeze(0)
        .expand([draws, vocab], true)
        .contiguous();
    let u = Tensor::rand([draws], (Kind::Float, device));
    let (tokens, _) = sample_rows(&logits, &u, 1.0, false).unwrap();
    for (id, p) in ids.iter().zip([0.1f64, 0.2, 0.3, 0.4]) {
        let share = tokens.eq(*id).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
        // Four standard deviations of a binomial share over 20k draws.
        assert!(
            (share - p).abs() < 4.0 * (p * (1.0 - p) / draws as f64).sqrt(),
            "token {id}: {share} vs {p}"
        );
    }
}

#[test]
fn sampler_kernel_in_a_decode_step_samples_the_slots_column_and_advances_the_rows() {
    let Some(device) = gpu() else { return };
    tch::manual_seed(2);
    let (rows, vocab, columns) = (96i64, 32_000i64, 40i64);
    let logits = (Tensor::randn([rows, vocab], (Kind::Float, device)) * 2.0).to_kind(Kind::BFloat16);
    let uniforms = Tensor::rand([rows, columns], (Kind::Float, device));
    let ids = Tensor::full([rows], -1, (Kind::Int64, device));
    let positions = Tensor::randint(100, [rows], (Kind::Int64, device));
    let first_slot = Tensor::from_slice(&[17i64]).to_device(device);
    let slots = Tensor::full([rows], 17 + 9, (Kind::Int64, device));
    let packed = Tensor::zeros([2, rows], (Kind::Double, device));
    let state = DecodeStepState {
        uniforms: &uniforms,
        ids: &ids,
        positions: &positions,
        slots: &slots,
        first_slot: &first_slot,
        packed: &packed,
    };
    // Handles on the same storage, to reset the counters the kernel advances.
    let (mut reset_positions, mut reset_slots) = (positions.shallow_clone(), slots.shallow_clone());
    let before = (positions.copy(), slots.copy());
    for (temperature, greedy) in [(1.0, false), (0.7, false), (1.0, true)] {
        // Row r is at slot 26 = first slot + 9: generated token 10, column 10 of its uniforms.
        reset_slots.copy_(&before.1);
        reset_positions.copy_(&before.0);
        sample_rows_advance(&logits, temperature, greedy, &state).unwrap();
        let (tokens, logprobs) = sample_rows(&logits, &uniforms.select(1, 10), temperature, greedy).unwrap();
        assert!(ids.equal(&tokens), "T={temperature} greedy={greedy}: tokens differ");
        assert!(packed.get(0).equal(&tokens.to_kind(Kind::Double)));
        assert!(packed.get(1).equal(&logprobs.to_kind(Kind::Double)));
        assert!(positions.equal(&(&before.0 + 1)), "positions not advanced by one");
        assert!(slots.equal(&(&before.1 + 1)), "slots not advanced by one");
    }
    // Another column gives other tokens (the column really follows the slot).
    sample_rows_advance(&logits, 1.0, false, &state).unwrap();
    let (column_11, _) = sample_rows(&logits, &uniforms.select(1, 11), 1.0, false).unwrap();
    assert!(ids.equal(&column_11));
    // A short read-back buffer is refused.
    let bad = DecodeStepState {
        packed: &Tensor::zeros([2, rows - 1], (Kind::Double, device)),
        ..state
    };
    let err = sample_rows_advance(&logits, 1.0, false, &bad).unwrap_err();
    assert!(err.to_string().contains("packed"), "{err}");
}

#[test]
fn attention_kernel_matches_sdpa_with_the_same_mask() {
    let Some(device) = gpu() else { return };
    tch::manual_seed(1);
    // (heads, kv heads, head dim): Qwen2.5-0.5B, Qwen2.5-1.5B, SmolLM2-135M, plain multi-head, and groups above
    // the MMA's 8 head columns (16 and 12 heads per K/V head, the latter with an odd number of 16-dim steps).
    for (heads, kv_heads, dim) in [
        (14i64, 2i64, 64i64),
        (12, 2, 128),
        (9, 3, 64),
        (4, 4, 128),
        (16, 1, 64),
        (24, 2, 48),
    ] {
        // The last two cases split the history (2 and 4 splits at the 0.5B shape); in the last, the final split
        // runs past the cache.
        for (batch, slot, attended) in [
            (3i64, 5i64, 128i64),
            (64, 287, 384),
            (256, 383, 384),
            (128, 600, 640),
            (2, 990, 1000),
        ] {
            let capacity = attended.max(640);
            let starts = Tensor::randint(32, [batch], (Kind::Int64, device)).clamp_max(slot);
            let store = |_: ()| Tensor::randn([batch, kv_heads, capacity, dim], (Kind::BFloat16, device));
            let (keys, values) = (store(()), store(()));
            let qkv = Tensor::randn([batch, heads + 2 * kv_heads, dim], (Kind::BFloat16, device));
            let q = qkv.narrow(1, 0, heads);
            let slots = Tensor::full([batch], slot, (Kind::Int64, device));
            let got = decode_attention(&q, &keys, &values, &starts, &slots, attended).unwrap();
            let ids = Tensor::arange(attended, (Kind::Int64, device)).unsqueeze(0);
            let mask = ids
                .ge_tensor(&starts.unsqueeze(1))
                .logical_and(&ids.le(slot))
                .view([batch, 1, 1, attended]);
            let group = heads / kv_heads;
            let reference = Tensor::scaled_dot_product_attention(
                &q.to_kind(Kind::Float).reshape([batch, kv_heads, group, dim]),
                &keys.narrow(2, 0, attended).to_kind(Kind::Float),
                &values.narrow(2, 0, attended).to_kind(Kind::Float),
                Some(&mask),
                0.0,
                false,
                None::<f64>,
                false,
            )
            .reshape([batch, heads, dim]);
            let diff = max_abs(&got, &reference);
            // bf16 output rounding plus bf16 probabilities in P·V: SDPA's own bf16 kernels land at the same level.
            assert!(
                diff < 2e-2,
                "heads {heads}/{kv_heads} dim {dim} batch {batch} slot {slot}: |diff| {diff}"
            );
        }
    }
}

#[test]
fn attention_kernel_replays_from_a_cuda_graph() {
    let Some(device) = gpu() else { return };
    let (batch, heads, kv_heads, dim, capacity) = (256i64, 14i64, 2i64, 64i64, 256i64);
    let keys = Tensor::randn([batch, kv_heads, capacity, dim], (Kind::BFloat16, device));
    let values = Tensor::randn([batch, kv_heads, capacity, dim], (Kind::BFloat16, device));
    let q = Tensor::randn([batch, heads, dim], (Kind::BFloat16, device));
    let starts = Tensor::zeros([batch], (Kind::Int64, device));
    let mut slots = Tensor::full([batch], 100, (Kind::Int64, device));
    let eager = decode_attention(&q, &keys, &values, &starts, &slots, capacity).unwrap();
    let mut graph = CudaGraph::new(device).unwrap();
    let replayed = graph
        .capture(|| decode_attention(&q, &keys, &values, &starts, &slots, capacity))
        .unwrap()
        .unwrap();
    // Advance the step the way the engine does (in place), replay, and compare with a fresh eager call.
    let _ = slots.g_add_scalar_(50);
    graph.replay().unwrap();
    let fresh = decode_attention(&q, &keys, &values, &starts, &slots, capacity).unwrap();
    assert_eq!(
        max_abs(&replayed, &fresh),
        0.0,
        "graph replay differs from the eager kernel"
    );
    assert!(max_abs(&eager, &fresh) > 0.0, "the replay did not see the new slots");
}

/// transformers' `rotate_half` RoPE in f32: `x·cos + rotate_half(x)·sin`, over the last axis.
fn rotate_half_reference(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let half = x.size().last().copied().unwrap() / 2;
    let rotated = Tensor::cat(&[x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
    x * cos + rotated * sin
}

/// RoPE cos and sin [B, D] of `kind` for random positions below 4000 (θ = 1e6, the rotate_half layout).
fn rope_angles(batch: i64, dim: i64, kind: Kind, device: Device) -> (Tensor, Tensor) {
    let positions = Tensor::randint(4000, [batch, 1], (Kind::Float, device));
    let inv_freq = (Tensor::arange_start_step(0, dim, 2, (Kind::Float, device)) / dim as f64 * -(1e6f64.ln())).exp();
    let angles = (positions * inv_freq).repeat([1, 2]);
    (angles.cos().to_kind(kind), angles.sin().to_kind(kind))
}

/// A folded RMSNorm's input rows [N, 896] (rms ~2, so the factor is ~0.5) and a bias of `columns`, for the layer
/// kernels' [`FoldedNorm`].
fn norm_input_and_bias(rows: i64, columns: i64, kind: Kind, device: Device) -> (Tensor, Tensor) {
    (
        (Tensor::randn([rows, 896], (Kind::Float, device)) * 2).to_kind(kind),
        Tensor::randn([columns], (kind, device)),
    )
}

/// The f32 reference of a product read through a [`FoldedNorm`]: `product` · rsqrt(mean(input²) + eps) + bias.
fn folded_reference(product: &Tensor, input: &Tensor, eps: f64, bias: &Tensor) -> Tensor {
    let x = input.to_kind(Kind::Float);
    let scale = (x.square().mean_dim(-1, true, Kind::Float) + eps).rsqrt();
    product.to_kind(Kind::Float) * scale + bias.to_kind(Kind::Float)
}

/// Largest error a value of this kind may carry after one rounding, relative to magnitude 1.
fn one_rounding(kind: Kind) -> f64 {
    match kind {
        Kind::BFloat16 => 1.0 / 128.0,
        Kind::Half => 1.0 / 1024.0,
        _ => 1e-6,
    }
}

#[test]
fn rope_kv_write_matches_the_f32_rotation_and_writes_only_its_slots() {
    let Some(device) = gpu() else { return };
    tch::manual_seed(2);
    for kind in [Kind::BFloat16, Kind::Float, Kind::Half] {
        for (heads, kv_heads, dim) in [(14i64, 2i64, 64i64), (12, 2, 128), (9, 3, 64)] {
            // A decode step's slots (one per row, or one for all rows), and a prefill's: 3 tokens per cache row at
            // distinct slots of that row.
            // Each also with an input norm folded into the product and a bias (the engine's layout).
            for ((per_row, tokens_per_row), fold) in [(true, 1i64), (false, 1), (true, 3)]
                .into_iter()
                .flat_map(|layout| [(layout, false), (layout, true)])
            {
                let (batch, capacity) = (36i64, 50i64);
                let columns = (heads + 2 * kv_heads) * dim;
                let qkv = Tensor::randn([batch, columns], (kind, device));
                let (norm_input, bias) = norm_input_and_bias(batch, columns, kind, device);
                let folded = FoldedNorm {
                    input: fold.then_some(&norm_input),
                    eps: 1e-6,
                    bias: fold.then_some(&bias),
                };
                let (cos, sin) = rope_angles(batch, dim, kind, device);
                let mut keys = Tensor::zeros([batch / tokens_per_row, kv_heads, capacity, dim], (kind, device));
                let mut values = keys.zeros_like();
                let slots = if !per_row {
                    Tensor::full([1], 17, (Kind::Int64, device))
                } else if tokens_per_row == 1 {
                    Tensor::randint(capacity, [batch], (Kind::Int64, device))
                } else {
                    let token = Tensor::arange(batch, (Kind::Int64, device));
                    token.remainder(tokens_per_row) * 7 + token.divide_scalar_mode(tokens_per_row, "floor").remainder(5)
                };
                let q = rope_kv_write(&qkv, &cos, &sin, heads, kv_heads, &keys, &values, &slots, &folded).unwrap();
                let x = if fold {
                    folded_reference(&qkv, &norm_input, 1e-6, &bias)
                } else {
                    qkv.to_kind(Kind::Float)
                }
                .view([batch, heads + 2 * kv_heads, dim]);
                let (c, s) = (
                    cos.to_kind(Kind::Float).unsqueeze(1),
                    sin.to_kind(Kind::Float).unsqueeze(1),
                );
                let expected = rotate_half_reference(&x.narrow(1, 0, heads + kv_heads), &c, &s);
                let rows = Tensor::arange(batch, (Kind::Int64, device)).divide_scalar_mode(tokens_per_row, "floor");
                let row_slots = slots.expand([batch], false);
                let index = [Some(rows.shallow_clone()), None, Some(row_slots.shallow_clone())];
                let written_k = keys.index(&index);
                let written_v = values.index(&index);
                // |x| ≤ ~5 (~7 folded) and |cos|, |sin| ≤ 1: two products and a sum, rounded once.
                let tolerance = 8.0 * one_rounding(kind);
                let what = format!(
                    "{kind:?} heads {heads}/{kv_heads} dim {dim} per-row slots {per_row}, {tokens_per_row} per row, \
                     folded norm {fold}"
                );
                let dq = max_abs(&q, &expected.narrow(1, 0, heads));
                let dk = max_abs(&written_k, &expected.narrow(1, heads, kv_heads));
                assert!(
                    dq <= tolerance && dk <= tolerance,
                    "{what}: |q diff| {dq}, |k diff| {dk}"
                );
                // Copied exactly, or (folded) rounded once.
                let dv = max_abs(&written_v, &x.narrow(1, heads + kv_heads, kv_heads));
                assert!(dv <= if fold { tolerance } else { 0.0 }, "{what}: |v diff| {dv}");
                // Zero the written slots: nothing else may have changed.
                let _ = keys.index_put_(&index, &Tensor::zeros([1], (kind, device)), false);
                let _ = values.index_put_(&index, &Tensor::zeros([1], (kind, device)), false);
                let untouched = keys.abs().max().double_value(&[]) + values.abs().max().double_value(&[]);
                assert_eq!(untouched, 0.0, "{what}: other slots were written");
            }
        }
    }
}

#[test]
fn attention_with_rope_fused_in_equals_the_two_kernels_bit_for_bit() {
    let Some(device) = gpu() else { return };
    tch::manual_seed(5);
    for kind in [Kind::BFloat16, Kind::Half] {
        for (heads, kv_heads, dim) in [(14i64, 2i64, 64i64), (12, 2, 128), (9, 3, 64)] {
            // One split at batch 256; 2-4 splits for few rows over long histories, the new slot in the last split
            // or (slot 300 of 1000 attended) in an early one.
            for (batch, slot, attended) in [(256i64, 287i64, 384i64), (3, 990, 1000), (5, 300, 1000)] {
                let capacity = 1024i64;
                let starts = Tensor::randint(32, [batch], (Kind::Int64, device));
                let slots = Tensor::full([batch], slot, (Kind::Int64, device));
                let qkv = Tensor::randn([batch, (heads + 2 * kv_heads) * dim], (kind, device));
                let (cos, sin) = rope_angles(batch, dim, kind, device);
                // Stale values at the new slot: the fused kernel must attend to what it writes there.
                let keys = Tensor::randn([batch, kv_heads, capacity, dim], (kind, device));
                let values = Tensor::randn([batch, kv_heads, capacity, dim], (kind, device));
                let (fused_keys, fused_values) = (keys.copy(), values.copy());
                // The engine's layout: the input norm folded into the product, the bias applied in the kernel.
                let (norm_input, bias) = norm_input_and_bias(batch, qkv.size()[1], kind, device);
                let folded = FoldedNorm {
                    input: Some(&norm_input),
                    eps: 1e-6,
                    bias: Some(&bias),
                };
                let q = rope_kv_write(&qkv, &cos, &sin, heads, kv_heads, &keys, &values, &slots, &folded).unwrap();
                let expected = decode_attention(&q, &keys, &values, &starts, &slots, attended).unwrap();
                let got = decode_attention_rope(
                    &qkv,
                    &cos,
                    &sin,
                    heads,
                    &fused_keys,
                    &fused_values,
                    &starts,
                    &slots,
                    attended,
                    &folded,
                )
                .unwrap();
                let what = format!("{kind:?} heads {heads}/{kv_heads} dim {dim} batch {batch} slot {slot}");
                assert!(
                    got.equal(&expected),
                    "{what}: outputs differ by {}",
                    max_abs(&got, &expected)
                );
                assert!(
                    fused_keys.equal(&keys) && fused_values.equal(&values),
                    "{what}: caches differ (keys by {}, values by {})",
                    max_abs(&fused_keys, &keys),
                    max_abs(&fused_values, &values)
                );
            }
        }
    }
}

#[test]
fn silu_mul_matches_the_f32_product() {
    let Some(device) = gpu() else { return };
    tch::manual_seed(3);
    for kind in [Kind::BFloat16, Kind::Float, Kind::Half] {
        for width in [4864i64, 8960, 13] {
            let gate_up = (Tensor::randn([9, 2 * width], (kind, device)) * 3).to_kind(kind);
            // Aligned rows take the 16-byte path; a narrowed view (odd offset and width) the scalar one.
            let odd = gate_up.narrow(1, 1, 2 * (width - 1));
            for (input, w) in [(&gate_up, width), (&odd, width - 1)] {
                // Plain, and with a norm folded into the product and a bias (the engine's layout).
                let (norm_input, bias) = norm_input_and_bias(9, 2 * w, kind, device);
                for fold in [false, true] {
                    let folded = FoldedNorm {
                        input: fold.then_some(&norm_input),
                        eps: 1e-6,
                        bias: fold.then_some(&bias),
                    };
                    let got = silu_mul(input, &folded).unwrap();
                    let x = if fold {
                        folded_reference(input, &norm_input, 1e-6, &bias)
                    } else {
                        input.to_kind(Kind::Float)
                    };
                    let expected = x.narrow(1, 0, w).silu() * x.narrow(1, w, w);
                    let scale = expected.abs().max().double_value(&[]).max(1.0);
                    let diff = max_abs(&got, &expected);
                    assert!(
                        diff <= 2.0 * one_rounding(kind) * scale,
                        "{kind:?} width {w} folded norm {fold}: |diff| {diff} at scale {scale}"
                    );
                }
            }
        }
    }
}

#[test]
fn rope_kv_write_replays_from_a_cuda_graph_at_the_advanced_slot() {
    let Some(device) = gpu() else { return };
    let (batch, heads, kv_heads, dim) = (64i64, 14i64, 2i64, 64i64);
    let qkv = Tensor::randn([batch, (heads + 2 * kv_heads) * dim], (Kind::BFloat16, device));
    let angles = Tensor::rand([batch, dim], (Kind::Float, device));
    let (cos, sin) = (
        angles.cos().to_kind(Kind::BFloat16),
        angles.sin().to_kind(Kind::BFloat16),
    );
    let keys = Tensor::zeros([batch, kv_heads, 32, dim], (Kind::BFloat16, device));
    let values = keys.zeros_like();
    let mut slot = Tensor::full([1], 3, (Kind::Int64, device));
    // The first call compiles the kernel, which a capture cannot do (the engine warms up the same way).
    let _ = rope_kv_write(
        &qkv,
        &cos,
        &sin,
        heads,
        kv_heads,
        &keys.zeros_like(),
        &values.zeros_like(),
        &slot,
        &FoldedNorm::default(),
    )
    .unwrap();
    let mut graph = CudaGraph::new(device).unwrap();
    let q = graph
        .capture(|| {
            rope_kv_write(
                &qkv,
                &cos,
                &sin,
                heads,
                kv_heads,
                &keys,
                &values,
                &slot,
                &FoldedNorm::default(),
            )
        })
        .unwrap()
        .unwrap();
    let _ = slot.g_add_scalar_(5);
    graph.replay().unwrap();
    let at = |cache: &Tensor, s: i64| cache.narrow(2, s, 1).abs().max().double_value(&[]);
    assert!(at(&keys, 8) > 0.0 && at(&values, 8) > 0.0, "the replay wrote slot 8");
    let fresh_keys = keys.zeros_like();
    let fresh_values = keys.zeros_like();
    let none = FoldedNorm::default();
    let fresh = rope_kv_write(
        &qkv,
        &cos,
        &sin,
        heads,
        kv_heads,
        &fresh_keys,
        &fresh_values,
        &slot,
        &none,
    )
    .unwrap();
    assert_eq!(max_abs(&q, &fresh), 0.0);
    assert_eq!(max_abs(&keys.narrow(2, 8, 1), &fresh_keys.narrow(2, 8, 1)), 0.0);
}

#[test]
fn rms_norm_matches_the_f32_norm() {
    let Some(device) = gpu() else { return };
    tch::manual_seed(4);
    for kind in [Kind::BFloat16, Kind::Float, Kind::Half] {
        // 896 and 1536: the 0.5B and 1.5B widths (16-byte path); 8192 is past the register-held row (scalar path).
        for width in [896i64, 1536, 8192] {
            let x = (Tensor::randn([33, width + 1], (kind, device)) * 4).to_kind(kind);
            let weight = (Tensor::rand([width + 1], (Kind::Float, device)) + 0.5).to_kind(kind);
            // A narrowed view (odd offset) takes the scalar path too.
            for (input, w) in [
                (
                    x.narrow(1, 0, width).contiguous(),
                    weight.narrow(0, 0, width).contiguous(),
                ),
                (x.narrow(1, 1, width), weight.narrow(0, 1, width).contiguous()),
            ] {
                let got = rms_norm(&input, &w, 1e-6).unwrap();
                let x32 = input.to_kind(Kind::Float);
                let expected =
                    &x32 * (x32.square().mean_dim(-1, true, Kind::Float) + 1e-6).rsqrt() * w.to_kind(Kind::Float);
                let scale = expected.abs().max().double_value(&[]).max(1.0);
                let diff = max_abs(&got, &expected);
                assert!(
                    diff <= 2.0 * one_rounding(kind) * scale,
                    "{kind:?} width {width}: |diff| {diff} at scale {scale}"
                );
            }
        }
    }
}
