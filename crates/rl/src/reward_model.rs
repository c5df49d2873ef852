//! Reward models on the policy architecture (DeepSeekMath §4.1.2–4.1.3): an outcome reward model (ORM) scores a
//! whole completion at its last token, a process reward model (PRM) scores every reasoning step at the step's last
//! token. Both are the policy's transformer with a scalar head (`score.weight`, `score.bias`) on the final-norm
//! hidden state, trained with binary cross-entropy on correctness labels (hard 0/1 or soft fractions).
//!
//! Why the policy architecture: the paper initialises its reward models from the SFT model, so the RM reads text
//! exactly as the policy writes it (same tokenizer, same step boundaries in token space).
//!
//! A saved model is a folder: `reward_model.safetensors` (backbone and head) and `reward_model.json` (kind, step
//! boundary, base model for the config and tokenizer).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use seekmath_model::{load, LoadedModel, Tokenizer};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use crate::advantage::StepReward;
use crate::config::GrpoConfig;
use crate::optim::AdamW;
use crate::process::{completion_steps, StepBoundary, StepScorer};
use crate::reward::{RewardFunction, RewardInput, RewardOutput};
use crate::rollout::Rollout;
use crate::trainer::encode_prompt;

/// Outcome or process reward model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RewardModelKind {
    /// One score per completion, at its last token.
    Outcome,
    /// One score per reasoning step, at the step's last token.
    #[default]
    Process,
}

/// What `reward_model.json` records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardModelMeta {
    /// Outcome or process.
    pub kind: RewardModelKind,
    /// How a PRM finds steps in completions.
    pub boundary: StepBoundary,
    /// The model the backbone was initialised from (config and tokenizer are read from it on load).
    pub base: PathBuf,
}

/// One training/evaluation record in token space: `prompt ‖ completion` ids, the absolute positions that are
/// scored (step ends, or the last token for an ORM) and their labels in [0, 1].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RmExample {
    /// Token ids of prompt and completion.
    pub ids: Vec<u32>,
    /// Scored positions (indices into `ids`), strictly increasing.
    pub positions: Vec<usize>,
    /// Label per position: 1 = leads to a correct answer, 0 = does not; fractions for soft labels.
    pub labels: Vec<f64>,
    /// Question identifier (held-out splits are by question, so no question is on both sides).
    pub question: String,
}

/// A reward model: backbone, scalar head and metadata.
pub struct RewardModel {
    /// Backbone (the policy architecture) and its variables; the head lives in the same var store.
    pub model: LoadedModel,
    head_weight: Tensor,
    head_bias: Tensor,
    /// Kind, boundary and base.
    pub meta: RewardModelMeta,
    /// Autocast kind for forwards on GPU (bf16), `None` on CPU.
    pub autocast: Option<Kind>,
}

impl RewardModel {
    /// A fresh reward model: the backbone from `base` (Hugging Face folder, GGUF or llama2.c file) in fp32, and a
    /// zero-initialised head, so every score starts at probability 0.5.
    pub fn new(
        base: &Path,
        meta_kind: RewardModelKind,
        boundary: StepBoundary,
        device: Device,
    ) -> anyhow::Result<Self> {
        let model = load(base, device, Kind::Float).with_context(|| format!("loading RM base {}", base.display()))?;
        anyhow::ensure!(model.tokenizer.is_some(), "{} carries no tokenizer", base.display());
        let hidden = model.config.hidden_size as i64;
        let root = model.vs.root();
        let score = root.sub("score");
        let head_weight = score.var("weight", &[1, hidden], nn::Init::Const(0.0));
        let head_bias = score.var("bias", &[1], nn::Init::Const(0.0));
        Ok(Self {
            model,
            head_weight,
            head_bias,
            meta: RewardModelMeta {
                kind: meta_kind,
                boundary,
                base: base.to_path_buf(),
            },
            autocast: device.is_cuda().then_some(Kind::BFloat16),
        })
    }

