//! Exact, bounded-time answer verification.
//!
//! The verifier decides whether a model's final answer equals a reference answer. It is both the scorer of every
//! benchmark and the GRPO reward, so a wrong verdict becomes training signal. It never evaluates unbounded work:
//! every size that could make a check slow is capped *before* evaluating, so a check cannot hang in any thread.
