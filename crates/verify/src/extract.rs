//! Pulling the final answer out of free text: model completions and benchmark references.
//!
//! Extraction is deliberately separate from equivalence: a benchmark decides *where* the answer is (boxed, after
//! "The answer is", after `####`, a choice letter), the verifier then decides whether two extracted answers are equal.
//! Every function here is linear in the input length and never allocates more than a copy of it.

/// Kind of answer a benchmark expects; drives extraction from model output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AnswerKind {
    /// A single number (GSM8K, CMATH, MGSM): falls back to the last number in the text.
    Number,
    /// A LaTeX expression (MATH, OCW): boxed or "The answer is" phrasing, else the last number.
    #[default]
    Expression,
    /// A multiple-choice letter A–E (MMLU-STEM, SAT, Gaokao-MathQA).
    Choice,
    /// Several blanks (Gaokao-MathCloze): every boxed answer of the final part, joined by `"; "`.
    MultiBlank,
}

/// Commands whose braced argument is a final answer.
const BOX_COMMANDS: [&str; 2] = ["\\boxed", "\\fbox"];

/// Content of the last `\boxed{..}`/`\fbox{..}` (nested braces, escaped braces respected).
///
/// `\boxed 5` (argument without braces) yields the following token. An unterminated last box is skipped in favour of
/// the previous complete one. Empty boxes yield `None`.
pub fn last_boxed(text: &str) -> Option<String> {
    all_boxed(text).pop()
}

/// Contents of every complete `\boxed{..}`/`\fbox{..}` in order of appearance (nested boxes count once, outermost).
pub fn all_boxed(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let next = BOX_COMMANDS
            .iter()
            .filter_map(|cmd| text[pos..].find(cmd).map(|i| (pos + i, cmd.len())))
            .min_by_key(|&(i, _)| i);
        let Some((start, cmd_len)) = next else { break };
        let after = start + cmd_len;
        // `\boxedfoo` is another command, not a box.
        if text[after..].chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
            pos = after;
            continue;
        }
        match boxed_argument(&text[after..]) {
            Some((content, used)) => {
                let trimmed = content.trim();
                if !trimmed.is_empty() {
                    found.push(trimmed.to_string());
                }
                pos = after + used;
            }
            None => pos = after,
        }
    }
    found
}

/// Parses the argument after a box command: `{...}` with nesting, or a bare token. Returns (content, bytes used).
fn boxed_argument(rest: &str) -> Option<(&str, usize)> {
    let skipped = rest.len() - rest.trim_start().len();
    let body = &rest[skipped..];
    if let Some(inner) = body.strip_prefix('{') {
        let end = matching_brace(inner)?;
        return Some((&inner[..end], skipped + 1 + end + 1));
    }
    if skipped == 0 {
        return None;
    }
    // `\boxed 5`: the argument runs to whitespace or a math delimiter.
    let end = body.find(|c: char| c.is_whitespace() || c == '$').unwrap_or(body.len());
    (end > 0).then(|| (&body[..end], skipped + end))
}

/// Byte index of the `}` that closes an already-opened `{`, honouring `\{`/`\}` escapes.
pub(crate) fn matching_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 1usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Phrases after which a final answer follows, most specific first; matched case-insensitively, last occurrence wins.
const ANSWER_PHRASES: [&str; 6] = [
    "final answer is",
    "the answer is",
    "answer is",
    "final answer:",
    "answer:",
    "answer =",
];

/// Chinese answer phrases (CMATH, MGSM-zh, Gaokao).
const CHINESE_PHRASES: [&str; 5] = ["答案是", "答案为", "答案：", "答案:", "答："];

