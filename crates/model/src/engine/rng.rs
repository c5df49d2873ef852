//! Counter-based random numbers: the `step`-th uniform of sample (`prompt`, `sample`) under `seed` is a pure
//! function of those four integers, so a sample's randomness never depends on what else is in the batch.

/// SplitMix64 finaliser: a bijective 64-bit mix with good avalanche.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform in (0, 1): 24 random bits at the centres of 2^24 equal cells (exact in f32, never 0 or 1, so the
/// inverse CDF never lands on a zero-probability token).
pub fn uniform(seed: u64, prompt: usize, sample: usize, step: usize) -> f32 {
    let h = mix(mix(mix(mix(seed) ^ prompt as u64) ^ sample as u64) ^ step as u64);
    ((h >> 40) as f32 + 0.5) / (1u64 << 24) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniforms_are_deterministic_distinct_and_in_range() {
        assert_eq!(uniform(1, 2, 3, 4), uniform(1, 2, 3, 4));
        assert_ne!(uniform(1, 2, 3, 4), uniform(1, 2, 3, 5));
        assert_ne!(uniform(1, 2, 3, 4), uniform(1, 3, 2, 4));
        let draws: Vec<f32> = (0..10_000).map(|s| uniform(7, 0, 0, s)).collect();
        assert!(draws.iter().all(|&u| u > 0.0 && u < 1.0));
        let mean = draws.iter().sum::<f32>() / draws.len() as f32;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
    }
}
