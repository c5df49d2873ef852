//! Numeric fallback: evaluation at seeded random points.
//!
//! Used only when the exact form cannot decide (opaque functions like `\sin x`, or sizes past the exact caps). Values
//! are complex doubles; every evaluation also tracks the largest magnitude of any intermediate, and two values count
//! as equal only when they agree to within `1e-9` of that scale (so cancellation noise such as `\sin\pi ≈ 1.2e-16`
//! is accepted while `1.414` vs `\sqrt2` is not). Points where either side is undefined are skipped; a verdict needs
//! enough defined points, otherwise the result is [`NumericVerdict::Unknown`].

use crate::expr::{Constant, Expr, Func};
use num_traits::ToPrimitive;
use std::collections::BTreeSet;

/// Relative tolerance against the intermediate scale.
pub const TOLERANCE: f64 = 1e-9;

/// Outcome of a numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericVerdict {
    /// Agreed at every defined point.
    Equal,
    /// Disagreed at some point.
    NotEqual,
    /// Too few defined points (or values out of range) to decide.
    Unknown,
}

/// Minimal complex number (only what evaluation needs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct C {
    /// Real part.
    pub re: f64,
    /// Imaginary part.
    pub im: f64,
}

impl C {
    fn real(re: f64) -> C {
        C { re, im: 0.0 }
    }
    fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }
    fn add(self, o: C) -> C {
        C {
            re: self.re + o.re,
            im: self.im + o.im,
        }
    }
    fn mul(self, o: C) -> C {
        C {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }
    fn div(self, o: C) -> C {
        let d = o.re * o.re + o.im * o.im;
        C {
            re: (self.re * o.re + self.im * o.im) / d,
            im: (self.im * o.re - self.re * o.im) / d,
        }
    }
    fn ln(self) -> C {
        C {
            re: self.abs().ln(),
            im: self.im.atan2(self.re),
        }
    }
    fn exp(self) -> C {
        let r = self.re.exp();
        C {
            re: r * self.im.cos(),
            im: r * self.im.sin(),
        }
    }
    fn is_real(self) -> bool {
        self.im.abs() <= 1e-12 * self.re.abs().max(1.0)
    }
    fn powc(self, e: C) -> C {
        // Real bases with real exponents use the real root for odd denominators (∛(−8) = −2).
        if self.is_real() && e.is_real() {
            let (b, x) = (self.re, e.re);
            if b >= 0.0 || x.fract() == 0.0 {
                return C::real(b.powf(x));
            }
            let recip = 1.0 / x;
            if (recip - recip.round()).abs() < 1e-12 && (recip.round() as i64) % 2 != 0 {
                return C::real(-(-b).powf(x));
            }
        }
        if self.re == 0.0 && self.im == 0.0 {
            return C::real(if e.re > 0.0 { 0.0 } else { f64::NAN });
        }
        self.ln().mul(e).exp()
    }
    fn finite(self) -> bool {
        self.re.is_finite() && self.im.is_finite()
    }
}

/// Small deterministic PRNG (SplitMix64): evaluation points depend only on the seed.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// Next value uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Names of free variables in an expression.
pub fn variables(e: &Expr, out: &mut BTreeSet<String>) {
    if let Expr::Var(v) = e {
        out.insert(v.clone());
    }
    for c in e.children() {
        variables(c, out);
    }
}

/// Evaluates `e` with `vars` bound; returns the value and the largest intermediate magnitude.
pub fn eval(e: &Expr, vars: &[(String, f64)]) -> Option<(C, f64)> {
    let mut scale = 0.0f64;
    let v = eval_inner(e, vars, &mut scale, 0)?;
    v.finite().then_some((v, scale))
}

fn eval_inner(e: &Expr, vars: &[(String, f64)], scale: &mut f64, depth: usize) -> Option<C> {
    if depth > 256 {
        return None;
    }
    let d = depth + 1;
    let v = match e {
        Expr::Num(n) => C::real(n.to_f64()?),
        Expr::Const(Constant::Pi) => C::real(std::f64::consts::PI),
        Expr::Const(Constant::E) => C::real(std::f64::consts::E),
        Expr::Const(Constant::I) => C { re: 0.0, im: 1.0 },
        Expr::Const(Constant::Infinity) => return None,
        Expr::Var(name) => C::real(vars.iter().find(|(n, _)| n == name)?.1),
        Expr::Add(items) => {
            let mut acc = C::real(0.0);
            for it in items {
                acc = acc.add(eval_inner(it, vars, scale, d)?);
            }
            acc
        }
        Expr::Mul(items) => {
            let mut acc = C::real(1.0);
            for it in items {
                acc = acc.mul(eval_inner(it, vars, scale, d)?);
            }
            acc
        }
        Expr::Neg(a) => {
            let x = eval_inner(a, vars, scale, d)?;
            C { re: -x.re, im: -x.im }
        }
        Expr::Div(a, b) => {
            let y = eval_inner(b, vars, scale, d)?;
            if y.abs() == 0.0 {
                return None;
            }
            eval_inner(a, vars, scale, d)?.div(y)
        }
        Expr::Percent(a) => eval_inner(a, vars, scale, d)?.mul(C::real(0.01)),
        Expr::Pow(a, b) => {
            let x = eval_inner(a, vars, scale, d)?;
            let y = eval_inner(b, vars, scale, d)?;
            x.powc(y)
        }
        Expr::Root(a, n) => {
            let x = eval_inner(a, vars, scale, d)?;
            let n = eval_inner(n, vars, scale, d)?;
            x.powc(C::real(1.0).div(n))
        }
        Expr::Apply(f, args) => {
            let xs = args
                .iter()
                .map(|a| eval_inner(a, vars, scale, d))
                .collect::<Option<Vec<_>>>()?;
            apply(*f, &xs)?
        }
        _ => return None,
    };
    // Overflow, and underflow of a non-zero quantity (x^{10^6} at x < 1), leave no usable digits.
    if !v.finite() || (v.abs() < 1e-250 && v.abs() != 0.0) || (v.abs() == 0.0 && matches!(e, Expr::Pow(..))) {
        return None;
    }
    *scale = scale.max(v.abs());
    Some(v)
}

