//! Token shards: the pre-tokenised form of a text corpus that the pre-training loader streams from.
//!
//! One file (`*.smtok`) holds many documents as little-endian `u32` token ids with an offset table, so that a
//! document is one positioned read and the loader needs no tokenizer at training time:
//!
//! ```text
//! magic "SMTOKv01" | u64 documents | u64 tokens | u64 offsets[documents + 1] | u32 tokens[tokens]
//! ```
//!
//! Each document ends with the tokenizer's end-of-sequence id (so packed sequences carry document boundaries).

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"SMTOKv01";
/// File extension of token shards.
pub const SHARD_EXTENSION: &str = "smtok";

/// Writes documents into a shard; the file appears under its final name only when [`ShardWriter::finish`] succeeds.
pub struct ShardWriter {
    path: PathBuf,
    offsets: Vec<u64>,
    tokens: Vec<u32>,
}

impl ShardWriter {
    /// Starts a shard that will be written to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            offsets: vec![0],
            tokens: Vec::new(),
        }
    }

    /// Appends one document (already ending with EOS if wanted).
    pub fn push(&mut self, document: &[u32]) {
        self.tokens.extend_from_slice(document);
        self.offsets.push(self.tokens.len() as u64);
    }

    /// Tokens written so far.
    pub fn num_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// Documents written so far.
    pub fn num_documents(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Writes the file atomically (temporary name, then rename).
    pub fn finish(self) -> Result<PathBuf> {
        let tmp = self.path.with_extension("smtok.tmp");
        let mut out = BufWriter::new(File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?);
        out.write_all(MAGIC)?;
        out.write_all(&((self.offsets.len() - 1) as u64).to_le_bytes())?;
        out.write_all(&(self.tokens.len() as u64).to_le_bytes())?;
        for o in &self.offsets {
            out.write_all(&o.to_le_bytes())?;
        }
        for t in &self.tokens {
            out.write_all(&t.to_le_bytes())?;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path).with_context(|| format!("renaming to {}", self.path.display()))?;
        Ok(self.path)
    }
}

/// A shard opened for random access: the offset table in memory, tokens read on demand.
#[derive(Debug)]
pub struct Shard {
    path: PathBuf,
    file: File,
    offsets: Vec<u64>,
    data_start: u64,
}

impl Shard {
    /// Opens and validates a shard.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path).with_context(|| format!("opening token shard {}", path.display()))?;
        let mut head = [0u8; 24];
        file.read_exact(&mut head)
            .with_context(|| format!("{}: truncated header", path.display()))?;
        if &head[..8] != MAGIC {
            bail!("{} is not a seekmath token shard (bad magic)", path.display());
        }
        let docs = u64::from_le_bytes(head[8..16].try_into().unwrap()) as usize;
        let tokens = u64::from_le_bytes(head[16..24].try_into().unwrap());
        let mut raw = vec![0u8; (docs + 1) * 8];
        file.read_exact(&mut raw)
            .with_context(|| format!("{}: truncated offset table", path.display()))?;
        let offsets: Vec<u64> = raw
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        if offsets[0] != 0 || offsets[docs] != tokens || offsets.windows(2).any(|w| w[0] > w[1]) {
            bail!("{}: corrupt offset table", path.display());
        }
        let data_start = 24 + raw.len() as u64;
        let expected = data_start + tokens * 4;
        let actual = file.metadata()?.len();
        if actual != expected {
            bail!("{}: size {actual} bytes, header implies {expected}", path.display());
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            offsets,
            data_start,
        })
    }

    /// Number of documents.
    pub fn num_documents(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Total tokens.
    pub fn num_tokens(&self) -> u64 {
        *self.offsets.last().unwrap()
    }

    /// Length of document `index` in tokens.
    pub fn document_len(&self, index: usize) -> usize {
        (self.offsets[index + 1] - self.offsets[index]) as usize
    }

    /// Tokens `range` of document `index`.
    pub fn read(&self, index: usize, start: usize, len: usize) -> Result<Vec<u32>> {
        let doc_len = self.document_len(index);
        if start + len > doc_len {
            bail!("{}: read past the end of document {index}", self.path.display());
        }
        let mut raw = vec![0u8; len * 4];
        let offset = self.data_start + (self.offsets[index] + start as u64) * 4;
        self.file
            .read_exact_at(&mut raw, offset)
            .with_context(|| format!("reading {}", self.path.display()))?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Expands files and folders into a sorted list of shard files (folders: every `*.smtok` inside, recursively).
pub fn expand_shard_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
                    let path = entry?.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_some_and(|e| e == SHARD_EXTENSION) {
                        out.push(path);
                    }
                }
            }
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            bail!("token shard path {} does not exist", p.display());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Counters from [`tokenize_files`].
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct TokenizeStats {
    /// Documents tokenised.
    pub documents: u64,
    /// Tokens written (including the EOS per document).
    pub tokens: u64,
    /// Records that could not be read (reported and skipped).
    pub bad_records: u64,
    /// Documents with empty text (skipped).
    pub empty: u64,
    /// Shards written.
    pub shards: Vec<PathBuf>,
}

