//! DeepSeek-Math `math_equal` leniencies (mode [`crate::Mode::DeepseekCompat`]).
//!
//! Compat mode accepts everything strict mode accepts, plus the harness's extra acceptances listed in
//! `docs/verify.md`. String-corruption bugs of the harness (e.g. cleanup that glues `2\cdot 3` into `23`) are *not*
//! reproduced: they change verdicts in both directions and no published number depends on them knowingly.

use crate::answer::Comparer;
use crate::budget::Budget;
use crate::expr::Expr;
use crate::numeric;
use crate::Options;
use num_traits::ToPrimitive;

/// Absolute tolerance of DeepSeek's number comparison (`isclose(.., abs_tol=1e-3)`, default `rel_tol=1e-9`).
const NUMBER_ABS_TOL: f64 = 1e-3;
/// Absolute tolerance of its sympy `N()` comparison (the same `abs_tol=1e-3`).
const SYMBOLIC_ABS_TOL: f64 = 1e-3;

/// The extra acceptances of compat mode (called only when strict comparison said "not equal").
pub fn lenient_equal(p: &str, g: &str, pe: Option<&Expr>, ge: Option<&Expr>, opts: &Options, budget: &Budget) -> bool {
    // 1. Bracket characters ignored: `(1,2)` = `[1,2]`; braces and parentheses removed from strings.
    let strip = |s: &str| {
        s.chars()
            .filter(|c| !matches!(c, '{' | '}' | '(' | ')' | '[' | ']' | ' '))
            .collect::<String>()
    };
    if strip(p) == strip(g) {
        return true;
    }
    // 2. `x=3` vs `3` when the left side has at most two characters (even if it is not a variable, e.g. `2x=6`).
    for (a, b) in [(p, g), (g, p)] {
        if a.matches('=').count() == 1 && !b.contains('=') {
            let (lhs, rhs) = a.split_once('=').unwrap();
            if lhs.trim().chars().count() <= 2 && crate::answer::equivalent(rhs, b, opts) {
                return true;
            }
        }
    }
    let (Some(pe), Some(ge)) = (pe, ge) else { return false };
    let cmp = Comparer { opts, budget };
    match (pe, ge) {
        (Expr::Bracket(_, a, _), Expr::Bracket(_, b, _)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| cmp.equal(x, y) || close(x, y, SYMBOLIC_ABS_TOL))
        }
        _ => {
            // 3. Numbers: gold, gold/100 and gold×100 within 1e-3 absolute (`x%` read as x/100 first).
            if let (Some(x), Some(y)) = (plain_number(pe), plain_number(ge)) {
                return [y, y / 100.0, y * 100.0].iter().any(|t| isclose(x, *t, NUMBER_ABS_TOL));
            }
            // 4. Any two scalar constants within 1e-3 absolute (sympy `N()` comparison).
            pe.is_scalar() && ge.is_scalar() && close(pe, ge, SYMBOLIC_ABS_TOL)
        }
    }
}

/// Python's `math.isclose(a, b, rel_tol=1e-9, abs_tol=abs_tol)`.
fn isclose(a: f64, b: f64, abs_tol: f64) -> bool {
    (a - b).abs() <= (1e-9 * a.abs().max(b.abs())).max(abs_tol)
}

/// Value of a plain decimal (optionally negated; `x%` is x/100 as DeepSeek's `parse_digits` reads it).
fn plain_number(e: &Expr) -> Option<f64> {
    match e {
        Expr::Num(n) => n.to_f64(),
        Expr::Neg(a) => plain_number(a).map(|x| -x),
        Expr::Percent(a) => plain_number(a).map(|x| x / 100.0),
        _ => None,
    }
}

fn close(a: &Expr, b: &Expr, abs_tol: f64) -> bool {
    match (numeric::eval(a, &[]), numeric::eval(b, &[])) {
        (Some((x, _)), Some((y, _))) => {
            let d = (x.re - y.re).hypot(x.im - y.im);
            d <= (1e-9 * x.re.hypot(x.im).max(y.re.hypot(y.im))).max(abs_tol)
        }
        _ => false,
    }
}
