//! Sharded, crash-safe stage outputs.
//!
//! Every file a stage produces is written to a temporary name and renamed into place, so after a `kill -9` a file
//! either exists complete or not at all. A stage records completion in a manifest that carries a fingerprint of
//! its configuration; on resume, finished stages and finished shards are skipped, and because every stage is
//! deterministic, redoing an unfinished shard produces the same bytes the interrupted run would have.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut w = AtomicWriter::create(path)?;
    w.write_all(bytes)?;
    w.commit()
}

/// A buffered file that appears at its final path only on [`AtomicWriter::commit`].
pub struct AtomicWriter {
    tmp: PathBuf,
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
}

impl AtomicWriter {
    /// Starts writing `path` (parent directories are created).
    pub fn create(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let file = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        Ok(Self {
            tmp,
            path: path.to_path_buf(),
            file: std::io::BufWriter::with_capacity(1 << 20, file),
        })
    }

    /// Flushes and renames into place.
    pub fn commit(self) -> Result<()> {
        let file = self
            .file
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("flushing {}", self.tmp.display()))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).with_context(|| format!("renaming into {}", self.path.display()))
    }
}

impl Write for AtomicWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Name of shard `i`'s file with the given suffix, e.g. `shard-00003.jsonl`.
pub fn shard_name(i: usize, suffix: &str) -> String {
    format!("shard-{i:05}.{suffix}")
}

/// Completion record of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Stage name.
    pub stage: String,
    /// Fingerprint of everything the stage's output depends on.
    pub fingerprint: String,
    /// Output files, relative to the stage directory, with their sizes.
    pub outputs: Vec<(String, u64)>,
}

impl Manifest {
    /// Path of a stage's manifest.
    pub fn path(stage_dir: &Path) -> PathBuf {
        stage_dir.join("manifest.json")
    }

    /// Whether the stage in `stage_dir` finished with this fingerprint (and its outputs are all present).
    pub fn is_complete(stage_dir: &Path, fingerprint: &str) -> bool {
        let Ok(bytes) = std::fs::read(Self::path(stage_dir)) else {
            return false;
        };
        let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) else {
            return false;
        };
        m.fingerprint == fingerprint
            && m.outputs
                .iter()
                .all(|(f, size)| std::fs::metadata(stage_dir.join(f)).is_ok_and(|md| md.len() == *size))
    }

    /// Marks a stage complete, listing `outputs` (relative to `stage_dir`).
    pub fn write(stage_dir: &Path, stage: &str, fingerprint: &str, outputs: &[String]) -> Result<()> {
        let mut listed = Vec::new();
        for f in outputs {
            let size = std::fs::metadata(stage_dir.join(f))
                .with_context(|| format!("stat {}/{f}", stage_dir.display()))?
                .len();
            listed.push((f.clone(), size));
        }
        let m = Manifest {
            stage: stage.to_string(),
            fingerprint: fingerprint.to_string(),
            outputs: listed,
        };
        write_atomic(&Self::path(stage_dir), &serde_json::to_vec_pretty(&m)?)
    }
}

/// A stable fingerprint of serialisable values (xxh3 of their JSON), for manifests.
pub fn fingerprint<T: Serialize + ?Sized>(value: &T) -> String {
    let json = serde_json::to_vec(value).expect("fingerprinted values serialise");
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&json))
}

/// Removes leftover temporary files of interrupted writes in `dir` (not recursive).
pub fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        if name.to_str().is_some_and(|n| n.starts_with('.') && n.contains(".tmp-")) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_and_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stage").join(shard_name(3, "jsonl"));
        let mut w = AtomicWriter::create(&p).unwrap();
        w.write_all(b"partial").unwrap();
        assert!(!p.exists(), "nothing visible before commit");
        w.commit().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"partial");
        let stage = dir.path().join("stage");
        assert!(!Manifest::is_complete(&stage, "f1"));
        Manifest::write(&stage, "s", "f1", &["shard-00003.jsonl".into()]).unwrap();
        assert!(Manifest::is_complete(&stage, "f1"));
        assert!(!Manifest::is_complete(&stage, "f2"));
        std::fs::write(&p, b"x").unwrap();
        assert!(
            !Manifest::is_complete(&stage, "f1"),
            "a changed output invalidates the stage"
        );
    }
}