    /// Loads a folder written by [`RewardModel::save`].
    pub fn load(dir: &Path, device: Device) -> anyhow::Result<Self> {
        let meta_path = dir.join("reward_model.json");
        let meta: RewardModelMeta = serde_json::from_str(
            &std::fs::read_to_string(&meta_path).with_context(|| format!("reading {}", meta_path.display()))?,
        )
        .with_context(|| format!("parsing {}", meta_path.display()))?;
        let rm = Self::new(&meta.base, meta.kind, meta.boundary.clone(), device)?;
        let weights = dir.join("reward_model.safetensors");
        let saved: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&weights)
            .with_context(|| format!("reading {}", weights.display()))?
            .into_iter()
            .collect();
        let _guard = tch::no_grad_guard();
        for (name, mut var) in rm.model.vs.variables() {
            let src = saved
                .get(&name)
                .with_context(|| format!("{}: missing {name}", weights.display()))?;
            var.copy_(src);
        }
        Ok(rm)
    }

    /// Writes `reward_model.safetensors` and `reward_model.json` into `dir`.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        self.model
            .vs
            .save(dir.join("reward_model.safetensors"))
            .context("saving reward model weights")?;
        std::fs::write(dir.join("reward_model.json"), serde_json::to_string_pretty(&self.meta)?)?;
        Ok(())
    }

    /// The backbone's tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        self.model.tokenizer.as_ref().expect("checked at construction")
    }

    /// Head logits at every scored position of `examples`, concatenated in order (`[Σ positions]`, float32).
    pub fn logits(&self, examples: &[&RmExample]) -> anyhow::Result<Tensor> {
        let device = self.model.model.device();
        let t = examples.iter().map(|e| e.ids.len()).max().unwrap_or(1).max(1);
        let pad = self.tokenizer().pad_token_id().unwrap_or(0) as i64;
        let mut ids = vec![pad; examples.len() * t];
        let mut attn = vec![0i64; examples.len() * t];
        let mut flat = Vec::new();
        for (r, e) in examples.iter().enumerate() {
            anyhow::ensure!(
                e.positions.len() == e.labels.len() && e.positions.iter().all(|&p| p < e.ids.len()),
                "reward-model example for {:?}: positions and labels disagree",
                e.question
            );
            for (k, &id) in e.ids.iter().enumerate() {
                ids[r * t + k] = id as i64;
            }
            attn[r * t..r * t + e.ids.len()].fill(1);
            flat.extend(e.positions.iter().map(|&p| (r * t + p) as i64));
        }
        let b = examples.len() as i64;
        let input = Tensor::from_slice(&ids).view([b, t as i64]).to_device(device);
        let mask = Tensor::from_slice(&attn).view([b, t as i64]).to_device(device);
        let hidden = {
            let _autocast = match self.autocast {
                Some(kind) => {
                    Some(seekmath_shim::AutocastGuard::new(device, kind).map_err(|e| anyhow::anyhow!("{e}"))?)
                }
                None => None,
            };
            self.model.model.forward_hidden(&input, Some(&mask))
        };
        let c = hidden.size()[2];
        let picked = hidden
            .reshape([-1, c])
            .index_select(0, &Tensor::from_slice(&flat).to_device(device))
            .to_kind(Kind::Float);
        Ok(picked.matmul(&self.head_weight.transpose(0, 1)).squeeze_dim(-1) + &self.head_bias)
    }

    /// Raw head outputs at every position of a padded batch, `[B, T]` float32 (a value model reads these).
    pub fn position_scores(&self, input_ids: &Tensor, attention: &Tensor) -> anyhow::Result<Tensor> {
        let hidden = crate::seqbatch::with_autocast(input_ids.device(), self.autocast, || {
            self.model.model.forward_hidden(input_ids, Some(attention))
        })?;
        Ok(hidden
            .to_kind(Kind::Float)
            .matmul(&self.head_weight.transpose(0, 1))
            .squeeze_dim(-1)
            + &self.head_bias)
    }

    /// Probabilities (sigmoid of the head) at every scored position, per example, `batch_size` examples at a time.
    pub fn predict(&self, examples: &[RmExample], batch_size: usize) -> anyhow::Result<Vec<Vec<f64>>> {
        let _guard = tch::no_grad_guard();
        let mut out = Vec::with_capacity(examples.len());
        for chunk in examples.chunks(batch_size.max(1)) {
            let refs: Vec<&RmExample> = chunk.iter().collect();
            let probs: Vec<f64> = Vec::try_from(
                self.logits(&refs)?
                    .sigmoid()
                    .to_kind(Kind::Double)
                    .to_device(Device::Cpu),
            )?;
            let mut offset = 0;
            for e in chunk {
                out.push(probs[offset..offset + e.positions.len()].to_vec());
                offset += e.positions.len();
            }
        }
        Ok(out)
    }

    /// A token-space example for scoring `completion` (sampled tokens) after `prompt`: step ends for a PRM, the last
    /// token for an ORM. Labels are zero (unknown). `None` for an empty completion.
    pub fn scoring_example(
        &self,
        prompt: &[u32],
        completion: &[u32],
        question: &str,
    ) -> anyhow::Result<Option<RmExample>> {
        if completion.is_empty() {
            return Ok(None);
        }
        let ends = match self.meta.kind {
            RewardModelKind::Outcome => vec![completion.len() - 1],
            RewardModelKind::Process => completion_steps(self.tokenizer(), completion, &self.meta.boundary)?,
        };
        if ends.is_empty() {
            return Ok(None);
        }
        Ok(Some(RmExample {
            ids: prompt.iter().chain(completion).copied().collect(),
            positions: ends.iter().map(|e| prompt.len() + e).collect(),
            labels: vec![0.0; ends.len()],
            question: question.to_string(),
        }))
    }
}

