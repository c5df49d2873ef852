//! Transparent decompression: gzip (multi-member, as WARC files are one member per record) and zstd.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// Compression detected from magic bytes (extension is only a hint; many crawls mislabel files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed bytes.
    None,
    /// gzip, possibly many concatenated members.
    Gzip,
    /// Zstandard frames.
    Zstd,
}

impl Compression {
    /// Identifies compression from the first bytes of a stream.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

const BUF_SIZE: usize = 1 << 17;

/// Wraps any reader in the decompressor its magic bytes call for.
pub fn decompress<R: Read + Send + 'static>(inner: R) -> io::Result<Box<dyn BufRead + Send>> {
    let mut buffered = BufReader::with_capacity(BUF_SIZE, inner);
    let head = buffered.fill_buf()?.to_vec();
    Ok(match Compression::sniff(&head) {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            BUF_SIZE,
            flate2::bufread::MultiGzDecoder::new(buffered),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            BUF_SIZE,
            zstd::stream::read::Decoder::with_buffer(buffered)?,
        )),
    })
}

/// Opens a file and decompresses it if needed.
pub fn open_decompressed(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    decompress(File::open(path)?)
}

/// The file name without compression suffixes (`a.warc.gz` → `a.warc`), lower-cased, for format detection.
pub fn strip_compression_suffix(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    for suffix in [".gz", ".zst", ".zstd", ".gzip"] {
        if let Some(stem) = lower.strip_suffix(suffix) {
            return stem.to_string();
        }
    }
    lower
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_concatenated_gzip_members_and_zstd() {
        let mut bytes = Vec::new();
        for part in ["hello ", "world"] {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(part.as_bytes()).unwrap();
            bytes.extend(enc.finish().unwrap());
        }
        let mut out = String::new();
        decompress(io::Cursor::new(bytes))
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello world");

        let z = zstd::encode_all(&b"zstd text"[..], 3).unwrap();
        let mut out = String::new();
        decompress(io::Cursor::new(z))
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "zstd text");
        assert_eq!(strip_compression_suffix("X.WARC.GZ"), "x.warc");
    }
}
