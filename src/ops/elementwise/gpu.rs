//! Elementwise ops: unary (neurons and math) and broadcasting binary ops, forward and backward.
//! WGSL: `wgsl/elementwise.wgsl`. CPU reference: `reference.rs`.

use crate::error::{Error, Result, Unit};
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
/// strides in output coordinates (`Params` in `elementwise.wgsl`; chain fields left empty,
/// operand maps after them). An `Err` where `n` or the output's count exceeds u32.
fn broadcast_params(
    name: &str,
    n: usize,
    op: BinaryOp,
    a: &[usize],
    b: &[usize],
    out: &[usize],
) -> Result<Vec<u32>> {
    // The output's count bounds every stride and size below (an operand's may exceed it only
    // where the output has a 0 dim, and then nothing is indexed).
    let count = out.iter().try_fold(1usize, |c, &d| c.checked_mul(d));
    let (Ok(n32), Some(Ok(_))) = (u32::try_from(n), count.map(u32::try_from)) else {
        return Err(Error::TooLarge {
            what: format!("{name} output {out:?}"),
            amount: n.max(count.unwrap_or(usize::MAX)) as u64,
            limit: u32::MAX as u64,
            unit: Unit::Elements,
        });
    };
    let mut w = vec![n32, op as u32, out.len() as u32, 0, 0, 0, 0, 0];
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
    w.resize(OPERAND_MAPS_AT, 0);
    w.extend_from_slice(&operand_map(a, out));
    w.extend_from_slice(&operand_map(b, out));
    Ok(w)
}

/// Word of `Params` where `a_map` starts (`b_map` follows): after the header, the three rank-8
/// vectors and the fused chain's three.
const OPERAND_MAPS_AT: usize = 8 + 6 * MAX_RANK;

