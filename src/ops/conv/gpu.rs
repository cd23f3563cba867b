//! Convolutions on the GPU — `Conv2d`, `Conv1d`, `ConvTranspose2d`, `ConvTranspose1d` — forward
//! and all gradients, through one generic API over [`Convolution`] (mirroring `reference`).
//!
//! Every op resolves to a [`ConvGeometry`], and three implicit GEMMs over it do all the work,
//! each a module made of its own loaders plus the matmul main loop `wgsl/gemm_core.wgsl` (so a
//! faster GEMM core speeds up the convolutions too). Groups run on workgroup z.
//!
//! * `conv_fwd`   `y  = x ⊛ w (+ b)`: M = N·OH·OW, N = C_out/g, K = (C_in/g)·kh·kw, A = im2col(x).
//! * `conv_dgrad` `dx = dy ⊛ᵀ w (+ b)`: M = N·H·W, N = C_in/g, K = (C_out/g)·kh·kw; A gathers, for
//!   each input pixel, the dy of the output pixels whose taps read it (divisibility check for
//!   stride), so stride, dilation, groups and asymmetric padding need no special case.
//! * `conv_wgrad` `dw = dy · im2col(x)`: M = C_out/g, N = (C_in/g)·kh·kw, K = N·OH·OW, split
//!   over workgroup z (K is long, M·N small) and the partial sums added by `reduce.wgsl`.
//! * `conv_bias`  `db = Σ dy` over (N, spatial) per channel: one workgroup per channel.
//!
//! A conv-transpose is the adjoint of its geometry's convolution: its forward is `conv_dgrad`
//! (with the bias in the epilogue), its backward-data is `conv_fwd`, and its weight gradient is
//! `conv_wgrad` with the roles of x and dy exchanged. 1-D ops are the H = 1 case.
//!
//! The data passes (`conv_fwd`, `conv_dgrad`) are prepared here; the parameter gradients
//! (`conv_wgrad`, `conv_bias`) in the sibling module `param_grad`, whose public functions are
//! re-exported here.
//!
//! The `*_launches` functions prepare dispatches for replay (graphs, benchmarks); the plain
//! functions allocate outputs and run at once.

use crate::error::{Error, Result};
use crate::launch::{Launch, Prepared, SPLIT_PARTIALS_SLOT, grid_1d, shared_scratch};
pub use crate::ops::conv::param_grad::{
    backward_bias_launches, backward_weights_launches, bias_grad_launches,
    conv_weight_grad_launches,
};
pub(crate) use crate::ops::conv::param_grad::{backward_weights_bias_into, backward_weights_into};
use crate::ops::conv::partition::data_gemm;
pub use crate::ops::conv::partition::{StridePhase, bias_chunks, data_split, stride_phases};
use crate::ops::conv::uniform::{k_divisors, params};
use crate::ops::conv::{ConvGeometry, ConvOp, Convolution, coop, short_k, winograd};
pub(crate) use crate::ops::conv::{check, check_bias};
use crate::ops::eager;
use crate::ops::elementwise::UnaryOp;
use crate::ops::matmul::gpu::{Gemm, gemm_launches};
use crate::tensor::{DType, Tensor};

pub(crate) use crate::ops::conv::shaders::{BIAS, DGRAD, FORWARD, WGRAD};

/// Gradients of a layer with weights: input, weights and (if the layer has one) bias.
#[derive(Debug)]
pub struct Grads {
    /// Gradient of the input (shape of x).
    pub dx: Tensor,
    /// Gradient of the weights (shape of w).
    pub dw: Tensor,
    /// Gradient of the bias (`(C_out,)`), if the layer has one.
    pub db: Option<Tensor>,
}

/// `y (N, C_out, OH, OW) = conv(x (N, C_in, H, W), w) (+ b per C_out)` of the geometry `g`.
pub fn conv_data_launch(
    g: &ConvGeometry,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    y: &Tensor,
    fused: Option<UnaryOp>,
) -> Result<Launch> {
    let d = Data {
        b,
        fused,
        accumulate: false,
    };
    implicit_gemm_launch(g, false, x, w, y, &d)
}

