//! Streaming readers for crawl data: WARC (response/resource records with HTML), WET (conversion records with
//! text), JSONL, Parquet and plain text lines, each optionally gzip- or zstd-compressed.
//!
//! Every reader yields [`Document`]s one at a time with bounded memory, and never stops on a bad record: the
//! record is reported as an `Err` (naming file and record), counted in [`ReadStats`], and reading continues.
//! Only a truncated stream ends a file early, after one error. Records that are fine but not documents (WARC
//! requests, images, redirects) are counted as skipped with a reason rather than reported as errors.
//!
//! ```no_run
//! let mut reader = seekmath_corpus::readers::open("crawl.warc.gz").unwrap();
//! for doc in reader.by_ref().flatten() {
//!     println!("{} {}", doc.id, doc.html.as_deref().unwrap_or(&doc.text).len());
//! }
//! println!("{:?}", reader.stats());
//! ```

pub mod compress;
pub mod http;
pub mod json;
pub mod warc;

use crate::document::{domain_of, Document};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Input formats the readers understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// WARC, WET or WAT (records; `response`/`resource` HTML and `conversion` text become documents).
    Warc,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet, one document per row.
    Parquet,
    /// Plain text, one document per line.
    Lines,
}

impl Format {
    /// Detects the format from the file name, then from the first decompressed bytes.
    pub fn detect(path: &Path) -> anyhow::Result<Format> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let stem = compress::strip_compression_suffix(&name);
        let by_name = [
            (".warc", Format::Warc),
            (".wet", Format::Warc),
            (".wat", Format::Warc),
            (".arc", Format::Warc),
            (".jsonl", Format::Jsonl),
            (".ndjson", Format::Jsonl),
            (".json", Format::Jsonl),
            (".parquet", Format::Parquet),
            (".txt", Format::Lines),
        ];
        if let Some((_, f)) = by_name.iter().find(|(ext, _)| stem.ends_with(ext)) {
            return Ok(*f);
        }
        let mut head = [0u8; 4];
        if File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .is_ok()
            && &head == b"PAR1"
        {
            return Ok(Format::Parquet);
        }
        let mut reader = compress::open_decompressed(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let buf = reader.fill_buf().unwrap_or(&[]);
        let first = buf.iter().copied().find(|b| !b.is_ascii_whitespace());
        Ok(if buf.starts_with(b"WARC/") {
            Format::Warc
        } else if first == Some(b'{') {
            Format::Jsonl
        } else {
            Format::Lines
        })
    }
}

/// Options shared by all readers.
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    /// Force a format instead of detecting it.
    pub format: Option<Format>,
    /// JSONL/Parquet fields whose values form the text (joined by blank lines); empty = `text`, `html`, or a known
    /// question/answer pair.
    pub text_fields: Vec<String>,
    /// Skip WARC records larger than this many bytes.
    pub max_record_bytes: u64,
    /// Keep WARC responses with these HTTP status codes only (empty = any).
    pub keep_status: Vec<u16>,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            format: None,
            text_fields: Vec::new(),
            max_record_bytes: 64 << 20,
            keep_status: vec![200],
        }
    }
}

/// A bad record (or a damaged stream), naming the file and record.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{path}: {record}: {reason}")]
pub struct ReadError {
    /// File being read.
    pub path: PathBuf,
    /// Which record (`record 12`, `line 40`, `row 3`).
    pub record: String,
    /// What was wrong.
    pub reason: String,
    /// Short category used for counting (`bad json`, `truncated`, ...).
    pub kind: &'static str,
}

/// Counters a reader keeps while streaming.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReadStats {
    /// Records (WARC records, lines, rows) seen.
    pub records: u64,
    /// Documents produced.
    pub documents: u64,
    /// Well-formed records that are not documents, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Malformed records, by kind.
    pub errors: BTreeMap<String, u64>,
}

impl ReadStats {
    /// Adds another reader's counters to these.
    pub fn merge(&mut self, other: &ReadStats) {
        self.records += other.records;
        self.documents += other.documents;
        for (k, v) in &other.skipped {
            *self.skipped.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }

    /// Total malformed records.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn skip(&mut self, reason: impl Into<String>) {
        *self.skipped.entry(reason.into()).or_default() += 1;
    }
}

/// What a format-specific source produces per step.
enum Step {
    Doc(Document),
    Skip(String),
    Error(ReadError),
}

trait Source: Send {
    /// Next step, `None` at end of input.
    fn step(&mut self) -> Option<Step>;
}

/// A streaming iterator of documents from one file; see the module docs.
pub struct DocumentReader {
    source: Box<dyn Source>,
    stats: ReadStats,
    path: PathBuf,
}

