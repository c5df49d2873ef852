//! PPO for LLMs as DeepSeekMath §4.1 describes it (eq. 1–2): a learned value model, a per-token KL penalty to the
//! reference folded into the reward, generalised advantage estimation, the clipped surrogate for the policy and a
//! clipped value loss for the critic.
//!
//! ```text
//! r_t = r_φ(q, o) · [t = last] − β_KL · (log π_old(o_t) − log π_ref(o_t))
//! A_t = GAE(γ, λ) of r with the value model's V_t;  R_t = A_t + V_t
//! L_V = ½ · mean_t max((V_t − R_t)², (V_old,t + clip(V_t − V_old,t, ±ε_V) − R_t)²)
//! ```
//!
//! The value model is the policy architecture with a scalar head ([`crate::reward_model::RewardModel`]), read at
//! the position that predicts each completion token (the state before the token).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::paradigm::gae;

/// PPO settings (`[method.ppo]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PpoOptions {
    /// Discount γ.
    pub gamma: f64,
    /// GAE λ.
    pub lambda: f64,
    /// Per-token KL penalty β_KL in the reward.
    pub kl_coef: f64,
    /// Value clip range ε_V.
    pub value_clip: f64,
    /// Value model learning rate.
    pub value_lr: f64,
    /// Normalise advantages to zero mean and unit variance over the batch's tokens.
    pub whiten_advantages: bool,
}

impl Default for PpoOptions {
    fn default() -> Self {
        Self {
            gamma: 1.0,
            lambda: 0.95,
            kl_coef: 0.04,
            value_clip: 0.2,
            value_lr: 1e-5,
            whiten_advantages: true,
        }
    }
}

/// Per-token rewards of one completion: the KL penalty at every token and the outcome reward at the last one.
pub fn token_rewards(outcome: f64, old_logprobs: &[f64], ref_logprobs: &[f64], kl_coef: f64) -> Vec<f64> {
    let mut r: Vec<f64> = old_logprobs
        .iter()
        .zip(ref_logprobs)
        .map(|(o, f)| -kl_coef * (o - f))
        .collect();
    if let Some(last) = r.last_mut() {
        *last += outcome;
    }
    r
}

/// Advantages and returns of every completion (GAE per trajectory, terminal value 0), optionally whitened over all
/// tokens of the batch (returns are never whitened).
pub fn batch_advantages(
    rewards: &[Vec<f64>],
    values: &[Vec<f64>],
    options: &PpoOptions,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let (mut advantages, returns): (Vec<Vec<f64>>, Vec<Vec<f64>>) = rewards
        .iter()
        .zip(values)
        .map(|(r, v)| gae(r, v, options.gamma, options.lambda))
        .unzip();
    if options.whiten_advantages {
        let all: Vec<f64> = advantages.iter().flatten().copied().collect();
        let n = all.len().max(1) as f64;
        let mean = all.iter().sum::<f64>() / n;
        // Bessel-corrected variance and rsqrt(var + 1e-8), as TRL's `masked_whiten` did for its PPO trainer.
        let var = all.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        let scale = 1.0 / (var + 1e-8).sqrt();
        for a in advantages.iter_mut().flatten() {
            *a = (*a - mean) * scale;
        }
    }
    (advantages, returns)
}

/// The clipped value loss over masked `[B, T]` tensors: `½ · masked mean of max(unclipped², clipped²)`.
pub fn clipped_value_loss(values: &Tensor, old_values: &Tensor, returns: &Tensor, mask: &Tensor, clip: f64) -> Tensor {
    let clipped = old_values + (values - old_values).clamp(-clip, clip);
    let unclipped_err = (values - returns).square();
    let clipped_err = (clipped - returns).square();
    let per_token = unclipped_err.maximum(&clipped_err);
    (per_token * mask).sum(Kind::Float) / mask.sum(Kind::Float).clamp_min(1.0) * 0.5
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_rewards_put_the_outcome_last() {
        let r = token_rewards(1.0, &[-1.0, -2.0], &[-1.5, -2.0], 0.1);
        assert!((r[0] + 0.05).abs() < 1e-12);
        assert!((r[1] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn whitened_advantages_have_zero_mean_unit_variance() {
        let rewards = vec![vec![0.0, 0.0, 1.0], vec![0.0, 0.0]];
        let values = vec![vec![0.2, 0.3, 0.4], vec![0.1, 0.5]];
        let (a, ret) = batch_advantages(&rewards, &values, &PpoOptions::default());
        let all: Vec<f64> = a.iter().flatten().copied().collect();
        let mean = all.iter().sum::<f64>() / 5.0;
        let var = all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0;
        assert!(mean.abs() < 1e-9 && (var - 1.0).abs() < 1e-6);
        // Returns: γ = 1, λ = 0.95 on trajectory 2 = [r0 + V1 + ... ] by the recursion; last return = reward.
        assert!((ret[1][1] - 0.0).abs() < 1e-12 && (ret[0][2] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn value_loss_clips_by_hand() {
        let v = Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]);
        let old = Tensor::from_slice(&[0.5f32, 0.0]).view([1, 2]);
        let ret = Tensor::from_slice(&[2.0f32, 1.0]).view([1, 2]);
        let mask = Tensor::from_slice(&[1.0f32, 1.0]).view([1, 2]);
        // Token 0: unclipped (1−2)² = 1, clipped V = 0.7 → 1.69: max 1.69. Token 1: 1 and 1.
        let loss = clipped_value_loss(&v, &old, &ret, &mask, 0.2).double_value(&[]);
        assert!((loss - 0.5 * (1.69 + 1.0) / 2.0).abs() < 1e-6, "{loss}");
    }
}
