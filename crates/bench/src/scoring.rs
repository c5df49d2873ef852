//! Answer extraction and scoring per answer kind, on top of `seekmath-verify`.
//!
//! The verifier decides equality of two single answers. This module adds what is benchmark-shaped: choice
//! questions with several correct letters (Gaokao-MathQA), fill-in questions with several blanks
//! (Gaokao-MathCloze), and program output as the answer of program-of-thought runs.

use seekmath_verify::extract::{self, AnswerKind};
use seekmath_verify::{Mode, Verifier};

use crate::data::choice_letters;

/// Extracts and compares answers of one kind.
#[derive(Debug, Clone)]
pub struct Scorer {
    verifier: Verifier,
    kind: AnswerKind,
}

impl Scorer {
    /// A scorer for `kind` with the verifier in `mode`.
    pub fn new(kind: AnswerKind, mode: Mode) -> Self {
        Self {
            verifier: Verifier::new(mode),
            kind,
        }
    }

    /// The answer kind.
    pub fn kind(&self) -> AnswerKind {
        self.kind
    }

    /// The final answer of a chain-of-thought completion, normalised for this kind; `None` when there is none.
    pub fn extract(&self, completion: &str) -> Option<String> {
        match self.kind {
            AnswerKind::Choice => extract::primary_answer(completion)
                .and_then(|a| parse_choice(&a))
                .or_else(|| extract::extract_answer(completion, AnswerKind::Choice)),
            AnswerKind::MultiBlank => multi_blank_answer(completion)
                .or_else(|| extract::extract_answer(completion, AnswerKind::MultiBlank))
                .map(|a| split_blanks(&a).join(";")),
            kind => extract::extract_answer(completion, kind),
        }
    }

    /// The answer of a program's output (its last non-empty line; a one-element list is unwrapped).
    pub fn extract_program_output(&self, stdout: &str) -> Option<String> {
        let line = stdout.lines().map(str::trim).rfind(|l| !l.is_empty())?;
        let line = match line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            Some(inner) if !inner.contains(',') && !inner.trim().is_empty() => inner.trim(),
            _ => line,
        };
        match self.kind {
            AnswerKind::Choice => parse_choice(line),
            _ => Some(line.to_string()),
        }
    }

    /// Is the extracted prediction right for the normalised gold answer?
    pub fn is_correct(&self, pred: &str, gold: &str) -> bool {
        match self.kind {
            AnswerKind::Choice => match (parse_choice(pred), parse_choice(gold)) {
                (Some(p), Some(g)) => p == g,
                _ => false,
            },
            AnswerKind::MultiBlank => {
                let (p, g) = (split_blanks(pred), split_blanks(gold));
                p.len() == g.len() && p.iter().zip(&g).all(|(p, g)| self.verifier.is_equivalent(p, g))
            }
            _ => self.verifier.is_equivalent(pred, gold),
        }
    }

    /// Whether two predictions count as the same answer when voting (same rule as scoring).
    pub fn same_answer(&self, a: &str, b: &str) -> bool {
        a == b || self.is_correct(a, b)
    }
}

/// Choice letters from `"(B)"`, `"B"`, `"A, D"`, `"AD"`; `None` when it is not a choice.
fn parse_choice(text: &str) -> Option<String> {
    if let Some(letter) = extract::choice_letter(text) {
        return Some(letter);
    }
    let cleaned: String = text
        .chars()
        .filter(|c| !matches!(c, '(' | ')' | ' ' | ',' | '、' | '，' | '和'))
        .collect();
    (cleaned.len() <= 6).then(|| choice_letters(&cleaned).ok()).flatten()
}

fn split_blanks(answer: &str) -> Vec<String> {
    answer
        .split([';', '；'])
        .map(|b| b.trim().trim_matches('$').trim().to_string())
        .filter(|b| !b.is_empty())
        .collect()
}

/// Blanks after the last `答案是` / "answer is": every `$..$` span of that line, or the line split at `;`.
fn multi_blank_answer(completion: &str) -> Option<String> {
    let phrases = ["答案是", "答案为", "answer is"];
    let lower = completion.to_ascii_lowercase();
    let (start, len) = phrases
        .iter()
        .filter_map(|p| lower.rfind(p).map(|i| (i, p.len())))
        .max_by_key(|x| x.0)?;
    let tail = completion[start + len..].trim_start_matches([' ', ':', '：']);
    let line = tail.lines().next()?.trim().trim_end_matches(['。', '.']);
    let spans: Vec<&str> = line
        .split('$')
        .skip(1)
        .step_by(2)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let blanks: Vec<String> = if spans.len() > 1 {
        spans.iter().map(|s| s.to_string()).collect()
    } else {
        split_blanks(line)
    };
    (!blanks.is_empty()).then(|| blanks.join(";"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_scoring_handles_multiple_letters() {
        let s = Scorer::new(AnswerKind::Choice, Mode::Strict);
        assert_eq!(s.extract("综上所述。\n答案是 A D").as_deref(), Some("AD"));
        assert_eq!(
            s.extract("Final Answer: The final answer is (B). I hope it is correct.")
                .as_deref(),
            Some("B")
        );
        assert!(s.is_correct("AD", "AD"));
        assert!(!s.is_correct("A", "AD"));
        assert!(!s.is_correct("17", "A"));
    }

    #[test]
    fn multi_blank() {
        let s = Scorer::new(AnswerKind::MultiBlank, Mode::Strict);
        assert_eq!(s.extract("解析。\n答案是 $5$;$10$").as_deref(), Some("5;10"));
        assert_eq!(
            s.extract("答案是 $5$, $\\frac{1}{2}$").as_deref(),
            Some("5;\\frac{1}{2}")
        );
        assert!(s.is_correct("5;10", "5;10"));
        assert!(!s.is_correct("5", "5;10"));
        assert!(!s.is_correct("10;5", "5;10"));
    }

    #[test]
    fn program_output() {
        let s = Scorer::new(AnswerKind::Expression, Mode::Strict);
        assert_eq!(s.extract_program_output("x\n[1/2]\n\n").as_deref(), Some("1/2"));
        assert_eq!(s.extract_program_output("[1, 2]").as_deref(), Some("[1, 2]"));
        assert_eq!(s.extract_program_output("  \n"), None);
    }
}
