//! Exact canonical forms.
//!
//! An expression becomes a [`Frac`]: a quotient of two [`Poly`]s, each a sum of rational coefficients times
//! monomials over [`Atom`]s — variables, π, e, the imaginary unit, real radicals of integers with exponents in (0, 1)
//! (`√12` is stored as `2·3^{1/2}`), and opaque atoms for functions that have no algebraic form (`\sin 1`, `\ln 2`).
//! Two expressions are equal when the cross-multiplied difference expands to the zero polynomial. Because monomials
//! in distinct prime radicals are linearly independent over ℚ and π, e are transcendental (their joint independence
//! is assumed, as every CAS does), a non-zero difference *without opaque atoms* proves inequality (see
//! [`certifies_nonzero`] for logarithms); otherwise the caller falls back to numeric evaluation.
//!
//! Every operation checks the per-check [`Budget`] before it allocates: exponents, bits, terms and total work.

use crate::budget::{Budget, LimitError};
use crate::expr::{Constant, Expr, Func};
use num_bigint::{BigInt, Sign};
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};
use std::collections::BTreeMap;
use std::fmt;

/// Indivisible factor of a monomial.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Atom {
    /// A free variable (integer exponents).
    Var(String),
    /// π (integer exponents).
    Pi,
    /// e (integer exponents).
    E,
    /// The imaginary unit (exponent always 1; `i² = −1` is applied on multiplication).
    I,
    /// Real radical of a positive integer base: a prime, or a cofactor too large to factor (exponent in (0, 1)).
    Radical(BigInt),
    /// A non-algebraic subexpression, keyed by the canonical form of its arguments (integer exponents).
    Opaque(String),
}

/// Exponent of an atom: a small exact rational, reduced, positive denominator. Exponents are capped far below
/// `i64` overflow, and comparing them (as map keys) must not allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Exp {
    num: i64,
    den: i64,
}

/// Largest exponent numerator or denominator kept exactly.
const EXP_CAP: i128 = 1 << 40;

impl Exp {
    /// The integer exponent `n`.
    pub fn int(n: i64) -> Exp {
        Exp { num: n, den: 1 }
    }

    fn new(num: i128, den: i128) -> R<Exp> {
        if den == 0 {
            return Err(LimitError::Undefined("exponent with zero denominator"));
        }
        let g = num_integer::gcd(num, den).max(1);
        let (mut n, mut d) = (num / g, den / g);
        if d < 0 {
            n = -n;
            d = -d;
        }
        if n.abs() > EXP_CAP || d > EXP_CAP {
            return Err(LimitError::TooLarge("exponent"));
        }
        Ok(Exp {
            num: n as i64,
            den: d as i64,
        })
    }

    /// From an exact rational (fails past the cap).
    pub fn from_rational(r: &BigRational) -> R<Exp> {
        let n = r.numer().to_i128().ok_or(LimitError::TooLarge("exponent"))?;
        let d = r.denom().to_i128().ok_or(LimitError::TooLarge("exponent"))?;
        Exp::new(n, d)
    }

    fn add(self, o: Exp) -> R<Exp> {
        Exp::new(
            self.num as i128 * o.den as i128 + o.num as i128 * self.den as i128,
            self.den as i128 * o.den as i128,
        )
    }

    fn mul(self, o: Exp) -> R<Exp> {
        Exp::new(self.num as i128 * o.num as i128, self.den as i128 * o.den as i128)
    }

    fn neg(self) -> Exp {
        Exp {
            num: -self.num,
            den: self.den,
        }
    }

    fn is_zero(self) -> bool {
        self.num == 0
    }

    fn is_integer(self) -> bool {
        self.den == 1
    }

    fn floor(self) -> i64 {
        self.num.div_euclid(self.den)
    }

    /// As an exact rational.
    pub fn to_rational(self) -> BigRational {
        BigRational::new(self.num.into(), self.den.into())
    }

    fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

impl fmt::Display for Exp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

/// Sorted atoms with non-zero exponents.
pub type Monomial = Vec<(Atom, Exp)>;

/// Sum of coefficient × monomial; zero coefficients are never stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Poly {
    /// Terms keyed by monomial.
    pub terms: BTreeMap<Monomial, BigRational>,
}

/// Quotient of polynomials.
#[derive(Debug, Clone, PartialEq)]
pub struct Frac {
    /// Numerator.
    pub num: Poly,
    /// Denominator (never the zero polynomial).
    pub den: Poly,
}

type R<T> = Result<T, LimitError>;

fn rat(n: i64) -> BigRational {
    BigRational::from_integer(BigInt::from(n))
}

/// Product with an integer fast path: `BigRational`'s own product always runs two gcds, which dominated the cost
/// of polynomial expansion.
fn cmul(a: &BigRational, b: &BigRational) -> BigRational {
    if a.denom().is_one() && b.denom().is_one() {
        BigRational::new_raw(a.numer() * b.numer(), BigInt::one())
    } else {
        a * b
    }
}

/// In-place sum with the same integer fast path.
fn cadd_assign(a: &mut BigRational, b: &BigRational) {
    if a.denom().is_one() && b.denom().is_one() {
        *a = BigRational::new_raw(a.numer() + b.numer(), BigInt::one());
    } else {
        *a += b;
    }
}

fn rat_bits(r: &BigRational) -> u64 {
    r.numer().bits().max(r.denom().bits())
}

