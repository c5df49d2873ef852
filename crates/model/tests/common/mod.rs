//! Helpers shared by the integration tests: locating the venv and shared data, greedy decoding through the KV
//! cache, comparing logits.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use seekmath_model::{CausalLm, KvCache};
use tch::{Device, Kind, Tensor};

/// The project venv's python (`SEEKMATH_PYTHON` or `<workspace>/.venv/bin/python`) if it can import
/// transformers and torch; otherwise prints why and returns None (the caller skips).
pub fn python_with_transformers() -> Option<PathBuf> {
    let python = std::env::var_os("SEEKMATH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    if !python.exists() {
        eprintln!("SKIP: no python at {} (run scripts/setup.sh)", python.display());
        return None;
    }
    let ok = Command::new(&python)
        .args(["-c", "import torch, transformers"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!(
            "SKIP: {} cannot import torch and transformers (run scripts/setup.sh)",
            python.display()
        );
        return None;
    }
    Some(python)
}

/// Runs `python tests/py/hf_reference.py ARGS`, panicking with its output on failure.
pub fn run_reference(python: &Path, args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/hf_reference.py");
    let out = Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .expect("running python");
    assert!(
        out.status.success(),
        "hf_reference.py {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `<workspace>/../shared/data` or `SEEKMATH_SHARED_DATA`, if it exists.
pub fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("SEEKMATH_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIP: shared data folder {} is missing", dir.display());
        None
    }
}

/// Greedy continuation of one prompt (argmax, first index on ties) through `forward_step` and a KV cache.
pub fn greedy(model: &CausalLm, prompt: &[i64], steps: usize) -> Vec<i64> {
    let batch = greedy_batch(model, &[prompt.to_vec()], steps);
    batch.into_iter().next().unwrap()
}

/// Greedy continuations of several prompts decoded together: prompts left-padded to a common length `P` in slots
/// `0..P`, token `s` of the continuation in slot `P + s` at position `len_i + s` — the layout the engine uses.
pub fn greedy_batch(model: &CausalLm, prompts: &[Vec<i64>], steps: usize) -> Vec<Vec<i64>> {
    tch::no_grad(|| {
        let device = model.device();
        let b = prompts.len() as i64;
        let p = prompts.iter().map(Vec::len).max().unwrap() as i64;
        let max_len = p + steps as i64;
        let mut ids = vec![0i64; (b * p) as usize];
        let mut valid = vec![false; (b * max_len) as usize];
        for (i, prompt) in prompts.iter().enumerate() {
            let pad = p as usize - prompt.len();
            ids[i * p as usize + pad..(i + 1) * p as usize].copy_from_slice(prompt);
            for s in pad..p as usize {
                valid[i * max_len as usize + s] = true;
            }
        }
        let ids = Tensor::from_slice(&ids).view([b, p]).to_device(device);
        let valid = Tensor::from_slice(&valid).view([b, max_len]).to_device(device);
        let prompt_mask = valid.narrow(1, 0, p).to_kind(Kind::Int64);
        let positions = (prompt_mask.cumsum(1, Kind::Int64) - 1).clamp_min(0);
        let slots = Tensor::arange(p, (Kind::Int64, device))
            .unsqueeze(0)
            .expand([b, p], true)
            .contiguous();
        let mut cache = model.new_kv_cache(b, max_len);
        let mask = KvCache::attention_mask(&slots, &valid.narrow(1, 0, p));
        let logits = model.forward_step(&ids, &positions, &mut cache, &slots, &mask);
        let mut next = logits.select(1, p - 1).argmax(-1, false);
        let lengths: Vec<i64> = prompts.iter().map(|x| x.len() as i64).collect();
        let lengths = Tensor::from_slice(&lengths).to_device(device);
        let mut out = vec![Vec::new(); prompts.len()];
        for s in 0..steps as i64 {
            let tokens: Vec<i64> = Vec::try_from(&next).unwrap();
            for (row, t) in out.iter_mut().zip(tokens) {
                row.push(t);
            }
            if s + 1 == steps as i64 {
                break;
            }
            let slot = p + s;
            let _ = valid.narrow(1, slot, 1).fill_(1);
            let slots = Tensor::full([b, 1], slot, (Kind::Int64, device));
            let positions = (&lengths + s).unsqueeze(1);
            let mask = KvCache::attention_mask(&slots, &valid.narrow(1, 0, slot + 1));
            let logits = model.forward_step(&next.unsqueeze(1), &positions, &mut cache, &slots, &mask);
            next = logits.select(1, 0).argmax(-1, false);
        }
        out
    })
}

/// Largest |a - b| between a tensor [T,V] and nested expected values.
pub fn max_abs_diff(actual: &Tensor, expected: &[Vec<f64>]) -> f64 {
    let flat: Vec<f64> = expected.iter().flatten().copied().collect();
    let exp = Tensor::from_slice(&flat).view([expected.len() as i64, -1]);
    (actual.to_device(Device::Cpu).to_kind(Kind::Double) - exp)
        .abs()
        .max()
        .double_value(&[])
}
