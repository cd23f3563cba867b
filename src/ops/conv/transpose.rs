//! Transposed convolutions: the adjoints of the convolutions in the parent module.

use super::{ConvGeometry, Convolution, Ctx, Padding, Padding1d, dilated};
use crate::error::{Result, attr_err, shape_err};

const CONVT2D: Ctx = Ctx::two_d("conv_transpose2d");
const CONVT1D: Ctx = Ctx {
    op: "conv_transpose1d",
    one_d: true,
};

/// 2-D transposed convolution ("deconvolution") on `(N, C_in, H, W)`: the adjoint of the
/// [`Conv2d`](super::Conv2d) with the same kernel, stride, dilation, groups and padding that maps `C_out`
/// channels back to `C_in`. Output size per axis:
/// `(in - 1) * stride - pad_before - pad_after + (k - 1) * dilation + 1 + output_padding`
/// (PyTorch's formula). With [`Padding::Same`] the output is `in * stride` (Keras / TensorFlow)
/// and `output_padding` must be 0. `output_padding` adds rows / columns at the bottom / right
/// and must be smaller than the stride or the dilation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvTranspose2d {
    /// Input channels C_in.
    pub in_channels: usize,
    /// Output channels C_out.
    pub out_channels: usize,
    /// `(kh, kw)`.
    pub kernel: (usize, usize),
    /// `(sh, sw)`.
    pub stride: (usize, usize),
    /// `(dh, dw)`.
    pub dilation: (usize, usize),
    /// Channel groups, as PyTorch's `groups`.
    pub groups: usize,
    /// Padding removed from the output, as PyTorch's `padding`.
    pub padding: Padding,
    /// `(rows, columns)` added at the bottom / right of the output.
    pub output_padding: (usize, usize),
    /// Whether a bias per output channel is learned and added.
    pub bias: bool,
}

impl ConvTranspose2d {
    /// Stride 1, dilation 1, one group, no padding, no output padding, with bias.
    pub fn new(in_channels: usize, out_channels: usize, kernel: (usize, usize)) -> Self {
        ConvTranspose2d {
            in_channels,
            out_channels,
            kernel,
            stride: (1, 1),
            dilation: (1, 1),
            groups: 1,
            padding: Padding::Valid,
            output_padding: (0, 0),
            bias: true,
        }
    }

    /// `Err(Attr)` on an invalid attribute (a zero size, channels not divisible by the groups, `output_padding` too large, …).
    pub fn validate(&self) -> Result<()> {
        self.validate_as(CONVT2D)
    }

    fn validate_as(&self, ctx: Ctx) -> Result<()> {
        ctx.check_channels(self.in_channels, self.out_channels, self.groups)?;
        ctx.check_window(self.kernel, self.stride, self.dilation)?;
        let (op, s, d) = (self.output_padding, self.stride, self.dilation);
        if op != (0, 0) && self.padding == Padding::Same {
            return attr_err(
                ctx.op,
                format!(
                    "output_padding {} must be 0 with Same padding",
                    ctx.pair(op)
                ),
            );
        }
        if op.0 >= s.0.max(d.0) || op.1 >= s.1.max(d.1) {
            return attr_err(
                ctx.op,
                format!(
                    "output_padding {} must be smaller than the stride {} or the dilation {}",
                    ctx.pair(op),
                    ctx.pair(s),
                    ctx.pair(d)
                ),
            );
        }
        Ok(())
    }

    /// `(top, bottom, left, right)` of the underlying convolution for an input of `h` x `w`
    /// (for Same: the convolution's padding on the `h * sh` x `w * sw` output).
    pub fn resolved_padding(&self, h: usize, w: usize) -> (usize, usize, usize, usize) {
        let (s, k, d) = (self.stride, self.kernel, self.dilation);
        let (h, w) = (h.saturating_mul(s.0), w.saturating_mul(s.1));
        self.padding.resolve((h, w), k, s, d)
    }

    /// The geometry of the convolution this op is the adjoint of: its `in_size` / `in_channels`
    /// are this op's *output*, its `out_size` / `out_channels` are this op's *input*
    /// `(N, C_in, H, W)`. The weight `(C_in, C_out/groups, kh, kw)` is that convolution's OIHW.
    pub fn geometry(&self, input: &[usize]) -> Result<ConvGeometry> {
        self.geometry_as(CONVT2D, input)
    }

