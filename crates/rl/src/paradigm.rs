//! The unified paradigm of DeepSeekMath §5.2: every method's gradient is
//!
//! ```text
//! ∇J = E_{(q,o)∼D} [ 1/|o| Σ_t GC(q, o, t, π_rf) ∇ log π_θ(o_t | q, o_<t) ]
//! ```
//!
//! with three knobs: the data source `D` (offline samples of the SFT model, or online samples of the current
//! policy), the reward function `π_rf` (rule or model), and the gradient coefficient `GC`. This module names the
//! methods by those knobs and computes each method's gradient coefficient, so the trainers can share one
//! "weighted log-likelihood" update. The GRPO coefficient is checked against the autograd gradient of [`crate::loss`].

use serde::{Deserialize, Serialize};

/// Where the training outputs come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSource {
    /// Fixed data: human SFT data, or samples of the SFT model drawn once (RFT, DPO).
    Offline,
    /// Samples of the current policy, drawn every step (online RFT, PPO, GRPO).
    Online,
}

/// The methods of §5.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Supervised fine-tuning on human-selected outputs.
    Sft,
    /// Rejection-sampling fine-tuning: SFT-model samples filtered by answer correctness.
    Rft,
    /// RFT with samples of the current policy.
    OnlineRft,
    /// Direct preference optimisation on (correct, wrong) pairs of SFT-model samples.
    Dpo,
    /// PPO with a learned value model and GAE.
    Ppo,
    /// GRPO: group-relative advantages, no value model.
    Grpo,
}

impl Method {
    /// The method's data source.
    pub fn data_source(self) -> DataSource {
        match self {
            Method::Sft | Method::Rft | Method::Dpo => DataSource::Offline,
            Method::OnlineRft | Method::Ppo | Method::Grpo => DataSource::Online,
        }
    }

    /// The method's reward function, in words.
    pub fn reward_function(self) -> &'static str {
        match self {
            Method::Sft => "none (human-selected data)",
            Method::Rft | Method::OnlineRft | Method::Dpo => "rule (answer correctness)",
            Method::Ppo | Method::Grpo => "model or rule",
        }
    }

    /// The method's gradient coefficient, in words.
    pub fn gradient_coefficient(self) -> &'static str {
        match self {
            Method::Sft => "1",
            Method::Rft | Method::OnlineRft => "1 if the answer is correct, else 0",
            Method::Dpo => "±β·σ(β·log π/π_ref(o⁻) − β·log π/π_ref(o⁺)) (+ for the preferred, − for the rejected)",
            Method::Ppo => "GAE advantage A_t (value model)",
            Method::Grpo => "Â_{i,t} + β·(π_ref/π_θ − 1)",
        }
    }
}

/// RFT and online RFT: coefficient 1 for outputs with a correct answer, 0 otherwise (they only differ in
/// [`DataSource`]).
pub fn rft_coefficients(correct: &[bool]) -> Vec<f64> {
    correct.iter().map(|&c| if c { 1.0 } else { 0.0 }).collect()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// DPO's gradient coefficients `(chosen, rejected)` for one pair, from sequence log-probabilities under the policy
/// and the reference: the exact gradient of `−log σ(β·(Δ⁺ − Δ⁻))`, `Δ = log π − log π_ref`, with respect to
/// `log π(o⁺)` and `log π(o⁻)`, negated (ascent direction). The paper writes it without the constant β.
pub fn dpo_coefficients(
    beta: f64,
    policy_chosen: f64,
    policy_rejected: f64,
    ref_chosen: f64,
    ref_rejected: f64,
) -> (f64, f64) {
    let margin = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected));
    let w = beta * sigmoid(-margin);
    (w, -w)
}

/// GRPO's per-token coefficient at π_old = π_θ: `Â + β·(π_ref/π_θ − 1)` (the clipped surrogate has gradient Â at
/// ratio 1; the k3 KL term contributes `−β·(1 − π_ref/π_θ)`).
pub fn grpo_coefficient(advantage: f64, beta: f64, logprob: f64, ref_logprob: f64) -> f64 {
    advantage + beta * ((ref_logprob - logprob).exp() - 1.0)
}

