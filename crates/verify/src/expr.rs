//! The expression tree produced by [`crate::parse`].
//!
//! One tree type covers both scalar expressions and answer structures (tuples, sets, intervals, matrices, relations,
//! lists), because answers nest them freely (`(\frac{1}{2}, \sqrt{3})`, `x \in [0, 1)`).

use num_rational::BigRational;
use std::fmt;

/// Named constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Constant {
    /// π.
    Pi,
    /// Euler's number.
    E,
    /// The imaginary unit (only where the answer is clearly complex, e.g. `3+4i`).
    I,
    /// ∞ (in intervals and limits).
    Infinity,
}

/// Functions applied to arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Func {
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Tangent.
    Tan,
    /// Cotangent.
    Cot,
    /// Secant.
    Sec,
    /// Cosecant.
    Csc,
    /// Inverse sine.
    Arcsin,
    /// Inverse cosine.
    Arccos,
    /// Inverse tangent.
    Arctan,
    /// Hyperbolic sine.
    Sinh,
    /// Hyperbolic cosine.
    Cosh,
    /// Hyperbolic tangent.
    Tanh,
    /// Natural logarithm (`\ln`, and `\log` without base, as in most competition answers).
    Ln,
    /// Logarithm with base: args `[base, x]`.
    LogBase,
    /// Exponential `e^x`.
    Exp,
    /// Absolute value / modulus.
    Abs,
    /// Floor.
    Floor,
    /// Ceiling.
    Ceil,
    /// Factorial `n!`.
    Factorial,
    /// `\binom{n}{k}`: args `[n, k]`.
    Binom,
    /// `\gcd`, `\lcm`.
    Gcd,
    /// Least common multiple.
    Lcm,
}

impl Func {
    /// Lower-case name used in canonical keys and display.
    pub fn name(self) -> &'static str {
        match self {
            Func::Sin => "sin",
            Func::Cos => "cos",
            Func::Tan => "tan",
            Func::Cot => "cot",
            Func::Sec => "sec",
            Func::Csc => "csc",
            Func::Arcsin => "arcsin",
            Func::Arccos => "arccos",
            Func::Arctan => "arctan",
            Func::Sinh => "sinh",
            Func::Cosh => "cosh",
            Func::Tanh => "tanh",
            Func::Ln => "ln",
            Func::LogBase => "log",
            Func::Exp => "exp",
            Func::Abs => "abs",
            Func::Floor => "floor",
            Func::Ceil => "ceil",
            Func::Factorial => "factorial",
            Func::Binom => "binom",
            Func::Gcd => "gcd",
            Func::Lcm => "lcm",
        }
    }
}

/// Relation operators in equations and inequalities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rel {
    /// `=`.
    Eq,
    /// `≠`.
    Ne,
    /// `<`.
    Lt,
    /// `≤`.
    Le,
    /// `>`.
    Gt,
    /// `≥`.
    Ge,
    /// `\approx` (treated as `=` by the comparison).
    Approx,
    /// `\in` (`x \in [0,1]`).
    In,
}

impl Rel {
    /// The relation with its sides swapped (`a < b` ⇔ `b > a`).
    pub fn flipped(self) -> Rel {
        match self {
            Rel::Lt => Rel::Gt,
            Rel::Le => Rel::Ge,
            Rel::Gt => Rel::Lt,
            Rel::Ge => Rel::Le,
            other => other,
        }
    }
}

/// An expression or answer structure.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Exact number (decimals are exact: `0.1` is 1/10).
    Num(BigRational),
    /// Named constant.
    Const(Constant),
    /// Variable (with subscript, e.g. `x_1`).
    Var(String),
    /// Sum of terms.
    Add(Vec<Expr>),
    /// Product of factors.
    Mul(Vec<Expr>),
    /// Negation.
    Neg(Box<Expr>),
    /// Quotient.
    Div(Box<Expr>, Box<Expr>),
    /// Power `base^exp`.
    Pow(Box<Expr>, Box<Expr>),
    /// `n`-th root: `Root(radicand, n)`.
    Root(Box<Expr>, Box<Expr>),
    /// Function application.
    Apply(Func, Vec<Expr>),
    /// `a ± b` (a `None` left side is unary `±b`).
    PlusMinus(Option<Box<Expr>>, Box<Expr>),
    /// `x\%`.
    Percent(Box<Expr>),
    /// Bracketed comma list: tuple, point or interval; keeps both bracket characters (`(`, `[`, `)`, `]`).
    Bracket(char, Vec<Expr>, char),
    /// `\{a, b\}`.
    Set(Vec<Expr>),
    /// Unbracketed comma/`and`/`or` list of several answers (order does not matter).
    List(Vec<Expr>),
    /// Matrix rows (pmatrix, bmatrix, ...).
    Matrix(Vec<Vec<Expr>>),
    /// Relation chain `e0 r0 e1 r1 e2 ...`.
    Relation(Vec<Expr>, Vec<Rel>),
    /// `A \cup B`.
    Union(Vec<Expr>),
    /// Non-mathematical text (`\text{Monday}`), already normalised.
    Text(String),
}