/// `dx (N, C_in, H, W) = convᵀ(dy (N, C_out, OH, OW), w) (+ b per C_in)` of the geometry `g`.
pub fn conv_data_adjoint_launch(
    g: &ConvGeometry,
    dy: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    dx: &Tensor,
    fused: Option<UnaryOp>,
) -> Result<Launch> {
    let d = Data {
        b,
        fused,
        accumulate: false,
    };
    implicit_gemm_launch(g, true, dy, w, dx, &d)
}

/// The epilogue of a data pass: bias, neuron, adding into the output.
struct Data<'a> {
    b: Option<&'a Tensor>,
    fused: Option<UnaryOp>,
    accumulate: bool,
}

/// The geometry's convolution (`adjoint` false: `conv_fwd`) or its adjoint (`conv_dgrad`) as one
/// implicit GEMM of the shape `data_gemm` gives, on the tensor cores where `coop::pick` says so.
fn implicit_gemm_launch(
    g: &ConvGeometry,
    adjoint: bool,
    input: &Tensor,
    w: &Tensor,
    out: &Tensor,
    d: &Data<'_>,
) -> Result<Launch> {
    implicit_gemm_phase_launch(g, adjoint, input, w, out, d, Part::Whole)
}

/// What one implicit-GEMM dispatch computes: all of it, one stride phase of the adjoint, or one
/// K split into a slab of the partial products (`(splits, chunk)`).
#[derive(Clone, Copy)]
enum Part<'a> {
    Whole,
    Phase(&'a StridePhase),
    Split(usize, usize),
}

/// [`implicit_gemm_launch`] of the `part`.
fn implicit_gemm_phase_launch(
    g: &ConvGeometry,
    adjoint: bool,
    input: &Tensor,
    w: &Tensor,
    out: &Tensor,
    d: &Data<'_>,
    part: Part<'_>,
) -> Result<Launch> {
    let phase = match part {
        Part::Phase(ph) => Some(ph),
        _ => None,
    };
    let (splits, chunk) = match part {
        Part::Split(s, c) => (s, c),
        _ => (1, 0),
    };
    let (shaders, (mut m, n, mut k)) = data_gemm(g, adjoint);
    // A phase is of the data gradient: its own pixels and taps.
    if let Some(ph) = phase {
        m = g.batch * ph.pixels.0 * ph.pixels.1;
        k = g.out_channels / g.groups * ph.taps.0 * ph.taps.1;
    }
    if splits > 1 {
        k = chunk;
    }
    // The K index is a tap: of the filter, or of the phase's taps.
    let taps = phase.map_or(g.kernel, |ph| ph.taps);
    let mut constants = crate::neuron::fused_constants(d.fused);
    constants.extend(k_divisors(&input.device, taps.0 * taps.1, taps.1));
    let c = coop::pick(
        shaders,
        &input.device,
        input.dtype(),
        (m, n, k),
        g.groups * splits,
        constants,
    );
    // Without a bias the slot is still bound (the entry reads it under a flag): reuse w.
    let bias = d.b.unwrap_or(w);
    input.device.launch(
        c.shader,
        c.entry,
        &c.constants,
        &params(
            g,
            d.b.is_some(),
            splits,
            chunk,
            d.fused,
            d.accumulate,
            phase,
        )?,
        &[input.buffer(), w.buffer(), bias.buffer(), out.buffer()],
        c.groups,
    )
}

/// `y[n, c, ...] = b[c]` for `y` viewed as `(N, C, inner)` with `C = b.numel()`.
pub fn bias_fill_launch(b: &Tensor, y: &Tensor) -> Result<Launch> {
    let c = b.numel();
    let n = y.shape.first().copied().unwrap_or(1);
    let inner = y.numel() / (n * c).max(1);
    y.device.launch(
        &BIAS,
        "bias_fill",
        &[],
        &[n as u32, c as u32, inner as u32, 0],
        &[b.buffer(), y.buffer()],
        grid_1d(y.numel(), 256),
    )
}

/// The geometry for `x_shape`, after checking the weight.
fn geometry_and_weight(
    op: &(impl Convolution + ?Sized),
    x_shape: &[usize],
    w: &Tensor,
) -> Result<ConvGeometry> {
    let g = op.geometry(x_shape)?;
    check(op.name(), "weight", w, &op.weight_shape())?;
    Ok(g)
}

