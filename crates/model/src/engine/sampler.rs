//! Choosing the next token on the device: greedy, temperature, top-k and top-p, by inverse-CDF sampling with one
//! externally supplied uniform per row (see [`super::rng`]), so no device RNG state is involved.
//!
//! On CUDA, greedy and plain temperature sampling (the RL case) can run as one kernel that reads each row of
//! logits once ([`seekmath_shim::sample_rows`]); the ATen code below is the reference it is checked against and
//! the path for CPU and for top-p/top-k.

use anyhow::{Context, Result};
use tch::{Kind, Tensor};

use super::params::SamplingParams;

/// Picks one token per row of `logits` [B, V] (any float kind) and returns (tokens `[B]` i64, log-probs `[B]` f32),
/// the log-probs taken from the unfiltered temperature-1 distribution. `uniforms` `[B]` f32 in (0, 1) on the same
/// device. Static shapes and no host sync, so it can be recorded in a CUDA graph with the decode step. With
/// `kernel` (CUDA logits; see [`seekmath_shim::cuda_kernels_status`]), greedy and unfiltered temperature sampling
/// use the one-pass kernel: the same rule, so the same tokens up to the summation order's rounding at a CDF
/// boundary.
pub fn sample(logits: &Tensor, params: &SamplingParams, uniforms: &Tensor, kernel: bool) -> Result<(Tensor, Tensor)> {
    if kernel_takes(logits, params, kernel) {
        return seekmath_shim::sample_rows(logits, uniforms, params.temperature, params.is_greedy())
            .context("seekmath sampler kernel");
    }
    Ok(sample_aten(logits, params, uniforms))
}

/// Whether [`sample`] runs the one-pass kernel for these logits and settings (`kernel`: the caller allows it).
pub fn kernel_takes(logits: &Tensor, params: &SamplingParams, kernel: bool) -> bool {
    kernel && logits.device().is_cuda() && (params.is_greedy() || params.is_unfiltered(logits.size()[1]))
}

/// [`sample`] in ATen ops (any device, every filter).
fn sample_aten(logits: &Tensor, params: &SamplingParams, uniforms: &Tensor) -> (Tensor, Tensor) {
    let (tokens, log_normaliser) = if params.is_greedy() {
        let logits = logits.to_kind(Kind::Float);
        (logits.argmax(-1, true), logits.logsumexp([-1], true))
    } else if params.is_unfiltered(logits.size()[1]) {
        sample_unfiltered(logits, params.temperature, uniforms)
    } else {
        let logits = logits.to_kind(Kind::Float);
        (
            sample_tokens(&logits, params, uniforms).unsqueeze(-1),
            logits.logsumexp([-1], true),
        )
    };
    let logprobs = logits.gather(-1, &tokens, false).to_kind(Kind::Float) - log_normaliser;
    (tokens.squeeze_dim(-1), logprobs.squeeze_dim(-1))
}

/// Plain temperature sampling, the RL case, in few passes over the vocabulary: the inverse CDF runs on
/// unnormalised weights `exp((l - max) / T)` (see [`inverse_cdf`]), and at T = 1 their total also gives the
/// log-normaliser `max + ln(total)`. Returns (tokens [B,1], log-normaliser [B,1]).
fn sample_unfiltered(logits: &Tensor, temperature: f64, uniforms: &Tensor) -> (Tensor, Tensor) {
    let (max, argmax) = logits.max_dim(-1, true);
    let max = max.to_kind(Kind::Float);
    // bf16 logits minus an f32 max promote to f32 in the same pass.
    let shifted = logits - &max;
    let mut weights = if temperature == 1.0 {
        shifted.exp()
    } else {
        (&shifted / temperature).exp()
    };
    let (pick, total) = inverse_cdf(&mut weights, &uniforms.to_kind(Kind::Float).unsqueeze(-1));
    // Rounding of `u · total` can land past the last non-zero weight; take the most likely token then.
    let tokens = pick.where_self(&weights.gather(-1, &pick, false).gt(0.0), &argmax);
    let log_normaliser = if temperature == 1.0 {
        total.log() + max
    } else {
        shifted.logsumexp([-1], true) + max
    };
    (tokens, log_normaliser)
}

