//! Convolution descriptors: `Conv2d`, `Conv1d`, `ConvTranspose2d`, `ConvTranspose1d`.
//!
//! Layouts follow PyTorch: activations NCHW (1-D: NCL), conv weights OIHW `(C_out, C_in/groups,
//! kh, kw)`, conv-transpose weights `(C_in, C_out/groups, kh, kw)`. Every descriptor resolves, for
//! a given input shape, to one [`ConvGeometry`]: the sizes of a plain 2-D convolution. 1-D ops are
//! that geometry with H = 1; a conv-transpose is the *adjoint* of the geometry's convolution, so
//! one forward kernel, one backward-data kernel and one weight-gradient kernel serve all four.

pub mod coop;
pub mod gpu;
mod op;
mod param_grad;
mod partition;
mod shaders;
pub mod short_k;
mod uniform;
pub mod winograd;
pub mod reference;
pub(crate) mod samples;

pub use op::ConvKind;
pub use op::ConvOp;

use crate::error::{Result, attr_err, shape_err};
use crate::tensor::{DType, Tensor};

/// How the input is padded (with zeros for convolutions; ignored taps for pooling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Given amounts on each side; asymmetric is allowed.
    Explicit {
        /// Rows added above.
        top: usize,
        /// Rows added below.
        bottom: usize,
        /// Columns added on the left.
        left: usize,
        /// Columns added on the right.
        right: usize,
    },
    /// No padding: only windows that fit entirely inside the input.
    Valid,
    /// TensorFlow / MPS "same": output = ceil(in / stride), the total padding
    /// `max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0)` split with the odd one on the
    /// bottom / right.
    Same,
}

impl Padding {
    /// The same amount on all four sides.
    pub fn symmetric(p: usize) -> Self {
        Padding::Explicit {
            top: p,
            bottom: p,
            left: p,
            right: p,
        }
    }

    /// `ph` on top and bottom, `pw` on left and right (PyTorch's `padding=(ph, pw)`).
    pub fn hw(ph: usize, pw: usize) -> Self {
        Padding::Explicit {
            top: ph,
            bottom: ph,
            left: pw,
            right: pw,
        }
    }

    /// The explicit amounts `(top, bottom, left, right)` for an input of `(h, w)` under a window
    /// of `kernel`, `stride`, `dilation` (each `(y, x)`).
    pub fn resolve(
        &self,
        (h, w): (usize, usize),
        kernel: (usize, usize),
        stride: (usize, usize),
        dilation: (usize, usize),
    ) -> (usize, usize, usize, usize) {
        match *self {
            Padding::Explicit {
                top,
                bottom,
                left,
                right,
            } => (top, bottom, left, right),
            Padding::Valid => (0, 0, 0, 0),
            Padding::Same => {
                let (t, b) = same_1d(h, kernel.0, stride.0, dilation.0);
                let (l, r) = same_1d(w, kernel.1, stride.1, dilation.1);
                (t, b, l, r)
            }
        }
    }
}

/// "Same" padding along one axis: `(before, after)`, the odd one after (TensorFlow's rule).
/// Exact in u128: the total is at most the dilated kernel (`(out - 1)·s < len`), which the
/// geometries check fits a usize; only an unchecked call can saturate.
fn same_1d(len: usize, k: usize, s: usize, d: usize) -> (usize, usize) {
    let s = s.max(1) as u128;
    let out = (len as u128).div_ceil(s);
    let total = ((out.max(1) - 1) * s + dilated(k, d)).saturating_sub(len as u128);
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    (total / 2, total - total / 2)
}

/// Padding of a 1-D op, on the length axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding1d {
    /// Given amounts; asymmetric is allowed.
    Explicit {
        /// Elements added at the start.
        left: usize,
        /// Elements added at the end.
        right: usize,
    },
    /// No padding.
    Valid,
    /// As [`Padding::Same`].
    Same,
}

impl Padding1d {
    /// The 2-D padding of the H = 1 view of this op.
    pub fn to_2d(self) -> Padding {
        match self {
            Padding1d::Explicit { left, right } => Padding::Explicit {
                top: 0,
                bottom: 0,
                left,
                right,
            },
            Padding1d::Valid => Padding::Valid,
            Padding1d::Same => Padding::Same,
        }
    }
}