impl Poly {
    /// The constant polynomial `c`.
    pub fn constant(c: BigRational) -> Poly {
        let mut terms = BTreeMap::new();
        if !c.is_zero() {
            terms.insert(Vec::new(), c);
        }
        Poly { terms }
    }

    /// `c · atom^1`.
    pub fn atom(atom: Atom) -> Poly {
        let mut terms = BTreeMap::new();
        terms.insert(vec![(atom, Exp::int(1))], rat(1));
        Poly { terms }
    }

    /// Is this the zero polynomial?
    pub fn is_zero(&self) -> bool {
        self.terms.is_empty()
    }

    /// The value if this is a rational constant.
    pub fn as_rational(&self) -> Option<BigRational> {
        match self.terms.len() {
            0 => Some(BigRational::zero()),
            1 => {
                let (m, c) = self.terms.iter().next().unwrap();
                m.is_empty().then(|| c.clone())
            }
            _ => None,
        }
    }

    /// Does any monomial contain an atom matching `pred`?
    pub fn has_atom(&self, pred: &dyn Fn(&Atom) -> bool) -> bool {
        self.terms.keys().any(|m| m.iter().any(|(a, _)| pred(a)))
    }

    fn add_term(&mut self, m: Monomial, c: BigRational) {
        if c.is_zero() {
            return;
        }
        match self.terms.get_mut(&m) {
            Some(existing) => {
                cadd_assign(existing, &c);
                if existing.is_zero() {
                    self.terms.remove(&m);
                }
            }
            None => {
                self.terms.insert(m, c);
            }
        }
    }

    fn add(&self, other: &Poly, b: &Budget) -> R<Poly> {
        b.spend((self.terms.len() + other.terms.len()) as u64)?;
        let mut out = self.clone();
        for (m, c) in &other.terms {
            out.add_term(m.clone(), c.clone());
        }
        check_poly(&out, b)?;
        Ok(out)
    }

    fn neg(&self) -> Poly {
        Poly {
            terms: self.terms.iter().map(|(m, c)| (m.clone(), -c.clone())).collect(),
        }
    }

    fn mul(&self, other: &Poly, b: &Budget) -> R<Poly> {
        let pairs = (self.terms.len() * other.terms.len()) as u64;
        b.spend(pairs.max(1))?;
        let mut out = Poly::default();
        for (m1, c1) in &self.terms {
            for (m2, c2) in &other.terms {
                b.check_bits(rat_bits(c1) + rat_bits(c2))?;
                let (factor, m) = mul_monomials(m1, m2, b)?;
                let c = cmul(c1, c2);
                out.add_term(m, if factor.is_one() { c } else { cmul(&c, &factor) });
            }
        }
        check_poly(&out, b)?;
        Ok(out)
    }
}

fn check_poly(p: &Poly, b: &Budget) -> R<()> {
    if p.terms.len() > b.limits.max_terms {
        return Err(LimitError::TooLarge("terms"));
    }
    Ok(())
}

/// Product of two monomials: (rational factor pulled out of radicals / i², monomial). Sorted merge.
fn mul_monomials(a: &Monomial, bm: &Monomial, b: &Budget) -> R<(BigRational, Monomial)> {
    let mut out: Monomial = Vec::with_capacity(a.len() + bm.len());
    let (mut i, mut j) = (0, 0);
    let mut needs_normalizing = false;
    while i < a.len() || j < bm.len() {
        let take_a = j >= bm.len() || (i < a.len() && a[i].0 < bm[j].0);
        let take_b = i >= a.len() || (j < bm.len() && bm[j].0 < a[i].0);
        if take_a {
            out.push(a[i].clone());
            i += 1;
        } else if take_b {
            out.push(bm[j].clone());
            j += 1;
        } else {
            let e = a[i].1.add(bm[j].1)?;
            if matches!(a[i].0, Atom::Radical(_) | Atom::I) {
                needs_normalizing = true;
            }
            if !e.is_zero() || matches!(a[i].0, Atom::Radical(_) | Atom::I) {
                out.push((a[i].0.clone(), e));
            }
            i += 1;
            j += 1;
        }
    }
    if needs_normalizing {
        normalize_monomial(out.into_iter().collect(), b)
    } else {
        Ok((rat(1), out))
    }
}

/// Moves integer parts of radical exponents and powers of i into the coefficient.
fn normalize_monomial(map: BTreeMap<Atom, Exp>, b: &Budget) -> R<(BigRational, Monomial)> {
    let mut factor = rat(1);
    let mut out = Vec::with_capacity(map.len());
    for (atom, e) in map {
        match &atom {
            Atom::Radical(base) => {
                let k = e.floor();
                let frac = e.add(Exp::int(-k))?;
                if k != 0 {
                    b.check_bits(base.bits().saturating_mul(k.unsigned_abs()))?;
                    let p = num_traits::pow(base.clone(), k.unsigned_abs() as usize);
                    factor = if k > 0 {
                        factor * BigRational::from_integer(p)
                    } else {
                        factor / BigRational::from_integer(p)
                    };
                }
                if !frac.is_zero() {
                    out.push((atom, frac));
                }
            }
            Atom::I => match e.floor().rem_euclid(4) {
                0 => {}
                1 => out.push((atom, Exp::int(1))),
                2 => factor = -factor,
                _ => {
                    factor = -factor;
                    out.push((atom, Exp::int(1)));
                }
            },
            _ => {
                if !e.is_zero() {
                    out.push((atom, e));
                }
            }
        }
    }
    Ok((factor, out))
}