    fn geometry_as(&self, ctx: Ctx, input: &[usize]) -> Result<ConvGeometry> {
        self.validate_as(ctx)?;
        let [n, c, h, w] = ctx.input_4d(input)?;
        ctx.check_in_channels(input, c, self.in_channels)?;
        let pad = self.resolved_padding(h, w);
        let (k, s, d, op) = (self.kernel, self.stride, self.dilation, self.output_padding);
        // Per axis: (in - 1) * s + dilated k + output_padding, less the padding the convolution
        // adds. Same is `in * s` (the formula falls short of it when the dilated kernel < stride;
        // the missing bottom / right rows are ones no tap reaches: an implicit output padding).
        let axes = [
            (h, pad.0, pad.1, k.0, s.0, d.0, op.0),
            (w, pad.2, pad.3, k.1, s.1, d.1, op.1),
        ];
        let mut out = [0; 2];
        for (a, &(i, before, after, k, s, d, op)) in axes.iter().enumerate() {
            let axis = ctx.axis(a == 1);
            // Checked: hostile sizes must be an Err, never a wrapped output size.
            let overflow = || {
                shape_err(
                    ctx.op,
                    format!("the output {axis} for input {axis} {i} overflows a usize"),
                )
            };
            out[a] = if self.padding == Padding::Same {
                match i.checked_mul(s) {
                    Some(o) => o,
                    None => return overflow(),
                }
            } else {
                let full = ((i - 1).checked_mul(s))
                    .and_then(|v| v.checked_add(usize::try_from(dilated(k, d)).ok()?))
                    .and_then(|v| v.checked_add(op));
                let (Some(full), Some(pads)) = (full, before.checked_add(after)) else {
                    return overflow();
                };
                if full <= pads {
                    return shape_err(
                        ctx.op,
                        format!(
                            "output {axis} would be {full} - padding {before} - {after} < 1 \
                             for input {axis} {i}"
                        ),
                    );
                }
                full - before - after
            };
        }
        let [oh, ow] = out;
        Ok(ConvGeometry {
            batch: n,
            in_channels: self.out_channels,
            out_channels: c,
            groups: self.groups,
            in_size: (oh, ow),
            out_size: (h, w),
            kernel: k,
            stride: s,
            dilation: d,
            padding: pad,
        })
    }

    /// `(N, C_out, OH, OW)` for `input` `(N, C_in, H, W)`.
    pub fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(self.geometry(input)?.in_shape())
    }

    /// `(C_in, C_out / groups, kh, kw)`, as PyTorch.
    pub fn weight_shape(&self) -> Vec<usize> {
        vec![
            self.in_channels,
            self.out_channels / self.groups.max(1),
            self.kernel.0,
            self.kernel.1,
        ]
    }

    /// `(C_out,)` if the op has a bias.
    pub fn bias_shape(&self) -> Option<Vec<usize>> {
        self.bias.then(|| vec![self.out_channels])
    }
}

/// 1-D transposed convolution on `(N, C_in, L)`: a [`ConvTranspose2d`] with H = 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvTranspose1d {
    /// Input channels C_in.
    pub in_channels: usize,
    /// Output channels C_out.
    pub out_channels: usize,
    /// Kernel length k.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Channel groups, as PyTorch's `groups`.
    pub groups: usize,
    /// Padding removed from the output, as PyTorch's `padding`.
    pub padding: Padding1d,
    /// Elements added at the end of the output.
    pub output_padding: usize,
    /// Whether a bias per output channel is learned and added.
    pub bias: bool,
}

impl ConvTranspose1d {
    /// Stride 1, dilation 1, one group, no padding, no output padding, with bias.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        ConvTranspose1d {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            dilation: 1,
            groups: 1,
            padding: Padding1d::Valid,
            output_padding: 0,
            bias: true,
        }
    }

    /// The equivalent 2-D op on `(N, C, 1, L)`; weights `(C_in, C_out/g, k)` gain a 1 for kh.
    pub fn to_2d(&self) -> ConvTranspose2d {
        ConvTranspose2d {
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            kernel: (1, self.kernel),
            stride: (1, self.stride),
            dilation: (1, self.dilation),
            groups: self.groups,
            padding: self.padding.to_2d(),
            output_padding: (0, self.output_padding),
            bias: self.bias,
        }
    }

    /// `Err(Attr)` on an invalid attribute (a zero size, channels not divisible by the groups, `output_padding` too large, …).
    pub fn validate(&self) -> Result<()> {
        self.to_2d().validate_as(CONVT1D)
    }

    /// `(left, right)` of the underlying convolution for an input of length `l`.
    pub fn resolved_padding(&self, l: usize) -> (usize, usize) {
        let (_, _, left, right) = self.to_2d().resolved_padding(1, l);
        (left, right)
    }

    /// The H = 1 geometry (see [`ConvTranspose2d::geometry`]) for `input` `(N, C_in, L)`.
    pub fn geometry(&self, input: &[usize]) -> Result<ConvGeometry> {
        self.to_2d().geometry_as(CONVT1D, input)
    }

    /// `(N, C_out, OL)`.
    pub fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let g = self.geometry(input)?;
        Ok(vec![g.batch, g.in_channels, g.in_size.1])
    }

    /// `(C_in, C_out / groups, k)`.
    pub fn weight_shape(&self) -> Vec<usize> {
        vec![
            self.in_channels,
            self.out_channels / self.groups.max(1),
            self.kernel,
        ]
    }

    /// `(C_out,)` if the op has a bias.
    pub fn bias_shape(&self) -> Option<Vec<usize>> {
        self.bias.then(|| vec![self.out_channels])
    }
}

conv_op!(ConvTranspose2d, CONVT2D, true, T2);
conv_op!(ConvTranspose1d, CONVT1D, true, T1);
