//! Math-Shepherd labels (Wang et al. 2023, used by DeepSeekMath §4.1.3 and §4.1.4): the quality of a reasoning step
//! is its potential to reach the right answer. For every step of a policy sample, `K` completions are rolled out
//! from the step's end with the current policy and checked by the verifier; the step is labelled 1 if any reaches
//! the correct answer ("hard" estimation) or with the fraction that does ("soft"). The last step is labelled by the
//! sample's own correctness. The same samples also give outcome labels for an ORM.

use serde::{Deserialize, Serialize};

use crate::config::GrpoConfig;
use crate::process::{completion_steps, StepBoundary};
use crate::reward::{RewardFunction, RewardInput};
use crate::reward_model::RmExample;
use crate::rollout::{RolloutParams, RolloutSampler};
use crate::task::Problem;
use crate::trainer::encode_prompt;

/// Hard (any completion correct) or soft (fraction correct) step labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StepLabel {
    /// 1 if any of the K completions reaches the correct answer, else 0 (Math-Shepherd's "HE").
    #[default]
    Hard,
    /// Fraction of the K completions that reach the correct answer ("SE").
    Soft,
}

/// Settings of Math-Shepherd labelling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShepherdOptions {
    /// Policy samples per question whose steps get labelled.
    pub samples_per_question: usize,
    /// Completions rolled out from each step (K).
    pub rollouts_per_step: usize,
    /// Hard or soft labels.
    pub label: StepLabel,
    /// How steps are found in completions.
    pub boundary: StepBoundary,
    /// Label at most this many steps per sample (the first ones and the last); 0 = all.
    pub max_steps: usize,
    /// Sampling of samples and completions.
    pub rollout: RolloutParams,
}

impl Default for ShepherdOptions {
    fn default() -> Self {
        Self {
            samples_per_question: 4,
            rollouts_per_step: 8,
            label: StepLabel::Hard,
            boundary: StepBoundary::BlankLine,
            max_steps: 8,
            rollout: RolloutParams::default(),
        }
    }
}

/// Process (one per sample) and outcome (one per sample) examples, and counts for the log.
#[derive(Clone, Debug, Default)]
pub struct ShepherdData {
    /// PRM examples: every labelled step of every non-empty sample.
    pub process: Vec<RmExample>,
    /// ORM examples: each sample's last token labelled by the verifier.
    pub outcome: Vec<RmExample>,
    /// Fraction of samples whose final answer is correct.
    pub sample_accuracy: f64,
    /// Number of completions rolled out for step labels.
    pub completions: usize,
}

/// Labels the steps of policy samples on `problems` the Math-Shepherd way. `verifier` must report correctness.
pub fn shepherd_label(
    config: &GrpoConfig,
    tokenizer: &seekmath_model::Tokenizer,
    sampler: &mut dyn RolloutSampler,
    verifier: &dyn RewardFunction,
    problems: &[Problem],
    options: &ShepherdOptions,
    seed: u64,
) -> anyhow::Result<ShepherdData> {
    anyhow::ensure!(
        options.samples_per_question >= 1 && options.rollouts_per_step >= 1,
        "Math-Shepherd needs ≥ 1 sample per question and ≥ 1 rollout per step"
    );
    let prompts: Vec<Vec<u32>> = problems
        .iter()
        .map(|p| encode_prompt(config, tokenizer, &p.question))
        .collect::<anyhow::Result<_>>()?;
    let samples = sampler.sample(&prompts, options.samples_per_question, &options.rollout, seed)?;
    let is_correct = |problem: &Problem, text: &str, truncated: bool| {
        verifier
            .score(&RewardInput {
                question: &problem.question,
                completion: text,
                reference: &problem.answer,
                truncated,
            })
            .correct
            .unwrap_or(false)
    };

    // Steps of each sample; every step but the last becomes a continuation prompt.
    struct Labelled {
        sample: usize,
        ends: Vec<usize>,
        correct: bool,
    }
    let mut labelled = Vec::new();
    let mut continuation_prompts = Vec::new();
    let mut owners = Vec::new(); // (labelled index, step index)
    let mut right = 0usize;
    for (s, sample) in samples.iter().enumerate() {
        let problem = &problems[sample.prompt_index];
        let correct = is_correct(problem, &sample.text, sample.truncated);
        right += usize::from(correct);
        let mut ends = completion_steps(tokenizer, &sample.tokens, &options.boundary)?;
        if ends.is_empty() {
            continue;
        }
        if options.max_steps > 0 && ends.len() > options.max_steps {
            let last = *ends.last().expect("non-empty");
            ends.truncate(options.max_steps - 1);
            ends.push(last);
        }
        for (k, &end) in ends[..ends.len() - 1].iter().enumerate() {
            let prompt = &prompts[sample.prompt_index];
            continuation_prompts.push(
                prompt
                    .iter()
                    .chain(&sample.tokens[..=end])
                    .copied()
                    .collect::<Vec<u32>>(),
            );
            owners.push((labelled.len(), k));
        }
        labelled.push(Labelled {
            sample: s,
            ends,
            correct,
        });
    }

    let k = options.rollouts_per_step;
    let mut hits: Vec<Vec<usize>> = labelled.iter().map(|l| vec![0; l.ends.len()]).collect();
    let mut completions = 0;
    if !continuation_prompts.is_empty() {
        let outs = sampler.sample(&continuation_prompts, k, &options.rollout, seed.wrapping_add(1))?;
        completions = outs.len();
        for out in outs {
            let (li, step) = owners[out.prompt_index];
            let l = &labelled[li];
            let sample = &samples[l.sample];
            let problem = &problems[sample.prompt_index];
            let prefix: Vec<u32> = sample.tokens[..=l.ends[step]]
                .iter()
                .chain(&out.tokens)
                .copied()
                .collect();
            let text = tokenizer.decode(&prefix, true)?;
            if is_correct(problem, &text, out.truncated) {
                hits[li][step] += 1;
            }
        }
    }

    let mut data = ShepherdData {
        sample_accuracy: right as f64 / samples.len().max(1) as f64,
        completions,
        ..Default::default()
    };
    for (li, l) in labelled.iter().enumerate() {
        let sample = &samples[l.sample];
        let prompt = &prompts[sample.prompt_index];
        let question = problems[sample.prompt_index].question.clone();
        let mut labels: Vec<f64> = hits[li]
            .iter()
            .map(|&h| match options.label {
                StepLabel::Hard => f64::from(u8::from(h > 0)),
                StepLabel::Soft => h as f64 / k as f64,
            })
            .collect();
        *labels.last_mut().expect("non-empty") = f64::from(u8::from(l.correct));
        let ids: Vec<u32> = prompt.iter().chain(&sample.tokens).copied().collect();
        data.process.push(RmExample {
            ids: ids.clone(),
            positions: l.ends.iter().map(|e| prompt.len() + e).collect(),
            labels,
            question: question.clone(),
        });
        data.outcome.push(RmExample {
            positions: vec![ids.len() - 1],
            ids,
            labels: vec![f64::from(u8::from(l.correct))],
            question,
        });
    }
    Ok(data)
}
