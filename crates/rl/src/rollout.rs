//! Rollouts: sampling `G` completions per question from the current policy.
//!
//! The trainer talks to a [`RolloutSampler`]. [`EngineSampler`] adapts the model crate's fast batched engine (KV
//! cache, shared prefill, CUDA graphs) and is what runs; [`ReferenceSampler`] (a full re-forward per token) is
//! small enough to trust at a glance and is what the engine is checked against in the tests.

use seekmath_model::engine::{Engine, EngineOptions, FinishReason, SamplingParams};
use seekmath_model::{CausalLm, Tokenizer};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Sampling settings of an exploration stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutParams {
    /// Completion length limit (the paper's "max length 1024").
    pub max_new_tokens: usize,
    /// Softmax temperature (0 = greedy).
    pub temperature: f64,
    /// Nucleus sampling threshold (1 = off).
    pub top_p: f64,
    /// Top-k filter (0 = off).
    pub top_k: usize,
    /// Stop strings (in addition to EOS).
    pub stop: Vec<String>,
}

impl Default for RolloutParams {
    fn default() -> Self {
        Self {
            max_new_tokens: 1024,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            stop: Vec::new(),
        }
    }
}

/// One sampled completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Rollout {
    /// Index of the prompt it answers.
    pub prompt_index: usize,
    /// Generated token ids (EOS included when generation ended on it; stop strings cut).
    pub tokens: Vec<u32>,
    /// Decoded text (special tokens skipped).
    pub text: String,
    /// True when generation stopped at `max_new_tokens`.
    pub truncated: bool,
}

/// Anything that can sample `n` completions for each prompt. Output order: prompt-major, then sample index.
pub trait RolloutSampler {
    /// Samples `n` completions of every prompt, deterministically in `seed`.
    fn sample(
        &mut self,
        prompts: &[Vec<u32>],
        n: usize,
        params: &RolloutParams,
        seed: u64,
    ) -> anyhow::Result<Vec<Rollout>>;
}

/// A plain sampler: re-runs the full forward for every new token. Quadratic, but short and easy to trust; meant
/// for tiny models (tests) and as the reference the fast engine is checked against.
pub struct ReferenceSampler<'a> {
    model: &'a CausalLm,
    tokenizer: &'a Tokenizer,
}

impl<'a> ReferenceSampler<'a> {
    /// A sampler over `model` with `tokenizer` (for EOS ids and decoding).
    pub fn new(model: &'a CausalLm, tokenizer: &'a Tokenizer) -> Self {
        Self { model, tokenizer }
    }
}

/// Picks the next token from `[N, V]` logits with temperature, top-k and top-p; greedy when temperature is 0.
pub fn sample_next(logits: &Tensor, params: &RolloutParams) -> Tensor {
    let logits = logits.to_kind(Kind::Float);
    if params.temperature <= 0.0 {
        return logits.argmax(-1, false);
    }
    let mut logits = logits / params.temperature;
    let vocab = logits.size()[1];
    if params.top_k > 0 && (params.top_k as i64) < vocab {
        let (top, _) = logits.topk(params.top_k as i64, -1, true, true);
        let threshold = top.narrow(1, params.top_k as i64 - 1, 1);
        logits = logits.masked_fill(&logits.lt_tensor(&threshold), f64::NEG_INFINITY);
    }
    if params.top_p < 1.0 {
        let (sorted, order) = logits.sort(-1, true);
        let probs = sorted.softmax(-1, Kind::Float);
        // Drop a token when the mass before it already reaches top_p (the first token always stays).
        let before = probs.cumsum(-1, Kind::Float) - &probs;
        let drop_sorted = before.gt(params.top_p);
        let drop = drop_sorted.scatter(-1, &order, &drop_sorted);
        logits = logits.masked_fill(&drop, f64::NEG_INFINITY);
    }
    logits.softmax(-1, Kind::Float).multinomial(1, true).squeeze_dim(-1)
}

