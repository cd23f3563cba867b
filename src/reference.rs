//! The CPU oracle's value type and checks: `Array` (dense row-major f64), finite differences,
//! relative differences and the tolerance rule every GPU-vs-reference check follows
//! ([`f32_tol`]). Each op family's f64 reference (`src/ops/<family>/reference.rs`) is
//! slow and obvious on purpose; every GPU kernel is tested against it. Layouts match the GPU
//! side: row-major, images NCHW, weights OIHW (like PyTorch).

/// A dense row-major f64 array: the value type of the reference implementations.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Elements in row-major order; `data.len()` is the product of `shape`.
    pub data: Vec<f64>,
}

impl Array {
    /// An array of `shape` holding `data`; panics if the lengths disagree.
    pub fn new(shape: &[usize], data: Vec<f64>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "Array::new: data does not fit shape {shape:?}"
        );
        Array {
            shape: shape.to_vec(),
            data,
        }
    }
    /// An array of `shape` filled with zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Array {
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }
    /// An array of `shape` from f32 values, widened to f64.
    pub fn from_f32(shape: &[usize], data: &[f32]) -> Self {
        Self::new(shape, data.iter().map(|&x| x as f64).collect())
    }
    /// The elements narrowed to f32 (to compare with a GPU result).
    pub fn to_f32(&self) -> Vec<f32> {
        self.data.iter().map(|&x| x as f32).collect()
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }
    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Deterministic pseudo-random values in [-1, 1) for tests (no RNG state to carry around).
    pub fn seeded(shape: &[usize], seed: u64) -> Self {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let data = (0..shape.iter().product::<usize>())
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect();
        Array {
            shape: shape.to_vec(),
            data,
        }
    }
}

pub use crate::tensor::strides;

/// Central finite differences of the scalar `f` at `x`: the check every backward is held to.
pub fn finite_diff(x: &Array, eps: f64, f: impl Fn(&Array) -> f64) -> Array {
    let mut g = Array::zeros(&x.shape);
    let mut xp = x.clone();
    for i in 0..x.len() {
        let orig = xp.data[i];
        xp.data[i] = orig + eps;
        let fp = f(&xp);
        xp.data[i] = orig - eps;
        let fm = f(&xp);
        xp.data[i] = orig;
        g.data[i] = (fp - fm) / (2.0 * eps);
    }
    g
}

/// ULPs of slack per √term in [`f32_tol`]: rounding is at most ½ ulp per operation, WGSL's
/// `exp`/`log`/`tanh` a few ulp; 32 covers both with room for an unlucky sum, and is still
/// 10–100× below what a wrong kernel (a dropped term, a skipped eps, a flushed value) produces.
pub const F32_TOL_ULPS: f64 = 32.0;

/// The tolerance rule of every GPU-vs-reference check, in one place.
///
/// A GPU value is computed in f32 from inputs already rounded to f32 (the reference starts
/// from the same rounded values and computes in f64), so its error is rounding alone: each f32
/// operation adds at most ε/2 relative to the values it combines (ε = `f32::EPSILON` ≈
/// 1.19e-7), WGSL's transcendentals a few ulp. A value that sums `n` terms — a dot product of
/// length n, a reduction over n elements, a norm's statistics, a chain of n neurons —
/// accumulates n such errors; they are independent roundings, so they grow like √n (tiled and
/// tree sums of random data never approach the worst case n·ε). Hence, with the terms of
/// magnitude about 1 (the tests' inputs are in [-1, 1)):
///
/// ```text
/// tol(n) = F32_TOL_ULPS · ε · √max(n, 1)          (32 ulps: 3.8e-6 for n = 1, 1.2e-4 for n = 1000)
/// |gpu − reference| ≤ tol(n) · (1 + |reference|)   i.e. atol = rtol = tol(n)
/// ```
///
/// and a non-finite value on one side only always fails. `n` is the longest sum behind the
/// checked value, in the forward or the backward (for a convolution's weight gradient, batch ×
/// output pixels). Terms of magnitude s scale atol by s. New checks take `f32_tol`; checks
/// written before the rule keep their hand-picked tolerances (none was loosened to it).
pub fn f32_tol(n: usize) -> f64 {
    F32_TOL_ULPS * f32::EPSILON as f64 * (n.max(1) as f64).sqrt()
}

/// f16's machine epsilon, 2^-10.
pub const F16_EPSILON: f64 = 0.000_976_562_5;

