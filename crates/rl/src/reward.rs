//! Reward functions: the rule-based verifier reward of §4 and a trait for plugging in others (reward models,
//! format terms, user code).
//!
//! A reward sees the question, the completion text, the reference answer and whether the completion was cut off
//! by the length limit; it returns a scalar and, when it knows, whether the answer is correct (for the accuracy
//! metric, independent of shaping terms).

use seekmath_verify::extract::{self, AnswerKind};
use seekmath_verify::{Mode, Verifier};
use serde::{Deserialize, Serialize};

/// What a reward function is asked to score.
#[derive(Clone, Copy, Debug)]
pub struct RewardInput<'a> {
    /// The question as shown to the model (without chat template).
    pub question: &'a str,
    /// The generated completion text.
    pub completion: &'a str,
    /// The reference answer (already extracted, e.g. `"42"`).
    pub reference: &'a str,
    /// True when generation stopped at the length limit rather than EOS or a stop string.
    pub truncated: bool,
}

/// A scalar reward plus, when known, the correctness verdict.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RewardOutput {
    /// The reward used for advantages.
    pub reward: f64,
    /// Whether the final answer is right (`None` for rewards that cannot tell, e.g. a reward model).
    pub correct: Option<bool>,
}

/// Anything that scores completions. Implementations must be deterministic for a given input.
pub trait RewardFunction: Send + Sync {
    /// Short name for logs and metrics.
    fn name(&self) -> &str;
    /// Scores one completion.
    fn score(&self, input: &RewardInput) -> RewardOutput;
    /// Scores a batch; override to batch expensive scorers such as reward models.
    fn score_batch(&self, inputs: &[RewardInput]) -> Vec<RewardOutput> {
        inputs.iter().map(|i| self.score(i)).collect()
    }
}

/// Where the final answer may be taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AnswerExtraction {
    /// Boxed, `####`, "The answer is", else the last number (DeepSeek-Math's evaluation fallback).
    #[default]
    Lenient,
    /// Only explicit markers (box, `####`, answer phrases): an unmarked number earns nothing.
    Explicit,
}

/// Settings of [`VerifierReward`] (the `[reward]` table of a GRPO config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifierRewardConfig {
    /// Reward of a correct answer.
    pub correct: f64,
    /// Reward of a wrong or missing answer.
    pub incorrect: f64,
    /// Answer extraction policy.
    pub extraction: AnswerExtraction,
    /// Kind of answer expected: `number` or `expression`.
    pub answer_kind: String,
    /// Added when the completion states its answer with an explicit marker (format term; 0 = off).
    pub format_bonus: f64,
    /// Subtracted when the completion hit the length limit (format term; 0 = off).
    pub truncation_penalty: f64,
}

impl Default for VerifierRewardConfig {
    fn default() -> Self {
        Self {
            correct: 1.0,
            incorrect: 0.0,
            extraction: AnswerExtraction::Lenient,
            answer_kind: "number".into(),
            format_bonus: 0.0,
            truncation_penalty: 0.0,
        }
    }
}

/// The paper's rule-based outcome reward: 1 if the verifier (strict mode) says the final answer equals the
/// reference, else 0, plus optional format terms.
#[derive(Clone, Debug)]
pub struct VerifierReward {
    verifier: Verifier,
    kind: AnswerKind,
    config: VerifierRewardConfig,
}

impl VerifierReward {
    /// A strict-mode verifier reward.
    pub fn new(config: VerifierRewardConfig) -> anyhow::Result<Self> {
        let kind = match config.answer_kind.as_str() {
            "number" => AnswerKind::Number,
            "expression" => AnswerKind::Expression,
            "choice" => AnswerKind::Choice,
            other => anyhow::bail!("reward.answer_kind {other:?}: expected number, expression or choice"),
        };
        Ok(Self {
            verifier: Verifier::new(Mode::Strict),
            kind,
            config,
        })
    }

    /// The answer this reward reads from `completion`, if any.
    pub fn extract(&self, completion: &str) -> Option<String> {
        match self.config.extraction {
            AnswerExtraction::Lenient => extract::extract_answer(completion, self.kind),
            AnswerExtraction::Explicit => extract::primary_answer(completion.trim()),
        }
    }
}

impl RewardFunction for VerifierReward {
    fn name(&self) -> &str {
        "verifier"
    }

    fn score(&self, input: &RewardInput) -> RewardOutput {
        let correct = self
            .extract(input.completion)
            .is_some_and(|pred| self.verifier.is_equivalent(&pred, input.reference));
        let mut reward = if correct {
            self.config.correct
        } else {
            self.config.incorrect
        };
        if self.config.format_bonus != 0.0 && extract::primary_answer(input.completion.trim()).is_some() {
            reward += self.config.format_bonus;
        }
        if input.truncated {
            reward -= self.config.truncation_penalty;
        }
        RewardOutput {
            reward,
            correct: Some(correct),
        }
    }
}