/// Tokenises text documents (JSON lines with a `text` field) into shards of about `tokens_per_shard` tokens
/// named `<prefix>-00000.smtok` in `out_dir`. Each document becomes `encode(text) + [eos]`. Malformed lines are
/// logged with file and line, counted, and skipped.
pub fn tokenize_files(
    inputs: &[PathBuf],
    encode: &dyn Fn(&str) -> Result<Vec<u32>>,
    eos: u32,
    out_dir: &Path,
    prefix: &str,
    tokens_per_shard: usize,
) -> Result<TokenizeStats> {
    use std::io::BufRead;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut stats = TokenizeStats::default();
    let shard_path = |n: usize| out_dir.join(format!("{prefix}-{n:05}.{SHARD_EXTENSION}"));
    let mut writer = ShardWriter::new(shard_path(0));
    for input in inputs {
        let file = File::open(input).with_context(|| format!("opening {}", input.display()))?;
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("reading {}", input.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let text = match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(v) => match v.get("text").and_then(|t| t.as_str()) {
                    Some(t) => t.to_string(),
                    None => {
                        tracing::warn!(
                            "{}:{}: skipping record without a string 'text' field",
                            input.display(),
                            n + 1
                        );
                        stats.bad_records += 1;
                        continue;
                    }
                },
                Err(err) => {
                    tracing::warn!("{}:{}: skipping malformed JSON: {err}", input.display(), n + 1);
                    stats.bad_records += 1;
                    continue;
                }
            };
            if text.trim().is_empty() {
                stats.empty += 1;
                continue;
            }
            let mut ids = encode(&text).with_context(|| format!("{}:{}: tokenising", input.display(), n + 1))?;
            ids.push(eos);
            stats.documents += 1;
            stats.tokens += ids.len() as u64;
            writer.push(&ids);
            if writer.num_tokens() >= tokens_per_shard {
                let next = shard_path(stats.shards.len() + 1);
                stats
                    .shards
                    .push(std::mem::replace(&mut writer, ShardWriter::new(next)).finish()?);
            }
        }
    }
    if writer.num_documents() > 0 {
        stats.shards.push(writer.finish()?);
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.smtok");
        let mut w = ShardWriter::new(&path);
        w.push(&[1, 2, 3]);
        w.push(&[]);
        w.push(&[7, 8]);
        w.finish().unwrap();
        let s = Shard::open(&path).unwrap();
        assert_eq!((s.num_documents(), s.num_tokens()), (3, 5));
        assert_eq!(s.read(0, 1, 2).unwrap(), vec![2, 3]);
        assert_eq!(s.document_len(1), 0);
        assert_eq!(s.read(2, 0, 2).unwrap(), vec![7, 8]);
        assert!(s.read(2, 1, 2).is_err());
        // Truncation is caught at open, naming the file.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        let err = Shard::open(&path).unwrap_err().to_string();
        assert!(err.contains("a.smtok"), "{err}");
    }

    #[test]
    fn tokenize_jsonl_skips_bad_records_and_splits_shards() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("docs.jsonl");
        std::fs::write(
            &input,
            "{\"text\": \"ab c\"}\nnot json\n{\"text\": \"\"}\n{\"text\": \"def\"}\n",
        )
        .unwrap();
        // A byte-level "tokenizer" keeps the test independent of model files.
        let encode = |t: &str| -> Result<Vec<u32>> { Ok(t.bytes().map(u32::from).collect()) };
        let stats = tokenize_files(&[input], &encode, 0, &dir.path().join("out"), "docs", 4).unwrap();
        assert_eq!((stats.documents, stats.bad_records, stats.empty), (2, 1, 1));
        assert_eq!(stats.tokens, 5 + 4);
        assert_eq!(stats.shards.len(), 2, "the first document alone fills a 4-token shard");
        let shards = expand_shard_paths(&[dir.path().join("out")]).unwrap();
        assert_eq!(shards, stats.shards);
        let s = Shard::open(&shards[1]).unwrap();
        assert_eq!(s.read(0, 0, 4).unwrap(), vec![100, 101, 102, 0]);
    }
}
