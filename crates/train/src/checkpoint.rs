//! Atomic, resumable checkpoints: model weights, optimizer state, and the training state (step, data position,
//! seed, token count) in one folder per step.
//!
//! A checkpoint is written to `step-N.partial/`, every file is fsynced, the folder is renamed to `step-N/` and
//! only then is `latest` (a one-line pointer file) replaced by rename. A run killed at any instant therefore
//! leaves either the previous complete checkpoint or the new one, never a half-written one that `--resume`
//! would pick up. Random state needs no bytes of its own: every random choice (data order, mixture, SFT
//! concatenation, and the torch seed of each step) is derived from `(seed, step or index)`.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Everything besides tensors.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainState {
    /// Optimizer steps completed.
    pub step: u64,
    /// Tokens consumed (inputs, excluding padding).
    pub tokens_seen: u64,
    /// The run's seed.
    pub seed: u64,
    /// The data stream position.
    pub data_position: serde_json::Value,
    /// The stage (`pretrain` / `sft`), checked on resume.
    pub stage: String,
}

/// Checkpoints of one run, under `<output_dir>/checkpoints`.
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    root: PathBuf,
}

fn sync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", path.display()))
}

fn sync_dir(path: &Path) -> Result<()> {
    // Directory fsync makes the rename durable; not every filesystem allows it, and that is not fatal.
    if let Ok(dir) = File::open(path) {
        let _ = dir.sync_all();
    }
    Ok(())
}

impl CheckpointDir {
    /// Checkpoints live in `root` (created on first save).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn step_dir(&self, step: u64) -> PathBuf {
        self.root.join(format!("step-{step:08}"))
    }

    /// Writes a checkpoint atomically and deletes all but the `keep_last` newest complete ones.
    pub fn save(
        &self,
        state: &TrainState,
        model: &[(String, Tensor)],
        optimizer: &[(String, Tensor)],
        keep_last: usize,
    ) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.root).with_context(|| format!("creating {}", self.root.display()))?;
        let final_dir = self.step_dir(state.step);
        let partial = final_dir.with_extension("partial");
        if partial.exists() {
            std::fs::remove_dir_all(&partial)?;
        }
        std::fs::create_dir_all(&partial)?;
        let model_path = partial.join("model.safetensors");
        Tensor::write_safetensors(model, &model_path).with_context(|| format!("writing {}", model_path.display()))?;
        let optim_path = partial.join("optimizer.safetensors");
        Tensor::write_safetensors(optimizer, &optim_path)
            .with_context(|| format!("writing {}", optim_path.display()))?;
        let state_path = partial.join("state.json");
        std::fs::write(&state_path, serde_json::to_vec_pretty(state)?)?;
        for p in [&model_path, &optim_path, &state_path] {
            sync_file(p)?;
        }
        sync_dir(&partial)?;
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir)?;
        }
        std::fs::rename(&partial, &final_dir)?;
        sync_dir(&self.root)?;
        let pointer = self.root.join("latest");
        let tmp = self.root.join("latest.tmp");
        std::fs::write(&tmp, format!("{}\n", final_dir.file_name().unwrap().to_string_lossy()))?;
        sync_file(&tmp)?;
        std::fs::rename(&tmp, &pointer)?;
        sync_dir(&self.root)?;
        self.prune(keep_last.max(1))?;
        Ok(final_dir)
    }

    fn prune(&self, keep: usize) -> Result<()> {
        let mut steps: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.root)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let step = name.strip_prefix("step-")?.parse::<u64>().ok()?;
                Some((step, e.path()))
            })
            .collect();
        steps.sort();
        let latest = self.latest_dir()?;
        for (_, path) in steps.iter().rev().skip(keep) {
            if Some(path) != latest.as_ref() {
                std::fs::remove_dir_all(path).with_context(|| format!("removing old checkpoint {}", path.display()))?;
            }
        }
        Ok(())
    }

    /// The newest complete checkpoint folder, if any.
    pub fn latest_dir(&self) -> Result<Option<PathBuf>> {
        let pointer = self.root.join("latest");
        if !pointer.is_file() {
            return Ok(None);
        }
        let name = std::fs::read_to_string(&pointer)?;
        let dir = self.root.join(name.trim());
        if !dir.join("state.json").is_file() {
            bail!(
                "{} points to {}, which is not a complete checkpoint",
                pointer.display(),
                dir.display()
            );
        }
        Ok(Some(dir))
    }

    /// Loads a checkpoint folder: state, model tensors, optimizer tensors (on CPU).
    #[allow(clippy::type_complexity)]
    pub fn load(dir: &Path) -> Result<(TrainState, Vec<(String, Tensor)>, Vec<(String, Tensor)>)> {
        let state_path = dir.join("state.json");
        let state: TrainState = serde_json::from_slice(
            &std::fs::read(&state_path).with_context(|| format!("reading {}", state_path.display()))?,
        )
        .with_context(|| format!("parsing {}", state_path.display()))?;
        let model = Tensor::read_safetensors(dir.join("model.safetensors"))
            .with_context(|| format!("reading model of {}", dir.display()))?;
        let optim = Tensor::read_safetensors(dir.join("optimizer.safetensors"))
            .with_context(|| format!("reading optimizer of {}", dir.display()))?;
        Ok((state, model, optim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn state(step: u64) -> TrainState {
        TrainState {
            step,
            tokens_seen: step * 10,
            seed: 1,
            data_position: serde_json::json!({"k": step}),
            stage: "pretrain".into(),
        }
    }

    #[test]
    fn save_load_prune_and_ignore_partial_writes() {
        let dir = tempfile::tempdir().unwrap();
        let ck = CheckpointDir::new(dir.path().join("ck"));
        assert!(ck.latest_dir().unwrap().is_none());
        let w = Tensor::arange(6, (Kind::Float, Device::Cpu));
        for step in 1..=3 {
            let model = vec![("w".to_string(), &w * step as f64)];
            ck.save(&state(step), &model, &[("exp_avg/w".into(), w.copy())], 2)
                .unwrap();
        }
        let latest = ck.latest_dir().unwrap().unwrap();
        assert!(latest.ends_with("step-00000003"));
        assert!(!dir.path().join("ck/step-00000001").exists(), "pruned to the last two");
        assert!(dir.path().join("ck/step-00000002").exists());
        // A crash mid-save leaves a .partial folder that is never picked up.
        std::fs::create_dir_all(dir.path().join("ck/step-00000004.partial")).unwrap();
        let (st, model, optim) = CheckpointDir::load(&ck.latest_dir().unwrap().unwrap()).unwrap();
        assert_eq!(st, state(3));
        assert_eq!(
            Vec::<f32>::try_from(&model[0].1).unwrap(),
            vec![0.0, 3.0, 6.0, 9.0, 12.0, 15.0]
        );
        assert_eq!(optim[0].0, "exp_avg/w");
    }
}
