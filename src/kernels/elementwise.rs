//! Elementwise ops: unary (neurons and math) and broadcasting binary ops, forward and backward.
//! WGSL: `wgsl/elementwise.wgsl`. CPU reference: `reference::basic`.

use super::{Launch, Shader, f, grid_1d};
use crate::error::{Error, Result};
use crate::ops::neuron::Neuron;
use crate::tensor::{DType, Tensor};

pub static SHADER: Shader = Shader {
    name: "elementwise",
    parts: &[
        include_str!("../../wgsl/neuron.wgsl"),
        include_str!("../../wgsl/elementwise.wgsl"),
    ],
};

/// Unary ops. The discriminant order is the op code in `elementwise.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    Relu,
    /// x if x > 0 else alpha·x
    LeakyRelu {
        alpha: f32,
    },
    /// clamp(x, 0, n)
    ReluN {
        n: f32,
    },
    Elu {
        alpha: f32,
    },
    Sigmoid,
    /// clamp(a·x + b, 0, 1)
    HardSigmoid {
        a: f32,
        b: f32,
    },
    Tanh,
    Softplus,
    Softsign,
    /// Exact (erf) GELU.
    Gelu,
    Abs,
    Exp,
    Log,
    /// a·x + b
    Linear {
        a: f32,
        b: f32,
    },
    Neg,
    Sqrt,
    Square,
    Recip,
    /// GELU's tanh approximation `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (GPT-2).
    GeluTanh,
}

/// Pipeline constants that fix a kernel's fused neuron (`POST_OP` in `wgsl/neuron.wgsl`) so the
/// compiler drops the other neurons' branches: with the generic switch the GEMM epilogue cost
/// ~9 % of an MNIST training step on an H100 (BENCHMARKS.md). None without a post-op.
pub fn post_constants(post: Option<UnaryOp>) -> Vec<(&'static str, f64)> {
    post.map(|u| vec![("POST_OP", u.code().0 as f64)])
        .unwrap_or_default()
}

impl UnaryOp {
    /// (op code, parameter a, parameter b) as the shader reads them.
    pub fn code(self) -> (u32, f32, f32) {
        use UnaryOp::*;
        match self {
            Relu => (0, 0.0, 0.0),
            LeakyRelu { alpha } => (1, alpha, 0.0),
            ReluN { n } => (2, n, 0.0),
            Elu { alpha } => (3, alpha, 0.0),
            Sigmoid => (4, 0.0, 0.0),
            HardSigmoid { a, b } => (5, a, b),
            Tanh => (6, 0.0, 0.0),
            Softplus => (7, 0.0, 0.0),
            Softsign => (8, 0.0, 0.0),
            Gelu => (9, 0.0, 0.0),
            Abs => (10, 0.0, 0.0),
            Exp => (11, 0.0, 0.0),
            Log => (12, 0.0, 0.0),
            Linear { a, b } => (13, a, b),
            Neg => (14, 0.0, 0.0),
            Sqrt => (15, 0.0, 0.0),
            Square => (16, 0.0, 0.0),
            Recip => (17, 0.0, 0.0),
            GeluTanh => (18, 0.0, 0.0),
        }
    }

    /// Every variant with typical parameters, for tests.
    pub fn all() -> Vec<UnaryOp> {
        use UnaryOp::*;
        vec![
            Relu,
            LeakyRelu { alpha: 0.1 },
            ReluN { n: 0.5 },
            Elu { alpha: 1.3 },
            Sigmoid,
            HardSigmoid { a: 0.2, b: 0.5 },
            Tanh,
            Softplus,
            Softsign,
            Gelu,
            Abs,
            Exp,
            Log,
            Linear { a: 1.5, b: -0.25 },
            Neg,
            Sqrt,
            Square,
            Recip,
            GeluTanh,
        ]
    }
}

