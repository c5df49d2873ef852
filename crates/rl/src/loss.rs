//! The GRPO objective (DeepSeekMath §4.1, eq. 3) and its common variants, on tensors.
//!
//! ```text
//! J = 1/G Σ_i 1/|o_i| Σ_t { min(ρ_t Â_t, clip(ρ_t, 1−ε_low, 1+ε_high) Â_t) − β D_KL[π_θ ‖ π_ref] }
//! ρ_t = π_θ(o_t) / π_old(o_t)
//! D_KL ≈ π_ref/π_θ − log(π_ref/π_θ) − 1          (Schulman's k3 estimator, unbiased and ≥ 0)
//! ```
//!
//! The loss is `−J`. Only the normalisation differs between the named variants, and it is written here so that
//! micro-batching with gradient accumulation reproduces the full-batch loss *exactly*: each micro-batch is
//! divided by totals of the whole optimiser step ([`StepTotals`]), not by its own size. With one micro-batch the
//! three aggregations are TRL's `loss_type="grpo"`, `"dapo"` and `"dr_grpo"` (the parity test checks this).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// How per-token losses are reduced to one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LossAggregation {
    /// Mean over each sequence's tokens, then mean over sequences: the paper's eq. 3 (TRL `grpo`).
    #[default]
    Grpo,
    /// Sum over all tokens of the step divided by their number: DAPO's token-level loss (TRL `dapo`).
    Dapo,
    /// Sum over all tokens divided by `sequences × max_completion_length`: Dr. GRPO (TRL `dr_grpo`).
    DrGrpo,
}

/// Hyper-parameters of the clipped, KL-regularised surrogate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpoLossOptions {
    /// Lower clip range ε: ratios below `1 − ε` are clipped.
    pub epsilon: f64,
    /// Upper clip range; `None` means symmetric (`ε`). DAPO's "clip-higher" sets it above ε (e.g. 0.28).
    pub epsilon_high: Option<f64>,
    /// Weight β of the k3 KL penalty to the reference policy (0 disables it and the reference forward).
    pub beta: f64,
    /// Reduction of per-token losses.
    pub aggregation: LossAggregation,
    /// Normaliser of [`LossAggregation::DrGrpo`]: the maximum completion length.
    pub max_completion_length: usize,
    /// Multiply the per-token KL by the importance ratio ρ_t (TRL's `use_bias_correction_kl`, its default), which
    /// makes the k3 estimate unbiased when samples come from π_old rather than π_θ. Off in the paper.
    pub kl_importance_correction: bool,
}

impl Default for GrpoLossOptions {
    fn default() -> Self {
        Self {
            epsilon: 0.2,
            epsilon_high: None,
            beta: 0.04,
            aggregation: LossAggregation::Grpo,
            max_completion_length: 1024,
            kl_importance_correction: false,
        }
    }
}

impl GrpoLossOptions {
    /// The upper clip range actually used.
    pub fn epsilon_high(&self) -> f64 {
        self.epsilon_high.unwrap_or(self.epsilon)
    }
}

/// Totals over the whole optimiser step (all micro-batches), used to normalise each micro-batch's share.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepTotals {
    /// Number of sequences contributing to the step.
    pub sequences: f64,
    /// Number of unmasked completion tokens in the step.
    pub tokens: f64,
}

impl StepTotals {
    /// Totals of a single batch given its `[B, T]` loss mask (one micro-batch per step).
    pub fn of_mask(mask: &Tensor) -> Self {
        Self {
            sequences: mask.size()[0] as f64,
            tokens: mask.to_kind(Kind::Double).sum(Kind::Double).double_value(&[]),
        }
    }
}

/// Inputs of the loss for one micro-batch; all `[B, T]` float32 on one device unless noted.
pub struct PolicyTerms<'a> {
    /// `log π_θ` of the sampled tokens, with autograd.
    pub logprobs: &'a Tensor,
    /// `log π_old`; `None` means the policy has not moved since sampling (μ = 1 first update): `logprobs.detach()`.
    pub old_logprobs: Option<&'a Tensor>,
    /// `log π_ref`; required when β > 0.
    pub ref_logprobs: Option<&'a Tensor>,
    /// Advantages, `[B]` (outcome supervision) or `[B, T]` (process supervision).
    pub advantages: &'a Tensor,
    /// 1 for completion tokens that count, 0 for padding and masked (e.g. truncated) completions.
    pub mask: &'a Tensor,
}

/// The differentiable loss of one micro-batch and detached statistics for logging.
pub struct GrpoLossOutput {
    /// Scalar loss to call `backward` on; summing it over the step's micro-batches gives the step loss.
    pub loss: Tensor,
    /// Masked mean of the per-token k3 KL (0-dim, detached); zero when β = 0 and no reference was given.
    pub kl: Tensor,
    /// Fraction of tokens whose ratio was clipped from below with a negative advantage (detached).
    pub clip_low: Tensor,
    /// Fraction of tokens whose ratio was clipped from above with a positive advantage (detached).
    pub clip_high: Tensor,
    /// Masked number of tokens of this micro-batch (detached).
    pub tokens: Tensor,
}

