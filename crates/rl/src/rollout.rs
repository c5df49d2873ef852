//! Rollouts: sampling `G` completions per question from the current policy.
//!
//! The trainer talks to a [`RolloutSampler`] rather than to a concrete engine so that the fast batched engine of
//! the model crate (KV cache, shared prefill, CUDA graphs) plugs in from the CLI, while this crate keeps a small,
//! obviously-correct [`ReferenceSampler`] (full re-forward per token) for CPU tests and as a fallback.

use seekmath_model::{CausalLm, KvCache, Tokenizer};
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
        let pad = self
            .tokenizer
            .pad_token_id()
            .or_else(|| self.tokenizer.eos_token_ids().first().copied())
            .unwrap_or(0);
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

/// A KV-cached sampler: one prefill per prompt shared by its `n` samples, then one cached decode step per token.
/// Linear in the completion length; the default sampler of `seekmath rl grpo`.
pub struct CachedSampler<'a> {
    model: &'a CausalLm,
    tokenizer: &'a Tokenizer,
}

impl<'a> CachedSampler<'a> {
    /// A sampler over `model` with `tokenizer` (for EOS ids and decoding).
    pub fn new(model: &'a CausalLm, tokenizer: &'a Tokenizer) -> Self {
        Self { model, tokenizer }
    }
}

impl RolloutSampler for CachedSampler<'_> {
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
        let p = prompts.len() as i64;
        let pmax = prompts.iter().map(|x| x.len()).max().unwrap_or(0) as i64;
        anyhow::ensure!(prompts.iter().all(|x| !x.is_empty()), "empty prompt");
        let pad = self
            .tokenizer
            .pad_token_id()
            .or_else(|| self.tokenizer.eos_token_ids().first().copied())
            .unwrap_or(0);
        let mut ids = Vec::with_capacity((p * pmax) as usize);
        let mut valid = Vec::with_capacity((p * pmax) as usize);
        for x in prompts {
            let k = pmax as usize - x.len();
            ids.extend(std::iter::repeat_n(pad as i64, k).chain(x.iter().map(|&t| t as i64)));
            valid.extend(std::iter::repeat_n(false, k).chain(std::iter::repeat_n(true, x.len())));
        }
        let ids = Tensor::from_slice(&ids).view([p, pmax]).to_device(device);
        let prompt_valid = Tensor::from_slice(&valid).view([p, pmax]).to_device(device);
        let positions = (prompt_valid.cumsum(-1, Kind::Int64) - 1).clamp_min(0);
        let slots = Tensor::arange(pmax, (Kind::Int64, device))
            .unsqueeze(0)
            .expand([p, pmax], true);
        let max_len = pmax + params.max_new_tokens as i64;
        let cfg = self.model.config();
        let mut cache = KvCache::new(cfg, p, max_len.max(pmax + 1), self.model.kind(), device);
        // A left-pad query has no valid key; letting it see itself keeps its (unused) K/V finite.
        let diagonal = Tensor::eye(pmax, (Kind::Bool, device)).view([1, 1, pmax, pmax]);
        let mask = KvCache::attention_mask(&slots, &prompt_valid).logical_or(&diagonal);
        let hidden = self
            .model
            .forward_step_hidden(&ids, &positions, &mut cache, &slots, &mask);
        let mut logits = self.model.logits(&hidden.select(1, pmax - 1));

        let rows = Tensor::arange(p, (Kind::Int64, device)).repeat_interleave_self_int(n as i64, 0, None);
        let b = p * n as i64;
        let mut cache = cache.select_rows(&rows);
        logits = logits.index_select(0, &rows);
        let mut valid = Tensor::zeros([b, max_len.max(pmax + 1)], (Kind::Bool, device));
        valid.narrow(1, 0, pmax).copy_(&prompt_valid.index_select(0, &rows));
        let prompt_lens = prompt_valid
            .sum_dim_intlist(-1, false, Kind::Int64)
            .index_select(0, &rows)
            .view([b, 1]);

        let eos: Vec<u32> = self.tokenizer.eos_token_ids().to_vec();
        let mut generated: Vec<Vec<u32>> = vec![Vec::new(); b as usize];
        let mut done = vec![false; b as usize];
        for step in 0..params.max_new_tokens as i64 {
            let next = sample_next(&logits, params);
            let next_ids: Vec<i64> = Vec::try_from(next.to_device(tch::Device::Cpu))?;
            for (r, &t) in next_ids.iter().enumerate() {
                if done[r] {
                    continue;
                }
                generated[r].push(t as u32);
                if eos.contains(&(t as u32)) || hits_stop(self.tokenizer, &generated[r], &params.stop)? {
                    done[r] = true;
                }
            }
            if done.iter().all(|d| *d) || step + 1 == params.max_new_tokens as i64 {
                break;
            }
            let slot = pmax + step;
            let _ = valid.narrow(1, slot, 1).fill_(1);
            let slot_t = Tensor::full([b, 1], slot, (Kind::Int64, device));
            let mask = KvCache::attention_mask(&slot_t, &valid.narrow(1, 0, slot + 1));
            let hidden =
                self.model
                    .forward_step_hidden(&next.view([b, 1]), &(&prompt_lens + step), &mut cache, &slot_t, &mask);
            logits = self.model.logits(&hidden.squeeze_dim(1));
        }
        finish(self.tokenizer, prompts, n, generated, &done, params)
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
