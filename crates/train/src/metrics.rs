//! Training metrics to JSON lines and TensorBoard event files, and the FLOP count behind MFU.
//!
//! The TensorBoard writer is self-contained: an event file is a sequence of TFRecords (`u64 length`,
//! masked CRC-32C of the length, payload, masked CRC-32C of the payload) whose payloads are `Event` protobufs;
//! scalars are `Event{wall_time, step, summary{value{tag, simple_value}}}`. Only those few fields are encoded.

use anyhow::{Context, Result};
use serde_json::{Map, Value};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Appends one JSON object per line (flushed per record so a killed run loses nothing logged).
pub struct JsonlWriter {
    out: BufWriter<File>,
}

impl JsonlWriter {
    /// Opens `path` for appending.
    pub fn append(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Self {
            out: BufWriter::new(file),
        })
    }

    /// Writes one record.
    pub fn write(&mut self, record: &Map<String, Value>) -> Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(())
    }
}

/// CRC-32C (Castagnoli), bytewise table.
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0x82F6_3B78 ^ (c >> 1) } else { c >> 1 };
            }
            *slot = c;
        }
        t
    });
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// TFRecord's masked CRC.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    (crc.rotate_right(15)).wrapping_add(0xA282_EAD8)
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn length_delimited(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    varint(((field << 3) | 2) as u64, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// Encodes `Event{wall_time=1, step=2, file_version=3 | summary=5}`.
fn encode_event(wall_time: f64, step: i64, file_version: Option<&str>, scalars: &[(&str, f32)]) -> Vec<u8> {
    let mut event = Vec::new();
    event.push(0x09); // field 1, fixed64
    event.extend_from_slice(&wall_time.to_le_bytes());
    event.push(0x10); // field 2, varint
    varint(step as u64, &mut event);
    if let Some(version) = file_version {
        length_delimited(3, version.as_bytes(), &mut event);
    }
    if !scalars.is_empty() {
        let mut summary = Vec::new();
        for (tag, value) in scalars {
            let mut v = Vec::new();
            length_delimited(1, tag.as_bytes(), &mut v); // Summary.Value.tag
            v.push(0x15); // field 2 (simple_value), fixed32
            v.extend_from_slice(&value.to_le_bytes());
            length_delimited(1, &v, &mut summary); // Summary.value
        }
        length_delimited(5, &summary, &mut event);
    }
    event
}

/// Writes scalar summaries to `events.out.tfevents.<time>.<host>` in a folder.
pub struct TensorBoardWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

impl TensorBoardWriter {
    /// Creates a new event file in `dir`.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let path = dir.join(format!(
            "events.out.tfevents.{}.{}.{}",
            now.as_secs(),
            host,
            std::process::id()
        ));
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut writer = Self {
            out: BufWriter::new(file),
            path,
        };
        writer.record(&encode_event(now.as_secs_f64(), 0, Some("brain.Event:2"), &[]))?;
        Ok(writer)
    }

    fn record(&mut self, payload: &[u8]) -> Result<()> {
        let len = (payload.len() as u64).to_le_bytes();
        self.out.write_all(&len)?;
        self.out.write_all(&masked_crc32c(&len).to_le_bytes())?;
        self.out.write_all(payload)?;
        self.out.write_all(&masked_crc32c(payload).to_le_bytes())?;
        self.out.flush()?;
        Ok(())
    }

    /// Writes scalars for `step`.
    pub fn scalars(&mut self, step: i64, scalars: &[(&str, f32)]) -> Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        self.record(&encode_event(now.as_secs_f64(), step, None, scalars))
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Training FLOPs per token of a decoder: `6·N` for the matmuls over `N` non-embedding parameters plus the
/// output projection, and `12·L·d·T` for attention scores and values (forward + backward, PaLM appendix B).
pub fn flops_per_token(non_embedding_params: f64, vocab: f64, hidden: f64, layers: f64, context: f64) -> f64 {
    6.0 * (non_embedding_params + vocab * hidden) + 12.0 * layers * hidden * context
}

/// Peak dense bf16 FLOP/s for known accelerators by (lower-cased) name.
pub fn known_peak_flops(device_name: &str) -> Option<f64> {
    let name = device_name.to_lowercase();
    [
        ("h200", 989e12),
        ("h100", 989e12),
        ("a100", 312e12),
        ("l40s", 362e12),
        ("a10g", 125e12),
        ("4090", 165e12),
    ]
    .iter()
    .find(|(k, _)| name.contains(k))
    .map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_vector() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    /// Reads back the records and checks framing and CRCs, then decodes the scalar we wrote.
    #[test]
    fn event_file_records_are_well_formed() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = TensorBoardWriter::create(dir.path()).unwrap();
        w.scalars(7, &[("train/loss", 2.5)]).unwrap();
        let bytes = std::fs::read(w.path()).unwrap();
        let mut at = 0;
        let mut payloads = Vec::new();
        while at < bytes.len() {
            let len_bytes = &bytes[at..at + 8];
            let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
            assert_eq!(
                u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()),
                masked_crc32c(len_bytes)
            );
            let payload = &bytes[at + 12..at + 12 + len];
            assert_eq!(
                u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap()),
                masked_crc32c(payload)
            );
            payloads.push(payload.to_vec());
            at += 16 + len;
        }
        assert_eq!(payloads.len(), 2);
        assert!(payloads[0].windows(13).any(|w| w == b"brain.Event:2"));
        let scalar = &payloads[1];
        assert_eq!(&scalar[9..11], &[0x10, 7], "step 7");
        assert!(scalar.windows(10).any(|w| w == b"train/loss"));
        assert!(scalar.windows(4).any(|w| w == 2.5f32.to_le_bytes()));
    }

    #[test]
    fn tensorboard_parses_our_file_when_installed() {
        let python = crate::testing::python();
        let dir = tempfile::tempdir().unwrap();
        let mut w = TensorBoardWriter::create(dir.path()).unwrap();
        for step in 1..=3 {
            w.scalars(step, &[("train/loss", step as f32 * 0.5)]).unwrap();
        }
        let script = "import sys\ntry:\n from tensorboard.backend.event_processing.event_accumulator import EventAccumulator\nexcept Exception:\n print('SKIP'); sys.exit(0)\nacc = EventAccumulator(sys.argv[1]); acc.Reload()\nprint([(e.step, e.value) for e in acc.Scalars('train/loss')])\n";
        let Some(out) = python.and_then(|p| {
            std::process::Command::new(p)
                .args(["-c", script])
                .arg(dir.path())
                .output()
                .ok()
        }) else {
            eprintln!("skipping: no project python");
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim() == "SKIP" {
            eprintln!("skipping: tensorboard is not installed in the venv");
            return;
        }
        assert_eq!(
            text.trim(),
            "[(1, 0.5), (2, 1.0), (3, 1.5)]",
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
