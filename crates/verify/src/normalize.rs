//! String-level cleanup that must happen before tokenising.
//!
//! Only presentation that is *textual* is handled here (math delimiters, units, degree signs, dollar signs,
//! thousands separators, "and"/"or" between answers). Spacing commands, `\left`/`\right` and `\dfrac` are handled
//! token by token in the lexer, so that cleanup can never glue tokens together (the `\left` → `\le` and
//! `2\cdot 3` → `23` bugs of string-replacement normalisers).

/// Plain-text unit words removed after a number (`5 cm`, `12 dollars`).
const UNIT_WORDS: &[&str] = &[
    "cm",
    "mm",
    "km",
    "m",
    "meter",
    "meters",
    "metre",
    "metres",
    "centimeters",
    "inch",
    "inches",
    "in",
    "ft",
    "foot",
    "feet",
    "yard",
    "yards",
    "mile",
    "miles",
    "mph",
    "units",
    "unit",
    "sq",
    "square",
    "cubic",
    "degrees",
    "degree",
    "dollars",
    "dollar",
    "cents",
    "cent",
    "hours",
    "hour",
    "minutes",
    "minute",
    "seconds",
    "second",
    "days",
    "day",
    "weeks",
    "years",
    "kg",
    "g",
    "grams",
    "pounds",
    "lbs",
    "ounces",
    "oz",
    "liters",
    "liter",
    "ml",
    "gallons",
    "people",
    "students",
    "apples",
    "times",
    "ways",
    "percent",
    "points",
    "pages",
    "pieces",
    "cups",
];

/// Strips math delimiters, `\boxed`, units, degrees, currency and thousands separators.
pub fn normalize(input: &str) -> String {
    let mut s = input.trim().to_string();
    if s.contains("\\boxed") || s.contains("\\fbox") {
        if let Some(b) = crate::extract::last_boxed(&s) {
            s = b;
        }
    }
    s = strip_delimiters(&s);
    for cmd in ["\\text", "\\mbox", "\\mathrm", "\\textbf"] {
        s = s.replace(&format!("{cmd} {{"), &format!("{cmd}{{"));
    }
    // A degree sign is a unit of the answer (`30^\circ` ≡ `30`) unless a trig function needs it as an angle.
    let trig = ["\\sin", "\\cos", "\\tan", "\\cot", "\\sec", "\\csc"]
        .iter()
        .any(|f| s.contains(f));
    if !trig {
        for deg in ["^{\\circ}", "^\\circ", "^{ \\circ}", "^{\\circ }", "\\degree", "°"] {
            s = s.replace(deg, "");
        }
    }
    s = expand_repeating_decimals(&s);
    for (from, to) in [
        ("\\$", ""),
        ("$", ""),
        ("{,}", ""),
        ("\\text{ and }", ","),
        ("\\text{and}", ","),
        ("\\text{ or }", ","),
        ("\\text{or}", ","),
        ("\\mbox{ and }", ","),
        ("\\quad", " "),
        ("\\qquad", " "),
        ("\\%", "%"),
        ("percent", "%"),
    ] {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    s = replace_words(&s, &[" and ", " or "], ",");
    s = strip_trailing_text_units(&s);
    s = strip_plain_units(&s);
    s = join_spaced_thousands(&s);
    s = strip_comma_thousands(&s);
    let t = s.trim();
    let t = t.strip_suffix('.').filter(|r| !r.ends_with('.')).unwrap_or(t).trim();
    t.to_string()
}

/// `0.\overline{3}` / `1.2\overline{45}` → exact `\frac{..}{..}`.
fn expand_repeating_decimals(s: &str) -> String {
    let mut out = s.to_string();
    while let Some(i) = out.find("\\overline{") {
        let body_start = i + "\\overline{".len();
        let Some(len) = crate::extract::matching_brace(&out[body_start..]) else {
            break;
        };
        let repeat = &out[body_start..body_start + len];
        let head = &out[..i];
        // Char-aware: the byte after a multi-byte character is not `k + 1` (found by fuzzing).
        let digits_start = head
            .char_indices()
            .rev()
            .find(|&(_, c)| !(c.is_ascii_digit() || c == '.'))
            .map_or(0, |(k, c)| k + c.len_utf8());
        let number = &head[digits_start..];
        let Some((int_part, fixed)) = number.split_once('.') else {
            break;
        };
        if repeat.is_empty() || !repeat.bytes().all(|b| b.is_ascii_digit()) || repeat.len() + fixed.len() > 30 {
            break;
        }
        // x = int.fixed(repeat)… = (int fixed repeat − int fixed) / (10^{|fixed|}·(10^{|repeat|} − 1)).
        let all: u128 = format!("{int_part}{fixed}{repeat}").parse().unwrap_or(0);
        let head_digits: u128 = format!("{int_part}{fixed}").parse().unwrap_or(0);
        let den = 10u128.pow(fixed.len() as u32) * (10u128.pow(repeat.len() as u32) - 1);
        let frac = format!("\\frac{{{}}}{{{}}}", all - head_digits, den);
        out = format!("{}{}{}", &out[..digits_start], frac, &out[body_start + len + 1..]);
    }
    out
}

/// Removes one layer of `$...$`, `$$...$$`, `\(...\)`, `\[...\]` around the whole answer.
fn strip_delimiters(s: &str) -> String {
    let t = s.trim();
    for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if let Some(inner) = t.strip_prefix(open).and_then(|x| x.strip_suffix(close)) {
            if !inner.contains(open) {
                return inner.trim().to_string();
            }
        }
    }
    t.to_string()
}