impl StepScorer for RewardModel {
    fn score_steps(&self, prompts: &[&[u32]], rollouts: &[Rollout]) -> anyhow::Result<Vec<Vec<StepReward>>> {
        anyhow::ensure!(
            self.meta.kind == RewardModelKind::Process,
            "process supervision needs a process reward model, this one is {:?}",
            self.meta.kind
        );
        let mut examples = Vec::new();
        let mut owner = Vec::new();
        for (i, (p, r)) in prompts.iter().zip(rollouts).enumerate() {
            if let Some(e) = self.scoring_example(p, &r.tokens, "")? {
                examples.push(e);
                owner.push(i);
            }
        }
        let probs = self.predict(&examples, 32)?;
        let mut out = vec![Vec::new(); rollouts.len()];
        for ((i, e), p) in owner.into_iter().zip(&examples).zip(probs) {
            let prompt_len = prompts[i].len();
            out[i] = e
                .positions
                .iter()
                .zip(p)
                .map(|(&pos, reward)| StepReward {
                    end_token: pos - prompt_len,
                    reward,
                })
                .collect();
        }
        Ok(out)
    }
}

/// Training settings of a reward model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RmTrainOptions {
    /// AdamW learning rate.
    pub lr: f64,
    /// Passes over the training examples.
    pub epochs: usize,
    /// Examples per optimiser step.
    pub batch_size: usize,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Gradient-norm clip (0 = off).
    pub max_grad_norm: f64,
    /// Seed of the example order.
    pub seed: u64,
}

impl Default for RmTrainOptions {
    fn default() -> Self {
        Self {
            lr: 1e-5,
            epochs: 1,
            batch_size: 16,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            seed: 0,
        }
    }
}

/// Held-out quality of a reward model on labelled positions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RmEvaluation {
    /// Labelled positions (steps, or completions for an ORM).
    pub positions: usize,
    /// Fraction whose thresholded prediction (p > 0.5) equals the thresholded label (label > 0.5).
    pub step_accuracy: f64,
    /// Mean binary cross-entropy against the (possibly soft) labels.
    pub bce: f64,
    /// Fraction of positive labels (the accuracy of always answering the majority class is max(this, 1 − this)).
    pub positive_fraction: f64,
}

/// Trains a reward model with BCE; the optimiser state persists across calls (iterative RL continues training).
pub struct RmTrainer {
    optimizer: AdamW,
    /// Optimiser steps done.
    pub steps: usize,
}

impl RmTrainer {
    /// A trainer for `rm`'s variables (backbone and head).
    pub fn new(rm: &RewardModel) -> Self {
        Self {
            optimizer: AdamW::new(&rm.model.vs),
            steps: 0,
        }
    }

    /// Writes the optimiser state (AdamW moments and step) for checkpoints.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        self.optimizer.save(path)
    }

    /// Restores the optimiser state written by [`RmTrainer::save`].
    pub fn load(&mut self, path: &Path) -> anyhow::Result<()> {
        self.optimizer.load(path)
    }

    /// Runs `options.epochs` passes over `examples`; returns the mean training loss of each epoch.
    pub fn train(
        &mut self,
        rm: &RewardModel,
        examples: &[RmExample],
        options: &RmTrainOptions,
    ) -> anyhow::Result<Vec<f64>> {
        anyhow::ensure!(!examples.is_empty(), "no reward-model training examples");
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ self.steps as u64);
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut epoch_losses = Vec::new();
        let bar =
            indicatif::ProgressBar::new((options.epochs * examples.len().div_ceil(options.batch_size.max(1))) as u64);
        for _ in 0..options.epochs {
            order.shuffle(&mut rng);
            let (mut total, mut count) = (0.0, 0usize);
            for chunk in order.chunks(options.batch_size.max(1)) {
                let batch: Vec<&RmExample> = chunk.iter().map(|&i| &examples[i]).collect();
                let labels: Vec<f32> = batch.iter().flat_map(|e| e.labels.iter().map(|&l| l as f32)).collect();
                if labels.is_empty() {
                    continue;
                }
                let logits = rm.logits(&batch)?;
                let target = Tensor::from_slice(&labels).to_device(logits.device());
                let loss = logits.binary_cross_entropy_with_logits::<Tensor>(&target, None, None, tch::Reduction::Mean);
                self.optimizer.zero_grad();
                loss.backward();
                self.optimizer.clip_grad_norm(options.max_grad_norm);
                self.optimizer
                    .update(options.lr, 0.9, 0.999, 1e-8, options.weight_decay)?;
                self.optimizer.zero_grad();
                self.steps += 1;
                total += loss.double_value(&[]);
                count += 1;
                bar.inc(1);
            }
            epoch_losses.push(total / count.max(1) as f64);
        }
        bar.finish_and_clear();
        Ok(epoch_losses)
    }
}

