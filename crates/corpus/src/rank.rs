//! Recall by ranking: score every document with the classifier and keep the best ones, either up to a token
//! budget (DeepSeekMath kept the top 40B tokens in its first iteration) or above a score threshold.
//!
//! Token counts come from a real Hugging Face `tokenizer.json`, so the budget means what the training stage will
//! see. Selection is exact and deterministic in memory ([`select`]: score descending, then id); for inputs too
//! large for memory, [`ScoreHistogram`] finds the budget's score threshold in one streaming pass so that a second
//! pass can filter by threshold.

use crate::classifier::Classifier;
use crate::document::Document;
use anyhow::{Context, Result};
use rayon::prelude::*;
use std::path::Path;

/// Counts tokens with a Hugging Face tokenizer.
pub struct TokenCounter {
    tokenizer: tokenizers::Tokenizer,
}

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCounter").finish_non_exhaustive()
    }
}

impl TokenCounter {
    /// Loads a `tokenizer.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<TokenCounter> {
        let path = path.as_ref();
        let tokenizer = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| anyhow::anyhow!("cannot load tokenizer {}: {e}", path.display()))?;
        Ok(TokenCounter { tokenizer })
    }

    /// Number of tokens in `text` (without special tokens).
    pub fn count(&self, text: &str) -> Result<u64> {
        let enc = self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
        Ok(enc.len() as u64)
    }
}

/// A scored document reference.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scored {
    /// Document id (ties in score are broken by id, so selection is deterministic).
    pub id: String,
    /// Classifier score.
    pub score: f32,
    /// Token count.
    pub tokens: u64,
}

/// How to choose documents.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Selection {
    /// Best documents until this many tokens are kept (the document that crosses the budget is kept).
    TokenBudget(u64),
    /// Every document with score ≥ this.
    Threshold(f32),
}

/// The outcome of [`select`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selected {
    /// Indices into the input, best first.
    pub indices: Vec<usize>,
    /// Tokens in the kept documents.
    pub tokens: u64,
    /// Lowest kept score (the effective threshold), if anything was kept.
    pub min_score: Option<f32>,
}

/// Chooses documents by budget or threshold.
pub fn select(scored: &[Scored], selection: Selection) -> Selected {
    let mut order: Vec<usize> = (0..scored.len()).collect();
    order.sort_by(|&a, &b| {
        scored[b]
            .score
            .total_cmp(&scored[a].score)
            .then_with(|| scored[a].id.cmp(&scored[b].id))
    });
    let mut out = Selected::default();
    for i in order {
        let keep = match selection {
            Selection::TokenBudget(budget) => out.tokens < budget,
            Selection::Threshold(t) => scored[i].score >= t,
        };
        if !keep {
            break;
        }
        out.tokens += scored[i].tokens;
        out.min_score = Some(scored[i].score);
        out.indices.push(i);
    }
    out
}

/// Token mass per score bin, for choosing a budget threshold over a stream in bounded memory.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScoreHistogram {
    bins: Vec<u64>,
    docs: Vec<u64>,
}

impl ScoreHistogram {
    /// A histogram over scores in [0, 1] with `bins` bins.
    pub fn new(bins: usize) -> ScoreHistogram {
        ScoreHistogram {
            bins: vec![0; bins.max(1)],
            docs: vec![0; bins.max(1)],
        }
    }

    fn bin(&self, score: f32) -> usize {
        ((score.clamp(0.0, 1.0) * self.bins.len() as f32) as usize).min(self.bins.len() - 1)
    }

    /// Records one document.
    pub fn add(&mut self, score: f32, tokens: u64) {
        let b = self.bin(score);
        self.bins[b] += tokens;
        self.docs[b] += 1;
    }

    /// Adds another histogram (from another shard).
    pub fn merge(&mut self, other: &ScoreHistogram) {
        for (a, b) in self.bins.iter_mut().zip(&other.bins) {
            *a += b;
        }
        for (a, b) in self.docs.iter_mut().zip(&other.docs) {
            *a += b;
        }
    }

    /// The lower edge of the highest bin range whose token mass reaches `budget` (0 if everything fits).
    pub fn threshold_for_budget(&self, budget: u64) -> f32 {
        let mut acc = 0u64;
        for b in (0..self.bins.len()).rev() {
            acc += self.bins[b];
            if acc >= budget {
                return b as f32 / self.bins.len() as f32;
            }
        }
        0.0
    }

    /// Document counts per bin (for score histograms in reports).
    pub fn doc_counts(&self) -> &[u64] {
        &self.docs
    }
}

/// Scores documents in parallel, storing the probability of `label` under `scores[key]`.
pub fn score_documents(classifier: &Classifier, docs: &mut [Document], label: &str, key: &str) {
    docs.par_iter_mut().for_each(|doc| {
        let p = classifier.probability(&doc.text, label);
        doc.scores.insert(key.to_string(), p);
    });
}

/// Token counts for documents, in parallel.
pub fn count_tokens(counter: &TokenCounter, docs: &[Document]) -> Result<Vec<u64>> {
    docs.par_iter()
        .map(|d| counter.count(&d.text).with_context(|| format!("document {}", d.id)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(id: &str, score: f32, tokens: u64) -> Scored {
        Scored {
            id: id.into(),
            score,
            tokens,
        }
    }

    #[test]
    fn budget_and_threshold_selection_is_deterministic() {
        let docs = vec![s("b", 0.9, 100), s("a", 0.9, 50), s("c", 0.5, 70), s("d", 0.1, 10)];
        let by_budget = select(&docs, Selection::TokenBudget(120));
        assert_eq!(
            by_budget.indices,
            vec![1, 0],
            "tie broken by id; crossing document kept"
        );
        assert_eq!(by_budget.tokens, 150);
        let by_threshold = select(&docs, Selection::Threshold(0.5));
        assert_eq!(by_threshold.indices, vec![1, 0, 2]);
        assert_eq!(by_threshold.min_score, Some(0.5));
    }

    #[test]
    fn histogram_threshold_covers_budget() {
        let mut h = ScoreHistogram::new(100);
        for (score, tokens) in [(0.95, 100), (0.55, 100), (0.15, 100)] {
            h.add(score, tokens);
        }
        assert_eq!(h.threshold_for_budget(150), 0.55);
        assert_eq!(h.threshold_for_budget(10_000), 0.0);
    }
}
