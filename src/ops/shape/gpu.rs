//! Shape ops on the GPU: concat and split as strided copies into / out of slices along an axis,
//! slice (crop) with steps, zero / edge pad and nearest / bilinear upsample — forward and
//! backward. Every backward is a gather (one invocation per gradient element, reading all that
//! map to it): deterministic, no atomics, no zero-fill pass.
//! WGSL: `wgsl/shape/shape.wgsl`. CPU reference: `reference`.
//!
//! Concat is built from [`copy_into_launch`] so a producer could later write straight into its
//! slice of the output and the copy disappear; split and concat's backward from
//! [`copy_from_launch`]. Both are row copies (`row_copy`): no index arithmetic per element.

use crate::error::{Error, Result, Unit, attr_err, shape_err};
use crate::launch::{Launch, PRELUDE, Shader, grid_1d};
use crate::neuron::UnaryOp;
use crate::ops::axis::fmt_shape;
use crate::ops::eager;
use crate::ops::elementwise::gpu::MAX_RANK;
use crate::ops::shape::row_copy::{self, RowCopy};
use crate::ops::shape::{Concat, Pad, PadMode, ShapeOp, Slice, Split, Upsample, UpsampleMode};
use crate::tensor::strides;
use crate::tensor::{DType, Tensor};

pub(crate) static SHADER: Shader = Shader {
    name: "shape",
    user_code: false,
    parts: &[PRELUDE, include_str!("../../../wgsl/shape/shape.wgsl")],
};

/// Parameter words: header (n, rank, mode, src_off, dst_off, 0, 0, 0) then four rank-8 vectors.
fn words(n: usize, rank: usize, mode: u32, offs: (usize, usize), v: [&[usize]; 4]) -> Vec<u32> {
    let mut w = vec![
        n as u32,
        rank as u32,
        mode,
        offs.0 as u32,
        offs.1 as u32,
        0,
        0,
        0,
    ];
    for d in v {
        let mut a = [1u32; MAX_RANK];
        for (i, &x) in d.iter().enumerate() {
            a[i] = x as u32;
        }
        w.extend_from_slice(&a);
    }
    w
}

fn f32_of_rank(op: &str, t: &Tensor) -> Result<()> {
    t.expect_dtype(op, DType::F32)?;
    if t.shape.len() > MAX_RANK {
        return shape_err(
            op,
            format!(
                "rank {} of {} exceeds {MAX_RANK}",
                t.shape.len(),
                fmt_shape(&t.shape)
            ),
        );
    }
    Ok(())
}

fn expect_shape(op: &str, what: &str, t: &Tensor, want: &[usize]) -> Result<()> {
    f32_of_rank(op, t)?;
    if t.shape != want {
        return shape_err(
            op,
            format!(
                "{what} {} does not match {}",
                fmt_shape(&t.shape),
                fmt_shape(want)
            ),
        );
    }
    Ok(())
}

fn zeros(t: &Tensor, shape: &[usize]) -> Result<Tensor> {
    Tensor::zeros(&t.device, shape, t.dtype())
}

/// Checks that `small` fits in `big` at `offset` along `axis` with every other dim equal.
fn check_window(op: &str, small: &Tensor, big: &Tensor, axis: usize, offset: usize) -> Result<()> {
    f32_of_rank(op, small)?;
    f32_of_rank(op, big)?;
    let (s, b) = (&small.shape, &big.shape);
    if axis >= b.len() {
        return attr_err(op, format!("axis {axis} out of range for {}", fmt_shape(b)));
    }
    let fits = s.len() == b.len()
        && (0..s.len()).all(|k| k == axis || s[k] == b[k])
        && offset
            .checked_add(s[axis])
            .is_some_and(|end| end <= b[axis]);
    if !fits {
        return shape_err(
            op,
            format!(
                "{} at offset {offset} of axis {axis} does not fit in {}",
                fmt_shape(s),
                fmt_shape(b)
            ),
        );
    }
    Ok(())
}

