//! Helpers shared by the end-to-end CLI tests: where the workspace, the shared data pack and the small real model
//! are, and running the `seekmath` binary. Each test binary uses only some of them.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `rel` inside the shared data pack (`""` for the pack itself) (env `SEEKMATH_SHARED_DATA`, else `shared/data` beside the repository), or
/// None with a printed reason when it is not there (the test then skips).
pub fn shared(rel: &str) -> Option<PathBuf> {
    let root = std::env::var_os("SEEKMATH_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/data"));
    let path = root.join(rel);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("SKIP: {} not found (set SEEKMATH_SHARED_DATA)", path.display());
        None
    }
}

/// SmolLM2-135M-Instruct (GGUF) as unpacked by `scripts/setup.sh`, or None with a printed reason.
pub fn smollm2() -> Option<PathBuf> {
    let path = workspace().join(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("SKIP: {} missing (run scripts/setup.sh)", path.display());
        None
    }
}

/// Runs `seekmath ARGS...` and returns its output; panics with its stderr when it fails.
pub fn seekmath<S: AsRef<OsStr> + std::fmt::Debug>(args: &[S]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_seekmath"))
        .args(args)
        .output()
        .expect("run seekmath");
    assert!(
        out.status.success(),
        "seekmath {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `seekmath ARGS...` (which must succeed): its standard output.
pub fn seekmath_stdout<S: AsRef<OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    String::from_utf8(seekmath(args).stdout).expect("stdout is UTF-8")
}

/// The records of a JSONL file.
pub fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}
