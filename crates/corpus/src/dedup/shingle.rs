//! Text → word n-gram shingles, hashed to `u64`.
//!
//! The normalisation mirrors datatrove's `simplify_text` (lower case, punctuation removed, whitespace collapsed,
//! optionally digits folded) so that the same parameters find the same duplicates; it works on bytes in one pass
//! because shingling is the hot loop of near-dedup.

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

/// How text is normalised and cut into shingles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShingleConfig {
    /// Words per shingle (datatrove and this crate default: 5).
    pub ngram: usize,
    /// Fold case before comparing.
    pub lowercase: bool,
    /// Drop punctuation (anything neither alphanumeric nor whitespace).
    pub remove_punctuation: bool,
    /// Replace every digit run by `0`, as datatrove does by default. Off by default here: math pages that differ
    /// only in their numbers are different problems.
    pub normalize_numbers: bool,
}

impl Default for ShingleConfig {
    fn default() -> Self {
        Self {
            ngram: 5,
            lowercase: true,
            remove_punctuation: true,
            normalize_numbers: false,
        }
    }
}

/// Hashes of the normalised words of `text`, in order.
///
/// As datatrove's `simplify_text`: punctuation becomes a word break, and with `normalize_numbers` a number
/// (digits with an optional `.`/`,` decimal part) becomes `0`.
pub fn word_hashes(text: &str, config: &ShingleConfig) -> Vec<u64> {
    let mut hashes = Vec::with_capacity(text.len() / 6);
    let mut word = String::with_capacity(32);
    let mut in_number = false;
    let flush = |word: &mut String, hashes: &mut Vec<u64>| {
        if !word.is_empty() {
            hashes.push(xxh3_64(word.as_bytes()));
            word.clear();
        }
    };
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if config.normalize_numbers {
            if ch.is_numeric() {
                if !in_number {
                    word.push('0');
                }
                in_number = true;
                continue;
            }
            if in_number && matches!(ch, '.' | ',') && chars.peek().is_some_and(|c| c.is_numeric()) {
                continue;
            }
        }
        in_number = false;
        if ch.is_whitespace() || (config.remove_punctuation && !ch.is_alphanumeric()) {
            flush(&mut word, &mut hashes);
            continue;
        }
        if config.lowercase && ch.is_uppercase() {
            word.extend(ch.to_lowercase());
        } else {
            word.push(ch);
        }
    }
    flush(&mut word, &mut hashes);
    hashes
}

/// Shingle hashes of `text`: one per window of `ngram` consecutive words, or one for the whole text when it is
/// shorter than a window (so short documents still deduplicate against each other). Empty text has none.
pub fn shingles(text: &str, config: &ShingleConfig) -> Vec<u64> {
    let words = word_hashes(text, config);
    shingles_of_words(&words, config.ngram.max(1))
}

/// Shingles from word hashes (see [`shingles`]).
pub fn shingles_of_words(words: &[u64], ngram: usize) -> Vec<u64> {
    if words.is_empty() {
        return Vec::new();
    }
    let windows: Vec<&[u64]> = if words.len() < ngram {
        vec![words]
    } else {
        words.windows(ngram).collect()
    };
    windows
        .into_iter()
        .map(|w| {
            let mut h = 0x9E37_79B9_7F4A_7C15u64 ^ (w.len() as u64);
            for &x in w {
                h = (h.rotate_left(23) ^ x).wrapping_mul(0xD6E8_FEB8_6659_FD93);
            }
            h ^ (h >> 32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_ignores_case_punctuation_and_spacing() {
        let c = ShingleConfig::default();
        assert_eq!(
            shingles("The cat, sat on the MAT today!", &c),
            shingles("the  cat sat\non the mat today", &c)
        );
        assert_eq!(
            word_hashes("a,b", &c),
            word_hashes("a b", &c),
            "punctuation breaks words, as datatrove"
        );
        assert_eq!(shingles("a b c d e f", &c).len(), 2);
        assert_eq!(shingles("a b", &c).len(), 1);
        assert!(shingles("  ", &c).is_empty());
    }

    #[test]
    fn numbers_matter_unless_normalised() {
        let mut c = ShingleConfig::default();
        assert_ne!(
            shingles("x equals 12 plus 3 here", &c),
            shingles("x equals 47 plus 9 here", &c)
        );
        c.normalize_numbers = true;
        assert_eq!(
            shingles("x equals 12 plus 3 here", &c),
            shingles("x equals 47 plus 9 here", &c)
        );
        assert_eq!(word_hashes("pi is 3.14", &c), word_hashes("pi is 7", &c));
    }
}