/// Prepares `dst[.., offset .. offset + src.shape[axis], ..] = src` (dims other than `axis` equal).
pub fn copy_into_launch(src: &Tensor, dst: &Tensor, axis: usize, offset: usize) -> Result<Launch> {
    let op = "copy_into";
    check_window(op, src, dst, axis, offset)?;
    let rows = RowCopy::window(op, &src.shape, &dst.shape, axis, offset, true)?;
    row_copy_launch(op, &rows, src, dst)
}

/// Prepares `dst = src[.., offset .. offset + dst.shape[axis], ..]` (dims other than `axis` equal).
pub fn copy_from_launch(src: &Tensor, axis: usize, offset: usize, dst: &Tensor) -> Result<Launch> {
    let op = "copy_from";
    check_window(op, dst, src, axis, offset)?;
    let rows = RowCopy::window(op, &dst.shape, &src.shape, axis, offset, false)?;
    row_copy_launch(op, &rows, src, dst)
}

/// `copy_from_launch` through `neuron`'s derivative: `dst = grad(y_src, src)` over the window,
/// where `y_src` (`src`'s shape and dtype) holds the neuron's output in that window — a
/// concat's output, whose gradient this is (`fusion.rs`). Always the row kernel: the strided
/// copy has no neuron.
pub fn copy_from_grad_launch(
    src: &Tensor,
    y_src: &Tensor,
    axis: usize,
    offset: usize,
    neuron: UnaryOp,
    dst: &Tensor,
) -> Result<Launch> {
    let op = "copy_from";
    check_window(op, dst, src, axis, offset)?;
    expect_shape(op, "the neuron's output", y_src, &src.shape)?;
    if y_src.dtype() != src.dtype() || dst.dtype() != src.dtype() {
        return Err(Error::Invalid(format!(
            "{op}: the neuron's output is {:?}, dy {:?}, dx {:?}: one dtype",
            y_src.dtype(),
            src.dtype(),
            dst.dtype()
        )));
    }
    let rows = RowCopy::window(op, &dst.shape, &src.shape, axis, offset, false)?;
    rows.check_u32(op)?;
    let Some((w, groups)) = rows.plan_any() else {
        return Err(Error::TooLarge {
            what: format!("{op}: a row of the window (kernels index with u32)"),
            amount: rows.len as u64,
            limit: u32::MAX as u64,
            unit: Unit::Elements,
        });
    };
    src.device.launch(
        &row_copy::SHADER,
        "row_copy_grad_out",
        &crate::neuron::grad_constants(neuron)?,
        &w,
        &[src.buffer(), dst.buffer(), y_src.buffer()],
        groups,
    )
}

/// Prepares a row copy: the row kernel where its rows fill workgroups, else the strided copy
/// over (rows, len).
fn row_copy_launch(op: &str, c: &RowCopy, src: &Tensor, dst: &Tensor) -> Result<Launch> {
    c.check_u32(op)?;
    let buffers = [src.buffer(), dst.buffer()];
    if let Some((w, groups)) = c.plan() {
        return src
            .device
            .launch(&row_copy::SHADER, "row_copy", &[], &w, &buffers, groups);
    }
    // rows · len fits: check_u32 bounded the last row's end.
    let n = c.rows * c.len;
    let w = words(
        n,
        2,
        0,
        (c.src_off, c.dst_off),
        [
            &[c.rows, c.len],
            &[c.src_stride, 1],
            &[c.dst_stride, 1],
            &[],
        ],
    );
    src.device
        .launch(&SHADER, "strided_copy", &[], &w, &buffers, grid_1d(n, 256))
}

/// Prepares `y = concat(xs)` along `op.axis`: one copy per input into its slice of `y`.
pub fn concat_launch(op: &Concat, xs: &[&Tensor], y: &Tensor) -> Result<Vec<Launch>> {
    let shapes: Vec<&[usize]> = xs.iter().map(|x| &x.shape[..]).collect();
    let (out, axis) = op.output_shape(&shapes)?;
    expect_shape(Concat::OP, "output", y, &out)?;
    let mut at = 0;
    xs.iter()
        .map(|x| {
            let l = copy_into_launch(x, y, axis, at);
            at += x.shape[axis];
            l
        })
        .collect()
}

