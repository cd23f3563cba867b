//! Sample cases of softmax and log-softmax, logits spread over [-3, 3] along the last and a
//! middle axis. The smallest probability (≈ 1e-4 of a row of 33) sits far above the tolerance,
//! 1e-6·(1 + |y|), so a kernel flushing small values to zero fails; `tests/ops_norm.rs`
//! checks every element relatively over a wider range.

use super::Softmax;
use crate::ops::sample::{Fill, Sample};

pub fn samples() -> Vec<Sample> {
    vec![
        Sample::new("softmax/last", |g, s| {
            let x = g.input("x", &[3, 7 * s])?;
            g.softmax(
                "y",
                x,
                Softmax {
                    axis: -1,
                    log: false,
                },
            )
        })
        .fill("x", Fill::Uniform(-3.0, 3.0))
        .tol(TOL),
        Sample::new("softmax/middle", |g, s| {
            let x = g.input("x", &[2, 33 * s, 3])?;
            g.softmax(
                "y",
                x,
                Softmax {
                    axis: 1,
                    log: false,
                },
            )
        })
        .fill("x", Fill::Uniform(-3.0, 3.0))
        .tol(TOL),
        Sample::new("softmax/log/last", |g, s| {
            let x = g.input("x", &[5, 9 * s])?;
            g.softmax(
                "y",
                x,
                Softmax {
                    axis: -1,
                    log: true,
                },
            )
        })
        .fill("x", Fill::Uniform(-3.0, 3.0))
        .tol(TOL),
        Sample::new("softmax/log/middle", |g, s| {
            let x = g.input("x", &[2, 5, 4 * s])?;
            g.softmax("y", x, Softmax { axis: 1, log: true })
        })
        .fill("x", Fill::Uniform(-3.0, 3.0))
        .tol(TOL),
    ]
}

/// f32's rounding over rows of ≤ 33 (`reference::f32_tol` would allow 2e-5; these sums are
/// short and positive, and 1e-6 keeps every probability above the tolerance).
const TOL: f64 = 1e-6;
