//! Extraction quality on trafilatura's evaluation pages (snippets that must / must not appear) and on
//! scrapinghub's pages (bag-of-words precision/recall against the gold article text), as regression floors,
//! reported on the documented dev/test split (`common::extraction_page_is_test`); `benches/corpus1.rs` compares
//! against trafilatura and resiliparse side by side. Diagnostics (`SEEKMATH_EXTRACT_DIAG=1`: misses, junk and
//! weak scrapinghub pages; `SEEKMATH_EXTRACT_DUMP=DIR`: extracted texts) cover dev pages only, so that tuning
//! never looks at the test half.

mod common;

use seekmath_corpus::extract::{extract, ExtractOptions};
use std::io::Read;

fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// With `SEEKMATH_EXTRACT_DUMP=DIR`, writes the extracted text of each dev page to `DIR/<file>.txt` for
/// side-by-side inspection (test pages are never written).
fn dump_dev_output(split: usize, file: &str, text: &str) {
    if let Some(dir) = std::env::var_os("SEEKMATH_EXTRACT_DUMP") {
        if split == 0 {
            let dir = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{file}.txt")), text).unwrap();
        }
    }
}

/// Default options, varied from the environment for tuning sweeps (on the dev half).
fn options_from_env() -> ExtractOptions {
    let mut options = ExtractOptions::default();
    if let Some(v) = std::env::var("SEEKMATH_EXTRACT_MIN_WORDS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        options.min_block_words = v;
    }
    if let Some(v) = std::env::var("SEEKMATH_EXTRACT_LINK_DENSITY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        options.max_link_density = v;
    }
    options
}

#[test]
fn trafilatura_eval_snippet_f1_stays_above_floor() {
    let Some(data) = common::shared_data() else { return };
    let dir = data.join("web/pages/trafilatura");
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("evaldata.json")).unwrap()).unwrap();
    let options = options_from_env();
    // [dev, test] counts of true positives, false positives, false negatives.
    let mut counts = [[0usize; 3]; 2];
    let verbose = std::env::var_os("SEEKMATH_EXTRACT_DIAG").is_some();
    let mut entries: Vec<_> = eval.as_object().unwrap().iter().collect();
    entries.sort_by_key(|(k, _)| k.to_string());
    for (_, entry) in entries {
        let file = entry["file"].as_str().unwrap();
        let split = common::extraction_page_is_test(file) as usize;
        let verbose = verbose && split == 0;
        let [tp, fp, fn_] = &mut counts[split];
        let path = dir.join("html").join(format!("{}.gz", entry["file"].as_str().unwrap()));
        let mut raw = Vec::new();
        seekmath_corpus::readers::compress::open_decompressed(&path)
            .unwrap()
            .read_to_end(&mut raw)
            .unwrap();
        let full = extract(&String::from_utf8_lossy(&raw), &options).text;
        dump_dev_output(split, file, &full);
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
                *tp += 1;
            } else {
                *fn_ += 1;
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
                *fp += 1;
                if verbose {
                    eprintln!("JUNK {}: {s}", entry["file"]);
                }
            }
        }
    }
    let f1 = |[tp, fp, fn_]: [usize; 3]| {
        let p = tp as f64 / (tp + fp).max(1) as f64;
        let r = tp as f64 / (tp + fn_).max(1) as f64;
        (p, r, 2.0 * p * r / (p + r))
    };
    let all = [0, 1, 2].map(|k| counts[0][k] + counts[1][k]);
    for (name, c) in [("dev", counts[0]), ("test", counts[1]), ("all", all)] {
        let (p, r, f) = f1(c);
        eprintln!("trafilatura eval {name}: P {p:.3} R {r:.3} F1 {f:.3}");
    }
    let (_, _, test_f1) = f1(counts[1]);
    assert!(test_f1 >= 0.88, "test-split F1 {test_f1:.3} fell below the floor");
}

#[test]
fn scrapinghub_token_f1_stays_above_floor() {
    let Some(data) = common::shared_data() else { return };
    let dir = data.join("web/pages/scrapinghub");
    let gold: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("ground-truth.json")).unwrap()).unwrap();
    let mut keys: Vec<&String> = gold.as_object().unwrap().keys().collect();
    keys.sort();
    let verbose = std::env::var_os("SEEKMATH_EXTRACT_DIAG").is_some();
    let options = options_from_env();
    // [dev, test]: sums of precision and recall, and page counts.
    let mut sums = [(0f64, 0f64, 0usize); 2];
    for key in keys {
        let path = dir.join("html").join(format!("{key}.html.gz"));
        if !path.exists() {
            continue;
        }
        let split = common::extraction_page_is_test(&format!("{key}.html")) as usize;
        let mut raw = Vec::new();
        seekmath_corpus::readers::compress::open_decompressed(&path)
            .unwrap()
            .read_to_end(&mut raw)
            .unwrap();
        let text = extract(&String::from_utf8_lossy(&raw), &options).text;
        dump_dev_output(split, &format!("{key}.html"), &text);
        let (p, r) = common::token_precision_recall(&text, gold[key]["articleBody"].as_str().unwrap_or(""));
        if verbose && split == 0 && (p < 0.9 || r < 0.9) {
            eprintln!("SCRAPINGHUB {key}: P {p:.3} R {r:.3}");
        }
        sums[split].0 += p;
        sums[split].1 += r;
        sums[split].2 += 1;
    }
    let f1 = |(p, r, n): (f64, f64, usize)| {
        let (p, r) = (p / n.max(1) as f64, r / n.max(1) as f64);
        (p, r, 2.0 * p * r / (p + r).max(f64::MIN_POSITIVE))
    };
    for (name, s) in [("dev", sums[0]), ("test", sums[1])] {
        let (p, r, f) = f1(s);
        eprintln!("scrapinghub token {name}: P {p:.3} R {r:.3} F1 {f:.3} ({} pages)", s.2);
    }
    let (_, _, test_f1) = f1(sums[1]);
    assert!(test_f1 >= 0.96, "test-split token F1 {test_f1:.3} fell below the floor");
}