/// Final answer from a model completion (boxed, "The answer is", "####", 答案是, choice letter...).
///
/// Order: last box; `####`; the last English or Chinese answer phrase; for [`AnswerKind::Choice`] a standalone
/// letter; for numbers and expressions the last number in the text (DeepSeek-Math's fallback).
pub fn extract_answer(completion: &str, kind: AnswerKind) -> Option<String> {
    let text = completion.trim();
    if text.is_empty() {
        return None;
    }
    let found = match kind {
        AnswerKind::MultiBlank => {
            let boxes = all_boxed(final_part(text));
            if boxes.len() > 1 {
                Some(boxes.join("; "))
            } else {
                primary_answer(text)
            }
        }
        _ => primary_answer(text),
    };
    match kind {
        AnswerKind::Choice => found
            .as_deref()
            .and_then(choice_letter)
            .or_else(|| last_choice_letter(text)),
        AnswerKind::Number => found.or_else(|| last_number(text)),
        AnswerKind::Expression | AnswerKind::MultiBlank => found.or_else(|| last_number(text)),
    }
}

/// The answer from explicit markers only (box, `####`, answer phrases); `None` when the text has none.
pub fn primary_answer(text: &str) -> Option<String> {
    if let Some(b) = last_boxed(text) {
        return Some(b);
    }
    if let Some(g) = after_hashes(text) {
        return Some(g);
    }
    phrase_answer(text)
}

/// The part of a completion after the last answer phrase (so that earlier boxed lemmas do not count as blanks).
fn final_part(text: &str) -> &str {
    let lower = text.to_ascii_lowercase();
    ANSWER_PHRASES
        .iter()
        .filter_map(|p| lower.rfind(p))
        .max()
        .map(|i| &text[i..])
        .filter(|t| t.contains("\\boxed") || t.contains("\\fbox"))
        .unwrap_or(text)
}

/// Text after the last `####` (GSM8K format), first line, trimmed.
fn after_hashes(text: &str) -> Option<String> {
    let i = text.rfind("####")?;
    let line = text[i + 4..].lines().next().unwrap_or("").trim();
    let line = line.trim_end_matches('.').trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// The answer after the last "The answer is"-style phrase (English or Chinese).
fn phrase_answer(text: &str) -> Option<String> {
    // ASCII lowercasing keeps byte offsets aligned with the original text.
    let lower = text.to_ascii_lowercase();
    let english = ANSWER_PHRASES
        .iter()
        .filter_map(|p| lower.rfind(p).map(|i| (i, i + p.len())))
        .max_by_key(|x| x.0);
    let chinese = CHINESE_PHRASES
        .iter()
        .filter_map(|p| text.rfind(p).map(|i| (i, i + p.len())))
        .max_by_key(|x| x.0);
    let (_, end) = match (english, chinese) {
        (Some(a), Some(b)) => {
            if a.0 >= b.0 {
                a
            } else {
                b
            }
        }
        (a, b) => a.or(b)?,
    };
    clean_phrase_tail(&text[end..])
}

/// Cuts the sentence that follows an answer phrase down to the answer itself.
fn clean_phrase_tail(tail: &str) -> Option<String> {
    let tail = tail.trim_start_matches(|c: char| c.is_whitespace() || c == ':' || c == '：');
    // A math span right at the start is the answer: "is $\frac12$. I hope it is correct."
    let candidate = if let Some(rest) = tail.strip_prefix("$$") {
        rest.find("$$").map(|e| &rest[..e])
    } else if let Some(rest) = tail.strip_prefix('$') {
        rest.find('$').map(|e| &rest[..e])
    } else if let Some(rest) = tail.strip_prefix("\\(") {
        rest.find("\\)").map(|e| &rest[..e])
    } else if let Some(rest) = tail.strip_prefix("\\[") {
        rest.find("\\]").map(|e| &rest[..e])
    } else {
        None
    };
    let answer = match candidate {
        Some(c) => c.to_string(),
        None => {
            let line = tail.lines().next().unwrap_or("");
            let line = cut_sentence(line);
            line.replace('$', "")
        }
    };
    let answer = answer.trim().trim_end_matches(['.', '。', ',', '，', ';']).trim();
    (!answer.is_empty()).then(|| answer.to_string())
}

/// Ends a line at the first sentence break (". " not part of a decimal number, or "。").
fn cut_sentence(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, c) in line.char_indices() {
        if c == '。' {
            return &line[..i];
        }
        if c == '.' {
            let next_is_space = bytes.get(i + 1).is_none_or(|b| b.is_ascii_whitespace());
            if next_is_space && i + 1 < bytes.len() {
                return &line[..i];
            }
        }
    }
    line
}

