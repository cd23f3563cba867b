//! Ready-made networks, built to the training loop's conventions (see `Network`): the MNIST
//! network and the activity classifier here, and a zoo of ImageNet networks with torchvision's
//! state-dict names, ResNet-50 (`resnet.rs`) and Inception v3 (`inception.rs`).

mod inception;
mod resnet;

pub use inception::{InceptionSize, inception_v3};
pub use resnet::{ResNetSize, resnet50};

use super::Network;
use crate::error::Result;
use crate::graph::{Graph, Value};
use crate::neuron::UnaryOp;
use crate::ops::conv::{Conv1d, Conv2d, Padding, Padding1d};
use crate::ops::dense::FullyConnected;
use crate::ops::dropout::Dropout;
use crate::ops::elementwise::BinaryOp;
use crate::ops::loss::{Loss, LossKind, Reduction};
use crate::ops::norm::BatchNorm;
use crate::ops::pool::Pool2d;
use crate::ops::recurrent::{Merge, RecurrentLayers};
use crate::ops::shape::Concat;

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
pub fn mnist(batch: usize, size: MnistSize, dropout_seed: u64) -> Result<Network> {
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
    classifier(g, logits, labels, weights)
}

/// Layer sizes of the activity classifier ([`activity`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActivitySize {
    /// Samples per window (the input length).
    pub window: usize,
    /// Input channels (6 for HAPT: accelerometer and gyroscope x, y, z).
    pub inputs: usize,
    /// Classes (12 for HAPT).
    pub classes: usize,
    /// Output channels of the first convolution.
    pub conv1_channels: usize,
    /// Output channels of the second convolution (0: one convolution only).
    pub conv2_channels: usize,
    /// Kernel length of both convolutions.
    pub conv_kernel: usize,
    /// Stride of the first convolution ("same" padding: the length becomes ceil(len / stride)).
    pub conv1_stride: usize,
    /// Stride of the second convolution.
    pub conv2_stride: usize,
    /// Hidden units of the LSTM (used when `recurrent`).
    pub lstm_hidden: usize,
    /// Stacked LSTM layers (used when `recurrent`).
    pub lstm_layers: usize,
    /// A second, reversed LSTM direction per layer, outputs concatenated (used when `recurrent`).
    pub bidirectional: bool,
    /// Units of the hidden fully connected layer of the conv-only head (unused when `recurrent`).
    pub dense_hidden: usize,
    /// Dropout rate before the last fully connected layer.
    pub dropout: f32,
    /// Conv1d + LSTM over the compressed time steps when true; conv1d + fully connected when false.
    pub recurrent: bool,
    /// Also feed the head each input channel's mean and log-variance over the window: the
    /// direction of gravity in the phone's frame and how still the body is, the cues that tell
    /// sitting from standing (batch-normalised, as their scales differ).
    pub channel_stats: bool,
}

impl ActivitySize {
    /// 3.84 s windows (192 samples at 50 Hz: a whole postural transition fits) compressed 9× to
    /// 22 steps of 32 channels, then a fully connected head: the conv-only baseline.
    pub const CONV: ActivitySize = ActivitySize {
        window: 192,
        inputs: 6,
        classes: 12,
        conv1_channels: 32,
        conv2_channels: 32,
        conv_kernel: 5,
        conv1_stride: 3,
        conv2_stride: 3,
        lstm_hidden: 32,
        lstm_layers: 1,
        bidirectional: false,
        dense_hidden: 64,
        dropout: 0.3,
        recurrent: false,
        channel_stats: true,
    };

    /// [`ActivitySize::CONV`]'s convolutions feeding an LSTM of 32 units over the 22 steps.
    pub const LSTM: ActivitySize = ActivitySize {
        recurrent: true,
        ..ActivitySize::CONV
    };

    /// The time steps the convolutions leave (ceil-divided by each stride).
    pub fn steps(&self) -> usize {
        let l = self.window.div_ceil(self.conv1_stride.max(1));
        if self.conv2_channels > 0 {
            l.div_ceil(self.conv2_stride.max(1))
        } else {
            l
        }
    }
}

