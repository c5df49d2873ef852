//! The unified paradigm of DeepSeekMath §5.2 as one trainer: SFT, RFT, online RFT, DPO, PPO and GRPO differ only
//! in the data source (offline samples drawn once, or online samples of the current policy), the reward function
//! (rule or model: any [`RewardFunction`]) and the gradient coefficient. One [`UnifiedTrainer`] holds the shared
//! parts (prompting, sampling, scoring, batching, AdamW, evaluation, metrics) and each method supplies its
//! coefficient through its loss:
//!
//! | method | data | loss (its gradient is GC · ∇log π) |
//! |---|---|---|
//! | SFT | offline (given solutions) | −1/N Σ 1/\|o\| Σ_t log π |
//! | RFT | offline (correct SFT-model samples) | same, GC = 1{correct} |
//! | online RFT | online | same over all samples, GC = 1{correct} |
//! | DPO | offline pairs, frozen reference | −log σ(β(Δ⁺ − Δ⁻)) ([`crate::dpo`]) |
//! | PPO | online, value model | clipped surrogate with GAE advantages + clipped value loss ([`crate::ppo`]) |
//! | GRPO | online | [`crate::trainer::GrpoTrainer`] |
//!
//! A config is a GRPO config (`[model]`, `[task]`, `[rollout]`, `[grpo]` for group size / questions per step /
//! steps / micro-batch / clip range, `[optim]`, `[reward]`, `[reward_model]`, `[eval]`, `[output]`) plus `[method]`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::Kind;

use crate::advantage::mean_std;
use crate::config::{load_with_section, GrpoConfig};
use crate::dpo::{dpo_loss, preference_pairs};
use crate::loss::{grpo_loss, GrpoLossOptions, PolicyTerms, StepTotals};
use crate::metrics::{plot_curves, JsonlWriter, StepMetrics};
use crate::models::Models;
use crate::optim::AdamW;
use crate::paradigm::{DataSource, Method};
use crate::ppo::{batch_advantages, clipped_value_loss, token_rewards, PpoOptions};
use crate::reward::{RewardFunction, RewardOutput};
use crate::reward_model::{RewardModel, RewardModelKind};
use crate::rollout::{Rollout, RolloutSampler};
use crate::run::{load_task, question_at, RunSummary};
use crate::seqbatch::{gather_completion, token_logprobs, TokenBatch, TokenSequence};
use crate::task::Problem;
use crate::trainer::{encode_prompt, evaluate, GrpoTrainer};

/// `[method]`: which §5.2 method and its own settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MethodSection {
    /// `sft`, `rft`, `online_rft`, `dpo`, `ppo` or `grpo`.
    pub name: Method,
    /// SFT data: JSONL with `question` and `response`; unset = the task's reference answers written as
    /// "The answer is N." (the only human-selected outputs a generated task has).
    pub sft_path: Option<PathBuf>,
    /// Offline methods (RFT, DPO): training questions sampled once with the initial (SFT) policy.
    pub offline_questions: usize,
    /// Offline methods: samples per question.
    pub offline_samples: usize,
    /// Offline methods: sequences (SFT/RFT) or pairs (DPO) per optimiser step.
    pub batch_size: usize,
    /// DPO: β of the sigmoid loss.
    pub dpo_beta: f64,
    /// DPO: most pairs per question.
    pub pairs_per_question: usize,
    /// PPO settings.
    pub ppo: PpoOptions,
}

impl Default for MethodSection {
    fn default() -> Self {
        Self {
            name: Method::Grpo,
            sft_path: None,
            offline_questions: 256,
            offline_samples: 8,
            batch_size: 32,
            dpo_beta: 0.1,
            pairs_per_question: 4,
            ppo: PpoOptions::default(),
        }
    }
}

/// Loads a §5.2 config: a GRPO config plus `[method]`.
pub fn load_unified(path: &std::path::Path, overrides: &[String]) -> anyhow::Result<(GrpoConfig, MethodSection)> {
    let (config, method) = load_with_section::<MethodSection>(path, overrides, "method")?;
    anyhow::ensure!(method.batch_size >= 1, "method.batch_size must be ≥ 1");
    if matches!(method.name, Method::Rft | Method::Dpo) {
        anyhow::ensure!(
            method.offline_questions >= 1 && method.offline_samples >= 1,
            "method.offline_questions and method.offline_samples must be ≥ 1"
        );
    }
    if method.name == Method::Dpo {
        anyhow::ensure!(method.dpo_beta > 0.0, "method.dpo_beta must be positive");
    }
    Ok((config, method))
}

