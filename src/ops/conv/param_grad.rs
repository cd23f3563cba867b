//! The convolutions' parameter gradients on the GPU: the weights' (`conv_wgrad`: one implicit
//! GEMM split over K, or Winograd's or `short_k`'s where they are chosen) and the bias's
//! (`conv_bias`), with the in-order sums of their partials. [`gpu`](super::gpu) re-exports the
//! public ones, whose paths are `conv::gpu::*`.

use crate::error::Result;
use crate::launch::{Prepared, SPLIT_PARTIALS_SLOT, grid_1d, shared_scratch};
use crate::ops::conv::check;
use crate::ops::conv::partition::{GEMM_K_UNIT, bias_chunks, wgrad_split};
use crate::ops::conv::shaders::{BIAS, WGRAD};
use crate::ops::conv::uniform::{k_divisors, params};
use crate::ops::conv::{ConvGeometry, Convolution, coop, short_k, winograd};
use crate::ops::reduce::gpu as reduce;
use crate::tensor::{DType, Tensor};

/// `dw (C_out, C_in/g, kh, kw) = Σ_{n, oy, ox} dy ⊗ x-taps` of the geometry `g` (split-K, then
/// the splits summed in order by `sum_partials`).
pub fn conv_weight_grad_launches(
    g: &ConvGeometry,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
) -> Result<Prepared> {
    conv_weight_grad_launches_into(g, x, dy, dw, false)
}

/// `conv_weight_grad_launches`, adding into `dw` when `accumulate` (the GEMM's epilogue, or the
/// sum of the splits).
fn conv_weight_grad_launches_into(
    g: &ConvGeometry,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
    accumulate: bool,
) -> Result<Prepared> {
    if loops_over_taps(g, x, dy, dw) {
        return short_k::weight_grad_launches(g, x, dy, dw, None, accumulate, sum_partials);
    }
    if winograd::chosen_wgrad(g, x) {
        return winograd::weight_grad_launches(g, x, dy, dw, accumulate);
    }
    let dev = &x.device;
    // The GEMM is dwᵀ: M = (C_in/g)·kh·kw, N = C_out/g (see wgsl/conv/grad_weight.wgsl).
    let n = g.in_channels / g.groups * g.kernel.0 * g.kernel.1;
    let cout_g = g.out_channels / g.groups;
    let full_k = g.batch * g.out_size.0 * g.out_size.1;
    let on_coop = coop::core_for(dev, x.dtype(), cout_g, full_k);
    let one = coop::core((&WGRAD, &coop::WGRAD), dev, on_coop, (n, cout_g, 1), vec![]);
    let unit = if on_coop.is_some() {
        coop::K_STEP
    } else {
        GEMM_K_UNIT
    };
    let tiles = (one.groups[0] * one.groups[1]) as usize * g.groups;
    let tiled = (on_coop.is_none() && !crate::launch::direct_gemm(dev)).then_some((n, cout_g));
    let (splits, chunk) = wgrad_split(g, tiles, unit, tiled);
    let numel = g.out_channels * n;
    let out = if splits == 1 {
        dw.clone()
    } else {
        shared_scratch(dev, SPLIT_PARTIALS_SLOT, &[splits, numel], dw.dtype())?
    };
    // The K index is an output pixel (n, oy, ox).
    let c = coop::core(
        (&WGRAD, &coop::WGRAD),
        dev,
        on_coop,
        (n, cout_g, g.groups * splits),
        k_divisors(dev, g.out_size.0 * g.out_size.1, g.out_size.1),
    );
    let l = dev.launch(
        c.shader,
        c.entry,
        &c.constants,
        &params(
            g,
            false,
            splits,
            chunk,
            None,
            accumulate && splits == 1,
            None,
        )?,
        &[x.buffer(), dy.buffer(), out.buffer()],
        c.groups,
    )?;
    let mut prep = Prepared::one(l);
    if splits > 1 {
        prep.extend(sum_partials(&out, dw, accumulate)?);
    }
    Ok(prep)
}

/// Whether the weight gradient of `g` loops over its taps (`short_k`): where it fits and
/// Winograd does not take the pass (asked second: few passes fit).
fn loops_over_taps(g: &ConvGeometry, x: &Tensor, dy: &Tensor, dw: &Tensor) -> bool {
    short_k::fits(g, x, dy, dw) && !winograd::chosen_wgrad(g, x)
}

/// Partial rows up to which each output's sum is one invocation's (matmul's `gemm_sum`, which
/// also sums the data passes' splits); more rows are summed by 32 invocations per output
/// (`reduce.wgsl`'s `sum_lanes`)...
const SUM_ROWS_MAX: usize = 32;
/// ... except for outputs this many or more, which fill the GPU one invocation each: up to
/// twice the rows, their own loops beat `sum_lanes`' workgroup trees (BENCHMARKS.md).
const SUM_COLS_WIDE: usize = 32_768;

/// Whether `rows` partial rows of `cols` outputs are summed one invocation per output.
fn sums_per_output(rows: usize, cols: usize) -> bool {
    rows <= SUM_ROWS_MAX || (rows <= 2 * SUM_ROWS_MAX && cols >= SUM_COLS_WIDE)
}

