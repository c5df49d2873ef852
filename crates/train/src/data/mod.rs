//! Training data: token shards, the pre-training mixture with packing, and SFT examples with loss masks.
//!
//! Both stages produce [`Sequence`]s of `context_length + 1` tokens (inputs are the first `T`, targets the last
//! `T`), each token tagged with its document (segment) and whether it is a loss target. [`collate`] turns a
//! micro-batch of them into tensors, either packed (attention crosses documents, as the paper trains) or with
//! each document isolated in its own row (exactly block-diagonal attention with positions restarting per document).
//!
//! Streams are deterministic functions of the seed and expose their position as JSON, so a checkpoint can
//! resume the data exactly where it stopped.

pub mod pretrain;
pub mod sft;
pub mod shards;

use anyhow::Result;
use tch::{Device, Tensor};

/// Label value ignored by the loss (as in PyTorch / transformers).
pub const IGNORE_INDEX: i64 = -100;
/// Segment id of padding tokens.
pub const PAD_SEGMENT: u32 = u32::MAX;

/// One training row before collation: `T + 1` tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    /// Token ids (`T + 1`).
    pub tokens: Vec<u32>,
    /// Document index of each token inside the row; [`PAD_SEGMENT`] for padding.
    pub segments: Vec<u32>,
    /// Whether each token is a prediction target (false for SFT prompts and padding).
    pub targets: Vec<bool>,
}

impl Sequence {
    /// Number of target tokens that will carry loss (`isolate`: targets across a document boundary are dropped).
    pub fn target_count(&self, isolate: bool) -> usize {
        (0..self.tokens.len() - 1)
            .filter(|&i| self.label_kept(i, isolate))
            .count()
    }

    fn label_kept(&self, i: usize, isolate: bool) -> bool {
        let next = i + 1;
        self.targets[next]
            && self.segments[next] != PAD_SEGMENT
            && self.segments[i] != PAD_SEGMENT
            && (!isolate || self.segments[i] == self.segments[next])
    }
}

/// A stream of training sequences with a resumable position.
pub trait SequenceStream {
    /// The next sequence.
    fn next_sequence(&mut self) -> Result<Sequence>;
    /// The position (everything needed to continue identically), as JSON.
    fn position(&self) -> serde_json::Value;
    /// Restores a position from [`SequenceStream::position`].
    fn restore(&mut self, position: &serde_json::Value) -> Result<()>;
}

/// Tensors for one forward/backward pass.
#[derive(Debug)]
pub struct Batch {
    /// Input ids [B, T] i64.
    pub input_ids: Tensor,
    /// Targets [B, T] i64 ([`IGNORE_INDEX`] where no loss).
    pub labels: Tensor,
    /// 1 for tokens, 0 for padding [B, T]; `None` when no row has padding.
    pub attention_mask: Option<Tensor>,
    /// Number of non-ignored labels.
    pub target_tokens: i64,
    /// Number of non-padding input tokens (for throughput).
    pub input_tokens: i64,
}

impl Batch {
    /// Moves the tensors to `device`.
    pub fn to_device(&self, device: Device) -> Batch {
        Batch {
            input_ids: self.input_ids.to_device(device),
            labels: self.labels.to_device(device),
            attention_mask: self.attention_mask.as_ref().map(|m| m.to_device(device)),
            target_tokens: self.target_tokens,
            input_tokens: self.input_tokens,
        }
    }
}

