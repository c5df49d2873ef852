//! Any byte stream, plain or gzip-wrapped, must be read to the end without panicking, and every record that
//! comes out must be well-formed enough for document conversion.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seekmath_corpus::readers::{self, Format, ReaderOptions};
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("seekmath-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input.warc");
    // Half the inputs are fed as gzip members so the decompression path (and truncation) is exercised too.
    let bytes = if data.first().is_some_and(|b| b & 1 == 1) {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&data[1..]).unwrap();
        let mut gz = enc.finish().unwrap();
        let cut = data.get(1).map_or(0, |b| *b as usize % 8);
        gz.truncate(gz.len().saturating_sub(cut));
        gz
    } else {
        data.to_vec()
    };
    std::fs::write(&path, &bytes).unwrap();
    let options = ReaderOptions {
        format: Some(Format::Warc),
        max_record_bytes: 1 << 20,
        ..Default::default()
    };
    let mut reader = readers::open_with(&path, &options).unwrap();
    let mut n = 0u64;
    for item in reader.by_ref() {
        if let Ok(doc) = item {
            assert!(!doc.id.is_empty());
        }
        n += 1;
        assert!(n < 1 << 20, "reader does not terminate");
    }
    let stats = reader.stats();
    assert!(stats.documents <= stats.records + 1);
});