/// Extent of a dilated kernel: `(k - 1) * d + 1`, exact in u128 (`Ctx::check_window` refuses one
/// past usize).
fn dilated(k: usize, d: usize) -> u128 {
    k.saturating_sub(1) as u128 * d as u128 + 1
}

/// The largest coordinate extent the kernels take: they compute tap coordinates in i32 and mark
/// a tap outside the input with -2^30 (`OUTSIDE` in `wgsl/conv/common.wgsl`), so every padded
/// extent, padding, stride and dilated kernel must stay below 2^30.
pub const MAX_GPU_EXTENT: usize = (1 << 30) - 1;

/// All sizes of one 2-D convolution (or pooling window pass), resolved for a concrete input.
///
/// The index rule every kernel must follow: output `(oy, ox)` with kernel tap `(ky, kx)` reads
/// input `(oy * stride.0 + ky * dilation.0 - pad_top, ox * stride.1 + kx * dilation.1 - pad_left)`
/// when that lies inside `in_size`, and reads zero (skips the tap) otherwise. Output channel `oc`
/// belongs to group `oc / (out_channels / groups)` and sees the `in_channels / groups` input
/// channels of that group. Pooling uses the same geometry with `groups = in_channels =
/// out_channels` (a depthwise window).
///
/// `out_size` is the natural `(in + pad - dilated_k) / stride + 1` except for a conv-transpose
/// whose `output_padding >= stride` (allowed while `< dilation`, as in PyTorch): there the
/// geometry's convolution computes only the first `out_size` rows / columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeometry {
    /// N.
    pub batch: usize,
    /// Channels of the convolution's input.
    pub in_channels: usize,
    /// Channels of the convolution's output.
    pub out_channels: usize,
    /// Channel groups (1 = dense, `in_channels` = depthwise).
    pub groups: usize,
    /// `(H, W)` of the convolution's input.
    pub in_size: (usize, usize),
    /// `(OH, OW)` of the convolution's output.
    pub out_size: (usize, usize),
    /// `(kh, kw)`.
    pub kernel: (usize, usize),
    /// `(sh, sw)`.
    pub stride: (usize, usize),
    /// `(dh, dw)`.
    pub dilation: (usize, usize),
    /// `(top, bottom, left, right)`; only top and left enter the index rule.
    pub padding: (usize, usize, usize, usize),
}

impl ConvGeometry {
    /// `(N, C_in, H, W)`.
    pub fn in_shape(&self) -> Vec<usize> {
        vec![self.batch, self.in_channels, self.in_size.0, self.in_size.1]
    }
    /// `(N, C_out, OH, OW)`.
    pub fn out_shape(&self) -> Vec<usize> {
        vec![
            self.batch,
            self.out_channels,
            self.out_size.0,
            self.out_size.1,
        ]
    }
    /// OIHW: `(C_out, C_in / groups, kh, kw)`.
    pub fn weight_shape(&self) -> Vec<usize> {
        vec![
            self.out_channels,
            self.in_channels / self.groups,
            self.kernel.0,
            self.kernel.1,
        ]
    }
    /// Input row read by output row `oy` at kernel row `ky`, or `None` if it falls in the padding.
    pub fn tap_y(&self, oy: usize, ky: usize) -> Option<usize> {
        tap(
            oy,
            ky,
            self.stride.0,
            self.dilation.0,
            self.padding.0,
            self.in_size.0,
        )
    }
    /// Errors unless every coordinate the GPU kernels compute for this geometry fits their
    /// 32-bit arithmetic ([`MAX_GPU_EXTENT`]); the lowering of every convolution and pool
    /// checks it, so a huge stride or padding is refused rather than wrapped.
    pub fn check_gpu_range(&self, op: &str) -> Result<()> {
        let (t, b, l, r) = self.padding;
        let axes = [
            (
                "height",
                self.in_size.0,
                t,
                b,
                self.kernel.0,
                self.stride.0,
                self.dilation.0,
            ),
            (
                "width",
                self.in_size.1,
                l,
                r,
                self.kernel.1,
                self.stride.1,
                self.dilation.1,
            ),
        ];
        for (axis, len, before, after, k, s, d) in axes {
            let padded = len.saturating_add(before).saturating_add(after);
            let extent = (padded as u128).max(dilated(k, d)).max(s as u128);
            if extent > MAX_GPU_EXTENT as u128 {
                return shape_err(
                    op,
                    format!(
                        "{axis}: input {len} + padding {before} + {after}, kernel {k}, stride {s}, \
                         dilation {d} exceed the kernels' coordinate range {MAX_GPU_EXTENT}"
                    ),
                );
            }
        }
        Ok(())
    }