impl Frac {
    /// The rational constant `c`.
    pub fn constant(c: BigRational) -> Frac {
        Frac {
            num: Poly::constant(c),
            den: Poly::constant(rat(1)),
        }
    }

    fn from_poly(p: Poly) -> Frac {
        Frac {
            num: p,
            den: Poly::constant(rat(1)),
        }
    }

    /// The value if this is a rational constant.
    pub fn as_rational(&self) -> Option<BigRational> {
        Some(self.num.as_rational()? / self.den.as_rational()?)
    }

    /// Does the form contain an opaque atom (so a non-zero difference does not prove inequality)?
    pub fn has_opaque(&self) -> bool {
        let opaque = |a: &Atom| matches!(a, Atom::Opaque(_));
        self.num.has_atom(&opaque) || self.den.has_atom(&opaque)
    }

    /// Does the form contain a free variable?
    pub fn has_var(&self) -> bool {
        let var = |a: &Atom| matches!(a, Atom::Var(_));
        self.num.has_atom(&var) || self.den.has_atom(&var)
    }

    /// Divides out a single-monomial denominator and makes a constant denominator 1.
    fn simplify(mut self, b: &Budget) -> R<Frac> {
        if self.num.is_zero() {
            return Ok(Frac::constant(BigRational::zero()));
        }
        if self.den.terms.len() == 1 {
            let (m, c) = self.den.terms.iter().next().unwrap();
            let inv_c = c.recip();
            let inv_m: BTreeMap<Atom, Exp> = m.iter().map(|(a, e)| (a.clone(), e.neg())).collect();
            let (f, inv_m) = normalize_monomial(inv_m, b)?;
            let mut scale = Poly::default();
            scale.add_term(inv_m, inv_c * f);
            self.num = self.num.mul(&scale, b)?;
            self.den = Poly::constant(rat(1));
        }
        Ok(self)
    }

    fn add(&self, o: &Frac, b: &Budget) -> R<Frac> {
        if self.den == o.den {
            return Frac {
                num: self.num.add(&o.num, b)?,
                den: self.den.clone(),
            }
            .simplify(b);
        }
        let num = self.num.mul(&o.den, b)?.add(&o.num.mul(&self.den, b)?, b)?;
        Frac {
            num,
            den: self.den.mul(&o.den, b)?,
        }
        .simplify(b)
    }

    fn neg(&self) -> Frac {
        Frac {
            num: self.num.neg(),
            den: self.den.clone(),
        }
    }

    fn mul(&self, o: &Frac, b: &Budget) -> R<Frac> {
        Frac {
            num: self.num.mul(&o.num, b)?,
            den: self.den.mul(&o.den, b)?,
        }
        .simplify(b)
    }

    fn recip(&self, b: &Budget) -> R<Frac> {
        if self.num.is_zero() {
            return Err(LimitError::Undefined("division by zero"));
        }
        Frac {
            num: self.den.clone(),
            den: self.num.clone(),
        }
        .simplify(b)
    }

    /// Is `self − other` identically zero?
    pub fn difference_is_zero(&self, other: &Frac, b: &Budget) -> R<bool> {
        let lhs = self.num.mul(&other.den, b)?;
        let rhs = other.num.mul(&self.den, b)?;
        Ok(lhs.add(&rhs.neg(), b)?.is_zero())
    }

    /// Numerator of the cross-multiplied difference `self − other` (zero iff the two are equal).
    pub fn difference(&self, other: &Frac, b: &Budget) -> R<Poly> {
        let lhs = self.num.mul(&other.den, b)?;
        let rhs = other.num.mul(&self.den, b)?;
        lhs.add(&rhs.neg(), b)
    }

    /// `self / other` when it is a rational constant (used for equations equal up to a factor).
    pub fn constant_ratio(&self, other: &Frac, b: &Budget) -> R<Option<BigRational>> {
        // self/other = p/q with p = self.num·other.den and q = other.num·self.den; constant iff p = c·q.
        let p = self.num.mul(&other.den, b)?;
        let q = other.num.mul(&self.den, b)?;
        let Some((m, cp)) = p.terms.iter().next_back() else {
            return Ok(None);
        };
        let Some(cq) = q.terms.get(m) else { return Ok(None) };
        let ratio = cp / cq;
        let scaled = q.mul(&Poly::constant(ratio.clone()), b)?;
        Ok(p.add(&scaled.neg(), b)?.is_zero().then_some(ratio))
    }

    /// Canonical text key (deterministic: maps are ordered).
    pub fn key(&self) -> String {
        if self.den.as_rational().is_some_and(|d| d.is_one()) {
            format!("{}", self.num)
        } else {
            format!("({})/({})", self.num, self.den)
        }
    }
}

impl fmt::Display for Poly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.terms.is_empty() {
            return f.write_str("0");
        }
        for (i, (m, c)) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(" + ")?;
            }
            write!(f, "{c}")?;
            for (a, e) in m {
                let name = match a {
                    Atom::Var(v) => v.clone(),
                    Atom::Pi => "pi".into(),
                    Atom::E => "e".into(),
                    Atom::I => "i".into(),
                    Atom::Radical(n) => format!("[{n}]"),
                    Atom::Opaque(k) => format!("<{k}>"),
                };
                write!(f, "*{name}^{e}")?;
            }
        }
        Ok(())
    }
}