/// Prepares `y = op(x; w) + b` into `y` (shape `op.out_shape(x)`). `b` is given exactly when the
/// op has a bias.
pub fn forward_launches(
    op: &(impl Convolution + ?Sized),
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    y: &Tensor,
) -> Result<Prepared> {
    forward_fused_launches(op, x, w, b, y, None)
}

/// `forward_launches` with a neuron fused into the GEMM epilogue (conv + bias + neuron in one
/// dispatch).
pub fn forward_fused_launches(
    op: &(impl Convolution + ?Sized),
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    y: &Tensor,
    fused: Option<UnaryOp>,
) -> Result<Prepared> {
    forward_into(op, x, w, b, y, fused, false)
}

/// `forward_fused_launches`, adding into `y` when `accumulate` (`y += neuron(conv + b)` is not
/// offered: the epilogue adds before the neuron, so the caller passes no neuron then).
pub fn forward_into(
    op: &(impl Convolution + ?Sized),
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    y: &Tensor,
    fused: Option<UnaryOp>,
    accumulate: bool,
) -> Result<Prepared> {
    let name = op.name();
    let g = geometry_and_weight(op, &x.shape, w)?;
    x.expect_dtype(name, DType::F32)?;
    check_bias(name, op.has_bias(), b, op.out_channels())?;
    check(name, "output", y, &op.out_shape(&x.shape)?)?;
    let data = Data {
        b,
        fused,
        accumulate,
    };
    data_launches(&g, op.is_transposed(), x, w, y, data)
}

