//! LSH bucketing, candidate verification, union-find clustering and the choice of survivors.

use super::keep::{keeper_order, KeepKey};
use super::minhash::{estimated_jaccard, MinHasher, Signature};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Buckets larger than this are linked as a chain plus a star instead of all pairs, bounding the work on
/// boilerplate pages that share a band with thousands of others.
const ALL_PAIRS_LIMIT: usize = 32;

/// Result of near-duplicate clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// For each document, the index of its cluster's representative (the smallest index in the cluster).
    pub cluster_of: Vec<u32>,
    /// `keep[i]` is true for exactly one document per cluster: the best by [`keeper_order`].
    pub keep: Vec<bool>,
    /// Summary of the clusters.
    pub stats: ClusterStats,
}

/// Cluster statistics for reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterStats {
    /// Documents clustered.
    pub documents: usize,
    /// Clusters of two or more documents.
    pub duplicate_clusters: usize,
    /// Documents removed (all but one per cluster).
    pub removed: usize,
    /// LSH candidate pairs examined (after skipping pairs already in one cluster).
    pub candidate_pairs: u64,
    /// Candidate pairs rejected because their estimated Jaccard was below the verify threshold.
    pub rejected_pairs: u64,
    /// Cluster size → number of clusters of that size (sizes ≥ 2).
    pub size_histogram: BTreeMap<usize, usize>,
    /// Largest cluster size.
    pub largest_cluster: usize,
}

struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
        }
    }
    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }
    /// Links the two roots under the smaller index, so representatives do not depend on merge order.
    fn union_roots(&mut self, a: u32, b: u32) {
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        self.parent[hi as usize] = lo;
    }
}

/// Clusters documents by their signatures and picks one survivor per cluster.
///
/// Deterministic: buckets are sorted by `(band key, document index)` and representatives are smallest indices,
/// so the same signatures and keys give the same result whatever the thread count.
pub fn cluster_signatures(hasher: &MinHasher, signatures: &[Signature], keys: &[KeepKey]) -> Clustering {
    assert_eq!(signatures.len(), keys.len(), "one keep key per signature");
    let n = signatures.len();
    let bands = hasher.config().bands;
    let empty_keys = hasher.band_keys(&vec![u32::MAX; hasher.config().num_hashes()]);
    let band_keys: Vec<Vec<u64>> = signatures.par_iter().map(|s| hasher.band_keys(s)).collect();
    let verify = hasher.config().verify_threshold;
    let mut uf = UnionFind::new(n);
    let mut stats = ClusterStats {
        documents: n,
        ..Default::default()
    };
    for band in 0..bands {
        let mut bucket: Vec<(u64, u32)> = band_keys
            .iter()
            .enumerate()
            .filter(|(_, k)| k[band] != empty_keys[band])
            .map(|(i, k)| (k[band], i as u32))
            .collect();
        bucket.par_sort_unstable();
        let mut start = 0;
        while start < bucket.len() {
            let mut end = start + 1;
            while end < bucket.len() && bucket[end].0 == bucket[start].0 {
                end += 1;
            }
            let members: Vec<u32> = bucket[start..end].iter().map(|&(_, i)| i).collect();
            link_bucket(&members, signatures, verify, &mut uf, &mut stats);
            start = end;
        }
    }
    let cluster_of: Vec<u32> = (0..n as u32).map(|i| uf.find(i)).collect();
    let mut best: Vec<u32> = (0..n as u32).collect();
    let mut sizes = vec![0usize; n];
    for (i, &root) in cluster_of.iter().enumerate() {
        sizes[root as usize] += 1;
        let current = best[root as usize] as usize;
        if keeper_order(&keys[i], &keys[current]).is_lt() {
            best[root as usize] = i as u32;
        }
    }
    let keep: Vec<bool> = (0..n).map(|i| best[cluster_of[i] as usize] as usize == i).collect();
    for (root, &size) in sizes.iter().enumerate() {
        if size >= 2 && cluster_of[root] as usize == root {
            stats.duplicate_clusters += 1;
            *stats.size_histogram.entry(size).or_default() += 1;
            stats.largest_cluster = stats.largest_cluster.max(size);
        }
    }
    stats.removed = keep.iter().filter(|k| !**k).count();
    Clustering {
        cluster_of,
        keep,
        stats,
    }
}

fn link_bucket(members: &[u32], sigs: &[Signature], verify: Option<f64>, uf: &mut UnionFind, stats: &mut ClusterStats) {
    let mut try_link = |a: u32, b: u32, uf: &mut UnionFind| {
        let (ra, rb) = (uf.find(a), uf.find(b));
        if ra == rb {
            return;
        }
        stats.candidate_pairs += 1;
        if let Some(t) = verify {
            if estimated_jaccard(&sigs[a as usize], &sigs[b as usize]) < t {
                stats.rejected_pairs += 1;
                return;
            }
        }
        uf.union_roots(ra, rb);
    };
    if members.len() <= ALL_PAIRS_LIMIT {
        for (i, &a) in members.iter().enumerate() {
            for &b in &members[i + 1..] {
                try_link(a, b, uf);
            }
        }
    } else {
        for pair in members.windows(2) {
            try_link(pair[0], pair[1], uf);
        }
        for &b in &members[1..] {
            try_link(members[0], b, uf);
        }
    }
}

/// Signatures of many texts in parallel (order preserved).
pub fn signatures<S: AsRef<str> + Sync>(hasher: &MinHasher, texts: &[S]) -> Vec<Signature> {
    texts.par_iter().map(|t| hasher.signature(t.as_ref())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::minhash::MinHashConfig;

    fn text(seed: usize, len: usize) -> Vec<String> {
        (0..len)
            .map(|i| format!("t{}", (i * 7919 + seed * 104729) % 1_000_003))
            .collect()
    }

    #[test]
    fn exact_and_near_copies_cluster_and_best_is_kept() {
        let hasher = MinHasher::new(MinHashConfig::default());
        let base = text(1, 300);
        let mut near = base.clone();
        near[150] = "changed".into();
        let unrelated = text(2, 300);
        let texts = vec![base.join(" "), unrelated.join(" "), near.join(" "), base.join(" ")];
        let sigs = signatures(&hasher, &texts);
        let ids = ["d", "c", "a", "b"];
        let keys: Vec<KeepKey> = texts
            .iter()
            .zip(ids)
            .map(|(t, id)| KeepKey {
                score: None,
                text_len: t.len(),
                id,
            })
            .collect();
        let c = cluster_signatures(&hasher, &sigs, &keys);
        assert_eq!(c.cluster_of, vec![0, 1, 0, 0]);
        // near copy has the longest text ("changed" is longer than the word it replaced) → kept.
        assert_eq!(c.keep, vec![false, true, true, false]);
        assert_eq!(c.stats.duplicate_clusters, 1);
        assert_eq!(c.stats.removed, 2);
        assert_eq!(c.stats.size_histogram.get(&3), Some(&1));
    }

    #[test]
    fn empty_documents_do_not_cluster_together() {
        let hasher = MinHasher::new(MinHashConfig::default());
        let texts = ["", " ", "..."];
        let sigs = signatures(&hasher, &texts);
        let keys: Vec<KeepKey> = ["a", "b", "c"]
            .iter()
            .map(|id| KeepKey {
                score: None,
                text_len: 0,
                id,
            })
            .collect();
        let c = cluster_signatures(&hasher, &sigs, &keys);
        assert_eq!(c.keep, vec![true, true, true]);
    }
}
