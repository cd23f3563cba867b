//! Dropout, forward and backward. The keep mask is a pure function of (seed, step, index) (see
//! `ops::dropout`), computed in the kernel bit-for-bit as `dropout_mask` does on the host; the
//! forward still keeps it as a **state** tensor (u32, x's shape, 1 = kept), as MPS does, so the
//! backward reads it instead of re-deriving the step. WGSL: `wgsl/dropout.wgsl`. CPU reference:
//! `reference`. Inference is the identity.

use crate::error::{Error, Result, shape_err};
use crate::launch::{Launch, PRELUDE, Shader, f, grid_1d};
use crate::neuron::UnaryOp;
use crate::ops::axis::fmt_shape;
use crate::ops::dropout::{Dropout, DropoutOp};
use crate::ops::eager;
use crate::tensor::{DType, Tensor};

pub(crate) static SHADER: Shader = Shader {
    name: "dropout",
    user_code: false,
    parts: &[
        PRELUDE,
        crate::neuron::WGSL,
        include_str!("../../../wgsl/dropout.wgsl"),
    ],
};

fn check(t: &Tensor, name: &str, dtype: DType, want: &[usize]) -> Result<()> {
    t.expect_dtype(&format!("{} {name}", Dropout::OP), dtype)?;
    if t.shape != want {
        return shape_err(
            Dropout::OP,
            format!(
                "{name} {} does not match {}",
                fmt_shape(&t.shape),
                fmt_shape(want)
            ),
        );
    }
    Ok(())
}

/// The element count as a u32: the mask hashes the flat index, which must fit.
fn count(t: &Tensor) -> Result<u32> {
    u32::try_from(t.numel()).map_err(|_| {
        Error::Invalid(format!(
            "{}: {} has more than 2^32 - 1 elements",
            Dropout::OP,
            fmt_shape(&t.shape)
        ))
    })
}

/// Prepares training-mode dropout for `step`: `y = keep ? x/(1 − rate) : 0` and the keep mask
/// into `mask` (u32, x's shape).
pub fn dropout_launch(
    d: &Dropout,
    step: u64,
    x: &Tensor,
    y: &Tensor,
    mask: &Tensor,
) -> Result<Launch> {
    d.validate()?;
    check(x, "x", DType::F32, &x.shape)?;
    check(y, "y", DType::F32, &x.shape)?;
    check(mask, "mask", DType::U32, &x.shape)?;
    let n = count(x)?;
    let p = dropout_params(d, step, n);
    x.device.launch(
        &SHADER,
        "dropout_forward",
        &[],
        &p,
        &[x.buffer(), y.buffer(), mask.buffer()],
        grid_1d(n as usize, 256),
    )
}

/// The forward's parameter words for `step`: what a replayed graph rewrites every step so each
/// step draws a fresh mask.
pub fn dropout_params(d: &Dropout, step: u64, n: u32) -> [u32; 4] {
    [n, d.key(step), d.threshold(), f(d.scale() as f32)]
}

/// Prepares the training-mode backward: `dx = mask ? dy/(1 − rate) : 0`.
pub fn dropout_backward_launch(
    d: &Dropout,
    dy: &Tensor,
    mask: &Tensor,
    dx: &Tensor,
) -> Result<Launch> {
    d.validate()?;
    check(dy, "dy", DType::F32, &dy.shape)?;
    check(mask, "mask", DType::U32, &dy.shape)?;
    check(dx, "dx", DType::F32, &dy.shape)?;
    let n = count(dy)?;
    let p = [n, 0, 0, f(d.scale() as f32)];
    dy.device.launch(
        &SHADER,
        "dropout_backward",
        &[],
        &p,
        &[dy.buffer(), mask.buffer(), dx.buffer()],
        grid_1d(n as usize, 256),
    )
}

/// Prepares the training-mode backward followed by the gradient of `neuron` from its output
/// `y` (the dropout's input): `dx = neuron'(from y) · (mask ? dy/(1 − rate) : 0)`, one dispatch.
pub fn dropout_backward_out_launch(
    d: &Dropout,
    dy: &Tensor,
    mask: &Tensor,
    neuron: UnaryOp,
    y: &Tensor,
    dx: &Tensor,
) -> Result<Launch> {
    d.validate()?;
    check(dy, "dy", DType::F32, &dy.shape)?;
    check(mask, "mask", DType::U32, &dy.shape)?;
    check(y, "the neuron's output", DType::F32, &dy.shape)?;
    check(dx, "dx", DType::F32, &dy.shape)?;
    let n = count(dy)?;
    let p = [n, 0, 0, f(d.scale() as f32)];
    dy.device.launch(
        &SHADER,
        "dropout_backward_out",
        &crate::neuron::grad_constants(neuron)?,
        &p,
        &[dy.buffer(), mask.buffer(), y.buffer(), dx.buffer()],
        grid_1d(n as usize, 256),
    )
}

/// Prepares inference-mode dropout (forward or backward): a copy `y = x`, for a graph that needs
/// the output in its own buffer; otherwise just use x.
pub fn dropout_inference_launch(x: &Tensor, y: &Tensor) -> Result<Launch> {
    check(x, "x", DType::F32, &x.shape)?;
    check(y, "y", DType::F32, &x.shape)?;
    let n = count(x)?;
    x.device.launch(
        &SHADER,
        "dropout_copy",
        &[],
        &[n],
        &[x.buffer(), y.buffer()],
        grid_1d(n as usize, 256),
    )
}

/// Dropout of x for `step`. Training returns (y, Some(mask)); inference returns (x, None)
/// (the same buffer: the identity costs nothing).
pub fn dropout(
    d: &Dropout,
    step: u64,
    x: &Tensor,
    training: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    d.validate()?;
    if !training {
        return Ok((x.clone(), None));
    }
    let op = DropoutOp::Dropout {
        op: *d,
        training: true,
    };
    eager::result_and_state(eager::run_at(&x.device, op, &[x], step)?)
}

/// Gradient of [`dropout`]: with the forward's mask (training) or without (inference: dy).
pub fn dropout_backward(d: &Dropout, dy: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    d.validate()?;
    let Some(mask) = mask else {
        return Ok(dy.clone());
    };
    check(dy, "dy", DType::F32, &dy.shape)?; // the launch's wording, naming dropout
    check(mask, "mask", DType::U32, &dy.shape)?;
    eager::run_first(&dy.device, DropoutOp::Grad(*d), &[mask, dy])
}
