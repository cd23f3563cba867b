//! Reductions over one axis (sum, mean, max with argmax), forward and backward.
//! WGSL: `wgsl/reduce.wgsl`. CPU reference: `reference`.

use crate::error::{Error, Result};
use crate::launch::{FINITE, Launch, PRELUDE, Shader, grid_1d};
use crate::ops::eager;
use crate::ops::reduce::ReduceOp;
use crate::tensor::{DType, Tensor};

pub(crate) static SHADER: Shader = Shader {
    name: "reduce",
    user_code: false,
    parts: &[PRELUDE, FINITE, include_str!("../../../wgsl/reduce.wgsl")],
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// How a reduction combines the elements along its axes.
pub enum ReduceKind {
    /// Sum.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Maximum.
    Max,
}

/// (outer, len, inner) of `shape` around `axis`, or an `Err` naming the op and the axis.
pub fn split_axis(op: &str, shape: &[usize], axis: usize) -> Result<(usize, usize, usize)> {
    if axis >= shape.len() {
        return Err(Error::Attr {
            op: op.into(),
            msg: format!("axis {axis} out of range for shape {shape:?}"),
        });
    }
    if shape[axis] == 0 {
        return Err(Error::Shape {
            op: op.into(),
            msg: format!("cannot reduce an empty axis {axis} of {shape:?}"),
        });
    }
    Ok((
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    ))
}

fn reduced_shape(shape: &[usize], axis: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    s[axis] = 1;
    s
}

/// Prepares `y = op(x)` over `axis` (kept as size 1); `arg` (u32, y's shape) receives the argmax
/// along the axis and is required exactly for `Max`.
pub fn reduce_launch(
    op: ReduceKind,
    x: &Tensor,
    axis: usize,
    y: &Tensor,
    arg: Option<&Tensor>,
) -> Result<Launch> {
    let name = format!("{op:?}");
    x.expect_dtype(&name, DType::F32)?;
    let (outer, len, inner) = split_axis(&name, &x.shape, axis)?;
    let out = reduced_shape(&x.shape, axis);
    if y.shape != out {
        return Err(Error::Shape {
            op: name,
            msg: format!("output {:?}, expected {out:?}", y.shape),
        });
    }
    let p = [
        outer as u32,
        len as u32,
        inner as u32,
        (op == ReduceKind::Mean) as u32,
    ];
    let groups = grid_1d(outer * inner, 256);
    match (op, arg) {
        (ReduceKind::Max, Some(arg)) => {
            arg.expect_dtype(&name, DType::U32)?;
            x.device.launch(
                &SHADER,
                "max_forward",
                &[],
                &p,
                &[x.buffer(), y.buffer(), arg.buffer()],
                groups,
            )
        }
        (ReduceKind::Max, None) => Err(Error::Invalid(
            "Max needs a u32 tensor for its argmax state".into(),
        )),
        _ => x.device.launch(
            &SHADER,
            "sum_forward",
            &[],
            &p,
            &[x.buffer(), y.buffer()],
            groups,
        ),
    }
}

/// Prepares the gradient of `reduce` into `dx` (the input's shape); `arg` is required for `Max`.
pub fn reduce_backward_launch(
    op: ReduceKind,
    axis: usize,
    dy: &Tensor,
    arg: Option<&Tensor>,
    dx: &Tensor,
) -> Result<Launch> {
    let name = format!("{op:?} backward");
    let (outer, len, inner) = split_axis(&name, &dx.shape, axis)?;
    if dy.shape != reduced_shape(&dx.shape, axis) {
        return Err(Error::Shape {
            op: name,
            msg: format!(
                "dy {:?} does not match input {:?} reduced over axis {axis}",
                dy.shape, dx.shape
            ),
        });
    }
    let p = [
        outer as u32,
        len as u32,
        inner as u32,
        (op == ReduceKind::Mean) as u32,
    ];
    let groups = grid_1d(outer * len * inner, 256);
    match op {
        ReduceKind::Max => {
            let arg = arg.ok_or_else(|| {
                Error::Invalid("Max backward needs the argmax state of the forward".into())
            })?;
            arg.expect_dtype(&name, DType::U32)?;
            dy.device.launch(
                &SHADER,
                "max_backward",
                &[],
                &p,
                &[dy.buffer(), arg.buffer(), dx.buffer()],
                groups,
            )
        }
        _ => dy.device.launch(
            &SHADER,
            "sum_backward",
            &[],
            &p,
            &[dy.buffer(), dx.buffer()],
            groups,
        ),
    }
}

/// Reduces `x` over `axis` (kept as size 1). For `Max` also returns the argmax along the axis (u32),
/// the state the gradient needs.
pub fn reduce(op: ReduceKind, x: &Tensor, axis: usize) -> Result<(Tensor, Option<Tensor>)> {
    eager::result_and_state(eager::run(&x.device, ReduceOp::Reduce(op, axis), &[x])?)
}

/// Gradient of `reduce` w.r.t. its input of shape `x_shape`; `arg` is required for `Max`.
pub fn reduce_backward(
    op: ReduceKind,
    x_shape: &[usize],
    axis: usize,
    dy: &Tensor,
    arg: Option<&Tensor>,
) -> Result<Tensor> {
    split_axis(&format!("{op:?} backward"), x_shape, axis)?;
    let x = eager::shape_only(dy, x_shape);
    let mut ins = vec![dy, &x];
    ins.extend(arg);
    eager::run_first(&dy.device, ReduceOp::Grad(op, axis), &ins)
}
