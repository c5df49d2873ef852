//! A streaming WARC record parser (WARC/1.0, 1.1, and the 0.18 of ClueWeb09), tolerant of real-world damage.
//!
//! Damage is reported, not fatal: garbage between records is skipped up to the next `WARC/` line, a record
//! without a usable `Content-Length` is skipped, and a truncated final record (a clipped gzip member) ends the
//! stream with one error. Every such event reaches the caller as an `Err` so that it can be counted.

use std::io::{self, BufRead, Read};

/// One WARC record: its headers (names lower-cased) and content block.
#[derive(Debug, Clone, Default)]
pub struct WarcRecord {
    /// Version line, e.g. `WARC/1.0`.
    pub version: String,
    /// Header fields, names lower-cased, in file order.
    pub headers: Vec<(String, String)>,
    /// Content block (`Content-Length` bytes).
    pub block: Vec<u8>,
    /// Ordinal of the record in its file, from 0.
    pub index: u64,
    /// The stream ended inside the block: `block` holds only the bytes that arrived.
    pub truncated: bool,
}

impl WarcRecord {
    /// First value of a header (name given in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// `WARC-Type`, lower-cased (`response`, `conversion`, ...).
    pub fn record_type(&self) -> String {
        self.header("warc-type").unwrap_or("").to_ascii_lowercase()
    }

    /// `WARC-Target-URI` without the angle brackets some writers (wget) put around it.
    pub fn target_uri(&self) -> Option<String> {
        let uri = self.header("warc-target-uri")?.trim();
        let uri = uri.strip_prefix('<').and_then(|u| u.strip_suffix('>')).unwrap_or(uri);
        (!uri.is_empty()).then(|| uri.to_string())
    }

    /// `WARC-Record-ID` without angle brackets.
    pub fn record_id(&self) -> Option<String> {
        let id = self.header("warc-record-id")?.trim();
        let id = id.strip_prefix('<').and_then(|u| u.strip_suffix('>')).unwrap_or(id);
        (!id.is_empty()).then(|| id.to_string())
    }
}

/// What went wrong with one record.
#[derive(Debug, thiserror::Error)]
pub enum WarcError {
    /// Bytes that are not a record where one should start; the parser resynchronised.
    #[error("record {index}: skipped {bytes} bytes of garbage before the next WARC/ line")]
    Garbage {
        /// Record ordinal at which the garbage was found.
        index: u64,
        /// Bytes skipped.
        bytes: u64,
    },
    /// Header block without a valid Content-Length.
    #[error("record {index}: missing or invalid Content-Length")]
    BadLength {
        /// Record ordinal.
        index: u64,
    },
    /// The record is larger than the configured cap and was skipped.
    #[error("record {index}: {length} bytes exceeds the {limit}-byte record limit")]
    TooLarge {
        /// Record ordinal.
        index: u64,
        /// Declared length.
        length: u64,
        /// Configured limit.
        limit: u64,
    },
    /// The stream ended inside a record (clipped file or gzip member).
    #[error("record {index}: truncated ({got} of {expected} content bytes)")]
    Truncated {
        /// Record ordinal.
        index: u64,
        /// Bytes present.
        got: u64,
        /// Bytes declared.
        expected: u64,
    },
    /// Reading or decompressing failed; the stream cannot continue.
    #[error("record {index}: {source}")]
    Io {
        /// Record ordinal.
        index: u64,
        /// The I/O or decompression error.
        #[source]
        source: io::Error,
    },
}

/// Streams [`WarcRecord`]s out of a (decompressed) reader.
pub struct WarcReader<R> {
    inner: R,
    index: u64,
    max_record_bytes: u64,
    finished: bool,
    line: Vec<u8>,
    /// A good record found right after garbage: the garbage error is returned first, then this.
    stashed: Option<WarcRecord>,
}

