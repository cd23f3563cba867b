//! Sample cases of the norms, each with a non-default eps so a misplaced eps shows, and a
//! `large_eps` case of each norm where eps (0.5) dwarfs the input variance (≈ 0.03): a kernel
//! that ignored eps, or added it after the square root, would be off by a factor of 4. The
//! reference leaves the saved statistics of instance / group / layer norm as zeros (its
//! gradient recomputes them): their eager check compares y only. (Batch norm's momentum acts on
//! the running statistics, which `tests/ops_norm.rs` checks at 0.1 and 0.7.)

use super::{BatchNorm, GroupNorm, InstanceNorm, LayerNorm};
use crate::graph::Graph;
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
        // ResNet-50's first batch norm, (32, 64, 56, 56), at the full bench multiplier 8: split
        // channels (100352 elements each); at 1, (4, 64, 7, 7), one chunk per channel.
        Sample::new("norm/batch/resnet", |g, s| {
            let x = g.input("x", &[4 * s, 64, 7 * s, 7 * s])?;
            g.batch_norm("y", x, BatchNorm::new(1e-5, 0.1)?)
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
        // eps 0.5 against inputs of variance ≈ 0.03 (uniform in [-0.3, 0.3)).
        Sample::new("norm/batch/large_eps", |g, s| {
            let x = g.input("x", &[4, 3, 5 * s])?;
            g.batch_norm("y", x, BatchNorm::new(0.5, 0.7)?)
        })
        .fill("x", SMALL)
        .fill("y.running_var", Fill::Uniform(0.5, 1.5)),
        // At inference: on running variances (≈ 0.04) below eps.
        Sample::new("norm/batch/inference/large_eps", |g, s| {
            let x = g.input("x", &[4, 3, 5 * s])?;
            let y = g.batch_norm("y", x, BatchNorm::new(0.5, 0.7)?)?;
            *g = Graph::for_inference(g);
            Ok(y)
        })
        .fill("y.running_var", Fill::Uniform(0.02, 0.06)),
        Sample::new("norm/instance/large_eps", |g, s| {
            let x = g.input("x", &[2, 3, 7 * s])?;
            g.instance_norm("y", x, InstanceNorm { eps: 0.5 })
        })
        .fill("x", SMALL)
        .ports(1),
        Sample::new("norm/group/large_eps", |g, s| {
            let x = g.input("x", &[2, 6, 3 * s, 3])?;
            g.group_norm("y", x, GroupNorm::new(3, 0.5)?)
        })
        .fill("x", SMALL)
        .ports(1),
        Sample::new("norm/layer/large_eps", |g, s| {
            let x = g.input("x", &[3, 33 * s])?;
            g.norm("y", x, LayerNorm { dims: 1, eps: 0.5 }, false)
        })
        .fill("x", SMALL)
        .ports(1),
    ]
}

/// Inputs of variance ≈ 0.03, far below eps = 0.5.
const SMALL: Fill = Fill::Uniform(-0.3, 0.3);
