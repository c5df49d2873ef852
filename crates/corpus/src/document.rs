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

/// The host of a URL, lower-cased and without a leading `www.` (`https://www.Example.org:8080/a` → `example.org`).
///
/// Returns `None` for strings without a host. This is a deliberately small parser: pipeline stages that need full
/// URL normalisation do it themselves; this one only has to be fast and total.
pub fn domain_of(url: &str) -> Option<String> {
    let rest = url.trim().split_once("://").map(|(_, r)| r).unwrap_or(url.trim());
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let host = if host_port.starts_with('[') {
        host_port.split_inclusive(']').next()?
    } else {
        host_port.split(':').next()?
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    (!host.is_empty()).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_of_strips_scheme_port_www_and_case() {
        assert_eq!(
            domain_of("https://www.Example.org:8080/a?b").as_deref(),
            Some("example.org")
        );
        assert_eq!(
            domain_of("http://user@math.stackexchange.com/q/1").as_deref(),
            Some("math.stackexchange.com")
        );
        assert_eq!(domain_of("example.com/x").as_deref(), Some("example.com"));
        assert_eq!(domain_of("http:///nohost"), None);
    }
}