    /// Input column read by output column `ox` at kernel column `kx`, or `None` in the padding.
    pub fn tap_x(&self, ox: usize, kx: usize) -> Option<usize> {
        tap(
            ox,
            kx,
            self.stride.1,
            self.dilation.1,
            self.padding.2,
            self.in_size.1,
        )
    }
}

fn tap(o: usize, k: usize, s: usize, d: usize, pad: usize, len: usize) -> Option<usize> {
    o.checked_mul(s)?
        .checked_add(k.checked_mul(d)?)?
        .checked_sub(pad)
        .filter(|&i| i < len)
}

/// The first of `out` windows (`taps` taps, stride `s`, dilation `d`, `pad` before a `len`-long
/// axis) that reads only padding, found from each tap's interval of outputs that read the input —
/// O(taps·log taps) (O(1) undilated), not O(out·taps), so a huge axis is checked at once. The
/// caller bounds `taps` of a dilated window.
pub(crate) fn first_padding_only_window(
    out: usize,
    taps: usize,
    s: usize,
    d: usize,
    pad: usize,
    len: usize,
) -> Option<usize> {
    if out == 0 || taps == 0 {
        return None;
    }
    let (s, d, pad, len) = (s.max(1) as u128, d as u128, pad as u128, len as u128);
    if d == 1 {
        // Consecutive taps: the outputs reading the input are one interval.
        let first = (pad.saturating_sub(taps as u128 - 1)).div_ceil(s);
        let last = (pad + len - 1) / s;
        return if first > 0 {
            Some(0)
        } else {
            (last + 1 < out as u128).then_some(last as usize + 1)
        };
    }
    // Tap t reads the input for the outputs o with pad ≤ o·s + t·d < pad + len.
    let mut covered: Vec<(u128, u128)> = (0..taps as u128)
        .filter_map(|t| {
            let first = pad.saturating_sub(t * d).div_ceil(s);
            let end = (pad + len).checked_sub(t * d).filter(|&e| e > 0)?; // o·s < end
            let last = ((end - 1) / s).min(out as u128 - 1);
            (first <= last).then_some((first, last))
        })
        .collect();
    covered.sort_unstable();
    let mut next = 0u128; // every output below `next` reads the input
    for (first, last) in covered {
        if first > next {
            break;
        }
        next = next.max(last + 1);
    }
    (next < out as u128).then_some(next as usize)
}

/// What the four convolution descriptors share, so kernels and the CPU oracle can treat them as
/// one: a [`ConvGeometry`] applied forward, or transposed (its adjoint).
pub trait Convolution {
    /// The op's name as it appears in errors.
    fn name(&self) -> &'static str;
    /// The convolution this op computes (or, if [`Self::is_transposed`], is the adjoint of).
    fn geometry(&self, input: &[usize]) -> Result<ConvGeometry>;
    /// True for conv-transpose: the op's input is the geometry's *output* side.
    fn is_transposed(&self) -> bool;
    /// Whether the op adds a bias per output channel.
    fn has_bias(&self) -> bool;
    /// Output shape for an input of shape `input`.
    fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>>;
    /// Weight shape, PyTorch's layout (OIHW; `(C_in, C_out/groups, kh, kw)` transposed).
    fn weight_shape(&self) -> Vec<usize>;
    /// Channels of the op's output, the length of its bias.
    fn out_channels(&self) -> usize;
    /// Channels of the op's input (0: to be taken from the input by `Graph::conv`).
    fn in_channels(&self) -> usize;
    /// This descriptor as a [`ConvKind`], the operand of the graph op [`ConvOp`].
    fn kind(&self) -> ConvKind;
}

/// How an op names itself in errors; 1-D ops show only the length of `(H, W)` pairs.
#[derive(Clone, Copy)]
pub(crate) struct Ctx {
    pub op: &'static str,
    pub one_d: bool,
}

