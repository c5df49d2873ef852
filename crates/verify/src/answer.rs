//! Structure-aware comparison of two answers.
//!
//! Tuples and points are ordered and keep their bracket types (so an open interval differs from a closed one);
//! sets and bare lists of several answers are unordered; matrices compare cell by cell; equations are equal when
//! their sides' differences agree up to a non-zero constant factor (`y=2x+1` ≡ `2x-y+1=0`), and a single-variable
//! equation `x=3` matches the bare value `3`; inequalities compare as normalised relations or as the interval they
//! describe. Scalars go to [`crate::algebra`] first and to [`crate::numeric`] only when the exact form cannot decide.

use crate::algebra::{self, Frac};
use crate::budget::{Budget, LimitError};
use crate::expr::{Constant, Expr, Rel};
use crate::normalize::normalize;
use crate::numeric::{self, NumericVerdict};
use crate::parse::{normalize_text, parse};
use crate::{Mode, Options, PercentPolicy};
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, Zero};

/// Most items compared pairwise in one list or set (keeps matching quadratic work bounded).
const MAX_ITEMS: usize = 64;

/// Top-level entry: normalise, parse and compare two extracted answers.
pub fn equivalent(pred: &str, gold: &str, opts: &Options) -> bool {
    let p = normalize(pred);
    let g = normalize(gold);
    if p.is_empty() || g.is_empty() {
        return false;
    }
    if p == g {
        return true;
    }
    let budget = Budget::new(opts.limits);
    let parsed = (parse(&p, &opts.limits), parse(&g, &opts.limits));
    let strict = match &parsed {
        (Ok(pe), Ok(ge)) => {
            Comparer { opts, budget: &budget }.equal(pe, ge)
                // A word answer on one side (`\text{yes}`) that the other side spells as letters (`Yes`).
                || (matches!(pe, Expr::Text(_)) || matches!(ge, Expr::Text(_))) && text_equal(&p, &g)
        }
        _ => text_equal(&p, &g),
    };
    if strict || opts.mode == Mode::Strict {
        return strict;
    }
    crate::compat::lenient_equal(&p, &g, parsed.0.ok().as_ref(), parsed.1.ok().as_ref(), opts, &budget)
}

/// The structural verdict without the identical-string shortcut and text fallback: `None` when either side does
/// not parse. Used by self-consistency tests (an answer must equal itself *through the parser*).
pub fn equivalent_parsed(pred: &str, gold: &str, opts: &Options) -> Option<bool> {
    let (p, g) = (normalize(pred), normalize(gold));
    let pe = parse(&p, &opts.limits).ok()?;
    let ge = parse(&g, &opts.limits).ok()?;
    let budget = Budget::new(opts.limits);
    Some(Comparer { opts, budget: &budget }.equal(&pe, &ge))
}

/// Text comparison for answers that did not parse as mathematics; malformed (unbalanced) input never matches.
fn text_equal(p: &str, g: &str) -> bool {
    balanced(p) && balanced(g) && text_key(p) == text_key(g)
}

/// Are `{}`, `()` and `[]` balanced (ignoring which closer ends which opener, as intervals mix them)?
fn balanced(s: &str) -> bool {
    let (mut braces, mut parens) = (0i64, 0i64);
    for c in s.chars() {
        match c {
            '{' => braces += 1,
            '}' => braces -= 1,
            '(' | '[' => parens += 1,
            ')' | ']' => parens -= 1,
            _ => {}
        }
        if braces < 0 || parens < 0 {
            return false;
        }
    }
    braces == 0 && parens == 0
}

/// Text comparison key for answers that are not mathematics: text wrappers, braces, spaces and case removed.
pub fn text_key(s: &str) -> String {
    let mut t = s.to_string();
    for w in [
        "\\text", "\\mathrm", "\\textbf", "\\mbox", "\\left", "\\right", "\\,", "\\!", "\\;", "\\ ",
    ] {
        t = t.replace(w, "");
    }
    normalize_text(&t)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '{' && *c != '}')
        .collect()
}

/// Comparison context for one check.
pub struct Comparer<'a> {
    /// Options of the check.
    pub opts: &'a Options,
    /// Work budget of the check.
    pub budget: &'a Budget,
}