/// Generalised advantage estimation (Schulman et al. 2016) over one trajectory.
///
/// `rewards[t]` is the reward after token `t` (for LLM RL: the KL penalty per token plus the outcome reward at the
/// last token), `values[t]` the value model's estimate at `t`; the value after the last token is 0 (episode end).
/// Returns `(advantages, returns)` with `returns = advantages + values`.
pub fn gae(rewards: &[f64], values: &[f64], gamma: f64, lambda: f64) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(rewards.len(), values.len(), "one value per reward");
    let n = rewards.len();
    let mut advantages = vec![0.0; n];
    let mut running = 0.0;
    for t in (0..n).rev() {
        let next_value = if t + 1 < n { values[t + 1] } else { 0.0 };
        let delta = rewards[t] + gamma * next_value - values[t];
        running = delta + gamma * lambda * running;
        advantages[t] = running;
    }
    let returns = advantages.iter().zip(values).map(|(a, v)| a + v).collect();
    (advantages, returns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{grpo_loss, GrpoLossOptions, PolicyTerms, StepTotals};
    use tch::{Kind, Tensor};

    #[test]
    fn rft_and_online_rft_coefficients() {
        assert_eq!(rft_coefficients(&[true, false, true]), vec![1.0, 0.0, 1.0]);
        assert_eq!(Method::Rft.data_source(), DataSource::Offline);
        assert_eq!(Method::OnlineRft.data_source(), DataSource::Online);
        assert_eq!(
            Method::Rft.gradient_coefficient(),
            Method::OnlineRft.gradient_coefficient()
        );
    }

    /// GAE by its definition `A_t = Σ_l (γλ)^l δ_{t+l}`, written independently of the recursion.
    fn gae_by_definition(rewards: &[f64], values: &[f64], gamma: f64, lambda: f64) -> Vec<f64> {
        let n = rewards.len();
        let v = |t: usize| if t < n { values[t] } else { 0.0 };
        let delta: Vec<f64> = (0..n).map(|t| rewards[t] + gamma * v(t + 1) - v(t)).collect();
        (0..n)
            .map(|t| (t..n).map(|k| (gamma * lambda).powi((k - t) as i32) * delta[k]).sum())
            .collect()
    }

    #[test]
    fn gae_matches_the_definition_and_hand_values() {
        let r = [0.0, -0.01, 0.02, 1.0];
        let v = [0.5, 0.4, 0.7, 0.9];
        for (g, l) in [(1.0, 0.95), (0.99, 0.9), (1.0, 1.0), (0.9, 0.0)] {
            let (a, ret) = gae(&r, &v, g, l);
            for (x, y) in a.iter().zip(gae_by_definition(&r, &v, g, l)) {
                assert!((x - y).abs() < 1e-12);
            }
            for t in 0..4 {
                assert!((ret[t] - (a[t] + v[t])).abs() < 1e-12);
            }
        }
        // γ = λ = 1: the advantage is the reward-to-go minus the value.
        let (a, _) = gae(&r, &v, 1.0, 1.0);
        assert!((a[0] - (1.01 - 0.5)).abs() < 1e-12);
        // λ = 0: one-step TD error.
        let (a, _) = gae(&r, &v, 1.0, 0.0);
        assert!((a[1] - (-0.01 + 0.7 - 0.4)).abs() < 1e-12);
    }

    #[test]
    fn dpo_coefficient_is_the_loss_gradient() {
        let beta = 0.1;
        let (pc, pr, rc, rr) = (-12.0, -9.5, -11.0, -10.0);
        let chosen = Tensor::from_slice(&[pc]).set_requires_grad(true);
        let rejected = Tensor::from_slice(&[pr]).set_requires_grad(true);
        let margin = ((&chosen - rc) - (&rejected - rr)) * beta;
        let loss = -margin.log_sigmoid().sum(Kind::Double);
        loss.backward();
        let (wc, wr) = dpo_coefficients(beta, pc, pr, rc, rr);
        assert!((wc + chosen.grad().double_value(&[0])).abs() < 1e-12);
        assert!((wr + rejected.grad().double_value(&[0])).abs() < 1e-12);
        assert!(wc > 0.0 && wr < 0.0);
    }

    #[test]
    fn grpo_coefficient_is_the_loss_gradient() {
        let (adv, beta, lp, rlp) = (0.7f64, 0.04f64, -1.3f64, -0.9f64);
        let logp = Tensor::from_slice(&[lp as f32]).view([1, 1]).set_requires_grad(true);
        let reference = Tensor::from_slice(&[rlp as f32]).view([1, 1]);
        let a = Tensor::from_slice(&[adv as f32]);
        let mask = Tensor::ones([1, 1], (Kind::Float, tch::Device::Cpu));
        let terms = PolicyTerms {
            logprobs: &logp,
            old_logprobs: None,
            ref_logprobs: Some(&reference),
            advantages: &a,
            mask: &mask,
        };
        let opts = GrpoLossOptions {
            beta,
            ..Default::default()
        };
        grpo_loss(&terms, &opts, StepTotals::of_mask(&mask))
            .unwrap()
            .loss
            .backward();
        let ascent = -logp.grad().double_value(&[0, 0]);
        assert!((ascent - grpo_coefficient(adv, beta, lp, rlp)).abs() < 1e-6);
    }
}