/// Step-level (or outcome-level, for an ORM) accuracy and BCE of `rm` on labelled `examples`.
pub fn evaluate_rm(rm: &RewardModel, examples: &[RmExample], batch_size: usize) -> anyhow::Result<RmEvaluation> {
    let probs = rm.predict(examples, batch_size)?;
    let (mut n, mut right, mut bce, mut pos) = (0usize, 0usize, 0.0, 0usize);
    for (e, p) in examples.iter().zip(probs) {
        for (&label, prob) in e.labels.iter().zip(p) {
            n += 1;
            if (prob > 0.5) == (label > 0.5) {
                right += 1;
            }
            if label > 0.5 {
                pos += 1;
            }
            let q = prob.clamp(1e-7, 1.0 - 1e-7);
            bce -= label * q.ln() + (1.0 - label) * (1.0 - q).ln();
        }
    }
    let d = n.max(1) as f64;
    Ok(RmEvaluation {
        positions: n,
        step_accuracy: right as f64 / d,
        bce: bce / d,
        positive_fraction: pos as f64 / d,
    })
}

/// Splits examples by question: every `1/fraction`-th distinct question (in a seeded order) goes to held-out.
pub fn split_by_question(
    examples: Vec<RmExample>,
    held_out_fraction: f64,
    seed: u64,
) -> (Vec<RmExample>, Vec<RmExample>) {
    let mut questions: Vec<String> = examples.iter().map(|e| e.question.clone()).collect();
    questions.sort();
    questions.dedup();
    questions.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n_held = ((questions.len() as f64) * held_out_fraction).round() as usize;
    let held: std::collections::HashSet<String> = questions.into_iter().take(n_held).collect();
    examples.into_iter().partition(|e| !held.contains(&e.question))
}

/// One line of a user-labelled reward-model file.
///
/// Process labels: `{"question": "...", "steps": ["...", ...], "labels": [1, 0, ...]}` (labels in [0, 1], one per
/// step; steps are joined with the model's step boundary). Outcome labels: `{"question", "completion", "label"}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelledRecord {
    question: String,
    #[serde(default)]
    steps: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<Vec<f64>>,
    #[serde(default)]
    completion: Option<String>,
    #[serde(default)]
    label: Option<f64>,
}

/// Reads a labelled JSONL file into token-space examples for `rm`, prompting questions as `config.task` says.
/// Malformed records (bad JSON, label counts that do not match the steps found, labels outside [0, 1]) are reported
/// with file and line, counted and skipped. Returns the examples and the number skipped.
pub fn read_labelled(path: &Path, rm: &RewardModel, config: &GrpoConfig) -> anyhow::Result<(Vec<RmExample>, usize)> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let tok = rm.tokenizer();
    let (mut out, mut skipped) = (Vec::new(), 0usize);
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = (|| -> anyhow::Result<RmExample> {
            let r: LabelledRecord = serde_json::from_str(&line)?;
            let prompt = encode_prompt(config, tok, &r.question)?;
            let (text, labels) = match (rm.meta.kind, r.steps, r.labels, r.completion, r.label) {
                (RewardModelKind::Process, Some(steps), Some(labels), None, None) => {
                    (rm.meta.boundary.join(&steps), labels)
                }
                (RewardModelKind::Outcome, None, None, Some(c), Some(l)) => (c, vec![l]),
                (kind, ..) => anyhow::bail!(
                    "a {kind:?} reward model needs {}",
                    match kind {
                        RewardModelKind::Process => "`steps` and `labels`",
                        RewardModelKind::Outcome => "`completion` and `label`",
                    }
                ),
            };
            anyhow::ensure!(
                labels.iter().all(|l| (0.0..=1.0).contains(l)),
                "labels must lie in [0, 1]"
            );
            let completion = tok.encode(&text, false)?;
            let example = rm
                .scoring_example(&prompt, &completion, &r.question)?
                .context("empty completion")?;
            anyhow::ensure!(
                example.positions.len() == labels.len(),
                "{} labels but {} steps found in the tokenised text",
                labels.len(),
                example.positions.len()
            );
            Ok(RmExample { labels, ..example })
        })();
        match parsed {
            Ok(e) => out.push(e),
            Err(e) => {
                skipped += 1;
                tracing::warn!("{}:{}: record skipped: {e:#}", path.display(), i + 1);
            }
        }
    }
    Ok((out, skipped))
}