/// What the vjp rule of a unary op reads besides `dy` ([`UnaryOp::grad_from`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GradFrom {
    /// The derivative is a constant: `dx` is this unary op applied to `dy` (reads neither x nor y).
    Nothing(UnaryOp),
    /// The derivative is a function of the output y: `Op::UnaryGradOut` reads (y, dy), so the
    /// input x stays free to be fused into its producer (conv/FC + bias + ReLU in training).
    Output,
    /// The derivative needs the input x: `Op::UnaryGrad` reads (x, dy).
    Input,
}

impl UnaryOp {
    /// Which value the gradient reads. Output-based only where `f'(x)` is an exact function of
    /// `y = f(x)` with the same kink conventions as the x-based gradient (ReLU at 0 → 0, leaky
    /// ReLU at 0 → alpha, ReLU-n at 0 and n → 0, hard sigmoid at its corners → 0, ELU at 0 →
    /// alpha) and no f32 precision loss beyond what the x-based kernel already has:
    /// - ReLU `y > 0`; leaky ReLU (alpha ≥ 0) `y > 0 ? 1 : alpha`; ReLU-n (n > 0) `0 < y < n`;
    ///   hard sigmoid `0 < y < 1 ? a : 0` (its `0 < a·x + b < 1`). `y > 0 ⇔ x > 0` needs
    ///   alpha ≥ 0: with alpha < 0 (or NaN) the negative side maps to y > 0, so those stay x-based;
    ///   so does ReLU-n with n ≤ 0;
    /// - ELU (alpha ≥ 0) `y > 0 ? 1 : y + alpha` (PyTorch's `is_result` form; absolute error at
    ///   most one ulp of alpha where `alpha·eˣ` is tiny);
    /// - sigmoid `y(1 − y)`, tanh `1 − y²` (what the x-based kernel computes from y anyway),
    ///   exp `y`, sqrt `0.5 / y`, reciprocal `−y²`.
    ///
    /// Not output-based: softplus (`1 − e^(−y)`) and softsign (`(1 − |y|)²`) are exact in exact
    /// arithmetic but cancel in f32 in the tails where the x-based forms are accurate; log
    /// (`e^(−y)`) amplifies y's rounding by |y|; GELU (both), abs and square are not injective,
    /// so y does not determine the derivative. Linear and neg have constant derivatives.
    pub fn grad_from(self) -> GradFrom {
        use UnaryOp::*;
        match self {
            Linear { a, .. } => GradFrom::Nothing(Linear { a, b: 0.0 }),
            Neg => GradFrom::Nothing(Neg),
            Relu | Sigmoid | HardSigmoid { .. } | Tanh | Exp | Sqrt | Recip => GradFrom::Output,
            LeakyRelu { alpha } | Elu { alpha } if alpha >= 0.0 => GradFrom::Output,
            ReluN { n } if n > 0.0 => GradFrom::Output,
            _ => GradFrom::Input,
        }
    }
}

/// Every MPS neuron is one of the unary kernels, so the graph needs no neuron shader of its own.
impl From<&Neuron> for UnaryOp {
    fn from(n: &Neuron) -> UnaryOp {
        match *n {
            Neuron::Relu => UnaryOp::Relu,
            Neuron::LeakyRelu { alpha } => UnaryOp::LeakyRelu { alpha },
            Neuron::ReluN { n } => UnaryOp::ReluN { n },
            Neuron::Elu { alpha } => UnaryOp::Elu { alpha },
            Neuron::Sigmoid => UnaryOp::Sigmoid,
            Neuron::HardSigmoid { a, b } => UnaryOp::HardSigmoid { a, b },
            Neuron::Tanh => UnaryOp::Tanh,
            Neuron::Softplus => UnaryOp::Softplus,
            Neuron::Softsign => UnaryOp::Softsign,
            Neuron::Gelu { tanh_approx: false } => UnaryOp::Gelu,
            Neuron::Gelu { tanh_approx: true } => UnaryOp::GeluTanh,
            Neuron::Abs => UnaryOp::Abs,
            Neuron::Exp => UnaryOp::Exp,
            Neuron::Log => UnaryOp::Log,
            Neuron::Linear { a, b } => UnaryOp::Linear { a, b },
        }
    }
}

