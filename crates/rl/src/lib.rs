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
//! Groundwork for the paper's other methods: [`advantage::process_advantages`] (process supervision, §4.1.3)
//! and [`paradigm`] (the §5.2 unified view: data source, reward function, gradient coefficient; GAE; DPO).

pub mod advantage;
pub mod config;
pub mod logprobs;
pub mod loss;
pub mod metrics;
pub mod models;
pub mod optim;
pub mod paradigm;
pub mod reward;
pub mod rollout;
pub mod run;
pub mod task;
pub mod trainer;
