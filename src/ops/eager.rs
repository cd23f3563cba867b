//! One eager path for every op: infer the output shapes from the input tensors, allocate the
//! outputs, lower the op and run it — so any op descriptor runs on tensors without a hand-written
//! eager twin. The families' eager conveniences (`softmax::gpu::softmax`, `conv::gpu::backward`,
//! ...) are thin wrappers over [`run`]: allocation, lowering and running happen here alone.
//!
//! ```no_run
//! use wgtrain::ops::elementwise::{ElementwiseOp, UnaryOp};
//! use wgtrain::{Device, Tensor};
//! # fn main() -> wgtrain::Result<()> {
//! let dev = Device::new()?;
//! let x = Tensor::from_f32(&dev, &[2, 3], &[-1.0, 0.0, 1.0, 2.0, -2.0, 0.5])?;
//! let y = wgtrain::ops::eager::run(&dev, ElementwiseOp::Unary(UnaryOp::Relu), &[&x])?;
//! assert_eq!(y[0].to_f32()?, [0.0, 0.0, 1.0, 2.0, 0.0, 0.5]);
//! # Ok(()) }
//! ```

use crate::device::Device;
use crate::error::{Error, Result};
use crate::graph::Op;
use crate::tensor::Tensor;

/// Runs `op` on `inputs` (lowered at step 0: per-step ops such as dropout draw step 0's mask) and returns every output
/// port, in order. A view op (reshape) returns its input's buffer under the new shape.
pub fn run(device: &Device, op: impl Into<Op>, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    run_at(device, op, inputs, 0)
}

/// [`run`] lowered at `step` (per-step ops such as dropout draw that step's mask).
pub fn run_at(
    device: &Device,
    op: impl Into<Op>,
    inputs: &[&Tensor],
    step: u64,
) -> Result<Vec<Tensor>> {
    let op = op.into();
    if op.is_source() {
        return Err(Error::Invalid(format!("{op:?} is fed, not computed")));
    }
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
    let outs = op.infer(&shapes)?;
    if op.is_view() {
        return outs
            .iter()
            .map(|(s, _)| inputs[0].reshape(s))
            .collect::<Result<Vec<_>>>();
    }
    let outs = outs
        .iter()
        .map(|(s, dt)| Tensor::zeros(device, s, *dt))
        .collect::<Result<Vec<_>>>()?;
    let out_refs: Vec<&Tensor> = outs.iter().collect();
    let prepared = op.lower(inputs, &out_refs, &[], step)?;
    // No wait: wgpu keeps the scratch buffers alive until the submitted work that uses them is
    // done, and a readback of the outputs waits for it (as the hand-written twins did).
    device.run(&prepared.launches)?;
    Ok(outs)
}

/// [`run`], returning the first output port (the only one of most ops).
pub(crate) fn run_first(device: &Device, op: impl Into<Op>, inputs: &[&Tensor]) -> Result<Tensor> {
    result_and_state(run(device, op, inputs)?).map(|(y, _)| y)
}

/// An op's outputs as its result (port 0) and, where it has one, its state (port 1: an argmax,
/// a mask, statistics).
pub(crate) fn result_and_state(outs: Vec<Tensor>) -> Result<(Tensor, Option<Tensor>)> {
    let mut outs = outs.into_iter();
    let y = outs
        .next()
        .ok_or_else(|| Error::Invalid("an op produced no output".into()))?;
    Ok((y, outs.next()))
}

/// A stand-in for an input that an op reads only for its shape (the `x` of a gradient op that
/// produces dx): `like`'s buffer seen as `shape`. Only for ops whose lowering never binds it.
pub(crate) fn shape_only(like: &Tensor, shape: &[usize]) -> Tensor {
    Tensor {
        shape: shape.to_vec(),
        ..like.clone()
    }
}
