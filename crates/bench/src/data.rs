//! Loaders: benchmark files → [`Problem`]s with the task input rendered exactly as DeepSeek-Math's
//! `process_*` functions render it (options appended to multiple-choice questions, gold answers normalised).
//!
//! A malformed record is reported (file, line, reason), counted and skipped; it never aborts the load, because
//! one bad line in a user's file should not cost a whole evaluation.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::registry::{BenchmarkSpec, RecordFormat};

/// One benchmark problem, ready for prompting and scoring.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Stable identifier: the record's own id where it has one, else `line-<n>`.
    pub id: String,
    /// The task input as the prompt sets expect it (question plus rendered options for multiple choice).
    pub question: String,
    /// Normalised gold answer: a number, a LaTeX expression, choice letters (`"B"`, `"ACD"`), or blanks joined by
    /// `;` for multi-blank questions.
    pub gold: String,
    /// 1-based line of the record in its file.
    pub line: usize,
}

/// A record that could not be turned into a [`Problem`].
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedRecord {
    /// File the record came from.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// Why it was skipped.
    pub reason: String,
}

impl std::fmt::Display for SkippedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

/// The result of loading one benchmark file.
#[derive(Debug, Clone)]
pub struct LoadedBenchmark {
    /// Problems in file order.
    pub problems: Vec<Problem>,
    /// Malformed records (already logged as warnings).
    pub skipped: Vec<SkippedRecord>,
}

/// Loads a benchmark file in `spec`'s record format. Errors only when the file cannot be read at all.
pub fn load(spec: &BenchmarkSpec, path: &Path) -> Result<LoadedBenchmark> {
    let file =
        File::open(path).with_context(|| format!("cannot open {} benchmark file {}", spec.name, path.display()))?;
    let tsv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let mut problems = Vec::new();
    let mut skipped = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line_no = index + 1;
        let line = line.with_context(|| format!("{}:{line_no}: read error", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = if tsv {
            parse_tsv(&line, line_no)
        } else {
            parse_json_record(spec.format, &line, line_no)
        };
        match parsed {
            Ok(problem) => problems.push(problem),
            Err(reason) => {
                let record = SkippedRecord {
                    file: path.to_path_buf(),
                    line: line_no,
                    reason,
                };
                tracing::warn!("skipping malformed record {record}");
                skipped.push(record);
            }
        }
    }
    if !skipped.is_empty() {
        tracing::warn!(
            "{}: {} malformed record(s) skipped, {} loaded",
            path.display(),
            skipped.len(),
            problems.len()
        );
    }
    Ok(LoadedBenchmark { problems, skipped })
}

fn parse_tsv(line: &str, line_no: usize) -> Result<Problem, String> {
    let (question, answer) = line.rsplit_once('\t').ok_or("expected `question<TAB>answer`")?;
    let gold = answer.trim().replace(',', "");
    if question.trim().is_empty() || gold.is_empty() {
        return Err("empty question or answer".into());
    }
    Ok(Problem {
        id: format!("line-{line_no}"),
        question: question.trim().to_string(),
        gold,
        line: line_no,
    })
}

fn parse_json_record(format: RecordFormat, line: &str, line_no: usize) -> Result<Problem, String> {
    let value: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        // Python's json module writes float NaN/Infinity as bare tokens (MMLU-STEM has a few `NaN` options).
        Err(e) => python_float_tokens(line)
            .and_then(|fixed| serde_json::from_str(&fixed).ok())
            .ok_or_else(|| format!("invalid JSON: {e}"))?,
    };
    let obj = value.as_object().ok_or("record is not a JSON object")?;
    let field = |name: &str| -> Result<&str, String> {
        obj.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("missing string field `{name}`"))
    };
    let id = match obj.get("id").or_else(|| obj.get("unique_id")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => format!("line-{line_no}"),
    };
    let (question, gold) = match format {
        RecordFormat::Gsm8k => {
            let answer = field("answer")?;
            let (_, last) = answer.rsplit_once("####").ok_or("answer has no `#### N` line")?;
            (field("question")?.to_string(), last.trim().replace(',', ""))
        }
        RecordFormat::MathSolution => {
            let solution = field("solution")?;
            let gold = seekmath_verify::extract::last_boxed(solution).ok_or("solution has no \\boxed{} answer")?;
            (field("problem")?.to_string(), gold)
        }
        RecordFormat::MathAnswer => (field("problem")?.to_string(), field("answer")?.to_string()),
        RecordFormat::Cmath => (
            field("question")?.trim().to_string(),
            field("golden")?.trim().replace(',', ""),
        ),
        RecordFormat::Mgsm => {
            let question = match obj.get("messages").and_then(Value::as_array) {
                Some(messages) => messages
                    .iter()
                    .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                    .and_then(|m| m.get("content").and_then(Value::as_str))
                    .ok_or("messages has no user turn")?,
                None => field("question")?,
            };
            let gold = match obj.get("answer") {
                Some(Value::Number(n)) => n.to_string(),
                _ => field("answer")?.to_string(),
            };
            (question.trim().to_string(), gold.trim().replace(',', ""))
        }
        RecordFormat::GaokaoCloze => {
            let blanks: Vec<String> = field("answer")?.trim().split(';').map(strip_dollars).collect();
            (field("question")?.trim().to_string(), blanks.join(";"))
        }
        RecordFormat::GaokaoQa => {
            let options = string_list(obj.get("options"))?;
            let question = format!(
                "{}\n从以下选项中选择:    {}",
                field("question")?.trim().trim_end_matches('\\'),
                options.iter().map(|o| o.trim()).collect::<Vec<_>>().join(" ")
            );
            (question, choice_letters(field("label")?)?)
        }
        RecordFormat::MmluStem => {
            let options = string_list(obj.get("options"))?;
            let rendered: Vec<String> = options
                .iter()
                .zip('A'..='Z')
                .map(|(o, l)| format!("({l}) {}", o.trim()))
                .collect();
            let question = format!(
                "{}\nWhat of the following is the right choice? Explain your answer.\n{}",
                field("question")?.trim(),
                rendered.join(", ")
            );
            (question, choice_letters(field("answer")?)?)
        }
        RecordFormat::Ocw => (
            field("problem")?.trim().to_string(),
            field("answer")?.trim().to_string(),
        ),
        RecordFormat::Sat => {
            let question = format!(
                "{}\nWhat of the following is the right choice? Explain your answer.\n{}",
                field("question")?.trim(),
                render_sat_options(field("options")?)?
            );
            (question, choice_letters(field("Answer")?)?)
        }
    };
    if question.trim().is_empty() {
        return Err("empty question".into());
    }
    if gold.trim().is_empty() {
        return Err("empty gold answer".into());
    }
    Ok(Problem {
        id,
        question,
        gold,
        line: line_no,
    })
}

