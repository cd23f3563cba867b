//! The dropout family.
//!
//! Dropout descriptor and its counter-based mask, specified in u32 arithmetic so the WGSL kernel
//! reproduces it bit-for-bit (no RNG state: element `i` of step `s` is a pure function).
//!
//! The algorithm (all u32, wrapping `*` and `+`, as WGSL's u32 ops are):
//!
//! ```text
//! pcg(v):   s = v * 747796405 + 2891336453
//!           w = ((s >> ((s >> 28) + 4)) ^ s) * 277803737
//!           return (w >> 22) ^ w
//! key(seed: u64, step: u64)            // once per dispatch, on the host; pass as a uniform
//!           = pcg(step_hi ^ pcg(step_lo ^ pcg(seed_hi ^ pcg(seed_lo))))
//!           where x_lo = x as u32, x_hi = (x >> 32) as u32
//! threshold(rate: f32) = floor(rate as f64 * 2^32) as u32   // exact for an f32 rate in [0, 1)
//! keep(i)   = pcg(key ^ pcg(i)) >= threshold                // i = flat row-major index as u32
//! y[i]      = keep(i) ? x[i] * scale : 0,   scale = 1 / (1 − rate)
//! ```
//!
//! `pcg` is the PCG-RXS-M-XS hash of Jarzynski & Olano, "Hash Functions for GPU Rendering"
//! (JCGT 2020). The keep probability is `1 − threshold / 2^32`, i.e. `1 − rate` up to 2^-32.
//! Tensors must have fewer than 2^32 elements (the index is a u32).
//!
//! In WGSL:
//!
//! ```text
//! fn pcg(v: u32) -> u32 {
//!     let s = v * 747796405u + 2891336453u;
//!     let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
//!     return (w >> 22u) ^ w;
//! }
//! // keep = pcg(params.key ^ pcg(i)) >= params.threshold;
//! ```

pub mod gpu;
mod op;
pub mod reference;
pub(crate) mod samples;

pub use op::DropoutOp;

use crate::error::{Result, attr_err};

/// Dropout with drop probability `rate` in [0, 1) and a seed; the step counter is passed per
/// call so each training step draws a fresh mask. Inference is the identity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    /// Probability of zeroing an element, in [0, 1).
    pub rate: f32,
    /// Seed of the mask stream.
    pub seed: u64,
}

impl Dropout {
    pub(crate) const OP: &'static str = "dropout";

    /// `Err(Attr)` unless `rate` is in [0, 1).
    pub fn new(rate: f32, seed: u64) -> Result<Self> {
        let d = Dropout { rate, seed };
        d.validate()?;
        Ok(d)
    }

    /// `rate` must be in [0, 1): rate 1 would drop everything and scale by infinity.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.rate) {
            return attr_err(Self::OP, format!("rate = {} must be in [0, 1)", self.rate));
        }
        Ok(())
    }

    /// The per-dispatch key for `step` (a kernel uniform).
    pub fn key(&self, step: u64) -> u32 {
        dropout_key(self.seed, step)
    }

    /// The keep threshold (a kernel uniform).
    pub fn threshold(&self) -> u32 {
        dropout_threshold(self.rate)
    }

    /// The keep-scale `1 / (1 − rate)`; the kernel uses this rounded to f32.
    pub fn scale(&self) -> f64 {
        1.0 / (1.0 - self.rate as f64)
    }
}

/// The PCG-RXS-M-XS 32-bit hash (see the module doc).
pub fn pcg_hash(v: u32) -> u32 {
    let s = v.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let w = ((s >> ((s >> 28) + 4)) ^ s).wrapping_mul(277_803_737);
    (w >> 22) ^ w
}

/// `pcg(step_hi ^ pcg(step_lo ^ pcg(seed_hi ^ pcg(seed_lo))))`.
pub fn dropout_key(seed: u64, step: u64) -> u32 {
    let h = pcg_hash(seed as u32);
    let h = pcg_hash(h ^ (seed >> 32) as u32);
    let h = pcg_hash(h ^ step as u32);
    pcg_hash(h ^ (step >> 32) as u32)
}