/// `out[k] = Σ_s part[s, k]` (`+= ` when `accumulate`): partial sums (split-K, chunked bias
/// gradients); `part` is kept as the step's scratch.
fn sum_partials(part: &Tensor, out: &Tensor, accumulate: bool) -> Result<Prepared> {
    let (rows, cols) = (part.shape[0], out.numel());
    let l = if sums_per_output(rows, cols) {
        crate::ops::matmul::gpu::sum_splits_launch(part, out, rows, accumulate, None)?
    } else {
        part.device.launch(
            &reduce::SHADER,
            "sum_lanes",
            &[],
            &[1, rows as u32, cols as u32, accumulate as u32],
            &[part.buffer(), out.buffer()],
            grid_1d(cols, 8),
        )?
    };
    Ok(Prepared {
        launches: vec![l],
        scratch: vec![part.clone()],
    })
}

/// `db[c] = Σ dy[n, c, ...]` for `dy` viewed as `(N, C, inner)` with `C = db.numel()`: chunks of
/// each channel summed by their own workgroups, then the chunks summed (one dispatch when a
/// single chunk suffices).
pub fn bias_grad_launches(dy: &Tensor, db: &Tensor) -> Result<Prepared> {
    let c = db.numel();
    let n = dy.shape.first().copied().unwrap_or(1);
    let inner = dy.numel() / (n * c).max(1);
    let chunks = bias_chunks(n * inner, c);
    let dev = &dy.device;
    let part = if chunks == 1 {
        db.clone()
    } else {
        Tensor::zeros(dev, &[chunks, c], db.dtype())?
    };
    let mut prep = Prepared::one(dev.launch(
        &BIAS,
        "bias_grad",
        &[],
        &[n as u32, c as u32, inner as u32, chunks as u32],
        &[dy.buffer(), part.buffer()],
        grid_1d(c * chunks, 1),
    )?);
    if chunks > 1 {
        prep.extend(sum_partials(&part, db, false)?);
    }
    Ok(prep)
}

/// Prepares `dw` (the op's weight shape).
pub fn backward_weights_launches(
    op: &(impl Convolution + ?Sized),
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
) -> Result<Prepared> {
    backward_weights_into(op, x, dy, dw, false)
}

/// `backward_weights_launches`, adding into `dw` when `accumulate`.
pub(crate) fn backward_weights_into(
    op: &(impl Convolution + ?Sized),
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
    accumulate: bool,
) -> Result<Prepared> {
    let g = weight_grad_geometry(op, x, dy, dw)?;
    weight_grad_on(op, &g, x, dy, dw, accumulate)
}

/// `backward_weights_into` on the checked geometry `g`: a transposed convolution's weight
/// gradient runs on the adjoint's geometry, whose x is dy.
fn weight_grad_on(
    op: &(impl Convolution + ?Sized),
    g: &ConvGeometry,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
    accumulate: bool,
) -> Result<Prepared> {
    if op.is_transposed() {
        conv_weight_grad_launches_into(g, dy, x, dw, accumulate)
    } else {
        conv_weight_grad_launches_into(g, x, dy, dw, accumulate)
    }
}

/// `backward_weights_into` and `db` `(C_out,)`, `dy` summed over everything but channels,
/// written (not added into: a graph adds only into its first output). A weight gradient looping
/// over the taps (`short_k`, not transposed) makes db from the dy it stages, as one more of its
/// sums, so the bias costs no dispatch; elsewhere db is `bias_grad_launches`'.
pub(crate) fn backward_weights_bias_into(
    op: &(impl Convolution + ?Sized),
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
    db: &Tensor,
    accumulate: bool,
) -> Result<Prepared> {
    let g = weight_grad_geometry(op, x, dy, dw)?;
    check(op.name(), "bias gradient", db, &[op.out_channels()])?;
    // A transposed convolution's weight gradient runs on the adjoint's geometry, whose dy is x.
    let folds = !op.is_transposed() && db.dtype() == DType::F32 && loops_over_taps(&g, x, dy, dw);
    if folds {
        return short_k::weight_grad_launches(&g, x, dy, dw, Some(db), accumulate, sum_partials);
    }
    let mut p = weight_grad_on(op, &g, x, dy, dw, accumulate)?;
    p.extend(bias_grad_launches(dy, db)?);
    Ok(p)
}

/// The geometry of `op` on `x`, after checking x, `dy` and `dw` for its weight gradient.
fn weight_grad_geometry(
    op: &(impl Convolution + ?Sized),
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
) -> Result<ConvGeometry> {
    let name = op.name();
    let g = op.geometry(&x.shape)?;
    x.expect_dtype(name, DType::F32)?;
    check(name, "output gradient", dy, &op.out_shape(&x.shape)?)?;
    check(name, "weight gradient", dw, &op.weight_shape())?;
    Ok(g)
}

/// Prepares `db` `(C_out,)`: `dy` summed over everything but channels.
pub fn backward_bias_launches(
    op: &(impl Convolution + ?Sized),
    x_shape: &[usize],
    dy: &Tensor,
    db: &Tensor,
) -> Result<Prepared> {
    let name = op.name();
    check(name, "output gradient", dy, &op.out_shape(x_shape)?)?;
    check(name, "bias gradient", db, &[op.out_channels()])?;
    bias_grad_launches(dy, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_sums_take_one_invocation_per_output_where_rows_are_few_or_outputs_many() {
        assert!(sums_per_output(32, 64));
        assert!(!sums_per_output(37, 64));
        // The MNIST MPS net's conv2 weight gradient: 37 splits of 800 · 64 weights.
        assert!(sums_per_output(37, 51_200));
        assert!(!sums_per_output(65, 51_200));
        assert!(!sums_per_output(64, SUM_COLS_WIDE - 1));
    }
}
