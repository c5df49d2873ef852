//! One GRPO step: explore (sample G outputs per question), score, compute advantages, then μ policy updates in
//! micro-batches with gradient accumulation.
//!
//! Memory and speed: old-policy and reference log-probs are computed once per stage under `no_grad` (no autograd
//! graph is kept); logits are only materialised at completion positions; the loss normalisers are totals of the
//! whole stage, so accumulation over micro-batches is exactly the full-batch gradient.

use std::time::Instant;

use anyhow::Context;
use seekmath_model::{CausalLm, ChatMessage, Tokenizer};
use tch::{Device, Kind, Tensor};

use crate::advantage::{mean_std, outcome_advantages};
use crate::config::GrpoConfig;
use crate::loss::{grpo_loss, PolicyTerms, StepTotals};
use crate::metrics::StepMetrics;
use crate::models::Models;
use crate::optim::AdamW;
use crate::process::{group_token_advantages, StepScorer};
use crate::reward::RewardFunction;
use crate::rollout::{Rollout, RolloutSampler};
use crate::task::Problem;

/// Renders a question into the token ids the model sees.
pub fn encode_prompt(config: &GrpoConfig, tokenizer: &Tokenizer, question: &str) -> anyhow::Result<Vec<u32>> {
    let user = config.task.prompt_template.replace("{question}", question);
    if config.task.chat_template {
        let mut messages = Vec::new();
        if let Some(system) = &config.task.system_prompt {
            messages.push(ChatMessage::new("system", system.clone()));
        }
        messages.push(ChatMessage::new("user", user));
        let text = tokenizer.apply_chat_template(&messages, true)?;
        tokenizer.encode(&text, false)
    } else {
        tokenizer.encode(&user, true)
    }
}

/// One training sequence: `prompt ‖ completion`, its advantage and whether it counts in the loss.
struct Sequence {
    ids: Vec<i64>,
    prompt_len: usize,
    advantage: f64,
    /// Per-completion-token advantages (process supervision); overrides `advantage` when present.
    token_advantages: Option<Vec<f64>>,
    in_loss: bool,
}

/// A padded micro-batch in the shifted layout: position `t` of the `[B, T−1]` tensors scores token `t + 1`.
struct MicroBatch {
    input_ids: Tensor,
    attention: Tensor,
    targets: Tensor,
    /// Completion positions (bool, `[B, T−1]`): where log-probs are computed.
    scored: Tensor,
    /// Loss mask (float, `[B, T−1]`): completion positions of sequences that count.
    loss_mask: Tensor,
    advantages: Tensor,
    old_logprobs: Option<Tensor>,
    ref_logprobs: Option<Tensor>,
}

fn build_micro_batch(seqs: &[&Sequence], pad: i64, device: Device) -> MicroBatch {
    let b = seqs.len() as i64;
    let t = seqs.iter().map(|s| s.ids.len()).max().unwrap_or(1);
    let mut ids = vec![pad; seqs.len() * t];
    let mut attn = vec![0i64; seqs.len() * t];
    let mut scored = vec![0u8; seqs.len() * (t - 1)];
    let mut loss = vec![0f32; seqs.len() * (t - 1)];
    let per_token = seqs.iter().any(|s| s.token_advantages.is_some());
    let mut token_adv = vec![0f32; if per_token { seqs.len() * (t - 1) } else { 0 }];
    for (r, s) in seqs.iter().enumerate() {
        ids[r * t..r * t + s.ids.len()].copy_from_slice(&s.ids);
        attn[r * t..r * t + s.ids.len()].fill(1);
        // Token j (j ≥ prompt_len) is predicted at shifted position j − 1.
        for j in s.prompt_len..s.ids.len() {
            scored[r * (t - 1) + j - 1] = 1;
            loss[r * (t - 1) + j - 1] = if s.in_loss { 1.0 } else { 0.0 };
            if per_token {
                token_adv[r * (t - 1) + j - 1] = match &s.token_advantages {
                    Some(a) => a[j - s.prompt_len] as f32,
                    None => s.advantage as f32,
                };
            }
        }
    }
    let input_ids = Tensor::from_slice(&ids).view([b, t as i64]).to_device(device);
    let targets = input_ids.narrow(1, 1, t as i64 - 1);
    MicroBatch {
        attention: Tensor::from_slice(&attn).view([b, t as i64]).to_device(device),
        scored: Tensor::from_slice(&scored)
            .view([b, t as i64 - 1])
            .to_kind(Kind::Bool)
            .to_device(device),
        loss_mask: Tensor::from_slice(&loss).view([b, t as i64 - 1]).to_device(device),
        advantages: if per_token {
            Tensor::from_slice(&token_adv).view([b, t as i64 - 1]).to_device(device)
        } else {
            Tensor::from_slice(&seqs.iter().map(|s| s.advantage as f32).collect::<Vec<_>>()).to_device(device)
        },
        targets,
        input_ids,
        old_logprobs: None,
        ref_logprobs: None,
    }
}