/// The GRPO surrogate loss of one micro-batch, normalised by the step `totals` (see the module docs).
pub fn grpo_loss(terms: &PolicyTerms, options: &GrpoLossOptions, totals: StepTotals) -> anyhow::Result<GrpoLossOutput> {
    let logp = terms.logprobs;
    let mask = terms.mask.to_kind(Kind::Float);
    let old = match terms.old_logprobs {
        Some(old) => old.shallow_clone(),
        None => logp.detach(),
    };
    let advantages = if terms.advantages.dim() == 1 {
        terms.advantages.unsqueeze(1)
    } else {
        terms.advantages.shallow_clone()
    };
    let ratio = (logp - &old).exp();
    let clipped = ratio.clamp(1.0 - options.epsilon, 1.0 + options.epsilon_high());
    let surrogate = (&ratio * &advantages).minimum(&(&clipped * &advantages));
    let mut per_token = -surrogate;

    let kl = match terms.ref_logprobs {
        Some(reference) => {
            let delta = reference - logp;
            let mut kl = delta.exp() - &delta - 1.0;
            if options.kl_importance_correction {
                kl = kl * &ratio;
            }
            if options.beta != 0.0 {
                per_token = per_token + &kl * options.beta;
            }
            Some(kl)
        }
        None => {
            anyhow::ensure!(
                options.beta == 0.0,
                "β = {} needs reference log-probabilities",
                options.beta
            );
            None
        }
    };

    let masked = &per_token * &mask;
    let loss = match options.aggregation {
        LossAggregation::Grpo => {
            let per_seq = masked.sum_dim_intlist(-1, false, Kind::Float)
                / mask.sum_dim_intlist(-1, false, Kind::Float).clamp_min(1.0);
            per_seq.sum(Kind::Float) / totals.sequences.max(1.0)
        }
        LossAggregation::Dapo => masked.sum(Kind::Float) / totals.tokens.max(1.0),
        LossAggregation::DrGrpo => {
            masked.sum(Kind::Float) / (totals.sequences * options.max_completion_length as f64).max(1.0)
        }
    };

    let _guard = tch::no_grad_guard();
    let tokens = mask.sum(Kind::Float);
    let denom = tokens.clamp_min(1.0);
    let masked_mean = |t: &Tensor| (t * &mask).sum(Kind::Float) / &denom;
    let low = ratio
        .lt(1.0 - options.epsilon)
        .logical_and(&advantages.lt(0.0))
        .to_kind(Kind::Float);
    let high = ratio
        .gt(1.0 + options.epsilon_high())
        .logical_and(&advantages.gt(0.0))
        .to_kind(Kind::Float);
    let kl_mean = kl
        .as_ref()
        .map(|k| masked_mean(&k.detach()))
        .unwrap_or_else(|| Tensor::zeros([], (Kind::Float, mask.device())));
    Ok(GrpoLossOutput {
        loss,
        kl: kl_mean,
        clip_low: masked_mean(&low),
        clip_high: masked_mean(&high),
        tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn t(v: &[f32], shape: [i64; 2]) -> Tensor {
        Tensor::from_slice(v).reshape(shape)
    }

    #[test]
    fn on_policy_loss_is_minus_mean_advantage_and_gradient_is_policy_gradient() {
        // ρ = 1 everywhere: loss = −mean_i(A_i) under seq-mean-token-mean, and d loss / d logp_it = −A_i/(|o_i| G).
        let logp = t(&[-1.0, -2.0, -0.5, -0.1, -0.3, -0.7], [2, 3]).set_requires_grad(true);
        let adv = Tensor::from_slice(&[1.0f32, -2.0]);
        let mask = t(&[1.0, 1.0, 0.0, 1.0, 1.0, 1.0], [2, 3]);
        let terms = PolicyTerms {
            logprobs: &logp,
            old_logprobs: None,
            ref_logprobs: None,
            advantages: &adv,
            mask: &mask,
        };
        let opts = GrpoLossOptions {
            beta: 0.0,
            ..Default::default()
        };
        let out = grpo_loss(&terms, &opts, StepTotals::of_mask(&mask)).unwrap();
        assert!((out.loss.double_value(&[]) - 0.5).abs() < 1e-6);
        out.loss.backward();
        let g: Vec<f32> = Vec::try_from(logp.grad().flatten(0, -1)).unwrap();
        let want = [-0.25, -0.25, 0.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{g:?}");
        }
    }

    #[test]
    fn clipping_stops_gradient_and_is_counted() {
        // Token 0: ratio e^0.5 > 1.2 with A > 0 → clipped (no gradient). Token 1: ratio e^−0.5 < 0.8, A > 0 → not clipped.
        let logp = t(&[0.0, 0.0], [1, 2]).set_requires_grad(true);
        let old = t(&[-0.5, 0.5], [1, 2]);
        let adv = Tensor::from_slice(&[1.0f32]);
        let mask = Tensor::ones([1, 2], (Kind::Float, Device::Cpu));
        let terms = PolicyTerms {
            logprobs: &logp,
            old_logprobs: Some(&old),
            ref_logprobs: None,
            advantages: &adv,
            mask: &mask,
        };
        let opts = GrpoLossOptions {
            beta: 0.0,
            ..Default::default()
        };
        let out = grpo_loss(&terms, &opts, StepTotals::of_mask(&mask)).unwrap();
        let want = -(1.2 + (-0.5f64).exp()) / 2.0;
        assert!((out.loss.double_value(&[]) - want).abs() < 1e-6);
        assert!((out.clip_high.double_value(&[]) - 0.5).abs() < 1e-6);
        assert_eq!(out.clip_low.double_value(&[]), 0.0);
        out.loss.backward();
        let g: Vec<f32> = Vec::try_from(logp.grad().flatten(0, -1)).unwrap();
        assert_eq!(g[0], 0.0);
        assert!((g[1] as f64 + (-0.5f64).exp() / 2.0).abs() < 1e-6);
    }

    #[test]
    fn k3_kl_value_and_gradient() {
        // KL_t = e^{ref−logp} − (ref−logp) − 1 ; d/dlogp = −e^{ref−logp} + 1.
        let logp = t(&[-1.0], [1, 1]).set_requires_grad(true);
        let reference = t(&[-1.5], [1, 1]);
        let adv = Tensor::from_slice(&[0.0f32]);
        let mask = Tensor::ones([1, 1], (Kind::Float, Device::Cpu));
        let terms = PolicyTerms {
            logprobs: &logp,
            old_logprobs: None,
            ref_logprobs: Some(&reference),
            advantages: &adv,
            mask: &mask,
        };
        let opts = GrpoLossOptions {
            beta: 0.5,
            ..Default::default()
        };
        let out = grpo_loss(&terms, &opts, StepTotals::of_mask(&mask)).unwrap();
        let kl = (-0.5f64).exp() + 0.5 - 1.0;
        assert!((out.kl.double_value(&[]) - kl).abs() < 1e-6);
        assert!((out.loss.double_value(&[]) - 0.5 * kl).abs() < 1e-6);
        out.loss.backward();
        let g = logp.grad().double_value(&[0, 0]);
        assert!((g - 0.5 * (1.0 - (-0.5f64).exp())).abs() < 1e-6);
    }

    #[test]
    fn micro_batches_sum_to_the_full_batch_loss() {
        tch::manual_seed(3);
        let logp = Tensor::randn([4, 5], (Kind::Float, Device::Cpu)) * 0.1 - 1.0;
        let old = &logp + Tensor::randn([4, 5], (Kind::Float, Device::Cpu)) * 0.2;
        let reference = &logp + Tensor::randn([4, 5], (Kind::Float, Device::Cpu)) * 0.2;
        let adv = Tensor::from_slice(&[1.0f32, -0.5, 0.3, -1.2]);
        let mask = t(
            &[
                1., 1., 1., 0., 0., 1., 1., 1., 1., 1., 1., 0., 0., 0., 0., 1., 1., 1., 1., 0.,
            ],
            [4, 5],
        );
        let totals = StepTotals::of_mask(&mask);
        for aggregation in [LossAggregation::Grpo, LossAggregation::Dapo, LossAggregation::DrGrpo] {
            let opts = GrpoLossOptions {
                aggregation,
                max_completion_length: 5,
                ..Default::default()
            };
            let full = grpo_loss(
                &PolicyTerms {
                    logprobs: &logp,
                    old_logprobs: Some(&old),
                    ref_logprobs: Some(&reference),
                    advantages: &adv,
                    mask: &mask,
                },
                &opts,
                totals,
            )
            .unwrap()
            .loss
            .double_value(&[]);
            let mut parts = 0.0;
            for (start, len) in [(0, 1), (1, 3)] {
                let n = |x: &Tensor| x.narrow(0, start, len);
                let (lp, o, r, a, m) = (n(&logp), n(&old), n(&reference), n(&adv), n(&mask));
                let terms = PolicyTerms {
                    logprobs: &lp,
                    old_logprobs: Some(&o),
                    ref_logprobs: Some(&r),
                    advantages: &a,
                    mask: &m,
                };
                parts += grpo_loss(&terms, &opts, totals).unwrap().loss.double_value(&[]);
            }
            assert!((full - parts).abs() < 1e-6, "{aggregation:?}: {full} vs {parts}");
        }
    }

    #[test]
    fn beta_without_reference_is_an_error() {
        let logp = Tensor::zeros([1, 1], (Kind::Float, Device::Cpu));
        let adv = Tensor::zeros([1], (Kind::Float, Device::Cpu));
        let terms = PolicyTerms {
            logprobs: &logp,
            old_logprobs: None,
            ref_logprobs: None,
            advantages: &adv,
            mask: &logp,
        };
        assert!(grpo_loss(
            &terms,
            &GrpoLossOptions::default(),
            StepTotals {
                sequences: 1.0,
                tokens: 1.0
            }
        )
        .is_err());
    }
}
