//! The norm family (batch, instance, group, layer norm).
//!
//! Normalisation descriptors: batch, instance, group and layer norm, with shape checks.
//!
//! Layout is (N, C, *): `*` is any number of spatial dims (H, W for images, none for (N, C)).
//! Every norm computes `y = γ·(x − μ)/√(σ² + eps) + β` with the biased (÷M) variance σ²; they
//! differ only in which elements share a (μ, σ²) and which share a (γ, β).

pub mod gpu;
mod op;
pub mod reference;
pub(crate) mod samples;

pub use op::NormOp;

use super::axis::fmt_shape;
use crate::error::{Result, attr_err, shape_err};

fn check_eps(op: &str, eps: f32) -> Result<()> {
    if !(eps.is_finite() && eps >= 0.0) {
        return attr_err(op, format!("eps = {eps} must be finite and >= 0"));
    }
    Ok(())
}

/// `param` (gamma, beta, running_mean, ...) must have exactly shape `want`.
fn check_param(op: &str, name: &str, got: &[usize], want: &[usize], x: &[usize]) -> Result<()> {
    if got != want {
        return shape_err(
            op,
            format!(
                "{name} {} does not match {} expected for x {}",
                fmt_shape(got),
                fmt_shape(want),
                fmt_shape(x)
            ),
        );
    }
    Ok(())
}

/// (N, C, *) with rank >= `min_rank`; returns C.
fn channels(op: &str, x: &[usize], min_rank: usize) -> Result<usize> {
    if x.len() < min_rank {
        return shape_err(
            op,
            format!(
                "x {} must have rank >= {min_rank} (N, C, ...)",
                fmt_shape(x)
            ),
        );
    }
    Ok(x[1])
}

/// Batch norm: statistics per channel over (N, *). Training mode normalises with the batch's
/// biased variance and moves the running stats towards the batch mean and the UNBIASED
/// variance: `running = (1 − momentum)·running + momentum·batch` (PyTorch's convention).
/// Inference mode normalises with the running stats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNorm {
    /// Added to the variance before the square root.
    pub eps: f32,
    /// Weight of the batch statistics in the running-statistics update.
    pub momentum: f32,
}

impl Default for BatchNorm {
    /// PyTorch's defaults.
    fn default() -> Self {
        BatchNorm {
            eps: 1e-5,
            momentum: 0.1,
        }
    }
}

impl BatchNorm {
    pub(crate) const OP: &'static str = "batch_norm";

    /// `eps >= 0`, `momentum` in [0, 1].
    pub fn new(eps: f32, momentum: f32) -> Result<Self> {
        check_eps(Self::OP, eps)?;
        if !(0.0..=1.0).contains(&momentum) {
            return attr_err(Self::OP, format!("momentum = {momentum} must be in [0, 1]"));
        }
        Ok(BatchNorm { eps, momentum })
    }

    /// x (N, C, *), gamma/beta/running stats (C). Returns C.
    pub fn check(&self, x: &[usize], gamma: &[usize], beta: &[usize]) -> Result<usize> {
        Self::new(self.eps, self.momentum)?;
        let c = channels(Self::OP, x, 2)?;
        check_param(Self::OP, "gamma", gamma, &[c], x)?;
        check_param(Self::OP, "beta", beta, &[c], x)?;
        Ok(c)
    }

    /// Running mean / var must be (C).
    pub fn check_running(&self, x: &[usize], mean: &[usize], var: &[usize]) -> Result<()> {
        let c = channels(Self::OP, x, 2)?;
        check_param(Self::OP, "running_mean", mean, &[c], x)?;
        check_param(Self::OP, "running_var", var, &[c], x)
    }

    /// Training needs at least 2 values per channel for the unbiased variance (as PyTorch).
    pub fn check_training(&self, x: &[usize]) -> Result<()> {
        let c = channels(Self::OP, x, 2)?;
        let m = x.iter().product::<usize>() / c.max(1);
        if m < 2 {
            return shape_err(
                Self::OP,
                format!(
                    "training needs more than 1 value per channel, x {} has {m}",
                    fmt_shape(x)
                ),
            );
        }
        Ok(())
    }
}

/// Instance norm: statistics per (sample, channel) over the spatial dims; γ, β per channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InstanceNorm {
    /// Added to the variance before the square root.
    pub eps: f32,
}

impl Default for InstanceNorm {
    fn default() -> Self {
        InstanceNorm { eps: 1e-5 }
    }
}

impl InstanceNorm {
    pub(crate) const OP: &'static str = "instance_norm";

    /// x (N, C, S1, ...) with at least one spatial dim; gamma/beta (C). Returns C.
    pub fn check(&self, x: &[usize], gamma: &[usize], beta: &[usize]) -> Result<usize> {
        check_eps(Self::OP, self.eps)?;
        let c = channels(Self::OP, x, 3)?;
        check_param(Self::OP, "gamma", gamma, &[c], x)?;
        check_param(Self::OP, "beta", beta, &[c], x)?;
        Ok(c)
    }
}

/// Group norm: channels split into `groups` contiguous groups; statistics per (sample, group)
/// over (C/groups, *); γ, β per channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupNorm {
    /// Number of channel groups; must divide C.
    pub groups: usize,
    /// Added to the variance before the square root.
    pub eps: f32,
}

impl GroupNorm {
    pub(crate) const OP: &'static str = "group_norm";

    /// `Err(Attr)` if `groups` is 0 or `eps` is negative or not finite.
    pub fn new(groups: usize, eps: f32) -> Result<Self> {
        check_eps(Self::OP, eps)?;
        if groups == 0 {
            return attr_err(Self::OP, "groups = 0 must be >= 1");
        }
        Ok(GroupNorm { groups, eps })
    }

    /// x (N, C, *) with `groups` dividing C; gamma/beta (C). Returns C.
    pub fn check(&self, x: &[usize], gamma: &[usize], beta: &[usize]) -> Result<usize> {
        Self::new(self.groups, self.eps)?;
        let c = channels(Self::OP, x, 2)?;
        if c % self.groups != 0 {
            return attr_err(
                Self::OP,
                format!(
                    "groups = {} does not divide C = {c} of x {}",
                    self.groups,
                    fmt_shape(x)
                ),
            );
        }
        check_param(Self::OP, "gamma", gamma, &[c], x)?;
        check_param(Self::OP, "beta", beta, &[c], x)?;
        Ok(c)
    }
}

/// Layer norm over the last `dims` axes of x (PyTorch's `normalized_shape = x.shape[-dims:]`),
/// with elementwise γ, β of that shape. Statistics per leading index.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerNorm {
    /// Number of trailing axes normalised over.
    pub dims: usize,
    /// Added to the variance before the square root.
    pub eps: f32,
}

impl LayerNorm {
    pub(crate) const OP: &'static str = "layer_norm";

    /// `dims` in 1..=rank(x); gamma/beta of shape `x[rank − dims ..]`. Returns that shape.
    pub fn check(&self, x: &[usize], gamma: &[usize], beta: &[usize]) -> Result<Vec<usize>> {
        check_eps(Self::OP, self.eps)?;
        if self.dims == 0 || self.dims > x.len() {
            return attr_err(
                Self::OP,
                format!(
                    "dims = {} out of range: must normalise 1 ..= {} trailing axes of x {}",
                    self.dims,
                    x.len(),
                    fmt_shape(x)
                ),
            );
        }
        let inner = x[x.len() - self.dims..].to_vec();
        check_param(Self::OP, "gamma", gamma, &inner, x)?;
        check_param(Self::OP, "beta", beta, &inner, x)?;
        Ok(inner)
    }
}
