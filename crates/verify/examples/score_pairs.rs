//! Scores a JSONL file of `{gold, pred, label}` pairs and prints per-pair verdicts with timings plus a summary.
//!
//! Used by `bench/compare_math_verify.py` for the side-by-side with math-verify:
//! `cargo run --release -p seekmath-verify --example score_pairs -- tests/data/labelled_pairs.jsonl [strict|deepseek-compat]`

use seekmath_verify::{Mode, Verifier};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: score_pairs FILE.jsonl [strict|deepseek-compat]")?;
    let mode: Mode = args.next().as_deref().unwrap_or("strict").parse()?;
    let verifier = Verifier::new(mode);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let (mut correct, mut total, mut worst_ns, mut sum_ns) = (0usize, 0usize, 0u128, 0u128);
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("{path}:{}: {e}", i + 1))?;
        let (Some(gold), Some(pred)) = (v["gold"].as_str(), v["pred"].as_str()) else {
            eprintln!("{path}:{}: missing gold/pred, skipped", i + 1);
            continue;
        };
        let start = Instant::now();
        let equal = verifier.is_equivalent(pred, gold);
        let ns = start.elapsed().as_nanos();
        worst_ns = worst_ns.max(ns);
        sum_ns += ns;
        total += 1;
        if v["label"].as_bool() == Some(equal) {
            correct += 1;
        }
        println!(
            "{}",
            serde_json::json!({"line": i + 1, "equal": equal, "ns": ns as u64})
        );
    }
    let summary = serde_json::json!({
        "summary": true, "pairs": total, "correct": correct,
        "accuracy": correct as f64 / total.max(1) as f64,
        "checks_per_s": total as f64 / (sum_ns as f64 / 1e9).max(1e-12),
        "worst_ms": worst_ns as f64 / 1e6,
    });
    println!("{summary}");
    Ok(())
}