impl Comparer<'_> {
    /// Structure-aware equality of `pred` and `gold`.
    pub fn equal(&self, p: &Expr, g: &Expr) -> bool {
        use Expr::*;
        match (p, g) {
            (Relation(pe, pr), Relation(ge, gr)) => {
                self.relations_equal(pe, pr, ge, gr) || self.relation_as_interval_equal(p, g)
            }
            (Relation(..), _) => self.relation_value_equal(p, g),
            (_, Relation(..)) => self.relation_value_equal(g, p),
            (PlusMinus(..), _) | (_, PlusMinus(..)) => {
                let (pl, gl) = (expand_pm(p), expand_pm(g));
                match (pl, gl) {
                    (Some(pl), Some(gl)) => self.unordered_equal(&pl, &gl, false),
                    _ => false,
                }
            }
            (List(a), List(b)) => self.unordered_equal(a, b, false),
            (Set(a), Set(b)) | (Set(a), List(b)) | (List(a), Set(b)) => self.unordered_equal(a, b, true),
            (Union(a), Union(b)) => self.unordered_equal(a, b, true),
            // `x < -2 or x > 2` against `(-\infty,-2) \cup (2,\infty)`.
            (List(items), Union(parts)) | (Union(parts), List(items)) => {
                let intervals: Option<Vec<Expr>> = items
                    .iter()
                    .map(|it| match it {
                        Relation(es, rs) => relation_to_interval(es, rs),
                        _ => None,
                    })
                    .collect();
                intervals.is_some_and(|iv| self.unordered_equal(&iv, parts, true))
            }
            (Bracket(po, pi, pc), Bracket(go, gi, gc)) => {
                po == go && pc == gc && pi.len() == gi.len() && pi.iter().zip(gi).all(|(x, y)| self.equal(x, y))
            }
            (Matrix(a), Matrix(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(r, s)| r.len() == s.len() && r.iter().zip(s).all(|(x, y)| self.equal(x, y)))
            }
            // A vector written as a column matrix or as a parenthesised tuple.
            (Matrix(m), Bracket('(', items, ')')) | (Bracket('(', items, ')'), Matrix(m)) => {
                let cells: Vec<&Expr> = if m.iter().all(|r| r.len() == 1) {
                    m.iter().map(|r| &r[0]).collect()
                } else if m.len() == 1 {
                    m[0].iter().collect()
                } else {
                    return false;
                };
                cells.len() == items.len() && cells.iter().zip(items).all(|(x, y)| self.equal(x, y))
            }
            (Percent(a), Percent(b)) => self.equal(a, b),
            (Percent(a), other) | (other, Percent(a)) => {
                other.is_scalar()
                    && (self.scalar_equal(a, other)
                        || (self.opts.percent == PercentPolicy::UnitOrValue
                            && self.scalar_equal(&Expr::Percent(a.clone()), other)))
            }
            (Text(a), Text(b)) => a == b,
            // `4210_7` answered as `4210`: the question fixes the base, the digits must match.
            (Var(v), Num(n)) | (Num(n), Var(v)) if based_numeral_digits(v).is_some() => {
                based_numeral_digits(v).is_some_and(|d| n.is_integer() && d == n.to_string())
            }
            (Text(_), _) | (_, Text(_)) => false,
            _ if p.is_scalar() && g.is_scalar() => self.scalar_equal(p, g),
            _ => false,
        }
    }

    /// Scalars: exact canonical forms, then the numeric fallback, then structural identity.
    pub fn scalar_equal(&self, p: &Expr, g: &Expr) -> bool {
        match self.exact(p, g) {
            Ok(Some(v)) => v,
            Err(LimitError::Undefined(_)) => false,
            Ok(None) | Err(_) => match numeric::compare(p, g, self.opts.seed) {
                NumericVerdict::Equal => true,
                NumericVerdict::NotEqual => false,
                NumericVerdict::Unknown => p == g,
            },
        }
    }

    /// `Some(verdict)` when the exact forms decide; `None` when only opaque atoms differ.
    fn exact(&self, p: &Expr, g: &Expr) -> Result<Option<bool>, LimitError> {
        let fp = algebra::canonical(p, self.budget)?;
        let fg = algebra::canonical(g, self.budget)?;
        let diff = fp.difference(&fg, self.budget)?;
        if diff.is_zero() {
            return Ok(Some(true));
        }
        if !algebra::certifies_nonzero(&diff) {
            return Ok(None);
        }
        Ok(Some(false))
    }

    fn canonical(&self, e: &Expr) -> Option<Frac> {
        algebra::canonical(e, self.budget).ok()
    }

    /// Unordered comparison; `as_set` ignores duplicates.
    fn unordered_equal(&self, a: &[Expr], b: &[Expr], as_set: bool) -> bool {
        if a.len() > MAX_ITEMS || b.len() > MAX_ITEMS {
            return false;
        }
        if as_set {
            let covered = |x: &[Expr], y: &[Expr]| x.iter().all(|i| y.iter().any(|j| self.equal(i, j)));
            return covered(a, b) && covered(b, a);
        }
        if a.len() != b.len() {
            return false;
        }
        let mut used = vec![false; b.len()];
        'outer: for x in a {
            for (k, y) in b.iter().enumerate() {
                if !used[k] && self.equal(x, y) {
                    used[k] = true;
                    continue 'outer;
                }
            }
            return false;
        }
        true
    }

    /// `x = 3` vs `3`, `y = 2x+1` vs `2x+1`, `x \in [0,1]` vs `[0,1]`, `x > 3` vs `(3, \infty)`.
    fn relation_value_equal(&self, rel: &Expr, value: &Expr) -> bool {
        let Expr::Relation(es, rs) = rel else { return false };
        if matches!(value, Expr::Bracket(..) | Expr::Union(_)) {
            if let Some(interval) = relation_to_interval(es, rs) {
                return self.equal(&interval, value);
            }
        }
        if es.len() != 2 || !matches!(rs[0], Rel::Eq | Rel::In | Rel::Approx) {
            return false;
        }
        // The answer side of `var = value` (either order).
        match (&es[0], &es[1]) {
            (Expr::Var(_), v) => self.equal(v, value),
            (v, Expr::Var(_)) if rs[0] == Rel::Eq => self.equal(v, value),
            // `f(x) = ...`-style left sides (`y`, `k`, `a_n`) only; a general equation is not a value.
            _ => false,
        }
    }

    fn relations_equal(&self, pe: &[Expr], pr: &[Rel], ge: &[Expr], gr: &[Rel]) -> bool {
        if pe.len() == 2 && ge.len() == 2 && pr[0] == gr[0] && matches!(pr[0], Rel::Eq | Rel::Ne | Rel::Approx) {
            if self.sides_equal(pe, ge) || self.sides_equal(pe, &[ge[1].clone(), ge[0].clone()]) {
                return true;
            }
            return self.differences_proportional(pe, ge, false);
        }
        let (pe, pr) = orient(pe, pr);
        let (ge, gr) = orient(ge, gr);
        if pr != gr || pe.len() != ge.len() {
            return false;
        }
        if pe.len() == 2 && matches!(pr[0], Rel::Lt | Rel::Le) && self.differences_proportional(&pe, &ge, true) {
            return true;
        }
        self.sides_equal(&pe, &ge)
    }

    fn sides_equal(&self, a: &[Expr], b: &[Expr]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| self.equal(x, y))
    }

    /// Is `a0 − a1 = c·(b0 − b1)` for a constant `c ≠ 0` (`c > 0` when `positive`)?
    fn differences_proportional(&self, a: &[Expr], b: &[Expr], positive: bool) -> bool {
        let diff = |s: &[Expr]| Expr::Add(vec![s[0].clone(), Expr::Neg(Box::new(s[1].clone()))]);
        let (Some(da), Some(db)) = (self.canonical(&diff(a)), self.canonical(&diff(b))) else {
            return false;
        };
        if da.num.is_zero() || db.num.is_zero() {
            return false;
        }
        match da.constant_ratio(&db, self.budget) {
            Ok(Some(c)) => !c.is_zero() && (!positive || c.is_positive()),
            _ => false,
        }
    }

    fn relation_as_interval_equal(&self, p: &Expr, g: &Expr) -> bool {
        let (Expr::Relation(pe, pr), Expr::Relation(ge, gr)) = (p, g) else {
            return false;
        };
        match (relation_to_interval(pe, pr), relation_to_interval(ge, gr)) {
            (Some(a), Some(b)) => self.equal(&a, &b),
            _ => false,
        }
    }
}

