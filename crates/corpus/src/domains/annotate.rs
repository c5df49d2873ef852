//! The human-annotation round trip: export path prefixes, import labels, turn labels into new seeds.

use super::stats::{DomainStat, PageRef};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::Path;

/// One row of the annotation file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefixRow {
    /// `domain/path/prefix`.
    pub prefix: String,
    /// Crawled pages under it.
    pub pages: usize,
    /// Pages collected this iteration.
    pub collected: usize,
    /// `collected / pages`.
    pub fraction: f64,
    /// Annotator's label: `math` marks the prefix math-related; anything else (or empty) does not.
    #[serde(default)]
    pub label: Option<String>,
    /// Sample URLs (normalised).
    pub samples: Vec<String>,
}

/// A prefix labelled math-related.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AnnotatedPrefix {
    /// `domain/path/prefix`, as exported.
    pub prefix: String,
}

impl AnnotatedPrefix {
    /// Whether a normalised URL lies under this prefix (whole path segments only: `/q` does not cover `/questions`).
    pub fn covers(&self, url: &str) -> bool {
        url.strip_prefix(self.prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
    }
}

const TSV_HEADER: &str = "prefix\tpages\tcollected\tfraction\tlabel\tsamples";

/// Writes the prefixes for annotation: TSV (spreadsheet-friendly; samples joined by ` | `) unless the path ends
/// in `.jsonl`. The `label` column is left empty for the annotator.
pub fn export_prefixes(path: &Path, prefixes: &[(DomainStat, Vec<String>)]) -> Result<()> {
    let rows: Vec<PrefixRow> = prefixes
        .iter()
        .map(|(s, samples)| PrefixRow {
            prefix: s.key.clone(),
            pages: s.pages,
            collected: s.collected,
            fraction: (s.fraction() * 1e4).round() / 1e4,
            label: None,
            samples: samples.clone(),
        })
        .collect();
    let mut out = Vec::new();
    if is_jsonl(path) {
        for r in &rows {
            serde_json::to_writer(&mut out, r)?;
            out.push(b'\n');
        }
    } else {
        writeln!(out, "{TSV_HEADER}")?;
        for r in &rows {
            let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
            let samples: Vec<String> = r.samples.iter().map(|s| clean(s)).collect();
            writeln!(
                out,
                "{}\t{}\t{}\t{:.4}\t\t{}",
                clean(&r.prefix),
                r.pages,
                r.collected,
                r.fraction,
                samples.join(" | ")
            )?;
        }
    }
    crate::pipeline::shards::write_atomic(path, &out)
        .with_context(|| format!("writing annotation file {}", path.display()))
}

fn is_jsonl(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "jsonl" || e == "json")
}

fn is_math_label(label: &str) -> bool {
    matches!(
        label.trim().to_ascii_lowercase().as_str(),
        "math" | "yes" | "y" | "1" | "true" | "math-related"
    )
}

/// Reads an annotated file (TSV with the exported header, or JSONL) and returns the prefixes labelled math, sorted.
/// Malformed lines are reported with file and line number and skipped; the count of skipped lines is returned.
pub fn import_annotations(path: &Path) -> Result<(Vec<AnnotatedPrefix>, usize)> {
    let file = std::fs::File::open(path).with_context(|| format!("opening annotation file {}", path.display()))?;
    let mut lines = std::io::BufReader::new(file).lines().enumerate();
    let mut out = Vec::new();
    let mut skipped = 0;
    let jsonl = is_jsonl(path);
    let (mut prefix_col, mut label_col) = (0, 4);
    if !jsonl {
        let Some((_, header)) = lines.next() else {
            return Ok((out, 0));
        };
        let header = header.with_context(|| format!("reading {}", path.display()))?;
        let cols: Vec<&str> = header.split('\t').map(str::trim).collect();
        match (
            cols.iter().position(|c| *c == "prefix"),
            cols.iter().position(|c| *c == "label"),
        ) {
            (Some(p), Some(l)) => (prefix_col, label_col) = (p, l),
            _ => bail!(
                "{}: header must name `prefix` and `label` columns, got {header:?}",
                path.display()
            ),
        }
    }
    for (line_no, line) in lines {
        let line = line.with_context(|| format!("reading {} line {}", path.display(), line_no + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = if jsonl {
            serde_json::from_str::<serde_json::Value>(&line).ok().and_then(|v| {
                let prefix = v.get("prefix")?.as_str()?.to_string();
                let label = v.get("label").and_then(|l| l.as_str()).unwrap_or("").to_string();
                Some((prefix, label))
            })
        } else {
            let cols: Vec<&str> = line.split('\t').collect();
            cols.get(prefix_col)
                .map(|p| (p.trim().to_string(), cols.get(label_col).unwrap_or(&"").to_string()))
        };
        match parsed {
            Some((prefix, label)) if !prefix.is_empty() => {
                if is_math_label(&label) {
                    out.push(AnnotatedPrefix {
                        prefix: prefix.trim_end_matches('/').to_string(),
                    });
                }
            }
            _ => {
                tracing::warn!(file = %path.display(), line = line_no + 1, "skipping malformed annotation line");
                skipped += 1;
            }
        }
    }
    out.sort();
    out.dedup();
    Ok((out, skipped))
}

/// Ids of pages under an annotated prefix that this iteration did not collect: next iteration's new seeds. Sorted.
pub fn seeds_under_prefixes(pages: &[PageRef], prefixes: &[AnnotatedPrefix]) -> Vec<String> {
    let mut ids: Vec<String> = pages
        .iter()
        .filter(|p| !p.collected && prefixes.iter().any(|a| a.covers(&p.url)))
        .map(|p| p.id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_import_round_trip_and_seeds() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![
            (
                DomainStat {
                    key: "m.org/questions".into(),
                    pages: 10,
                    collected: 2,
                },
                vec!["m.org/questions/1".into()],
            ),
            (
                DomainStat {
                    key: "m.org/blog".into(),
                    pages: 5,
                    collected: 0,
                },
                vec![],
            ),
        ];
        for name in ["a.tsv", "a.jsonl"] {
            let p = dir.path().join(name);
            export_prefixes(&p, &rows).unwrap();
            let (none, _) = import_annotations(&p).unwrap();
            assert!(none.is_empty(), "unlabelled export imports nothing");
            // The annotator labels the first row.
            let text = std::fs::read_to_string(&p).unwrap();
            let labelled = if name.ends_with("tsv") {
                text.replacen("0.2000\t\t", "0.2000\tmath\t", 1) + "broken line without tabs\n"
            } else {
                text.replacen("\"label\":null", "\"label\":\"math\"", 1) + "{not json\n"
            };
            std::fs::write(&p, labelled).unwrap();
            let (got, skipped) = import_annotations(&p).unwrap();
            assert_eq!(
                got,
                vec![AnnotatedPrefix {
                    prefix: "m.org/questions".into()
                }],
                "{name}"
            );
            assert_eq!(skipped, if name.ends_with("tsv") { 0 } else { 1 }, "{name}");
        }
        let pages = vec![
            PageRef::new("1", "https://m.org/questions/1", true).unwrap(),
            PageRef::new("2", "https://m.org/questions/2", false).unwrap(),
            PageRef::new("3", "https://m.org/questionsx/3", false).unwrap(),
            PageRef::new("4", "https://m.org/blog/4", false).unwrap(),
        ];
        let seeds = seeds_under_prefixes(
            &pages,
            &[AnnotatedPrefix {
                prefix: "m.org/questions".into(),
            }],
        );
        assert_eq!(seeds, vec!["2".to_string()]);
    }
}
