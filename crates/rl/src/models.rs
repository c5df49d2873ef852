//! The three models of a GRPO run: the trainable policy (fp32 master weights), an optional bf16 copy of it that
//! the sampler runs, and the frozen reference policy of the KL term.
//!
//! Why a separate rollout copy: with a learning rate of 1e-6 a bf16 parameter cannot move (its spacing near 1 is
//! 2⁻⁸), so the policy must keep fp32 master weights, while sampling — most of a step's time — should run in bf16.
//! The copy is refreshed in place after every optimiser step, so a sampler holding `&CausalLm` sees new weights.

use std::path::Path;

use anyhow::Context;
use seekmath_model::{load, CausalLm, LoadedModel, Tokenizer};
use tch::{Device, Kind};

use crate::config::ModelSection;

/// Policy, rollout copy, reference and tokenizer.
pub struct Models {
    /// Trainable policy (fp32).
    pub policy: LoadedModel,
    /// bf16 copy used for sampling (None: sample from `policy`).
    pub rollout: Option<LoadedModel>,
    /// Frozen reference policy (None when β = 0).
    pub reference: Option<LoadedModel>,
    /// Device everything lives on.
    pub device: Device,
    /// Kind autocast uses for the training forward (None: plain fp32).
    pub autocast: Option<Kind>,
}

/// Resolves `auto`, `cpu`, `cuda`, `cuda:N`.
pub fn parse_device(spec: &str) -> anyhow::Result<Device> {
    Ok(match spec {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        s => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => Device::Cuda(n),
            None => anyhow::bail!("model.device {s:?}: expected auto, cpu, cuda or cuda:N"),
        },
    })
}

impl Models {
    /// Loads the models as `section` describes; the reference is loaded only when `need_reference`.
    pub fn load(section: &ModelSection, need_reference: bool) -> anyhow::Result<Self> {
        anyhow::ensure!(!section.path.as_os_str().is_empty(), "model.path is required");
        let device = parse_device(&section.device)?;
        let low_precision = section.precision == "bf16" && device.is_cuda();
        if section.precision == "bf16" && !device.is_cuda() {
            tracing::info!("precision bf16 requested on CPU: running in fp32");
        }
        let aux_kind = if low_precision { Kind::BFloat16 } else { Kind::Float };
        let policy = load_model(&section.path, device, Kind::Float)?;
        anyhow::ensure!(
            policy.tokenizer.is_some(),
            "{} carries no tokenizer",
            section.path.display()
        );
        let rollout = if low_precision {
            Some(load_model(&section.path, device, Kind::BFloat16)?)
        } else {
            None
        };
        let reference = if need_reference {
            let path = section.reference.as_deref().unwrap_or(&section.path);
            let mut r = load_model(path, device, aux_kind)?;
            r.vs.freeze();
            Some(r)
        } else {
            None
        };
        Ok(Self {
            policy,
            rollout,
            reference,
            device,
            autocast: low_precision.then_some(Kind::BFloat16),
        })
    }

    /// Assembles models built elsewhere (tests, iterative RL); the policy must carry its tokenizer.
    pub fn from_parts(policy: LoadedModel, reference: Option<LoadedModel>) -> anyhow::Result<Self> {
        anyhow::ensure!(policy.tokenizer.is_some(), "the policy carries no tokenizer");
        let device = policy.model.device();
        Ok(Self {
            policy,
            rollout: None,
            reference,
            device,
            autocast: None,
        })
    }

    /// The policy's tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        self.policy.tokenizer.as_ref().expect("Models always hold a tokenizer")
    }

    /// Token id used for padding batches (see [`pad_or_eos_id`]).
    pub fn pad_id(&self) -> i64 {
        pad_or_eos_id(self.tokenizer()) as i64
    }

    /// The network the sampler should run.
    pub fn sampling_model(&self) -> &CausalLm {
        self.rollout.as_ref().map(|r| &r.model).unwrap_or(&self.policy.model)
    }

    /// Copies the policy's current weights into the rollout copy (no-op without one).
    pub fn sync_rollout(&self) -> anyhow::Result<()> {
        let Some(rollout) = &self.rollout else { return Ok(()) };
        let _guard = tch::no_grad_guard();
        let src = self.policy.vs.variables();
        for (name, mut dst) in rollout.vs.variables() {
            let s = src
                .get(&name)
                .with_context(|| format!("rollout copy has {name}, the policy does not"))?;
            dst.copy_(s);
        }
        Ok(())
    }

    /// Resets the reference policy to the current policy (iterative RL, Algorithm 1).
    pub fn reset_reference(&self) -> anyhow::Result<()> {
        let Some(reference) = &self.reference else {
            return Ok(());
        };
        let _guard = tch::no_grad_guard();
        let src = self.policy.vs.variables();
        for (name, mut dst) in reference.vs.variables() {
            let s = src
                .get(&name)
                .with_context(|| format!("reference has {name}, the policy does not"))?;
            dst.copy_(s);
        }
        Ok(())
    }
}

/// The tokenizer's pad token, else its first EOS token, else 0: padded positions are masked out everywhere, so any
/// valid id works, but a real special token keeps decoded batches readable.
pub fn pad_or_eos_id(tokenizer: &Tokenizer) -> u32 {
    tokenizer
        .pad_token_id()
        .or_else(|| tokenizer.eos_token_ids().first().copied())
        .unwrap_or(0)
}

fn load_model(path: &Path, device: Device, kind: Kind) -> anyhow::Result<LoadedModel> {
    load(path, device, kind).with_context(|| format!("loading model {}", path.display()))
}
