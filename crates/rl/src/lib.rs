//! Reinforcement learning for math reasoning: GRPO (outcome and process supervision), reward models, iterative RL,
//! and the paper's unified paradigm (SFT, RFT, online RFT, DPO, PPO, GRPO).
//!
//! Why a crate of its own: DeepSeekMath's RL stage (§4) is where most users start, and the open trainers default to
//! settings that differ from the paper (TRL: β = 0 and a token-level loss; verl: KL 0.001). Here the paper's
//! GRPO is the default and the popular variants are named options of the same code path.
//!
//! Pure-tensor core (no model needed):
//! * [`logprobs`]: per-token log-probabilities and entropies from logits;
//! * [`advantage`]: group-relative advantages (outcome and process supervision, Dr. GRPO's unscaled variant);
//! * [`loss`]: the clipped, k3-KL-regularised surrogate with the `grpo`/`dapo`/`dr_grpo` normalisations,
//!   exact under gradient accumulation (checked against TRL's `GRPOTrainer` in `tests/trl_parity.rs`).
//!
//! The run: [`reward`] (the verifier reward and the [`reward::RewardFunction`] trait), [`task`] (generated
//! arithmetic word problems, GSM8K), [`rollout`] (the sampler trait and a reference sampler), [`models`] (policy,
//! bf16 rollout copy, reference), [`optim`] (AdamW with checkpointable state), [`trainer`] (one step),
//! [`run`] (the loop: eval, metrics, checkpoints, resume, export), [`config`] (TOML + `--set`).
//!
//! Beyond plain GRPO (§4.1.2–4.1.4, §5.2), what the open trainers do not ship:
//! * [`reward_model`] (ORM/PRM on the policy architecture, BCE training, save/load, the ORM as a reward) with
//!   [`shepherd`] (Math-Shepherd step labels from policy rollouts) and [`reward_training`] (`rl train-rm`);
//! * [`process`] (step boundaries, the [`process::StepScorer`] trait, per-token process advantages the trainer
//!   accepts);
//! * [`iterative`] (Algorithm 1: GRPO iterations, PRM replay, reference resets);
//! * [`unified`] (SFT, RFT, online RFT, DPO, PPO and GRPO as one trainer) over [`paradigm`] (the §5.2 coefficients,
//!   GAE), [`dpo`], [`ppo`] and [`seqbatch`] (padded batches and their log-probabilities).

// `a = a + b` on tensors must stay out of place: `+=` is an in-place op that breaks autograd's saved tensors.
#![allow(clippy::assign_op_pattern)]
// Trainer steps return (metrics, samples) tuples; naming every such tuple would not make them clearer.
#![allow(clippy::type_complexity)]

pub mod advantage;
pub mod config;
pub mod dpo;
pub mod iterative;
pub mod logprobs;
pub mod loss;
pub mod metrics;
pub mod models;
pub mod optim;
pub mod paradigm;
pub mod ppo;
pub mod process;
pub mod reward;
pub mod reward_model;
pub mod reward_training;
pub mod rollout;
pub mod run;
pub mod seqbatch;
pub mod shepherd;
pub mod task;
pub mod trainer;
pub mod unified;