/// Prepares the pieces `ys` of `x` split along `op.axis` into `op.sizes`.
pub fn split_launch(op: &Split, x: &Tensor, ys: &[&Tensor]) -> Result<Vec<Launch>> {
    let (shapes, axis) = op.output_shapes(&x.shape)?;
    if ys.len() != shapes.len() {
        return shape_err(
            Split::OP,
            format!("{} outputs for {} pieces", ys.len(), shapes.len()),
        );
    }
    let mut at = 0;
    ys.iter()
        .zip(&shapes)
        .map(|(y, s)| {
            expect_shape(Split::OP, "piece", y, s)?;
            let l = copy_from_launch(x, axis, at, y);
            at += s[axis];
            l
        })
        .collect()
}

/// Prepares concat's backward: `dy` split back into `dxs`, shaped like the inputs.
pub fn concat_backward_launch(op: &Concat, dy: &Tensor, dxs: &[&Tensor]) -> Result<Vec<Launch>> {
    let shapes: Vec<&[usize]> = dxs.iter().map(|x| &x.shape[..]).collect();
    let (out, axis) = op.output_shape(&shapes)?;
    expect_shape(Concat::OP, "dy", dy, &out)?;
    let sizes = shapes.iter().map(|s| s[axis]).collect();
    let sp = Split {
        axis: axis as isize,
        sizes,
    };
    split_launch(&sp, dy, dxs)
}

/// Prepares split's backward: the piece gradients `dys` concatenated into `dx`.
pub fn split_backward_launch(op: &Split, dys: &[&Tensor], dx: &Tensor) -> Result<Vec<Launch>> {
    let (shapes, axis) = op.output_shapes(&dx.shape)?;
    if dys.len() != shapes.len() {
        return shape_err(
            Split::OP,
            format!("{} gradients for {} pieces", dys.len(), shapes.len()),
        );
    }
    for (d, s) in dys.iter().zip(&shapes) {
        expect_shape(Split::OP, "dy", d, s)?;
    }
    let c = Concat {
        axis: axis as isize,
    };
    concat_launch(&c, dys, dx)
}

/// Prepares `y = x[start .. end by step]` on every axis.
pub fn slice_launch(op: &Slice, x: &Tensor, y: &Tensor) -> Result<Launch> {
    f32_of_rank(Slice::OP, x)?;
    let out = op.output_shape(&x.shape)?;
    let op = &op.clamped_steps();
    expect_shape(Slice::OP, "output", y, &out)?;
    let st = strides(&x.shape);
    let src_strides: Vec<usize> = st.iter().zip(&op.ranges).map(|(s, r)| s * r.step).collect();
    let src_off = st.iter().zip(&op.ranges).map(|(s, r)| s * r.start).sum();
    let n = y.numel();
    let w = words(
        n,
        out.len(),
        0,
        (src_off, 0),
        [&out, &src_strides, &strides(&out), &[]],
    );
    x.device.launch(
        &SHADER,
        "strided_copy",
        &[],
        &w,
        &[x.buffer(), y.buffer()],
        grid_1d(n, 256),
    )
}

/// Prepares slice's backward: `dx` (the input's shape) holds `dy` at the sliced positions and 0
/// elsewhere, gathered per element of `dx`.
pub fn slice_backward_launch(op: &Slice, dy: &Tensor, dx: &Tensor) -> Result<Launch> {
    f32_of_rank(Slice::OP, dx)?;
    let out = op.output_shape(&dx.shape)?;
    let op = &op.clamped_steps();
    expect_shape(Slice::OP, "dy", dy, &out)?;
    let start: Vec<usize> = op.ranges.iter().map(|r| r.start).collect();
    let step: Vec<usize> = op.ranges.iter().map(|r| r.step).collect();
    let n = dx.numel();
    let w = words(n, out.len(), 0, (0, 0), [&dx.shape, &start, &step, &out]);
    dy.device.launch(
        &SHADER,
        "slice_backward",
        &[],
        &w,
        &[dy.buffer(), dx.buffer()],
        grid_1d(n, 256),
    )
}