/// Prepares `dx` (shape `x_shape`) from the output gradient `dy`.
pub fn backward_data_launches(
    op: &(impl Convolution + ?Sized),
    x_shape: &[usize],
    w: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Prepared> {
    backward_data_into(op, x_shape, w, dy, dx, false)
}

/// `backward_data_launches`, adding into `dx` when `accumulate` (a gradient sum in place).
pub(crate) fn backward_data_into(
    op: &(impl Convolution + ?Sized),
    x_shape: &[usize],
    w: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
    accumulate: bool,
) -> Result<Prepared> {
    let name = op.name();
    let g = geometry_and_weight(op, x_shape, w)?;
    check(name, "output gradient", dy, &op.out_shape(x_shape)?)?;
    check(name, "input gradient", dx, x_shape)?;
    let data = Data {
        b: None,
        fused: None,
        accumulate,
    };
    data_launches(&g, !op.is_transposed(), dy, w, dx, data)
}

/// The geometry's convolution (`adjoint` false: `out = conv(input)`) or its adjoint (`out =
/// convᵀ(input)`), with the epilogue `d`. A pointwise one in f32 without a bias ([`pointwise`])
/// runs on the matmul GEMM where [`pointwise_faster`] says so (in f16 it was no faster than the
/// convolutions' tensor-core core, Inception v3's step 5% slower); every other on the
/// implicit-GEMM modules.
fn data_launches(
    g: &ConvGeometry,
    adjoint: bool,
    input: &Tensor,
    w: &Tensor,
    out: &Tensor,
    d: Data<'_>,
) -> Result<Prepared> {
    if winograd::chosen(g, adjoint, input) {
        return winograd::launches(g, adjoint, input, w, d.b, out, d.fused, d.accumulate);
    }
    if !adjoint && short_k::fits(g, input, out, w) {
        let l = short_k::forward_launch(g, input, w, d.b, out, d.fused, d.accumulate)?;
        return Ok(Prepared::one(l));
    }
    if d.b.is_none()
        && input.dtype() == DType::F32
        && pointwise(g)
        && pointwise_faster(g, adjoint, input)
    {
        return pointwise_launches(g, adjoint, input, w, out, d.fused, d.accumulate);
    }
    let phases = if adjoint {
        stride_phases(g)
    } else {
        Vec::new()
    };
    // The split's sum adds onto the bias written first, so it cannot also add into the output.
    let bias_and_sum = d.b.is_some() && d.accumulate;
    if phases.is_empty() && !bias_and_sum {
        let (splits, chunk) = data_split(g, adjoint, input);
        if splits > 1 {
            return split_launches(g, adjoint, input, w, out, d, (splits, chunk));
        }
    }
    if phases.is_empty() {
        return Ok(Prepared::one(implicit_gemm_launch(
            g, adjoint, input, w, out, &d,
        )?));
    }
    let launches = phases
        .iter()
        .map(|ph| implicit_gemm_phase_launch(g, adjoint, input, w, out, &d, Part::Phase(ph)))
        .collect::<Result<_>>()?;
    Ok(Prepared {
        launches,
        scratch: Vec::new(),
    })
}

/// A data pass split over K: the bias (if any) written into `out` first, each split's partial
/// product into its slab of a scratch tensor, then matmul's `gemm_sum` adding the slabs onto
/// `out` in order with the neuron.
fn split_launches(
    g: &ConvGeometry,
    adjoint: bool,
    input: &Tensor,
    w: &Tensor,
    out: &Tensor,
    d: Data<'_>,
    (splits, chunk): (usize, usize),
) -> Result<Prepared> {
    let part = shared_scratch(
        &input.device,
        SPLIT_PARTIALS_SLOT,
        &[splits, out.numel()],
        out.dtype(),
    )?;
    let mut launches = Vec::new();
    if let Some(b) = d.b {
        launches.push(bias_fill_launch(b, out)?);
    }
    let raw = Data {
        b: None,
        fused: None,
        accumulate: false,
    };
    let split = Part::Split(splits, chunk);
    launches.push(implicit_gemm_phase_launch(
        g, adjoint, input, w, &part, &raw, split,
    )?);
    let onto = d.accumulate || d.b.is_some();
    launches.push(crate::ops::matmul::gpu::sum_splits_launch(
        &part, out, splits, onto, d.fused,
    )?);
    Ok(Prepared {
        launches,
        scratch: vec![part],
    })
}

/// A 1×1 kernel at stride 1 without padding, in one group: then each image's output is one
/// matrix product with the weight, `y[n] (C_out, HW) = w (C_out, C_in) · x[n] (C_in, HW)`, whose
/// operands the matmul GEMM reads as rows (vector loads, the tensor cores for f16), where the
/// implicit GEMM gathers every element through the index rule.
pub fn pointwise(g: &ConvGeometry) -> bool {
    g.kernel == (1, 1) && g.stride == (1, 1) && g.padding == (0, 0, 0, 0) && g.groups == 1
}

/// The implicit GEMM's cost in gathers relative to the matmul GEMM's row loads, in the forward
/// and in the data gradient (fitted to Inception v3's and ResNet-50's 1×1 convolutions on the
/// H200, BENCHMARKS.md).
const GATHER_COST: (f64, f64) = (1.3, 1.7);

/// Whether [`pointwise`]'s batched GEMM over the images is faster for this pass than the
/// implicit GEMM over all pixels at once, by the waves each takes (`matmul::gpu::launch_cost`).
/// Per image the batched GEMM has few columns where images are small (17×17 in Inception v3):
/// its padded tiles and partial waves then cost more than the gathers. Always on a CPU adapter,
/// where the direct loop has no waves.
fn pointwise_faster(g: &ConvGeometry, adjoint: bool, input: &Tensor) -> bool {
    use crate::ops::matmul::gpu::{gemm_grid, gemm_split, launch_cost};
    let dev = &input.device;
    // Out of the GPU's range, pointwise_launches reports it.
    if crate::launch::direct_gemm(dev) || g.check_gpu_range("convolution").is_err() {
        return true;
    }
    let batched = pointwise_gemm(g, adjoint, None, false);
    let (splits, chunk) = gemm_split(dev, &batched);
    let (entry, grid) = gemm_grid(dev, batched.m, batched.n, batched.batch * splits);
    let on_matmul = launch_cost(entry, grid, chunk, splits > 1);
    let (_, (m, n, _)) = data_gemm(g, adjoint);
    let (splits, chunk) = data_split(g, adjoint, input);
    let (entry, grid) = gemm_grid(dev, m, n, splits);
    let gather = if adjoint {
        GATHER_COST.1
    } else {
        GATHER_COST.0
    };
    on_matmul <= launch_cost(entry, grid, chunk, splits > 1) * gather
}

/// [`pointwise`]'s data passes as one batched GEMM over the images, the weight shared:
/// forward `y[n] = w · x[n]`, adjoint `dx[n] = wᵀ · dy[n]`.
fn pointwise_launches(
    g: &ConvGeometry,
    adjoint: bool,
    input: &Tensor,
    w: &Tensor,
    out: &Tensor,
    fused: Option<UnaryOp>,
    accumulate: bool,
) -> Result<Prepared> {
    // check_gpu_range bounds every size and product here by u32.
    g.check_gpu_range("convolution")?;
    let gemm = pointwise_gemm(g, adjoint, fused, accumulate);
    gemm_launches(&gemm, w, input, out)
}

/// [`pointwise_launches`]' GEMM: per image (`batch`), `(C_out, HW) = w · x[n]` or its adjoint.
fn pointwise_gemm(
    g: &ConvGeometry,
    adjoint: bool,
    fused: Option<UnaryOp>,
    accumulate: bool,
) -> Gemm {
    let hw = g.in_size.0 * g.in_size.1;
    let (cin, cout) = (g.in_channels, g.out_channels);
    let (m, k) = if adjoint { (cin, cout) } else { (cout, cin) };
    Gemm {
        m,
        n: hw,
        k,
        batch: g.batch,
        trans_a: adjoint,
        trans_b: false,
        accumulate,
        alpha: 1.0,
        a_stride: 0,
        b_stride: k * hw,
        c_stride: m * hw,
        fused,
    }
}

/// `y = op(x; w) + b`, as `reference::forward`.
pub fn forward(
    op: &(impl Convolution + ?Sized),
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
) -> Result<Tensor> {
    op.out_shape(&x.shape)?; // the input's errors first, as the launch reports them
    let mut ins = vec![x, w];
    ins.extend(b);
    eager::run_first(&x.device, ConvOp::Forward(op.kind()), &ins)
}

/// `dx` for an input of `x_shape`, given the output gradient `dy`.
pub fn backward_data(
    op: &(impl Convolution + ?Sized),
    x_shape: &[usize],
    w: &Tensor,
    dy: &Tensor,
) -> Result<Tensor> {
    op.geometry(x_shape)?;
    let x = eager::shape_only(dy, x_shape);
    eager::run_first(&dy.device, ConvOp::GradData(op.kind()), &[w, dy, &x])
}

/// `dw`, in the op's weight layout.
pub fn backward_weights(
    op: &(impl Convolution + ?Sized),
    x: &Tensor,
    dy: &Tensor,
) -> Result<Tensor> {
    op.geometry(&x.shape)?;
    eager::run_first(&x.device, ConvOp::GradWeight(op.kind()), &[x, dy])
}

/// `db` `(C_out,)`.
pub fn backward_bias(
    op: &(impl Convolution + ?Sized),
    x_shape: &[usize],
    dy: &Tensor,
) -> Result<Tensor> {
    check(op.name(), "output gradient", dy, &op.out_shape(x_shape)?)?;
    eager::run_first(&dy.device, ConvOp::BiasGrad, &[dy])
}

/// Prepares every gradient into the given tensors; `db` exactly when the op has a bias.
pub fn backward_launches(
    op: &(impl Convolution + ?Sized),
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    grads: &Grads,
) -> Result<Prepared> {
    let mut p = backward_data_launches(op, &x.shape, w, dy, &grads.dx)?;
    check_bias(
        op.name(),
        op.has_bias(),
        grads.db.as_ref(),
        op.out_channels(),
    )?;
    p.extend(match &grads.db {
        Some(db) => backward_weights_bias_into(op, x, dy, &grads.dw, db, false)?,
        None => backward_weights_launches(op, x, dy, &grads.dw)?,
    });
    Ok(p)
}

/// All gradients (one run per gradient op, as a graph's: dw and db in one);
/// `db` is `Some` exactly when the op has a bias.
pub fn backward(
    op: &(impl Convolution + ?Sized),
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
) -> Result<Grads> {
    let dx = backward_data(op, &x.shape, w, dy)?;
    if !op.has_bias() {
        let dw = backward_weights(op, x, dy)?;
        return Ok(Grads { dx, dw, db: None });
    }
    let op_wb = ConvOp::GradWeightBias(op.kind());
    let [dw, db] = <[Tensor; 2]>::try_from(eager::run(&x.device, op_wb, &[x, dy])?)
        .map_err(|_| Error::Invalid(format!("{}: dw and db expected", op.name())))?;
    Ok(Grads {
        dx,
        dw,
        db: Some(db),
    })
}