impl RolloutSampler for ReferenceSampler<'_> {
    fn sample(
        &mut self,
        prompts: &[Vec<u32>],
        n: usize,
        params: &RolloutParams,
        seed: u64,
    ) -> anyhow::Result<Vec<Rollout>> {
        let _guard = tch::no_grad_guard();
        tch::manual_seed(seed as i64);
        let device = self.model.device();
        let rows: Vec<(usize, &Vec<u32>)> = prompts
            .iter()
            .enumerate()
            .flat_map(|(i, p)| std::iter::repeat_n((i, p), n))
            .collect();
        let longest = rows.iter().map(|(_, p)| p.len()).max().unwrap_or(0);
        let pad = crate::models::pad_or_eos_id(self.tokenizer);
        // Left-pad so every row's next token is at the last position.
        let mut ids = Vec::with_capacity(rows.len() * longest);
        let mut mask = Vec::with_capacity(rows.len() * longest);
        for (_, p) in &rows {
            anyhow::ensure!(!p.is_empty(), "empty prompt");
            let k = longest - p.len();
            ids.extend(std::iter::repeat_n(pad as i64, k).chain(p.iter().map(|&t| t as i64)));
            mask.extend(std::iter::repeat_n(0i64, k).chain(std::iter::repeat_n(1i64, p.len())));
        }
        let b = rows.len() as i64;
        let mut input = Tensor::from_slice(&ids).view([b, longest as i64]).to_device(device);
        let mut attention = Tensor::from_slice(&mask).view([b, longest as i64]).to_device(device);
        let eos: Vec<u32> = self.tokenizer.eos_token_ids().to_vec();
        let mut generated: Vec<Vec<u32>> = vec![Vec::new(); rows.len()];
        let mut done = vec![false; rows.len()];
        for _ in 0..params.max_new_tokens {
            if done.iter().all(|d| *d) {
                break;
            }
            let hidden = self.model.forward_hidden(&input, Some(&attention));
            let last = hidden.select(1, hidden.size()[1] - 1);
            let next = sample_next(&self.model.logits(&last), params);
            let next_ids: Vec<i64> = Vec::try_from(next.to_device(tch::Device::Cpu))?;
            let mut keep = Vec::with_capacity(rows.len());
            for (r, &t) in next_ids.iter().enumerate() {
                keep.push(i64::from(!done[r]));
                if done[r] {
                    continue;
                }
                generated[r].push(t as u32);
                if eos.contains(&(t as u32)) || hits_stop(self.tokenizer, &generated[r], &params.stop)? {
                    done[r] = true;
                }
            }
            let next_col = Tensor::from_slice(&next_ids).view([b, 1]).to_device(device);
            let keep_col = Tensor::from_slice(&keep).view([b, 1]).to_device(device);
            input = Tensor::cat(&[input, next_col], 1);
            attention = Tensor::cat(&[attention, keep_col], 1);
        }
        finish(self.tokenizer, prompts, n, generated, &done, params)
    }
}

/// The default sampler of `seekmath rl grpo`: the model crate's batched [`Engine`] (shared prefill per group,
/// preallocated KV cache, batch-bucket compaction, CUDA-graph decode on GPU). Its random stream per sample is a
/// function of (seed, prompt index, sample index) only, so rollouts do not depend on batch layout or on other
/// users of libtorch's global generator.
pub struct EngineSampler<'a> {
    engine: Engine<'a>,
}

impl<'a> EngineSampler<'a> {
    /// A sampler over `model` with `tokenizer` and the engine's default options.
    pub fn new(model: &'a CausalLm, tokenizer: &'a Tokenizer) -> Self {
        Self::with_options(model, tokenizer, EngineOptions::default())
    }

    /// A sampler with explicit engine options (batch rows per wave, CUDA graphs).
    pub fn with_options(model: &'a CausalLm, tokenizer: &'a Tokenizer, options: EngineOptions) -> Self {
        Self {
            engine: Engine::with_options(model, tokenizer, options),
        }
    }
}

