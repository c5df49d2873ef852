//! Near-dedup speed against datatrove, side by side on the same documents and parameters, one core each.
//!
//! `cargo bench -p seekmath-corpus --bench dedup` (env `DEDUP_BENCH_DOCS`, default 20000 documents of 300 words).
//! Prints a Markdown table for docs/benchmarks.md.

use seekmath_corpus::dedup::planted::planted_near_duplicates;
use seekmath_corpus::dedup::{cluster_signatures, signatures, MinHashConfig, MinHasher, ShingleConfig};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let docs: usize = std::env::var("DEDUP_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let shingle = ShingleConfig {
        normalize_numbers: true,
        ..ShingleConfig::default()
    };
    let config = MinHashConfig {
        shingle: shingle.clone(),
        verify_threshold: None,
        ..MinHashConfig::default()
    };
    let set = planted_near_duplicates(docs / 2, 300, &[0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0], 5, &shingle);
    let bytes: usize = set.docs.iter().map(|(_, t)| t.len()).sum();
    let texts = set.texts();
    let keys = set.keep_keys();
    let hasher = MinHasher::new(config);

    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let (sig_s, clu_s, ours) = one.install(|| {
        let t = Instant::now();
        let sigs = signatures(&hasher, &texts);
        let sig_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let c = cluster_signatures(&hasher, &sigs, &keys);
        (sig_s, t.elapsed().as_secs_f64(), c)
    });
    let all = rayon::current_num_threads();
    let t = Instant::now();
    let sigs = signatures(&hasher, &texts);
    let _ = cluster_signatures(&hasher, &sigs, &keys);
    let all_s = t.elapsed().as_secs_f64();
    let rust_total = sig_s + clu_s;
    println!(
        "documents: {} ({:.1} MB), 5-gram shingles, 14x8, no verification (datatrove's parameters)",
        set.docs.len(),
        bytes as f64 / 1e6
    );
    println!("| implementation | signatures s | buckets+clusters s | total s | docs/s/core |");
    println!("|---|---|---|---|---|");
    println!(
        "| seekmath (1 thread) | {sig_s:.3} | {clu_s:.3} | {rust_total:.3} | {:.0} |",
        set.docs.len() as f64 / rust_total
    );
    println!(
        "| seekmath ({all} threads) | | | {all_s:.3} | {:.0} (per core) |",
        set.docs.len() as f64 / all_s / all as f64
    );

    let python = std::env::var_os("SEEKMATH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/parity/datatrove_minhash.py");
    if !python.exists() {
        println!("datatrove: skipped (no venv python)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("seekmath-dedup-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("docs.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    for (id, text) in &set.docs {
        writeln!(f, "{}", serde_json::json!({"id": id, "text": text})).unwrap();
    }
    drop(f);
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(&input)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        println!(
            "datatrove: failed: {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        );
        return;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = |k: &str| v["seconds"][k].as_f64().unwrap();
    let dt_total = s("signatures") + s("buckets") + s("clusters");
    println!(
        "| datatrove 0.10.1 (1 worker) | {:.3} | {:.3} | {dt_total:.3} | {:.0} |",
        s("signatures"),
        s("buckets") + s("clusters"),
        set.docs.len() as f64 / dt_total
    );
    println!(
        "speed-up per core: signatures {:.1}x, total {:.1}x",
        s("signatures") / sig_s,
        dt_total / rust_total
    );
    let theirs: BTreeSet<Vec<String>> = v["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    let mine = set.multi_doc_clusters(&ours.cluster_of);
    println!(
        "clusters of 2+ docs: datatrove {}, seekmath {}, identical {} (this set includes pairs at J 0.5-0.8, where two independent hash families legitimately disagree)",
        theirs.len(),
        mine.len(),
        theirs.intersection(&mine).count()
    );
}
