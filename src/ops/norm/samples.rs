//! Sample cases of the norms, each with a non-default eps so a misplaced eps shows. The
//! reference leaves the saved statistics of instance / group / layer norm as zeros (its
//! gradient recomputes them): their eager check compares y only.

use super::{BatchNorm, GroupNorm, InstanceNorm, LayerNorm};
use crate::ops::sample::{Fill, Sample};

pub fn samples() -> Vec<Sample> {
    vec![
        Sample::new("norm/batch", |g, s| {
            let x = g.input("x", &[4, 3, 5 * s])?;
            g.batch_norm("y", x, BatchNorm::new(0.1, 0.3)?)
        })
        .fill("y.running_var", Fill::Uniform(0.5, 1.5)),
        Sample::new("norm/batch/image", |g, s| {
            let x = g.input("x", &[2, 5, 3 * s, 3])?;
            g.batch_norm("y", x, BatchNorm::new(1e-3, 0.1)?)
        })
        .fill("y.running_var", Fill::Uniform(0.5, 1.5)),
        Sample::new("norm/instance", |g, s| {
            let x = g.input("x", &[2, 3, 7 * s])?;
            g.instance_norm("y", x, InstanceNorm { eps: 0.05 })
        })
        .ports(1),
        Sample::new("norm/group", |g, s| {
            let x = g.input("x", &[2, 6, 3 * s, 3])?;
            g.group_norm("y", x, GroupNorm::new(3, 0.02)?)
        })
        .ports(1),
        Sample::new("norm/layer/last", |g, s| {
            let x = g.input("x", &[3, 33 * s])?;
            g.layer_norm("y", x, LayerNorm { dims: 1, eps: 0.1 })
        })
        .ports(1),
        Sample::new("norm/layer/two_dims", |g, s| {
            let x = g.input("x", &[2, 3, 4 * s, 5])?;
            g.layer_norm("y", x, LayerNorm { dims: 2, eps: 1e-3 })
        })
        .ports(1),
        // Without γ and β (PyTorch's affine=False / elementwise_affine=False).
        Sample::new("norm/instance/no_affine", |g, s| {
            let x = g.input("x", &[2, 3, 5 * s, 2])?;
            g.norm("y", x, InstanceNorm { eps: 0.05 }, false)
        })
        .ports(1),
        Sample::new("norm/group/no_affine", |g, s| {
            let x = g.input("x", &[3, 4, 3 * s])?;
            g.norm("y", x, GroupNorm::new(2, 0.02)?, false)
        })
        .ports(1),
        Sample::new("norm/layer/no_affine", |g, s| {
            let x = g.input("x", &[3, 2, 9 * s])?;
            g.norm("y", x, LayerNorm { dims: 2, eps: 0.1 }, false)
        })
        .ports(1),
    ]
}
