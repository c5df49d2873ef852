//! What a caller asks of the engine and what it gets back.

use anyhow::{ensure, Result};

/// How to sample continuations.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Most tokens generated per sample (EOS and a completed stop string count).
    pub max_new_tokens: usize,
    /// Softmax temperature; `0` means greedy (argmax, first index on ties).
    pub temperature: f64,
    /// Nucleus sampling: keep the smallest set of most likely tokens whose probability reaches `top_p`; `1` = off.
    pub top_p: f64,
    /// Keep only the `top_k` most likely tokens; `0` = off.
    pub top_k: usize,
    /// Seed of the per-sample random streams. The stream of (prompt `i`, sample `j`) depends only on the seed,
    /// `i` and `j`, so results do not change with batch size, compaction or device scheduling.
    pub seed: u64,
    /// Stop strings: generation of a sample ends once its text contains one; the returned text ends before it.
    pub stop: Vec<String>,
    /// Samples per prompt (they share the prompt's prefill).
    pub n: usize,
    /// Keep generating through EOS tokens (benchmarks, fixed-length rollouts).
    pub ignore_eos: bool,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            max_new_tokens: 256,
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
            stop: Vec::new(),
            n: 1,
            ignore_eos: false,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding of up to `max_new_tokens`.
    pub fn greedy(max_new_tokens: usize) -> Self {
        SamplingParams {
            max_new_tokens,
            ..Default::default()
        }
    }

    /// Checks the ranges (temperature ≥ 0 and finite, 0 < top_p ≤ 1, n ≥ 1, no empty stop string).
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.temperature.is_finite() && self.temperature >= 0.0,
            "temperature must be ≥ 0, got {}",
            self.temperature
        );
        ensure!(
            self.top_p > 0.0 && self.top_p <= 1.0,
            "top_p must be in (0, 1], got {}",
            self.top_p
        );
        ensure!(self.n >= 1, "n (samples per prompt) must be ≥ 1");
        ensure!(
            self.stop.iter().all(|s| !s.is_empty()),
            "stop strings must not be empty"
        );
        Ok(())
    }

    /// True when sampling reduces to argmax.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// True when neither top-p nor top-k removes any token of a `vocab`-token distribution.
    pub fn is_unfiltered(&self, vocab: i64) -> bool {
        self.top_p >= 1.0 && (self.top_k == 0 || self.top_k as i64 >= vocab)
    }
}

/// Why a sample ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model emitted an end-of-sequence token (it is the last entry of `tokens`).
    Eos,
    /// The text reached a stop string.
    Stop,
    /// `max_new_tokens` were generated.
    Length,
}

impl FinishReason {
    /// Lower-case name as used in JSONL output (`eos`, `stop`, `length`).
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Eos => "eos",
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// One generated sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Index of the prompt in the `generate` call.
    pub prompt_index: usize,
    /// Index of the sample among the prompt's `n`.
    pub sample_index: usize,
    /// Generated token ids, including a final EOS token (when `finish_reason` is `Eos`) and the token that
    /// completed a stop string.
    pub tokens: Vec<u32>,
    /// `logprobs[t]` = log π(tokens[t] | prefix) under the model's raw distribution: log-softmax of the logits at
    /// temperature 1, before top-k/top-p filtering — the quantity policy-gradient methods need — regardless of the
    /// temperature and filters used to *choose* the token.
    pub logprobs: Vec<f32>,
    /// Decoded text of `tokens` without special tokens, cut before the first stop string.
    pub text: String,
    /// Why generation ended.
    pub finish_reason: FinishReason,
}
