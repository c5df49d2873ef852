//! Extraction quality on trafilatura's evaluation pages (snippets that must / must not appear), as a regression
//! floor; `benches/corpus1.rs` compares against trafilatura and resiliparse side by side.

mod common;

use seekmath_corpus::extract::{extract, ExtractOptions};
use std::io::Read;

fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn trafilatura_eval_snippet_f1_stays_above_floor() {
    let Some(data) = common::shared_data() else { return };
    let dir = data.join("web/pages/trafilatura");
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("evaldata.json")).unwrap()).unwrap();
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    let verbose = std::env::var_os("SEEKMATH_EXTRACT_DIAG").is_some();
    let mut entries: Vec<_> = eval.as_object().unwrap().iter().collect();
    entries.sort_by_key(|(k, _)| k.to_string());
    for (_, entry) in entries {
        let path = dir.join("html").join(format!("{}.gz", entry["file"].as_str().unwrap()));
        let mut raw = Vec::new();
        seekmath_corpus::readers::compress::open_decompressed(&path)
            .unwrap()
            .read_to_end(&mut raw)
            .unwrap();
        let full = extract(&String::from_utf8_lossy(&raw), &ExtractOptions::default()).text;
        if std::env::var("SEEKMATH_EXTRACT_FILE").ok().as_deref() == entry["file"].as_str() {
            eprintln!("=== {}\n{full}\n===", entry["file"]);
        }
        let text = normalize(&full);
        for s in entry["with"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str())
        {
            if text.contains(&normalize(s)) {
                tp += 1;
            } else {
                fn_ += 1;
                if verbose {
                    eprintln!("MISS {}: {s}", entry["file"]);
                }
            }
        }
        for s in entry["without"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str())
        {
            if text.contains(&normalize(s)) {
                fp += 1;
                if verbose {
                    eprintln!("JUNK {}: {s}", entry["file"]);
                }
            }
        }
    }
    let p = tp as f64 / (tp + fp) as f64;
    let r = tp as f64 / (tp + fn_) as f64;
    let f1 = 2.0 * p * r / (p + r);
    eprintln!("trafilatura eval: P {p:.3} R {r:.3} F1 {f1:.3}");
    assert!(f1 >= 0.80, "F1 {f1:.3} fell below the floor");
}
