//! Acceptance: `kill -9` during a CPU run, `--resume`, and the loss curve is bit-for-bit the uninterrupted one.
//!
//! The training runs in a child process (this test binary re-executed on the ignored `child_training_run`
//! test) so that it can be killed with SIGKILL at an arbitrary point after its second checkpoint.

use seekmath_model::ModelConfig;
use seekmath_train::data::shards::ShardWriter;
use seekmath_train::{RunOptions, Stage, TrainConfig};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const STEPS: usize = 120;
const CHILD_ENV: &str = "SEEKMATH_TRAIN_CHILD_CONFIG";

fn write_fixture(dir: &Path) -> PathBuf {
    let cfg = ModelConfig::llama(128, 48, 96, 2, 4, 2, 64, 1e-6);
    let cfg_path = dir.join("tiny-llama.json");
    std::fs::write(&cfg_path, serde_json::to_string(&cfg).unwrap()).unwrap();
    // Two sources of pseudo-text with different statistics, so the mixture matters.
    for (name, stride) in [("math", 3u32), ("code", 7u32)] {
        let mut w = ShardWriter::new(dir.join(format!("{name}.smtok")));
        for d in 0..60u32 {
            let len = 10 + (d * 7) % 23;
            let doc: Vec<u32> = (0..len).map(|t| (d * 13 + t * stride) % 126 + 1).chain([127]).collect();
            w.push(&doc);
        }
        w.finish().unwrap();
    }
    let toml = format!(
        r#"
[run]
output_dir = "OUT"
seed = 11
device = "cpu"
precision = "f32"
[model]
config_json = "{cfg}"
[data]
context_length = 32
[[data.sources]]
name = "math"
weight = 0.7
paths = ["{dir}/math.smtok"]
[[data.sources]]
name = "code"
weight = 0.3
paths = ["{dir}/code.smtok"]
[optim]
peak_lr = 3e-3
batch_tokens = 128
micro_batch_size = 2
[schedule]
kind = "multi-step"
warmup_steps = 10
total_steps = {STEPS}
[checkpoint]
every_steps = 5
keep_last = 2
export_final = false
[metrics]
tensorboard = true
progress_bar = false
"#,
        cfg = cfg_path.display(),
        dir = dir.display()
    );
    let path = dir.join("run.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

fn config(path: &Path, out: &Path) -> TrainConfig {
    TrainConfig::load(path, &[format!("run.output_dir=\"{}\"", out.display())]).unwrap()
}

fn losses(out: &Path) -> BTreeMap<u64, String> {
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let (Some(step), Some(loss)) = (v["step"].as_u64(), v.get("loss")) {
            // serde_json prints f64 in shortest round-trip form: equal strings ⇔ equal bits.
            let previous = map.insert(step, loss.to_string());
            assert!(previous.is_none(), "step {step} logged twice");
        }
    }
    map
}

/// The child: runs (or resumes) the configured training. Ignored unless re-executed by the parent.
#[test]
#[ignore = "run by resume_after_kill9_is_bitwise_identical in a child process"]
fn child_training_run() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let (cfg, out) = spec.split_once('|').unwrap();
    let cfg = config(Path::new(cfg), Path::new(out));
    seekmath_train::run(&cfg, Stage::Pretrain, &RunOptions { resume: true }).unwrap();
}

fn spawn_child(cfg: &Path, out: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_training_run",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{}|{}", cfg.display(), out.display()))
        // The same thread count in every process, so CPU kernels reduce in the same order.
        .env("OMP_NUM_THREADS", "1")
        .spawn()
        .unwrap()
}

#[test]
fn resume_after_kill9_is_bitwise_identical() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = write_fixture(dir.path());

    // Uninterrupted reference run.
    let reference_out = dir.path().join("reference");
    let mut child = spawn_child(&cfg_path, &reference_out);
    assert!(child.wait().unwrap().success());
    let reference = losses(&reference_out);
    assert_eq!(reference.len(), STEPS);
    let first = reference[&1].parse::<f64>().unwrap();
    let last = reference[&(STEPS as u64)].parse::<f64>().unwrap();
    assert!(last < first - 0.5, "the tiny run should learn: {first} -> {last}");

    // Interrupted run: SIGKILL once the checkpoint of step 10 exists, mid-training.
    let out = dir.path().join("interrupted");
    let mut child = spawn_child(&cfg_path, &out);
    let latest = out.join("checkpoints/latest");
    let started = Instant::now();
    loop {
        let at = std::fs::read_to_string(&latest).unwrap_or_default();
        if at
            .trim()
            .strip_prefix("step-")
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|s| s >= 10)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "child never reached step 10"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the child must die by SIGKILL before finishing (status {status})"
    );
    let killed_at = losses(&out).len();
    assert!(killed_at < STEPS, "killed after completion");

    // Resume to the end.
    let mut child = spawn_child(&cfg_path, &out);
    assert!(child.wait().unwrap().success());
    let resumed = losses(&out);
    eprintln!("killed after {killed_at} logged steps; resumed to {}", resumed.len());
    assert_eq!(
        resumed, reference,
        "resumed loss curve differs from the uninterrupted one"
    );
}