/// Quotes the non-standard tokens `NaN`, `Infinity`, `-Infinity` outside string literals as Python's `str(float)`
/// renders them; `None` when there are none.
fn python_float_tokens(line: &str) -> Option<String> {
    let mut out = String::with_capacity(line.len() + 16);
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    let mut i = 0;
    while i < line.len() {
        let rest = &line[i..];
        let c = rest.chars().next()?;
        if in_string {
            in_string = c != '"' || escaped;
            escaped = c == '\\' && !escaped;
        } else if c == '"' {
            in_string = true;
        } else if let Some((token, text)) = [("-Infinity", "\"-inf\""), ("Infinity", "\"inf\""), ("NaN", "\"nan\"")]
            .iter()
            .find(|(t, _)| rest.starts_with(t))
        {
            out.push_str(text);
            i += token.len();
            changed = true;
            continue;
        }
        out.push(c);
        i += c.len_utf8();
    }
    changed.then_some(out)
}

fn string_list(value: Option<&Value>) -> Result<Vec<String>, String> {
    let items = value.and_then(Value::as_array).ok_or("missing list field `options`")?;
    items
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err("`options` holds a non-string item".to_string()),
        })
        .collect()
}

/// `"A) x B) y"` → `"(A) x (B) y"`, the form SAT's few-shot exemplars use.
fn render_sat_options(options: &str) -> Result<String, String> {
    let options = options.trim();
    if !options.starts_with('A') {
        return Err("SAT options must start with `A)`".into());
    }
    let mut rendered = format!("({options}");
    for letter in ['B', 'C', 'D', 'E', 'F', 'G'] {
        rendered = rendered.replace(&format!(" {letter}) "), &format!(" ({letter}) "));
    }
    Ok(rendered)
}

