//! Elementwise ops: unary (neurons and math) and broadcasting binary ops, forward and backward.
//! WGSL: `wgsl/elementwise.wgsl`. CPU reference: `reference.rs`.

use crate::error::{Error, Result};
use crate::launch::{Launch, PRELUDE, Shader, f, grid_1d};
use crate::neuron::{GradFrom, UnaryOp};
use crate::ops::eager;
use crate::ops::elementwise::ElementwiseOp;
use crate::tensor::{DType, Tensor};

pub(crate) static SHADER: Shader = Shader {
    name: "elementwise",
    user_code: false,
    parts: &[
        PRELUDE,
        crate::neuron::WGSL,
        include_str!("../../../wgsl/elementwise.wgsl"),
    ],
};

/// Binary ops with numpy broadcasting. The discriminant is the op code in the shader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`.
    Add = 0,
    /// `a − b`.
    Sub = 1,
    /// `a · b`.
    Mul = 2,
    /// `a / b`.
    Div = 3,
    /// `max(a, b)`.
    Max = 4,
    /// `min(a, b)`.
    Min = 5,
}

/// Max rank the broadcasting kernels take.
pub const MAX_RANK: usize = 8;

/// The broadcasting kernels' parameters: `n` outputs of shape `out`, op code, and a's and b's
/// strides in output coordinates (`Params` in `elementwise.wgsl`; chain fields left empty).
fn broadcast_params(n: usize, op: BinaryOp, a: &[usize], b: &[usize], out: &[usize]) -> Vec<u32> {
    let mut w = vec![n as u32, op as u32, out.len() as u32, 0, 0, 0, 0, 0];
    for d in [
        out.to_vec(),
        broadcast_strides(a, out),
        broadcast_strides(b, out),
    ] {
        let mut v = [1u32; MAX_RANK];
        for (i, &x) in d.iter().enumerate() {
            v[i] = x as u32;
        }
        w.extend_from_slice(&v);
    }
    w
}

fn f32_in(op: &str, t: &Tensor) -> Result<()> {
    t.expect_dtype(op, DType::F32)
}

/// The numpy broadcast of two shapes; an `Err` naming both otherwise.
pub fn broadcast_shape(op: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let r = a.len().max(b.len());
    if r > MAX_RANK {
        return Err(Error::Shape {
            op: op.into(),
            msg: format!("rank {r} exceeds {MAX_RANK}"),
        });
    }
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::Shape {
                    op: op.into(),
                    msg: format!("{a:?} and {b:?} do not broadcast (dim {i}: {da} vs {db})"),
                });
            }
        };
    }
    Ok(out)
}

/// Strides of `shape` read at the coordinates of `out` (right-aligned; 0 on broadcast dims).
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let st = crate::tensor::strides(shape);
    let off = out.len() - shape.len();
    (0..out.len())
        .map(|i| {
            if i < off || shape[i - off] == 1 {
                0
            } else {
                st[i - off]
            }
        })
        .collect()
}

fn same_shape(op: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape != b.shape {
        return Err(Error::Shape {
            op: op.into(),
            msg: format!("{:?} vs {:?}", a.shape, b.shape),
        });
    }
    Ok(())
}

/// Prepares `y = op(x)`; `y` has x's shape.
pub fn unary_launch(op: UnaryOp, x: &Tensor, y: &Tensor) -> Result<Launch> {
    unary_fused_launch(op, &[], x, y)
}

/// Most unary ops a dispatch can fuse after its own op.
pub const MAX_CHAIN: usize = 8;

/// Appends the fused chain `fused` (applied in order after the op) to a parameter block.
fn with_fused(mut p: Vec<u32>, fused: &[UnaryOp]) -> Result<Vec<u32>> {
    if fused.len() > MAX_CHAIN {
        return Err(Error::Invalid(format!(
            "a fused chain of {} unary ops exceeds {MAX_CHAIN}",
            fused.len()
        )));
    }
    p.resize(32, 0);
    p[3] = fused.len() as u32;
    let mut codes = [0u32; 3 * MAX_CHAIN];
    for (k, op) in fused.iter().enumerate() {
        let (c, a, b) = op.code();
        codes[k] = c;
        codes[MAX_CHAIN + k] = f(a);
        codes[2 * MAX_CHAIN + k] = f(b);
    }
    p.extend_from_slice(&codes);
    Ok(p)
}

/// Prepares `y = fused(op(x))`: `op` followed by the fused unary chain `fused`.
pub fn unary_fused_launch(
    op: UnaryOp,
    fused: &[UnaryOp],
    x: &Tensor,
    y: &Tensor,
) -> Result<Launch> {
    let name = format!("{op:?}");
    f32_in(&name, x)?;
    same_shape(&name, x, y)?;
    let (code, a, b) = op.code();
    let n = x.numel();
    let p = with_fused(vec![n as u32, code, 0, 0, f(a), f(b)], fused)?;
    x.device.launch(
        &SHADER,
        "unary_forward",
        &[],
        &p,
        &[x.buffer(), y.buffer()],
        grid_1d(n, 256),
    )
}

