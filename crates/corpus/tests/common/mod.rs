//! Helpers shared by the integration tests: locating shared data and the reference Python.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The shared third-party data folder, or `None` (with a printed reason) when it is missing.
pub fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("SEEKMATH_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if dir.join("web").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: shared data not found at {} (set SEEKMATH_SHARED_DATA)",
            dir.display()
        );
        None
    }
}

/// The project venv's Python if it can import `module`, else `None` with a printed reason.
pub fn python_with(module: &str) -> Option<PathBuf> {
    let python = std::env::var_os("SEEKMATH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        Some(python)
    } else {
        eprintln!(
            "SKIP: {} cannot import {module} (run scripts/setup.sh)",
            python.display()
        );
        None
    }
}

/// Path of the fastText reference script.
pub fn fasttext_ref_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/fasttext_ref.py")
}

/// Runs a command and returns stdout, panicking with stderr on failure.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8 stdout")
}

/// The math-vs-web training set built from shared data: positives are Stack Exchange / Khan / MATH texts from
/// `mathtext/`, negatives are web pages (scrapinghub gold article text and the visible text of trafilatura's
/// evaluation pages). Returns `(label, text, is_test)` with a deterministic 80/20 split by content hash.
pub fn math_vs_web(data: &Path, max_per_class: usize) -> Vec<(String, String, bool)> {
    use seekmath_corpus::extract::{extract, ExtractOptions};
    use seekmath_corpus::readers;
    let mut positives = Vec::new();
    let mut files = vec![data.join("mathtext/stackmathqa.jsonl")];
    for sub in ["filtered-stack-exchange", "human-filtered-khan", "merged_data/train"] {
        if let Ok(dir) = std::fs::read_dir(data.join("mathtext/mathlm").join(sub)) {
            let mut paths: Vec<_> = dir.map(|e| e.unwrap().path()).collect();
            paths.sort();
            files.extend(paths);
        }
    }
    for path in files {
        for doc in readers::open(&path).unwrap().flatten() {
            positives.push(doc.text);
        }
    }
    let mut negatives = Vec::new();
    let gold: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("web/pages/scrapinghub/ground-truth.json")).unwrap())
            .unwrap();
    let mut keys: Vec<_> = gold.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    for k in keys {
        negatives.push(gold[&k]["articleBody"].as_str().unwrap_or("").to_string());
    }
    let mut pages: Vec<_> = std::fs::read_dir(data.join("web/pages/trafilatura/html"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    let all_text = ExtractOptions {
        remove_boilerplate: false,
        ..Default::default()
    };
    for page in pages {
        let mut html = String::new();
        let _ = std::io::Read::read_to_string(&mut readers::compress::open_decompressed(&page).unwrap(), &mut html);
        negatives.push(extract(&html, &all_text).text);
    }
    let mut out = Vec::new();
    for (label, texts) in [("math", positives), ("web", negatives)] {
        let texts: Vec<String> = texts
            .into_iter()
            .filter(|t| t.split_whitespace().count() >= 20)
            .collect();
        let step = (texts.len() / max_per_class).max(1);
        for t in texts.into_iter().step_by(step).take(max_per_class) {
            let h = seekmath_corpus::classifier::model::fasttext_hash(t.as_bytes());
            out.push((label.to_string(), t, h % 5 == 0));
        }
    }
    out
}

/// Area under the ROC curve of `scores` for binary `positive` labels (ties count one half).
pub fn auc(scores: &[f32], positive: &[bool]) -> f64 {
    let mut pairs: Vec<(f32, bool)> = scores.iter().copied().zip(positive.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut i) = (0f64, 0usize);
    let npos = positive.iter().filter(|&&p| p).count() as f64;
    let nneg = positive.len() as f64 - npos;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        let avg_rank = (i + j + 1) as f64 / 2.0;
        rank_sum += pairs[i..j].iter().filter(|p| p.1).count() as f64 * avg_rank;
        i = j;
    }
    (rank_sum - npos * (npos + 1.0) / 2.0) / (npos * nneg)
}

/// The documented dev/test split of the extraction evaluation pages (trafilatura eval and scrapinghub): a page is
/// in the *test* half when the 32-bit FNV-1a hash of its file name is odd. Extractor changes are developed and
/// inspected on the dev half only; the test half is reported, never looked at page by page.
pub fn extraction_page_is_test(file_name: &str) -> bool {
    let mut h: u32 = 2_166_136_261;
    for &b in file_name.as_bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(16_777_619);
    }
    h % 2 == 1
}

/// Bag-of-words precision and recall of `pred` against `gold` (lower-cased whitespace words, counted with
/// multiplicity), as the scrapinghub article-extraction benchmark computes them.
pub fn token_precision_recall(pred: &str, gold: &str) -> (f64, f64) {
    fn bag(text: &str) -> std::collections::HashMap<String, usize> {
        let mut m = std::collections::HashMap::new();
        for w in text.split_whitespace() {
            *m.entry(w.to_lowercase()).or_insert(0) += 1;
        }
        m
    }
    let (p, g) = (bag(pred), bag(gold));
    let overlap: usize = p.iter().map(|(w, c)| (*c).min(*g.get(w).unwrap_or(&0))).sum();
    let np: usize = p.values().sum();
    let ng: usize = g.values().sum();
    (
        if np == 0 { 0.0 } else { overlap as f64 / np as f64 },
        if ng == 0 { 1.0 } else { overlap as f64 / ng as f64 },
    )
}
