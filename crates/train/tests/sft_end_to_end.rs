//! SFT end to end on CPU: JSONL records → chat template → masked, concatenated rows → training → held-out loss
//! falls → Hugging Face export that loads again. Uses a real BPE tokenizer from ../shared/data (skips without it)
//! and a tiny random Llama, so it runs in seconds.

use seekmath_model::ModelConfig;
use seekmath_train::{RunOptions, Stage, TrainConfig};
use std::path::{Path, PathBuf};

fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var("SEEKMATH_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    dir.is_dir().then_some(dir)
}

#[test]
fn sft_run_learns_and_exports() {
    let Some(shared) = shared_data() else {
        eprintln!("skipping: shared data folder not found (set SEEKMATH_SHARED_DATA)");
        return;
    };
    let tokenizer_json = shared.join("models/tokenizers/gpt-neo-test-tokenizer.json");
    if !tokenizer_json.is_file() {
        eprintln!("skipping: {} missing", tokenizer_json.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tok_dir = dir.path().join("tokenizer");
    std::fs::create_dir_all(&tok_dir).unwrap();
    std::fs::copy(&tokenizer_json, tok_dir.join("tokenizer.json")).unwrap();
    let template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    std::fs::write(
        tok_dir.join("tokenizer_config.json"),
        serde_json::json!({"eos_token": "<|endoftext|>", "chat_template": template}).to_string(),
    )
    .unwrap();
    // Self-written arithmetic records with a fixed answer format.
    let mut lines = String::new();
    for a in 1..=9 {
        for b in 1..=6 {
            let record = serde_json::json!({"question": format!("What is {a} plus {b}?"),
                                             "answer": format!("{a} plus {b} is {}.\n#### {}", a + b, a + b)});
            lines.push_str(&format!("{record}\n"));
        }
    }
    lines.push_str("{\"question\": 1}\n"); // malformed: reported and skipped
    std::fs::write(dir.path().join("train.jsonl"), lines).unwrap();
    let cfg = ModelConfig::llama(50280, 32, 64, 2, 4, 2, 128, 1e-6);
    std::fs::write(dir.path().join("tiny.json"), serde_json::to_string(&cfg).unwrap()).unwrap();
    let toml = r#"
[run]
output_dir = "out"
seed = 3
device = "cpu"
[model]
config_json = "tiny.json"
tokenizer = "tokenizer"
[data]
context_length = 96
[sft]
paths = ["train.jsonl"]
[optim]
peak_lr = 1e-2
batch_tokens = 384
micro_batch_size = 2
[schedule]
kind = "constant"
warmup_steps = 3
total_steps = 25
[checkpoint]
every_steps = 10
[metrics]
progress_bar = false
[eval]
every_steps = 10
holdout_examples = 8
"#;
    std::fs::write(dir.path().join("sft.toml"), toml).unwrap();
    let cfg = TrainConfig::load(&dir.path().join("sft.toml"), &[]).unwrap();
    let summary = seekmath_train::run(&cfg, Stage::Sft, &RunOptions::default()).unwrap();
    let (before, after) = (summary.eval_loss_before.unwrap(), summary.eval_loss_after.unwrap());
    eprintln!("held-out loss {before:.3} -> {after:.3}");
    assert!(
        after < before * 0.7,
        "held-out loss should fall clearly: {before} -> {after}"
    );
    let export = summary.export_dir.unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(export.join(f).is_file(), "export lacks {f}");
    }
    let reloaded = seekmath_model::load(&export, tch::Device::Cpu, tch::Kind::Float).unwrap();
    assert_eq!(reloaded.config.vocab_size, 50280);
    assert!(dir.path().join("out/tensorboard").read_dir().unwrap().next().is_some());
    // A second fresh start into the same folder is refused (it would clobber checkpoints) ...
    assert!(seekmath_train::run(&cfg, Stage::Sft, &RunOptions::default()).is_err());
}
