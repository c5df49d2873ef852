//! End-to-end tests of `seekmath verify` (the stable interface used by scripts).

use std::io::Write;
use std::process::{Command, Stdio};

fn seekmath() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seekmath"))
}

fn run_check(gold: &str, pred: &str, extra: &[&str]) -> (String, bool) {
    let out = seekmath()
        .args(["verify", "--gold", gold, "--pred", pred])
        .args(extra)
        .output()
        .unwrap();
    (
        String::from_utf8(out.stdout).unwrap().trim().to_string(),
        out.status.success(),
    )
}

#[test]
fn check_prints_true_or_false_and_exits_zero() {
    assert_eq!(run_check("\\frac{1}{2}", "0.5", &[]), ("true".into(), true));
    assert_eq!(run_check("\\frac{1}{2}", "0.4", &[]), ("false".into(), true));
    assert_eq!(run_check("50", "0.5", &[]), ("false".into(), true));
    assert_eq!(
        run_check("50", "0.5", &["--mode", "deepseek-compat"]),
        ("true".into(), true)
    );
    // The prediction may be a whole completion.
    assert_eq!(
        run_check("(1,2)", "so the point is \\boxed{(1, 2)}.", &[]),
        ("true".into(), true)
    );
    let sub = seekmath()
        .args(["verify", "check", "--gold", "x=3", "--pred", "3"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(sub.stdout).unwrap().trim(), "true");
}

#[test]
fn usage_errors_exit_non_zero() {
    let out = seekmath().args(["verify", "--gold", "1"]).output().unwrap();
    assert!(!out.status.success());
    let out = seekmath()
        .args(["verify", "--gold", "1", "--pred", "1", "--mode", "lenient"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn batch_annotates_records_and_skips_malformed_lines() {
    let mut child = seekmath()
        .args(["verify", "--batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = concat!(
        "{\"id\": \"a\", \"gold\": \"#### 1,200\", \"pred\": \"The answer is 1200.\"}\n",
        "{broken\n",
        "{\"id\": \"b\", \"gold\": \"\\\\boxed{\\\\sqrt{2}}\", \"pred\": \"1.414\"}\n",
    );
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let records: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["id"], "a");
    assert_eq!(records[0]["equal"], true);
    assert_eq!(records[0]["pred_extracted"], "1200");
    assert_eq!(records[1]["equal"], false);
    assert_eq!(records[1]["gold_extracted"], "\\sqrt{2}");
    assert!(String::from_utf8(out.stderr).unwrap().contains("-:2"));
}
