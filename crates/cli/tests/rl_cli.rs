//! End-to-end `seekmath rl train-rm` (user-labelled PRM file) and `seekmath rl train` (§5.2 SFT) on the tiny
//! llama2.c model `stories260K` from the shared data pack, with the shipped configs shrunk by `--set`.
//! Skips with a reason when the shared data is missing.

use std::path::Path;
use std::process::Command;

mod common;

use common::seekmath_stdout as seekmath;

fn config(name: &str) -> String {
    common::workspace()
        .join("configs")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

fn tiny_settings(model: &Path, out: &Path) -> Vec<String> {
    [
        format!("model.path={}", model.display()),
        "model.device=cpu".into(),
        "model.precision=f32".into(),
        "task.chat_template=false".into(),
        "task.prompt_template=\"{question}\"".into(),
        "task.train_size=20".into(),
        "task.eval_size=2".into(),
        "eval.max_new_tokens=4".into(),
        "eval.batch_size=2".into(),
        format!("output.dir={}", out.display()),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_string(), s])
    .collect()
}

#[test]
fn train_rm_from_a_labelled_file_reports_held_out_step_accuracy() {
    let Some(model) = common::shared("models/tiny/stories260K.bin") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.jsonl");
    let mut lines = String::new();
    for i in 0..6 {
        lines.push_str(&format!(
            "{{\"question\": \"Tom has {i} cats. How many?\", \"steps\": [\"He has {i}\", \"The answer is {i}.\"], \"labels\": [1, {}]}}\n",
            i % 2
        ));
    }
    lines.push_str("{\"question\": \"broken\"\n");
    std::fs::write(&labels, lines).unwrap();
    let rm_dir = dir.path().join("prm");
    let mut args: Vec<String> = vec![
        "rl".into(),
        "train-rm".into(),
        "--config".into(),
        config("prm-smollm2-arith.toml"),
    ];
    args.extend(tiny_settings(&model, &rm_dir));
    for s in [
        format!("rm.labelled_path={}", labels.display()),
        format!("rm.out={}", rm_dir.display()),
        "rm.shepherd.boundary.kind=blank_line".into(),
        "rm.held_out_fraction=0.34".into(),
        "rm.train.lr=1e-3".into(),
    ] {
        args.extend(["--set".to_string(), s]);
    }
    let report: serde_json::Value = serde_json::from_str(&seekmath(&args)).unwrap();
    assert!(report["source"].as_str().unwrap().starts_with("labelled:"));
    assert_eq!(
        report["train_examples"].as_u64().unwrap() + report["held_out_examples"].as_u64().unwrap(),
        6
    );
    assert_eq!(
        report["after"]["positions"].as_u64().unwrap(),
        2 * report["held_out_examples"].as_u64().unwrap()
    );
    assert!(rm_dir.join("reward_model.safetensors").is_file() && rm_dir.join("reward_model.json").is_file());
}

#[test]
fn train_runs_sft_from_its_config() {
    let Some(model) = common::shared("models/tiny/stories260K.bin") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec![
        "rl".into(),
        "train".into(),
        "--config".into(),
        config("rl-sft-smollm2-arith.toml"),
    ];
    args.extend(tiny_settings(&model, dir.path()));
    args.extend([
        "--set".to_string(),
        "grpo.steps=2".into(),
        "--set".into(),
        "method.batch_size=4".into(),
    ]);
    let summary: serde_json::Value = serde_json::from_str(&seekmath(&args)).unwrap();
    assert_eq!(summary["steps"].as_u64(), Some(2));
    assert!(summary["final_eval"].is_number());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
}

/// `rl plot` redraws a run's curves from its metrics.jsonl (step-0 record = accuracy before training); a file
/// without training steps is a clear error.
#[test]
fn plot_redraws_curves_from_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("metrics.jsonl");
    let lines: Vec<String> = (0..=4)
        .map(|step| {
            let eval = if step % 2 == 0 {
                format!("{}", 0.1 + step as f64 / 20.0)
            } else {
                "null".into()
            };
            format!(
                "{{\"step\":{step},\"reward_mean\":{},\"eval_accuracy\":{eval}}}",
                step as f64 / 10.0
            )
        })
        .collect();
    std::fs::write(&metrics, lines.join("\n") + "\n").unwrap();
    let png = dir.path().join("curves.png");
    let args: Vec<String> = [
        "rl",
        "plot",
        "--metrics",
        metrics.to_str().unwrap(),
        "--out",
        png.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    seekmath(&args);
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");

    std::fs::write(&metrics, "{\"step\":0,\"eval_accuracy\":0.1}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_seekmath"))
        .args(&args)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no training steps"));
}