/// The tolerance of a value computed with f16 storage (mixed precision): every stored
/// intermediate — the op's output, its f16 inputs made by earlier ops, split-K partials — is
/// rounded to f16 (relative ε_f16/2 each), and the roundings of the n terms of the longest sum
/// add up like a random walk, so
///
/// ```text
/// |gpu − ref| ≤ f16_tol(n) · (1 + |ref|),   f16_tol(n) = 4 · ε_f16 · √n  (+ the f32 rule)
/// ```
///
/// with the reference fed the same f16-rounded inputs (so their rounding is not counted). The
/// same form as `f32_tol`: accumulation stays f32, storage is what costs precision.
pub fn f16_tol(n: usize) -> f64 {
    4.0 * F16_EPSILON * (n.max(1) as f64).sqrt() + f32_tol(n)
}

/// Standard deviations of slack in [`f16_acc_tol`]: a Gaussian exceeds 5σ with probability
/// 6·10⁻⁷, so a check of thousands of elements fails by chance about once in a thousand runs.
pub const F16_ACC_SIGMAS: f64 = 5.0;

/// The tolerance of a value summed in f16 (`Accumulator::F16`), derived under the model of
/// [`f32_tol`]: terms of magnitude at most 1 (the tests' inputs are in [-1, 1)), each rounding an
/// independent, zero-mean error uniform in ±u·|value| (variance u²·v²/3, u = ε_f16/2 = 2^-11).
/// Two sources, for a sum s = Σ tᵢ of n terms:
///
/// - the operands rounded to f16 as they enter the sum (f32 storage; exact for f16): tᵢ gains a
///   relative error of at most 2u, variance ≤ n·(2u)²/3 in all;
/// - the running sum rounded at each of the n additions: error u·|s_k| at step k. Unlike f32's
///   √n, this does not stay small next to 1 + |s|: with random signs |s_k| grows like √k, so the
///   variance is Σ_k u²·k/3 ≈ u²·n²/6 — linear in n once its square root is taken; with terms of
///   one sign s_k ≈ (k/n)·s, the variance Σ_k u²·(k/n)²·s²/3 ≈ u²·s²·n/9, and the error
///   u·|s|·√n/3, under u·n/√6 · |s|.
///
/// So the error's standard deviation is at most u·(n/√6 + 2·√(n/3)) · (1 + |s|), and
///
/// ```text
/// |gpu − ref| ≤ f16_acc_tol(n) · (1 + |ref|),   f16_acc_tol(n) = 5 · u · (n/√6 + 2·√(n/3))
/// ```
///
/// (n = 1: 3.8e-3; n = 33: 4.9e-2; n = 1000: 1.1). It also covers the deterministic worst case,
/// n roundings of u·max|s_k| each, wherever no running sum exceeds 5/√6 ≈ 2 times 1 + |s|: so
/// the stagnation the random model misses (terms far below the sum's spacing all rounding away:
/// 1024 then 63 × 0.25 sums to 1024 in f16) stays within it. Where sums feed sums (a norm's statistics
/// into its output, a forward into its gradient) first-order errors add, so `n` is the longest
/// chain of sums behind the value: the lengths along the path added up. Long f16 sums are
/// inexact by design: n = 1000 allows an error as large as the value, which is why f32
/// accumulation is the default. Storage in f16 adds [`f16_tol`].
pub fn f16_acc_tol(n: usize) -> f64 {
    let n = n.max(1) as f64;
    let u = F16_EPSILON / 2.0;
    F16_ACC_SIGMAS * u * (n / 6f64.sqrt() + 2.0 * (n / 3.0).sqrt())
}

/// Largest relative difference between two arrays, scaled by `max(1, |b|)`: NaN when a NaN is
/// on one side only (`f64::max` would drop it), infinite for an infinity on one side only, so
/// `max_rel_diff(..) < tol` fails on either. Elements equal on both sides (the same infinity,
/// NaN on both) differ by 0.
pub fn max_rel_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            if x == y || (x.is_nan() && y.is_nan()) {
                0.0
            } else {
                (x - y).abs() / y.abs().max(1.0)
            }
        })
        .fold(0.0, |m: f64, d| {
            if m.is_nan() || d.is_nan() {
                f64::NAN
            } else {
                m.max(d)
            }
        })
}

impl Array {
    /// Every element multiplied by `s` (test inputs over a wider range).
    pub fn map_scaled(&self, s: f64) -> Array {
        Array::new(&self.shape, self.data.iter().map(|v| v * s).collect())
    }
}