fn pad_mode(m: PadMode) -> u32 {
    match m {
        PadMode::Zero => 0,
        PadMode::Edge => 1,
    }
}

/// Prepares `y = pad(x)`.
pub fn pad_launch(op: &Pad, x: &Tensor, y: &Tensor) -> Result<Launch> {
    f32_of_rank(Pad::OP, x)?;
    let out = op.output_shape(&x.shape)?;
    expect_shape(Pad::OP, "output", y, &out)?;
    let n = y.numel();
    let w = words(
        n,
        out.len(),
        pad_mode(op.mode),
        (0, 0),
        [&x.shape, &out, &op.before, &[]],
    );
    x.device.launch(
        &SHADER,
        "pad_forward",
        &[],
        &w,
        &[x.buffer(), y.buffer()],
        grid_1d(n, 256),
    )
}

/// Prepares pad's backward into `dx` (the input's shape): the interior of `dy`, plus in edge
/// mode the gradients of every pad position that copied the element.
pub fn pad_backward_launch(op: &Pad, dy: &Tensor, dx: &Tensor) -> Result<Launch> {
    f32_of_rank(Pad::OP, dx)?;
    let out = op.output_shape(&dx.shape)?;
    expect_shape(Pad::OP, "dy", dy, &out)?;
    let n = dx.numel();
    let w = words(
        n,
        out.len(),
        pad_mode(op.mode),
        (0, 0),
        [&dx.shape, &out, &op.before, &[]],
    );
    dy.device.launch(
        &SHADER,
        "pad_backward",
        &[],
        &w,
        &[dy.buffer(), dx.buffer()],
        grid_1d(n, 256),
    )
}

/// Parameter words of upsample between `input` (…, h, w) and `out` (…, oh, ow).
/// The largest input or output size per axis the kernels' tap arithmetic takes: they form
/// `(2·i + 3)·n_out` and `(2·o + 1)·n_in` in 32-bit integers (i32 in the backward's window).
fn upsample_axis_fits(n_in: usize, n_out: usize) -> bool {
    let big = n_in.max(n_out) as u128;
    (2 * big + 3) * big <= i32::MAX as u128
}

fn upsample_words(op: &Upsample, input: &[usize], out: &[usize], n: usize) -> Result<Vec<u32>> {
    let r = input.len();
    let mode = match op.mode {
        UpsampleMode::Nearest => 0,
        UpsampleMode::Bilinear => 1,
    };
    let hw = [input[r - 2], input[r - 1], out[r - 2], out[r - 1]];
    if !upsample_axis_fits(hw[0], hw[2]) || !upsample_axis_fits(hw[1], hw[3]) {
        return shape_err(
            Upsample::OP,
            format!(
                "{} -> {}: an axis this long overflows the kernel's 32-bit tap arithmetic \
                 (input and output sizes n per axis need (2n + 3)·n <= 2^31 - 1)",
                fmt_shape(input),
                fmt_shape(out)
            ),
        );
    }
    Ok(words(n, r, mode, (0, 0), [&hw, &[], &[], &[]]))
}

/// Prepares `y = upsample(x)` over the last two axes.
pub fn upsample_launch(op: &Upsample, x: &Tensor, y: &Tensor) -> Result<Launch> {
    f32_of_rank(Upsample::OP, x)?;
    let out = op.output_shape(&x.shape)?;
    expect_shape(Upsample::OP, "output", y, &out)?;
    let n = y.numel();
    x.device.launch(
        &SHADER,
        "upsample_forward",
        &[],
        &upsample_words(op, &x.shape, &out, n)?,
        &[x.buffer(), y.buffer()],
        grid_1d(n, 256),
    )
}

/// Prepares upsample's backward into `dx` (the input's shape): each input element gathers the
/// output gradients that read it, times their tap weights.
pub fn upsample_backward_launch(op: &Upsample, dy: &Tensor, dx: &Tensor) -> Result<Launch> {
    f32_of_rank(Upsample::OP, dx)?;
    let out = op.output_shape(&dx.shape)?;
    expect_shape(Upsample::OP, "dy", dy, &out)?;
    let n = dx.numel();
    dy.device.launch(
        &SHADER,
        "upsample_backward",
        &[],
        &upsample_words(op, &dx.shape, &out, n)?,
        &[dy.buffer(), dx.buffer()],
        grid_1d(n, 256),
    )
}

