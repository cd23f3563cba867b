//! Fully connected layer on the GPU: `y = x · Wᵀ + b`, forward and gradients, all on the shared
//! matmul (`ops::matmul::gpu`, main loop `gemm_core.wgsl`). CPU reference: `reference`.
//!
//! The input is the `(N, K)` matrix, or an image batch `(N, C, H, W)` used as that matrix as it
//! lies in memory (then the output is `(N, out, 1, 1)`). The bias costs no extra pass over y:
//! the GEMM's epilogue (or its split-K sum's) adds it.
//!
//! * forward `y (N, out) = b + x (N, K) · Wᵀ` (W is `(out, K)`, read transposed)
//! * `dx (N, K) = dy (N, out) · W`
//! * `dW (out, K) = dyᵀ · x`
//! * `db (out,) = Σ_n dy` (`wgsl/conv/grad_bias.wgsl`)

use crate::error::Result;
use crate::launch::Prepared;
use crate::ops::conv::ConvOp;
use crate::ops::conv::gpu::{Grads, bias_grad_launches, check, check_bias};
use crate::ops::dense::{DenseOp, FullyConnected};
use crate::ops::eager;
use crate::ops::elementwise::UnaryOp;
use crate::ops::matmul::gpu::{Gemm, biased_gemm_launches, gemm_launches};
use crate::tensor::{DType, Tensor};

const OP: &str = "fully_connected";

/// Prepares `y = x · Wᵀ + b` into `y` (shape `op.out_shape(x)`).
pub fn forward_launches(
    op: &FullyConnected,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    y: &Tensor,
) -> Result<Prepared> {
    forward_fused_launches(op, x, w, b, y, None)
}

/// `forward_launches` with a neuron fused into the GEMM epilogue (FC + bias + neuron).
pub fn forward_fused_launches(
    op: &FullyConnected,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    y: &Tensor,
    fused: Option<UnaryOp>,
) -> Result<Prepared> {
    let (n, k) = op.matrix_shape(&x.shape)?;
    x.expect_dtype(OP, DType::F32)?;
    check(OP, "weight", w, &op.weight_shape())?;
    check_bias(OP, op.bias, b, op.out_features)?;
    check(OP, "output", y, &op.out_shape(&x.shape)?)?;
    let g = Gemm {
        fused,
        ..Gemm::plain(n, op.out_features, k, false, true, false)
    };
    biased_gemm_launches(&g, x, w, b, y)
}

/// Prepares every gradient into `grads` (`dx` shaped like x, `dw` like W, `db` exactly when the
/// layer has a bias).
pub fn backward_launches(
    op: &FullyConnected,
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    grads: &Grads,
) -> Result<Prepared> {
    check_bias(OP, op.bias, grads.db.as_ref(), op.out_features)?;
    let mut prep = backward_data_launches(op, &x.shape, w, dy, &grads.dx)?;
    prep.extend(backward_weights_launches(op, x, dy, &grads.dw)?);
    if let Some(db) = &grads.db {
        prep.extend(bias_grad_launches(dy, db)?);
    }
    Ok(prep)
}

/// Prepares `dx (N, K) = dy (N, out) · W (out, K)` for an input of `x_shape`.
pub fn backward_data_launches(
    op: &FullyConnected,
    x_shape: &[usize],
    w: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Prepared> {
    backward_data_into(op, x_shape, w, dy, dx, false)
}

/// `backward_data_launches`, adding into `dx` when `accumulate` (a gradient sum in place).
pub(crate) fn backward_data_into(
    op: &FullyConnected,
    x_shape: &[usize],
    w: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
    accumulate: bool,
) -> Result<Prepared> {
    let (n, k) = op.matrix_shape(x_shape)?;
    check(OP, "weight", w, &op.weight_shape())?;
    check(OP, "output gradient", dy, &op.out_shape(x_shape)?)?;
    check(OP, "input gradient", dx, x_shape)?;
    gemm_launches(
        &Gemm::plain(n, k, op.out_features, false, false, accumulate),
        dy,
        w,
        dx,
    )
}

/// Prepares `dW (out, K) = dyᵀ (out, N) · x (N, K)`.
pub fn backward_weights_launches(
    op: &FullyConnected,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
) -> Result<Prepared> {
    backward_weights_into(op, x, dy, dw, false)
}

/// `backward_weights_launches`, adding into `dw` when `accumulate`.
pub(crate) fn backward_weights_into(
    op: &FullyConnected,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
    accumulate: bool,
) -> Result<Prepared> {
    let (n, k) = op.matrix_shape(&x.shape)?;
    x.expect_dtype(OP, DType::F32)?;
    check(OP, "output gradient", dy, &op.out_shape(&x.shape)?)?;
    check(OP, "weight gradient", dw, &op.weight_shape())?;
    gemm_launches(
        &Gemm::plain(op.out_features, k, n, true, false, accumulate),
        dy,
        x,
        dw,
    )
}

/// `y = x · Wᵀ + b`, as `reference::forward`.
pub fn forward(op: &FullyConnected, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let mut ins = vec![x, w];
    ins.extend(b);
    eager::run_first(&x.device, DenseOp::Forward(*op), &ins)
}

/// All gradients (one run per gradient op), as `reference::backward`.
pub fn backward(op: &FullyConnected, x: &Tensor, w: &Tensor, dy: &Tensor) -> Result<Grads> {
    let dev = &x.device;
    Ok(Grads {
        dx: eager::run_first(dev, DenseOp::GradData(*op), &[w, dy, x])?,
        dw: eager::run_first(dev, DenseOp::GradWeight(*op), &[x, dy])?,
        db: if op.bias {
            Some(eager::run_first(dev, ConvOp::BiasGrad, &[dy])?)
        } else {
            None
        },
    })
}
