//! ggml tensor encodings and their dequantisation to f32.
//!
//! Each block format is decoded exactly as ggml's reference (`dequantize_row_*`) does, in f32 with the same
//! operation order, so that the values equal those of llama.cpp's `gguf` Python package bit for bit.

use anyhow::{bail, ensure, Result};
use half::{bf16, f16};

/// Elements per block in the k-quant formats.
const QK_K: usize = 256;

/// A ggml element encoding, as stored in a GGUF tensor info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types, missing_docs)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    MXFP4,
}

impl GgmlType {
    /// The type for a ggml type id.
    pub fn from_id(id: u32) -> Result<Self> {
        use GgmlType::*;
        Ok(match id {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            9 => Q8_1,
            10 => Q2_K,
            11 => Q3_K,
            12 => Q4_K,
            13 => Q5_K,
            14 => Q6_K,
            15 => Q8_K,
            16 => IQ2_XXS,
            17 => IQ2_XS,
            18 => IQ3_XXS,
            19 => IQ1_S,
            20 => IQ4_NL,
            21 => IQ3_S,
            22 => IQ2_S,
            23 => IQ4_XS,
            24 => I8,
            25 => I16,
            26 => I32,
            27 => I64,
            28 => F64,
            29 => IQ1_M,
            30 => BF16,
            34 => TQ1_0,
            35 => TQ2_0,
            39 => MXFP4,
            other => bail!("unknown ggml type id {other}"),
        })
    }

    /// (elements per block, bytes per block).
    pub fn block_layout(self) -> (usize, usize) {
        use GgmlType::*;
        match self {
            F32 | I32 => (1, 4),
            F16 | BF16 | I16 => (1, 2),
            I8 => (1, 1),
            I64 | F64 => (1, 8),
            Q4_0 | IQ4_NL => (32, 18),
            Q4_1 => (32, 20),
            Q5_0 => (32, 22),
            Q5_1 => (32, 24),
            Q8_0 => (32, 34),
            Q8_1 => (32, 40),
            MXFP4 => (32, 17),
            Q2_K => (QK_K, 84),
            Q3_K => (QK_K, 110),
            Q4_K => (QK_K, 144),
            Q5_K => (QK_K, 176),
            Q6_K => (QK_K, 210),
            Q8_K => (QK_K, 292),
            IQ2_XXS => (QK_K, 66),
            IQ2_XS => (QK_K, 74),
            IQ3_XXS => (QK_K, 98),
            IQ1_S => (QK_K, 50),
            IQ3_S => (QK_K, 110),
            IQ2_S => (QK_K, 82),
            IQ4_XS => (QK_K, 136),
            IQ1_M => (QK_K, 56),
            TQ1_0 => (QK_K, 54),
            TQ2_0 => (QK_K, 66),
        }
    }

    /// Bytes that `numel` elements of this type occupy; an error if `numel` is not a whole number of blocks.
    pub fn byte_len(self, numel: u64) -> Result<u64> {
        let (block, bytes) = self.block_layout();
        ensure!(
            numel % block as u64 == 0,
            "{numel} elements is not a multiple of the {self:?} block size {block}"
        );
        numel
            .checked_div(block as u64)
            .and_then(|b| b.checked_mul(bytes as u64))
            .ok_or_else(|| anyhow::anyhow!("{numel} elements of {self:?} overflow"))
    }

    /// Whether [`GgmlType::dequantize`] can decode this type.
    pub fn is_supported(self) -> bool {
        use GgmlType::*;
        matches!(
            self,
            F32 | F16 | BF16 | F64 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q4_K | Q5_K | Q6_K
        )
    }

    /// Decodes `numel` elements from `bytes` (exactly [`GgmlType::byte_len`] long) to f32.
    pub fn dequantize(self, bytes: &[u8], numel: usize) -> Result<Vec<f32>> {
        use GgmlType::*;
        let expected = self.byte_len(numel as u64)? as usize;
        ensure!(
            bytes.len() == expected,
            "{self:?}: {} bytes for {numel} elements, expected {expected}",
            bytes.len()
        );
        let (block, block_bytes) = self.block_layout();
        let decode: fn(&[u8], &mut [f32]) = match self {
            F32 => |b, out| out[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            F16 => |b, out| out[0] = f16_at(b, 0),
            BF16 => |b, out| out[0] = bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32(),
            F64 => |b, out| out[0] = f64::from_le_bytes(b[..8].try_into().expect("8 bytes")) as f32,
            Q4_0 => block_q4_0,
            Q4_1 => block_q4_1,
            Q5_0 => block_q5_0,
            Q5_1 => block_q5_1,
            Q8_0 => block_q8_0,
            Q4_K => block_q4_k,
            Q5_K => block_q5_k,
            Q6_K => block_q6_k,
            other => bail!("cannot dequantise ggml type {other:?} (supported: F32 F16 BF16 F64 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q4_K Q5_K Q6_K)"),
        };
        let mut out = vec![0f32; numel];
        for (src, dst) in bytes.chunks_exact(block_bytes).zip(out.chunks_exact_mut(block)) {
            decode(src, dst);
        }
        Ok(out)
    }
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// Low nibbles of the 16 packed bytes are elements 0..16, high nibbles 16..32.
fn nibble(qs: &[u8], j: usize) -> u8 {
    if j < 16 {
        qs[j] & 0x0F
    } else {
        qs[j - 16] >> 4
    }
}

fn block_q4_0(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    for (j, o) in out.iter_mut().enumerate() {
        *o = d * (nibble(&b[2..], j) as i8 - 8) as f32;
    }
}

fn block_q4_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    for (j, o) in out.iter_mut().enumerate() {
        *o = d * nibble(&b[4..], j) as f32 + m;
    }
}

fn q5_value(qh: u32, qs: &[u8], j: usize) -> u8 {
    nibble(qs, j) | ((((qh >> j) & 1) as u8) << 4)
}

fn block_q5_0(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    for (j, o) in out.iter_mut().enumerate() {
        *o = d * (q5_value(qh, &b[6..], j) as i8 - 16) as f32;
    }
}

fn block_q5_1(b: &[u8], out: &mut [f32]) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    for (j, o) in out.iter_mut().enumerate() {
        *o = d * q5_value(qh, &b[8..], j) as f32 + m;
    }
}