/// Binary ops with numpy broadcasting. The discriminant is the op code in the shader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add = 0,
    Sub = 1,
    Mul = 2,
    Div = 3,
    Max = 4,
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
    let st = crate::reference::strides(shape);
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
    unary_chain_launch(op, &[], x, y)
}

/// Most unary ops a dispatch can fuse after its own op.
pub const MAX_CHAIN: usize = 8;

/// Appends the fused chain `then` (applied in order after the op) to a parameter block.
fn with_chain(mut p: Vec<u32>, then: &[UnaryOp]) -> Result<Vec<u32>> {
    if then.len() > MAX_CHAIN {
        return Err(Error::Invalid(format!(
            "a fused chain of {} unary ops exceeds {MAX_CHAIN}",
            then.len()
        )));
    }
    p.resize(32, 0);
    p[3] = then.len() as u32;
    let mut codes = [0u32; 3 * MAX_CHAIN];
    for (k, op) in then.iter().enumerate() {
        let (c, a, b) = op.code();
        codes[k] = c;
        codes[MAX_CHAIN + k] = f(a);
        codes[2 * MAX_CHAIN + k] = f(b);
    }
    p.extend_from_slice(&codes);
    Ok(p)
}

/// Prepares `y = then(op(x))`: `op` followed by the fused unary chain `then`.
pub fn unary_chain_launch(op: UnaryOp, then: &[UnaryOp], x: &Tensor, y: &Tensor) -> Result<Launch> {
    let name = format!("{op:?}");
    f32_in(&name, x)?;
    same_shape(&name, x, y)?;
    let (code, a, b) = op.code();
    let n = x.numel();
    let p = with_chain(vec![n as u32, code, 0, 0, f(a), f(b)], then)?;
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
    binary_chain_launch(op, &[], a, b, y)
}

/// Prepares `y = then(a (op) b)`: e.g. a bias add with its neuron fused.
pub fn binary_chain_launch(
    op: BinaryOp,
    then: &[UnaryOp],
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
    let p = with_chain(p, then)?;
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
    a.device.launch(
        &SHADER,
        "binary_grad",
        &[],
        &p,
        &[a.buffer(), b.buffer(), dy.buffer(), g.buffer()],
        grid_1d(n, 256),
    )
}

fn new_like(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    Tensor::zeros(&x.device, shape, DType::F32)
}

/// `op(x)`.
pub fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor> {
    let y = new_like(x, &x.shape)?;
    x.device.run(&[unary_launch(op, x, &y)?])?;
    Ok(y)
}

/// `op'(x) · dy`.
pub fn unary_backward(op: UnaryOp, x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let dx = new_like(x, &x.shape)?;
    x.device.run(&[unary_backward_launch(op, x, dy, &dx)?])?;
    Ok(dx)
}

/// `f'(x) · dy` from `y = f(x)`.
pub fn unary_backward_out(op: UnaryOp, y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let dx = new_like(y, &y.shape)?;
    y.device
        .run(&[unary_backward_out_launch(op, y, dy, &dx)?])?;
    Ok(dx)
}

/// `a (op) b` with broadcasting.
pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let y = new_like(a, &broadcast_shape(&format!("{op:?}"), &a.shape, &b.shape)?)?;
    a.device.run(&[binary_launch(op, a, b, &y)?])?;
    Ok(y)
}

/// Gradients `(da, db)` of `a (op) b`, each summed back to its operand's shape.
pub fn binary_backward(
    op: BinaryOp,
    a: &Tensor,
    b: &Tensor,
    dy: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let (da, db) = (new_like(a, &a.shape)?, new_like(b, &b.shape)?);
    let l = [
        binary_grad_launch(op, 0, a, b, dy, &da)?,
        binary_grad_launch(op, 1, a, b, dy, &db)?,
    ];
    a.device.run(&l)?;
    Ok((da, db))
}
