//! Readers on the real WARC/WET/JSONL/Parquet files in shared data, including the damaged ones.

mod common;

use seekmath_corpus::readers::{self, ReadStats};

fn read_all(path: &std::path::Path) -> (Vec<seekmath_corpus::document::Document>, ReadStats, Vec<String>) {
    let mut reader = readers::open(path).unwrap();
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for item in reader.by_ref() {
        match item {
            Ok(d) => docs.push(d),
            Err(e) => errors.push(e.to_string()),
        }
    }
    (docs, reader.stats().clone(), errors)
}

#[test]
fn every_shared_warc_reads_without_crashing() {
    let Some(data) = common::shared_data() else { return };
    let dir = data.join("web/warc");
    let mut total = ReadStats::default();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let (docs, stats, errors) = read_all(&path);
        eprintln!(
            "{}: {} docs, {:?}, errors {:?}",
            path.display(),
            docs.len(),
            stats,
            errors
        );
        assert_eq!(stats.error_count() as usize, errors.len());
        for doc in &docs {
            assert!(!doc.id.is_empty());
            assert!(doc.html.is_some() || !doc.text.is_empty());
        }
        total.merge(&stats);
    }
    assert!(total.documents >= 60, "{total:?}");
}

#[test]
fn clipped_warc_reports_one_truncated_record() {
    let Some(data) = common::shared_data() else { return };
    let (docs, stats, errors) = read_all(&data.join("web/warc/clipped.warc.gz"));
    assert_eq!(stats.errors.get("truncated"), Some(&1), "{stats:?} {errors:?}");
    assert!(
        errors[0].contains("clipped.warc.gz"),
        "error names the file: {}",
        errors[0]
    );
    // The clipped record's surviving bytes are still delivered, flagged as truncated.
    assert_eq!(docs.len(), 1, "{stats:?}");
    assert_eq!(docs[0].metadata.get("truncated"), Some(&serde_json::Value::Bool(true)));
    assert!(docs[0].html.as_deref().unwrap().len() > 50_000);
}

#[test]
fn clueweb_quirks_are_decoded() {
    let Some(data) = common::shared_data() else { return };
    let (docs, stats, errors) = read_all(&data.join("web/warc/clueweb-quirk.warc.gz"));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(stats.records, 30);
    assert!(docs.len() >= 25, "{stats:?}");
    // EUC-JP pages with a false `Content-Encoding: gzip` header decode to Japanese text.
    let japanese = docs
        .iter()
        .filter(|d| {
            d.html
                .as_deref()
                .unwrap()
                .chars()
                .any(|c| ('\u{3040}'..='\u{30ff}').contains(&c))
        })
        .count();
    assert!(japanese >= docs.len() / 2, "{japanese} of {}", docs.len());
    assert!(docs
        .iter()
        .all(|d| d.url.as_deref().is_some_and(|u| u.starts_with("http"))));
}

#[test]
fn wget_angle_bracket_uris_and_wet_conversion() {
    let Some(data) = common::shared_data() else { return };
    let (docs, _, _) = read_all(&data.join("web/warc/dolma-sample-0000.warc.gz"));
    assert!(!docs.is_empty());
    assert!(docs.iter().all(|d| !d.url.as_deref().unwrap().starts_with('<')));
    let (wet, stats, _) = read_all(&data.join("web/warc/whirlwind.warc.wet.gz"));
    assert_eq!(wet.len(), 1, "{stats:?}");
    assert!(wet[0].text.contains("Escopete"));
    assert_eq!(wet[0].domain.as_deref(), Some("an.wikipedia.org"));
}

#[test]
fn jsonl_gz_and_parquet() {
    let Some(data) = common::shared_data() else { return };
    let (docs, stats, errors) = read_all(&data.join("mathtext/mathlm/merged_data/test/math-instruct.jsonl.gz"));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(docs.len(), 100, "{stats:?}");
    assert!(docs.iter().all(|d| !d.text.is_empty()));
    let options = readers::ReaderOptions {
        text_fields: vec!["extra_info.question".into(), "extra_info.answer".into()],
        ..Default::default()
    };
    let mut reader = readers::open_with(data.join("rl/gsm8k/test.parquet"), &options).unwrap();
    let docs: Vec<_> = reader.by_ref().map(|d| d.unwrap()).collect();
    let stats = reader.stats().clone();
    assert!(docs[0].text.starts_with("Janet"), "{}", docs[0].text);
    assert!(docs[0].text.contains("#### 18"));
    assert_eq!(stats.records, docs.len() as u64);
    assert!(docs.len() > 1000, "{}", docs.len());
}

#[test]
fn bad_jsonl_lines_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.jsonl.zst");
    let body = "{\"text\": \"a\"}\nnot json\n[1]\n{\"nothing\": 1}\n\n{\"text\": \"b\", \"id\": \"B\"}\n";
    std::fs::write(&path, zstd::encode_all(body.as_bytes(), 3).unwrap()).unwrap();
    let (docs, stats, errors) = read_all(&path);
    assert_eq!(docs.iter().map(|d| d.text.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(docs[1].id, "B");
    assert_eq!(stats.errors.get("bad json"), Some(&2));
    assert_eq!(stats.errors.get("no text"), Some(&1));
    assert!(errors[0].contains("line 2"), "{}", errors[0]);
}

#[test]
fn warc_garbage_and_bad_length_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.warc");
    let html = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html><p>hi</p></html>";
    let rec = |uri: &str| {
        format!(
            "WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: {uri}\r\nContent-Length: {}\r\n\r\n{html}\r\n\r\n",
            html.len()
        )
    };
    let body = format!(
        "{}junk line\r\n{}WARC/1.0\r\nWARC-Type: response\r\nContent-Length: x\r\n\r\n{}",
        rec("http://a.org/"),
        rec("http://b.org/"),
        rec("http://c.org/")
    );
    std::fs::write(&path, body).unwrap();
    let (docs, stats, _) = read_all(&path);
    assert_eq!(stats.errors.get("garbage"), Some(&1), "{stats:?}");
    assert_eq!(stats.errors.get("bad length"), Some(&1), "{stats:?}");
    let urls: Vec<_> = docs.iter().map(|d| d.url.clone().unwrap()).collect();
    assert_eq!(urls, ["http://a.org/", "http://b.org/", "http://c.org/"]);
}
