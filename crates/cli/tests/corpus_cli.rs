//! End-to-end `seekmath corpus ...` on shared data: extract → train-classifier → score → rank → predict.

use std::io::Write;
use std::process::{Command, Stdio};

mod common;

use common::jsonl;

/// `seekmath ARGS...`: its summary (stderr).
fn seekmath(args: &[&str]) -> String {
    String::from_utf8_lossy(&common::seekmath(args).stderr).into_owned()
}

#[test]
fn extract_train_score_rank_predict() {
    let Some(data) = common::shared("") else { return };
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();

    // extract: a real Common Crawl WARC and a clipped one (counted, not fatal).
    let summary = seekmath(&[
        "corpus",
        "extract",
        &data.join("web/warc/whirlwind.warc.gz").display().to_string(),
        &data.join("web/warc/clipped.warc.gz").display().to_string(),
        "-o",
        &p("pages.jsonl"),
    ]);
    assert!(
        summary.contains("truncated"),
        "summary reports the clipped record: {summary}"
    );
    let pages = jsonl(&dir.path().join("pages.jsonl"));
    assert!(pages.iter().any(|d| {
        d["url"].as_str().is_some_and(|u| u.ends_with("/wiki/Escopete")) && d["text"].as_str().unwrap().len() > 200
    }));

    // negatives: web article text as JSONL; positives: math Q&A.
    let gold: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("web/pages/scrapinghub/ground-truth.json")).unwrap())
            .unwrap();
    let mut f = std::fs::File::create(dir.path().join("web.jsonl")).unwrap();
    for (k, v) in gold.as_object().unwrap() {
        writeln!(f, "{}", serde_json::json!({"id": k, "text": v["articleBody"]})).unwrap();
    }
    drop(f);
    let math = data
        .join("mathtext/mathlm/merged_data/validation/math-instruct.jsonl.gz")
        .display()
        .to_string();
    seekmath(&[
        "corpus",
        "train-classifier",
        "--positive",
        &math,
        "--negative",
        &p("web.jsonl"),
        "-o",
        &p("m.bin"),
        "--dim",
        "16",
        "--bucket",
        "20000",
        "--epoch",
        "20",
        "--lr",
        "0.5",
        "--min-count",
        "1",
    ]);

    seekmath(&[
        "corpus",
        "score",
        "--model",
        &p("m.bin"),
        &math,
        &p("web.jsonl"),
        "-o",
        &p("scored.jsonl"),
    ]);
    let scored = jsonl(&dir.path().join("scored.jsonl"));
    assert_eq!(scored.len(), 100 + gold.as_object().unwrap().len());
    let mean = |range: std::ops::Range<usize>| {
        scored[range.clone()]
            .iter()
            .map(|d| d["math_score"].as_f64().unwrap())
            .sum::<f64>()
            / range.len() as f64
    };
    assert!(mean(0..100) > mean(100..scored.len()) + 0.3, "math pages score higher");

    let tokenizer = data
        .join("models/tokenizers/gpt-neo-test-tokenizer.json")
        .display()
        .to_string();
    let summary = seekmath(&[
        "corpus",
        "rank",
        &p("scored.jsonl"),
        "-o",
        &p("top.jsonl"),
        "--budget-tokens",
        "20000",
        "--tokenizer",
        &tokenizer,
    ]);
    let top = jsonl(&dir.path().join("top.jsonl"));
    assert!(!top.is_empty() && top.len() < scored.len(), "{summary}");
    assert!(
        top.iter()
            .filter(|d| d["scores"]["math"].as_f64().unwrap() > 0.5)
            .count()
            * 10
            >= top.len() * 9
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_seekmath"))
        .args(["corpus", "predict", "--model", &p("m.bin"), "-k", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"let x be an integer and prove that x^2 is nonnegative\nhello\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0].split(' ').count(),
        4,
        "two label/probability pairs: {}",
        lines[0]
    );
    assert!(lines[0].starts_with("__label__"));
}

/// `corpus decontam`: a planted benchmark question (re-cased, re-wrapped) is cut out, its neighbour lines stay, and a
/// long run of malformed records is counted without ending the file early.
#[test]
fn decontam_removes_planted_questions_past_malformed_records() {
    let Some(gsm8k) = common::shared("benchmarks/gsm8k/test.jsonl") else {
        return;
    };
    let first: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&gsm8k).unwrap().lines().next().unwrap()).unwrap();
    let question = first["question"].as_str().unwrap();
    let words: Vec<&str> = question.split_whitespace().collect();
    let rewrapped = format!(
        "{}\n{}",
        words[..words.len() / 2].join(" ").to_uppercase(),
        words[words.len() / 2..].join("  ")
    );
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pages.jsonl");
    let mut f = std::fs::File::create(&input).unwrap();
    let doc = |id: &str, text: &str| serde_json::json!({"id": id, "text": text}).to_string();
    writeln!(
        f,
        "{}",
        doc("clean", "Let x be a real number.\nThen x squared is never negative.")
    )
    .unwrap();
    // More malformed lines than one reading batch holds.
    for _ in 0..1500 {
        writeln!(f, "{{not json").unwrap();
    }
    writeln!(
        f,
        "{}",
        doc(
            "planted",
            &format!("A worked example follows.\n{rewrapped}\nThe answer is below.")
        )
    )
    .unwrap();
    drop(f);
    let out = dir.path().join("clean.jsonl");
    let summary = seekmath(&[
        "corpus",
        "decontam",
        input.to_str().unwrap(),
        "--benchmarks",
        gsm8k.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(summary.contains("1500"), "malformed records are counted: {summary}");
    let docs = jsonl(&out);
    let ids: Vec<&str> = docs.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["clean", "planted"], "documents after the malformed run are kept");
    let planted = docs[1]["text"].as_str().unwrap();
    assert!(planted.contains("A worked example follows."), "{planted}");
    assert!(planted.contains("The answer is below."), "{planted}");
    let halves = rewrapped.split_once('\n').unwrap();
    assert!(
        !planted.contains(halves.0) && !planted.contains(halves.1),
        "question removed: {planted}"
    );
    assert_eq!(
        docs[0]["text"].as_str().unwrap(),
        "Let x be a real number.\nThen x squared is never negative."
    );
}
