//! Scoring JSONL files of gold/pred records (`seekmath verify --batch`).
//!
//! Each input line is a JSON object with string fields `gold` and `pred` (other fields are kept). The output line is
//! the same object with `equal`, `pred_extracted` and `gold_extracted` added. Both fields may be raw text (a model
//! completion, a MATH solution, a GSM8K answer): the answer is extracted first. Malformed lines are reported with
//! their line number, counted and skipped; they never abort the run.

use crate::extract::{extract_answer, primary_answer, AnswerKind};
use crate::Verifier;
use std::io::{BufRead, Write};

/// How answers are pulled out of the `gold`/`pred` texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Extraction {
    /// Boxed, `####` or "The answer is" when present, else the whole (trimmed) text: right for both raw completions
    /// and already-extracted answers.
    #[default]
    Auto,
    /// [`extract_answer`] with the given kind (falls back to the last number, or a choice letter).
    Kind(AnswerKind),
}

/// Extracts an answer according to `how`.
pub fn extract_with(text: &str, how: Extraction) -> Option<String> {
    match how {
        Extraction::Auto => primary_answer(text).or_else(|| {
            let t = text.trim();
            (!t.is_empty()).then(|| t.to_string())
        }),
        Extraction::Kind(kind) => extract_answer(text, kind),
    }
}

/// Counts of one batch run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Records scored.
    pub scored: usize,
    /// Records judged equal.
    pub equal: usize,
    /// Malformed lines skipped.
    pub skipped: usize,
}

/// Scores every line of `input`, writing annotated JSONL to `output`; `source` names the input in messages.
pub fn score_jsonl(
    input: impl BufRead,
    mut output: impl Write,
    verifier: &Verifier,
    how: Extraction,
    source: &str,
) -> std::io::Result<BatchStats> {
    let mut stats = BatchStats::default();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let mut record: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(&line) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => {
                eprintln!("{source}:{}: not a JSON object, skipped", i + 1);
                stats.skipped += 1;
                continue;
            }
            Err(e) => {
                eprintln!("{source}:{}: malformed JSON ({e}), skipped", i + 1);
                stats.skipped += 1;
                continue;
            }
        };
        let field = |name: &str| {
            record.get(name).and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        let (Some(gold), Some(pred)) = (field("gold"), field("pred")) else {
            eprintln!("{source}:{}: needs string fields \"gold\" and \"pred\", skipped", i + 1);
            stats.skipped += 1;
            continue;
        };
        let gold_extracted = extract_with(&gold, Extraction::Auto);
        let pred_extracted = extract_with(&pred, how);
        let equal = match (&pred_extracted, &gold_extracted) {
            (Some(p), Some(g)) => verifier.is_equivalent(p, g),
            _ => false,
        };
        stats.scored += 1;
        stats.equal += usize::from(equal);
        record.insert("equal".into(), equal.into());
        record.insert("pred_extracted".into(), pred_extracted.into());
        record.insert("gold_extracted".into(), gold_extracted.into());
        serde_json::to_writer(&mut output, &record)?;
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mode;

    #[test]
    fn scores_and_skips() {
        let input = concat!(
            "{\"id\": 1, \"gold\": \"The answer is $\\\\frac12$\", \"pred\": \"so \\\\boxed{0.5}\"}\n",
            "not json\n",
            "{\"gold\": \"#### 1,000\", \"pred\": \"1000\"}\n",
            "{\"gold\": 3, \"pred\": \"4\"}\n",
            "{\"pred\": \"4\"}\n",
        );
        let mut out = Vec::new();
        let stats = score_jsonl(
            input.as_bytes(),
            &mut out,
            &Verifier::new(Mode::Strict),
            Extraction::Auto,
            "t",
        )
        .unwrap();
        assert_eq!(
            stats,
            BatchStats {
                scored: 3,
                equal: 2,
                skipped: 2
            }
        );
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["id"], 1);
        assert_eq!(lines[0]["equal"], true);
        assert_eq!(lines[0]["pred_extracted"], "0.5");
        assert_eq!(lines[0]["gold_extracted"], "\\frac12");
        assert_eq!(lines[1]["gold_extracted"], "1,000");
        assert_eq!(lines[2]["equal"], false);
    }
}
