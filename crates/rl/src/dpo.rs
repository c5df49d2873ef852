//! Direct preference optimisation (Rafailov et al. 2023) as DeepSeekMath §5.2 runs it: offline pairs of SFT-model
//! samples for the same question, the correct one preferred over a wrong one, and the sigmoid loss
//!
//! ```text
//! L = −log σ(β·[(log π(o⁺) − log π_ref(o⁺)) − (log π(o⁻) − log π_ref(o⁻))])
//! ```
//!
//! with sequence log-probabilities summed over completion tokens (TRL's `loss_type="sigmoid"`, checked against
//! TRL's `DPOTrainer._compute_loss` in `tests/dpo_parity.rs`). The reference is the initial policy; its
//! log-probabilities are computed once, before training (TRL's `precompute_ref_log_probs`).

use tch::{Kind, Tensor};

/// The loss of a batch of pairs and detached statistics.
pub struct DpoOutput {
    /// Mean loss over the pairs (0-dim, differentiable).
    pub loss: Tensor,
    /// Fraction of pairs whose implicit reward prefers the chosen output (detached).
    pub reward_accuracy: Tensor,
    /// Mean implicit reward margin `β·(Δ⁺ − Δ⁻)` (detached).
    pub margin: Tensor,
}

/// DPO's sigmoid loss on `[N]` sequence log-probabilities of the chosen and rejected outputs under the policy
/// (`policy_*`, with autograd) and the reference (`ref_*`).
pub fn dpo_loss(
    policy_chosen: &Tensor,
    policy_rejected: &Tensor,
    ref_chosen: &Tensor,
    ref_rejected: &Tensor,
    beta: f64,
) -> DpoOutput {
    let logits = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected);
    let scaled = logits * beta;
    let loss = (-scaled.log_sigmoid()).mean(Kind::Float);
    let _guard = tch::no_grad_guard();
    let detached = scaled.detach();
    DpoOutput {
        loss,
        reward_accuracy: detached.gt(0.0).to_kind(Kind::Float).mean(Kind::Float),
        margin: detached.mean(Kind::Float),
    }
}

/// Preference pairs from the correctness of a question's samples: the i-th correct sample is paired with the i-th
/// wrong one, at most `max_pairs` pairs. Returns `(chosen, rejected)` indices into `correct`.
pub fn preference_pairs(correct: &[bool], max_pairs: usize) -> Vec<(usize, usize)> {
    let good: Vec<usize> = (0..correct.len()).filter(|&i| correct[i]).collect();
    let bad: Vec<usize> = (0..correct.len()).filter(|&i| !correct[i]).collect();
    good.into_iter().zip(bad).take(max_pairs).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_by_hand_and_its_gradient_is_the_paradigm_coefficient() {
        let beta = 0.1;
        let pc = Tensor::from_slice(&[-12.0f32, -3.0]).set_requires_grad(true);
        let pr = Tensor::from_slice(&[-9.5f32, -4.0]).set_requires_grad(true);
        let rc = Tensor::from_slice(&[-11.0f32, -3.5]);
        let rr = Tensor::from_slice(&[-10.0f32, -3.5]);
        let out = dpo_loss(&pc, &pr, &rc, &rr, beta);
        let m0 = beta * ((-12.0 + 11.0) - (-9.5 + 10.0));
        let m1 = beta * ((-3.0 + 3.5) - (-4.0 + 3.5));
        let nls = |x: f64| (1.0 + (-x).exp()).ln();
        let want = (nls(m0) + nls(m1)) / 2.0;
        assert!((out.loss.double_value(&[]) - want).abs() < 1e-6);
        assert_eq!(out.reward_accuracy.double_value(&[]), 0.5);
        out.loss.backward();
        let (wc, wr) = crate::paradigm::dpo_coefficients(beta, -12.0, -9.5, -11.0, -10.0);
        // Mean over 2 pairs: gradient = −coefficient / 2.
        assert!((pc.grad().double_value(&[0]) + wc / 2.0).abs() < 1e-6);
        assert!((pr.grad().double_value(&[0]) + wr / 2.0).abs() < 1e-6);
    }

    #[test]
    fn pairs_match_correct_with_wrong() {
        assert_eq!(
            preference_pairs(&[true, false, false, true, true], 5),
            vec![(0, 1), (3, 2)]
        );
        assert_eq!(preference_pairs(&[true, true], 5), vec![]);
        assert_eq!(preference_pairs(&[false, true, false, true], 1), vec![(1, 0)]);
    }
}