/// Normalises a choice written as `A`, `(A)`, `\text{(A)}`, `A.`, `A)` or `Option A` to its letter.
pub fn choice_letter(s: &str) -> Option<String> {
    let mut t = s.trim();
    for wrapper in ["\\text{", "\\textbf{", "\\mathrm{", "\\mathbf{"] {
        if let Some(inner) = t.strip_prefix(wrapper).and_then(|x| x.strip_suffix('}')) {
            t = inner.trim();
        }
    }
    let lower = t.to_ascii_lowercase();
    for prefix in ["option ", "choice "] {
        if lower.starts_with(prefix) {
            t = t[prefix.len()..].trim();
        }
    }
    let t = t.trim_start_matches('(').trim_end_matches(['.', ')', ':']).trim();
    let mut chars = t.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if ('A'..='E').contains(&c.to_ascii_uppercase()) => Some(c.to_ascii_uppercase().to_string()),
        _ => None,
    }
}

/// The last standalone choice letter: `(B)`, ` B.`, ` B)` or a bare `B` surrounded by non-letters.
fn last_choice_letter(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    for i in (0..chars.len()).rev() {
        let c = chars[i];
        if !('A'..='E').contains(&c) {
            continue;
        }
        let before = if i == 0 { None } else { Some(chars[i - 1]) };
        let after = chars.get(i + 1).copied();
        let isolated_before = before.is_none_or(|b| !b.is_alphanumeric());
        let isolated_after = after.is_none_or(|a| !a.is_alphanumeric());
        // A sentence-initial "A" ("A car...") is an article, not a choice.
        let article = c == 'A' && after == Some(' ') && before.is_none_or(|b| b == '\n' || b == ' ' || b == '.');
        if isolated_before && isolated_after && !article {
            return Some(c.to_string());
        }
    }
    None
}

/// The last number in the text (commas between digit groups removed), as DeepSeek-Math's fallback extracts it.
pub fn last_number(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    // The end of the last digit run.
    let end = bytes.iter().rposition(u8::is_ascii_digit)? + 1;
    let mut start = end;
    while start > 0 {
        let b = bytes[start - 1];
        let digit_follows = bytes.get(start).is_some_and(|d| d.is_ascii_digit());
        let digit_precedes = start >= 2 && bytes[start - 2].is_ascii_digit();
        if b.is_ascii_digit() || ((b == b',' || b == b'.') && digit_follows && digit_precedes) {
            start -= 1;
        } else {
            break;
        }
    }
    // A leading ".5" is a decimal; a leading "-" is a sign unless it follows a word character ("x-3").
    if start > 0 && bytes[start - 1] == b'.' {
        start -= 1;
    }
    if start > 0 && bytes[start - 1] == b'-' && (start < 2 || !bytes[start - 2].is_ascii_alphanumeric()) {
        start -= 1;
    }
    let number = text[start..end].replace(',', "");
    Some(number.trim_end_matches('.').to_string())
}

/// Program output for program-of-thought (PoT) completions: the last ```` ```output ```` block, else the text itself.
pub fn program_output(text: &str) -> Option<String> {
    let start = text.rfind("```output").map(|i| i + "```output".len());
    let body = match start {
        Some(s) => {
            let rest = &text[s..];
            &rest[..rest.find("```").unwrap_or(rest.len())]
        }
        None => text,
    };
    let last_line = body.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    Some(last_line.to_string())
}

/// Reference answer of a MATH solution: its last boxed expression.
pub fn math_reference(solution: &str) -> Option<String> {
    last_boxed(solution)
}

