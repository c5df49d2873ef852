//! DeepSeek-compat mode: each documented leniency is accepted there and rejected in strict mode.

use seekmath_verify::{Mode, Verifier};

/// (gold, pred, leniency) — all rejected by strict mode, accepted by DeepSeek-Math's `math_equal`.
const LENIENCIES: &[(&str, &str, &str)] = &[
    ("50", "0.5", "reference/100 accepted"),
    ("0.5", "50", "reference×100 accepted"),
    ("3.1416", "3.1421", "numbers within 1e-3 absolute"),
    ("(1,2)", "[1,2]", "bracket types ignored"),
    ("[1,2)", "(1,2]", "bracket types ignored"),
    ("\\sqrt{2}", "1.414", "N() within 1e-3 absolute"),
    ("\\pi", "3.1416", "N() within 1e-3 absolute"),
    ("\\frac{1}{3}", "0.333", "N() within 1e-3 absolute"),
    ("6", "2x=6", "left side of at most two characters dropped"),
];

#[test]
fn compat_accepts_documented_leniencies_strict_rejects_them() {
    let strict = Verifier::new(Mode::Strict);
    let compat = Verifier::new(Mode::DeepseekCompat);
    for (gold, pred, why) in LENIENCIES {
        assert!(
            !strict.is_equivalent(pred, gold),
            "strict accepted {pred:?} = {gold:?} ({why})"
        );
        assert!(
            compat.is_equivalent(pred, gold),
            "compat rejected {pred:?} = {gold:?} ({why})"
        );
    }
}

#[test]
fn compat_still_rejects_real_errors() {
    let compat = Verifier::new(Mode::DeepseekCompat);
    for (gold, pred) in [
        ("23", "2\\cdot 3"),
        ("3.14", "\\pi"),
        ("(1,2)", "(2,1)"),
        ("x+1", "x-1"),
        ("7", "8"),
    ] {
        assert!(!compat.is_equivalent(pred, gold), "compat accepted {pred:?} = {gold:?}");
    }
}