/// Is `ln(p)` of a prime (or integer cofactor) — the atoms [`ln`] produces for logarithms of rationals?
fn is_log_atom(a: &Atom) -> bool {
    matches!(a, Atom::Opaque(k) if k.strip_prefix("ln(").and_then(|r| r.strip_suffix(')'))
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())))
}

/// Does a non-zero polynomial certainly denote a non-zero number?
///
/// True without opaque atoms (radicals, π, e and variables are independent), and also when the only opaque atoms
/// are logarithms of integers that occur linearly with algebraic coefficients: by Baker's theorem such a linear form
/// in logarithms is zero only if it is identically zero, and logarithms of distinct primes are linearly independent.
pub fn certifies_nonzero(p: &Poly) -> bool {
    // Multiplying by a power of ln(p) ≠ 0 does not change zero-ness: clear negative log exponents first.
    let mut shift: BTreeMap<&Atom, Exp> = BTreeMap::new();
    for (a, e) in p.terms.keys().flatten().filter(|(a, _)| is_log_atom(a)) {
        let cur = shift.entry(a).or_insert(Exp::int(0));
        if e.neg() > *cur {
            *cur = e.neg();
        }
    }
    // Baker's theorem needs algebraic coefficients: no π or e anywhere once logarithms are present.
    let transcendental = p.terms.keys().flatten().any(|(a, _)| matches!(a, Atom::Pi | Atom::E));
    if !shift.is_empty() && transcendental {
        return false;
    }
    p.terms.keys().all(|m| {
        let other_opaque = m.iter().any(|(a, _)| matches!(a, Atom::Opaque(_)) && !is_log_atom(a));
        // Total log degree of this monomial after the shift (atoms absent here contribute their shift).
        let mut degree = Exp::int(0);
        for (a, s) in &shift {
            let e = m.iter().find(|(b, _)| b == *a).map_or(Exp::int(0), |(_, e)| *e);
            match e.add(*s).and_then(|d| degree.add(d)) {
                Ok(d) => degree = d,
                Err(_) => return false,
            }
        }
        let linear = degree == Exp::int(0) || degree == Exp::int(1);
        !other_opaque && linear && degree.is_integer()
    })
}

/// Exact canonical form of a scalar expression.
pub fn canonical(e: &Expr, b: &Budget) -> R<Frac> {
    canonical_at(e, b, 0)
}

fn canonical_at(e: &Expr, b: &Budget, depth: usize) -> R<Frac> {
    if depth > b.limits.max_depth {
        return Err(LimitError::TooLarge("depth"));
    }
    let d = depth + 1;
    b.spend(1)?;
    match e {
        Expr::Num(n) => {
            b.check_bits(rat_bits(n))?;
            Ok(Frac::constant(n.clone()))
        }
        Expr::Const(Constant::Pi) => Ok(Frac::from_poly(Poly::atom(Atom::Pi))),
        Expr::Const(Constant::E) => Ok(Frac::from_poly(Poly::atom(Atom::E))),
        Expr::Const(Constant::I) => Ok(Frac::from_poly(Poly::atom(Atom::I))),
        // ∞ takes no part in arithmetic (`0·∞`, `∞−∞`); infinite answers compare structurally.
        Expr::Const(Constant::Infinity) => Err(LimitError::Unsupported("infinity")),
        Expr::Var(v) => Ok(Frac::from_poly(Poly::atom(Atom::Var(v.clone())))),
        Expr::Add(items) => {
            // Polynomial terms are summed in place (long sums stay linear); true fractions are combined after.
            let mut poly = Poly::default();
            let mut fracs = Vec::new();
            for it in items {
                let f = canonical_at(it, b, d)?;
                if f.den.as_rational().is_some_and(|x| x.is_one()) {
                    b.spend(f.num.terms.len() as u64)?;
                    for (m, c) in f.num.terms {
                        poly.add_term(m, c);
                    }
                    check_poly(&poly, b)?;
                } else {
                    fracs.push(f);
                }
            }
            let mut acc = Frac::from_poly(poly);
            for f in fracs {
                acc = acc.add(&f, b)?;
            }
            Ok(acc)
        }
        Expr::Mul(items) => {
            let mut acc = Frac::constant(rat(1));
            for it in items {
                acc = acc.mul(&canonical_at(it, b, d)?, b)?;
            }
            Ok(acc)
        }
        Expr::Neg(a) => Ok(canonical_at(a, b, d)?.neg()),
        Expr::Div(n, m) => {
            let num = canonical_at(n, b, d)?;
            let den = canonical_at(m, b, d)?;
            num.mul(&den.recip(b)?, b)
        }
        Expr::Percent(a) => canonical_at(a, b, d)?.mul(&Frac::constant(BigRational::new(1.into(), 100.into())), b),
        Expr::Pow(base, exp) => {
            let base_f = canonical_at(base, b, d)?;
            let exp_f = canonical_at(exp, b, d)?;
            power(&base_f, &exp_f, b)
        }
        Expr::Root(radicand, index) => {
            let r = canonical_at(radicand, b, d)?;
            let n = canonical_at(index, b, d)?;
            let n_val = n.as_rational().ok_or(LimitError::Unsupported("symbolic root index"))?;
            if n_val.is_zero() {
                return Err(LimitError::Undefined("zeroth root"));
            }
            power(&r, &Frac::constant(n_val.recip()), b)
        }
        Expr::Apply(f, args) => apply(*f, args, b, d),
        _ => Err(LimitError::Unsupported("structure inside a scalar")),
    }
}