impl RolloutSampler for EngineSampler<'_> {
    fn sample(
        &mut self,
        prompts: &[Vec<u32>],
        n: usize,
        params: &RolloutParams,
        seed: u64,
    ) -> anyhow::Result<Vec<Rollout>> {
        let _guard = tch::no_grad_guard();
        let request = SamplingParams {
            max_new_tokens: params.max_new_tokens,
            temperature: params.temperature,
            top_p: params.top_p,
            top_k: params.top_k,
            seed,
            stop: params.stop.clone(),
            n,
            ignore_eos: false,
        };
        Ok(self
            .engine
            .generate(prompts, &request)?
            .into_iter()
            .map(|c| Rollout {
                prompt_index: c.prompt_index,
                truncated: c.finish_reason == FinishReason::Length,
                tokens: c.tokens,
                text: c.text,
            })
            .collect())
    }
}

/// Decodes, cuts stop strings and packs rollouts in prompt-major order.
fn finish(
    tokenizer: &Tokenizer,
    prompts: &[Vec<u32>],
    n: usize,
    mut generated: Vec<Vec<u32>>,
    done: &[bool],
    params: &RolloutParams,
) -> anyhow::Result<Vec<Rollout>> {
    let mut out = Vec::with_capacity(prompts.len() * n);
    for (r, tokens) in generated.iter_mut().enumerate() {
        let mut text = tokenizer.decode(tokens, true)?;
        if let Some(cut) = params.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
            text.truncate(cut);
        }
        out.push(Rollout {
            prompt_index: r / n,
            tokens: std::mem::take(tokens),
            text,
            truncated: !done[r],
        });
    }
    Ok(out)
}

fn hits_stop(tokenizer: &Tokenizer, tokens: &[u32], stop: &[String]) -> anyhow::Result<bool> {
    if stop.is_empty() {
        return Ok(false);
    }
    let tail = &tokens[tokens.len().saturating_sub(16)..];
    let text = tokenizer.decode(tail, true)?;
    Ok(stop.iter().any(|s| text.contains(s.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_picks_argmax_and_top_k_one_is_greedy() {
        let logits = Tensor::from_slice(&[0.1f32, 3.0, 0.2, 5.0, 0.0, 0.0]).view([2, 3]);
        let greedy = RolloutParams {
            temperature: 0.0,
            ..Default::default()
        };
        assert_eq!(Vec::<i64>::try_from(sample_next(&logits, &greedy)).unwrap(), vec![1, 0]);
        tch::manual_seed(0);
        let top1 = RolloutParams {
            temperature: 1.0,
            top_k: 1,
            ..Default::default()
        };
        for _ in 0..5 {
            assert_eq!(Vec::<i64>::try_from(sample_next(&logits, &top1)).unwrap(), vec![1, 0]);
        }
    }

    #[test]
    fn top_p_keeps_the_nucleus_only() {
        // Probabilities ≈ [0.64, 0.24, 0.09, 0.03]: top_p 0.5 keeps only token 0; 0.7 keeps tokens 0 and 1.
        let logits = Tensor::from_slice(&[3.0f32, 2.0, 1.0, 0.0])
            .view([1, 4])
            .repeat([200, 1]);
        tch::manual_seed(1);
        let p = RolloutParams {
            top_p: 0.5,
            ..Default::default()
        };
        let got: Vec<i64> = Vec::try_from(sample_next(&logits, &p)).unwrap();
        assert!(got.iter().all(|t| *t == 0));
        let p = RolloutParams {
            top_p: 0.7,
            ..Default::default()
        };
        let got: Vec<i64> = Vec::try_from(sample_next(&logits, &p)).unwrap();
        assert!(got.iter().all(|t| *t <= 1) && got.contains(&1));
    }
}