/// Digits of a numeral written with a base subscript (`4210_7` → `4210`).
fn based_numeral_digits(v: &str) -> Option<&str> {
    let (digits, base) = v.split_once('_')?;
    let plain = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    (plain && base.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// Rewrites a chain to use only `<`/`≤` (or keeps it as is when it has no order relation).
fn orient(es: &[Expr], rs: &[Rel]) -> (Vec<Expr>, Vec<Rel>) {
    if rs.iter().all(|r| matches!(r, Rel::Gt | Rel::Ge)) {
        let mut es = es.to_vec();
        es.reverse();
        let mut rs: Vec<Rel> = rs.iter().map(|r| r.flipped()).collect();
        rs.reverse();
        (es, rs)
    } else {
        (es.to_vec(), rs.to_vec())
    }
}

/// `x > a` → `(a, ∞)`, `a ≤ x < b` → `[a, b)`, `x \in I` → `I` (one variable, constant bounds).
fn relation_to_interval(es: &[Expr], rs: &[Rel]) -> Option<Expr> {
    if es.len() == 2 && rs[0] == Rel::In && matches!(es[0], Expr::Var(_)) {
        return Some(es[1].clone());
    }
    let (es, rs) = orient(es, rs);
    if rs.iter().any(|r| !matches!(r, Rel::Lt | Rel::Le)) {
        return None;
    }
    let inf = Expr::Const(Constant::Infinity);
    let neg_inf = Expr::Neg(Box::new(inf.clone()));
    let open = |r: Rel| if r == Rel::Lt { '(' } else { '[' };
    let close = |r: Rel| if r == Rel::Lt { ')' } else { ']' };
    match (es.as_slice(), rs.as_slice()) {
        ([Expr::Var(_), hi], [r]) => Some(Expr::Bracket('(', vec![neg_inf, hi.clone()], close(*r))),
        ([lo, Expr::Var(_)], [r]) => Some(Expr::Bracket(open(*r), vec![lo.clone(), inf], ')')),
        ([lo, Expr::Var(_), hi], [r1, r2]) => Some(Expr::Bracket(open(*r1), vec![lo.clone(), hi.clone()], close(*r2))),
        _ => None,
    }
}

/// `a ± b` → `[a+b, a−b]`; other expressions → themselves (at most 8 combinations).
fn expand_pm(e: &Expr) -> Option<Vec<Expr>> {
    match e {
        Expr::PlusMinus(a, b) => {
            let base = a
                .as_deref()
                .cloned()
                .unwrap_or(Expr::Num(BigRational::from_integer(BigInt::zero())));
            Some(vec![
                Expr::Add(vec![base.clone(), (**b).clone()]),
                Expr::Add(vec![base, Expr::Neg(b.clone())]),
            ])
        }
        Expr::List(items) => {
            let mut out = Vec::new();
            for it in items {
                out.extend(expand_pm(it)?);
                if out.len() > 8 {
                    return None;
                }
            }
            Some(out)
        }
        Expr::Relation(es, rs) if es.len() == 2 && rs[0] == Rel::Eq && matches!(es[0], Expr::Var(_)) => Some(
            expand_pm(&es[1])?
                .into_iter()
                .map(|v| Expr::Relation(vec![es[0].clone(), v], vec![Rel::Eq]))
                .collect(),
        ),
        other if !other.any(&|x| matches!(x, Expr::PlusMinus(..))) => Some(vec![other.clone()]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::{Mode, Verifier};

    #[test]
    fn structures() {
        let v = Verifier::new(Mode::Strict);
        assert!(v.is_equivalent("x=3", "3"));
        assert!(v.is_equivalent("2x+1", "y=2x+1"));
        assert!(v.is_equivalent("2x-y+1=0", "y=2x+1"));
        assert!(v.is_equivalent("2, 1", "1,2"));
        assert!(!v.is_equivalent("(2, 1)", "(1,2)"));
        assert!(!v.is_equivalent("[1,2]", "(1,2)"));
        assert!(v.is_equivalent("\\{2,1\\}", "\\{1,2\\}"));
        assert!(v.is_equivalent("x>3", "(3,\\infty)"));
        assert!(v.is_equivalent("3<x", "x>3"));
        assert!(v.is_equivalent("1\\pm\\sqrt2", "1+\\sqrt2, 1-\\sqrt2"));
        assert!(v.is_equivalent("50", "50\\%"));
        assert!(v.is_equivalent("0.5", "50\\%"));
        assert!(!v.is_equivalent("0.5", "50"));
        assert!(v.is_equivalent("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "(1,2)"));
    }
}