/// Replaces whole-word separators (`" and "`) outside braces.
fn replace_words(s: &str, words: &[&str], to: &str) -> String {
    let mut out = s.to_string();
    for w in words {
        if out.contains(w) && !out.contains("\\text") {
            out = out.replace(w, to);
        }
    }
    out
}

/// Drops a trailing `\text{ cm}` / `\mbox{..}` / `\mathrm{..}` unit (possibly with `^2`) after math content.
fn strip_trailing_text_units(s: &str) -> String {
    let mut cur = s.trim_end().to_string();
    loop {
        let mut changed = false;
        // Trailing power on a unit: `\text{cm}^2`, `\text{ m}^{3}`.
        let base = cur.trim_end();
        let without_power = strip_trailing_power(base);
        for cmd in [
            "\\text{",
            "\\mbox{",
            "\\mathrm{",
            "\\textrm{",
            "\\textnormal{",
            "\\ \\text{",
        ] {
            let Some(start) = without_power.rfind(cmd) else {
                continue;
            };
            let inner_start = start + cmd.len();
            let Some(len) = crate::extract::matching_brace(&without_power[inner_start..]) else {
                continue;
            };
            if inner_start + len + 1 != without_power.len() {
                continue;
            }
            let inner = &without_power[inner_start..inner_start + len];
            let mut head = without_power[..start].trim_end();
            while let Some(h) = ["\\,", "\\;", "\\!", "\\ ", "~", "\\quad"]
                .iter()
                .find_map(|sp| head.strip_suffix(sp))
            {
                head = h.trim_end();
            }
            let wordy = inner
                .trim()
                .chars()
                .all(|c| c.is_alphabetic() || c.is_whitespace() || c == '.' || c == '-')
                && inner.trim().chars().filter(|c| c.is_alphabetic()).count() >= 1;
            // Keep choice letters and single-letter variables written in \mathrm (`\mathrm{e}`).
            let unit_like = wordy && (inner.trim().len() > 1 || cmd != "\\mathrm{");
            if unit_like && !head.is_empty() && head_is_math(head) {
                cur = head.to_string();
                changed = true;
                break;
            }
        }
        if !changed {
            return cur;
        }
    }
}

/// `x^2` / `x^{3}` suffix removed (for unit powers).
fn strip_trailing_power(s: &str) -> &str {
    if let Some(i) = s.rfind('^') {
        let tail = &s[i + 1..];
        let tail_ok = tail.chars().all(|c| c.is_ascii_digit() || c == '{' || c == '}') && !tail.is_empty();
        if tail_ok && s[..i].ends_with('}') {
            return &s[..i];
        }
    }
    s
}

