//! One optimizer step: forward/backward over the micro-batches (gradient accumulation), global-norm clipping,
//! and the AdamW update. Kept apart from the run loop so that parity tests can drive exactly one step.

use crate::data::{Batch, IGNORE_INDEX};
use crate::optim::AdamW;
use anyhow::Result;
use seekmath_model::CausalLm;
use seekmath_shim::AutocastGuard;
use tch::{Device, Kind, Reduction, Tensor};

/// What one step measured.
#[derive(Debug, Clone, Copy)]
pub struct StepStats {
    /// Mean cross-entropy over all target tokens of the step.
    pub loss: f64,
    /// Global gradient L2 norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Non-padding input tokens processed.
    pub input_tokens: i64,
    /// Target tokens that carried loss.
    pub target_tokens: i64,
}

/// Summed token cross-entropy in f32 (labels equal to [`IGNORE_INDEX`] contribute nothing).
pub fn lm_loss_sum(logits: &Tensor, labels: &Tensor) -> Tensor {
    let vocab = *logits.size().last().expect("logits [B,T,V]");
    logits
        .to_kind(Kind::Float)
        .view([-1, vocab])
        .cross_entropy_loss::<Tensor>(&labels.view([-1]), None, Reduction::Sum, IGNORE_INDEX, 0.0)
}

/// Forward pass producing logits, under bf16 autocast when `autocast` is set.
pub fn forward(model: &CausalLm, batch: &Batch, autocast: Option<Kind>) -> Result<Tensor> {
    let _guard = match autocast {
        Some(kind) => Some(AutocastGuard::new(batch.input_ids.device(), kind)?),
        None => None,
    };
    Ok(model.forward(&batch.input_ids, batch.attention_mask.as_ref()))
}

/// How a step runs, apart from its data.
#[derive(Debug, Clone, Copy)]
pub struct StepSettings {
    /// Learning rate.
    pub lr: f64,
    /// Global-norm clipping threshold (≤ 0: off).
    pub grad_clip: f64,
    /// Where the batches go.
    pub device: Device,
    /// Autocast kind (bf16 on GPU), None for plain f32.
    pub autocast: Option<Kind>,
    /// Recompute each decoder layer in the backward pass ([`CausalLm::backward_checkpointed`]).
    pub activation_checkpointing: bool,
}

/// Runs forward+backward over `micro_batches` (the loss is the mean over *all* their target tokens, so
/// accumulation equals one big batch), clips, and applies AdamW.
pub fn train_step(
    model: &CausalLm,
    optimizer: &mut AdamW,
    micro_batches: &[Batch],
    settings: &StepSettings,
) -> Result<StepStats> {
    let target_tokens: i64 = micro_batches.iter().map(|b| b.target_tokens).sum();
    let input_tokens: i64 = micro_batches.iter().map(|b| b.input_tokens).sum();
    optimizer.zero_grad();
    let mut loss_total = Tensor::zeros([], (Kind::Float, settings.device));
    for batch in micro_batches {
        let batch = batch.to_device(settings.device);
        let scale = target_tokens.max(1) as f64;
        let loss = if settings.activation_checkpointing {
            let _guard = match settings.autocast {
                Some(kind) => Some(AutocastGuard::new(settings.device, kind)?),
                None => None,
            };
            model.backward_checkpointed(&batch.input_ids, batch.attention_mask.as_ref(), |hidden| {
                lm_loss_sum(&model.logits(hidden), &batch.labels) / scale
            })
        } else {
            let logits = forward(model, &batch, settings.autocast)?;
            let loss = lm_loss_sum(&logits, &batch.labels) / scale;
            loss.backward();
            loss.detach()
        };
        loss_total += loss;
    }
    let grad_norm = optimizer.clip_grad_norm(settings.grad_clip);
    optimizer.step(settings.lr)?;
    Ok(StepStats {
        loss: loss_total.double_value(&[]),
        grad_norm,
        lr: settings.lr,
        input_tokens,
        target_tokens,
    })
}

/// Mean held-out loss over `batches` (no gradients).
pub fn eval_loss(model: &CausalLm, batches: &[Batch], device: Device, autocast: Option<Kind>) -> Result<f64> {
    let mut sum = 0.0;
    let mut count = 0i64;
    for batch in batches {
        let batch = batch.to_device(device);
        let loss = tch::no_grad(|| -> Result<f64> {
            let logits = forward(model, &batch, autocast)?;
            Ok(lm_loss_sum(&logits, &batch.labels).double_value(&[]))
        })?;
        sum += loss;
        count += batch.target_tokens;
    }
    Ok(if count > 0 { sum / count as f64 } else { f64::NAN })
}