/// Block width of the two-level inverse CDF for a vocabulary: the divisor of `vocab` in 64..=4096 closest to
/// √vocab (None if there is none, e.g. a prime vocabulary size).
fn block_width(vocab: i64) -> Option<i64> {
    let root = (vocab as f64).sqrt();
    (64..=4096.min(vocab / 2))
        .filter(|w| vocab % w == 0)
        .min_by(|a, b| ((*a as f64) - root).abs().total_cmp(&((*b as f64) - root).abs()))
}

/// The first index whose running sum of `weights` [B,V] (≥ 0) exceeds `fraction` [B,1] (in (0, 1)) of the row's
/// total, clamped to V - 1; returns (indices [B,1], totals [B,1]).
///
/// A cumulative sum over the whole vocabulary writes a [B,V] f32 tensor and is the slowest kernel of a large-batch
/// decode step (a 152k-token vocabulary at batch 256: ~0.3 ms of ~3.6 ms on an H200). Two levels need one read of
/// the weights instead: block sums, a running sum over the few blocks, a search for the block, then a running sum
/// inside that one block. The same index as the flat search up to the summation order's rounding.
fn inverse_cdf(weights: &mut Tensor, fraction: &Tensor) -> (Tensor, Tensor) {
    let (rows, vocab) = weights.size2().expect("weights must be [B,V]");
    let Some(width) = block_width(vocab) else {
        let cdf = weights.cumsum(-1, Kind::Float);
        let total = cdf.narrow(1, vocab - 1, 1);
        let pick = (fraction * &total)
            .searchsorted(&cdf, false, true, "right", None::<Tensor>)
            .clamp_max(vocab - 1);
        return (pick, total);
    };
    let blocks = vocab / width;
    let by_block = weights.view([rows, blocks, width]);
    let outer = by_block.sum_dim_intlist(-1, false, Kind::Float).cumsum(-1, Kind::Float);
    let total = outer.narrow(1, blocks - 1, 1);
    let target = fraction * &total;
    let block = target
        .searchsorted(&outer, false, true, "right", None::<Tensor>)
        .clamp_max(blocks - 1);
    let before = outer.gather(-1, &(&block - 1).clamp_min(0), false) * block.gt(0).to_kind(Kind::Float);
    let inner = by_block
        .gather(1, &block.unsqueeze(-1).expand([rows, 1, width], false), false)
        .squeeze_dim(1)
        .cumsum(-1, Kind::Float);
    let within = (&target - before)
        .searchsorted(&inner, false, true, "right", None::<Tensor>)
        .clamp_max(width - 1);
    (block * width + within, total)
}