impl DocumentReader {
    /// Counters so far (complete once the iterator is exhausted).
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Iterator for DocumentReader {
    type Item = Result<Document, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.source.step()? {
                Step::Doc(doc) => {
                    self.stats.records += 1;
                    self.stats.documents += 1;
                    return Some(Ok(doc));
                }
                Step::Skip(reason) => {
                    self.stats.records += 1;
                    self.stats.skip(reason);
                }
                Step::Error(e) => {
                    *self.stats.errors.entry(e.kind.to_string()).or_default() += 1;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Opens a file with default options; see [`open_with`].
pub fn open(path: impl AsRef<Path>) -> anyhow::Result<DocumentReader> {
    open_with(path, &ReaderOptions::default())
}

/// Opens a file for streaming, detecting format and compression.
pub fn open_with(path: impl AsRef<Path>, options: &ReaderOptions) -> anyhow::Result<DocumentReader> {
    let path = path.as_ref().to_path_buf();
    let format = match options.format {
        Some(f) => f,
        None => Format::detect(&path)?,
    };
    let open_stream = || -> anyhow::Result<Box<dyn BufRead + Send>> {
        compress::open_decompressed(&path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))
    };
    let source: Box<dyn Source> = match format {
        Format::Warc => Box::new(WarcSource {
            records: warc::WarcReader::new(open_stream()?, options.max_record_bytes),
            path: path.clone(),
            keep_status: options.keep_status.clone(),
        }),
        Format::Jsonl => Box::new(LineSource::new(
            open_stream()?,
            path.clone(),
            options.text_fields.clone(),
            true,
        )),
        Format::Lines => Box::new(LineSource::new(open_stream()?, path.clone(), Vec::new(), false)),
        Format::Parquet => Box::new(ParquetSource::open(&path, options.text_fields.clone())?),
    };
    Ok(DocumentReader {
        source,
        stats: ReadStats::default(),
        path,
    })
}

/// Files assigned to shard `index` of `count` (round-robin over the sorted list), so that machines or processes
/// can split an input set without coordination.
pub fn shard_paths(paths: &[PathBuf], index: usize, count: usize) -> Vec<PathBuf> {
    assert!(count > 0 && index < count, "shard {index} of {count}");
    let mut sorted = paths.to_vec();
    sorted.sort();
    sorted
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % count == index)
        .map(|(_, p)| p)
        .collect()
}

struct WarcSource {
    records: warc::WarcReader<Box<dyn BufRead + Send>>,
    path: PathBuf,
    keep_status: Vec<u16>,
}

impl WarcSource {
    fn error(&self, record: String, reason: String, kind: &'static str) -> Step {
        Step::Error(ReadError {
            path: self.path.clone(),
            record,
            reason,
            kind,
        })
    }

    fn convert(&self, record: warc::WarcRecord) -> Step {
        let kind = record.record_type();
        let url = record.target_uri();
        let mut doc = Document {
            id: record
                .record_id()
                .unwrap_or_else(|| format!("{}:{}", self.path.display(), record.index)),
            domain: url.as_deref().and_then(domain_of),
            url,
            ..Default::default()
        };
        if let Some(date) = record.header("warc-date") {
            doc.metadata.insert("warc_date".into(), date.into());
        }
        if record.truncated {
            doc.metadata.insert("truncated".into(), true.into());
        }
        match kind.as_str() {
            "conversion" => {
                if let Some(lang) = record.header("warc-identified-content-language") {
                    doc.metadata.insert("cc_lang".into(), lang.into());
                }
                doc.text = http::decode_html(&record.block, Some("utf-8"));
                Step::Doc(doc)
            }
            "response" | "resource" => {
                let (status, content_type, body) = match http::parse_response(&record.block) {
                    Some(resp) => {
                        let body = self.decode_body(&resp);
                        (Some(resp.status), resp.header("content-type").map(str::to_string), body)
                    }
                    None if kind == "resource" => (
                        None,
                        record.header("content-type").map(str::to_string),
                        record.block.clone(),
                    ),
                    None => {
                        return self.error(
                            format!("record {}", record.index),
                            "response block is not HTTP".into(),
                            "bad http",
                        )
                    }
                };
                if let Some(status) = status {
                    if !self.keep_status.is_empty() && !self.keep_status.contains(&status) {
                        return Step::Skip(format!("http status {status}"));
                    }
                }
                let is_html = match content_type.as_deref() {
                    Some(ct) => {
                        let ct = ct.to_ascii_lowercase();
                        ct.contains("html") || (ct.starts_with("text/") && sniff_html(&body))
                    }
                    None => sniff_html(&body),
                };
                if !is_html {
                    let ct = content_type
                        .as_deref()
                        .unwrap_or("none")
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase();
                    return Step::Skip(format!("not html ({ct})"));
                }
                if let Some(ct) = &content_type {
                    doc.metadata.insert("content_type".into(), ct.clone().into());
                }
                let charset = content_type.as_deref().and_then(http::charset_from_content_type);
                doc.html = Some(http::decode_html(&body, charset));
                Step::Doc(doc)
            }
            other => Step::Skip(format!(
                "warc-type {}",
                if other.is_empty() { "missing" } else { other }
            )),
        }
    }

    fn decode_body(&self, resp: &http::HttpResponse<'_>) -> Vec<u8> {
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let mut body = if chunked {
            http::dechunk(resp.body).unwrap_or_else(|| resp.body.to_vec())
        } else {
            resp.body.to_vec()
        };
        if let Some(decoded) = http::decode_content_encoding(&body, self.records_limit()) {
            body = decoded;
        }
        body
    }

    fn records_limit(&self) -> usize {
        256 << 20
    }
}

fn sniff_html(body: &[u8]) -> bool {
    let head = &body[..body.len().min(1024)];
    let lower = String::from_utf8_lossy(head).to_ascii_lowercase();
    lower.contains("<html") || lower.contains("<!doctype html") || lower.contains("<body") || lower.contains("<head")
}

impl Source for WarcSource {
    fn step(&mut self) -> Option<Step> {
        Some(match self.records.next()? {
            Ok(record) => self.convert(record),
            Err(e) => {
                let kind = match e {
                    warc::WarcError::Garbage { .. } => "garbage",
                    warc::WarcError::BadLength { .. } => "bad length",
                    warc::WarcError::TooLarge { .. } => "too large",
                    warc::WarcError::Truncated { .. } => "truncated",
                    warc::WarcError::Io { .. } => "io",
                };
                Step::Error(ReadError {
                    path: self.path.clone(),
                    record: "warc".into(),
                    reason: e.to_string(),
                    kind,
                })
            }
        })
    }
}

struct LineSource {
    reader: Box<dyn BufRead + Send>,
    path: PathBuf,
    text_fields: Vec<String>,
    json: bool,
    line_no: u64,
    buf: Vec<u8>,
    done: bool,
}

impl LineSource {
    fn new(reader: Box<dyn BufRead + Send>, path: PathBuf, text_fields: Vec<String>, json: bool) -> Self {
        LineSource {
            reader,
            path,
            text_fields,
            json,
            line_no: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    fn error(&self, reason: String, kind: &'static str) -> Step {
        Step::Error(ReadError {
            path: self.path.clone(),
            record: format!("line {}", self.line_no),
            reason,
            kind,
        })
    }
}

impl Source for LineSource {
    fn step(&mut self) -> Option<Step> {
        loop {
            if self.done {
                return None;
            }
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    self.line_no += 1;
                    return Some(self.error(format!("stream error: {e}"), "truncated"));
                }
            }
            self.line_no += 1;
            let line = match std::str::from_utf8(&self.buf) {
                Ok(s) => s.trim_end_matches(['\n', '\r']),
                Err(e) => return Some(self.error(format!("invalid UTF-8: {e}"), "bad utf8")),
            };
            if line.trim().is_empty() {
                continue;
            }
            let fallback_id = format!(
                "{}:{}",
                self.path.file_name().unwrap_or_default().to_string_lossy(),
                self.line_no
            );
            if !self.json {
                return Some(Step::Doc(Document {
                    id: fallback_id,
                    text: line.to_string(),
                    ..Default::default()
                }));
            }
            let obj = match serde_json::from_str::<serde_json::Value>(line) {
                Ok(serde_json::Value::Object(obj)) => obj,
                Ok(_) => return Some(self.error("not a JSON object".into(), "bad json")),
                Err(e) => return Some(self.error(format!("invalid JSON: {e}"), "bad json")),
            };
            return Some(match json::document_from_object(obj, &self.text_fields, fallback_id) {
                Ok(doc) => Step::Doc(doc),
                Err(reason) => self.error(reason, "no text"),
            });
        }
    }
}

struct ParquetSource {
    rows: parquet::record::reader::RowIter<'static>,
    path: PathBuf,
    text_fields: Vec<String>,
    row: u64,
}

impl ParquetSource {
    fn open(path: &Path, text_fields: Vec<String>) -> anyhow::Result<Self> {
        let file = File::open(path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        let reader = parquet::file::reader::SerializedFileReader::new(file)
            .map_err(|e| anyhow::anyhow!("{}: not a readable Parquet file: {e}", path.display()))?;
        Ok(ParquetSource {
            rows: reader.into_iter(),
            path: path.to_path_buf(),
            text_fields,
            row: 0,
        })
    }
}

// The row iterator holds only owned, thread-safe state (file handle, decoded pages).
unsafe impl Send for ParquetSource {}

impl Source for ParquetSource {
    fn step(&mut self) -> Option<Step> {
        let row = self.rows.next()?;
        self.row += 1;
        let record = format!("row {}", self.row);
        let error = |reason: String, kind| {
            Step::Error(ReadError {
                path: self.path.clone(),
                record: record.clone(),
                reason,
                kind,
            })
        };
        Some(match row {
            Err(e) => error(format!("{e}"), "bad row"),
            Ok(row) => match row.to_json_value() {
                serde_json::Value::Object(obj) => {
                    let fallback_id = format!(
                        "{}:{}",
                        self.path.file_name().unwrap_or_default().to_string_lossy(),
                        self.row
                    );
                    match json::document_from_object(obj, &self.text_fields, fallback_id) {
                        Ok(doc) => Step::Doc(doc),
                        Err(reason) => error(reason, "no text"),
                    }
                }
                _ => error("row is not a record".into(), "bad row"),
            },
        })
    }
}