impl Ctx {
    pub const fn two_d(op: &'static str) -> Self {
        Ctx { op, one_d: false }
    }
    pub fn pair(self, (a, b): (usize, usize)) -> String {
        if self.one_d {
            b.to_string()
        } else {
            format!("({a}, {b})")
        }
    }
    /// The name of the width axis (`x`; "length" for 1-D ops) or the height axis (`!x`).
    fn axis(self, x: bool) -> &'static str {
        match (x, self.one_d) {
            (false, _) => "height",
            (true, false) => "width",
            (true, true) => "length",
        }
    }

    /// Checks rank and non-empty dims and returns the input as `[N, C, H, W]` (1-D: H = 1).
    pub fn input_4d(self, input: &[usize]) -> Result<[usize; 4]> {
        let (rank, layout) = if self.one_d {
            (3, "(N, C, L)")
        } else {
            (4, "(N, C, H, W)")
        };
        if input.len() != rank {
            return shape_err(
                self.op,
                format!(
                    "expects a rank-{rank} input {layout}, got {input:?} of rank {}",
                    input.len()
                ),
            );
        }
        if input.contains(&0) {
            return shape_err(self.op, format!("input {input:?} has a zero dimension"));
        }
        Ok(if self.one_d {
            [input[0], input[1], 1, input[2]]
        } else {
            [input[0], input[1], input[2], input[3]]
        })
    }

    /// Kernel, stride and dilation must all be at least 1.
    pub fn check_window(
        self,
        kernel: (usize, usize),
        stride: (usize, usize),
        dilation: (usize, usize),
    ) -> Result<()> {
        for (what, v) in [
            ("kernel", kernel),
            ("stride", stride),
            ("dilation", dilation),
        ] {
            if v.0 == 0 || v.1 == 0 {
                return attr_err(
                    self.op,
                    format!("{what} {} must be at least 1", self.pair(v)),
                );
            }
        }
        // Every size computed from the window (Same padding, output lengths) then fits a usize.
        let too_long = |k, d| dilated(k, d) > usize::MAX as u128;
        if too_long(kernel.0, dilation.0) || too_long(kernel.1, dilation.1) {
            return attr_err(
                self.op,
                format!(
                    "the dilated kernel (kernel {} - 1) · dilation {} + 1 overflows a usize",
                    self.pair(kernel),
                    self.pair(dilation)
                ),
            );
        }
        Ok(())
    }

    fn check_channels(self, in_channels: usize, out_channels: usize, groups: usize) -> Result<()> {
        if in_channels == 0 || out_channels == 0 {
            return attr_err(
                self.op,
                format!(
                    "in_channels {in_channels} and out_channels {out_channels} must be at least 1"
                ),
            );
        }
        if groups == 0 {
            return attr_err(self.op, "groups 0 must be at least 1");
        }
        for (what, c) in [("in_channels", in_channels), ("out_channels", out_channels)] {
            if c % groups != 0 {
                return attr_err(
                    self.op,
                    format!("groups {groups} does not divide {what} {c}"),
                );
            }
        }
        Ok(())
    }

    fn check_in_channels(self, input: &[usize], c: usize, expected: usize) -> Result<()> {
        if c != expected {
            return shape_err(
                self.op,
                format!("input {input:?} has {c} channels but in_channels is {expected}"),
            );
        }
        Ok(())
    }

    /// Output length along the width (`x`) or height axis of a windowed op; fails if the
    /// dilated kernel does not fit in the padded input.
    pub fn out_len(
        self,
        x: bool,
        len: usize,
        pad: (usize, usize),
        k: usize,
        s: usize,
        d: usize,
    ) -> Result<usize> {
        let padded = len.checked_add(pad.0).and_then(|p| p.checked_add(pad.1));
        let Some(padded) = padded else {
            return shape_err(
                self.op,
                format!(
                    "the padded {} {len} + {} + {} overflows a usize",
                    self.axis(x),
                    pad.0,
                    pad.1
                ),
            );
        };
        let eff = usize::try_from(dilated(k, d)).unwrap_or(usize::MAX);
        if padded < eff {
            let axis = self.axis(x);
            return shape_err(
                self.op,
                format!(
                    "kernel {axis} {k} (dilated {eff}) is larger than the padded input {axis} \
                     {padded} (input {len} + padding {} + {})",
                    pad.0, pad.1
                ),
            );
        }
        Ok((padded - eff) / s + 1)
    }
}