/// `floor(rate · 2^32)`, saturating; rate outside [0, 1) is clamped (validate first).
pub fn dropout_threshold(rate: f32) -> u32 {
    let t = (rate as f64 * 4_294_967_296.0).floor();
    if t.is_nan() || t <= 0.0 {
        0
    } else {
        t.min(u32::MAX as f64) as u32
    }
}

/// Whether element `index` is kept: `pcg(key ^ pcg(index)) >= threshold`.
pub fn dropout_keep(key: u32, index: u32, threshold: u32) -> bool {
    pcg_hash(key ^ pcg_hash(index)) >= threshold
}

/// The keep mask of `n` elements for (seed, step): `true` = kept (and scaled by 1/(1 − rate)).
/// Element `i` is the flat row-major index, so the mask does not depend on the shape.
pub fn dropout_mask(seed: u64, step: u64, n: usize, rate: f32) -> Vec<bool> {
    let (key, t) = (dropout_key(seed, step), dropout_threshold(rate));
    (0..n).map(|i| dropout_keep(key, i as u32, t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned values, computed independently (Python, masked to 32 bits): a GPU port must match.
    #[test]
    fn hash_test_vectors() {
        let got: Vec<u32> = [0, 1, 2, u32::MAX].iter().map(|&v| pcg_hash(v)).collect();
        assert_eq!(got, [129708002, 2831084092, 2055130248, 3861530882]);
        let k = dropout_key(0x0123_4567_89ab_cdef, 7);
        assert_eq!(k, 1265159544);
        let bits: Vec<u32> = (0..4).map(|i| pcg_hash(k ^ pcg_hash(i))).collect();
        assert_eq!(bits, [3044726877, 2873424790, 2892374737, 3138854268]);
        let m: String = dropout_mask(0x0123_4567_89ab_cdef, 7, 32, 0.5)
            .iter()
            .map(|&b| if b { '1' } else { '0' })
            .collect();
        assert_eq!(m, "11111110100100010010111011001000");
    }

    #[test]
    fn threshold_is_exact_and_saturates() {
        assert_eq!(dropout_threshold(0.0), 0);
        assert_eq!(dropout_threshold(0.5), 1 << 31);
        assert_eq!(dropout_threshold(0.25), 1 << 30);
        assert_eq!(dropout_threshold(1.0), u32::MAX);
        assert_eq!(dropout_threshold(-0.5), 0);
        assert_eq!(dropout_threshold(f32::NAN), 0);
    }

    #[test]
    fn keeps_about_one_minus_rate_and_is_deterministic() {
        let n = 100_000;
        for rate in [0.0f32, 0.1, 0.5, 0.9] {
            let m = dropout_mask(42, 3, n, rate);
            let kept = m.iter().filter(|&&b| b).count() as f64 / n as f64;
            let p = 1.0 - rate as f64;
            let sigma = (p * (1.0 - p) / n as f64).sqrt();
            assert!(
                (kept - p).abs() <= 5.0 * sigma + 1e-12,
                "rate {rate}: kept {kept}"
            );
            assert_eq!(m, dropout_mask(42, 3, n, rate));
        }
        // Different steps and seeds give (nearly) independent masks: agreement ≈ p² + (1 − p)².
        let a = dropout_mask(42, 3, n, 0.5);
        for b in [
            dropout_mask(42, 4, n, 0.5),
            dropout_mask(43, 3, n, 0.5),
            dropout_mask(42 + (1 << 32), 3, n, 0.5),
        ] {
            let same = a.iter().zip(&b).filter(|(x, y)| x == y).count() as f64 / n as f64;
            assert!((same - 0.5).abs() < 0.01, "agreement {same}");
        }
    }

    #[test]
    fn rate_out_of_range_is_an_error() {
        for rate in [1.0f32, -0.1, 1.5, f32::NAN] {
            let e = Dropout::new(rate, 0).unwrap_err().to_string();
            assert!(
                e.contains("dropout") && e.contains(&format!("rate = {rate}")),
                "{e}"
            );
        }
        assert!(Dropout::new(0.0, 0).is_ok());
    }
}
