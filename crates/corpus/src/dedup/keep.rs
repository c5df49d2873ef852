//! Which document of a duplicate group survives.
//!
//! datatrove keeps whichever document its clustering happens to visit first, which depends on worker scheduling.
//! Here the choice is a total order on the documents themselves, so the same input always keeps the same documents.

use std::cmp::Ordering;

/// The fields that decide which duplicate is kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeepKey<'a> {
    /// Quality score (e.g. the math classifier's probability); higher is better, missing is worst.
    pub score: Option<f32>,
    /// Text length in bytes; longer is better (the more complete copy of a page).
    pub text_len: usize,
    /// Document id; the smallest wins a tie, making the order total.
    pub id: &'a str,
}

/// Total order where `Less` means "keep this one first": higher score, then longer text, then smaller id.
pub fn keeper_order(a: &KeepKey, b: &KeepKey) -> Ordering {
    let score = |k: &KeepKey| k.score.filter(|s| !s.is_nan()).unwrap_or(f32::NEG_INFINITY);
    score(b)
        .total_cmp(&score(a))
        .then_with(|| b.text_len.cmp(&a.text_len))
        .then_with(|| a.id.cmp(b.id))
}

/// Whether `a` should be kept in preference to `b`.
pub fn better_keeper(a: &KeepKey, b: &KeepKey) -> bool {
    keeper_order(a, b) == Ordering::Less
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_score_then_length_then_id() {
        let k = |score, text_len, id| KeepKey { score, text_len, id };
        assert!(better_keeper(&k(Some(0.9), 1, "z"), &k(Some(0.5), 100, "a")));
        assert!(better_keeper(&k(Some(0.1), 1, "z"), &k(None, 100, "a")));
        assert!(better_keeper(&k(None, 10, "z"), &k(None, 5, "a")));
        assert!(better_keeper(&k(None, 5, "a"), &k(None, 5, "b")));
        assert!(!better_keeper(&k(None, 5, "a"), &k(None, 5, "a")));
    }
}
