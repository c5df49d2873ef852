//! Loading benchmark problems (questions and answers) from JSONL files.

use anyhow::{Context, Result};
use serde_json::Value;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Fields read as question text (every one present is used, in this order).
pub const QUESTION_FIELDS: &[&str] = &[
    "question",
    "problem",
    "Question",
    "input",
    "informal_statement",
    "Body",
    "body",
    "passage",
];
/// Fields read as answer/solution text.
pub const ANSWER_FIELDS: &[&str] = &[
    "answer",
    "solution",
    "cot",
    "rationale",
    "output",
    "target",
    "Answer",
    "informal_proof",
    "golden",
    "options",
];

/// One benchmark problem.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchmarkItem {
    /// Identifier for reports: the record's `id`/`unique_id`/`idx` field or its line number.
    pub id: String,
    /// Question texts (the problem statement and any context passage).
    pub questions: Vec<String>,
    /// Answer and solution texts.
    pub answers: Vec<String>,
}

/// A named set of benchmark problems.
#[derive(Debug, Clone, PartialEq)]
pub struct Benchmark {
    /// Name for reports: `<parent dir>/<file stem>`, e.g. `gsm8k/test` or `decontam/gsm8k`.
    pub name: String,
    /// The file it came from.
    pub path: PathBuf,
    /// Its problems.
    pub items: Vec<BenchmarkItem>,
    /// Records that were not JSON objects or had no question/answer text (reported, skipped).
    pub skipped: usize,
}

/// Lists benchmark files under `path`: the file itself, or every `*.jsonl` below a directory except training splits
/// (`train*`) — decontaminating against a benchmark's own training split would discard legitimate training data.
pub fn benchmark_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading benchmark dir {}", dir.display()))? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "jsonl")
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("train"))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .filter_map(|v| match v {
                    Value::Object(o) => o.get("content").and_then(text_of),
                    other => text_of(other),
                })
                .collect();
            (!parts.is_empty()).then(|| parts.join("\n"))
        }
        _ => None,
    }
}

/// Parses one JSONL benchmark file.
pub fn load_benchmark(path: &Path) -> Result<Benchmark> {
    let file = std::fs::File::open(path).with_context(|| format!("opening benchmark {}", path.display()))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("benchmark");
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|s| s.to_str())
        .unwrap_or("");
    let name = if parent.is_empty() {
        stem.to_string()
    } else {
        format!("{parent}/{stem}")
    };
    let mut items = Vec::new();
    let mut skipped = 0;
    for (line_no, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {} line {}", path.display(), line_no + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(Value::Object(record)) = serde_json::from_str::<Value>(&line) else {
            tracing::warn!(file = %path.display(), line = line_no + 1, "skipping benchmark record that is not a JSON object");
            skipped += 1;
            continue;
        };
        let collect = |fields: &[&str]| -> Vec<String> {
            fields.iter().filter_map(|f| record.get(*f).and_then(text_of)).collect()
        };
        let mut questions = collect(QUESTION_FIELDS);
        if questions.is_empty() {
            // Chat-format benchmarks (e.g. MGSM in DeepSeek's format) keep the problem in `messages`.
            questions.extend(record.get("messages").and_then(text_of));
        }
        let answers = collect(ANSWER_FIELDS);
        if questions.is_empty() && answers.is_empty() {
            skipped += 1;
            continue;
        }
        let id = ["id", "unique_id", "idx", "ID", "problem_name"]
            .iter()
            .find_map(|f| record.get(*f).and_then(text_of))
            .unwrap_or_else(|| format!("line{}", line_no + 1));
        items.push(BenchmarkItem { id, questions, answers });
    }
    Ok(Benchmark {
        name,
        path: path.to_path_buf(),
        items,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_skips_bad_records() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gsm").join("test.jsonl");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(
            &p,
            "{\"question\":\"Q1\",\"answer\":\"A1\"}\nnot json\n{\"problem\":\"P\",\"options\":[\"a\",\"b\"],\"idx\":7}\n{\"x\":1}\n",
        )
        .unwrap();
        let b = load_benchmark(&p).unwrap();
        assert_eq!(b.name, "gsm/test");
        assert_eq!(b.items.len(), 2);
        assert_eq!(b.skipped, 2);
        assert_eq!(b.items[1].id, "7");
        assert_eq!(b.items[1].answers, vec!["a\nb".to_string()]);
        std::fs::write(dir.path().join("gsm").join("train.jsonl"), "{}").unwrap();
        assert_eq!(benchmark_files(dir.path()).unwrap(), vec![p]);
    }
}
