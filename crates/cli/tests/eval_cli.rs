//! End-to-end `seekmath eval` on the real small model (SmolLM2-135M-Instruct GGUF): a two-problem GSM8K slice,
//! resumability through the CLI, and per-item parity with transformers greedy decoding of the same prompts.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::workspace;

fn eval(args: &[&str]) -> std::process::Output {
    let mut all = vec!["eval"];
    all.extend_from_slice(args);
    common::seekmath(&all)
}

fn items(dir: &Path) -> Vec<serde_json::Value> {
    common::jsonl(&dir.join("gsm8k/items.jsonl"))
}

#[test]
fn gsm8k_slice_runs_resumes_and_reports() {
    let (Some(model), Some(data)) = (common::smollm2(), common::shared("benchmarks")) else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let common = |limit: &'static str| {
        vec![
            "--model".to_string(),
            model.display().to_string(),
            "--bench".into(),
            "gsm8k".into(),
            "--data".into(),
            data.display().to_string(),
            "--device".into(),
            "cpu".into(),
            "--max-new-tokens".into(),
            "24".into(),
            "--batch-size".into(),
            "1".into(),
            "--limit".into(),
            limit.into(),
            "--output".into(),
            out.path().display().to_string(),
            "--no-progress".into(),
        ]
    };
    let args = common("1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    eval(&args);
    assert_eq!(items(out.path()).len(), 1);
    // A larger limit over the same directory continues instead of starting over.
    let args = common("2");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = eval(&args);
    let records = items(out.path());
    assert_eq!(records.len(), 2);
    assert!(records[1]["prompt"].as_str().unwrap().ends_with("\nA:"));
    assert!(records[1]["samples"][0]["tokens"].as_u64().unwrap() > 0);
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(report.contains("| GSM8K | 8-shot few-shot CoT"), "{report}");
    assert!(report.contains("64.2%"), "paper number missing: {report}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("GSM8K"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("gsm8k/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["n_items"], 2);
}

/// The same prompts through transformers (greedy, GGUF dequantised to f32) must give the same predictions.
#[test]
fn predictions_match_transformers_greedy() {
    let (Some(model), Some(data)) = (common::smollm2(), common::shared("benchmarks")) else {
        return;
    };
    let python = std::env::var_os("SEEKMATH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    let has_transformers = Command::new(&python)
        .args(["-c", "import transformers, gguf"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_transformers {
        eprintln!("skipping: transformers/gguf not importable with {}", python.display());
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let out_s = out.path().display().to_string();
    let (model_s, data_s) = (model.display().to_string(), data.display().to_string());
    eval(&[
        "--model",
        model_s.as_str(),
        "--bench",
        "gsm8k",
        "--data",
        data_s.as_str(),
        "--device",
        "cpu",
        "--max-new-tokens",
        "32",
        "--limit",
        "2",
        "--batch-size",
        "2",
        "--output",
        out_s.as_str(),
        "--no-progress",
    ]);
    let reference = out.path().join("hf.jsonl");
    let status = Command::new(&python)
        .arg(workspace().join("crates/bench/scripts/hf_greedy.py"))
        .args([
            "--run",
            format!("{out_s}/gsm8k").as_str(),
            "--model",
            model_s.as_str(),
            "--out",
        ])
        .arg(&reference)
        .status()
        .unwrap();
    assert!(status.success());
    let compare = eval(&[
        "--bench",
        "gsm8k",
        "--data",
        data_s.as_str(),
        "--output",
        out_s.as_str(),
        "--compare",
        reference.display().to_string().as_str(),
    ]);
    eprintln!("{}", String::from_utf8_lossy(&compare.stdout));
    let parity: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("gsm8k/parity.json")).unwrap()).unwrap();
    assert_eq!(parity["n"], 2);
    assert_eq!(parity["same_prediction"], 2, "{parity}");
}
