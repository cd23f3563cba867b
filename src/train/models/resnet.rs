//! ResNet-50 with torchvision's state-dict names.

use super::classifier;
use crate::error::Result;
use crate::graph::{Graph, Value};
use crate::neuron::UnaryOp;
use crate::ops::conv::{Conv2d, Padding};
use crate::ops::elementwise::BinaryOp;
use crate::ops::norm::BatchNorm;
use crate::ops::pool::Pool2d;
use crate::train::Network;

/// Widths of [`resnet50`]: torchvision's is `ResNetSize { base: 64, classes: 1000 }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResNetSize {
    /// Channels of the stem and of layer1's bottleneck (64); layer k's are `base · 2^(k-1)`,
    /// its outputs 4× that.
    pub base: usize,
    /// Classes of the fully connected head.
    pub classes: usize,
}

impl ResNetSize {
    /// torchvision's `resnet50()`.
    pub const TORCHVISION: ResNetSize = ResNetSize {
        base: 64,
        classes: 1000,
    };
}

/// ResNet-50 (torchvision's v1.5: the stride on each bottleneck's 3×3 convolution), with
/// torchvision's state-dict names and layouts (`conv1.weight`, `layer2.0.downsample.1.running_var`,
/// `fc.bias`, ...; no `num_batches_tracked`), so its weights load from and save to PyTorch's.
/// Input `image` (N, 3, H, W), `labels` u32 (N), `weights` (N), the loop's conventions.
pub fn resnet50(batch: usize, image: (usize, usize), size: ResNetSize) -> Result<Network> {
    let mut g = Graph::new();
    let x = g.input("image", &[batch, 3, image.0, image.1])?;
    let labels = g.input_u32("labels", &[batch])?;
    let weights = g.input("weights", &[batch])?;
    let b = size.base;
    let h = g.conv2d(
        "conv1",
        x,
        Conv2d::out(b, 7)
            .stride(2)
            .padding(Padding::symmetric(3))
            .no_bias(),
    )?;
    let h = g.batch_norm("bn1", h, BatchNorm::default())?;
    let h = g.unary("relu", UnaryOp::Relu, h)?;
    let pool = Pool2d::max((3, 3), (2, 2)).padding(Padding::symmetric(1));
    let mut h = g.pool("maxpool", h, pool)?;
    for (layer, (blocks, stride)) in [(3, 1), (4, 2), (6, 2), (3, 2)].into_iter().enumerate() {
        let planes = b << layer;
        for block in 0..blocks {
            let name = format!("layer{}.{block}", layer + 1);
            let s = if block == 0 { stride } else { 1 };
            h = bottleneck(&mut g, &name, h, planes, s)?;
        }
    }
    let h = g.global_avg_pool("avgpool", h)?;
    let h = g.flatten("flatten", h)?;
    let logits = g.linear("fc", h, size.classes)?;
    classifier(g, logits, labels, weights)
}

/// torchvision's `Bottleneck`: 1×1 → 3×3 (stride) → 1×1 to `4·planes`, each with batch norm,
/// added to the input (through a strided 1×1 convolution and batch norm where the shape
/// changes), then ReLU.
fn bottleneck(g: &mut Graph, name: &str, x: Value, planes: usize, stride: usize) -> Result<Value> {
    let n = |part: &str| format!("{name}.{part}");
    let bn = BatchNorm::default();
    let h = g.conv2d(&n("conv1"), x, Conv2d::out(planes, 1).no_bias())?;
    let h = g.batch_norm(&n("bn1"), h, bn)?;
    let h = g.unary(&n("relu1"), UnaryOp::Relu, h)?;
    let c2 = Conv2d::out(planes, 3)
        .stride(stride)
        .padding(Padding::symmetric(1))
        .no_bias();
    let h = g.conv2d(&n("conv2"), h, c2)?;
    let h = g.batch_norm(&n("bn2"), h, bn)?;
    let h = g.unary(&n("relu2"), UnaryOp::Relu, h)?;
    let h = g.conv2d(&n("conv3"), h, Conv2d::out(4 * planes, 1).no_bias())?;
    let h = g.batch_norm(&n("bn3"), h, bn)?;
    let identity = if stride != 1 || g.shape(x)?[1] != 4 * planes {
        let d = Conv2d::out(4 * planes, 1).stride(stride).no_bias();
        let d = g.conv2d(&n("downsample.0"), x, d)?;
        g.batch_norm(&n("downsample.1"), d, bn)?
    } else {
        x
    };
    let sum = g.binary(&n("add"), BinaryOp::Add, h, identity)?;
    g.unary(&n("relu3"), UnaryOp::Relu, sum)
}