fn sample_tokens(logits: &Tensor, params: &SamplingParams, uniforms: &Tensor) -> Tensor {
    let vocab = logits.size()[1];
    let scaled = logits / params.temperature;
    let use_top_k = params.top_k > 0 && (params.top_k as i64) < vocab;
    let use_top_p = params.top_p < 1.0;
    // Candidates in descending order when a filter needs ranks; `map` takes a candidate column back to a token id.
    let (candidates, map) = if use_top_k {
        let (values, indices) = scaled.topk(params.top_k as i64, -1, true, true);
        (values, Some(indices))
    } else if use_top_p {
        let (values, indices) = scaled.sort(-1, true);
        (values, Some(indices))
    } else {
        (scaled, None)
    };
    let mut probs = candidates.softmax(-1, Kind::Float);
    if use_top_p {
        // Keep a token if the mass strictly before it is below top_p (so the most likely token always stays).
        let before = probs.cumsum(-1, Kind::Float) - &probs;
        probs = &probs * before.lt(params.top_p).to_kind(Kind::Float);
    }
    let cdf = probs.cumsum(-1, Kind::Float);
    let width = cdf.size()[1];
    let total = cdf.narrow(1, width - 1, 1);
    let target = uniforms.to_kind(Kind::Float).unsqueeze(-1) * &total;
    let pick = target
        .searchsorted(&cdf, false, true, "right", None::<Tensor>)
        .clamp_max(width - 1);
    // Rounding can land the pick on a filtered-out (zero) entry at the very end; take the most likely one then.
    let picked_prob = probs.gather(-1, &pick, false);
    let pick = pick.where_self(&picked_prob.gt(0.0), &probs.argmax(-1, true));
    let tokens = match map {
        Some(map) => map.gather(-1, &pick, false),
        None => pick,
    };
    tokens.squeeze_dim(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f64, top_p: f64, top_k: usize) -> SamplingParams {
        SamplingParams {
            temperature,
            top_p,
            top_k,
            ..Default::default()
        }
    }

    #[test]
    fn inverse_cdf_picks_by_cumulative_mass() {
        let probs = Tensor::from_slice(&[0.1f32, 0.2, 0.3, 0.4])
            .log()
            .unsqueeze(0)
            .repeat([4, 1]);
        let u = Tensor::from_slice(&[0.05f32, 0.15, 0.45, 0.95]);
        let (tokens, logprobs) = sample(&probs, &params(1.0, 1.0, 0), &u, false).unwrap();
        assert_eq!(Vec::<i64>::try_from(&tokens).unwrap(), vec![0, 1, 2, 3]);
        let lp = Vec::<f32>::try_from(&logprobs).unwrap();
        assert!((lp[3] - 0.4f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn two_level_inverse_cdf_matches_the_flat_search() {
        assert_eq!(block_width(151_936), Some(128));
        assert_eq!(block_width(32_000), Some(160));
        assert_eq!(block_width(65_521), None);
        let weights = Tensor::rand([6, 4096], (Kind::Float, tch::Device::Cpu)).pow_tensor_scalar(4);
        let _ = weights.narrow(1, 1000, 900).zero_();
        let u = Tensor::from_slice(&[0.0001f32, 0.2, 0.5, 0.77, 0.9, 0.9999]).unsqueeze(-1);
        let cdf = weights.cumsum(-1, Kind::Float);
        let flat = (&u * cdf.narrow(1, 4095, 1))
            .searchsorted(&cdf, false, true, "right", None::<Tensor>)
            .clamp_max(4095);
        let (two_level, total) = inverse_cdf(&mut weights.shallow_clone(), &u);
        let expected_total = weights.sum_dim_intlist(-1, true, Kind::Float);
        assert!((total - expected_total).abs().max().double_value(&[]) < 1e-2);
        assert_eq!(
            Vec::<i64>::try_from(flat.view([-1])).unwrap(),
            Vec::<i64>::try_from(two_level.view([-1])).unwrap()
        );
        // Never a zero-weight token.
        assert!(
            two_level
                .lt(1000)
                .logical_or(&two_level.ge(1900))
                .all()
                .int64_value(&[])
                == 1
        );
    }

    #[test]
    fn top_p_and_top_k_exclude_the_tail() {
        let probs = Tensor::from_slice(&[0.1f32, 0.2, 0.3, 0.4])
            .log()
            .unsqueeze(0)
            .repeat([3, 1]);
        let u = Tensor::from_slice(&[0.0f32, 0.5, 0.999]);
        // top_p 0.6: {0.4, 0.3} kept (mass before 0.3 is 0.4 < 0.6; before 0.2 is 0.7), renormalised to 0.7.
        let (tokens, _) = sample(&probs, &params(1.0, 0.6, 0), &u, false).unwrap();
        assert_eq!(Vec::<i64>::try_from(&tokens).unwrap(), vec![3, 3, 2]);
        let (tokens, _) = sample(&probs, &params(1.0, 1.0, 1), &u, false).unwrap();
        assert_eq!(Vec::<i64>::try_from(&tokens).unwrap(), vec![3, 3, 3]);
    }

    #[test]
    fn greedy_is_argmax_and_logprob_is_unscaled() {
        let logits = Tensor::from_slice(&[1.0f32, 3.0, 2.0]).unsqueeze(0);
        let (tokens, logprobs) = sample(
            &logits,
            &params(0.0, 1.0, 0),
            &Tensor::zeros([1], (Kind::Float, tch::Device::Cpu)),
            false,
        )
        .unwrap();
        assert_eq!(tokens.int64_value(&[0]), 1);
        let expected = logits.log_softmax(-1, Kind::Float).double_value(&[0, 1]);
        assert!((logprobs.double_value(&[0]) - expected).abs() < 1e-6);
    }

    #[test]
    fn low_temperature_concentrates_on_the_mode() {
        let logits = Tensor::from_slice(&[1.0f32, 1.5, 0.5]).unsqueeze(0).repeat([64, 1]);
        let u = Tensor::linspace(0.001, 0.999, 64, (Kind::Float, tch::Device::Cpu));
        let (tokens, _) = sample(&logits, &params(0.01, 1.0, 0), &u, false).unwrap();
        assert!(Vec::<i64>::try_from(&tokens).unwrap().iter().all(|&t| t == 1));
    }
}
