//! AdamW over a `VarStore` with state we own, so checkpoints can save and restore it exactly.
//!
//! The update itself is the shim's fused kernel (`torch.optim.AdamW(fused=True)` semantics); tch's own optimiser
//! does not expose its moments, which would make `--resume` silently restart Adam from zero.

use std::path::Path;

use anyhow::Context;
use tch::{nn::VarStore, Kind, Tensor};

/// AdamW moments and step count for every trainable variable, in a fixed (name-sorted) order.
pub struct AdamW {
    names: Vec<String>,
    params: Vec<Tensor>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
    /// Updates done so far.
    pub step: i64,
}

impl AdamW {
    /// Fresh state (zero moments) for the trainable variables of `vs`.
    pub fn new(vs: &VarStore) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let exp_avg = vars.iter().map(|(_, t)| t.zeros_like().detach()).collect();
        let exp_avg_sq = vars.iter().map(|(_, t)| t.zeros_like().detach()).collect();
        let (names, params) = vars.into_iter().unzip();
        Self {
            names,
            params,
            exp_avg,
            exp_avg_sq,
            step: 0,
        }
    }

    /// Zeroes all gradients.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    /// Global L2 norm of the gradients; scales them to `max_norm` when above it (`max_norm` ≤ 0: no clipping).
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        let _guard = tch::no_grad_guard();
        let grads: Vec<Tensor> = self.params.iter().map(|p| p.grad()).filter(|g| g.defined()).collect();
        if grads.is_empty() {
            return 0.0;
        }
        let sq: Vec<Tensor> = grads
            .iter()
            .map(|g| g.to_kind(Kind::Float).square().sum(Kind::Float))
            .collect();
        let norm = Tensor::stack(&sq, 0).sum(Kind::Float).sqrt().double_value(&[]);
        if max_norm > 0.0 && norm > max_norm {
            let scale = max_norm / (norm + 1e-6);
            for mut g in grads {
                let _ = g.g_mul_scalar_(scale);
            }
        }
        norm
    }

    /// One AdamW update with the current gradients (missing gradients count as zero).
    pub fn update(&mut self, lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> anyhow::Result<()> {
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let grads: Vec<Tensor> = self
            .params
            .iter()
            .map(|p| if p.grad().defined() { p.grad() } else { p.zeros_like() })
            .collect();
        seekmath_shim::fused_adamw(
            &self.params,
            &grads,
            &self.exp_avg,
            &self.exp_avg_sq,
            self.step,
            lr,
            beta1,
            beta2,
            weight_decay,
            eps,
        )
        .map_err(|e| anyhow::anyhow!("fused AdamW step: {e}"))
    }

    /// Writes the moments and the step count to a safetensors file.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let mut named: Vec<(String, Tensor)> = Vec::with_capacity(2 * self.names.len() + 1);
        for (i, n) in self.names.iter().enumerate() {
            named.push((format!("exp_avg.{n}"), self.exp_avg[i].shallow_clone()));
            named.push((format!("exp_avg_sq.{n}"), self.exp_avg_sq[i].shallow_clone()));
        }
        named.push(("step".into(), Tensor::from_slice(&[self.step])));
        Tensor::write_safetensors(&named, path).with_context(|| format!("writing {}", path.display()))
    }

    /// Restores moments and step count written by [`AdamW::save`]; every variable must be present.
    pub fn load(&mut self, path: &Path) -> anyhow::Result<()> {
        let loaded: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(path)
            .with_context(|| format!("reading {}", path.display()))?
            .into_iter()
            .collect();
        let _guard = tch::no_grad_guard();
        for (i, n) in self.names.iter().enumerate() {
            for (prefix, dst) in [
                ("exp_avg", &mut self.exp_avg[i]),
                ("exp_avg_sq", &mut self.exp_avg_sq[i]),
            ] {
                let src = loaded
                    .get(&format!("{prefix}.{n}"))
                    .with_context(|| format!("{}: missing {prefix}.{n}", path.display()))?;
                dst.copy_(src);
            }
        }
        self.step = loaded
            .get("step")
            .with_context(|| format!("{}: missing step", path.display()))?
            .int64_value(&[0]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device};

    #[test]
    fn matches_hand_computed_adamw_and_round_trips() {
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[2], nn::Init::Const(1.0));
        let mut opt = AdamW::new(&vs);
        let loss = (&w * Tensor::from_slice(&[2.0f32, -4.0])).sum(Kind::Float);
        loss.backward();
        opt.update(0.1, 0.9, 0.999, 1e-8, 0.0).unwrap();
        // First Adam step moves each weight by −lr·sign(grad).
        let got: Vec<f32> = Vec::try_from(&w.detach()).unwrap();
        assert!((got[0] - 0.9).abs() < 1e-5 && (got[1] - 1.1).abs() < 1e-5, "{got:?}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("adam.safetensors");
        opt.save(&path).unwrap();
        let mut fresh = AdamW::new(&vs);
        fresh.load(&path).unwrap();
        assert_eq!(fresh.step, 1);
        assert!(fresh.exp_avg[0].allclose(&opt.exp_avg[0], 0.0, 0.0, false));
    }

    #[test]
    fn clipping_scales_to_max_norm() {
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[2], nn::Init::Const(0.0));
        let mut opt = AdamW::new(&vs);
        (&w * Tensor::from_slice(&[3.0f32, 4.0])).sum(Kind::Float).backward();
        let norm = opt.clip_grad_norm(1.0);
        assert!((norm - 5.0).abs() < 1e-5);
        let g: Vec<f32> = Vec::try_from(&w.grad()).unwrap();
        assert!((g[0] - 0.6).abs() < 1e-4 && (g[1] - 0.8).abs() < 1e-4);
    }
}
