//! The corpus-I components behind the pipeline's traits: fastText classifier, lid.176 language identification,
//! Hugging Face token counting and math-preserving extraction.

use super::config::ClassifierConfig;
use super::{DocScorer, Extractor, LanguageIdentifier, ScorerTrainer, TokenCounter};
use crate::classifier::{Classifier, TrainConfig};
use anyhow::Result;
use std::path::Path;

/// Label of positive (math) training examples; the page score is this label's probability.
pub const MATH_LABEL: &str = "math";
/// Label of negative training examples.
pub const OTHER_LABEL: &str = "other";

/// Trains [`Classifier`] (fastText-compatible) models with the configured hyper-parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct FastTextTrainer;

impl ScorerTrainer for FastTextTrainer {
    fn train(
        &self,
        positives: &[String],
        negatives: &[String],
        config: &ClassifierConfig,
        seed: u64,
        path: &Path,
    ) -> Result<()> {
        let samples: Vec<(String, String)> = positives
            .iter()
            .map(|t| (MATH_LABEL.to_string(), t.clone()))
            .chain(negatives.iter().map(|t| (OTHER_LABEL.to_string(), t.clone())))
            .collect();
        let train = TrainConfig {
            dim: config.dim as i32,
            lr: config.lr as f64,
            word_ngrams: config.word_ngrams as i32,
            min_count: config.min_count as i32,
            epoch: config.epochs as i32,
            threads: config.threads as i32,
            seed: (seed % i32::MAX as u64) as i32,
            ..TrainConfig::default()
        };
        Classifier::train(&samples, &train)?.save(path)
    }

    fn load(&self, path: &Path) -> Result<Box<dyn DocScorer>> {
        Ok(Box::new(FastTextScorer(Classifier::load(path)?)))
    }
}

/// A loaded classifier scoring pages by the math label's probability.
#[derive(Debug, Clone)]
pub struct FastTextScorer(pub Classifier);

impl DocScorer for FastTextScorer {
    fn score(&self, text: &str) -> f32 {
        self.0.probability(text, MATH_LABEL)
    }
}

impl LanguageIdentifier for crate::langid::LanguageIdentifier {
    fn identify(&self, text: &str) -> Option<(String, f32)> {
        crate::langid::LanguageIdentifier::identify(self, text)
    }
}

impl TokenCounter for crate::rank::TokenCounter {
    fn count(&self, text: &str) -> u64 {
        // A tokenizer error on one page must not stop the run; whitespace words are a close stand-in.
        crate::rank::TokenCounter::count(self, text).unwrap_or_else(|_| text.split_whitespace().count() as u64)
    }
}

/// Math-preserving HTML extraction with the given options.
#[derive(Debug, Clone, Default)]
pub struct HtmlExtractor(pub crate::extract::ExtractOptions);

impl Extractor for HtmlExtractor {
    fn extract(&self, html: &str, _url: Option<&str>) -> String {
        crate::extract::extract(html, &self.0).text
    }
}
