//! Language identification with fastText's `lid.176` model (`.bin` or quantized `.ftz`), as CCNet, datatrove
//! and DeepSeekMath's pipeline do, so mining can keep English, Chinese, or any configured set.

use crate::classifier::{Classifier, LABEL_PREFIX};
use crate::document::Document;
use anyhow::Result;
use std::path::Path;

/// A language identifier backed by a fastText model whose labels are `__label__<iso code>`.
#[derive(Debug, Clone)]
pub struct LanguageIdentifier {
    model: Classifier,
}

impl LanguageIdentifier {
    /// Loads `lid.176.ftz` / `lid.176.bin` (or any model with `__label__xx` labels).
    pub fn load(path: impl AsRef<Path>) -> Result<LanguageIdentifier> {
        Ok(LanguageIdentifier {
            model: Classifier::load(path)?,
        })
    }

    /// Most likely language code and its probability; `None` for text without tokens.
    pub fn identify(&self, text: &str) -> Option<(String, f32)> {
        self.top_k(text, 1).into_iter().next()
    }

    /// The `k` most likely languages, best first.
    pub fn top_k(&self, text: &str, k: usize) -> Vec<(String, f32)> {
        self.model
            .predict(text, k)
            .into_iter()
            .map(|(label, p)| (label.strip_prefix(LABEL_PREFIX).unwrap_or(&label).to_string(), p))
            .collect()
    }

    /// Sets `doc.lang` from its text and returns it.
    pub fn annotate(&self, doc: &mut Document) -> Option<(String, f32)> {
        doc.lang = self.identify(&doc.text);
        doc.lang.clone()
    }
}

/// Which languages to keep, and how sure the identifier must be.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LanguageFilter {
    /// ISO codes to keep (empty keeps every language).
    pub keep: Vec<String>,
    /// Minimum probability of the top language.
    pub min_probability: f32,
}

impl Default for LanguageFilter {
    fn default() -> Self {
        LanguageFilter {
            keep: vec!["en".into(), "zh".into()],
            min_probability: 0.0,
        }
    }
}

impl LanguageFilter {
    /// Whether a document with this identified language passes.
    pub fn accepts(&self, lang: Option<&(String, f32)>) -> bool {
        match lang {
            Some((code, p)) => {
                *p >= self.min_probability && (self.keep.is_empty() || self.keep.iter().any(|k| k == code))
            }
            None => self.keep.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_checks_code_and_probability() {
        let f = LanguageFilter {
            keep: vec!["en".into()],
            min_probability: 0.5,
        };
        assert!(f.accepts(Some(&("en".into(), 0.9))));
        assert!(!f.accepts(Some(&("en".into(), 0.4))));
        assert!(!f.accepts(Some(&("de".into(), 0.9))));
        assert!(!f.accepts(None));
    }
}
