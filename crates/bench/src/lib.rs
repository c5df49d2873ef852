//! Math benchmarks as the DeepSeekMath paper evaluates them: data loaders, prompts (few-shot chain-of-thought,
//! zero-shot chat, program-of-thought, tool-integrated), a sandbox for model-written Python, scoring through the
//! verifier, and an eval runner with maj@k / pass@k and resumable outputs.
//!
//! Why a separate crate without tensors: evaluation logic (what the prompt is, which answer counts, how votes are
//! counted) must be testable without a model, and reusable by the RL loop. Generation is supplied by the caller
//! through the [`runner::Generator`] trait; the CLI adapts the model crate's engine to it.

#![warn(missing_docs)]

pub mod data;
pub mod fewshot;
pub mod metrics;
pub mod paper;
pub mod parity;
pub mod program;
pub mod prompt;
pub mod registry;
pub mod report;
pub mod runner;
pub mod sandbox;
pub mod scoring;

pub use data::{load, LoadedBenchmark, Problem, SkippedRecord};
pub use prompt::{PromptBuilder, PromptMode};
pub use registry::{find, parse_selection, BenchmarkSelection, BenchmarkSpec, BENCHMARKS};
pub use report::{markdown, write_report, BenchSummary};
pub use runner::{run_benchmark, EvalOptions, GeneratedText, GenerationRequest, Generator, ItemRecord};
pub use sandbox::{ExecResult, ExecStatus, Sandbox, SandboxConfig};
pub use scoring::Scorer;