/// `base^exp` exactly where possible; symbolic exponents become opaque.
fn power(base: &Frac, exp: &Frac, b: &Budget) -> R<Frac> {
    let Some(q) = exp.as_rational() else {
        if base.as_rational().is_some_and(|c| c.is_zero()) {
            return Err(LimitError::Unsupported("0^symbolic"));
        }
        // e^{x} and friends stay symbolic but canonical.
        return Ok(opaque(format!("pow({};{})", base.key(), exp.key())));
    };
    if q.is_zero() {
        if base.num.is_zero() {
            return Err(LimitError::Undefined("0^0"));
        }
        return Ok(Frac::constant(rat(1)));
    }
    if base.num.is_zero() {
        return if q.is_positive() {
            Ok(Frac::constant(BigRational::zero()))
        } else {
            Err(LimitError::Undefined("0^-n"))
        };
    }
    if q.is_negative() {
        return power(&base.recip(b)?, &Frac::constant(-q), b);
    }
    if q.is_integer() {
        // Past the caps the power stays symbolic (`10^{10^{10}}`), keyed canonically so equal towers still match.
        let exact = q
            .to_integer()
            .to_u64()
            .ok_or(LimitError::TooLarge("exponent"))
            .and_then(|n| int_power(base, n, b));
        return match exact {
            Err(LimitError::TooLarge(_)) => Ok(opaque(format!("pow({};{})", base.key(), q))),
            other => other,
        };
    }
    // Non-integer rational power: only a single monomial (over a monomial) has an exact form.
    if base.den.as_rational().is_some() && base.num.terms.len() == 1 {
        let den = base.den.as_rational().unwrap();
        let (m, c) = base.num.terms.iter().next().unwrap();
        let c = c / den;
        if let Ok(p) = monomial_power(&c, m, &q, b) {
            return Ok(Frac::from_poly(p));
        }
    }
    Ok(opaque(format!("pow({};{})", base.key(), q)))
}

fn opaque(key: String) -> Frac {
    Frac::from_poly(Poly::atom(Atom::Opaque(key)))
}

fn int_power(base: &Frac, n: u64, b: &Budget) -> R<Frac> {
    // A unit monomial (`x`, `π²`) only multiplies its exponents: no size growth to check.
    if base.den.as_rational().is_some_and(|d| d.is_one()) && base.num.terms.len() == 1 {
        let (m, c) = base.num.terms.iter().next().unwrap();
        let unit = c.abs().is_one()
            && m.iter()
                .all(|(a, _)| matches!(a, Atom::Var(_) | Atom::Pi | Atom::E | Atom::Opaque(_)));
        if unit {
            let n_exp = Exp::new(n as i128, 1)?;
            let scaled: BTreeMap<Atom, Exp> = m
                .iter()
                .map(|(a, e)| Ok((a.clone(), e.mul(n_exp)?)))
                .collect::<R<_>>()?;
            let (f, mono) = normalize_monomial(scaled, b)?;
            let sign = if c.is_negative() && n % 2 == 1 { rat(-1) } else { rat(1) };
            let mut p = Poly::default();
            p.add_term(mono, sign * f);
            return Ok(Frac::from_poly(p));
        }
    }
    // Estimate the size first: bits grow linearly, terms of a k-term sum at least linearly.
    let bits: u64 = base
        .num
        .terms
        .values()
        .chain(base.den.terms.values())
        .map(rat_bits)
        .max()
        .unwrap_or(1)
        + base
            .num
            .terms
            .keys()
            .chain(base.den.terms.keys())
            .flatten()
            .map(|(a, _)| match a {
                Atom::Radical(r) => r.bits(),
                _ => 0,
            })
            .sum::<u64>();
    b.check_bits(bits.saturating_mul(n))?;
    let multi = base.num.terms.len() > 1 || base.den.terms.len() > 1;
    if multi && n > 64 {
        return Err(LimitError::TooLarge("power of a sum"));
    }
    let mut result = Frac::constant(rat(1));
    let mut sq = base.clone();
    let mut k = n;
    while k > 0 {
        if k & 1 == 1 {
            result = result.mul(&sq, b)?;
        }
        k >>= 1;
        if k > 0 {
            sq = sq.mul(&sq, b)?;
        }
    }
    Ok(result)
}