fn block_q8_0(b: &[u8], out: &mut [f32]) {
    let d = f16_at(b, 0);
    for (j, o) in out.iter_mut().enumerate() {
        *o = (b[2 + j] as i8) as f32 * d;
    }
}

/// The eight 6-bit (scale, min) pairs packed into 12 bytes by Q4_K and Q5_K.
fn k_scale_min(scales: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 0x3F, scales[j + 4] & 0x3F)
    } else {
        let sc = (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 2) & 0x30);
        let m = (scales[j + 4] >> 4) | ((scales[j] >> 2) & 0x30);
        (sc, m)
    }
}

fn block_q4_k(b: &[u8], out: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (scales, qs) = (&b[4..16], &b[16..144]);
    for (e, o) in out.iter_mut().enumerate() {
        // 64-element chunks share 32 bytes: low nibbles first, then high nibbles.
        let (chunk, within) = (e / 64, e % 64);
        let byte = qs[chunk * 32 + within % 32];
        let q = if within < 32 { byte & 0x0F } else { byte >> 4 };
        let (sc, m) = k_scale_min(scales, e / 32);
        *o = (d * sc as f32) * q as f32 - dmin * m as f32;
    }
}

fn block_q5_k(b: &[u8], out: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
    for (e, o) in out.iter_mut().enumerate() {
        let (chunk, within) = (e / 64, e % 64);
        let byte = qs[chunk * 32 + within % 32];
        let low = if within < 32 { byte & 0x0F } else { byte >> 4 };
        // Bit `e / 32` of qh byte `e % 32` is the fifth bit.
        let high = (qh[e % 32] >> (e / 32)) & 1;
        let (sc, m) = k_scale_min(scales, e / 32);
        *o = (d * sc as f32) * (low | (high << 4)) as f32 - dmin * m as f32;
    }
}

fn block_q6_k(b: &[u8], out: &mut [f32]) {
    let (ql, qh, scales) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = f16_at(b, 208);
    for (e, o) in out.iter_mut().enumerate() {
        // Two halves of 128; in each, 64 ql bytes give low nibbles then high nibbles, 32 qh bytes give 4 × 2 bits.
        let (half, within) = (e / 128, e % 128);
        let lbyte = ql[half * 64 + within % 64];
        let low = if within < 64 { lbyte & 0x0F } else { lbyte >> 4 };
        let high = (qh[half * 32 + within % 32] >> (2 * (within / 32))) & 0x03;
        let q = (low | (high << 4)) as i8 - 32;
        *o = (d * scales[e / 16] as i8 as f32) * q as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_block_scales_signed_bytes() {
        let mut block = vec![0u8; 34];
        block[..2].copy_from_slice(&f16::from_f32(0.5).to_bits().to_le_bytes());
        block[2] = 4;
        block[3] = (-6i8) as u8;
        let values = GgmlType::Q8_0.dequantize(&block, 32).unwrap();
        assert_eq!(&values[..3], &[2.0, -3.0, 0.0]);
    }

    #[test]
    fn q4_1_uses_low_then_high_nibbles() {
        let mut block = vec![0u8; 20];
        block[..2].copy_from_slice(&f16::from_f32(1.0).to_bits().to_le_bytes());
        block[2..4].copy_from_slice(&f16::from_f32(-2.0).to_bits().to_le_bytes());
        block[4] = 0x3A; // element 0 = 0xA, element 16 = 0x3
        let values = GgmlType::Q4_1.dequantize(&block, 32).unwrap();
        assert_eq!(values[0], 8.0);
        assert_eq!(values[16], 1.0);
        assert_eq!(values[1], -2.0);
    }

    #[test]
    fn partial_blocks_and_wrong_lengths_are_errors() {
        assert!(GgmlType::Q4_0.byte_len(33).is_err());
        assert!(GgmlType::Q4_0.dequantize(&[0u8; 17], 32).is_err());
        assert!(GgmlType::IQ2_XS.dequantize(&[0u8; 74], 256).is_err());
    }
}