/// An offline training item.
#[derive(Serialize, Deserialize)]
enum OfflineItem {
    /// A sequence with its gradient coefficient (SFT: 1; RFT: 1 for kept correct samples).
    Weighted { seq: TokenSequence, weight: f64 },
    /// A DPO pair with the reference's sequence log-probabilities.
    Pair {
        chosen: TokenSequence,
        rejected: TokenSequence,
        ref_chosen: f64,
        ref_rejected: f64,
    },
}

/// Position of a §5.2 run, saved in every checkpoint's `state.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UnifiedState {
    /// Steps completed.
    pub step: usize,
    /// Held-out accuracy before training.
    pub baseline_eval: Option<f64>,
    /// Offline data order of the current pass and the position in it.
    pub order: Vec<usize>,
    /// Next index into `order`.
    pub cursor: usize,
}

/// The §5.2 trainer.
pub struct UnifiedTrainer {
    /// Run configuration.
    pub config: GrpoConfig,
    /// Method settings.
    pub method: MethodSection,
    optimizer: AdamW,
    value: Option<(RewardModel, AdamW)>,
    grpo: Option<GrpoTrainer>,
    offline: Vec<OfflineItem>,
    order: Vec<usize>,
    cursor: usize,
    /// Steps completed.
    pub step: usize,
}

fn micro_chunks<T>(items: &[T], size: usize) -> std::slice::Chunks<'_, T> {
    items.chunks(size.max(1))
}

impl UnifiedTrainer {
    /// A trainer for `method` on `models` (PPO also builds its value model from the initial policy).
    pub fn new(config: GrpoConfig, method: MethodSection, models: &Models) -> anyhow::Result<Self> {
        let value = if method.name == Method::Ppo {
            anyhow::ensure!(models.reference.is_some(), "PPO's KL penalty needs a reference model");
            let v = RewardModel::new(
                &config.model.path,
                RewardModelKind::Outcome,
                Default::default(),
                models.device,
            )
            .context("building the PPO value model")?;
            let opt = AdamW::new(&v.model.vs);
            Some((v, opt))
        } else {
            None
        };
        let grpo = (method.name == Method::Grpo).then(|| GrpoTrainer::new(config.clone(), models));
        Ok(Self {
            optimizer: AdamW::new(&models.policy.vs),
            config,
            method,
            value,
            grpo,
            offline: Vec::new(),
            order: Vec::new(),
            cursor: 0,
            step: 0,
        })
    }

    /// Number of offline items (sequences or pairs) prepared.
    pub fn offline_len(&self) -> usize {
        self.offline.len()
    }

