//! Cluster agreement with datatrove's MinHash dedup on the same parameters (5-grams, 14×8, no verification,
//! numbers normalised as datatrove does).

mod common;

use seekmath_corpus::dedup::planted::planted_near_duplicates;
use seekmath_corpus::dedup::{cluster_signatures, signatures, MinHashConfig, MinHasher, ShingleConfig};
use std::collections::BTreeSet;
use std::io::Write;

#[test]
fn clusters_agree_with_datatrove() {
    let Some(python) = common::python_with("datatrove, orjson") else {
        return;
    };
    let shingle = ShingleConfig {
        normalize_numbers: true,
        ..ShingleConfig::default()
    };
    let config = MinHashConfig {
        shingle: shingle.clone(),
        verify_threshold: None,
        ..MinHashConfig::default()
    };
    // Similarities away from the S-curve's middle, where two independent hash families must agree.
    let set = planted_near_duplicates(400, 200, &[0.1, 0.2, 0.3, 0.9, 0.95, 1.0], 99, &shingle);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("docs.jsonl");
    let mut f = std::fs::File::create(&input).unwrap();
    for (id, text) in &set.docs {
        writeln!(f, "{}", serde_json::json!({"id": id, "text": text})).unwrap();
    }
    drop(f);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/parity/datatrove_minhash.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "datatrove failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let theirs: BTreeSet<Vec<String>> = result["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        })
        .collect();

    let hasher = MinHasher::new(config);
    let texts = set.texts();
    let sigs = signatures(&hasher, &texts);
    let keys = set.keep_keys();
    let c = cluster_signatures(&hasher, &sigs, &keys);
    let ours = set.multi_doc_clusters(&c.cluster_of);
    // Agreement over all clusters (singletons included): documents in identical clusters in both.
    let in_theirs: BTreeSet<&String> = theirs.iter().flatten().collect();
    let in_ours: BTreeSet<&String> = ours.iter().flatten().collect();
    let singletons_agree = set
        .docs
        .iter()
        .filter(|(id, _)| !in_theirs.contains(id) && !in_ours.contains(id))
        .count();
    let multi_agree = theirs.intersection(&ours).count();
    let total_clusters = |multi: &BTreeSet<Vec<String>>, members: usize| multi.len() + set.docs.len() - members;
    let denominator = total_clusters(&theirs, in_theirs.len()).max(total_clusters(&ours, in_ours.len()));
    let agreement = (multi_agree + singletons_agree) as f64 / denominator as f64;
    println!(
        "datatrove clusters (2+ docs) {}, ours {}, identical {}; agreement over all clusters {:.4}",
        theirs.len(),
        ours.len(),
        multi_agree,
        agreement
    );
    assert!(theirs.len() >= 150, "datatrove found the planted duplicates");
    assert!(agreement >= 0.99, "cluster agreement {agreement}");
}
