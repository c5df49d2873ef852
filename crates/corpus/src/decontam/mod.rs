//! Benchmark decontamination, as DeepSeekMath §2.1 does it.
//!
//! A text segment (a line of the page) is removed when it takes part in a 10-gram that also occurs in a benchmark
//! question or answer; benchmark questions too short for a 10-gram (3–9 tokens) are matched exactly against whole
//! lines. Matching runs on a normalisation that ignores case, spacing and line wrapping but keeps numbers and
//! operators ([`tokens`]), and a formula guard keeps n-grams made mostly of notation out of the index, so pages that
//! merely use `a^2+b^2=c^2` are not touched.

pub mod benchmarks;
pub mod index;
pub mod tokens;

pub use benchmarks::{benchmark_files, load_benchmark, Benchmark, BenchmarkItem};
pub use index::{DecontamConfig, DecontamIndex, Match, Source, MAX_NGRAM};

use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A document after decontamination.
#[derive(Debug, Clone, PartialEq)]
pub struct Cleaned {
    /// Text with contaminated lines removed (the original when nothing matched).
    pub text: String,
    /// Matches found (empty when the document is clean).
    pub matches: Vec<Match>,
    /// Lines removed.
    pub removed_segments: usize,
    /// Bytes removed.
    pub removed_bytes: usize,
}

/// Removes every line that overlaps a match.
pub fn clean_text(index: &DecontamIndex, text: &str) -> Cleaned {
    let matches = index.find_matches(text);
    if matches.is_empty() {
        return Cleaned {
            text: text.to_string(),
            matches,
            removed_segments: 0,
            removed_bytes: 0,
        };
    }
    let mut spans: Vec<(usize, usize)> = matches.iter().map(|m| (m.start, m.end)).collect();
    spans.sort_unstable();
    let mut kept = String::with_capacity(text.len());
    let (mut removed_segments, mut removed_bytes) = (0, 0);
    let mut line_start = 0;
    let mut span_idx = 0;
    for line in text.split_inclusive('\n') {
        let line_end = line_start + line.len();
        while span_idx < spans.len() && spans[span_idx].1 <= line_start {
            span_idx += 1;
        }
        let hit = spans[span_idx..]
            .iter()
            .take_while(|s| s.0 < line_end)
            .any(|s| s.1 > line_start);
        if hit {
            removed_segments += 1;
            removed_bytes += line.len();
        } else {
            kept.push_str(line);
        }
        line_start = line_end;
    }
    Cleaned {
        text: kept,
        matches,
        removed_segments,
        removed_bytes,
    }
}

/// A removed span, for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Document id.
    pub doc_id: String,
    /// Benchmark item id.
    pub item_id: String,
    /// The matching text in the document (first 300 bytes).
    pub matched: String,
    /// Whether it was a short-question exact match.
    pub short_question: bool,
}

/// Per-benchmark decontamination counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkCounts {
    /// Documents with at least one match against this benchmark.
    pub documents_hit: usize,
    /// Matches (n-gram windows and short-question lines).
    pub matches: usize,
    /// Distinct benchmark items matched somewhere.
    pub items_hit: usize,
    /// Examples of what was removed.
    pub examples: Vec<Example>,
}

/// Decontamination report, mergeable across shards (merge in shard order for deterministic examples).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecontamReport {
    /// Documents scanned.
    pub documents: usize,
    /// Documents with at least one removed line.
    pub documents_hit: usize,
    /// Documents left empty (dropped).
    pub documents_emptied: usize,
    /// Bytes scanned.
    pub bytes_scanned: usize,
    /// Lines removed.
    pub segments_removed: usize,
    /// Bytes removed.
    pub bytes_removed: usize,
    /// Counts per benchmark name.
    pub per_benchmark: BTreeMap<String, BenchmarkCounts>,
    /// `benchmark\titem` keys of matched items (for `items_hit`; kept sorted so merges stay deterministic).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched_items: Vec<String>,
}