/// `(c · m)^q` for a rational non-integer `q`.
fn monomial_power(c: &BigRational, m: &Monomial, q: &BigRational, b: &Budget) -> R<Poly> {
    let qe = Exp::from_rational(q)?;
    let mut map: BTreeMap<Atom, Exp> = BTreeMap::new();
    let mut factor = rat(1);
    let bump = |map: &mut BTreeMap<Atom, Exp>, atom: Atom, by: Exp| -> R<()> {
        let cur = map.get(&atom).copied().unwrap_or(Exp::int(0));
        map.insert(atom, cur.add(by)?);
        Ok(())
    };
    for (atom, e) in m {
        let ne = e.mul(qe)?;
        match atom {
            Atom::Radical(_) => {}
            Atom::I => return Err(LimitError::Unsupported("root of i")),
            // (x²)^{1/2} = |x|: any fractional power of a variable stays symbolic.
            Atom::Var(_) | Atom::Opaque(_) => return Err(LimitError::Unsupported("fractional power of a symbol")),
            _ if !ne.is_integer() => return Err(LimitError::Unsupported("fractional power of a symbol")),
            _ => {}
        }
        bump(&mut map, atom.clone(), ne)?;
    }
    // Sign: real odd roots of negatives are negative; square roots of negatives are imaginary.
    let abs_c = c.abs();
    if c.is_negative() {
        let (p, den) = (q.numer().clone(), q.denom().clone());
        if den.is_odd() {
            if p.is_odd() {
                factor = -factor;
            }
        } else if den == BigInt::from(2) {
            bump(
                &mut map,
                Atom::I,
                Exp::new(p.to_i128().ok_or(LimitError::TooLarge("exponent"))?, 1)?,
            )?;
        } else {
            return Err(LimitError::Unsupported("even root of a negative"));
        }
    }
    for (prime, k) in factorize(abs_c.numer(), b)? {
        bump(&mut map, Atom::Radical(prime), Exp::int(k as i64).mul(qe)?)?;
    }
    for (prime, k) in factorize(abs_c.denom(), b)? {
        bump(&mut map, Atom::Radical(prime), Exp::int(-(k as i64)).mul(qe)?)?;
    }
    map.retain(|_, e| !e.is_zero());
    let (f, mono) = normalize_monomial(map, b)?;
    let mut p = Poly::default();
    p.add_term(mono, factor * f);
    Ok(p)
}

/// Prime factorisation by trial division up to 10⁴; a larger leftover cofactor is kept whole (after reducing
/// perfect powers), which stays canonical for the inputs seen in answers.
fn factorize(n: &BigInt, b: &Budget) -> R<Vec<(BigInt, u32)>> {
    let mut out = Vec::new();
    let mut m = n.clone();
    if m.is_zero() || m.is_one() {
        return Ok(out);
    }
    b.check_bits(m.bits())?;
    // Trial division: cheap u64 arithmetic while the cofactor fits, and fewer candidates for huge numbers.
    let limit: u64 = if m.bits() <= 64 { 10_000 } else { 1_000 };
    b.spend(limit / 64)?;
    let mut p: u64 = 2;
    while p <= limit {
        if let Some(v) = m.to_u64() {
            if p * p > v {
                break;
            }
            let mut v = v;
            let mut k = 0;
            while v % p == 0 {
                v /= p;
                k += 1;
            }
            if k > 0 {
                out.push((BigInt::from(p), k));
                m = BigInt::from(v);
            }
        } else {
            let bp = BigInt::from(p);
            let mut k = 0;
            while (&m % &bp).is_zero() {
                m /= &bp;
                k += 1;
            }
            if k > 0 {
                out.push((bp, k));
            }
        }
        p += if p == 2 { 1 } else { 2 };
    }
    b.spend(64)?;
    if !m.is_one() {
        // Reduce perfect powers so that e.g. 10007² under a square root is recognised.
        let mut pushed = false;
        for k in (2..=8u32).rev() {
            let r = m.nth_root(k);
            if num_traits::pow(r.clone(), k as usize) == m && !r.is_one() {
                out.push((r, k));
                pushed = true;
                break;
            }
        }
        if !pushed {
            out.push((m, 1));
        }
    }
    Ok(out)
}

