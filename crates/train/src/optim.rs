//! AdamW as the paper trains with it: β=(0.9, 0.95), decoupled weight decay on weight matrices only (never on
//! norms or biases), global-norm gradient clipping, and the fused multi-tensor kernel through seekmath-shim.
//!
//! Parameters are the model's f32 master weights; state (`exp_avg`, `exp_avg_sq`) is f32 too. Parameters are
//! ordered by name so that state files and the update order are stable across runs.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use tch::{nn::VarStore, Kind, Tensor};

/// AdamW hyper-parameters (the learning rate comes per step from the schedule).
#[derive(Debug, Clone, Copy)]
pub struct AdamWSettings {
    /// β1.
    pub beta1: f64,
    /// β2.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay for matrices.
    pub weight_decay: f64,
    /// Use the fused kernel.
    pub fused: bool,
}

struct Group {
    weight_decay: f64,
    names: Vec<String>,
    params: Vec<Tensor>,
    exp_avgs: Vec<Tensor>,
    exp_avg_sqs: Vec<Tensor>,
}

/// The optimizer.
pub struct AdamW {
    settings: AdamWSettings,
    groups: Vec<Group>,
    step: i64,
}

/// Whether a parameter gets weight decay: matrices (and embeddings) do; 1-D tensors (norm scales, biases) don't.
pub fn decays(name: &str, param: &Tensor) -> bool {
    param.dim() >= 2 && !name.contains("norm")
}

impl AdamW {
    /// Collects the trainable variables of `vs` into a decay and a no-decay group.
    pub fn new(vs: &VarStore, settings: AdamWSettings) -> Result<Self> {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        if vars.is_empty() {
            bail!("the model has no trainable parameters");
        }
        let mut groups = vec![
            Group {
                weight_decay: settings.weight_decay,
                names: vec![],
                params: vec![],
                exp_avgs: vec![],
                exp_avg_sqs: vec![],
            },
            Group {
                weight_decay: 0.0,
                names: vec![],
                params: vec![],
                exp_avgs: vec![],
                exp_avg_sqs: vec![],
            },
        ];
        for (name, param) in vars {
            if param.kind() != Kind::Float {
                bail!(
                    "parameter {name} is {:?}: training keeps f32 master weights (load the model in f32)",
                    param.kind()
                );
            }
            let g = &mut groups[if decays(&name, &param) { 0 } else { 1 }];
            g.exp_avgs.push(param.zeros_like());
            g.exp_avg_sqs.push(param.zeros_like());
            g.names.push(name);
            g.params.push(param);
        }
        Ok(Self {
            settings,
            groups,
            step: 0,
        })
    }

    /// Updates completed so far.
    pub fn step_count(&self) -> i64 {
        self.step
    }

    /// Names of the parameters that get weight decay.
    pub fn decayed_names(&self) -> &[String] {
        &self.groups[0].names
    }

    fn all_params(&self) -> impl Iterator<Item = &Tensor> {
        self.groups.iter().flat_map(|g| g.params.iter())
    }

    /// Clears gradients (sets them to zero, keeping the buffers).
    pub fn zero_grad(&self) {
        for p in self.all_params() {
            let mut grad = p.grad();
            if grad.defined() {
                let _ = grad.zero_();
            }
        }
    }

    /// Scales all gradients so their global L2 norm is at most `max_norm` (as `torch.nn.utils.clip_grad_norm_`:
    /// coefficient `max_norm / (norm + 1e-6)` clamped to 1). Returns the norm before clipping. `max_norm <= 0`
    /// only measures.
    pub fn clip_grad_norm(&self, max_norm: f64) -> f64 {
        let grads: Vec<Tensor> = self.all_params().map(|p| p.grad()).filter(|g| g.defined()).collect();
        if grads.is_empty() {
            return 0.0;
        }
        let norms: Vec<Tensor> = grads.iter().map(|g| g.norm().to_kind(Kind::Float)).collect();
        let total = Tensor::stack(&norms, 0).norm();
        if max_norm > 0.0 {
            let coef = ((&total + 1e-6).reciprocal() * max_norm).clamp_max(1.0);
            tch::no_grad(|| {
                for mut g in grads {
                    let _ = g.g_mul_(&coef);
                }
            });
        }
        total.double_value(&[])
    }

    /// One AdamW update with learning rate `lr`; parameters without a gradient are skipped (as PyTorch does).
    pub fn step(&mut self, lr: f64) -> Result<()> {
        self.step += 1;
        let s = self.settings;
        for group in &self.groups {
            let mut params = Vec::new();
            let mut grads = Vec::new();
            let mut exp_avgs = Vec::new();
            let mut exp_avg_sqs = Vec::new();
            for (i, p) in group.params.iter().enumerate() {
                let g = p.grad();
                if g.defined() {
                    params.push(p.shallow_clone());
                    grads.push(g);
                    exp_avgs.push(group.exp_avgs[i].shallow_clone());
                    exp_avg_sqs.push(group.exp_avg_sqs[i].shallow_clone());
                }
            }
            if params.is_empty() {
                continue;
            }
            if s.fused {
                seekmath_shim::fused_adamw(
                    &params,
                    &grads,
                    &exp_avgs,
                    &exp_avg_sqs,
                    self.step,
                    lr,
                    s.beta1,
                    s.beta2,
                    group.weight_decay,
                    s.eps,
                )
                .context("fused AdamW step")?;
            } else {
                tch::no_grad(|| {
                    reference_adamw(
                        &params,
                        &grads,
                        &exp_avgs,
                        &exp_avg_sqs,
                        self.step,
                        lr,
                        s,
                        group.weight_decay,
                    )
                });
            }
        }
        Ok(())
    }

