//! Near-dedup quality on planted near-duplicates with exactly measured Jaccard similarity.

use seekmath_corpus::dedup::planted::planted_near_duplicates;
use seekmath_corpus::dedup::{cluster_signatures, signatures, KeepKey, MinHashConfig, MinHasher};

struct Quality {
    recall: f64,
    positives: usize,
    false_positive_rate: f64,
    negatives: usize,
    unrelated_merges: usize,
}

fn measure(config: MinHashConfig, recall_from: f64) -> Quality {
    let targets = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0];
    let set = planted_near_duplicates(1300, 250, &targets, 2024, &config.shingle);
    let hasher = MinHasher::new(config);
    let texts: Vec<&str> = set.docs.iter().map(|(_, t)| t.as_str()).collect();
    let sigs = signatures(&hasher, &texts);
    let keys: Vec<KeepKey> = set.docs.iter().map(|(id, t)| KeepKey { score: None, text_len: t.len(), id }).collect();
    let c = cluster_signatures(&hasher, &sigs, &keys);
    let (mut tp, mut pos, mut fp, mut neg) = (0, 0, 0, 0);
    for &(a, b, j) in &set.pairs {
        let together = c.cluster_of[a] == c.cluster_of[b];
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
    }
}

#[test]
fn default_14x8_recalls_pairs_above_085_and_rejects_pairs_below_05() {
    let q = measure(MinHashConfig::default(), 0.85);
    println!(
        "14x8: recall(J>=0.85) {:.4} over {} pairs; FP(J<=0.5) {:.4} over {} pairs; unrelated merges {}",
        q.recall, q.positives, q.false_positive_rate, q.negatives, q.unrelated_merges
    );
    assert!(q.positives >= 300 && q.negatives >= 400);
    assert!(q.recall >= 0.95, "recall {}", q.recall);
    assert!(q.false_positive_rate < 0.01, "false-positive rate {}", q.false_positive_rate);
    assert_eq!(q.unrelated_merges, 0);
}

#[test]
fn config_20x5_recalls_pairs_above_08() {
    let config = MinHashConfig { bands: 20, rows: 5, ..MinHashConfig::default() };
    let q = measure(config, 0.8);
    println!(
        "20x5: recall(J>=0.8) {:.4} over {} pairs; FP(J<=0.5) {:.4} over {} pairs",
        q.recall, q.positives, q.false_positive_rate, q.negatives
    );
    assert!(q.recall >= 0.95, "recall {}", q.recall);
    assert!(q.false_positive_rate < 0.01, "false-positive rate {}", q.false_positive_rate);
}

#[test]
fn pure_lsh_without_verification_has_the_textbook_false_positive_rate() {
    // Guards the claim in the docs: without verification, 14x8 merges ~5% of pairs at J = 0.5.
    let config = MinHashConfig { verify_threshold: None, ..MinHashConfig::default() };
    let q = measure(config, 0.85);
    assert!(q.false_positive_rate > 0.005, "pure LSH FP {}", q.false_positive_rate);
}