impl Expr {
    /// Number of nodes in the tree.
    pub fn node_count(&self) -> usize {
        1 + self.children().map(Expr::node_count).sum::<usize>()
    }

    /// Direct children.
    pub fn children(&self) -> Box<dyn Iterator<Item = &Expr> + '_> {
        match self {
            Expr::Num(_) | Expr::Const(_) | Expr::Var(_) | Expr::Text(_) => Box::new(std::iter::empty()),
            Expr::Add(v) | Expr::Mul(v) | Expr::Apply(_, v) | Expr::Bracket(_, v, _) => Box::new(v.iter()),
            Expr::Set(v) | Expr::List(v) | Expr::Union(v) | Expr::Relation(v, _) => Box::new(v.iter()),
            Expr::Neg(a) | Expr::Percent(a) => Box::new(std::iter::once(&**a)),
            Expr::Div(a, b) | Expr::Pow(a, b) | Expr::Root(a, b) => Box::new([&**a, &**b].into_iter()),
            Expr::PlusMinus(a, b) => Box::new(a.as_deref().into_iter().chain(std::iter::once(&**b))),
            Expr::Matrix(rows) => Box::new(rows.iter().flatten()),
        }
    }

    /// Does any node satisfy `pred`?
    pub fn any(&self, pred: &dyn Fn(&Expr) -> bool) -> bool {
        pred(self) || self.children().any(|c| c.any(pred))
    }

    /// True for plain scalar expressions (no structure, relation, text or percent inside).
    pub fn is_scalar(&self) -> bool {
        !self.any(&|e| {
            matches!(
                e,
                Expr::Bracket(..)
                    | Expr::Set(_)
                    | Expr::List(_)
                    | Expr::Matrix(_)
                    | Expr::Relation(..)
                    | Expr::Union(_)
                    | Expr::Text(_)
                    | Expr::PlusMinus(..)
            )
        })
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, v: &[Expr], sep: &str) -> fmt::Result {
            for (i, e) in v.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{e}")?;
            }
            Ok(())
        }
        match self {
            Expr::Num(n) => write!(f, "{n}"),
            Expr::Const(c) => write!(f, "{c:?}"),
            Expr::Var(v) => f.write_str(v),
            Expr::Add(v) => {
                f.write_str("(")?;
                list(f, v, " + ")?;
                f.write_str(")")
            }
            Expr::Mul(v) => {
                f.write_str("(")?;
                list(f, v, " * ")?;
                f.write_str(")")
            }
            Expr::Neg(a) => write!(f, "-({a})"),
            Expr::Div(a, b) => write!(f, "({a})/({b})"),
            Expr::Pow(a, b) => write!(f, "({a})^({b})"),
            Expr::Root(a, n) => write!(f, "root({a}, {n})"),
            Expr::Apply(func, args) => {
                write!(f, "{}(", func.name())?;
                list(f, args, ", ")?;
                f.write_str(")")
            }
            Expr::PlusMinus(a, b) => match a {
                Some(a) => write!(f, "({a} ± {b})"),
                None => write!(f, "(±{b})"),
            },
            Expr::Percent(a) => write!(f, "{a}%"),
            Expr::Bracket(o, v, c) => {
                write!(f, "{o}")?;
                list(f, v, ", ")?;
                write!(f, "{c}")
            }
            Expr::Set(v) => {
                f.write_str("{")?;
                list(f, v, ", ")?;
                f.write_str("}")
            }
            Expr::List(v) => list(f, v, "; "),
            Expr::Matrix(rows) => {
                f.write_str("[")?;
                for (i, r) in rows.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    list(f, r, ", ")?;
                }
                f.write_str("]")
            }
            Expr::Relation(v, rels) => {
                for (i, e) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, " {:?} ", rels[i - 1])?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Expr::Union(v) => list(f, v, " ∪ "),
            Expr::Text(t) => write!(f, "\"{t}\""),
        }
    }
}