impl DecontamReport {
    /// Records one document's outcome.
    pub fn record(&mut self, index: &DecontamIndex, doc_id: &str, original: &str, cleaned: &Cleaned) {
        self.documents += 1;
        self.bytes_scanned += original.len();
        if cleaned.matches.is_empty() {
            return;
        }
        self.documents_hit += 1;
        self.documents_emptied += cleaned.text.trim().is_empty() as usize;
        self.segments_removed += cleaned.removed_segments;
        self.bytes_removed += cleaned.removed_bytes;
        let max_examples = index.config().max_examples;
        let mut benches_hit = std::collections::BTreeSet::new();
        for m in &cleaned.matches {
            let bench = &index.benchmarks()[m.source.benchmark as usize];
            let item_id = &bench.item_ids[m.source.item as usize];
            let counts = self.per_benchmark.entry(bench.name.clone()).or_default();
            counts.matches += 1;
            if benches_hit.insert(m.source.benchmark) {
                counts.documents_hit += 1;
                if counts.examples.len() < max_examples {
                    let mut end = m.end.min(m.start + 300);
                    while !original.is_char_boundary(end) {
                        end -= 1;
                    }
                    counts.examples.push(Example {
                        doc_id: doc_id.to_string(),
                        item_id: item_id.clone(),
                        matched: original[m.start..end].trim().to_string(),
                        short_question: m.short,
                    });
                }
            }
            let key = format!("{}\t{}", bench.name, item_id);
            if let Err(pos) = self.matched_items.binary_search(&key) {
                self.matched_items.insert(pos, key);
            }
        }
        self.refresh_items_hit();
    }

    /// Adds another shard's report (examples are appended up to `max_examples`).
    pub fn merge(&mut self, other: &DecontamReport, max_examples: usize) {
        self.documents += other.documents;
        self.documents_hit += other.documents_hit;
        self.documents_emptied += other.documents_emptied;
        self.bytes_scanned += other.bytes_scanned;
        self.segments_removed += other.segments_removed;
        self.bytes_removed += other.bytes_removed;
        for (name, c) in &other.per_benchmark {
            let mine = self.per_benchmark.entry(name.clone()).or_default();
            mine.documents_hit += c.documents_hit;
            mine.matches += c.matches;
            let room = max_examples.saturating_sub(mine.examples.len());
            mine.examples.extend(c.examples.iter().take(room).cloned());
        }
        let mut all: Vec<String> = self.matched_items.iter().chain(&other.matched_items).cloned().collect();
        all.sort();
        all.dedup();
        self.matched_items = all;
        self.refresh_items_hit();
    }

    fn refresh_items_hit(&mut self) {
        for c in self.per_benchmark.values_mut() {
            c.items_hit = 0;
        }
        for key in &self.matched_items {
            let name = key.split('\t').next().unwrap_or("");
            if let Some(c) = self.per_benchmark.get_mut(name) {
                c.items_hit += 1;
            }
        }
    }
}

