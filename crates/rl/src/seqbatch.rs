//! Padded `prompt ‖ completion` batches and their per-token log-probabilities, shared by the §5.2 trainers.
//!
//! Layout: position `t` of the `[B, T−1]` tensors scores token `t + 1` (the logit at `t` predicts it), so a
//! completion token `j` sits at shifted position `j − 1`. Logits are only materialised at completion positions.

use seekmath_model::CausalLm;
use tch::{Device, Kind, Tensor};

/// One training sequence: token ids and where its completion starts.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TokenSequence {
    /// `prompt ‖ completion` ids.
    pub ids: Vec<i64>,
    /// Number of prompt tokens (≥ 1).
    pub prompt_len: usize,
}

impl TokenSequence {
    /// Builds a sequence from prompt and completion token ids.
    pub fn new(prompt: &[u32], completion: &[u32]) -> Self {
        Self {
            ids: prompt.iter().chain(completion).map(|&t| t as i64).collect(),
            prompt_len: prompt.len(),
        }
    }

    /// Number of completion tokens.
    pub fn completion_len(&self) -> usize {
        self.ids.len() - self.prompt_len
    }
}

/// A right-padded batch in the shifted layout.
pub struct TokenBatch {
    /// `[B, T]` ids.
    pub input_ids: Tensor,
    /// `[B, T]` 1 for tokens, 0 for padding.
    pub attention: Tensor,
    /// `[B, T−1]` the token each position predicts.
    pub targets: Tensor,
    /// `[B, T−1]` bool: completion positions.
    pub scored: Tensor,
    /// `[B, T−1]` float: completion positions as 1.0.
    pub mask: Tensor,
}

impl TokenBatch {
    /// Pads `seqs` with `pad` and moves them to `device`.
    pub fn new(seqs: &[&TokenSequence], pad: i64, device: Device) -> anyhow::Result<Self> {
        anyhow::ensure!(!seqs.is_empty(), "empty batch");
        let t = seqs.iter().map(|s| s.ids.len()).max().unwrap_or(2).max(2);
        let b = seqs.len();
        let mut ids = vec![pad; b * t];
        let mut attn = vec![0i64; b * t];
        let mut scored = vec![0u8; b * (t - 1)];
        for (r, s) in seqs.iter().enumerate() {
            anyhow::ensure!(s.prompt_len >= 1, "a sequence needs at least one prompt token");
            ids[r * t..r * t + s.ids.len()].copy_from_slice(&s.ids);
            attn[r * t..r * t + s.ids.len()].fill(1);
            for j in s.prompt_len..s.ids.len() {
                scored[r * (t - 1) + j - 1] = 1;
            }
        }
        let input_ids = Tensor::from_slice(&ids).view([b as i64, t as i64]).to_device(device);
        let scored = Tensor::from_slice(&scored)
            .view([b as i64, t as i64 - 1])
            .to_kind(Kind::Bool)
            .to_device(device);
        Ok(Self {
            targets: input_ids.narrow(1, 1, t as i64 - 1),
            attention: Tensor::from_slice(&attn).view([b as i64, t as i64]).to_device(device),
            mask: scored.to_kind(Kind::Float),
            scored,
            input_ids,
        })
    }

    /// Values of a per-completion-token list laid out in the shifted `[B, T−1]` layout (zeros elsewhere).
    pub fn spread(&self, seqs: &[&TokenSequence], per_token: &[Vec<f64>]) -> Tensor {
        let (b, tm1) = (self.scored.size()[0], self.scored.size()[1]);
        let mut out = vec![0f32; (b * tm1) as usize];
        for (r, (s, v)) in seqs.iter().zip(per_token).enumerate() {
            for (k, x) in v.iter().enumerate().take(s.completion_len()) {
                out[r * tm1 as usize + s.prompt_len - 1 + k] = *x as f32;
            }
        }
        Tensor::from_slice(&out).view([b, tm1]).to_device(self.mask.device())
    }
}

/// Runs `f` under bf16 (or other) autocast when `autocast` is set.
pub fn with_autocast<T>(device: Device, autocast: Option<Kind>, f: impl FnOnce() -> T) -> anyhow::Result<T> {
    let _guard = match autocast {
        Some(kind) => Some(seekmath_shim::AutocastGuard::new(device, kind).map_err(|e| anyhow::anyhow!("{e}"))?),
        None => None,
    };
    Ok(f())
}

/// `log π(token)` at completion positions, `[B, T−1]` float32 with zeros elsewhere (autograd-friendly).
pub fn token_logprobs(
    model: &CausalLm,
    batch: &TokenBatch,
    temperature: f64,
    autocast: Option<Kind>,
) -> anyhow::Result<Tensor> {
    let logits = with_autocast(batch.input_ids.device(), autocast, || {
        let hidden = model.forward_hidden(&batch.input_ids, Some(&batch.attention));
        let t = hidden.size()[1];
        model.logits(&hidden.narrow(1, 0, t - 1).index(&[Some(&batch.scored)]))
    })?;
    let mut logits = logits.to_kind(Kind::Float);
    if temperature > 0.0 && temperature != 1.0 {
        logits = logits / temperature;
    }
    let targets = batch.targets.index(&[Some(&batch.scored)]);
    let logp = logits
        .log_softmax(-1, Kind::Float)
        .gather(-1, &targets.unsqueeze(-1), false)
        .squeeze_dim(-1);
    Ok(Tensor::zeros(batch.scored.size(), (Kind::Float, logp.device())).masked_scatter(&batch.scored, &logp))
}

/// Completion-token lists (per sequence) from a `[B, T−1]` tensor in the shifted layout.
pub fn gather_completion(seqs: &[&TokenSequence], values: &Tensor) -> anyhow::Result<Vec<Vec<f64>>> {
    let tm1 = values.size()[1] as usize;
    let flat: Vec<f64> = Vec::try_from(values.to_kind(Kind::Double).to_device(Device::Cpu).flatten(0, -1))?;
    Ok(seqs
        .iter()
        .enumerate()
        .map(|(r, s)| {
            let start = r * tm1 + s.prompt_len - 1;
            flat[start..start + s.completion_len()].to_vec()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_spread_and_gather_round_trip() {
        let a = TokenSequence::new(&[5, 6], &[7, 8, 9]);
        let b = TokenSequence::new(&[5], &[4]);
        let seqs = [&a, &b];
        let batch = TokenBatch::new(&seqs, 0, Device::Cpu).unwrap();
        assert_eq!(batch.scored.size(), vec![2, 4]);
        let m: Vec<f32> = Vec::try_from(batch.mask.flatten(0, -1)).unwrap();
        assert_eq!(m, vec![0., 1., 1., 1., 1., 0., 0., 0.]);
        let t: Vec<i64> = Vec::try_from(batch.targets.flatten(0, -1)).unwrap();
        assert_eq!(&t[1..4], &[7, 8, 9]);
        let per = vec![vec![1.0, 2.0, 3.0], vec![4.0]];
        let spread = batch.spread(&seqs, &per);
        assert_eq!(gather_completion(&seqs, &spread).unwrap(), per);
    }
}
