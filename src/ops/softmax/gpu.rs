//! Softmax and log-softmax over any axis, forward and backward (from the forward output y, which
//! is all the backward needs: no extra state). WGSL: `wgsl/softmax.wgsl`. CPU reference:
//! `reference`. Descriptor: `ops::softmax`.

use crate::error::{Error, Result, shape_err};
use crate::launch::{Launch, PRELUDE, Shader, grid_1d};
use crate::ops::axis::fmt_shape;
use crate::ops::eager;
use crate::ops::softmax::{Softmax, SoftmaxOp};
use crate::tensor::{DType, Tensor};

pub(crate) static SHADER: Shader = Shader {
    name: "softmax",
    user_code: false,
    parts: &[PRELUDE, include_str!("../../../wgsl/softmax.wgsl")],
};

/// Rows (inner == 1) longer than this get a workgroup each; shorter rows, and any axis with
/// inner > 1, get one invocation per row, which wastes no lanes on short rows.
pub const ROW_WORKGROUP_MIN_LEN: usize = 33;

/// (outer, len, inner) of `shape` around the resolved axis.
fn split(op: &Softmax, shape: &[usize]) -> Result<(usize, usize, usize)> {
    let axis = op.check(shape)?;
    if shape.iter().product::<usize>() > u32::MAX as usize {
        return Err(Error::Invalid(format!(
            "{}: {} has more than 2^32 elements",
            op.name(),
            fmt_shape(shape)
        )));
    }
    Ok((
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    ))
}

/// Entry (rows or cols variant) and grid for (outer, len, inner).
fn plan(fwd: bool, outer: usize, len: usize, inner: usize) -> (&'static str, [u32; 3]) {
    let rows = inner == 1 && len >= ROW_WORKGROUP_MIN_LEN;
    let entry = match (fwd, rows) {
        (true, true) => "softmax_rows",
        (true, false) => "softmax_cols",
        (false, true) => "softmax_backward_rows",
        (false, false) => "softmax_backward_cols",
    };
    let groups = if rows {
        grid_1d(outer, 1)
    } else {
        grid_1d(outer * inner, 256)
    };
    (entry, groups)
}

fn same(op: &Softmax, name: &str, t: &Tensor, other: &str, want: &[usize]) -> Result<()> {
    t.expect_dtype(op.name(), DType::F32)?;
    if t.shape != want {
        return shape_err(
            op.name(),
            format!(
                "{name} {} does not match {other} {}",
                fmt_shape(&t.shape),
                fmt_shape(want)
            ),
        );
    }
    Ok(())
}

/// Prepares `y = softmax(x)` (or log-softmax) along `op.axis`; y has x's shape.
pub fn softmax_launch(op: &Softmax, x: &Tensor, y: &Tensor) -> Result<Launch> {
    let (outer, len, inner) = split(op, &x.shape)?;
    same(op, "x", x, "x", &x.shape)?;
    same(op, "y", y, "x", &x.shape)?;
    let (entry, groups) = plan(true, outer, len, inner);
    let p = [outer as u32, len as u32, inner as u32, op.log as u32];
    x.device
        .launch(&SHADER, entry, &[], &p, &[x.buffer(), y.buffer()], groups)
}

/// Prepares `dx` from the forward output `y` and `dy`: softmax `dx = y·(dy − Σ dy·y)`,
/// log-softmax `dx = dy − exp(y)·Σ dy`, sums along the axis.
pub fn softmax_backward_launch(
    op: &Softmax,
    y: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Launch> {
    let (outer, len, inner) = split(op, &y.shape)?;
    same(op, "y", y, "y", &y.shape)?;
    same(op, "dy", dy, "y", &y.shape)?;
    same(op, "dx", dx, "y", &y.shape)?;
    let (entry, groups) = plan(false, outer, len, inner);
    let p = [outer as u32, len as u32, inner as u32, op.log as u32];
    y.device.launch(
        &SHADER,
        entry,
        &[],
        &p,
        &[y.buffer(), dy.buffer(), dx.buffer()],
        groups,
    )
}

/// Softmax (or log-softmax) of x along `op.axis`.
pub fn softmax(op: &Softmax, x: &Tensor) -> Result<Tensor> {
    eager::run_first(&x.device, SoftmaxOp::Softmax(*op), &[x])
}

/// Gradient of [`softmax`] w.r.t. x, from its output y.
pub fn softmax_backward(op: &Softmax, y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    split(op, &y.shape)?;
    same(op, "dy", dy, "y", &y.shape)?; // the launch's wording, naming softmax
    eager::run_first(&y.device, SoftmaxOp::Grad(*op), &[y, dy])
}