fn apply(f: Func, xs: &[C]) -> Option<C> {
    let x = xs[0];
    // Periodic functions of huge arguments have lost every significant digit in double precision.
    if matches!(f, Func::Sin | Func::Cos | Func::Tan | Func::Cot | Func::Sec | Func::Csc) && x.abs() > 1e6 {
        return None;
    }
    let real = |g: fn(f64) -> f64| -> Option<C> { x.is_real().then(|| C::real(g(x.re))) };
    match f {
        Func::Sin => real(f64::sin),
        Func::Cos => real(f64::cos),
        Func::Tan => real(f64::tan),
        Func::Cot => real(|v| 1.0 / v.tan()),
        Func::Sec => real(|v| 1.0 / v.cos()),
        Func::Csc => real(|v| 1.0 / v.sin()),
        Func::Arcsin => real(f64::asin),
        Func::Arccos => real(f64::acos),
        Func::Arctan => real(f64::atan),
        Func::Sinh => real(f64::sinh),
        Func::Cosh => real(f64::cosh),
        Func::Tanh => real(f64::tanh),
        Func::Ln => (x.abs() > 0.0).then(|| x.ln()),
        Func::LogBase => {
            let y = *xs.get(1)?;
            Some(y.ln().div(x.ln()))
        }
        Func::Exp => Some(x.exp()),
        Func::Abs => Some(C::real(x.abs())),
        Func::Floor => real(f64::floor),
        Func::Ceil => real(f64::ceil),
        Func::Factorial => real(|v| gamma(v + 1.0)),
        Func::Binom => {
            let k = *xs.get(1)?;
            (x.is_real() && k.is_real())
                .then(|| C::real(gamma(x.re + 1.0) / (gamma(k.re + 1.0) * gamma(x.re - k.re + 1.0))))
        }
        Func::Gcd | Func::Lcm => None,
    }
}

/// Γ via Lanczos (g = 7), enough for comparisons at 1e-9 after the exact path failed.
fn gamma(x: f64) -> f64 {
    if x < 0.5 {
        return std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * gamma(1.0 - x));
    }
    if x > 171.0 {
        return f64::INFINITY;
    }
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
}

/// Compares two scalar expressions at seeded random points.
pub fn compare(a: &Expr, b: &Expr, seed: u64) -> NumericVerdict {
    let mut names = BTreeSet::new();
    variables(a, &mut names);
    variables(b, &mut names);
    let names: Vec<String> = names.into_iter().collect();
    let points = if names.is_empty() { 1 } else { 8 };
    let needed = if names.is_empty() { 1 } else { 4 };
    let mut rng = SplitMix::new(seed);
    let mut agreed = 0;
    for _ in 0..points * 3 {
        if agreed >= points {
            break;
        }
        // Points with |x| in [0.3, 2.3) and either sign: away from 0 and 1 where identities degenerate; negative
        // points tell √(x²) from x.
        let vars: Vec<(String, f64)> = names
            .iter()
            .map(|n| {
                let magnitude = 0.3 + 2.0 * rng.next_f64();
                (n.clone(), if rng.next_f64() < 0.5 { -magnitude } else { magnitude })
            })
            .collect();
        let (Some((x, sx)), Some((y, sy))) = (eval(a, &vars), eval(b, &vars)) else {
            continue;
        };
        let scale = sx.max(sy).max(x.abs()).max(y.abs());
        let diff = C {
            re: x.re - y.re,
            im: x.im - y.im,
        }
        .abs();
        if scale > 1e300 || scale < 1e-300 && diff > 0.0 {
            return NumericVerdict::Unknown;
        }
        if diff > TOLERANCE * scale {
            return NumericVerdict::NotEqual;
        }
        agreed += 1;
    }
    if agreed >= needed {
        NumericVerdict::Equal
    } else {
        NumericVerdict::Unknown
    }
}