fn apply(f: Func, args: &[Expr], b: &Budget, d: usize) -> R<Frac> {
    let vals = args.iter().map(|a| canonical_at(a, b, d)).collect::<R<Vec<_>>>()?;
    let rationals: Vec<Option<BigRational>> = vals.iter().map(Frac::as_rational).collect();
    let key = || {
        format!(
            "{}({})",
            f.name(),
            vals.iter().map(Frac::key).collect::<Vec<_>>().join(";")
        )
    };
    match f {
        Func::Factorial => {
            if let Some(Some(n)) = rationals.first() {
                if n.is_integer() && !n.is_negative() {
                    let n = n.to_integer().to_u64().ok_or(LimitError::TooLarge("factorial"))?;
                    if n > b.limits.max_factorial {
                        return Ok(opaque(key()));
                    }
                    b.spend(n)?;
                    let mut acc = BigInt::one();
                    for k in 2..=n {
                        acc *= k;
                    }
                    return Ok(Frac::constant(BigRational::from_integer(acc)));
                }
                return Err(LimitError::Undefined("factorial of a non-natural number"));
            }
            Ok(opaque(key()))
        }
        Func::Binom => {
            if let (Some(Some(n)), Some(Some(k))) = (rationals.first(), rationals.get(1)) {
                if n.is_integer() && k.is_integer() && !n.is_negative() {
                    let (n, k) = (n.to_integer(), k.to_integer());
                    if k.is_negative() || k > n {
                        return Ok(Frac::constant(BigRational::zero()));
                    }
                    let k = k
                        .clone()
                        .min(&n - &k)
                        .to_u64()
                        .ok_or(LimitError::TooLarge("binomial"))?;
                    if k > b.limits.max_factorial || n.bits() > 64 {
                        return Ok(opaque(key()));
                    }
                    b.spend(k)?;
                    let mut acc = BigInt::one();
                    for i in 0..k {
                        acc = acc * (&n - BigInt::from(i)) / BigInt::from(i + 1);
                    }
                    return Ok(Frac::constant(BigRational::from_integer(acc)));
                }
            }
            Ok(opaque(key()))
        }
        Func::Abs => {
            if let Some(Some(r)) = rationals.first() {
                return Ok(Frac::constant(r.abs()));
            }
            let v = &vals[0];
            if !v.has_var() && !v.has_opaque() && !v.num.has_atom(&|a| matches!(a, Atom::I)) {
                if let Some(x) = eval_const(v) {
                    if x.abs() > 1e-9 {
                        return Ok(if x < 0.0 { v.neg() } else { v.clone() });
                    }
                }
            }
            Ok(opaque(key()))
        }
        Func::Floor | Func::Ceil => {
            if let Some(Some(r)) = rationals.first() {
                return Ok(Frac::constant(if f == Func::Floor { r.floor() } else { r.ceil() }));
            }
            if let Some(x) = eval_const(&vals[0]).filter(|x| x.abs() < 1e15 && (x - x.round()).abs() > 1e-9) {
                let v = if f == Func::Floor { x.floor() } else { x.ceil() };
                return Ok(Frac::constant(rat(v as i64)));
            }
            Ok(opaque(key()))
        }
        Func::Gcd | Func::Lcm => {
            let ints: Option<Vec<BigInt>> = rationals
                .iter()
                .map(|r| r.as_ref().filter(|r| r.is_integer()).map(|r| r.to_integer()))
                .collect();
            if let Some(ints) = ints {
                let mut acc = ints[0].abs();
                for x in &ints[1..] {
                    acc = if f == Func::Gcd { acc.gcd(x) } else { acc.lcm(x) };
                }
                return Ok(Frac::constant(BigRational::from_integer(acc)));
            }
            Ok(opaque(key()))
        }
        Func::Exp => power(&Frac::from_poly(Poly::atom(Atom::E)), &vals[0], b),
        Func::Ln => ln(&vals[0], b).map(|o| o.unwrap_or_else(|| opaque(key()))),
        Func::LogBase => {
            let (Some(num), Some(den)) = (ln(&vals[1], b)?, ln(&vals[0], b)?) else {
                return Ok(opaque(key()));
            };
            num.mul(&den.recip(b)?, b)
        }
        Func::Sin | Func::Cos | Func::Tan | Func::Cot | Func::Sec | Func::Csc => {
            trig(f, &vals[0], b).map(|o| o.unwrap_or_else(|| opaque(key())))
        }
        _ => Ok(opaque(key())),
    }
}

/// `ln` of a positive rational (or a power of e) as a combination of `ln p` atoms.
fn ln(v: &Frac, b: &Budget) -> R<Option<Frac>> {
    if let Some(r) = v.as_rational() {
        if !r.is_positive() {
            return Err(LimitError::Undefined("log of a non-positive number"));
        }
        let mut acc = Frac::constant(BigRational::zero());
        for (p, k) in factorize(r.numer(), b)? {
            let atom = Frac::from_poly(Poly::atom(Atom::Opaque(format!("ln({p})"))));
            acc = acc.add(&atom.mul(&Frac::constant(rat(k as i64)), b)?, b)?;
        }
        for (p, k) in factorize(r.denom(), b)? {
            let atom = Frac::from_poly(Poly::atom(Atom::Opaque(format!("ln({p})"))));
            acc = acc.add(&atom.mul(&Frac::constant(rat(-(k as i64))), b)?, b)?;
        }
        return Ok(Some(acc));
    }
    // ln(c · e^k · radicals) for a single monomial.
    if v.den.as_rational().is_some_and(|d| d.is_one()) && v.num.terms.len() == 1 {
        let (m, c) = v.num.terms.iter().next().unwrap();
        if c.is_positive()
            && m.iter()
                .all(|(a, e)| matches!(a, Atom::E) && e.is_integer() || matches!(a, Atom::Radical(_)))
        {
            let mut acc = ln(&Frac::constant(c.clone()), b)?.unwrap_or(Frac::constant(BigRational::zero()));
            for (a, e) in m {
                let term = match a {
                    Atom::E => Frac::constant(e.to_rational()),
                    Atom::Radical(p) => Frac::from_poly(Poly::atom(Atom::Opaque(format!("ln({p})"))))
                        .mul(&Frac::constant(e.to_rational()), b)?,
                    _ => unreachable!(),
                };
                acc = acc.add(&term, b)?;
            }
            return Ok(Some(acc));
        }
    }
    Ok(None)
}

/// Exact trigonometric values at rational multiples of π with denominators dividing 12.
fn trig(f: Func, arg: &Frac, b: &Budget) -> R<Option<Frac>> {
    let t = if let Some(r) = arg.as_rational() {
        if !r.is_zero() {
            return Ok(None);
        }
        BigRational::zero()
    } else {
        let pi = Frac::from_poly(Poly::atom(Atom::Pi));
        match arg.mul(&pi.recip(b)?, b)?.as_rational() {
            Some(t) => t,
            None => return Ok(None),
        }
    };
    // t = angle/π; reduce to twelfths in [0, 24).
    let twelfths = &t * rat(12);
    if !twelfths.is_integer() {
        return Ok(None);
    }
    let k = twelfths.to_integer().mod_floor(&BigInt::from(24)).to_i64().unwrap_or(0);
    let (s, c) = sin_cos_twelfths(k, b)?;
    let result = match f {
        Func::Sin => Some(s),
        Func::Cos => Some(c),
        Func::Tan => (!c.num.is_zero()).then(|| s.mul(&c.recip(b)?, b)).transpose()?,
        Func::Cot => (!s.num.is_zero()).then(|| c.mul(&s.recip(b)?, b)).transpose()?,
        Func::Sec => (!c.num.is_zero()).then(|| c.recip(b)).transpose()?,
        Func::Csc => (!s.num.is_zero()).then(|| s.recip(b)).transpose()?,
        _ => None,
    };
    match result {
        Some(r) => Ok(Some(r)),
        None => Err(LimitError::Undefined("trig pole")),
    }
}

