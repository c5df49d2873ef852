//! Sampling metrics: majority voting (maj@k) and the unbiased pass@k estimator.

/// Index of the winning answer among `answers` (one per sample, `None` = no answer extracted), grouping answers
/// with `same`. Largest group wins; ties go to the group whose first member came first, so the result is
/// deterministic. Samples without an answer never vote; `None` when no sample has one.
pub fn majority_vote<F: Fn(&str, &str) -> bool>(answers: &[Option<String>], same: F) -> Option<usize> {
    // (representative sample index, votes)
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for (i, answer) in answers.iter().enumerate() {
        let Some(answer) = answer else { continue };
        match groups
            .iter_mut()
            .find(|(rep, _)| same(answers[*rep].as_deref().unwrap_or_default(), answer))
        {
            Some(group) => group.1 += 1,
            None => groups.push((i, 1)),
        }
    }
    // Groups are in first-appearance order, so a strict `>` keeps the earliest among equals.
    let mut best: Option<(usize, usize)> = None;
    for group in groups {
        if best.is_none_or(|b| group.1 > b.1) {
            best = Some(group);
        }
    }
    best.map(|(rep, _)| rep)
}

/// Unbiased pass@k from `n` samples of which `c` are correct (Chen et al. 2021): `1 - C(n-c, k) / C(n, k)`,
/// computed as a product to stay exact-ish for large `n`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    assert!(k >= 1 && k <= n, "pass@k needs 1 <= k <= n (k={k}, n={n})");
    if n - c < k {
        return 1.0;
    }
    let mut fail = 1.0;
    for i in (n - c + 1)..=n {
        fail *= 1.0 - k as f64 / i as f64;
    }
    1.0 - fail
}

/// The k values reported for `n` samples: powers of two up to `n`, and `n` itself.
pub fn reported_ks(n: usize) -> Vec<usize> {
    let mut ks: Vec<usize> = std::iter::successors(Some(1usize), |k| Some(k * 2))
        .take_while(|&k| k <= n)
        .collect();
    if ks.last() != Some(&n) && n > 0 {
        ks.push(n);
    }
    ks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|x| x.map(String::from)).collect()
    }

    #[test]
    fn majority_is_deterministic_and_ignores_invalid() {
        let eq = |a: &str, b: &str| a == b;
        assert_eq!(majority_vote(&s(&[Some("1"), Some("2"), Some("2")]), eq), Some(1));
        // Tie: the answer seen first wins.
        assert_eq!(
            majority_vote(&s(&[Some("3"), Some("1"), Some("1"), Some("3")]), eq),
            Some(0)
        );
        // Invalid extractions never win, even when they are the most common outcome.
        assert_eq!(majority_vote(&s(&[None, None, None, Some("7")]), eq), Some(3));
        assert_eq!(majority_vote(&s(&[None, None]), eq), None);
        // Grouping uses the equivalence, not string equality.
        let num = |a: &str, b: &str| a.parse::<f64>().ok() == b.parse::<f64>().ok();
        assert_eq!(
            majority_vote(&s(&[Some("2"), Some("0.5"), Some("1/2"), Some("2.0")]), num),
            Some(0)
        );
    }

    #[test]
    fn pass_at_k_matches_closed_form() {
        assert_eq!(pass_at_k(10, 0, 1), 0.0);
        assert_eq!(pass_at_k(10, 10, 5), 1.0);
        assert!((pass_at_k(10, 3, 1) - 0.3).abs() < 1e-12);
        // 1 - C(7,2)/C(10,2) = 1 - 21/45
        assert!((pass_at_k(10, 3, 2) - (1.0 - 21.0 / 45.0)).abs() < 1e-12);
        assert_eq!(pass_at_k(4, 2, 3), 1.0);
    }

    #[test]
    fn ks() {
        assert_eq!(reported_ks(1), vec![1]);
        assert_eq!(reported_ks(16), vec![1, 2, 4, 8, 16]);
        assert_eq!(reported_ks(12), vec![1, 2, 4, 8, 12]);
    }
}
