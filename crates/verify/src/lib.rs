//! Exact, bounded-time answer verification.
//!
//! The verifier decides whether a model's final answer equals a reference answer. It is both the scorer of every
//! benchmark and the GRPO reward, so a wrong verdict becomes training signal. It never evaluates unbounded work:
//! every size that could make a check slow is capped *before* evaluating, so a check cannot hang in any thread.
//!
//! Pipeline: [`extract`] pulls the answer out of text; [`normalize`] removes presentation noise (`\left`, `\!`,
//! `\dfrac`, units, `^\circ`, thousands separators); [`parse`] turns LaTeX or plain math into an [`expr::Expr`] tree;
//! [`algebra`] brings expressions to a canonical exact form (big rationals, radicals, π and e kept symbolic,
//! polynomials expanded, rational functions cross-multiplied); [`numeric`] evaluates at seeded random points when
//! the exact form cannot decide; [`answer`] compares structures (tuples, sets, intervals, matrices, equations).

#![warn(missing_docs)]

pub mod algebra;
pub mod answer;
pub mod batch;
pub mod budget;
pub mod compat;
pub mod expr;
pub mod extract;
pub mod normalize;
pub mod numeric;
pub mod parse;

pub use budget::Limits;

/// How lenient equivalence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Mathematically right: used as the RL reward and for headline numbers.
    #[default]
    Strict,
    /// Reproduces DeepSeek-Math's `math_equal` leniencies (docs/verify.md lists every difference).
    DeepseekCompat,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "strict" => Ok(Mode::Strict),
            "deepseek-compat" | "deepseek" | "deepseekcompat" => Ok(Mode::DeepseekCompat),
            other => Err(format!(
                "unknown verify mode {other:?} (expected strict or deepseek-compat)"
            )),
        }
    }
}

/// How a percentage sign relates to the bare number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PercentPolicy {
    /// `50\%` equals `50` (the sign read as a unit) and `0.5` (its value); `50` never equals `0.5`.
    #[default]
    UnitOrValue,
    /// `50\%` equals only `50\%`/`50`: the sign is a unit, never a scale factor.
    UnitOnly,
}

/// Everything that configures a check; `Options::default()` is strict mode with default limits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    /// Strictness.
    pub mode: Mode,
    /// Percent handling.
    pub percent: PercentPolicy,
    /// Size caps that bound the work of one check.
    pub limits: Limits,
    /// Seed of the random evaluation points of the numeric fallback (a check is a pure function of its inputs).
    pub seed: u64,
}

impl Options {
    /// Default options in the given mode.
    pub fn with_mode(mode: Mode) -> Self {
        Options {
            mode,
            ..Options::default()
        }
    }
}

/// The answer checker. Holds only configuration: `Send + Sync`, cheap to clone, no global state.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    options: Options,
}

impl Verifier {
    /// A verifier with default options in `mode`.
    pub fn new(mode: Mode) -> Self {
        Verifier {
            options: Options::with_mode(mode),
        }
    }

    /// A verifier with explicit options.
    pub fn with_options(options: Options) -> Self {
        Verifier { options }
    }

    /// The options in use.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Are the two *answers* (already extracted) mathematically equal?
    pub fn is_equivalent(&self, pred: &str, gold: &str) -> bool {
        answer::equivalent(pred, gold, &self.options)
    }

    /// Extracts the answer from a model completion and compares it with an already-extracted gold answer.
    /// Returns the verdict and the extracted prediction (`None` when the completion holds no answer).
    pub fn check_completion(&self, completion: &str, gold: &str, kind: extract::AnswerKind) -> (bool, Option<String>) {
        match extract::extract_answer(completion, kind) {
            Some(pred) => (self.is_equivalent(&pred, gold), Some(pred)),
            None => (false, None),
        }
    }
}

/// Are `gold` and `pred` (already extracted answers) equal under `options`?
pub fn is_equivalent(gold: &str, pred: &str, options: &Options) -> bool {
    answer::equivalent(pred, gold, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Verifier>();
    }
}