    /// Writes the offline data set as JSONL (resumed runs read it back instead of re-sampling from a policy that
    /// has moved).
    pub fn save_offline(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let text: String = self
            .offline
            .iter()
            .map(|i| serde_json::to_string(i).map(|l| l + "\n"))
            .collect::<Result<_, _>>()?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Reads the offline data set written by [`UnifiedTrainer::save_offline`].
    pub fn load_offline(&mut self, path: &std::path::Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        self.offline = text
            .lines()
            .enumerate()
            .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1)))
            .collect::<anyhow::Result<_>>()?;
        Ok(())
    }

    fn policy_optimizer(&self) -> &AdamW {
        self.grpo.as_ref().map(|g| &g.optimizer).unwrap_or(&self.optimizer)
    }

    /// Saves policy, optimiser, value model (PPO) and position into `dir` (written atomically via a temp folder).
    pub fn save_checkpoint(
        &self,
        dir: &std::path::Path,
        models: &Models,
        baseline_eval: Option<f64>,
    ) -> anyhow::Result<()> {
        crate::run::write_checkpoint(dir, models, self.policy_optimizer(), |tmp| {
            if let Some((value, opt)) = &self.value {
                value
                    .model
                    .vs
                    .save(tmp.join("value.safetensors"))
                    .context("saving the value model")?;
                opt.save(&tmp.join("value_optimizer.safetensors"))?;
            }
            let state = UnifiedState {
                step: self.step,
                baseline_eval,
                order: self.order.clone(),
                cursor: self.cursor,
            };
            Ok(std::fs::write(
                tmp.join("state.json"),
                serde_json::to_string_pretty(&state)?,
            )?)
        })
    }

    /// Restores what [`UnifiedTrainer::save_checkpoint`] wrote.
    pub fn load_checkpoint(&mut self, dir: &std::path::Path, models: &Models) -> anyhow::Result<UnifiedState> {
        let state: UnifiedState = serde_json::from_str(&std::fs::read_to_string(dir.join("state.json"))?)
            .with_context(|| format!("reading {}/state.json", dir.display()))?;
        crate::run::load_weights(&models.policy.vs, &dir.join("policy.safetensors"))?;
        match self.grpo.as_mut() {
            Some(g) => {
                g.optimizer.load(&dir.join("optimizer.safetensors"))?;
                g.step = state.step;
            }
            None => self.optimizer.load(&dir.join("optimizer.safetensors"))?,
        }
        if let Some((value, opt)) = self.value.as_mut() {
            crate::run::load_weights(&value.model.vs, &dir.join("value.safetensors"))?;
            opt.load(&dir.join("value_optimizer.safetensors"))?;
        }
        self.step = state.step;
        self.order = state.order.clone();
        self.cursor = state.cursor;
        models.sync_rollout()?;
        Ok(state)
    }

    fn sample_and_score(
        &self,
        models: &Models,
        sampler: &mut dyn RolloutSampler,
        reward: &dyn RewardFunction,
        questions: &[Problem],
        n: usize,
        seed: u64,
    ) -> anyhow::Result<(Vec<Vec<u32>>, Vec<Rollout>, Vec<RewardOutput>)> {
        let prompts: Vec<Vec<u32>> = questions
            .iter()
            .map(|q| encode_prompt(&self.config, models.tokenizer(), &q.question))
            .collect::<anyhow::Result<_>>()?;
        let rollouts = sampler.sample(&prompts, n, &self.config.rollout, seed)?;
        let scored = crate::reward::score_rollouts(reward, questions, &rollouts);
        Ok((prompts, rollouts, scored))
    }

    /// Builds the offline data set of SFT, RFT and DPO (no-op for online methods). RFT and DPO sample from the
    /// current policy, which must still be the initial (SFT) model.
    pub fn prepare_offline(
        &mut self,
        models: &Models,
        sampler: &mut dyn RolloutSampler,
        reward: &dyn RewardFunction,
        train: &[Problem],
    ) -> anyhow::Result<()> {
        if self.method.name.data_source() != DataSource::Offline {
            return Ok(());
        }
        let tok = models.tokenizer();
        let eos = tok.eos_token_ids().first().copied();
        match self.method.name {
            Method::Sft => {
                let records: Vec<(String, String)> = match &self.method.sft_path {
                    Some(path) => read_sft(path)?,
                    None => train
                        .iter()
                        .map(|p| (p.question.clone(), format!("The answer is {}.", p.answer)))
                        .collect(),
                };
                for (q, response) in records {
                    let prompt = encode_prompt(&self.config, tok, &q)?;
                    let mut completion = tok.encode(&response, false)?;
                    completion.extend(eos);
                    self.offline.push(OfflineItem::Weighted {
                        seq: TokenSequence::new(&prompt, &completion),
                        weight: 1.0,
                    });
                }
            }
            Method::Rft | Method::Dpo => {
                let questions: Vec<Problem> = (0..self.method.offline_questions.min(train.len()))
                    .map(|k| question_at(train, self.config.seed, k).clone())
                    .collect();
                let n = self.method.offline_samples;
                let seed = self.config.seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
                let (prompts, rollouts, scored) =
                    self.sample_and_score(models, sampler, reward, &questions, n, seed)?;
                let correct: Vec<bool> = scored.iter().map(is_correct).collect();
                if self.method.name == Method::Rft {
                    for (r, &c) in rollouts.iter().zip(&correct) {
                        if c && !r.tokens.is_empty() {
                            self.offline.push(OfflineItem::Weighted {
                                seq: TokenSequence::new(&prompts[r.prompt_index], &r.tokens),
                                weight: 1.0,
                            });
                        }
                    }
                } else {
                    let mut pairs = Vec::new();
                    for q in 0..questions.len() {
                        let group = &rollouts[q * n..(q + 1) * n];
                        for (c, r) in preference_pairs(&correct[q * n..(q + 1) * n], self.method.pairs_per_question) {
                            if group[c].tokens.is_empty() || group[r].tokens.is_empty() {
                                continue;
                            }
                            pairs.push((
                                TokenSequence::new(&prompts[q], &group[c].tokens),
                                TokenSequence::new(&prompts[q], &group[r].tokens),
                            ));
                        }
                    }
                    // The reference is the policy as it is now (the SFT model), evaluated once.
                    let seqs: Vec<&TokenSequence> = pairs.iter().flat_map(|(c, r)| [c, r]).collect();
                    let sums = self.sequence_logprob_sums(models, &seqs)?;
                    for (k, (chosen, rejected)) in pairs.into_iter().enumerate() {
                        self.offline.push(OfflineItem::Pair {
                            chosen,
                            rejected,
                            ref_chosen: sums[2 * k],
                            ref_rejected: sums[2 * k + 1],
                        });
                    }
                }
            }
            _ => unreachable!("online methods have no offline data"),
        }
        anyhow::ensure!(
            !self.offline.is_empty(),
            "{:?}: the offline data set is empty (no correct samples / no correct-wrong pairs); sample more",
            self.method.name
        );
        tracing::info!(method = ?self.method.name, items = self.offline.len(), "offline data ready");
        Ok(())
    }

    fn sequence_logprob_sums(&self, models: &Models, seqs: &[&TokenSequence]) -> anyhow::Result<Vec<f64>> {
        let _guard = tch::no_grad_guard();
        let mut out = Vec::with_capacity(seqs.len());
        for chunk in micro_chunks(seqs, self.config.grpo.micro_batch_size) {
            let batch = TokenBatch::new(chunk, models.pad_id(), models.device)?;
            // DPO compares the untempered policy with the untempered reference (as TRL does).
            let logp = token_logprobs(&models.policy.model, &batch, 1.0, models.autocast)?;
            let sums: Vec<f64> = Vec::try_from(
                (logp * &batch.mask)
                    .sum_dim_intlist(-1, false, Kind::Double)
                    .to_device(tch::Device::Cpu),
            )?;
            out.extend(sums);
        }
        Ok(out)
    }

    fn next_offline(&mut self, count: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(count);
        while out.len() < count.min(self.offline.len()) {
            if self.cursor >= self.order.len() {
                let epoch = self.step as u64;
                self.order = (0..self.offline.len()).collect();
                self.order.shuffle(&mut ChaCha8Rng::seed_from_u64(
                    self.config.seed ^ epoch.wrapping_mul(0x9E37_79B9),
                ));
                self.cursor = 0;
            }
            out.push(self.order[self.cursor]);
            self.cursor += 1;
        }
        out
    }

    fn optimizer_step(&mut self) -> anyhow::Result<f64> {
        let o = &self.config.optim;
        let norm = self.optimizer.clip_grad_norm(o.max_grad_norm);
        let lr = if o.warmup_steps > 0 && self.step < o.warmup_steps {
            o.lr * (self.step + 1) as f64 / o.warmup_steps as f64
        } else {
            o.lr
        };
        self.optimizer.update(lr, o.beta1, o.beta2, o.eps, o.weight_decay)?;
        self.optimizer.zero_grad();
        Ok(norm)
    }

    /// `−1/N Σ_i w_i · mean_t log π(o_i,t)`, accumulated over micro-batches (N counts zero-weight samples too).
    fn weighted_likelihood_update(
        &mut self,
        models: &Models,
        seqs: &[&TokenSequence],
        weights: &[f64],
        metrics: &mut StepMetrics,
    ) -> anyhow::Result<()> {
        let n = seqs.len().max(1) as f64;
        let active: Vec<(&TokenSequence, f64)> = seqs
            .iter()
            .zip(weights)
            .filter(|(s, w)| **w != 0.0 && s.completion_len() > 0)
            .map(|(s, w)| (*s, *w))
            .collect();
        self.optimizer.zero_grad();
        let mut loss_sum = 0.0;
        for chunk in micro_chunks(&active, self.config.grpo.micro_batch_size) {
            let chunk_seqs: Vec<&TokenSequence> = chunk.iter().map(|(s, _)| *s).collect();
            let w: Vec<f32> = chunk.iter().map(|(_, w)| *w as f32).collect();
            let batch = TokenBatch::new(&chunk_seqs, models.pad_id(), models.device)?;
            let logp = token_logprobs(&models.policy.model, &batch, 1.0, models.autocast)?;
            let per_seq = (logp * &batch.mask).sum_dim_intlist(-1, false, Kind::Float)
                / batch.mask.sum_dim_intlist(-1, false, Kind::Float).clamp_min(1.0);
            let weights = tch::Tensor::from_slice(&w).to_device(models.device);
            let loss = -(per_seq * weights).sum(Kind::Float) / n;
            loss.backward();
            loss_sum += loss.double_value(&[]);
        }
        metrics.loss = loss_sum;
        if !active.is_empty() {
            metrics.grad_norm = self.optimizer_step()?;
        }
        Ok(())
    }

    fn dpo_update(&mut self, models: &Models, items: &[usize], metrics: &mut StepMetrics) -> anyhow::Result<()> {
        let pairs: Vec<(&TokenSequence, &TokenSequence, f64, f64)> = items
            .iter()
            .filter_map(|&i| match &self.offline[i] {
                OfflineItem::Pair {
                    chosen,
                    rejected,
                    ref_chosen,
                    ref_rejected,
                } => Some((chosen, rejected, *ref_chosen, *ref_rejected)),
                OfflineItem::Weighted { .. } => None,
            })
            .collect();
        let total = pairs.len().max(1) as f64;
        self.optimizer.zero_grad();
        let (mut loss_sum, mut acc, mut margin) = (0.0, 0.0, 0.0);
        let per_mb = (self.config.grpo.micro_batch_size / 2).max(1);
        for chunk in micro_chunks(&pairs, per_mb) {
            let k = chunk.len() as i64;
            let seqs: Vec<&TokenSequence> = chunk.iter().map(|p| p.0).chain(chunk.iter().map(|p| p.1)).collect();
            let batch = TokenBatch::new(&seqs, models.pad_id(), models.device)?;
            // DPO compares the untempered policy with the untempered reference (as TRL does).
            let logp = token_logprobs(&models.policy.model, &batch, 1.0, models.autocast)?;
            let sums = (logp * &batch.mask).sum_dim_intlist(-1, false, Kind::Float);
            let refs = |f: fn(&(&TokenSequence, &TokenSequence, f64, f64)) -> f64| {
                tch::Tensor::from_slice(&chunk.iter().map(|p| f(p) as f32).collect::<Vec<_>>()).to_device(models.device)
            };
            let out = dpo_loss(
                &sums.narrow(0, 0, k),
                &sums.narrow(0, k, k),
                &refs(|p| p.2),
                &refs(|p| p.3),
                self.method.dpo_beta,
            );
            let share = k as f64 / total;
            let loss = out.loss * share;
            loss.backward();
            loss_sum += loss.double_value(&[]);
            acc += out.reward_accuracy.double_value(&[]) * share;
            margin += out.margin.double_value(&[]) * share;
        }
        metrics.loss = loss_sum;
        // For DPO the step's "reward" is the implicit reward margin and "accuracy" the pair accuracy.
        metrics.reward_mean = margin;
        metrics.accuracy = acc;
        metrics.grad_norm = self.optimizer_step()?;
        Ok(())
    }

    fn ppo_update(
        &mut self,
        models: &Models,
        seqs: &[&TokenSequence],
        outcome: &[f64],
        metrics: &mut StepMetrics,
    ) -> anyhow::Result<()> {
        let pad = models.pad_id();
        let temperature = self.config.rollout.temperature;
        let opts = self.method.ppo.clone();
        let reference = models.reference.as_ref().context("PPO needs a reference model")?;
        let (value_model, _) = self.value.as_ref().context("PPO value model missing")?;
        // Rollout statistics without autograd: old/reference log-probs and old values.
        struct Mb {
            batch: TokenBatch,
            range: std::ops::Range<usize>,
            old: tch::Tensor,
            old_values: tch::Tensor,
            advantages: tch::Tensor,
            returns: tch::Tensor,
        }
        let mut mbs = Vec::new();
        let (mut old_all, mut ref_all, mut val_all) = (Vec::new(), Vec::new(), Vec::new());
        {
            let _guard = tch::no_grad_guard();
            let mut start = 0;
            for chunk in micro_chunks(seqs, self.config.grpo.micro_batch_size) {
                let batch = TokenBatch::new(chunk, pad, models.device)?;
                let old = token_logprobs(&models.policy.model, &batch, temperature, models.autocast)?;
                let rf = token_logprobs(&reference.model, &batch, temperature, models.autocast)?;
                let t = batch.input_ids.size()[1];
                let values = value_model
                    .position_scores(&batch.input_ids, &batch.attention)?
                    .narrow(1, 0, t - 1)
                    * &batch.mask;
                old_all.extend(gather_completion(chunk, &old)?);
                ref_all.extend(gather_completion(chunk, &rf)?);
                val_all.extend(gather_completion(chunk, &values)?);
                let range = start..start + chunk.len();
                start += chunk.len();
                mbs.push(Mb {
                    old,
                    old_values: values,
                    advantages: tch::Tensor::zeros([1], (Kind::Float, models.device)),
                    returns: tch::Tensor::zeros([1], (Kind::Float, models.device)),
                    batch,
                    range,
                });
            }
        }
        let rewards: Vec<Vec<f64>> = (0..seqs.len())
            .map(|i| token_rewards(outcome[i], &old_all[i], &ref_all[i], opts.kl_coef))
            .collect();
        let (advantages, returns) = batch_advantages(&rewards, &val_all, &opts);
        for mb in &mut mbs {
            let chunk = &seqs[mb.range.clone()];
            mb.advantages = mb.batch.spread(chunk, &advantages[mb.range.clone()]);
            mb.returns = mb.batch.spread(chunk, &returns[mb.range.clone()]);
        }
        let tokens: f64 = old_all.iter().map(|v| v.len()).sum::<usize>() as f64;
        metrics.kl = old_all
            .iter()
            .zip(&ref_all)
            .flat_map(|(o, r)| o.iter().zip(r).map(|(a, b)| a - b))
            .sum::<f64>()
            / tokens.max(1.0);
        let totals = StepTotals {
            sequences: seqs.len() as f64,
            tokens,
        };
        let loss_options = GrpoLossOptions {
            beta: 0.0,
            max_completion_length: self.config.rollout.max_new_tokens,
            ..self.config.grpo.loss
        };
        for update in 0..self.config.grpo.updates_per_stage {
            self.optimizer.zero_grad();
            let (value_model, value_opt) = self.value.as_mut().expect("checked above");
            value_opt.zero_grad();
            let (mut policy_loss, mut value_loss, mut clipped, mut counted) = (0.0, 0.0, 0.0, 0.0);
            for mb in &mbs {
                let logp = token_logprobs(&models.policy.model, &mb.batch, temperature, models.autocast)?;
                let terms = PolicyTerms {
                    logprobs: &logp,
                    old_logprobs: Some(&mb.old),
                    ref_logprobs: None,
                    advantages: &mb.advantages,
                    mask: &mb.batch.mask,
                };
                let out = grpo_loss(&terms, &loss_options, totals)?;
                out.loss.backward();
                policy_loss += out.loss.double_value(&[]);
                let n = out.tokens.double_value(&[]);
                clipped += (out.clip_low.double_value(&[]) + out.clip_high.double_value(&[])) * n;
                counted += n;
                let t = mb.batch.input_ids.size()[1];
                let values = value_model
                    .position_scores(&mb.batch.input_ids, &mb.batch.attention)?
                    .narrow(1, 0, t - 1);
                let share = mb.range.len() as f64 / seqs.len() as f64;
                let vl =
                    clipped_value_loss(&values, &mb.old_values, &mb.returns, &mb.batch.mask, opts.value_clip) * share;
                vl.backward();
                value_loss += vl.double_value(&[]);
            }
            let o = &self.config.optim;
            value_opt.clip_grad_norm(o.max_grad_norm);
            value_opt.update(opts.value_lr, o.beta1, o.beta2, o.eps, o.weight_decay)?;
            value_opt.zero_grad();
            metrics.grad_norm = self.optimizer_step()?;
            metrics.loss = policy_loss + value_loss;
            if update == 0 {
                metrics.clip_high = clipped / counted.max(1.0);
            }
        }
        Ok(())
    }

    /// One step of the configured method. `questions` are this step's training questions (online methods).
    pub fn step(
        &mut self,
        models: &Models,
        sampler: &mut dyn RolloutSampler,
        reward: &dyn RewardFunction,
        questions: &[Problem],
    ) -> anyhow::Result<StepMetrics> {
        if let Some(grpo) = self.grpo.as_mut() {
            let (m, _) = grpo.step(models, sampler, reward, questions)?;
            self.step += 1;
            return Ok(m);
        }
        let started = Instant::now();
        let mut metrics = StepMetrics {
            step: self.step + 1,
            lr: self.config.optim.lr,
            ..Default::default()
        };
        match self.method.name {
            Method::Sft | Method::Rft | Method::Dpo => {
                let items = self.next_offline(self.method.batch_size);
                metrics.time_generate = 0.0;
                let train_started = Instant::now();
                if self.method.name == Method::Dpo {
                    self.dpo_update(models, &items, &mut metrics)?;
                } else {
                    let (seqs, weights): (Vec<&TokenSequence>, Vec<f64>) = items
                        .iter()
                        .filter_map(|&i| match &self.offline[i] {
                            OfflineItem::Weighted { seq, weight } => Some((seq, *weight)),
                            OfflineItem::Pair { .. } => None,
                        })
                        .unzip();
                    let seqs: Vec<TokenSequence> = seqs.into_iter().cloned().collect();
                    let refs: Vec<&TokenSequence> = seqs.iter().collect();
                    metrics.response_length =
                        refs.iter().map(|s| s.completion_len()).sum::<usize>() as f64 / refs.len().max(1) as f64;
                    self.weighted_likelihood_update(models, &refs, &weights, &mut metrics)?;
                }
                metrics.time_train = train_started.elapsed().as_secs_f64();
            }
            Method::OnlineRft | Method::Ppo => {
                let g = self.config.grpo.group_size;
                let seed = self
                    .config
                    .seed
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(self.step as u64 + 1);
                let (prompts, rollouts, scored) = self.sample_and_score(models, sampler, reward, questions, g, seed)?;
                metrics.time_generate = started.elapsed().as_secs_f64();
                let rewards: Vec<f64> = scored.iter().map(|s| s.reward).collect();
                let (mean, std) = mean_std(&rewards);
                metrics.reward_mean = mean;
                metrics.reward_std = std;
                metrics.accuracy =
                    scored.iter().filter(|s| s.correct == Some(true)).count() as f64 / scored.len().max(1) as f64;
                metrics.response_length =
                    rollouts.iter().map(|r| r.tokens.len()).sum::<usize>() as f64 / rollouts.len().max(1) as f64;
                metrics.truncated_fraction =
                    rollouts.iter().filter(|r| r.truncated).count() as f64 / rollouts.len().max(1) as f64;
                let kept: Vec<usize> = (0..rollouts.len())
                    .filter(|&i| !rollouts[i].tokens.is_empty())
                    .collect();
                let seqs: Vec<TokenSequence> = kept
                    .iter()
                    .map(|&i| TokenSequence::new(&prompts[rollouts[i].prompt_index], &rollouts[i].tokens))
                    .collect();
                let refs: Vec<&TokenSequence> = seqs.iter().collect();
                let train_started = Instant::now();
                if !refs.is_empty() {
                    if self.method.name == Method::OnlineRft {
                        let weights: Vec<f64> = kept
                            .iter()
                            .map(|&i| f64::from(u8::from(is_correct(&scored[i]))))
                            .collect();
                        self.weighted_likelihood_update(models, &refs, &weights, &mut metrics)?;
                    } else {
                        let outcome: Vec<f64> = kept.iter().map(|&i| rewards[i]).collect();
                        self.ppo_update(models, &refs, &outcome, &mut metrics)?;
                    }
                }
                metrics.time_train = train_started.elapsed().as_secs_f64();
            }
            Method::Grpo => unreachable!("handled above"),
        }
        models.sync_rollout()?;
        self.step += 1;
        Ok(metrics)
    }
}

