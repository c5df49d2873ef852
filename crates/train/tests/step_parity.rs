//! Acceptance: one training step of a tiny Llama matches a PyTorch/transformers step with the same weights, batch
//! and AdamW settings (parameters after the step within 1e-5), both as one batch and split into two micro-batches
//! (gradient accumulation), and with per-layer activation checkpointing.

use seekmath_train::data::Batch;
use seekmath_train::optim::{AdamW, AdamWSettings};
use seekmath_train::step::{train_step, StepSettings};
use std::path::Path;
use std::process::Command;
use tch::{Device, Kind, Tensor};

fn tensor(rows: &serde_json::Value) -> Tensor {
    let rows: Vec<Vec<i64>> = serde_json::from_value(rows.clone()).unwrap();
    let (b, t) = (rows.len() as i64, rows[0].len() as i64);
    Tensor::from_slice(&rows.concat()).view([b, t])
}

fn batch_of(ids: &Tensor, labels: &Tensor, mask: &Tensor) -> Batch {
    let target_tokens = labels.ne(-100).sum(Kind::Int64).int64_value(&[]);
    let input_tokens = mask.sum(Kind::Int64).int64_value(&[]);
    Batch {
        input_ids: ids.copy(),
        labels: labels.copy(),
        attention_mask: Some(mask.copy()),
        target_tokens,
        input_tokens,
    }
}

fn run_case(python: &Path, dir: &Path, split: bool, activation_checkpointing: bool) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/reference_step.py");
    let prep = Command::new(python)
        .arg(&script)
        .arg("prepare")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        prep.status.success(),
        "prepare failed: {}",
        String::from_utf8_lossy(&prep.stderr)
    );

    let loaded = seekmath_model::load(&dir.join("model"), Device::Cpu, Kind::Float).unwrap();
    let batch: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("batch.json")).unwrap()).unwrap();
    let (ids, labels, mask) = (
        tensor(&batch["input_ids"]),
        tensor(&batch["labels"]),
        tensor(&batch["attention_mask"]),
    );
    let micro = if split {
        (0..2)
            .map(|r| batch_of(&ids.narrow(0, r, 1), &labels.narrow(0, r, 1), &mask.narrow(0, r, 1)))
            .collect()
    } else {
        vec![batch_of(&ids, &labels, &mask)]
    };
    let settings = AdamWSettings {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
        fused: true,
    };
    let mut opt = AdamW::new(&loaded.vs, settings).unwrap();
    let step = StepSettings {
        lr: 1e-3,
        grad_clip: 1.0,
        device: Device::Cpu,
        autocast: None,
        activation_checkpointing,
    };
    let stats = train_step(&loaded.model, &mut opt, &micro, &step).unwrap();
    let named: Vec<(String, Tensor)> = loaded.vs.variables().into_iter().collect();
    Tensor::write_safetensors(&named, dir.join("rust_after.safetensors")).unwrap();
    std::fs::write(
        dir.join("rust_stats.json"),
        serde_json::json!({"loss": stats.loss, "grad_norm": stats.grad_norm}).to_string(),
    )
    .unwrap();
    let check = Command::new(python)
        .arg(&script)
        .arg("check")
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout).to_string();
    eprintln!("split={split} checkpointing={activation_checkpointing}: {stdout}");
    assert!(
        check.status.success(),
        "parity check failed: {stdout}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap()
}

#[test]
fn one_step_matches_transformers_and_torch_adamw() {
    let Some(python) = seekmath_train::testing::python() else {
        eprintln!("skipping: project venv python not found (run scripts/setup.sh)");
        return;
    };
    let probe = Command::new(&python)
        .args(["-c", "import transformers, torch, safetensors"])
        .output()
        .unwrap();
    if !probe.status.success() {
        eprintln!("skipping: transformers/torch not importable in {}", python.display());
        return;
    }
    for (split, checkpointing) in [(false, false), (true, false), (true, true)] {
        let dir = tempfile::tempdir().unwrap();
        let result = run_case(&python, dir.path(), split, checkpointing);
        assert!(result["max_abs_diff"].as_f64().unwrap() <= 1e-5, "{result}");
        // The step really changed the weights (by about lr), so agreement is not vacuous.
        assert!(result["max_update"].as_f64().unwrap() > 5e-4, "{result}");
    }
}