/// Loads every benchmark file under `paths` (files or directories, see [`benchmark_files`]) and builds the index.
pub fn build_index(paths: &[PathBuf], config: DecontamConfig) -> Result<DecontamIndex> {
    let mut benches = Vec::new();
    for p in paths {
        for f in benchmark_files(p)? {
            let b = load_benchmark(&f)?;
            if b.skipped > 0 {
                tracing::warn!(file = %f.display(), skipped = b.skipped, "benchmark records skipped");
            }
            benches.push(b);
        }
    }
    let index = DecontamIndex::build(&benches, config);
    tracing::info!(
        benchmarks = benches.len(),
        ngrams = index.benchmarks().iter().map(|b| b.ngrams).sum::<usize>(),
        "decontamination index built"
    );
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(questions: &[&str], answers: &[&str]) -> Benchmark {
        Benchmark {
            name: "toy/test".into(),
            path: PathBuf::from("toy/test.jsonl"),
            items: questions
                .iter()
                .zip(answers)
                .enumerate()
                .map(|(i, (q, a))| BenchmarkItem {
                    id: format!("q{i}"),
                    questions: vec![q.to_string()],
                    answers: vec![a.to_string()],
                })
                .collect(),
            skipped: 0,
        }
    }

    const Q: &str = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?";

    #[test]
    fn verbatim_rewrapped_and_recased_copies_are_removed() {
        let index = DecontamIndex::build(&[bench(&[Q], &["72"])], DecontamConfig::default());
        let rewrapped = "Intro line.\nNATALIA sold clips to 48 of her\nfriends   in April, and then she sold half\nas many.\nUnrelated closing line.\n";
        let c = clean_text(&index, rewrapped);
        assert_eq!(c.text, "Intro line.\nUnrelated closing line.\n");
        assert_eq!(c.removed_segments, 3);
        let verbatim = format!("Homework help\n{Q}\nThanks!");
        assert_eq!(clean_text(&index, &verbatim).text, "Homework help\nThanks!");
    }

    #[test]
    fn changed_numbers_are_not_contamination() {
        let index = DecontamIndex::build(&[bench(&[Q], &["72"])], DecontamConfig::default());
        let other =
            "Natalia sold clips to 37 of her friends in April, and then she sold a third as many clips in June.";
        assert!(clean_text(&index, other).matches.is_empty());
    }

    #[test]
    fn common_formulas_in_solutions_do_not_remove_pages() {
        let solution = "By the Pythagorean theorem $a^2 + b^2 = c^2$, so $c^2 = 3^2 + 4^2 = 25$ and $c = 5$.";
        let index = DecontamIndex::build(
            &[bench(&["What is the hypotenuse of a 3-4-5 triangle?"], &[solution])],
            DecontamConfig::default(),
        );
        let page = "The theorem says\n$$a^2 + b^2 = c^2$$\nfor a right triangle; e.g. $c^2 = 3^2 + 4^2 = 25$.";
        assert!(
            clean_text(&index, page).matches.is_empty(),
            "formula-only n-grams must not match"
        );
    }

    #[test]
    fn short_questions_match_whole_lines_only_with_enough_words() {
        let index = DecontamIndex::build(
            &[bench(
                &["What is the smallest prime number?", "Compute $\\dbinom{8}{4}$."],
                &["2", "70"],
            )],
            DecontamConfig::default(),
        );
        assert_eq!(index.benchmarks()[0].short_questions, 1);
        assert_eq!(index.benchmarks()[0].short_guarded, 1);
        let page = "Quiz\nwhat is the smallest  prime number\nCompute $\\dbinom{8}{4}$.\nA prime number is what is the smallest prime number ever.";
        let c = clean_text(&index, page);
        assert_eq!(
            c.text,
            "Quiz\nCompute $\\dbinom{8}{4}$.\nA prime number is what is the smallest prime number ever."
        );
    }

    #[test]
    fn report_counts_per_benchmark_and_merges() {
        let index = DecontamIndex::build(&[bench(&[Q], &["72"])], DecontamConfig::default());
        let mut r = DecontamReport::default();
        for (id, t) in [("a", Q), ("b", "clean text"), ("c", Q)] {
            let c = clean_text(&index, t);
            r.record(&index, id, t, &c);
        }
        assert_eq!((r.documents, r.documents_hit, r.documents_emptied), (3, 2, 2));
        let counts = &r.per_benchmark["toy/test"];
        assert_eq!(
            (counts.documents_hit, counts.items_hit, counts.examples.len()),
            (2, 1, 2)
        );
        let mut merged = r.clone();
        merged.merge(&r, 3);
        assert_eq!(merged.per_benchmark["toy/test"].examples.len(), 3);
        assert_eq!(merged.per_benchmark["toy/test"].items_hit, 1);
        assert_eq!(merged.documents, 6);
    }
}
