//! Deduplication: exact on normalised URLs, near-duplicate on text with MinHash + LSH.
//!
//! Defaults follow datatrove (5-word shingles, 14 bands × 8 rows, seed 1), with two deliberate differences: the
//! surviving document of a cluster is chosen by a total order on the documents ([`keep`]), not by processing
//! order, and LSH candidates are verified against their estimated Jaccard before they are merged, which removes
//! most false positives of banding (a pair at Jaccard 0.5 is a 14×8 candidate 5% of the time).

pub mod cluster;
pub mod keep;
pub mod minhash;
pub mod planted;
pub mod shingle;
pub mod url;

pub use cluster::{cluster_signatures, signatures, ClusterStats, Clustering};
pub use keep::{better_keeper, keeper_order, KeepKey};
pub use minhash::{estimated_jaccard, MinHashConfig, MinHasher, Signature};
pub use shingle::ShingleConfig;
pub use url::{dedup_by_url, normalize_url, url_domain, UrlDedupResult};

use crate::document::Document;
use serde::Serialize;

/// Outcome of [`dedup_documents`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocumentDedup {
    /// `keep[i]` for each input document.
    #[serde(skip)]
    pub keep: Vec<bool>,
    /// Removed as exact URL duplicates.
    pub url_duplicates: usize,
    /// Removed as near duplicates.
    pub near_duplicates: usize,
    /// Near-dedup cluster statistics.
    pub clusters: ClusterStats,
}

/// Exact URL dedup, then MinHash near-dedup of the URL survivors; the kept document of each group is the best by
/// `scores[score_key]`, then text length, then id.
pub fn dedup_documents(docs: &[Document], config: &MinHashConfig, score_key: &str) -> DocumentDedup {
    let keys: Vec<KeepKey> = docs
        .iter()
        .map(|d| KeepKey {
            score: d.scores.get(score_key).copied(),
            text_len: d.text.len(),
            id: &d.id,
        })
        .collect();
    let urls: Vec<Option<&str>> = docs.iter().map(|d| d.url.as_deref()).collect();
    let by_url = dedup_by_url(&urls, &keys);
    let survivors: Vec<usize> = (0..docs.len()).filter(|&i| by_url.keep[i]).collect();
    let hasher = MinHasher::new(config.clone());
    let texts: Vec<&str> = survivors.iter().map(|&i| docs[i].text.as_str()).collect();
    let sigs = signatures(&hasher, &texts);
    let skeys: Vec<KeepKey> = survivors.iter().map(|&i| keys[i]).collect();
    let clustering = cluster_signatures(&hasher, &sigs, &skeys);
    let mut keep = vec![false; docs.len()];
    for (j, &i) in survivors.iter().enumerate() {
        keep[i] = clustering.keep[j];
    }
    DocumentDedup {
        keep,
        url_duplicates: by_url.removed,
        near_duplicates: clustering.stats.removed,
        clusters: clustering.stats,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_then_near_dedup_keeps_highest_score() {
        let body: String = (0..200).map(|i| format!("word{i} ")).collect();
        let doc = |id: &str, url: &str, text: &str, score: f32| Document {
            id: id.into(),
            url: Some(url.into()),
            text: text.into(),
            scores: [("math".to_string(), score)].into_iter().collect(),
            ..Default::default()
        };
        let docs = vec![
            doc("a", "https://x.org/1", &body, 0.6),
            doc("b", "http://www.x.org/1/", "different text entirely here", 0.9),
            doc("c", "https://y.org/2", &format!("{body} extra"), 0.8),
            doc(
                "d",
                "https://z.org/3",
                "unrelated page about cooking pasta with tomatoes and basil",
                0.1,
            ),
        ];
        let r = dedup_documents(&docs, &MinHashConfig::default(), "math");
        // a and b share a URL (b scores higher); a's text survives only through c, its near copy with higher score.
        assert_eq!(r.keep, vec![false, true, true, true]);
        assert_eq!((r.url_duplicates, r.near_duplicates), (1, 0));
    }
}