/// `concat(xs)` along `op.axis`.
pub fn concat(op: &Concat, xs: &[&Tensor]) -> Result<Tensor> {
    let Some(first) = xs.first() else {
        return shape_err(Concat::OP, "no inputs given");
    };
    eager::run_first(&first.device, ShapeOp::Concat(*op), xs)
}

/// Gradients of concat's inputs (of `input_shapes`) from `dy`: one `ConcatGrad` per input.
pub fn concat_backward(op: &Concat, input_shapes: &[&[usize]], dy: &Tensor) -> Result<Vec<Tensor>> {
    let (out, axis) = op.output_shape(input_shapes)?;
    expect_shape(Concat::OP, "dy", dy, &out)?;
    let mut offset = 0;
    let mut dxs = Vec::with_capacity(input_shapes.len());
    for s in input_shapes {
        let grad = ShapeOp::ConcatGrad { op: *op, offset };
        dxs.push(eager::run_first(
            &dy.device,
            grad,
            &[dy, &eager::shape_only(dy, s)],
        )?);
        offset += s[axis];
    }
    Ok(dxs)
}

/// The pieces of `x` split along `op.axis`.
pub fn split(op: &Split, x: &Tensor) -> Result<Vec<Tensor>> {
    let (shapes, _) = op.output_shapes(&x.shape)?;
    let ys = shapes
        .iter()
        .map(|s| zeros(x, s))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&Tensor> = ys.iter().collect();
    x.device.run(&split_launch(op, x, &refs)?)?;
    Ok(ys)
}

/// Gradient of split's input (of `input_shape`) from the piece gradients.
pub fn split_backward(op: &Split, input_shape: &[usize], dys: &[&Tensor]) -> Result<Tensor> {
    op.output_shapes(input_shape)?;
    let Some(first) = dys.first() else {
        return shape_err(Split::OP, "no piece gradients given");
    };
    let dx = zeros(first, input_shape)?;
    first.device.run(&split_backward_launch(op, dys, &dx)?)?;
    Ok(dx)
}

/// `x[start .. end by step]` on every axis.
pub fn slice(op: &Slice, x: &Tensor) -> Result<Tensor> {
    eager::run_first(&x.device, ShapeOp::Slice(op.clone()), &[x])
}

/// Gradient of slice's input (of `input_shape`).
pub fn slice_backward(op: &Slice, input_shape: &[usize], dy: &Tensor) -> Result<Tensor> {
    shape_grad(ShapeOp::SliceGrad(op.clone()), input_shape, dy)
}

/// `pad(x)`.
pub fn pad(op: &Pad, x: &Tensor) -> Result<Tensor> {
    eager::run_first(&x.device, ShapeOp::Pad(op.clone()), &[x])
}

/// Gradient of pad's input (of `input_shape`).
pub fn pad_backward(op: &Pad, input_shape: &[usize], dy: &Tensor) -> Result<Tensor> {
    shape_grad(ShapeOp::PadGrad(op.clone()), input_shape, dy)
}

/// `upsample(x)` over the last two axes.
pub fn upsample(op: &Upsample, x: &Tensor) -> Result<Tensor> {
    eager::run_first(&x.device, ShapeOp::Upsample(*op), &[x])
}

/// Gradient of upsample's input (of `input_shape`).
pub fn upsample_backward(op: &Upsample, input_shape: &[usize], dy: &Tensor) -> Result<Tensor> {
    shape_grad(ShapeOp::UpsampleGrad(*op), input_shape, dy)
}

/// Runs a `[dy, x] -> dx` gradient op for an input of `input_shape`.
fn shape_grad(op: ShapeOp, input_shape: &[usize], dy: &Tensor) -> Result<Tensor> {
    let x = eager::shape_only(dy, input_shape);
    eager::run_first(&dy.device, op, &[dy, &x])
}