const CONV2D: Ctx = Ctx::two_d("conv2d");
const CONV1D: Ctx = Ctx {
    op: "conv1d",
    one_d: true,
};

/// 2-D convolution (cross-correlation, as in every framework) on `(N, C, H, W)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2d {
    /// Input channels C.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// `(kh, kw)`.
    pub kernel: (usize, usize),
    /// `(sh, sw)`.
    pub stride: (usize, usize),
    /// `(dh, dw)`.
    pub dilation: (usize, usize),
    /// Channel groups, as PyTorch's `groups` (1 = dense, `in_channels` = depthwise).
    pub groups: usize,
    /// Padding of H and W.
    pub padding: Padding,
    /// Whether a bias per output channel is learned and added.
    pub bias: bool,
}

impl Conv2d {
    /// Stride 1, dilation 1, one group, no padding, with bias; change fields as needed.
    pub fn new(in_channels: usize, out_channels: usize, kernel: (usize, usize)) -> Self {
        Conv2d {
            in_channels,
            out_channels,
            kernel,
            stride: (1, 1),
            dilation: (1, 1),
            groups: 1,
            padding: Padding::Valid,
            bias: true,
        }
    }

    /// Checks the attributes alone (no input needed).
    pub fn validate(&self) -> Result<()> {
        self.validate_as(CONV2D)
    }

    fn validate_as(&self, ctx: Ctx) -> Result<()> {
        ctx.check_channels(self.in_channels, self.out_channels, self.groups)?;
        ctx.check_window(self.kernel, self.stride, self.dilation)
    }

    /// `(top, bottom, left, right)` for an input of `h` x `w`.
    pub fn resolved_padding(&self, h: usize, w: usize) -> (usize, usize, usize, usize) {
        self.padding
            .resolve((h, w), self.kernel, self.stride, self.dilation)
    }

    /// Validates the op against `input` `(N, C, H, W)` and resolves all sizes.
    pub fn geometry(&self, input: &[usize]) -> Result<ConvGeometry> {
        self.geometry_as(CONV2D, input)
    }

    fn geometry_as(&self, ctx: Ctx, input: &[usize]) -> Result<ConvGeometry> {
        self.validate_as(ctx)?;
        let [n, c, h, w] = ctx.input_4d(input)?;
        ctx.check_in_channels(input, c, self.in_channels)?;
        let pad = self.resolved_padding(h, w);
        let (k, s, d) = (self.kernel, self.stride, self.dilation);
        let oh = ctx.out_len(false, h, (pad.0, pad.1), k.0, s.0, d.0)?;
        let ow = ctx.out_len(true, w, (pad.2, pad.3), k.1, s.1, d.1)?;
        Ok(ConvGeometry {
            batch: n,
            in_channels: c,
            out_channels: self.out_channels,
            groups: self.groups,
            in_size: (h, w),
            out_size: (oh, ow),
            kernel: k,
            stride: s,
            dilation: d,
            padding: pad,
        })
    }

    /// `(N, C_out, OH, OW)` for `input` `(N, C_in, H, W)`.
    pub fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(self.geometry(input)?.out_shape())
    }

    /// OIHW: `(C_out, C_in / groups, kh, kw)`.
    pub fn weight_shape(&self) -> Vec<usize> {
        vec![
            self.out_channels,
            self.in_channels / self.groups.max(1),
            self.kernel.0,
            self.kernel.1,
        ]
    }

    /// `(C_out,)` if the op has a bias.
    pub fn bias_shape(&self) -> Option<Vec<usize>> {
        self.bias.then(|| vec![self.out_channels])
    }
}

/// 1-D convolution on `(N, C, L)`: a [`Conv2d`] on `(N, C, 1, L)` with a `1 x k` kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv1d {
    /// Input channels C.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel length k.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Channel groups, as PyTorch's `groups`.
    pub groups: usize,
    /// Padding of L.
    pub padding: Padding1d,
    /// Whether a bias per output channel is learned and added.
    pub bias: bool,
}