/// A weighted sum of reward functions (e.g. verifier + reward model, §4.1 "mixed" outcome supervision).
/// Correctness is taken from the first component that reports it.
pub struct WeightedRewards {
    parts: Vec<(f64, Box<dyn RewardFunction>)>,
}

impl WeightedRewards {
    /// Combines `(weight, reward)` pairs.
    pub fn new(parts: Vec<(f64, Box<dyn RewardFunction>)>) -> Self {
        Self { parts }
    }
}

impl RewardFunction for WeightedRewards {
    fn name(&self) -> &str {
        "weighted"
    }

    fn score(&self, input: &RewardInput) -> RewardOutput {
        let mut out = RewardOutput {
            reward: 0.0,
            correct: None,
        };
        for (w, f) in &self.parts {
            let r = f.score(input);
            out.reward += w * r.reward;
            out.correct = out.correct.or(r.correct);
        }
        out
    }

    fn score_batch(&self, inputs: &[RewardInput]) -> Vec<RewardOutput> {
        let mut out = vec![
            RewardOutput {
                reward: 0.0,
                correct: None
            };
            inputs.len()
        ];
        // Batch each component (a reward model scores the whole batch in a few forwards).
        for (w, f) in &self.parts {
            for (o, r) in out.iter_mut().zip(f.score_batch(inputs)) {
                o.reward += w * r.reward;
                o.correct = o.correct.or(r.correct);
            }
        }
        out
    }
}

/// Scores each rollout against the reference answer of the question it answers (`prompt_index` into
/// `questions`), in one batch.
pub fn score_rollouts(
    reward: &dyn RewardFunction,
    questions: &[crate::task::Problem],
    rollouts: &[crate::rollout::Rollout],
) -> Vec<RewardOutput> {
    let inputs: Vec<RewardInput> = rollouts
        .iter()
        .map(|r| RewardInput {
            question: &questions[r.prompt_index].question,
            completion: &r.text,
            reference: &questions[r.prompt_index].answer,
            truncated: r.truncated,
        })
        .collect();
    reward.score_batch(&inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(completion: &'a str, reference: &'a str, truncated: bool) -> RewardInput<'a> {
        RewardInput {
            question: "q",
            completion,
            reference,
            truncated,
        }
    }

    #[test]
    fn verifier_reward_scores_right_and_wrong() {
        let r = VerifierReward::new(VerifierRewardConfig::default()).unwrap();
        assert_eq!(r.score(&input("3 + 4 = 7. The answer is 7.", "7", false)).reward, 1.0);
        assert_eq!(r.score(&input("The answer is \\boxed{7.0}", "7", false)).reward, 1.0);
        assert_eq!(
            r.score(&input("The answer is 8.", "7", false)),
            RewardOutput {
                reward: 0.0,
                correct: Some(false)
            }
        );
        assert_eq!(r.score(&input("", "7", false)).reward, 0.0);
        // Lenient extraction falls back to the last number.
        assert_eq!(r.score(&input("so we get 7", "7", false)).reward, 1.0);
    }

    #[test]
    fn explicit_extraction_and_format_terms() {
        let cfg = VerifierRewardConfig {
            extraction: AnswerExtraction::Explicit,
            format_bonus: 0.1,
            truncation_penalty: 0.5,
            ..Default::default()
        };
        let r = VerifierReward::new(cfg).unwrap();
        assert_eq!(r.score(&input("so we get 7", "7", false)).reward, 0.0);
        assert!((r.score(&input("The answer is 7", "7", false)).reward - 1.1).abs() < 1e-12);
        assert!((r.score(&input("The answer is 6", "7", true)).reward - (0.1 - 0.5)).abs() < 1e-12);
    }

    #[test]
    fn weighted_sum_combines() {
        let a = VerifierReward::new(VerifierRewardConfig::default()).unwrap();
        let b = VerifierReward::new(VerifierRewardConfig {
            correct: 2.0,
            ..Default::default()
        })
        .unwrap();
        let w = WeightedRewards::new(vec![(0.5, Box::new(a)), (0.25, Box::new(b))]);
        let out = w.score(&input("The answer is 7", "7", false));
        assert!((out.reward - 1.0).abs() < 1e-12);
        assert_eq!(out.correct, Some(true));
    }

    #[test]
    fn unknown_answer_kind_is_rejected() {
        let cfg = VerifierRewardConfig {
            answer_kind: "poem".into(),
            ..Default::default()
        };
        assert!(VerifierReward::new(cfg).is_err());
    }
}
