//! Group-relative advantages (DeepSeekMath §4.1.2 outcome supervision, §4.1.3 process supervision).
//!
//! GRPO replaces PPO's learned value baseline with the group itself: each question gets `G` sampled outputs and
//! an output's advantage is its reward relative to its siblings. This module is pure arithmetic on `f64`
//! (no tensors), so the estimators are easy to test by hand and reusable by every trainer in the crate.

use serde::{Deserialize, Serialize};

/// How the centred rewards are scaled (TRL's `scale_rewards`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RewardScaling {
    /// Divide by the group's standard deviation: the paper's `(r − mean(r)) / std(r)`.
    #[default]
    Group,
    /// Divide by the standard deviation over the whole batch (centring stays per group).
    Batch,
    /// No scaling, only centring: Dr. GRPO, which argues the std term biases towards easy/hard questions.
    None,
}

/// Options of the outcome-supervision estimator.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdvantageOptions {
    /// Scaling of the centred rewards.
    pub scaling: RewardScaling,
    /// Added to the standard deviation before dividing (TRL uses 1e-4), so a zero-variance group gives 0.
    pub std_epsilon: f64,
}

impl Default for AdvantageOptions {
    fn default() -> Self {
        Self {
            scaling: RewardScaling::Group,
            std_epsilon: 1e-4,
        }
    }
}

/// Which advantage estimator a GRPO run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AdvantageEstimator {
    /// One reward per output, broadcast to all its tokens (§4.1.2).
    #[default]
    Outcome,
    /// One reward per reasoning step; a token's advantage sums the normalised rewards of the steps ending at or
    /// after it (§4.1.3).
    Process,
}

/// Outcome-supervised advantages of one batch plus the group statistics the trainer logs.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupAdvantages {
    /// One advantage per output, in input order (group-major).
    pub advantages: Vec<f64>,
    /// Per group: true when all its rewards are equal, so every advantage is 0 and the group teaches nothing.
    pub zero_variance: Vec<bool>,
    /// Per group: mean reward.
    pub group_mean: Vec<f64>,
    /// Per group: standard deviation of the rewards (Bessel-corrected, like `torch.std`).
    pub group_std: Vec<f64>,
}

impl GroupAdvantages {
    /// Fraction of groups whose rewards are all equal.
    pub fn zero_variance_fraction(&self) -> f64 {
        if self.zero_variance.is_empty() {
            return 0.0;
        }
        self.zero_variance.iter().filter(|z| **z).count() as f64 / self.zero_variance.len() as f64
    }
}

/// Mean and Bessel-corrected standard deviation (0 for fewer than two values).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, var.sqrt())
}

/// `(r − mean_group) / (std + ε)` for rewards laid out group-major (`rewards.len() = groups × group_size`).
pub fn outcome_advantages(
    rewards: &[f64],
    group_size: usize,
    options: &AdvantageOptions,
) -> anyhow::Result<GroupAdvantages> {
    anyhow::ensure!(group_size > 0, "group size must be positive");
    anyhow::ensure!(
        rewards.len() % group_size == 0,
        "{} rewards do not split into groups of {group_size}",
        rewards.len()
    );
    let (_, batch_std) = mean_std(rewards);
    let mut out = GroupAdvantages {
        advantages: Vec::with_capacity(rewards.len()),
        zero_variance: Vec::new(),
        group_mean: Vec::new(),
        group_std: Vec::new(),
    };
    for group in rewards.chunks(group_size) {
        let (mean, std) = mean_std(group);
        let scale = match options.scaling {
            RewardScaling::Group => Some(std),
            RewardScaling::Batch => Some(batch_std),
            RewardScaling::None => None,
        };
        for r in group {
            let centred = r - mean;
            out.advantages.push(match scale {
                Some(s) => centred / (s + options.std_epsilon),
                None => centred,
            });
        }
        out.zero_variance
            .push(group.iter().all(|r| (r - group[0]).abs() <= 1e-12));
        out.group_mean.push(mean);
        out.group_std.push(std);
    }
    Ok(out)
}

/// One scored reasoning step of an output: the index of its last token in the completion and its reward.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReward {
    /// Index (0-based, into the completion tokens) of the step's last token.
    pub end_token: usize,
    /// The process reward model's (or label's) score of the step.
    pub reward: f64,
}