impl<R: BufRead> WarcReader<R> {
    /// Parser over `inner`, skipping records longer than `max_record_bytes`.
    pub fn new(inner: R, max_record_bytes: u64) -> Self {
        WarcReader {
            inner,
            index: 0,
            max_record_bytes,
            finished: false,
            line: Vec::new(),
            stashed: None,
        }
    }

    /// Reads one line (bounded, so binary junk cannot exhaust memory); `Ok(false)` at end of stream.
    fn read_line(&mut self) -> io::Result<bool> {
        self.line.clear();
        let n = (&mut self.inner).take(1 << 16).read_until(b'\n', &mut self.line)?;
        Ok(n > 0)
    }

    fn next_record(&mut self) -> Result<Option<WarcRecord>, WarcError> {
        let index = self.index;
        let io_err = |source| WarcError::Io { index, source };
        // Find the version line, skipping the blank lines between records.
        let mut skipped = 0u64;
        let version = loop {
            if !self.read_line().map_err(io_err)? {
                if skipped > 0 {
                    return Err(WarcError::Garbage { index, bytes: skipped });
                }
                return Ok(None);
            }
            let trimmed = trim_line(&self.line);
            if trimmed.starts_with(b"WARC/") {
                break String::from_utf8_lossy(trimmed).into_owned();
            }
            if !trimmed.is_empty() {
                skipped += self.line.len() as u64;
            }
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            if !self.read_line().map_err(io_err)? {
                return Err(WarcError::Truncated {
                    index,
                    got: 0,
                    expected: 0,
                });
            }
            let line = trim_line(&self.line);
            if line.is_empty() {
                break;
            }
            if matches!(line[0], b' ' | b'\t') {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(String::from_utf8_lossy(line).trim());
                }
                continue;
            }
            let text = String::from_utf8_lossy(line);
            if let Some((k, v)) = text.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        self.index += 1;
        let length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.trim().parse::<u64>().ok())
            .ok_or(WarcError::BadLength { index })?;
        if length > self.max_record_bytes {
            let got = io::copy(&mut (&mut self.inner).take(length), &mut io::sink()).map_err(io_err)?;
            if got < length {
                return Err(WarcError::Truncated {
                    index,
                    got,
                    expected: length,
                });
            }
            return Err(WarcError::TooLarge {
                index,
                length,
                limit: self.max_record_bytes,
            });
        }
        let mut block = Vec::with_capacity(length.min(1 << 24) as usize);
        let read = (&mut self.inner).take(length).read_to_end(&mut block);
        let truncated = match read {
            Ok(got) => (got as u64) < length,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof || !block.is_empty() => {
                tracing::debug!(index, error = %e, "stream error inside record");
                true
            }
            Err(e) => return Err(io_err(e)),
        };
        if truncated {
            // Nothing can follow a clipped record; keep its bytes for the caller (a clipped page is still text).
            self.finished = true;
            if block.is_empty() {
                return Err(WarcError::Truncated {
                    index,
                    got: 0,
                    expected: length,
                });
            }
        }
        let record = WarcRecord {
            version,
            headers,
            block,
            index,
            truncated,
        };
        if skipped > 0 {
            self.stashed = Some(record);
            return Err(WarcError::Garbage { index, bytes: skipped });
        }
        Ok(Some(record))
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

impl<R: BufRead> Iterator for WarcReader<R> {
    type Item = Result<WarcRecord, WarcError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(record) = self.stashed.take() {
            return Some(Ok(record));
        }
        if self.finished {
            return None;
        }
        match self.next_record() {
            Ok(Some(record)) if record.truncated => {
                let (index, got) = (record.index, record.block.len() as u64);
                let expected = record
                    .header("content-length")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(got);
                self.stashed = Some(record);
                Some(Err(WarcError::Truncated { index, got, expected }))
            }
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => {
                self.finished = true;
                None
            }
            Err(e) => {
                if matches!(e, WarcError::Truncated { .. } | WarcError::Io { .. }) {
                    self.finished = true;
                }
                Some(Err(e))
            }
        }
    }
}
