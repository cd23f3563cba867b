//! Sample cases of the convolutions: 2-D and 1-D, direct and transposed, with stride, asymmetric
//! padding, dilation and groups.

use super::{
    Conv1d, Conv2d, ConvKind, ConvOp, ConvTranspose1d, ConvTranspose2d, Padding, Padding1d,
};
use crate::error::Result;
use crate::graph::{Graph, Value};
use crate::ops::sample::Sample;

pub fn samples() -> Vec<Sample> {
    vec![
        Sample::new("conv/2d/same", |g, s| {
            let x = g.input("x", &[2, 3, 7 * s, 5 * s])?;
            let mut c = Conv2d::new(3, 4, (3, 3));
            c.padding = Padding::Same;
            g.conv2d("y", x, c)
        }),
        Sample::new("conv/2d/stride_pad_groups", |g, s| {
            let x = g.input("x", &[2, 4, 7 * s, 9 * s])?;
            let mut c = Conv2d::new(4, 6, (3, 2));
            c.stride = (2, 3);
            c.groups = 2;
            c.padding = Padding::Explicit {
                top: 1,
                bottom: 0,
                left: 2,
                right: 1,
            };
            c.bias = false;
            g.conv2d("y", x, c)
        }),
        Sample::new("conv/2d/dilated_1x1_out", |g, s| {
            let x = g.input("x", &[1, 2, 9 * s, 9 * s])?;
            let mut c = Conv2d::new(2, 1, (3, 3));
            c.dilation = (2, 3);
            g.conv2d("y", x, c)
        }),
        Sample::new("conv/1d/stride_groups", |g, s| {
            let x = g.input("x", &[3, 6, 33 * s])?;
            let mut c = Conv1d::new(6, 3, 5);
            c.stride = 2;
            c.groups = 3;
            c.padding = Padding1d::Explicit { left: 2, right: 1 };
            g.conv1d("y", x, c)
        }),
        // A first layer at the short-reduction limits (`conv::short_k`): 2·4·4 = 32 taps, 33
        // output channels (a partial block of 8 and quad of 4), asymmetric padding, dilation.
        Sample::new("conv/2d/short_k_edges", |g, s| {
            let x = g.input("x", &[3, 2, 9 * s, 7])?;
            let mut c = Conv2d::new(2, 33, (4, 4));
            c.dilation = (1, 2);
            c.padding = Padding::Explicit {
                top: 1,
                bottom: 2,
                left: 3,
                right: 2,
            };
            g.conv2d("y", x, c)
        }),
        // The tap loops' weight gradient makes db from the dy it stages: one image, 7 channels
        // (a partial quad), 33 output pixels (two chunks, their partial rows summed).
        Sample::new("conv/2d/short_k_bias_batch1", |g, s| {
            let x = g.input("x", &[1, 1, 5 * s, 13])?;
            g.conv2d("y", x, Conv2d::new(1, 7, (3, 3)))
        }),
        // One weight and bias twice (7 → 7, 2×2: 28 taps): the first convolution's weight
        // gradient, made last, adds into the second's dw while each writes its own db (the
        // compiler's `sums`), over chunks (48 and 33 pixels) and in one (16 and 6 pixels: dw
        // and db written by the tap loop itself).
        Sample::new("conv/2d/short_k_shared_bias", |g, s| {
            shared_conv(g, &[1, 7, 5 * s, 13])
        }),
        Sample::new("conv/2d/short_k_shared_bias_one_chunk", |g, s| {
            shared_conv(g, &[2, 7, 3 * s, 5])
        }),
        // 64 channels of 32 taps and the bias: 16 quads of 33 sums, three per invocation.
        Sample::new("conv/2d/short_k_64_channels_bias", |g, s| {
            let x = g.input("x", &[3, 2, 7 * s, 7])?;
            g.conv2d("y", x, Conv2d::new(2, 64, (4, 4)))
        }),
        Sample::new("conv/transpose2d/stride_outpad", |g, s| {
            let x = g.input("x", &[2, 3, 4 * s, 5])?;
            let mut c = ConvTranspose2d::new(3, 2, (3, 3));
            c.stride = (2, 2);
            c.padding = Padding::Explicit {
                top: 1,
                bottom: 1,
                left: 0,
                right: 1,
            };
            c.output_padding = (1, 0);
            g.conv("y", x, ConvKind::T2(c))
        }),
        Sample::new("conv/transpose2d/3x3_stride1", |g, s| {
            let x = g.input("x", &[2, 5, 3 * s, 6])?;
            let mut c = ConvTranspose2d::new(5, 3, (3, 3));
            c.padding = Padding::Explicit {
                top: 2,
                bottom: 0,
                left: 1,
                right: 1,
            };
            g.conv("y", x, ConvKind::T2(c))
        }),
        Sample::new("conv/transpose1d/groups", |g, s| {
            let x = g.input("x", &[2, 4, 7 * s])?;
            let mut c = ConvTranspose1d::new(4, 6, 4);
            c.stride = 3;
            c.groups = 2;
            c.bias = false;
            g.conv("y", x, ConvKind::T1(c))
        }),
    ]
}

/// `conv(conv(x; w, b); w, b)` of 7 channels with one 2×2 weight `w` and bias `b`.
fn shared_conv(g: &mut Graph, x_shape: &[usize]) -> Result<Value> {
    let c = ConvKind::D2(Conv2d::new(7, 7, (2, 2)));
    let x = g.input("x", x_shape)?;
    let w = g.param("w", &c.op().weight_shape())?;
    let b = g.param("b", &[7])?;
    let h = g.add("h", ConvOp::Forward(c), &[x, w, b])?;
    g.add("y", ConvOp::Forward(c), &[h, w, b])
}