/// Prepares `dx = op'(x) · dy`.
pub fn unary_backward_launch(op: UnaryOp, x: &Tensor, dy: &Tensor, dx: &Tensor) -> Result<Launch> {
    unary_grad_launch("unary_backward", &format!("{op:?} backward"), op, x, dy, dx)
}

/// Prepares `dx = f'(x) · dy` from the output `y = f(x)` (ops whose [`UnaryOp::grad_from`] is
/// `Output`; any other op is an `Err`).
pub fn unary_backward_out_launch(
    op: UnaryOp,
    y: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Launch> {
    let name = format!("{op:?} backward from the output");
    if op.grad_from() != GradFrom::Output {
        return Err(Error::Invalid(format!(
            "{name}: the derivative of {op:?} is not a function of its output"
        )));
    }
    unary_grad_launch("unary_backward_out", &name, op, y, dy, dx)
}

/// The two gradient entries share bindings: `v` (x or y), dy, dx, all of one shape.
fn unary_grad_launch(
    entry: &'static str,
    name: &str,
    op: UnaryOp,
    v: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Launch> {
    f32_in(name, v)?;
    same_shape(name, v, dy)?;
    same_shape(name, v, dx)?;
    let (code, a, b) = op.code();
    let n = v.numel();
    v.device.launch(
        &SHADER,
        entry,
        &[],
        &[n as u32, code, 0, 0, f(a), f(b)],
        &[v.buffer(), dy.buffer(), dx.buffer()],
        grid_1d(n, 256),
    )
}

/// Prepares `y = a (op) b`; `y` has the broadcast shape.
pub fn binary_launch(op: BinaryOp, a: &Tensor, b: &Tensor, y: &Tensor) -> Result<Launch> {
    binary_fused_launch(op, &[], a, b, y)
}

/// Prepares `y = fused(a (op) b)`: e.g. a bias add with its neuron fused.
pub fn binary_fused_launch(
    op: BinaryOp,
    fused: &[UnaryOp],
    a: &Tensor,
    b: &Tensor,
    y: &Tensor,
) -> Result<Launch> {
    let name = format!("{op:?}");
    f32_in(&name, a)?;
    f32_in(&name, b)?;
    let out = broadcast_shape(&name, &a.shape, &b.shape)?;
    if y.shape != out {
        return Err(Error::Shape {
            op: name,
            msg: format!(
                "output {:?} but {:?} and {:?} broadcast to {out:?}",
                y.shape, a.shape, b.shape
            ),
        });
    }
    let n = y.numel();
    let p = broadcast_params(n, op, &a.shape, &b.shape, &out);
    let p = with_fused(p, fused)?;
    a.device.launch(
        &SHADER,
        "binary_forward",
        &[],
        &p,
        &[a.buffer(), b.buffer(), y.buffer()],
        grid_1d(n, 256),
    )
}

/// Prepares the gradient of operand `which` (0 = a, 1 = b) of `a (op) b` into `g` (that
/// operand's shape), summed over the dims it was broadcast along.
pub fn binary_grad_launch(
    op: BinaryOp,
    which: usize,
    a: &Tensor,
    b: &Tensor,
    dy: &Tensor,
    g: &Tensor,
) -> Result<Launch> {
    let name = format!("{op:?} backward");
    let out = broadcast_shape(&name, &a.shape, &b.shape)?;
    if dy.shape != out {
        return Err(Error::Shape {
            op: name,
            msg: format!("dy {:?} but the output is {out:?}", dy.shape),
        });
    }
    let target = if which == 0 { a } else { b };
    same_shape(&name, target, g)?;
    let n = g.numel();
    let mut p = broadcast_params(n, op, &a.shape, &b.shape, &out);
    p[6] = which as u32;
    // A sum's derivatives are constants: its operands are taken for their shapes only (their
    // memory may hold other values by now), and dy is bound in their place, never read there.
    let (va, vb) = match op {
        BinaryOp::Add | BinaryOp::Sub => (dy, dy),
        _ => (a, b),
    };
    a.device.launch(
        &SHADER,
        "binary_grad",
        &[],
        &p,
        &[va.buffer(), vb.buffer(), dy.buffer(), g.buffer()],
        grid_1d(n, 256),
    )
}

/// `op(x)`.
pub fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    eager::run_first(&x.device, ElementwiseOp::Unary(op), &[x])
}

/// `op'(x) · dy`.
pub fn unary_backward(op: UnaryOp, x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    eager::run_first(&x.device, ElementwiseOp::UnaryGrad(op), &[x, dy])
}

/// `f'(x) · dy` from `y = f(x)`.
pub fn unary_backward_out(op: UnaryOp, y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    eager::run_first(&y.device, ElementwiseOp::UnaryGradOut(op), &[y, dy])
}

/// `a (op) b` with broadcasting.
pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    eager::run_first(&a.device, ElementwiseOp::Binary(op), &[a, b])
}

/// Gradients `(da, db)` of `a (op) b`, each summed back to its operand's shape.
pub fn binary_backward(
    op: BinaryOp,
    a: &Tensor,
    b: &Tensor,
    dy: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let grad = |k| eager::run_first(&a.device, ElementwiseOp::BinaryGrad(op, k), &[a, b, dy]);
    Ok((grad(0)?, grad(1)?))
}
