//! Ready-made networks, built to the training loop's conventions (see `Classifier`).

use super::Classifier;
use crate::error::Result;
use crate::graph::Graph;
use crate::neuron::UnaryOp;
use crate::ops::conv::{Conv2d, Padding};
use crate::ops::dense::FullyConnected;
use crate::ops::dropout::Dropout;
use crate::ops::loss::{Loss, LossKind, Reduction};
use crate::ops::pool::Pool2d;

/// Widths of the MNIST network.
#[derive(Clone, Copy, Debug)]
pub struct MnistSize {
    /// Channels of the first convolution.
    pub conv1: usize,
    /// Channels of the second convolution.
    pub conv2: usize,
    /// Units of the hidden dense layer.
    pub hidden: usize,
    /// Convolution kernel edge (5 in the MPS sample).
    pub kernel: usize,
}

impl MnistSize {
    /// Small enough to train to 97% on the 2-core CI machine's software GPU in minutes.
    pub const SMALL: MnistSize = MnistSize {
        conv1: 8,
        conv2: 16,
        hidden: 128,
        kernel: 5,
    };
    /// The MPS sample's (and TensorFlow tutorial's) widths.
    pub const MPS: MnistSize = MnistSize {
        conv1: 32,
        conv2: 64,
        hidden: 1024,
        kernel: 5,
    };
}

/// The network of Apple's MPS MNIST training sample: convolution 5×5 (same) → ReLU → max pool
/// 2×2 → convolution 5×5 → ReLU → max pool → fully connected → ReLU → dropout → fully connected
/// → softmax cross-entropy. Input `image` (N, 1, 28, 28), `labels` u32 (N), `weights` (N).
pub fn mnist(batch: usize, size: MnistSize, dropout_seed: u64) -> Result<Classifier> {
    let mut g = Graph::new();
    let x = g.input("image", &[batch, 1, 28, 28])?;
    let labels = g.input_u32("labels", &[batch])?;
    let weights = g.input("weights", &[batch])?;
    let conv = |i, o| {
        let mut c = Conv2d::new(i, o, (size.kernel, size.kernel));
        c.padding = Padding::Same;
        c
    };
    let h = g.conv2d("conv1", x, conv(1, size.conv1))?;
    let h = g.unary("relu1", UnaryOp::Relu, h)?;
    let h = g.pool("pool1", h, Pool2d::max((2, 2), (2, 2)))?; // (N, c1, 14, 14)
    let h = g.conv2d("conv2", h, conv(size.conv1, size.conv2))?;
    let h = g.unary("relu2", UnaryOp::Relu, h)?;
    let h = g.pool("pool2", h, Pool2d::max((2, 2), (2, 2)))?; // (N, c2, 7, 7)
    let h = g.dense("fc1", h, FullyConnected::new(size.conv2 * 49, size.hidden))?; // (N, hidden, 1, 1)
    let h = g.unary("relu3", UnaryOp::Relu, h)?;
    let h = g.dropout("dropout", h, Dropout::new(0.25, dropout_seed)?)?;
    let h = g.dense("fc2", h, FullyConnected::new(size.hidden, 10))?;
    let logits = g.flatten("logits", h)?; // (N, 10)
    let kind = LossKind::SoftmaxCrossEntropy {
        label_smoothing: 0.0,
        class_weights: None,
    };
    let loss = g.loss(
        "loss",
        logits,
        labels,
        Some(weights),
        Loss {
            kind,
            reduction: Reduction::SumByNonZeroWeights,
        },
    )?;
    Ok(Classifier {
        graph: g,
        logits,
        loss,
    })
}