    /// Optimizer state as named tensors (`exp_avg/<param>`, `exp_avg_sq/<param>`), for checkpoints.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for g in &self.groups {
            for (i, name) in g.names.iter().enumerate() {
                out.push((format!("exp_avg/{name}"), g.exp_avgs[i].shallow_clone()));
                out.push((format!("exp_avg_sq/{name}"), g.exp_avg_sqs[i].shallow_clone()));
            }
        }
        out
    }

    /// Restores state saved by [`AdamW::state_tensors`] and the update count.
    pub fn load_state(&mut self, tensors: Vec<(String, Tensor)>, step: i64) -> Result<()> {
        let mut by_name: HashMap<String, Tensor> = tensors.into_iter().collect();
        for g in &mut self.groups {
            for (i, name) in g.names.iter().enumerate() {
                for (prefix, target) in [("exp_avg", &mut g.exp_avgs[i]), ("exp_avg_sq", &mut g.exp_avg_sqs[i])] {
                    let key = format!("{prefix}/{name}");
                    let saved = by_name
                        .remove(&key)
                        .with_context(|| format!("optimizer state lacks {key}"))?;
                    if saved.size() != target.size() {
                        bail!(
                            "optimizer state {key} has shape {:?}, parameter {:?}",
                            saved.size(),
                            target.size()
                        );
                    }
                    tch::no_grad(|| target.copy_(&saved));
                }
            }
        }
        if let Some(extra) = by_name.keys().next() {
            bail!("optimizer state has an entry {extra} for no parameter of this model");
        }
        self.step = step;
        Ok(())
    }
}

/// PyTorch's single-tensor AdamW written out (used when `fused = false`).
#[allow(clippy::too_many_arguments)]
fn reference_adamw(
    params: &[Tensor],
    grads: &[Tensor],
    exp_avgs: &[Tensor],
    exp_avg_sqs: &[Tensor],
    step: i64,
    lr: f64,
    s: AdamWSettings,
    weight_decay: f64,
) {
    let bias1 = 1.0 - s.beta1.powi(step as i32);
    let bias2_sqrt = (1.0 - s.beta2.powi(step as i32)).sqrt();
    for i in 0..params.len() {
        let (mut p, g, mut m, mut v) = (
            params[i].shallow_clone(),
            &grads[i],
            exp_avgs[i].shallow_clone(),
            exp_avg_sqs[i].shallow_clone(),
        );
        let _ = p.g_mul_scalar_(1.0 - lr * weight_decay);
        let _ = m.lerp_(g, 1.0 - s.beta1);
        let _ = v.g_mul_scalar_(s.beta2);
        let _ = v.g_add_(&(g * g * (1.0 - s.beta2)));
        let denom = v.sqrt() / bias2_sqrt + s.eps;
        let _ = p.g_sub_(&(&m / &denom * (lr / bias1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn store() -> VarStore {
        tch::manual_seed(3);
        let vs = VarStore::new(Device::Cpu);
        let root = vs.root();
        let _ = root.randn("mlp_weight", &[6, 4], 0.0, 1.0);
        let _ = root.randn("input_layernorm_weight", &[4], 0.0, 1.0);
        let _ = root.randn("bias", &[6], 0.0, 1.0);
        vs
    }

    fn loss(vs: &VarStore) -> Tensor {
        let v = vs.variables();
        let x = Tensor::arange(4, (Kind::Float, Device::Cpu)) / 4.0;
        let h = (&x * &v["input_layernorm_weight"])
            .unsqueeze(0)
            .matmul(&v["mlp_weight"].tr());
        (h + &v["bias"]).tanh().sum(Kind::Float)
    }

    #[test]
    fn decay_only_on_matrices() {
        let vs = store();
        let opt = AdamW::new(
            &vs,
            AdamWSettings {
                beta1: 0.9,
                beta2: 0.95,
                eps: 1e-8,
                weight_decay: 0.1,
                fused: true,
            },
        )
        .unwrap();
        assert_eq!(opt.decayed_names(), ["mlp_weight"]);
    }

    #[test]
    fn fused_and_reference_updates_agree_and_clipping_caps_the_norm() {
        let settings = AdamWSettings {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            fused: true,
        };
        let (a, b) = (store(), store());
        let mut fa = AdamW::new(&a, settings).unwrap();
        let mut fb = AdamW::new(
            &b,
            AdamWSettings {
                fused: false,
                ..settings
            },
        )
        .unwrap();
        for _ in 0..4 {
            for (vs, opt) in [(&a, &mut fa), (&b, &mut fb)] {
                opt.zero_grad();
                loss(vs).backward();
                let before = opt.clip_grad_norm(0.5);
                assert!(before > 0.5, "test gradients should need clipping");
                assert!((opt.clip_grad_norm(0.0) - 0.5).abs() < 1e-5, "norm after clipping");
                opt.step(1e-2).unwrap();
            }
        }
        for (name, t) in a.variables() {
            let diff = (&t - &b.variables()[&name]).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "{name}: fused vs reference differ by {diff:e}");
        }
        // State round-trips through the named-tensor form.
        let saved = fa.state_tensors().into_iter().map(|(n, t)| (n, t.copy())).collect();
        let mut fresh = AdamW::new(&a, settings).unwrap();
        fresh.load_state(saved, fa.step_count()).unwrap();
        assert_eq!(fresh.step_count(), 4);
    }
}