/// Normalises a choice label: `"A B D"` / `"ad"` → `"ABD"`; rejects anything but letters A–J.
pub fn choice_letters(label: &str) -> Result<String, String> {
    let mut letters: Vec<char> = label
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ',')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if letters.is_empty() || letters.iter().any(|c| !('A'..='J').contains(c)) {
        return Err(format!("invalid choice label {label:?}"));
    }
    letters.sort_unstable();
    letters.dedup();
    Ok(letters.into_iter().collect())
}

fn strip_dollars(blank: &str) -> String {
    let blank = blank.trim();
    blank
        .strip_prefix('$')
        .and_then(|b| b.strip_suffix('$'))
        .unwrap_or(blank)
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;

    fn load_str(name: &str, text: &str, ext: &str) -> LoadedBenchmark {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("data.{ext}"));
        std::fs::write(&path, text).unwrap();
        load(find(name).unwrap(), &path).unwrap()
    }

    #[test]
    fn gsm8k_gold_is_last_line_without_commas() {
        let got = load_str(
            "gsm8k",
            "{\"question\":\"q\",\"answer\":\"x <<1+1=2>>\\n#### 1,234\"}\n",
            "jsonl",
        );
        assert_eq!(got.problems[0].gold, "1234");
        assert_eq!(got.problems[0].id, "line-1");
    }

    #[test]
    fn malformed_records_are_reported_with_line_and_skipped() {
        let text = "{\"question\":\"q\",\"answer\":\"#### 3\"}\nnot json\n\n{\"question\":\"q\"}\n{\"question\":\"q2\",\"answer\":\"#### 4\"}\n";
        let got = load_str("gsm8k", text, "jsonl");
        assert_eq!(got.problems.len(), 2);
        assert_eq!(got.skipped.iter().map(|s| s.line).collect::<Vec<_>>(), vec![2, 4]);
        assert!(got.skipped[0].reason.contains("invalid JSON"));
        assert!(got.skipped[1].to_string().contains("data.jsonl:4"));
    }

    #[test]
    fn multiple_choice_renders_options_like_deepseek() {
        let got = load_str(
            "mmlu_stem",
            r#"{"question":"Q?","options":["0","4"," 2","6"],"answer":"B","id":3}"#,
            "jsonl",
        );
        assert_eq!(
            got.problems[0].question,
            "Q?\nWhat of the following is the right choice? Explain your answer.\n(A) 0, (B) 4, (C) 2, (D) 6"
        );
        assert_eq!(got.problems[0].id, "3");
        let sat = load_str(
            "sat",
            r#"{"id":"0","question":"Q","options":"A) $1$ B) 2 C) 3 D) 4","Answer":"A"}"#,
            "jsonl",
        );
        assert!(sat.problems[0].question.ends_with("(A) $1$ (B) 2 (C) 3 (D) 4"));
        let qa = load_str(
            "gaokao_mathqa",
            r#"{"question":"设 ($\\quad$)\\\\\n","options":["(A)1","(B)2"],"label":"A B","answer":null}"#,
            "jsonl",
        );
        assert_eq!(qa.problems[0].question, "设 ($\\quad$)\n从以下选项中选择:    (A)1 (B)2");
        assert_eq!(qa.problems[0].gold, "AB");
    }

    #[test]
    fn cloze_blanks_and_tsv() {
        let got = load_str("gaokao_mathcloze", r#"{"question":"q","answer":"$5$;$10$"}"#, "jsonl");
        assert_eq!(got.problems[0].gold, "5;10");
        let tsv = load_str("mgsm_zh", "问题一\t1,000\nbroken line\n", "tsv");
        assert_eq!(tsv.problems[0].gold, "1000");
        assert_eq!(tsv.skipped.len(), 1);
    }

    #[test]
    fn python_nan_tokens_are_read_as_strings() {
        let got = load_str(
            "mmlu_stem",
            r#"{"question":"NaN?","options":[NaN,"a","b","c"],"answer":"A","id":1}"#,
            "jsonl",
        );
        assert!(
            got.problems[0].question.ends_with("(A) nan, (B) a, (C) b, (D) c"),
            "{}",
            got.problems[0].question
        );
        assert_eq!(got.problems[0].question.matches("NaN").count(), 1);
    }

    #[test]
    fn choice_letters_normalise() {
        assert_eq!(choice_letters("a d").unwrap(), "AD");
        assert_eq!(choice_letters("DCA").unwrap(), "ACD");
        assert!(choice_letters("7").is_err());
    }
}
