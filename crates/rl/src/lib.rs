//! Reinforcement learning for math reasoning: GRPO (outcome and process supervision), reward models, iterative RL,
//! and the paper's unified paradigm (SFT, RFT, online RFT, DPO, PPO, GRPO).
