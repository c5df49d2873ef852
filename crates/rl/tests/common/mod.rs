//! Helpers shared by the rl integration tests: where the tiny model and the project venv are, and tensor
//! comparison. Each test binary uses a subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// The tiny llama2.c model `stories260K` from the shared data pack, or None (with a printed reason) when absent.
pub fn tiny_model() -> Option<PathBuf> {
    let root = std::env::var_os("SEEKMATH_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let p = root.join("models/tiny/stories260K.bin");
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("SKIP: {} not found (set SEEKMATH_SHARED_DATA)", p.display());
        None
    }
}

/// The project venv's Python (`SEEKMATH_PYTHON` overrides), or None (with a printed reason) when absent.
pub fn python() -> Option<PathBuf> {
    let p = std::env::var_os("SEEKMATH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIP: no project venv python (set SEEKMATH_PYTHON or run scripts/setup.sh)");
        None
    }
}

/// Largest absolute elementwise difference, computed in f64.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}
