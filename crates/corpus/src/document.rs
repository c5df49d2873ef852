//! The one document model shared by every corpus stage.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A web page or text record as it moves through the mining pipeline.
///
/// Fields are filled progressively: a reader sets `id`, `url`, `domain` and either `html` or `text`; extraction
/// replaces `html` with `text`; language identification sets `lang`; classifiers add entries to `scores`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Stable identifier (WARC-Record-ID, JSONL `id`, or `source:offset` when the input has none).
    pub id: String,
    /// Source URL, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Registered host of `url` (lower-cased, without a leading `www.`), used for domain discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Raw HTML, when the record still needs extraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Plain text with mathematics kept as LaTeX.
    #[serde(default)]
    pub text: String,
    /// Language code from language identification (`en`, `zh`, ...), with its probability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<(String, f32)>,
    /// Named scores, e.g. `"math"` for the math classifier's probability.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scores: BTreeMap<String, f32>,
    /// Anything else the source carried (WARC date, content type, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, serde_json::Value>,
}
