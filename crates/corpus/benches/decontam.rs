//! Decontamination throughput: 10-gram matching of real math text against every benchmark in the shared data.
//!
//! `cargo bench -p seekmath-corpus --bench decontam` (env `DECONTAM_BENCH_MB`, default 200 MB scanned).

use seekmath_corpus::decontam::{build_index, clean_text, DecontamConfig};
use seekmath_corpus::readers;
use std::path::PathBuf;
use std::time::Instant;

/// CPU seconds this thread has used (user + system), from /proc; wall time is meaningless on a shared machine.
fn thread_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After the command name: state is field 0, utime field 11, stime field 12; 100 ticks per second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let data = std::env::var_os("SEEKMATH_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if !data.exists() {
        println!("skip: shared data not found at {}", data.display());
        return;
    }
    let target_mb: usize = std::env::var("DECONTAM_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let t = Instant::now();
    let index = build_index(
        &[data.join("benchmarks"), data.join("decontam")],
        DecontamConfig::default(),
    )
    .unwrap();
    let ngrams: usize = index.benchmarks().iter().map(|b| b.ngrams).sum();
    println!(
        "index: {} benchmark files, {ngrams} distinct 10-grams, built in {:.2}s",
        index.benchmarks().len(),
        t.elapsed().as_secs_f64()
    );
    let mut texts = Vec::new();
    let mathtext = data.join("mathtext");
    let mut files = vec![mathtext.join("stackmathqa.jsonl")];
    for sub in ["filtered-stack-exchange", "khan-clean", "human-filtered-khan"] {
        if let Ok(rd) = std::fs::read_dir(mathtext.join("mathlm").join(sub)) {
            files.extend(rd.flatten().map(|e| e.path()));
        }
    }
    files.sort();
    for f in files {
        if let Ok(r) = readers::open(&f) {
            texts.extend(r.flatten().map(|d| d.text));
        }
    }
    let corpus_bytes: usize = texts.iter().map(String::len).sum();
    let rounds = (target_mb << 20).div_ceil(corpus_bytes.max(1));
    println!(
        "corpus: {} real math documents, {:.1} MB, scanned {rounds} times on one thread",
        texts.len(),
        corpus_bytes as f64 / 1e6
    );
    let t = Instant::now();
    let cpu = thread_cpu_seconds();
    let mut matches = 0usize;
    for _ in 0..rounds {
        for text in &texts {
            matches += index.find_matches(text).len();
        }
    }
    let s = t.elapsed().as_secs_f64();
    let cpu_s = thread_cpu_seconds() - cpu;
    let mb = (corpus_bytes * rounds) as f64 / 1e6;
    println!("| stage | MB scanned | wall s | CPU s | MB/s per CPU-second |\n|---|---|---|---|---|");
    println!(
        "| 10-gram match (find_matches) | {mb:.0} | {s:.2} | {cpu_s:.2} | {:.0} |",
        mb / cpu_s
    );
    let t = Instant::now();
    let cpu = thread_cpu_seconds();
    let mut removed = 0usize;
    for _ in 0..rounds {
        for text in &texts {
            removed += clean_text(&index, text).removed_bytes;
        }
    }
    let s2 = t.elapsed().as_secs_f64();
    let cpu2 = thread_cpu_seconds() - cpu;
    println!(
        "| match + line removal (clean_text) | {mb:.0} | {s2:.2} | {cpu2:.2} | {:.0} |",
        mb / cpu2
    );
    let removed = removed / rounds.max(1);
    println!(
        "matches per pass: {}; bytes removed per pass: {removed}",
        matches / rounds.max(1)
    );
}