fn sin_cos_twelfths(k: i64, b: &Budget) -> R<(Frac, Frac)> {
    // sin(kπ/12) for k = 0..6 as (a + b√2 + c√6)/4-style exact forms built from radicals.
    let sqrt = |n: i64| -> R<Frac> {
        power(
            &Frac::constant(rat(n)),
            &Frac::constant(BigRational::new(1.into(), 2.into())),
            b,
        )
    };
    let c = |n: i64, d: i64| Frac::constant(BigRational::new(n.into(), d.into()));
    let first_quadrant = |j: i64| -> R<Frac> {
        Ok(match j {
            0 => c(0, 1),
            1 => sqrt(6)?.add(&sqrt(2)?.neg(), b)?.mul(&c(1, 4), b)?,
            2 => c(1, 2),
            3 => sqrt(2)?.mul(&c(1, 2), b)?,
            4 => sqrt(3)?.mul(&c(1, 2), b)?,
            5 => sqrt(6)?.add(&sqrt(2)?, b)?.mul(&c(1, 4), b)?,
            _ => c(1, 1),
        })
    };
    let sin_of = |k: i64| -> R<Frac> {
        let k = k.rem_euclid(24);
        Ok(match k {
            0..=6 => first_quadrant(k)?,
            7..=12 => first_quadrant(12 - k)?,
            13..=18 => first_quadrant(k - 12)?.neg(),
            _ => first_quadrant(24 - k)?.neg(),
        })
    };
    Ok((sin_of(k)?, sin_of(k + 6)?))
}

/// Floating value of a constant form (no variables or opaque atoms; real part only when `i` is absent).
pub fn eval_const(f: &Frac) -> Option<f64> {
    let ev = |p: &Poly| -> Option<f64> {
        let mut s = 0.0;
        for (m, c) in &p.terms {
            let mut t = c.to_f64()?;
            for (a, e) in m {
                let base = match a {
                    Atom::Pi => std::f64::consts::PI,
                    Atom::E => std::f64::consts::E,
                    Atom::Radical(n) => n.to_f64()?,
                    _ => return None,
                };
                t *= base.powf(e.to_f64());
            }
            s += t;
        }
        Some(s)
    };
    let v = ev(&f.num)? / ev(&f.den)?;
    v.is_finite().then_some(v)
}

/// Sign helper for callers: is the constant form strictly positive (decidable numerically)?
pub fn sign_of_const(f: &Frac) -> Option<Sign> {
    if let Some(r) = f.as_rational() {
        return Some(if r.is_positive() {
            Sign::Plus
        } else if r.is_negative() {
            Sign::Minus
        } else {
            Sign::NoSign
        });
    }
    let x = eval_const(f)?;
    if x.abs() < 1e-12 {
        None
    } else if x > 0.0 {
        Some(Sign::Plus)
    } else {
        Some(Sign::Minus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Limits;
    use crate::parse::parse;

    fn eq(a: &str, b: &str) -> bool {
        let budget = Budget::new(Limits::default());
        let ea = parse(a, &Limits::default()).unwrap();
        let eb = parse(b, &Limits::default()).unwrap();
        let fa = canonical(&ea, &budget).unwrap();
        let fb = canonical(&eb, &budget).unwrap();
        fa.difference_is_zero(&fb, &budget).unwrap()
    }

    #[test]
    fn exact_identities() {
        assert!(eq("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"));
        assert!(eq("\\sqrt{12}", "2\\sqrt{3}"));
        assert!(eq("\\frac{1}{\\sqrt{2}-1}", "\\sqrt{2}+1"));
        assert!(eq("(x+1)^2", "x^2+2x+1"));
        assert!(eq("\\frac{x^2-1}{x-1}", "x+1"));
        assert!(eq("\\sqrt{-4}", "2i"));
        assert!(eq("\\sqrt[3]{-8}", "-2"));
        assert!(eq("\\log_2 8", "3"));
        assert!(eq("\\sin\\frac{\\pi}{6}", "\\frac12"));
        assert!(eq("\\cos\\frac{\\pi}{4}", "\\frac{\\sqrt2}{2}"));
        assert!(eq("\\ln 8", "3\\ln 2"));
        assert!(eq("5!", "120"));
        assert!(eq("\\binom{5}{2}", "10"));
        assert!(!eq("\\frac{1}{2004!}", "\\frac{1}{2006!}"));
        assert!(!eq("\\sqrt{2}", "1.414"));
        assert!(!eq("\\pi", "\\frac{22}{7}"));
        assert!(!eq("x^2", "x"));
        assert!(eq("8^{1/3}", "2"));
        assert!(eq("\\sqrt{8}", "2^{3/2}"));
    }
}