/// Log-probs `[B, T−1]` (zeros off the scored positions) and, when asked, the entropies at scored positions.
fn sequence_logprobs(
    model: &CausalLm,
    mb: &MicroBatch,
    temperature: f64,
    autocast: Option<Kind>,
    with_entropy: bool,
) -> anyhow::Result<(Tensor, Option<Tensor>)> {
    let completion_logits = {
        let _autocast = match autocast {
            Some(kind) => Some(
                seekmath_shim::AutocastGuard::new(mb.input_ids.device(), kind).map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
            None => None,
        };
        let hidden = model.forward_hidden(&mb.input_ids, Some(&mb.attention));
        let t = hidden.size()[1];
        let selected = hidden.narrow(1, 0, t - 1).index(&[Some(&mb.scored)]);
        model.logits(&selected)
    };
    let mut logits = completion_logits.to_kind(Kind::Float);
    if temperature > 0.0 && temperature != 1.0 {
        logits = logits / temperature;
    }
    let logp_all = logits.log_softmax(-1, Kind::Float);
    let targets = mb.targets.index(&[Some(&mb.scored)]);
    let logp = logp_all.gather(-1, &targets.unsqueeze(-1), false).squeeze_dim(-1);
    let entropy = with_entropy.then(|| {
        let _g = tch::no_grad_guard();
        -(logp_all.exp() * &logp_all).sum_dim_intlist(-1, false, Kind::Float)
    });
    let full = Tensor::zeros(mb.scored.size(), (Kind::Float, logp.device())).masked_scatter(&mb.scored, &logp);
    Ok((full, entropy))
}

/// Trainer state that persists across steps (and checkpoints).
pub struct GrpoTrainer {
    /// The run configuration.
    pub config: GrpoConfig,
    /// Optimiser state.
    pub optimizer: AdamW,
    /// Steps completed.
    pub step: usize,
}

impl GrpoTrainer {
    /// A trainer for `models.policy` at step 0.
    pub fn new(config: GrpoConfig, models: &Models) -> Self {
        Self {
            optimizer: AdamW::new(&models.policy.vs),
            config,
            step: 0,
        }
    }

    fn learning_rate(&self) -> f64 {
        let o = &self.config.optim;
        if o.warmup_steps > 0 && self.step < o.warmup_steps {
            o.lr * (self.step + 1) as f64 / o.warmup_steps as f64
        } else {
            o.lr
        }
    }

    /// Runs one exploration stage and its μ updates on `questions` (outcome supervision).
    pub fn step(
        &mut self,
        models: &Models,
        sampler: &mut dyn RolloutSampler,
        reward: &dyn RewardFunction,
        questions: &[Problem],
    ) -> anyhow::Result<(StepMetrics, Vec<(Problem, Rollout, f64)>)> {
        self.step_with_process(models, sampler, reward, None, questions)
    }

    /// [`GrpoTrainer::step`] with process supervision when `process` is given (§4.1.3): its step rewards replace
    /// the outcome advantages; `reward` still scores outcomes for the accuracy metric.
    pub fn step_with_process(
        &mut self,
        models: &Models,
        sampler: &mut dyn RolloutSampler,
        reward: &dyn RewardFunction,
        process: Option<&dyn StepScorer>,
        questions: &[Problem],
    ) -> anyhow::Result<(StepMetrics, Vec<(Problem, Rollout, f64)>)> {
        let cfg = &self.config;
        anyhow::ensure!(
            process.is_some() == (cfg.grpo.estimator == crate::advantage::AdvantageEstimator::Process),
            "grpo.estimator = {:?} but a step scorer was {}given",
            cfg.grpo.estimator,
            if process.is_some() { "" } else { "not " }
        );
        let g = cfg.grpo.group_size;
        let started = Instant::now();
        let prompts: Vec<Vec<u32>> = questions
            .iter()
            .map(|q| encode_prompt(cfg, models.tokenizer(), &q.question))
            .collect::<anyhow::Result<_>>()?;
        let seed = cfg
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(self.step as u64 + 1);
        let rollouts = sampler
            .sample(&prompts, g, &cfg.rollout, seed)
            .context("sampling rollouts")?;
        anyhow::ensure!(
            rollouts.len() == prompts.len() * g,
            "sampler returned {} outputs, expected {}",
            rollouts.len(),
            prompts.len() * g
        );
        let time_generate = started.elapsed().as_secs_f64();

        let scoring = Instant::now();
        let scored = crate::reward::score_rollouts(reward, questions, &rollouts);
        let rewards: Vec<f64> = scored.iter().map(|s| s.reward).collect();
        let advantages = outcome_advantages(&rewards, g, &cfg.grpo.advantage)?;
        let mut step_reward_mean = None;
        let token_advantages = match process {
            Some(scorer) => {
                let rollout_prompts: Vec<&[u32]> =
                    rollouts.iter().map(|r| prompts[r.prompt_index].as_slice()).collect();
                let steps = scorer.score_steps(&rollout_prompts, &rollouts)?;
                step_reward_mean = Some(mean_std(&steps.iter().flatten().map(|s| s.reward).collect::<Vec<_>>()).0);
                Some(group_token_advantages(&steps, &rollouts, g, &cfg.grpo.advantage)?)
            }
            None => None,
        };
        let time_score = scoring.elapsed().as_secs_f64();

        let training = Instant::now();
        let mut seqs = Vec::new();
        for (i, r) in rollouts.iter().enumerate() {
            if cfg.grpo.filter_zero_variance && token_advantages.is_none() && advantages.zero_variance[i / g] {
                continue;
            }
            if r.tokens.is_empty() {
                continue;
            }
            let prompt = &prompts[r.prompt_index];
            let ids: Vec<i64> = prompt.iter().chain(&r.tokens).map(|&t| t as i64).collect();
            seqs.push(Sequence {
                ids,
                prompt_len: prompt.len(),
                advantage: advantages.advantages[i],
                token_advantages: token_advantages.as_ref().map(|a| a[i].clone()),
                in_loss: !(cfg.grpo.mask_truncated && r.truncated),
            });
        }
        let (mean_reward, std_reward) = mean_std(&rewards);
        let mut metrics = StepMetrics {
            step: self.step + 1,
            reward_mean: mean_reward,
            reward_std: std_reward,
            accuracy: scored.iter().filter(|s| s.correct == Some(true)).count() as f64 / scored.len().max(1) as f64,
            response_length: rollouts.iter().map(|r| r.tokens.len()).sum::<usize>() as f64
                / rollouts.len().max(1) as f64,
            truncated_fraction: rollouts.iter().filter(|r| r.truncated).count() as f64 / rollouts.len().max(1) as f64,
            zero_variance_fraction: advantages.zero_variance_fraction(),
            lr: self.learning_rate(),
            time_generate,
            time_score,
            step_reward_mean,
            ..Default::default()
        };
        if seqs.iter().any(|s| s.in_loss) {
            self.update(models, &seqs, &mut metrics)?;
        } else {
            tracing::info!(
                step = self.step + 1,
                "no sequence carries signal this stage; skipping the update"
            );
        }
        metrics.time_train = training.elapsed().as_secs_f64();
        self.step += 1;
        let samples = rollouts
            .into_iter()
            .zip(rewards)
            .map(|(r, rw)| (questions[r.prompt_index].clone(), r, rw))
            .collect();
        Ok((metrics, samples))
    }

    fn update(&mut self, models: &Models, seqs: &[Sequence], metrics: &mut StepMetrics) -> anyhow::Result<()> {
        let cfg = self.config.clone();
        let temperature = cfg.rollout.temperature;
        let pad = models.pad_id();
        let refs: Vec<&Sequence> = seqs.iter().collect();
        let mut batches: Vec<MicroBatch> = refs
            .chunks(cfg.grpo.micro_batch_size)
            .map(|c| build_micro_batch(c, pad, models.device))
            .collect();
        let tokens: f64 = batches
            .iter()
            .map(|b| b.loss_mask.sum(Kind::Double).double_value(&[]))
            .sum();
        let totals = StepTotals {
            sequences: seqs.len() as f64,
            tokens,
        };
        let mut loss_options = cfg.grpo.loss;
        loss_options.max_completion_length = cfg.rollout.max_new_tokens;
        let mu = cfg.grpo.updates_per_stage;
        {
            let _guard = tch::no_grad_guard();
            for mb in &mut batches {
                // With μ = 1 the policy has not moved since sampling: π_old = π_θ exactly, so skip that forward.
                if mu > 1 {
                    mb.old_logprobs =
                        Some(sequence_logprobs(&models.policy.model, mb, temperature, models.autocast, false)?.0);
                }
                if loss_options.beta != 0.0 {
                    let reference = models.reference.as_ref().context("β > 0 needs a reference model")?;
                    mb.ref_logprobs =
                        Some(sequence_logprobs(&reference.model, mb, temperature, models.autocast, false)?.0);
                }
            }
        }
        for update in 0..mu {
            self.optimizer.zero_grad();
            let (mut loss_sum, mut kl, mut clip_low, mut clip_high, mut entropy, mut count) =
                (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
            for mb in &batches {
                let (logp, ent) =
                    sequence_logprobs(&models.policy.model, mb, temperature, models.autocast, update == 0)?;
                let terms = PolicyTerms {
                    logprobs: &logp,
                    old_logprobs: mb.old_logprobs.as_ref(),
                    ref_logprobs: mb.ref_logprobs.as_ref(),
                    advantages: &mb.advantages,
                    mask: &mb.loss_mask,
                };
                let out = grpo_loss(&terms, &loss_options, totals)?;
                out.loss.backward();
                loss_sum += out.loss.double_value(&[]);
                let n = out.tokens.double_value(&[]);
                kl += out.kl.double_value(&[]) * n;
                clip_low += out.clip_low.double_value(&[]) * n;
                clip_high += out.clip_high.double_value(&[]) * n;
                count += n;
                if let Some(e) = ent {
                    entropy += e.sum(Kind::Double).double_value(&[]);
                }
            }
            metrics.grad_norm = self.optimizer.clip_grad_norm(cfg.optim.max_grad_norm);
            self.optimizer.update(
                self.learning_rate(),
                cfg.optim.beta1,
                cfg.optim.beta2,
                cfg.optim.eps,
                cfg.optim.weight_decay,
            )?;
            self.optimizer.zero_grad();
            metrics.loss = loss_sum;
            if update == 0 {
                let c = count.max(1.0);
                metrics.kl = kl / c;
                metrics.clip_low = clip_low / c;
                metrics.clip_high = clip_high / c;
                let scored: f64 = batches
                    .iter()
                    .map(|b| b.scored.sum(Kind::Double).double_value(&[]))
                    .sum();
                metrics.entropy = entropy / scored.max(1.0);
            }
        }
        models.sync_rollout()
    }
}

/// Greedy accuracy on `problems`, scored by the bench crate's scorer (strict verifier), `batch` prompts at a time.
pub fn evaluate(
    config: &GrpoConfig,
    models: &Models,
    sampler: &mut dyn RolloutSampler,
    problems: &[Problem],
) -> anyhow::Result<f64> {
    use seekmath_bench::scoring::Scorer;
    use seekmath_verify::extract::AnswerKind;
    let kind = match config.reward.answer_kind.as_str() {
        "expression" => AnswerKind::Expression,
        "choice" => AnswerKind::Choice,
        _ => AnswerKind::Number,
    };
    let scorer = Scorer::new(kind, seekmath_verify::Mode::Strict);
    let params = crate::rollout::RolloutParams {
        max_new_tokens: config.eval.max_new_tokens,
        temperature: 0.0,
        ..config.rollout.clone()
    };
    let mut correct = 0usize;
    for chunk in problems.chunks(config.eval.batch_size.max(1)) {
        let prompts: Vec<Vec<u32>> = chunk
            .iter()
            .map(|p| encode_prompt(config, models.tokenizer(), &p.question))
            .collect::<anyhow::Result<_>>()?;
        let outs = sampler.sample(&prompts, 1, &params, config.seed)?;
        for o in outs {
            let gold = &chunk[o.prompt_index].answer;
            if scorer
                .extract(&o.text)
                .is_some_and(|pred| scorer.is_correct(&pred, gold))
            {
                correct += 1;
            }
        }
    }
    Ok(correct as f64 / problems.len().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_advantages_land_on_their_completion_positions() {
        // Sequence A: prompt [1, 2], completion [3, 4, 5] with process advantages; B: outcome advantage 0.5.
        let a = Sequence {
            ids: vec![1, 2, 3, 4, 5],
            prompt_len: 2,
            advantage: 9.0,
            token_advantages: Some(vec![0.1, 0.2, 0.3]),
            in_loss: true,
        };
        let b = Sequence {
            ids: vec![1, 7],
            prompt_len: 1,
            advantage: 0.5,
            token_advantages: None,
            in_loss: true,
        };
        let mb = build_micro_batch(&[&a, &b], 0, Device::Cpu);
        assert_eq!(mb.advantages.size(), vec![2, 4]);
        let adv: Vec<f32> = Vec::try_from(mb.advantages.flatten(0, -1)).unwrap();
        assert_eq!(adv, vec![0.0, 0.1, 0.2, 0.3, 0.5, 0.0, 0.0, 0.0]);
        // Outcome-only batches keep one advantage per sequence.
        let mb = build_micro_batch(&[&b], 0, Device::Cpu);
        assert_eq!(mb.advantages.size(), vec![1]);
    }
}
