//! Format and prediction parity with official fastText (pip `fasttext-wheel`, run from the project venv).

mod common;

use seekmath_corpus::classifier::{Classifier, TrainConfig};
use std::io::Write;
use std::path::Path;
use std::process::Command;

type Preds = Vec<Vec<(String, f32)>>;

fn reference_predictions(python: &Path, model: &Path, lines: &[String], k: usize) -> Preds {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("lines.txt");
    let mut f = std::fs::File::create(&input).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    drop(f);
    let out = common::run(
        Command::new(python)
            .arg(common::fasttext_ref_script())
            .arg("predict")
            .arg(model)
            .arg(&input)
            .arg(k.to_string()),
    );
    out.lines()
        .map(|l| serde_json::from_str::<Vec<(String, f32)>>(l).unwrap())
        .collect()
}

/// Lines of text in many languages from shared data: benchmark questions (en, zh), trafilatura snippets
/// (de, pl, es, en, ...), and gold article text.
fn multilingual_lines(data: &Path, n: usize) -> Vec<String> {
    let mut pool: Vec<String> = Vec::new();
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("web/pages/trafilatura/evaldata.json")).unwrap())
            .unwrap();
    for entry in eval.as_object().unwrap().values() {
        for key in ["with", "without"] {
            for s in entry.get(key).and_then(|v| v.as_array()).into_iter().flatten() {
                pool.push(s.as_str().unwrap_or("").to_string());
            }
        }
    }
    let gold: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("web/pages/scrapinghub/ground-truth.json")).unwrap())
            .unwrap();
    for entry in gold.as_object().unwrap().values() {
        pool.extend(entry["articleBody"].as_str().unwrap_or("").lines().map(str::to_string));
    }
    for (file, field) in [
        ("benchmarks/cmath/test.jsonl", "question"),
        ("benchmarks/gsm8k/test.jsonl", "question"),
    ] {
        let Ok(text) = std::fs::read_to_string(data.join(file)) else {
            continue;
        };
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                if let Some(q) = v.get(field).and_then(|q| q.as_str()) {
                    pool.push(q.to_string());
                }
            }
        }
    }
    let mut lines: Vec<String> = pool
        .into_iter()
        .map(|l| l.replace(['\n', '\r'], " ").trim().to_string())
        .filter(|l| l.chars().count() >= 20)
        .collect();
    lines.sort();
    lines.dedup();
    let step = (lines.len() / n).max(1);
    lines.into_iter().step_by(step).take(n).collect()
}

#[test]
fn cooking_model_matches_fasttext_top1_and_probabilities() {
    let (Some(data), Some(python)) = (common::shared_data(), common::python_with("fasttext")) else {
        return;
    };
    let model_path = data.join("models/fasttext/cooking.model.bin");
    let lines: Vec<String> = std::fs::read_to_string(data.join("models/fasttext/cooking.valid"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 3000);
    let reference = reference_predictions(&python, &model_path, &lines, 5);
    let ours = Classifier::load(&model_path).unwrap();
    let mut max_diff = 0f32;
    for (line, expected) in lines.iter().zip(&reference) {
        let got = ours.predict(line, 5);
        assert_eq!(got[0].0, expected[0].0, "top-1 differs on {line:?}");
        for ((gl, gp), (el, ep)) in got.iter().zip(expected) {
            if gl == el {
                max_diff = max_diff.max((gp - ep).abs());
            }
        }
        assert_eq!(got.len(), expected.len());
    }
    eprintln!("cooking: 3000/3000 identical top-1, max |Δp| = {max_diff:e}");
    assert!(max_diff <= 1e-5, "max probability difference {max_diff}");
}

#[test]
fn lid176_ftz_matches_fasttext_on_5000_lines() {
    let (Some(data), Some(python)) = (common::shared_data(), common::python_with("fasttext")) else {
        return;
    };
    let model_path = data.join("models/fasttext/lid.176.ftz");
    let lines = multilingual_lines(&data, 5000);
    assert!(lines.len() >= 4000, "only {} lines", lines.len());
    let reference = reference_predictions(&python, &model_path, &lines, 1);
    let lid = seekmath_corpus::langid::LanguageIdentifier::load(&model_path).unwrap();
    let mut same = 0;
    let mut max_diff = 0f32;
    let mut langs = std::collections::BTreeMap::new();
    for (line, expected) in lines.iter().zip(&reference) {
        let (code, p) = lid.identify(line).unwrap();
        let expected_code = expected[0].0.trim_start_matches("__label__");
        *langs.entry(expected_code.to_string()).or_insert(0) += 1;
        if code == expected_code {
            same += 1;
            max_diff = max_diff.max((p - expected[0].1).abs());
        }
    }
    let agreement = same as f64 / lines.len() as f64;
    eprintln!(
        "lid.176.ftz: {same}/{} identical top-1 ({:.4}), max |Δp| {max_diff:e}, languages {langs:?}",
        lines.len(),
        agreement
    );
    assert!(agreement >= 0.999, "agreement {agreement}");
    assert!(langs.len() >= 5, "not multilingual enough: {langs:?}");
}

#[test]
fn model_saved_by_seekmath_loads_in_fasttext_with_same_predictions() {
    let (Some(data), Some(python)) = (common::shared_data(), common::python_with("fasttext")) else {
        return;
    };
    // Round-trip the shipped model through our writer, and train a small one of our own.
    let dir = tempfile::tempdir().unwrap();
    let cooking = Classifier::load(data.join("models/fasttext/cooking.model.bin")).unwrap();
    let resaved = dir.path().join("cooking.resaved.bin");
    cooking.save(&resaved).unwrap();
    assert_eq!(
        std::fs::read(&resaved).unwrap(),
        std::fs::read(data.join("models/fasttext/cooking.model.bin")).unwrap(),
        "byte-identical re-save"
    );

    let lines: Vec<String> = std::fs::read_to_string(data.join("models/fasttext/cooking.valid"))
        .unwrap()
        .lines()
        .take(1500)
        .map(str::to_string)
        .collect();
    let samples: Vec<(String, String)> = lines
        .iter()
        .filter_map(|l| {
            let (label, text) = l.split_once(' ')?;
            Some((
                label.to_string(),
                text.split(' ')
                    .filter(|w| !w.starts_with("__label__"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ))
        })
        .collect();
    let config = TrainConfig {
        dim: 16,
        epoch: 5,
        min_count: 1,
        word_ngrams: 2,
        bucket: 10_000,
        ..Default::default()
    };
    let ours = Classifier::train(&samples, &config).unwrap();
    let path = dir.path().join("ours.bin");
    ours.save(&path).unwrap();
    let reference = reference_predictions(&python, &path, &lines[..300], 3);
    for (line, expected) in lines.iter().zip(&reference) {
        let got = ours.predict(line, 3);
        assert_eq!(got[0].0, expected[0].0, "{line}");
        for ((_, gp), (_, ep)) in got.iter().zip(expected) {
            assert!((gp - ep).abs() <= 1e-5, "{gp} vs {ep}");
        }
    }
    // Quantized: our .ftz loads in fastText too.
    let quant = ours.quantize(&Default::default()).unwrap();
    let qpath = dir.path().join("ours.ftz");
    quant.save(&qpath).unwrap();
    let reference = reference_predictions(&python, &qpath, &lines[..300], 1);
    let agree = lines
        .iter()
        .zip(&reference)
        .filter(|(l, e)| quant.predict(l, 1)[0].0 == e[0].0)
        .count();
    assert!(agree >= 297, "quantized agreement {agree}/300");
}