/// Process-supervised token advantages for one group (§4.1.3).
///
/// `steps[i]` are the scored steps of output `i` (ordered by `end_token`), `lengths[i]` its completion length.
/// All step rewards of the group are normalised together, `r̃ = (r − mean(R)) / (std(R) + ε)` (or only centred
/// when `options.scaling` is `None`), and the advantage of token `t` is the sum of `r̃` over the steps whose end
/// token is `≥ t`. Tokens after the last step get 0.
pub fn process_advantages(
    steps: &[Vec<StepReward>],
    lengths: &[usize],
    options: &AdvantageOptions,
) -> anyhow::Result<Vec<Vec<f64>>> {
    anyhow::ensure!(
        steps.len() == lengths.len(),
        "steps and lengths differ in number of outputs"
    );
    let all: Vec<f64> = steps.iter().flatten().map(|s| s.reward).collect();
    let (mean, std) = mean_std(&all);
    let normalise = |r: f64| match options.scaling {
        RewardScaling::None => r - mean,
        _ => (r - mean) / (std + options.std_epsilon),
    };
    let mut out = Vec::with_capacity(steps.len());
    for (i, (output_steps, &len)) in steps.iter().zip(lengths).enumerate() {
        let mut adv = vec![0.0; len];
        let mut previous_end = None;
        for s in output_steps {
            anyhow::ensure!(
                s.end_token < len.max(1),
                "output {i}: step ends at token {} ≥ length {len}",
                s.end_token
            );
            anyhow::ensure!(
                previous_end.is_none_or(|p| p < s.end_token),
                "output {i}: steps not strictly ordered"
            );
            previous_end = Some(s.end_token);
        }
        // Suffix sum over steps: walk steps from last to first, filling the tokens each one covers.
        let mut running = 0.0;
        let mut upper = len;
        for (k, s) in output_steps.iter().enumerate().rev() {
            running += normalise(s.reward);
            let lower = if k == 0 { 0 } else { output_steps[k - 1].end_token + 1 };
            let end = (s.end_token + 1).min(upper);
            for a in adv.iter_mut().take(end).skip(lower) {
                *a = running;
            }
            upper = lower;
        }
        out.push(adv);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn outcome_matches_hand_computation() {
        // Group 1: rewards 1,0,0,1 → mean 0.5, unbiased std = sqrt(1/3).
        // Group 2: all ones → zero variance, advantages 0.
        let r = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let a = outcome_advantages(&r, 4, &AdvantageOptions::default()).unwrap();
        let s = (1.0f64 / 3.0).sqrt();
        assert!(close(a.advantages[0], 0.5 / (s + 1e-4)));
        assert!(close(a.advantages[1], -0.5 / (s + 1e-4)));
        assert!(a.advantages[4..].iter().all(|v| *v == 0.0));
        assert_eq!(a.zero_variance, vec![false, true]);
        assert!(close(a.zero_variance_fraction(), 0.5));
    }

    #[test]
    fn dr_grpo_only_centres() {
        let r = [2.0, 0.0, 1.0];
        let opts = AdvantageOptions {
            scaling: RewardScaling::None,
            ..Default::default()
        };
        let a = outcome_advantages(&r, 3, &opts).unwrap();
        assert_eq!(a.advantages, vec![1.0, -1.0, 0.0]);
    }

    #[test]
    fn batch_scaling_uses_batch_std() {
        let r = [1.0, 0.0, 3.0, 3.0];
        let opts = AdvantageOptions {
            scaling: RewardScaling::Batch,
            std_epsilon: 0.0,
        };
        let a = outcome_advantages(&r, 2, &opts).unwrap();
        let (_, s) = mean_std(&r);
        assert!(close(a.advantages[0], 0.5 / s));
        assert!(close(a.advantages[2], 0.0));
    }

    #[test]
    fn ragged_batch_is_an_error() {
        assert!(outcome_advantages(&[1.0, 2.0, 3.0], 2, &AdvantageOptions::default()).is_err());
    }

    #[test]
    fn process_advantages_by_hand() {
        // Output A: 5 tokens, steps ending at tokens 1 and 4 with rewards 1 and 0.
        // Output B: 3 tokens, one step ending at token 2 with reward 1... and a trailing token-free tail none.
        // R = {1, 0, 1}: mean 2/3, unbiased std = sqrt(1/3). Without ε for a clean check.
        let steps = vec![
            vec![
                StepReward {
                    end_token: 1,
                    reward: 1.0,
                },
                StepReward {
                    end_token: 4,
                    reward: 0.0,
                },
            ],
            vec![StepReward {
                end_token: 1,
                reward: 1.0,
            }],
        ];
        let opts = AdvantageOptions {
            scaling: RewardScaling::Group,
            std_epsilon: 0.0,
        };
        let adv = process_advantages(&steps, &[5, 3], &opts).unwrap();
        let s = (1.0f64 / 3.0).sqrt();
        let hi = (1.0 - 2.0 / 3.0) / s; // normalised reward of a correct step
        let lo = (0.0 - 2.0 / 3.0) / s;
        let want_a = [hi + lo, hi + lo, lo, lo, lo];
        for (g, w) in adv[0].iter().zip(want_a) {
            assert!(close(*g, w), "{:?}", adv[0]);
        }
        // Output B: tokens 0..=1 covered by its one step, token 2 after the last step gets 0.
        assert!(
            close(adv[1][0], hi) && close(adv[1][1], hi) && adv[1][2] == 0.0,
            "{:?}",
            adv[1]
        );
    }

    #[test]
    fn process_rejects_unordered_steps() {
        let steps = vec![vec![
            StepReward {
                end_token: 3,
                reward: 1.0,
            },
            StepReward {
                end_token: 1,
                reward: 0.0,
            },
        ]];
        assert!(process_advantages(&steps, &[5], &AdvantageOptions::default()).is_err());
    }
}