/// Does the head end in something a unit can follow (a digit, brace, variable or closing bracket)?
fn head_is_math(head: &str) -> bool {
    head.chars()
        .last()
        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '}' | ')' | ']' | '%'))
}

/// Drops plain unit words after a number: `5 cm`, `12 square feet`.
fn strip_plain_units(s: &str) -> String {
    let mut words: Vec<&str> = s.split(' ').filter(|w| !w.is_empty()).collect();
    let mut stripped = false;
    while words.len() > 1 {
        let last = words[words.len() - 1].trim_end_matches('.');
        let bare = last.trim_end_matches(|c: char| c == '^' || c.is_ascii_digit());
        if UNIT_WORDS.contains(&bare.to_ascii_lowercase().as_str()) {
            words.pop();
            stripped = true;
        } else {
            break;
        }
    }
    let head_numeric = words
        .last()
        .is_some_and(|w| w.ends_with(|c: char| c.is_ascii_digit() || c == '}' || c == '%'));
    if stripped && head_numeric {
        words.join(" ")
    } else {
        s.to_string()
    }
}

/// `1\,000\,000` and `1\!000` → `1000000` (thin spaces as thousands separators).
fn join_spaced_thousands(s: &str) -> String {
    let mut out = s.to_string();
    for sep in [",\\!", "\\,", "\\!", "\\ ", "~"] {
        while let Some(idx) = find_digit_group_sep(&out, sep) {
            out.replace_range(idx..idx + sep.len(), "");
        }
    }
    out
}

/// Position of `sep` sitting between a digit and exactly three digits.
fn find_digit_group_sep(s: &str, sep: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(off) = s[from..].find(sep) {
        let i = from + off;
        let j = i + sep.len();
        let before = i > 0 && b[i - 1].is_ascii_digit();
        let three = b.len() >= j + 3 && b[j..j + 3].iter().all(u8::is_ascii_digit);
        let fourth = b.get(j + 3).is_some_and(u8::is_ascii_digit);
        if before && three && !fourth {
            return Some(i);
        }
        from = j;
    }
    None
}

/// `1,234,567.5` (the whole answer, optionally signed or with a trailing `%`) → `1234567.5`.
fn strip_comma_thousands(s: &str) -> String {
    let t = s.trim();
    let body = t.strip_prefix('-').unwrap_or(t);
    let body = body.strip_suffix('%').unwrap_or(body);
    let int_part = body.split('.').next().unwrap_or("");
    let decimals_ok = body
        .split('.')
        .nth(1)
        .is_none_or(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()));
    let groups: Vec<&str> = int_part.split(',').collect();
    let ok = groups.len() > 1
        && body.matches('.').count() <= 1
        && decimals_ok
        && (1..=3).contains(&groups[0].len())
        && groups.iter().all(|g| g.bytes().all(|c| c.is_ascii_digit()))
        && groups[1..].iter().all(|g| g.len() == 3);
    if ok {
        t.replace(',', "")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn cleanup() {
        assert_eq!(normalize("$\\frac{1}{2}$"), "\\frac{1}{2}");
        assert_eq!(normalize("30^\\circ"), "30");
        assert_eq!(normalize("\\$1,234.50"), "1234.50");
        assert_eq!(normalize("5\\text{ cm}^2"), "5");
        assert_eq!(normalize("12 square feet"), "12");
        assert_eq!(normalize("1\\,000\\,000"), "1000000");
        assert_eq!(normalize("\\frac{12}{5,\\!525}"), "\\frac{12}{5525}");
        assert_eq!(normalize("90\\text{ square\nunits}"), "90");
        assert_eq!(normalize("8\\sqrt{3} \\text { square inches}"), "8\\sqrt{3}");
        assert_eq!(normalize("1,2,3"), "1,2,3");
        assert_eq!(normalize("\\text{Monday}"), "\\text{Monday}");
        assert_eq!(normalize("x=1 \\text{ or } x=2"), "x=1 , x=2");
        assert_eq!(normalize("\\boxed{5}."), "5");
        // Regression (fuzzer): a multi-byte character right before a repeating decimal.
        assert_eq!(normalize("\u{fffd}0.1\\overline{6}"), "\u{fffd}\\frac{15}{90}");
    }
}