/// RFT's filter: the verifier's verdict when the reward knows it, else a reward of at least 0.5 (a model reward).
fn is_correct(r: &RewardOutput) -> bool {
    r.correct.unwrap_or(r.reward >= 0.5)
}

/// Reads SFT records (`question`, `response`) from JSONL; malformed lines are reported and skipped.
fn read_sft(path: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    #[derive(Deserialize)]
    struct Record {
        question: String,
        response: String,
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(r) => out.push((r.question, r.response)),
            Err(e) => tracing::warn!("{}:{}: malformed SFT record skipped: {e}", path.display(), i + 1),
        }
    }
    anyhow::ensure!(!out.is_empty(), "{}: no SFT records", path.display());
    Ok(out)
}

/// Runs a §5.2 method end to end: task, offline data, steps, held-out evaluation (step 0, every `eval.every`
/// steps, last step), `metrics.jsonl`, `curves.png`, `offline.jsonl` (offline methods), `checkpoints/step-N`
/// (every `output.checkpoint_every` steps and the last), `summary.json` and the final Hugging Face export. With
/// `resume`, continues from the latest checkpoint (offline data read back from `offline.jsonl`).
pub fn run_unified(
    config: &GrpoConfig,
    method: &MethodSection,
    models: &Models,
    sampler: &mut dyn RolloutSampler,
    reward: &dyn RewardFunction,
    resume: bool,
) -> anyhow::Result<RunSummary> {
    let out = config.output.dir.clone();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut resolved = toml::Table::try_from(config)?;
    resolved.insert("method".into(), toml::Value::try_from(method)?);
    std::fs::write(out.join("config.toml"), toml::to_string_pretty(&resolved)?)?;
    let (train, eval) = load_task(config)?;
    tracing::info!(method = ?method.name, train = train.len(), held_out = eval.len(), seed = config.seed, "§5.2 run");
    let metrics_path = out.join("metrics.jsonl");
    let offline_path = out.join("offline.jsonl");
    let mut trainer = UnifiedTrainer::new(config.clone(), method.clone(), models)?;
    let checkpoint = if resume {
        crate::run::latest_checkpoint(&out)
    } else {
        None
    };
    let mut all: Vec<StepMetrics> = Vec::new();
    let baseline = match &checkpoint {
        Some(dir) => {
            let state = trainer.load_checkpoint(dir, models)?;
            if method.name.data_source() == DataSource::Offline {
                trainer.load_offline(&offline_path)?;
            }
            // Keep the records up to the checkpoint; later steps are redone.
            all = crate::metrics::read_metrics(&metrics_path)
                .unwrap_or_default()
                .into_iter()
                .filter(|m| m.step <= state.step)
                .collect();
            let kept: String = all
                .iter()
                .map(|m| serde_json::to_string(m).map(|l| l + "\n"))
                .collect::<Result<_, _>>()?;
            std::fs::write(&metrics_path, kept)?;
            all.retain(|m| m.step > 0);
            tracing::info!("resumed from {} (step {})", dir.display(), state.step);
            state.baseline_eval
        }
        None => {
            if resume {
                tracing::info!("--resume: no checkpoint in {}, starting fresh", out.display());
            }
            let _ = std::fs::remove_file(&metrics_path);
            let baseline = if eval.is_empty() {
                None
            } else {
                Some(evaluate(config, models, sampler, &eval)?)
            };
            JsonlWriter::append(&metrics_path)?.write(&StepMetrics {
                step: 0,
                eval_accuracy: baseline,
                ..Default::default()
            })?;
            trainer.prepare_offline(models, sampler, reward, &train)?;
            if method.name.data_source() == DataSource::Offline {
                trainer.save_offline(&offline_path)?;
            }
            baseline
        }
    };
    let mut writer = JsonlWriter::append(&metrics_path)?;
    let started = Instant::now();
    let first_step = trainer.step + 1;
    let mut final_eval = None;
    for step in first_step..=config.grpo.steps {
        let questions: Vec<Problem> = (0..config.grpo.questions_per_step)
            .map(|k| question_at(&train, config.seed, (step - 1) * config.grpo.questions_per_step + k).clone())
            .collect();
        let mut m = trainer.step(models, sampler, reward, &questions)?;
        let last = step == config.grpo.steps;
        if !eval.is_empty() && (last || (config.eval.every > 0 && step % config.eval.every == 0)) {
            let acc = evaluate(config, models, sampler, &eval)?;
            m.eval_accuracy = Some(acc);
            if last {
                final_eval = Some(acc);
            }
        }
        tracing::info!(step, loss = format!("{:.4}", m.loss), reward = format!("{:.3}", m.reward_mean), eval = ?m.eval_accuracy, "step");
        writer.write(&m)?;
        all.push(m);
        if let Err(e) = plot_curves(&all, baseline, &out.join("curves.png")) {
            tracing::warn!("plot failed: {e:#}");
        }
        if last || (config.output.checkpoint_every > 0 && step % config.output.checkpoint_every == 0) {
            let dir = out.join("checkpoints").join(format!("step-{step}"));
            trainer.save_checkpoint(&dir, models, baseline)?;
        }
    }
    if config.grpo.steps > 0 {
        seekmath_model::save_pretrained(&models.policy, &out.join("final")).context("exporting the final policy")?;
    }
    let summary = RunSummary {
        baseline_eval: baseline,
        final_eval,
        steps: config.grpo.steps,
        seconds_per_step: started.elapsed().as_secs_f64()
            / (config.grpo.steps + 1).saturating_sub(first_step).max(1) as f64,
    };
    std::fs::write(out.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_method_config_loads() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        for (file, method) in [
            ("rl-sft-smollm2-arith.toml", Method::Sft),
            ("rl-rft-smollm2-arith.toml", Method::Rft),
            ("rl-online-rft-smollm2-arith.toml", Method::OnlineRft),
            ("rl-dpo-smollm2-arith.toml", Method::Dpo),
            ("rl-ppo-smollm2-arith.toml", Method::Ppo),
            ("rl-grpo-smollm2-arith.toml", Method::Grpo),
        ] {
            let (config, m) = load_unified(&dir.join(file), &["model.path=/x".into()]).unwrap();
            assert_eq!(m.name, method, "{file}");
            assert_eq!(
                m.name.data_source() == DataSource::Online,
                matches!(method, Method::OnlineRft | Method::Ppo | Method::Grpo)
            );
            assert_eq!(config.grpo.loss.beta, 0.04, "{file}");
        }
        let (_, m) = load_unified(
            &dir.join("rl-dpo-smollm2-arith.toml"),
            &["model.path=/x".into(), "method.dpo_beta=0.3".into()],
        )
        .unwrap();
        assert_eq!(m.dpo_beta, 0.3);
        assert!(load_unified(&dir.join("rl-dpo-smollm2-arith.toml"), &["method.dpo_beta=-1".into()]).is_err());
    }

    #[test]
    fn process_and_iterative_configs_load() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let (c, rm) = crate::config::load_with_section::<crate::reward_training::RmSection>(
            &dir.join("prm-smollm2-arith.toml"),
            &[],
            "rm",
        )
        .unwrap();
        assert_eq!(rm.kind, RewardModelKind::Process);
        assert_eq!(rm.shepherd.boundary, crate::process::StepBoundary::Line);
        assert_eq!(c.task.eval_size, 500);
        let c = GrpoConfig::load(&dir.join("grpo-process-smollm2-arith.toml"), &[]).unwrap();
        assert_eq!(c.grpo.estimator, crate::advantage::AdvantageEstimator::Process);
        assert!(c.reward_model.process.is_some());
        let (c, it) = crate::iterative::load_iterative(&dir.join("iterative-smollm2-arith.toml"), &[]).unwrap();
        assert_eq!(c.grpo.estimator, crate::advantage::AdvantageEstimator::Process);
        assert_eq!((it.iterative.iterations, it.iterative.replay_fraction), (2, 0.1));
    }
}
