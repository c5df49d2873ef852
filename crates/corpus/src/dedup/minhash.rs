//! MinHash signatures and LSH banding.
//!
//! Each of `bands × rows` hash functions is a multiply-shift hash `(a·x + b) >> 32` with odd random `a` (a
//! universal family, and one multiply per shingle and function, which vectorises), seeded from the config's seed
//! so that every worker and every run uses the same functions.

use super::shingle::{shingles, ShingleConfig};
use serde::{Deserialize, Serialize};

/// Near-dedup parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MinHashConfig {
    /// Text normalisation and shingle size (default 5-word shingles).
    pub shingle: ShingleConfig,
    /// LSH bands (default 14, as datatrove).
    pub bands: usize,
    /// Hashes per band (default 8, as datatrove). With 14×8 a pair is a candidate with probability
    /// `1 - (1 - s⁸)¹⁴`: 5% at Jaccard 0.5, 58% at 0.7, 92% at 0.8, 99% at 0.85.
    pub rows: usize,
    /// Seed of the hash functions.
    pub seed: u64,
    /// Candidate pairs whose estimated Jaccard (share of equal signature entries) is below this are not merged.
    /// datatrove merges every LSH candidate (`None`); the default 0.7 removes nearly all false positives below
    /// Jaccard 0.6 at the cost of a little recall just above the S-curve's midpoint.
    pub verify_threshold: Option<f64>,
}

impl Default for MinHashConfig {
    fn default() -> Self {
        Self {
            shingle: ShingleConfig::default(),
            bands: 14,
            rows: 8,
            seed: 1,
            verify_threshold: Some(0.7),
        }
    }
}

impl MinHashConfig {
    /// Total hash functions per signature.
    pub fn num_hashes(&self) -> usize {
        self.bands * self.rows
    }

    /// Probability that a pair with Jaccard similarity `s` becomes an LSH candidate.
    pub fn candidate_probability(&self, s: f64) -> f64 {
        1.0 - (1.0 - s.powi(self.rows as i32)).powi(self.bands as i32)
    }
}

/// Computes MinHash signatures with fixed hash functions.
#[derive(Debug, Clone)]
pub struct MinHasher {
    config: MinHashConfig,
    mul: Vec<u64>,
    add: Vec<u64>,
}

/// A document's MinHash signature: `bands × rows` minima (u32::MAX for a document without shingles).
pub type Signature = Vec<u32>;

impl MinHasher {
    /// Builds the hash functions from `config.seed` (SplitMix64 stream).
    pub fn new(config: MinHashConfig) -> Self {
        assert!(
            config.bands > 0 && config.rows > 0,
            "MinHash needs at least one band and one row"
        );
        let mut state = config.seed ^ 0x05EE_D0FD_ED0F;
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let n = config.num_hashes();
        let mul = (0..n).map(|_| next() | 1).collect();
        let add = (0..n).map(|_| next()).collect();
        Self { config, mul, add }
    }

    /// The configuration these hash functions came from.
    pub fn config(&self) -> &MinHashConfig {
        &self.config
    }

    /// Signature of a text.
    pub fn signature(&self, text: &str) -> Signature {
        self.signature_of_shingles(&shingles(text, &self.config.shingle))
    }

    /// Signature of pre-computed shingle hashes.
    pub fn signature_of_shingles(&self, shingles: &[u64]) -> Signature {
        let n = self.mul.len();
        let mut sig = vec![u32::MAX; n];
        let (mul, add) = (&self.mul[..n], &self.add[..n]);
        for &x in shingles {
            for ((s, &a), &b) in sig.iter_mut().zip(mul).zip(add) {
                let h = (a.wrapping_mul(x).wrapping_add(b) >> 32) as u32;
                *s = (*s).min(h);
            }
        }
        sig
    }

    /// One hash per band, the key LSH buckets on. A document without shingles gets no usable keys
    /// (they are all equal to the empty signature's, which [`super::cluster`] skips).
    pub fn band_keys(&self, sig: &[u32]) -> Vec<u64> {
        sig.chunks(self.config.rows)
            .enumerate()
            .map(|(band, rows)| {
                let mut h = 0xCBF2_9CE4_8422_2325u64 ^ band as u64;
                for &r in rows {
                    h = (h ^ r as u64).wrapping_mul(0x0000_0100_0000_01B3).rotate_left(29);
                }
                h ^ (h >> 31)
            })
            .collect()
    }
}

/// Share of equal entries between two signatures: an unbiased estimate of the Jaccard similarity.
pub fn estimated_jaccard(a: &[u32], b: &[u32]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let equal = a.iter().zip(b).filter(|(x, y)| x == y).count();
    equal as f64 / a.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_texts_have_identical_signatures_and_estimate_tracks_jaccard() {
        let h = MinHasher::new(MinHashConfig::default());
        let words: Vec<String> = (0..400).map(|i| format!("w{i}")).collect();
        let a = words.join(" ");
        assert_eq!(h.signature(&a), h.signature(&a));
        // Replace the last 100 words: 296 shared shingles of 396 each → J = 296 / 496 ≈ 0.597.
        let mut other = words.clone();
        for w in other.iter_mut().skip(300) {
            w.push('x');
        }
        let est = estimated_jaccard(&h.signature(&a), &h.signature(&other.join(" ")));
        assert!((est - 0.597).abs() < 0.15, "estimate {est}");
    }

    #[test]
    fn candidate_probability_matches_s_curve() {
        let c = MinHashConfig::default();
        assert!((c.candidate_probability(0.5) - 0.0534).abs() < 1e-3);
        assert!(c.candidate_probability(0.85) > 0.98);
    }
}