/// Reference answer of a GSM8K solution: the number after `####`, thousands separators removed.
pub fn gsm8k_reference(answer: &str) -> Option<String> {
    after_hashes(answer).map(|a| a.replace(',', ""))
}

/// Reference answer of a CMATH record (`golden` field), trimmed; CMATH writes some answers with units or `%`.
pub fn cmath_reference(golden: &str) -> Option<String> {
    let g = golden.trim();
    (!g.is_empty()).then(|| g.to_string())
}

/// Blanks of a Gaokao-MathCloze `answer` field: `$a$;$b$` → `["a", "b"]`.
pub fn gaokao_cloze_reference(answer: &str) -> Vec<String> {
    answer
        .split([';', '；'])
        .map(|p| p.trim().trim_matches('$').trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Choice label of a Gaokao-MathQA/MMLU/SAT record (`"D"`, `"(D)"`, `["D"]`-style strings) as one letter.
pub fn choice_reference(label: &str) -> Option<String> {
    let t = label
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_matches(['"', '\'']);
    choice_letter(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_nested_and_last() {
        assert_eq!(
            last_boxed(r"so \boxed{1} then \boxed{\frac{1}{2}}").as_deref(),
            Some(r"\frac{1}{2}")
        );
        assert_eq!(last_boxed(r"\fbox{x^{2}}").as_deref(), Some("x^{2}"));
        assert_eq!(last_boxed(r"\boxed {\{1,2\}}").as_deref(), Some(r"\{1,2\}"));
        assert_eq!(last_boxed(r"\boxed 5$").as_deref(), Some("5"));
        assert_eq!(last_boxed(r"\boxed{3} and \boxed{unterminated").as_deref(), Some("3"));
        assert_eq!(last_boxed("no box"), None);
        assert_eq!(last_boxed(r"\boxedx{3}"), None);
    }

    #[test]
    fn phrases() {
        let t = "Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.";
        assert_eq!(
            extract_answer(t, AnswerKind::Expression).as_deref(),
            Some("\\frac{3}{4}")
        );
        assert_eq!(
            extract_answer("So the answer is 3.5.", AnswerKind::Number).as_deref(),
            Some("3.5")
        );
        assert_eq!(
            extract_answer("blah\n#### 1,234", AnswerKind::Number).as_deref(),
            Some("1,234")
        );
        assert_eq!(
            extract_answer("所以答案是 18。", AnswerKind::Number).as_deref(),
            Some("18")
        );
        assert_eq!(
            extract_answer("he paid 3 then 1,200 dollars", AnswerKind::Number).as_deref(),
            Some("1200")
        );
        assert_eq!(extract_answer("x is -7", AnswerKind::Number).as_deref(), Some("-7"));
    }

    #[test]
    fn choices() {
        assert_eq!(
            extract_answer("The answer is (B).", AnswerKind::Choice).as_deref(),
            Some("B")
        );
        assert_eq!(
            extract_answer("I think C is right", AnswerKind::Choice).as_deref(),
            Some("C")
        );
        assert_eq!(
            extract_answer("\\boxed{\\text{(D)}}", AnswerKind::Choice).as_deref(),
            Some("D")
        );
        assert_eq!(choice_reference("[\"A\"]").as_deref(), Some("A"));
    }

    #[test]
    fn references() {
        assert_eq!(gsm8k_reference("a\nb\n#### 1,000").as_deref(), Some("1000"));
        assert_eq!(gaokao_cloze_reference("1;$\\frac{8}{9}$"), vec!["1", "\\frac{8}{9}"]);
        assert_eq!(
            program_output("```python\nprint(1)\n```\n```output\n42\n```").as_deref(),
            Some("42")
        );
        let multi = "The answers are \\boxed{5} and \\boxed{10}.";
        assert_eq!(extract_answer(multi, AnswerKind::MultiBlank).as_deref(), Some("5; 10"));
    }
}
