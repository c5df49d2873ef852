//! Caps on the work of one check.
//!
//! Instead of wall-clock timeouts (math-verify's SIGALRM only works on the main thread), every operation that could
//! grow without bound checks a size cap *before* doing the work: literal digits, bits of an exact rational, exponent
//! sizes, factorial arguments, polynomial terms, nesting depth and node count. A check that hits a cap falls back to a
//! cheaper comparison (structural or numeric) instead of running long. The counters live in a per-check [`Budget`]
//! value, so checks on different threads never share state.

use std::cell::Cell;

/// Size caps; the defaults keep the worst check well under 10 ms on one core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest answer string (bytes) that is parsed; longer ones are compared as normalised text.
    pub max_input_len: usize,
    /// Most expression-tree nodes in one answer.
    pub max_nodes: usize,
    /// Deepest nesting of the expression tree (and of the recursive-descent parser).
    pub max_depth: usize,
    /// Most digits in one numeric literal.
    pub max_digits: usize,
    /// Most bits in the numerator or denominator of any exact intermediate.
    pub max_bits: u64,
    /// Most terms of any intermediate polynomial.
    pub max_terms: usize,
    /// Total monomial operations one exact canonicalisation may do.
    pub max_work: u64,
    /// Largest `n` whose `n!` is computed exactly.
    pub max_factorial: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_len: 4096,
            max_nodes: 2048,
            max_depth: 64,
            max_digits: 1000,
            max_bits: 4096,
            max_terms: 128,
            max_work: 20_000,
            max_factorial: 300,
        }
    }
}

/// Why exact work was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A cap in [`Limits`] would be exceeded.
    #[error("size cap exceeded: {0}")]
    TooLarge(&'static str),
    /// The expression is undefined (division by zero, `0^{-1}`, ...).
    #[error("undefined: {0}")]
    Undefined(&'static str),
    /// The expression has no exact canonical form here (handled numerically or structurally).
    #[error("not representable exactly: {0}")]
    Unsupported(&'static str),
}

/// Mutable work counter for one check (not `Sync` on purpose: one check, one thread).
#[derive(Debug)]
pub struct Budget {
    /// The caps.
    pub limits: Limits,
    work_left: Cell<u64>,
}

impl Budget {
    /// A fresh budget with all work available.
    pub fn new(limits: Limits) -> Self {
        Budget {
            limits,
            work_left: Cell::new(limits.max_work),
        }
    }

    /// Spends `units` of work, failing (without spending) if not enough is left.
    pub fn spend(&self, units: u64) -> Result<(), LimitError> {
        let left = self.work_left.get();
        if units > left {
            return Err(LimitError::TooLarge("work"));
        }
        self.work_left.set(left - units);
        Ok(())
    }

    /// Fails if a number of `bits` bits would exceed the cap.
    pub fn check_bits(&self, bits: u64) -> Result<(), LimitError> {
        if bits > self.limits.max_bits {
            Err(LimitError::TooLarge("bits"))
        } else {
            Ok(())
        }
    }
}
