//! Continued pre-training and supervised fine-tuning, as DeepSeekMath ran them.
//!
//! DeepSeekMath-Base is DeepSeek-Coder-Base-v1.5 7B trained on 500B more tokens of a mixture (56% math corpus,
//! 4% AlgebraicStack, 10% arXiv, 20% code, 10% natural language) with AdamW β=(0.9, 0.95), weight decay 0.1, a
//! multi-step learning-rate schedule and 10M-token batches at 4K context; DeepSeekMath-Instruct is that model
//! fine-tuned for 500 steps on concatenated chat examples with the loss on responses only. This crate is that
//! trainer, on libtorch through tch:
//!
//! * [`data`]: token shards, the weighted mixture with packing, SFT examples with loss masks; deterministic from
//!   a seed and resumable from a recorded position.
//! * [`optim`] + [`step`]: AdamW (fused kernel via `seekmath-shim`), clipping, gradient accumulation, and bf16
//!   autocast over f32 master weights on GPU.
//! * [`schedule`]: multi-step, constant and cosine learning rates.
//! * [`checkpoint`]: atomic checkpoints so `--resume` after a `kill -9` continues bit-for-bit.
//! * [`metrics`]: JSONL and TensorBoard scalars, MFU.
//! * [`trainer`]: the run loop that ties them together; [`config`]: the TOML file it is driven by.

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod metrics;
pub mod optim;
pub mod schedule;
pub mod step;
pub mod trainer;

pub use config::{Stage, TrainConfig};
pub use trainer::{run, RunOptions, RunSummary};

/// Helpers shared by tests (finding the project venv's python).
#[doc(hidden)]
pub mod testing {
    use std::path::PathBuf;

    /// The project venv's python (`SEEKMATH_PYTHON`, else `<workspace>/.venv/bin/python`), if it exists.
    pub fn python() -> Option<PathBuf> {
        if let Ok(p) = std::env::var("SEEKMATH_PYTHON") {
            let p = PathBuf::from(p);
            if p.exists() {
                return Some(p);
            }
        }
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
        p.exists().then_some(p)
    }
}
