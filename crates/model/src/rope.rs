//! Rotary position embeddings with transformers' frequency schemes (default, linear, dynamic NTK, Llama 3, YaRN).
//!
//! Frequencies and angles are computed in f32 exactly as transformers does, then cast to the activation kind.

use anyhow::Result;
use tch::{Device, Kind, Tensor};

use crate::config::{ModelConfig, RopeKind};

/// Precomputed inverse frequencies plus what is needed to rescale them (dynamic NTK).
#[derive(Debug)]
pub struct Rope {
    inv_freq: Tensor,
    attention_scaling: f64,
    kind: RopeKind,
    theta: f64,
    head_dim: usize,
}

/// `1 / theta^(2i/d)` for i in 0..d/2, in f64 on the host.
fn base_inv_freq(theta: f64, dim: usize) -> Vec<f64> {
    (0..dim / 2)
        .map(|i| 1.0 / theta.powf((2 * i) as f64 / dim as f64))
        .collect()
}

/// Inverse frequencies and cos/sin multiplier of a scheme (at sequence length `seq_len` for dynamic NTK).
fn inv_freq_for(kind: &RopeKind, theta: f64, dim: usize, seq_len: usize) -> (Vec<f64>, f64) {
    let two_pi = 2.0 * std::f64::consts::PI;
    match *kind {
        RopeKind::Default => (base_inv_freq(theta, dim), 1.0),
        RopeKind::Linear { factor } => (base_inv_freq(theta, dim).iter().map(|f| f / factor).collect(), 1.0),
        RopeKind::Dynamic { factor, original_max } => {
            if seq_len <= original_max {
                return (base_inv_freq(theta, dim), 1.0);
            }
            let scaled = factor * seq_len as f64 / original_max as f64 - (factor - 1.0);
            let base = theta * scaled.powf(dim as f64 / (dim as f64 - 2.0));
            (base_inv_freq(base, dim), 1.0)
        }
        RopeKind::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max,
        } => {
            let low_freq_wavelen = original_max as f64 / low_freq_factor;
            let high_freq_wavelen = original_max as f64 / high_freq_factor;
            let freqs = base_inv_freq(theta, dim)
                .into_iter()
                .map(|f| {
                    let wavelen = two_pi / f;
                    if wavelen > low_freq_wavelen {
                        f / factor
                    } else if wavelen < high_freq_wavelen {
                        f
                    } else {
                        let smooth =
                            (original_max as f64 / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect();
            (freqs, 1.0)
        }
        RopeKind::Yarn {
            factor,
            original_max,
            attention_factor,
            beta_fast,
            beta_slow,
            truncate,
        } => {
            let d = dim as f64;
            let correction_dim =
                |rotations: f64| d * (original_max as f64 / (rotations * two_pi)).ln() / (2.0 * theta.ln());
            let (mut low, mut high) = (correction_dim(beta_fast), correction_dim(beta_slow));
            if truncate {
                low = low.floor();
                high = high.ceil();
            }
            let (low, high) = (low.max(0.0), high.min(d - 1.0));
            let high = if low == high { high + 0.001 } else { high };
            let freqs = base_inv_freq(theta, dim)
                .into_iter()
                .enumerate()
                .map(|(i, extrapolation)| {
                    let ramp = ((i as f64 - low) / (high - low)).clamp(0.0, 1.0);
                    let extrapolation_factor = 1.0 - ramp;
                    let interpolation = extrapolation / factor;
                    interpolation * (1.0 - extrapolation_factor) + extrapolation * extrapolation_factor
                })
                .collect();
            (freqs, attention_factor)
        }
    }
}

impl Rope {
    /// Tables for `cfg` on `device`.
    pub fn new(cfg: &ModelConfig, device: Device) -> Result<Self> {
        let kind = cfg.rope_kind()?;
        let (theta, head_dim) = (cfg.rope_theta(), cfg.head_dim());
        let (freqs, attention_scaling) = inv_freq_for(&kind, theta, head_dim, 0);
        Ok(Rope {
            inv_freq: to_f32_tensor(&freqs, device),
            attention_scaling,
            kind,
            theta,
            head_dim,
        })
    }

    /// The inverse frequencies [head_dim/2] (f32), as transformers' `inv_freq` buffer.
    pub fn inv_freq(&self) -> &Tensor {
        &self.inv_freq
    }

    /// cos and sin [B,1,T,head_dim] for `positions` [B,T], in `kind`.
    pub fn cos_sin(&self, positions: &Tensor, kind: Kind) -> (Tensor, Tensor) {
        let dynamic;
        let inv_freq = match self.kind {
            RopeKind::Dynamic { original_max, .. } => {
                // transformers grows the base once the longest position exceeds the pre-training length.
                let seq_len = (positions.max().int64_value(&[]) + 1).max(0) as usize;
                if seq_len <= original_max {
                    &self.inv_freq
                } else {
                    let (freqs, _) = inv_freq_for(&self.kind, self.theta, self.head_dim, seq_len);
                    dynamic = to_f32_tensor(&freqs, self.inv_freq.device());
                    &dynamic
                }
            }
            _ => &self.inv_freq,
        };
        let freqs = positions.to_kind(Kind::Float).unsqueeze(-1) * inv_freq.to_device(positions.device());
        let emb = Tensor::cat(&[&freqs, &freqs], -1).unsqueeze(1);
        let (mut cos, mut sin) = (emb.cos(), emb.sin());
        if self.attention_scaling != 1.0 {
            cos = cos * self.attention_scaling;
            sin = sin * self.attention_scaling;
        }
        (cos.to_kind(kind), sin.to_kind(kind))
    }
}

/// transformers computes `inv_freq` in f32 arithmetic; computing in f64 then rounding differs by ≤ 1 ulp.
fn to_f32_tensor(values: &[f64], device: Device) -> Tensor {
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    Tensor::from_slice(&v).to_device(device)
}