/// How the binary kernels index an operand of `shape` broadcast to `out`: `(kind, inner, count,
/// 0)`, kind 1 (`SAME`) where it has the output's layout (offset i), 2 (`RUN`) where the dims
/// it was not broadcast along are one run of the output's dims (offset (i / inner) % count:
/// a per-channel (1, C, 1, 1) operand, a bias row, a scalar), else 0 (`STRIDED`: the per-dim
/// loop). Dims of size 1 in the output are ignored: they index nothing. The caller has checked
/// that the output's element count fits u32, which bounds `inner` and `count`.
fn operand_map(shape: &[usize], out: &[usize]) -> [u32; 4] {
    const STRIDED: [u32; 4] = [0, 0, 0, 0];
    let n: usize = out.iter().product();
    if shape.iter().product::<usize>() == n {
        // Broadcasting only repeats: as many elements as the output means no dim repeated.
        return [1, 0, 0, 0];
    }
    let off = out.len() - shape.len();
    // Output dims (> 1) the operand has in full, by position; the run must be unbroken.
    let kept = |k: usize| out[k] > 1 && k >= off && shape[k - off] == out[k];
    let live: Vec<usize> = (0..out.len()).filter(|&k| out[k] > 1).collect();
    let first = live.iter().position(|&k| kept(k));
    let last = live.iter().rposition(|&k| kept(k));
    let (inner, count) = match (first, last) {
        (Some(f), Some(l)) => {
            if !live[f..=l].iter().all(|&k| kept(k)) {
                return STRIDED;
            }
            let inner: usize = out[live[l] + 1..].iter().product();
            let count: usize = live[f..=l].iter().map(|&k| out[k]).product();
            (inner, count)
        }
        // Broadcast along every dim: one element, offset 0.
        _ => (1, 1),
    };
    match (u32::try_from(inner), u32::try_from(count)) {
        (Ok(i), Ok(c)) => [2, i, c, 0],
        _ => STRIDED,
    }
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

/// Word of `Params` where the fused chain's op codes start (its parameters follow).
const CHAIN_AT: usize = 8 + 3 * MAX_RANK;

/// Writes the fused chain `fused` (applied in order after the op) into a parameter block.
fn with_fused(mut p: Vec<u32>, fused: &[UnaryOp]) -> Result<Vec<u32>> {
    if fused.len() > MAX_CHAIN {
        return Err(Error::Invalid(format!(
            "a fused chain of {} unary ops exceeds {MAX_CHAIN}",
            fused.len()
        )));
    }
    p.resize(p.len().max(CHAIN_AT + 3 * MAX_CHAIN), 0);
    p[3] = fused.len() as u32;
    for (k, op) in fused.iter().enumerate() {
        let (c, a, b) = op.code();
        p[CHAIN_AT + k] = c;
        p[CHAIN_AT + MAX_CHAIN + k] = f(a);
        p[CHAIN_AT + 2 * MAX_CHAIN + k] = f(b);
    }
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
    let p = broadcast_params(&name, n, op, &a.shape, &b.shape, &out)?;
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
    let mut p = broadcast_params(&name, n, op, &a.shape, &b.shape, &out)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operand_maps_pick_the_cheapest_indexing() {
        let out = [2, 5, 3, 4];
        // The output's own layout, also with missing or size-1 leading dims.
        assert_eq!(operand_map(&out, &out), [1, 0, 0, 0]);
        assert_eq!(operand_map(&[1, 7], &[7]), [1, 0, 0, 0]);
        assert_eq!(operand_map(&[5, 7], &[1, 5, 7]), [1, 0, 0, 0]);
        // Per channel: (i / (3·4)) % 5, however the operand spells it.
        assert_eq!(operand_map(&[1, 5, 1, 1], &out), [2, 12, 5, 0]);
        assert_eq!(operand_map(&[5, 1, 1], &out), [2, 12, 5, 0]);
        // A trailing run (a bias row), a leading one, a scalar.
        assert_eq!(operand_map(&[3, 4], &out), [2, 1, 12, 0]);
        assert_eq!(operand_map(&[2, 1, 1, 1], &out), [2, 60, 2, 0]);
        assert_eq!(operand_map(&[1], &out), [2, 1, 1, 0]);
        // Size-1 output dims inside the run index nothing: still one run.
        assert_eq!(operand_map(&[3, 1, 1], &[3, 1, 5]), [2, 5, 3, 0]);
        assert_eq!(operand_map(&[3, 1, 2, 1], &[3, 1, 2, 5]), [2, 5, 6, 0]);
        // Kept dims with a broadcast one between them: the per-dim loop.
        assert_eq!(operand_map(&[2, 1, 3, 4], &out), [0, 0, 0, 0]);
        assert_eq!(operand_map(&[2, 5, 1, 4], &out), [0, 0, 0, 0]);
    }

    #[test]
    fn parameters_past_u32_are_errors() {
        let out = [1usize << 20, 1 << 13];
        let e = broadcast_params(
            "Add",
            1 << 33,
            BinaryOp::Add,
            &[1 << 20, 1],
            &[1 << 13],
            &out,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("Add") && e.contains("4294967295"), "{e}");
        // An output whose count overflows a usize (operands that broadcast each other).
        let huge = [usize::MAX, 2];
        let e = broadcast_params("Mul", 0, BinaryOp::Mul, &[usize::MAX, 1], &[2], &huge);
        assert!(e.unwrap_err().to_string().contains("Mul"));
        // Within u32: the maps land at the end of the 64-word uniform.
        let p = broadcast_params(
            "Add",
            120,
            BinaryOp::Add,
            &[1, 5, 1, 1],
            &[2, 5, 3, 4],
            &[2, 5, 3, 4],
        )
        .unwrap();
        assert_eq!(p.len(), crate::launch::UNIFORM_WORDS);
        assert_eq!(&p[OPERAND_MAPS_AT..], &[2, 12, 5, 0, 1, 0, 0, 0]);
    }
}
