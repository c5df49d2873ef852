//! Near-dedup quality on planted near-duplicates with exactly measured Jaccard similarity.

use seekmath_corpus::dedup::planted::planted_near_duplicates;
use seekmath_corpus::dedup::{cluster_signatures, signatures, MinHashConfig, MinHasher};

struct Quality {
    recall: f64,
    positives: usize,
    false_positive_rate: f64,
    negatives: usize,
    unrelated_merges: usize,
    rejected_pairs: u64,
    /// (similarity bucket lower edge ×20, pairs, clustered)
    buckets: std::collections::BTreeMap<u32, (usize, usize)>,
}

fn measure(config: MinHashConfig, recall_from: f64) -> Quality {
    let targets = [
        0.1, 0.2, 0.3, 0.4, 0.45, 0.49, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0,
    ];
    let set = planted_near_duplicates(1400, 250, &targets, 2024, &config.shingle);
    let hasher = MinHasher::new(config);
    let texts = set.texts();
    let sigs = signatures(&hasher, &texts);
    let keys = set.keep_keys();
    let c = cluster_signatures(&hasher, &sigs, &keys);
    let (mut tp, mut pos, mut fp, mut neg) = (0, 0, 0, 0);
    let mut buckets = std::collections::BTreeMap::new();
    for &(a, b, j) in &set.pairs {
        let together = c.cluster_of[a] == c.cluster_of[b];
        let e = buckets.entry((j * 20.0).floor() as u32).or_insert((0, 0));
        e.0 += 1;
        e.1 += together as usize;
        if j >= recall_from {
            pos += 1;
            tp += together as usize;
        } else if j <= 0.5 {
            neg += 1;
            fp += together as usize;
        }
    }
    // Documents of different planted pairs are unrelated; any cluster joining two pairs is a false merge.
    let mut unrelated_merges = 0;
    let mut pair_of_root = std::collections::HashMap::new();
    for (i, &root) in c.cluster_of.iter().enumerate() {
        let pair = i / 2;
        if *pair_of_root.entry(root).or_insert(pair) != pair {
            unrelated_merges += 1;
        }
    }
    Quality {
        recall: tp as f64 / pos as f64,
        positives: pos,
        false_positive_rate: fp as f64 / neg as f64,
        negatives: neg,
        unrelated_merges,
        rejected_pairs: c.stats.rejected_pairs,
        buckets,
    }
}

fn print_buckets(q: &Quality) {
    for (b, (n, k)) in &q.buckets {
        println!(
            "  J in [{:.2}, {:.2}): {k}/{n} clustered",
            *b as f64 / 20.0,
            (*b + 1) as f64 / 20.0
        );
    }
}

#[test]
fn default_14x8_recalls_pairs_above_08_and_rejects_pairs_below_05() {
    let q = measure(MinHashConfig::default(), 0.8);
    println!(
        "14x8: recall(J>=0.8) {:.4} over {} pairs; FP(J<=0.5) {:.4} over {} pairs; unrelated merges {}",
        q.recall, q.positives, q.false_positive_rate, q.negatives, q.unrelated_merges
    );
    print_buckets(&q);
    assert!(q.positives >= 400 && q.negatives >= 500);
    assert!(q.recall >= 0.95, "recall {}", q.recall);
    assert!(
        q.false_positive_rate < 0.01,
        "false-positive rate {}",
        q.false_positive_rate
    );
    assert_eq!(q.unrelated_merges, 0);
}

#[test]
fn config_20x5_recalls_pairs_above_08() {
    let config = MinHashConfig {
        bands: 20,
        rows: 5,
        ..MinHashConfig::default()
    };
    let q = measure(config, 0.8);
    println!(
        "20x5: recall(J>=0.8) {:.4} over {} pairs; FP(J<=0.5) {:.4} over {} pairs",
        q.recall, q.positives, q.false_positive_rate, q.negatives
    );
    assert!(q.recall >= 0.95, "recall {}", q.recall);
    assert!(
        q.false_positive_rate < 0.01,
        "false-positive rate {}",
        q.false_positive_rate
    );
}

#[test]
fn verification_rejects_banding_candidates_that_pure_lsh_merges() {
    let pure = measure(
        MinHashConfig {
            verify_threshold: None,
            ..MinHashConfig::default()
        },
        0.85,
    );
    let verified = measure(MinHashConfig::default(), 0.85);
    println!(
        "pure LSH 14x8: FP(J<=0.5) {:.4}; rejected pairs {}",
        pure.false_positive_rate, pure.rejected_pairs
    );
    print_buckets(&pure);
    assert_eq!(pure.rejected_pairs, 0);
    assert!(
        verified.rejected_pairs > 0,
        "the planted set has banding candidates below the verify threshold"
    );
    let merged = |q: &Quality| q.buckets.range(..14).map(|(_, (_, k))| k).sum::<usize>();
    assert!(
        merged(&verified) < merged(&pure),
        "verification merges fewer pairs below J = 0.7"
    );
}
