//! Fuzzes the whole pipeline: extraction, normalisation, parsing, exact canonical forms and numeric fallback.
//!
//! Input bytes are split at the first newline into a gold and a predicted answer. Properties checked besides "no
//! panic": every check finishes well inside a second (libFuzzer's `-timeout` catches hangs) and an answer that is
//! not empty after normalisation always equals itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seekmath_verify::extract::{self, AnswerKind};
use seekmath_verify::{Limits, Mode, Verifier};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (gold, pred) = text.split_once('\n').unwrap_or((&text, ""));
    for mode in [Mode::Strict, Mode::DeepseekCompat] {
        let v = Verifier::new(mode);
        let _ = v.is_equivalent(pred, gold);
        let _ = v.is_equivalent(gold, pred);
    }
    let _ = seekmath_verify::parse::parse(gold, &Limits::default());
    for kind in [
        AnswerKind::Number,
        AnswerKind::Expression,
        AnswerKind::Choice,
        AnswerKind::MultiBlank,
    ] {
        let _ = extract::extract_answer(&text, kind);
    }
    let _ = extract::last_boxed(&text);
    let _ = extract::program_output(&text);
    if !seekmath_verify::normalize::normalize(gold).is_empty() {
        assert!(
            Verifier::new(Mode::Strict).is_equivalent(gold, gold),
            "answer not equal to itself: {gold:?}"
        );
    }
});
