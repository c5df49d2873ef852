//! Test sets with planted near-duplicates at known Jaccard similarity, for quality tests and benchmarks.
//!
//! Base documents are random word sequences over a large pseudo-word vocabulary (so unrelated documents share
//! almost no shingles); each base gets one variant in which blocks of words are replaced until the 5-gram shingle
//! Jaccard reaches a target. The true Jaccard of every planted pair is then measured exactly on the shingle sets,
//! so tests compare against ground truth, not against the target.

use super::keep::KeepKey;
use super::shingle::{shingles, ShingleConfig};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// A generated document collection.
#[derive(Debug, Clone)]
pub struct PlantedSet {
    /// `(id, text)` pairs: base `i` is `b{i}`, its variant `v{i}`.
    pub docs: Vec<(String, String)>,
    /// Planted pairs as indices into `docs`, with their exact shingle Jaccard.
    pub pairs: Vec<(usize, usize, f64)>,
}

impl PlantedSet {
    /// The texts, in document order (what [`super::signatures`] takes).
    pub fn texts(&self) -> Vec<&str> {
        self.docs.iter().map(|(_, t)| t.as_str()).collect()
    }

    /// Keep keys in document order: no score, so the longer text (then the smaller id) is kept.
    pub fn keep_keys(&self) -> Vec<KeepKey<'_>> {
        self.docs
            .iter()
            .map(|(id, t)| KeepKey {
                score: None,
                text_len: t.len(),
                id,
            })
            .collect()
    }

    /// The clusters of two or more documents, as sorted id lists, from each document's cluster root: the form in
    /// which two clusterings of the same set can be compared.
    pub fn multi_doc_clusters(&self, cluster_of: &[u32]) -> BTreeSet<Vec<String>> {
        let mut by_root: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for (i, &root) in cluster_of.iter().enumerate() {
            by_root.entry(root).or_default().push(self.docs[i].0.clone());
        }
        by_root
            .into_values()
            .filter(|members| members.len() > 1)
            .map(|mut members| {
                members.sort();
                members
            })
            .collect()
    }
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SYLLABLES: &[&str] = &[
    "ka", "to", "ri", "mel", "sun", "dra", "pe", "lo", "vin", "ta", "mor", "qui", "ben", "sa", "le", "gor", "nu", "fi",
    "shan", "ex", "bro", "da", "li", "zen", "op", "tra", "mi", "cal", "ve", "ru", "ho", "gin",
];

fn word(rng: &mut SplitMix) -> String {
    let n = 1 + rng.below(3);
    (0..n).map(|_| SYLLABLES[rng.below(SYLLABLES.len())]).collect()
}

/// Exact Jaccard similarity of two texts' shingle sets.
pub fn shingle_jaccard(a: &str, b: &str, config: &ShingleConfig) -> f64 {
    let sa: HashSet<u64> = shingles(a, config).into_iter().collect();
    let sb: HashSet<u64> = shingles(b, config).into_iter().collect();
    let inter = sa.intersection(&sb).count();
    let union = sa.len() + sb.len() - inter;
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// Generates `bases` documents of `words` words and one variant per base, with target similarities taken from
/// `targets` in turn. Variants also differ in case and punctuation, which normalisation must ignore.
pub fn planted_near_duplicates(
    bases: usize,
    words: usize,
    targets: &[f64],
    seed: u64,
    config: &ShingleConfig,
) -> PlantedSet {
    assert!(!targets.is_empty() && words > 2 * config.ngram);
    let mut rng = SplitMix(seed);
    let mut docs = Vec::with_capacity(2 * bases);
    let mut pairs = Vec::with_capacity(bases);
    let n = config.ngram;
    let total = (words - n + 1) as f64;
    for i in 0..bases {
        let base: Vec<String> = (0..words).map(|_| word(&mut rng)).collect();
        let target = targets[i % targets.len()];
        // Shared shingles S for target J: J = S / (2T - S).
        let shared = (2.0 * total * target / (1.0 + target)).round();
        let destroyed = (total - shared).max(0.0) as usize;
        let mut variant = base.clone();
        if destroyed > 0 {
            // Each replaced block of L words destroys L + n - 1 shingles.
            let blocks = (destroyed / (4 * n)).clamp(1, words / (3 * n));
            let per_block = (destroyed / blocks).saturating_sub(n - 1).max(1);
            let stride = words / blocks;
            for b in 0..blocks {
                let room = stride.saturating_sub(per_block).max(1);
                let start = (b * stride + rng.below(room)).min(words - 1);
                for w in variant.iter_mut().skip(start).take(per_block) {
                    *w = word(&mut rng);
                }
            }
        }
        // Surface noise that normalisation removes.
        variant[0] = variant[0].to_uppercase();
        let mid = words / 2;
        variant[mid].push(',');
        let base_text = base.join(" ");
        let variant_text = variant.join(" ") + ".";
        let j = shingle_jaccard(&base_text, &variant_text, config);
        docs.push((format!("b{i}"), base_text));
        docs.push((format!("v{i}"), variant_text));
        pairs.push((2 * i, 2 * i + 1, j));
    }
    PlantedSet { docs, pairs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_similarities_land_near_their_targets() {
        let c = ShingleConfig::default();
        let set = planted_near_duplicates(30, 300, &[0.2, 0.5, 0.8, 0.95, 1.0], 7, &c);
        assert_eq!(set.docs.len(), 60);
        for (i, &(_, _, j)) in set.pairs.iter().enumerate() {
            let target = [0.2, 0.5, 0.8, 0.95, 1.0][i % 5];
            assert!((j - target).abs() < 0.08, "pair {i}: target {target}, got {j}");
        }
        assert!(
            shingle_jaccard(&set.docs[0].1, &set.docs[2].1, &c) < 0.01,
            "bases are unrelated"
        );
    }
}
