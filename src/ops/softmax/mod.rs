//! The softmax family (softmax and log-softmax).
//!
//! Softmax / log-softmax descriptor: normalise over one axis (the channels, axis 1 of
//! (N, C, ...), by default).

pub mod gpu;
mod op;
pub mod reference;
pub(crate) mod samples;

pub use op::SoftmaxOp;

use super::axis::resolve_axis;
use crate::error::Result;

/// `softmax(x)_i = exp(x_i − max) / Σ exp(x_j − max)` along `axis`; with `log`, the
/// log-softmax `x_i − max − ln Σ exp(x_j − max)` (never `ln` of a softmax, which underflows).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Softmax {
    /// Signed: −1 is the last axis.
    pub axis: isize,
    /// Log-softmax (`log_softmax`) instead of softmax.
    pub log: bool,
}

impl Softmax {
    /// Softmax over the channels of (N, C, ...).
    pub const CHANNELS: Softmax = Softmax {
        axis: 1,
        log: false,
    };
    /// Log-softmax over the channels of (N, C, ...).
    pub const LOG_CHANNELS: Softmax = Softmax { axis: 1, log: true };

    /// `"softmax"` or `"log_softmax"`, as in errors.
    pub fn name(&self) -> &'static str {
        if self.log { "log_softmax" } else { "softmax" }
    }

    /// The resolved axis for an input of this shape; `Err(Attr)` if out of range.
    pub fn check(&self, shape: &[usize]) -> Result<usize> {
        resolve_axis(self.name(), self.axis, shape.len())
    }
}