/// The ORM as a [`RewardFunction`]: reward = the model's probability that the answer is correct. Completions are
/// re-tokenised from text; prompts are rendered with the run's prompt template.
pub struct OutcomeRewardModel {
    rm: Mutex<RewardModel>,
    config: GrpoConfig,
}

impl OutcomeRewardModel {
    /// Wraps an outcome reward model; `config` supplies the prompt template.
    pub fn new(rm: RewardModel, config: GrpoConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(
            rm.meta.kind == RewardModelKind::Outcome,
            "outcome supervision needs an outcome reward model, this one is {:?}",
            rm.meta.kind
        );
        Ok(Self {
            rm: Mutex::new(rm),
            config,
        })
    }

    fn probabilities(&self, inputs: &[RewardInput]) -> anyhow::Result<Vec<f64>> {
        let rm = self
            .rm
            .lock()
            .map_err(|_| anyhow::anyhow!("reward model lock poisoned"))?;
        let mut examples = Vec::with_capacity(inputs.len());
        let mut owner = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let prompt = encode_prompt(&self.config, rm.tokenizer(), input.question)?;
            let completion = rm.tokenizer().encode(input.completion, false)?;
            if let Some(e) = rm.scoring_example(&prompt, &completion, input.question)? {
                examples.push(e);
                owner.push(i);
            }
        }
        let probs = rm.predict(&examples, 32)?;
        let mut out = vec![0.0; inputs.len()];
        for (i, p) in owner.into_iter().zip(probs) {
            out[i] = p[0];
        }
        Ok(out)
    }
}

impl RewardFunction for OutcomeRewardModel {
    fn name(&self) -> &str {
        "outcome-reward-model"
    }

    fn score(&self, input: &RewardInput) -> RewardOutput {
        self.score_batch(std::slice::from_ref(input))[0]
    }

    fn score_batch(&self, inputs: &[RewardInput]) -> Vec<RewardOutput> {
        match self.probabilities(inputs) {
            Ok(p) => p
                .into_iter()
                .map(|reward| RewardOutput { reward, correct: None })
                .collect(),
            Err(e) => {
                // The trait has no error channel; a failing RM must not silently reward everything equally.
                panic!("outcome reward model failed: {e:#}");
            }
        }
    }
}

/// The outcome reward a run's config asks for: the verifier alone, or `verifier_weight · verifier +
/// outcome_weight · ORM` when `reward_model.outcome` is set (§4.1.2 outcome supervision from a reward model).
pub fn configured_outcome_reward(config: &GrpoConfig, device: Device) -> anyhow::Result<Box<dyn RewardFunction>> {
    let verifier = crate::reward::VerifierReward::new(config.reward.clone())?;
    let section = &config.reward_model;
    let Some(dir) = &section.outcome else {
        return Ok(Box::new(verifier));
    };
    let orm = OutcomeRewardModel::new(RewardModel::load(dir, device)?, config.clone())?;
    Ok(Box::new(crate::reward::WeightedRewards::new(vec![
        (section.verifier_weight, Box::new(verifier)),
        (section.outcome_weight, Box::new(orm)),
    ])))
}

/// The process reward model a run's config asks for (`reward_model.process`), if any.
pub fn configured_process_reward(config: &GrpoConfig, device: Device) -> anyhow::Result<Option<RewardModel>> {
    config
        .reward_model
        .process
        .as_ref()
        .map(|dir| {
            let rm = RewardModel::load(dir, device)?;
            anyhow::ensure!(
                rm.meta.kind == RewardModelKind::Process,
                "reward_model.process = {}: a {:?} reward model",
                dir.display(),
                rm.meta.kind
            );
            Ok(rm)
        })
        .transpose()
}