/// The human-activity classifier. Windows `image` (N, inputs, window) → conv1d (same padding,
/// strided) → batch norm → ReLU, twice, leaving `size.steps()` time steps. Features: with
/// `recurrent`, an LSTM over the steps and its last hidden state; else flatten → fully connected
/// → ReLU. With `channel_stats`, each input channel's window mean and log-variance join them.
/// Then dropout → fully connected → softmax cross-entropy. `labels` u32 (N), `weights` (N).
pub fn activity(batch: usize, size: ActivitySize, dropout_seed: u64) -> Result<Network> {
    let mut g = Graph::new();
    let x = g.input("image", &[batch, size.inputs, size.window])?;
    let labels = g.input_u32("labels", &[batch])?;
    let weights = g.input("weights", &[batch])?;
    let conv = |i, o, stride| {
        let mut c = Conv1d::new(i, o, size.conv_kernel);
        c.stride = stride;
        c.padding = Padding1d::Same;
        // The batch norm's shift replaces the bias.
        c.bias = false;
        c
    };
    let mut h = g.conv1d(
        "conv1",
        x,
        conv(size.inputs, size.conv1_channels, size.conv1_stride),
    )?;
    h = g.batch_norm("bn1", h, BatchNorm::default())?;
    h = g.unary("relu1", UnaryOp::Relu, h)?;
    let mut channels = size.conv1_channels;
    if size.conv2_channels > 0 {
        h = g.conv1d(
            "conv2",
            h,
            conv(channels, size.conv2_channels, size.conv2_stride),
        )?;
        h = g.batch_norm("bn2", h, BatchNorm::default())?;
        h = g.unary("relu2", UnaryOp::Relu, h)?; // (N, C, steps)
        channels = size.conv2_channels;
    }
    let features = if size.recurrent {
        // (N, C, steps) → (steps, N, C): the LSTM reads the compressed steps in time order, and
        // its final hidden state summarises the window.
        let seq = g.image_to_sequence("to_sequence", h)?;
        let mut layers = RecurrentLayers::new(size.lstm_hidden).layers(size.lstm_layers);
        if size.bidirectional {
            layers = layers.bidirectional(Merge::Concat);
        }
        let out = g.lstm("lstm", seq, layers)?;
        let directions = 1 + usize::from(size.bidirectional);
        (out.last_hidden, directions * size.lstm_hidden)
    } else {
        let f = g.flatten("flatten", h)?;
        let f = g.dense(
            "fc1",
            f,
            FullyConnected::new(channels * size.steps(), size.dense_hidden),
        )?;
        let f = g.unary("relu3", UnaryOp::Relu, f)?;
        (f, size.dense_hidden)
    };
    let (mut f, mut width) = features;
    if size.channel_stats {
        // (N, inputs, window) as (N, inputs, 1, window) for the 2-D pool.
        let img = g.reshape("as_image", x, &[size.inputs, 1, size.window])?;
        let mean = g.global_avg_pool("window_mean", img)?; // (N, inputs, 1, 1)
        let dev = g.binary("deviation", BinaryOp::Sub, img, mean)?;
        let sq = g.unary("squared", UnaryOp::Square, dev)?;
        let var = g.global_avg_pool("window_var", sq)?;
        // A floor far below any real variance keeps the log finite on a flat signal.
        let var = g.unary("var_floor", UnaryOp::Linear { a: 1.0, b: 1e-6 }, var)?;
        let log_var = g.unary("log_var", UnaryOp::Log, var)?;
        let stats = g.concat("stats", &[mean, log_var], Concat::CHANNELS)?; // (N, 2·inputs, 1, 1)
        let stats = g.batch_norm("stats_bn", stats, BatchNorm::default())?;
        let stats = g.flatten("stats_flat", stats)?;
        f = g.concat("head_in", &[f, stats], Concat { axis: 1 })?;
        width += 2 * size.inputs;
    }
    let f = g.dropout("dropout", f, Dropout::new(size.dropout, dropout_seed)?)?;
    let logits = g.dense("fc2", f, FullyConnected::new(width, size.classes))?; // (N, classes)
    classifier(g, logits, labels, weights)
}

/// The loop's classifier head on `logits`: softmax cross-entropy against `labels`, reduced with
/// `SumByNonZeroWeights` over the sample `weights` (so padded samples count for nothing).
pub(super) fn classifier(
    mut g: Graph,
    logits: Value,
    labels: Value,
    weights: Value,
) -> Result<Network> {
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
    Ok(Network {
        graph: g,
        output: logits,
        loss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Network) -> Vec<String> {
        c.graph
            .nodes
            .iter()
            .filter(|n| n.op == crate::graph::Op::Param)
            .map(|n| n.name.clone())
            .collect()
    }

    #[test]
    fn activity_graphs_have_the_promised_shapes_and_parameters() {
        let lstm = activity(4, ActivitySize::LSTM, 1).unwrap();
        assert_eq!(lstm.graph.shape(lstm.output).unwrap(), &[4, 12]);
        let p = params(&lstm);
        for name in [
            "conv1.weight",
            "bn2.bias",
            "lstm.weight_hh_l0",
            "fc2.weight",
        ] {
            assert!(p.iter().any(|n| n == name), "{name} missing from {p:?}");
        }
        assert!(!p.iter().any(|n| n.starts_with("fc1")));
        let conv = activity(4, ActivitySize::CONV, 1).unwrap();
        assert_eq!(conv.graph.shape(conv.output).unwrap(), &[4, 12]);
        assert!(!params(&conv).iter().any(|n| n.starts_with("lstm")));
        // The head sees the LSTM's units plus a mean and a log-variance per input channel.
        let fc2 = lstm.graph.find("fc2.weight").unwrap();
        assert_eq!(lstm.graph.shape(fc2).unwrap(), &[12, 32 + 2 * 6]);
        let one_conv = ActivitySize {
            conv2_channels: 0,
            channel_stats: false,
            ..ActivitySize::LSTM
        };
        assert_eq!(
            one_conv.steps(),
            one_conv.window.div_ceil(one_conv.conv1_stride)
        );
        let g = activity(2, one_conv, 1).unwrap();
        assert_eq!(g.graph.shape(g.output).unwrap(), &[2, 12]);
    }
}