impl Conv1d {
    /// Stride 1, dilation 1, one group, no padding, with bias.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Conv1d {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            dilation: 1,
            groups: 1,
            padding: Padding1d::Valid,
            bias: true,
        }
    }

    /// The equivalent 2-D op on `(N, C, 1, L)`; weights `(O, C/g, k)` are `(O, C/g, 1, k)`.
    pub fn to_2d(&self) -> Conv2d {
        Conv2d {
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            kernel: (1, self.kernel),
            stride: (1, self.stride),
            dilation: (1, self.dilation),
            groups: self.groups,
            padding: self.padding.to_2d(),
            bias: self.bias,
        }
    }

    /// `Err(Attr)` on an invalid attribute (a zero size, channels not divisible by the groups, …).
    pub fn validate(&self) -> Result<()> {
        self.to_2d().validate_as(CONV1D)
    }

    /// `(left, right)` for an input of length `l`.
    pub fn resolved_padding(&self, l: usize) -> (usize, usize) {
        let (_, _, left, right) = self.to_2d().resolved_padding(1, l);
        (left, right)
    }

    /// The H = 1 geometry for `input` `(N, C, L)`.
    pub fn geometry(&self, input: &[usize]) -> Result<ConvGeometry> {
        self.to_2d().geometry_as(CONV1D, input)
    }

    /// `(N, C_out, OL)`.
    pub fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let g = self.geometry(input)?;
        Ok(vec![g.batch, g.out_channels, g.out_size.1])
    }

    /// `(C_out, C_in / groups, k)`.
    pub fn weight_shape(&self) -> Vec<usize> {
        vec![
            self.out_channels,
            self.in_channels / self.groups.max(1),
            self.kernel,
        ]
    }

    /// `(C_out,)` if the op has a bias.
    pub fn bias_shape(&self) -> Option<Vec<usize>> {
        self.bias.then(|| vec![self.out_channels])
    }
}

macro_rules! conv_op {
    ($t:ty, $ctx:expr, $transposed:expr, $kind:ident) => {
        impl Convolution for $t {
            fn name(&self) -> &'static str {
                $ctx.op
            }
            fn geometry(&self, input: &[usize]) -> Result<ConvGeometry> {
                <$t>::geometry(self, input)
            }
            fn is_transposed(&self) -> bool {
                $transposed
            }
            fn has_bias(&self) -> bool {
                self.bias
            }
            fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
                <$t>::out_shape(self, input)
            }
            fn weight_shape(&self) -> Vec<usize> {
                <$t>::weight_shape(self)
            }
            fn out_channels(&self) -> usize {
                self.out_channels
            }
            fn in_channels(&self) -> usize {
                self.in_channels
            }
            fn kind(&self) -> $crate::ops::conv::ConvKind {
                $crate::ops::conv::ConvKind::$kind(*self)
            }
        }
    };
}

conv_op!(Conv2d, CONV2D, false, D2);
conv_op!(Conv1d, CONV1D, false, D1);

// Declared after the macro, which the module uses.
mod transpose;
pub use transpose::{ConvTranspose1d, ConvTranspose2d};

#[cfg(test)]
mod tests;

/// Errors unless `t` is f32 of shape `expected`; `what` names the tensor.
pub(crate) fn check(op: &str, what: &str, t: &Tensor, expected: &[usize]) -> Result<()> {
    if t.shape != expected {
        return shape_err(
            op,
            format!("{what} has shape {:?}, expected {expected:?}", t.shape),
        );
    }
    t.expect_dtype(&format!("{op} {what}"), DType::F32)
}

/// The bias must be given exactly when the op has one, f32 of shape `(channels,)`.
pub(crate) fn check_bias(
    op: &str,
    has_bias: bool,
    b: Option<&Tensor>,
    channels: usize,
) -> Result<()> {
    match (has_bias, b) {
        (true, Some(b)) => check(op, "bias", b, &[channels]),
        (false, None) => Ok(()),
        (true, None) => shape_err(
            op,
            format!("the op has a bias ({channels},) but none was given"),
        ),
        (false, Some(b)) => shape_err(
            op,
            format!("the op has no bias but a bias {:?} was given", b.shape),
        ),
    }
}
