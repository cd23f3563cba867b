//! Reductions over one axis (sum, mean, max with argmax), forward and backward.
//! WGSL: `wgsl/reduce.wgsl`. CPU reference: `reference::basic`.

use super::{Shader, grid_1d};
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};

pub static SHADER: Shader = Shader {
    name: "reduce",
    parts: &[include_str!("../../wgsl/reduce.wgsl")],
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Mean,
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

/// Reduces `x` over `axis` (kept as size 1). For `Max` also returns the argmax along the axis (u32),
/// the state the gradient needs.
pub fn reduce(op: ReduceOp, x: &Tensor, axis: usize) -> Result<(Tensor, Option<Tensor>)> {
    let name = format!("{op:?}");
    x.expect_dtype(&name, DType::F32)?;
    let (outer, len, inner) = split_axis(&name, &x.shape, axis)?;
    let out = reduced_shape(&x.shape, axis);
    let dev = &x.device;
    let y = Tensor::zeros(dev, &out, DType::F32)?;
    let n = outer * inner;
    let code = (op == ReduceOp::Mean) as u32;
    let p = [outer as u32, len as u32, inner as u32, code];
    if op == ReduceOp::Max {
        let arg = Tensor::zeros(dev, &out, DType::U32)?;
        let l = dev.launch(
            &SHADER,
            "max_forward",
            &[],
            &p,
            &[x.buffer(), y.buffer(), arg.buffer()],
            grid_1d(n, 256),
        )?;
        dev.run(&[l])?;
        Ok((y, Some(arg)))
    } else {
        let l = dev.launch(
            &SHADER,
            "sum_forward",
            &[],
            &p,
            &[x.buffer(), y.buffer()],
            grid_1d(n, 256),
        )?;
        dev.run(&[l])?;
        Ok((y, None))
    }
}

/// Gradient of `reduce` w.r.t. its input of shape `x_shape`; `arg` is required for `Max`.
pub fn reduce_backward(
    op: ReduceOp,
    x_shape: &[usize],
    axis: usize,
    dy: &Tensor,
    arg: Option<&Tensor>,
) -> Result<Tensor> {
    let name = format!("{op:?} backward");
    let (outer, len, inner) = split_axis(&name, x_shape, axis)?;
    if dy.shape != reduced_shape(x_shape, axis) {
        return Err(Error::Shape {
            op: name,
            msg: format!(
                "dy {:?} does not match input {x_shape:?} reduced over axis {axis}",
                dy.shape
            ),
        });
    }
    let dev = &dy.device;
    let dx = Tensor::zeros(dev, x_shape, DType::F32)?;
    let n = outer * len * inner;
    let p = [
        outer as u32,
        len as u32,
        inner as u32,
        (op == ReduceOp::Mean) as u32,
    ];
    let l = match op {
        ReduceOp::Max => {
            let arg = arg.ok_or_else(|| {
                Error::Invalid("Max backward needs the argmax state of the forward".into())
            })?;
            arg.expect_dtype(&name, DType::U32)?;
            dev.launch(
                &SHADER,
                "max_backward",
                &[],
                &p,
                &[dy.buffer(), arg.buffer(), dx.buffer()],
                grid_1d(n, 256),
            )?
        }
        _ => dev.launch(
            &SHADER,
            "sum_backward",
            &[],
            &p,
            &[dy.buffer(), dx.buffer()],
            grid_1d(n, 256),
        )?,
    };
    dev.run(&[l])?;
    Ok(dx)
}