/// Builds a batch from sequences. `isolate_documents`: each document of each sequence becomes its own
/// right-padded row, so attention never crosses a boundary and positions restart at 0 for each document (the
/// model derives positions from the mask) — exactly block-diagonal causal attention.
pub fn collate(sequences: &[Sequence], isolate_documents: bool) -> Batch {
    // Rows of (input ids, labels) before padding.
    let mut rows: Vec<(Vec<i64>, Vec<i64>)> = Vec::new();
    for seq in sequences {
        let t = seq.tokens.len() - 1;
        let label = |i: usize| {
            if seq.label_kept(i, isolate_documents) {
                seq.tokens[i + 1] as i64
            } else {
                IGNORE_INDEX
            }
        };
        if !isolate_documents {
            let ids = (0..t)
                .map(|i| {
                    if seq.segments[i] == PAD_SEGMENT {
                        0
                    } else {
                        seq.tokens[i] as i64
                    }
                })
                .collect();
            rows.push((ids, (0..t).map(label).collect()));
            continue;
        }
        let mut start = 0;
        while start < t {
            let segment = seq.segments[start];
            let mut end = start + 1;
            while end < t && seq.segments[end] == segment {
                end += 1;
            }
            if segment != PAD_SEGMENT {
                rows.push((
                    (start..end).map(|i| seq.tokens[i] as i64).collect(),
                    (start..end).map(label).collect(),
                ));
            }
            start = end;
        }
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(1).max(1);
    let width = if isolate_documents {
        width
    } else {
        sequences.first().map_or(width, |s| s.tokens.len() - 1)
    };
    let b = rows.len().max(1);
    let mut ids = vec![0i64; b * width];
    let mut labels = vec![IGNORE_INDEX; b * width];
    let mut mask = vec![0i64; b * width];
    for (r, (row_ids, row_labels)) in rows.iter().enumerate() {
        for (j, (&id, &lab)) in row_ids.iter().zip(row_labels).enumerate() {
            ids[r * width + j] = id;
            labels[r * width + j] = lab;
            mask[r * width + j] = 1;
        }
    }
    if !isolate_documents {
        for (r, seq) in sequences.iter().enumerate() {
            for j in 0..width {
                if seq.segments[j] == PAD_SEGMENT {
                    mask[r * width + j] = 0;
                }
            }
        }
    }
    let padded = mask.contains(&0);
    let target_tokens = labels.iter().filter(|&&l| l != IGNORE_INDEX).count() as i64;
    let input_tokens = mask.iter().sum();
    let shape = [b as i64, width as i64];
    Batch {
        input_ids: Tensor::from_slice(&ids).view(shape),
        labels: Tensor::from_slice(&labels).view(shape),
        attention_mask: padded.then(|| Tensor::from_slice(&mask).view(shape)),
        target_tokens,
        input_tokens,
    }
}

/// SplitMix64: a stateless, well-mixed hash for seeding per-item random choices.
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A deterministic seed for `(seed, tag, index)`.
pub(crate) fn derive_seed(seed: u64, tag: u64, index: u64) -> u64 {
    splitmix64(splitmix64(splitmix64(seed) ^ tag) ^ index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(tokens: &[u32], segments: &[u32], targets: &[bool]) -> Sequence {
        Sequence {
            tokens: tokens.to_vec(),
            segments: segments.to_vec(),
            targets: targets.to_vec(),
        }
    }

    #[test]
    fn packed_collation_shifts_labels_and_masks_padding() {
        let s = seq(&[5, 6, 7, 8, 9, 0], &[0, 0, 1, 1, PAD_SEGMENT, PAD_SEGMENT], &[true; 6]);
        let b = collate(&[s], false);
        assert_eq!(
            Vec::<i64>::try_from(b.input_ids.view([-1])).unwrap(),
            vec![5, 6, 7, 8, 0]
        );
        assert_eq!(
            Vec::<i64>::try_from(b.labels.view([-1])).unwrap(),
            vec![6, 7, 8, -100, -100]
        );
        assert_eq!(
            Vec::<i64>::try_from(b.attention_mask.unwrap().view([-1])).unwrap(),
            vec![1, 1, 1, 1, 0]
        );
        assert_eq!((b.target_tokens, b.input_tokens), (3, 4));
    }

    #[test]
    fn isolated_collation_puts_each_document_in_its_own_row() {
        let s = seq(&[5, 6, 7, 8, 9, 10], &[0, 0, 1, 1, 1, 2], &[true; 6]);
        let b = collate(std::slice::from_ref(&s), true);
        assert_eq!(b.input_ids.size(), vec![2, 3]);
        assert_eq!(
            Vec::<i64>::try_from(b.input_ids.view([-1])).unwrap(),
            vec![5, 6, 0, 7, 8, 9]
        );
        // 6→7 crosses a boundary, and so does 9→10: both dropped.
        assert_eq!(
            Vec::<i64>::try_from(b.labels.view([-1])).unwrap(),
            vec![6, -100, -100, 8, 9, -100]
        );
        assert_eq!(b.target_tokens as usize, s.target_count(true));
        assert_eq!(s.target_count(false), 5);
    }
}
