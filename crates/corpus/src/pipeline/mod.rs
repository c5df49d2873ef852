//! `corpus mine`: DeepSeekMath's iterative mining loop as resumable, sharded stages.
//!
//! Per iteration: train the classifier on seeds vs. random pool pages → score every pool page → keep the top pages
//! by token budget → exact-URL and MinHash dedup → decontaminate → domain discovery (export prefixes, import
//! annotations, add uncollected pages under math prefixes to the seeds) → report. The pool is ingested once
//! (read, extract, identify language, count tokens) into one shard per input file.
//!
//! The classifier, extractor, language identifier and tokenizer are the corpus-I components; this module sees them
//! through the narrow traits below so that the loop does not depend on how they are implemented.

pub mod adapters;
pub mod config;
pub mod histogram;
pub mod mine;
pub mod report;
pub mod shards;

pub use config::MineConfig;
pub use mine::{run_mine, MineOutcome};

use anyhow::Result;
use std::path::Path;

/// HTML → text with mathematics kept.
pub trait Extractor: Sync {
    /// Extracts the main text of a page.
    fn extract(&self, html: &str, url: Option<&str>) -> String;
}

/// Language identification.
pub trait LanguageIdentifier: Sync {
    /// Language code and probability of the most likely language.
    fn identify(&self, text: &str) -> Option<(String, f32)>;
}

/// Token counting for budgets.
pub trait TokenCounter: Sync {
    /// Tokens in `text`.
    fn count(&self, text: &str) -> u64;
}

/// A trained page scorer.
pub trait DocScorer: Sync + Send {
    /// Probability that the page is math.
    fn score(&self, text: &str) -> f32;
}

/// Trains and loads page scorers.
pub trait ScorerTrainer: Sync {
    /// Trains on the given texts (order fixed by the caller, so training is reproducible) and saves the model to
    /// `path`.
    fn train(
        &self,
        positives: &[String],
        negatives: &[String],
        config: &config::ClassifierConfig,
        seed: u64,
        path: &Path,
    ) -> Result<()>;
    /// Loads a model saved by [`ScorerTrainer::train`].
    fn load(&self, path: &Path) -> Result<Box<dyn DocScorer>>;
}

/// Whitespace-separated words, for runs without a tokenizer file (the report then says "words").
#[derive(Debug, Clone, Copy, Default)]
pub struct WordCounter;

impl TokenCounter for WordCounter {
    fn count(&self, text: &str) -> u64 {
        text.split_whitespace().count() as u64
    }
}

/// The components a mining run uses.
pub struct Components<'a> {
    /// Extraction for pages that arrive as HTML; pages needing it are skipped (and counted) when absent.
    pub extractor: Option<&'a dyn Extractor>,
    /// Language identification; languages are `und` when absent.
    pub language: Option<&'a dyn LanguageIdentifier>,
    /// Token counting.
    pub tokens: &'a dyn TokenCounter,
    /// Name of the token unit for reports (`tokens` or `words`).
    pub token_unit: &'a str,
    /// The classifier.
    pub trainer: &'a dyn ScorerTrainer,
}
