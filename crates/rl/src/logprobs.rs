//! Per-token log-probabilities and entropies from logits.
//!
//! Every policy-gradient quantity in this crate (importance ratios, the KL penalty, the policy loss) is built from
//! `log π(o_t | q, o_<t)` of the tokens that were actually sampled. The log-softmax is taken in float32 even for
//! bf16 models: the ratio `exp(logπ − logπ_old)` amplifies rounding error, and TRL/verl do the same.

use tch::{Kind, Tensor};

/// Log-probabilities of `targets` under `logits / temperature`.
///
/// `logits` is `[B, T, V]` (position `t` predicts `targets[:, t]`, i.e. already shifted); `targets` is `[B, T]`
/// (int64). Returns `[B, T]` float32. A temperature other than 1 makes the scored policy the same tempered
/// distribution that generated the samples, as TRL's GRPOTrainer and verl do.
pub fn token_logprobs(logits: &Tensor, targets: &Tensor, temperature: f64) -> Tensor {
    let logits = scaled_f32(logits, temperature);
    logits
        .log_softmax(-1, Kind::Float)
        .gather(-1, &targets.unsqueeze(-1), false)
        .squeeze_dim(-1)
}

/// Entropy of the next-token distribution at each position, `[B, T, V] -> [B, T]` float32 (for metrics).
pub fn token_entropy(logits: &Tensor, temperature: f64) -> Tensor {
    let logits = scaled_f32(logits, temperature);
    let logp = logits.log_softmax(-1, Kind::Float);
    -(logp.exp() * &logp).sum_dim_intlist(-1, false, Kind::Float)
}

/// Log-probabilities of the completion tokens of full `prompt ‖ completion` sequences.
///
/// `logits` is the model output for `input_ids` `[B, P + C]`; the completion occupies the last `C` positions.
/// The logit at position `i` predicts token `i + 1`, so positions `P-1 .. P+C-1` are scored. Returns `[B, C]`.
pub fn completion_logprobs(logits: &Tensor, input_ids: &Tensor, completion_len: i64, temperature: f64) -> Tensor {
    let total = input_ids.size()[1];
    let start = total - completion_len;
    let scoring = logits.narrow(1, start - 1, completion_len);
    let targets = input_ids.narrow(1, start, completion_len);
    token_logprobs(&scoring, &targets, temperature)
}

fn scaled_f32(logits: &Tensor, temperature: f64) -> Tensor {
    let logits = logits.to_kind(Kind::Float);
    if (temperature - 1.0).abs() > 0.0 && temperature > 0.0 {
        logits / temperature
    } else {
        logits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprobs_match_manual_softmax() {
        let logits = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 0.5, 0.5, 0.5]).reshape([1, 2, 3]);
        let targets = Tensor::from_slice(&[2i64, 0]).reshape([1, 2]);
        let lp = token_logprobs(&logits, &targets, 1.0);
        let got: Vec<f32> = Vec::try_from(lp.flatten(0, -1)).unwrap();
        let z: f32 = (1f32.exp() + 2f32.exp() + 3f32.exp()).ln();
        assert!((got[0] - (3.0 - z)).abs() < 1e-6);
        assert!((got[1] - (1.0f32 / 3.0).ln()).abs() < 1e-6);
        // Temperature 2 halves the logits.
        let lp2 = token_logprobs(&logits, &targets, 2.0);
        let got2: Vec<f32> = Vec::try_from(lp2.flatten(0, -1)).unwrap();
        let z2: f32 = (0.5f32.exp() + 1f32.exp() + 1.5f32.exp()).ln();
        assert!((got2[0] - (1.5 - z2)).abs() < 1e-6);
    }

    #[test]
    fn entropy_of_uniform_is_log_v() {
        let logits = Tensor::zeros([2, 3, 5], (Kind::Float, tch::Device::Cpu));
        let h = token_entropy(&logits, 1.0);
        let got: Vec<f32> = Vec::try_from(h.flatten(0, -1)).unwrap();
        for v in got {
            assert!((v - 5f32.ln()).abs() < 1e-6);
        }
    }

    #[test]
    fn completion_positions_are_shifted_by_one() {
        // Vocabulary 4; logits at position i put all mass on token (i + 1) % 4.
        let t = 5;
        let mut data = vec![-30.0f32; t * 4];
        for i in 0..t {
            data[i * 4 + (i + 1) % 4] = 30.0;
        }
        let logits = Tensor::from_slice(&data).reshape([1, t as i64, 4]);
        let ids = Tensor::from_slice(&[0i64, 1, 2, 3, 0]).reshape([1, 5]);
        let lp = completion_logprobs(&logits, &ids, 2, 1.0);
        let got: Vec<f32> = Vec::try_from(lp.flatten(0, -1)).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|v| v.abs() < 1e-6), "{got:?}");
    }
}
