//! Decoder-only transformers (Llama, Mistral, Qwen2, DeepSeek-LLM) on libtorch through tch: loading from Hugging Face
//! folders, GGUF and llama2.c files, saving in Hugging Face format, and a batched sampling engine.
//!
//! Why libtorch: training (SFT, GRPO) needs autograd and fused kernels, and rollouts need the same weights in the
//! same process; one `CausalLm` serves both. Parameter names are Hugging Face's so checkpoints move both ways
//! without renaming tables, and parity with transformers is tested on tiny random models.

// `a = a + b` on tensors must stay out of place: `+=` is an in-place op that breaks autograd's saved tensors.
#![allow(clippy::assign_op_pattern)]

pub mod config;
pub mod engine;
pub mod gguf;
pub mod kv_cache;
pub mod loader;
pub mod model;
pub mod rope;
pub mod save;
pub mod tokenizer;

pub use config::{ModelConfig, RopeKind, RopeParameters, TokenIds};
pub use kv_cache::KvCache;
pub use loader::{load, LoadedModel};
pub use model::{CausalLm, DecodeAttention, DecodeKernels, RmsNorm, StackedProjections, WeightInit};
pub use save::save_pretrained;
pub use tokenizer::{ChatMessage, SpecialTokens, Tokenizer};
