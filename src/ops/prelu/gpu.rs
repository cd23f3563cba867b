//! PReLU on the GPU: forward, input gradient, and the slope gradient as a deterministic two-level
//! per-slot reduction (no float atomics). WGSL: `wgsl/prelu.wgsl`. CPU reference:
//! `ops::prelu::reference`. Descriptor: `ops::prelu::PRelu`.

use crate::error::{Error, Result, shape_err};
use crate::launch::{Launch, PRELUDE, Prepared, Shader, grid_1d};
use crate::ops::axis::fmt_shape;
use crate::ops::eager;
use crate::ops::prelu::{PRelu, PReluOp};
use crate::tensor::{DType, Tensor};

pub(crate) static SHADER: Shader = Shader {
    name: "prelu",
    user_code: false,
    parts: &[PRELUDE, include_str!("../../../wgsl/prelu.wgsl")],
};

/// Elements of one slot summed by one workgroup in the first level of the slope gradient (16 per
/// invocation); a slot with more gets several chunks, summed by the second level.
pub const DA_CHUNK: usize = 4096;

/// Errors unless `t` is f32 of shape `want`; `what` names it.
fn check(what: &str, t: &Tensor, want: &[usize]) -> Result<()> {
    t.expect_dtype(&format!("{} {what}", PRelu::OP), DType::F32)?;
    if t.shape != want {
        return shape_err(
            PRelu::OP,
            format!(
                "{what} {} does not match {}",
                fmt_shape(&t.shape),
                fmt_shape(want)
            ),
        );
    }
    Ok(())
}

/// `(n, slots, inner)` of x as u32 words, after checking x (f32, a valid PReLU input whose
/// elements a u32 can index).
fn layout(op: &PRelu, x: &Tensor) -> Result<(u32, u32, u32)> {
    let (_, slots, inner) = op.layout(&x.shape)?;
    check("x", x, &x.shape)?;
    let n = u32::try_from(x.numel()).map_err(|_| {
        Error::Invalid(format!(
            "{}: {} has more than 2^32 - 1 elements",
            PRelu::OP,
            fmt_shape(&x.shape)
        ))
    })?;
    Ok((n, slots as u32, inner as u32))
}

/// The uniform words: `[n, slots, inner, chunks, chunk, per_slot]`.
fn params(n: u32, slots: u32, inner: u32, chunks: u32, chunk: u32) -> [u32; 6] {
    [n, slots, inner, chunks, chunk, n / slots]
}

/// Prepares `y = x > 0 ? x : a[c]·x` (y has x's shape; `a` is `[num_parameters]`).
pub fn prelu_launch(op: &PRelu, x: &Tensor, a: &Tensor, y: &Tensor) -> Result<Launch> {
    let (n, slots, inner) = layout(op, x)?;
    check("weight", a, &op.weight_shape())?;
    check("y", y, &x.shape)?;
    x.device.launch(
        &SHADER,
        "prelu_forward",
        &[],
        &params(n, slots, inner, 0, 0),
        &[x.buffer(), a.buffer(), y.buffer()],
        grid_1d(n as usize, 256),
    )
}

/// Prepares `dx = x > 0 ? dy : a[c]·dy` (x = 0 takes the slope branch, as PyTorch).
pub fn prelu_backward_input_launch(
    op: &PRelu,
    x: &Tensor,
    a: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Launch> {
    let (n, slots, inner) = layout(op, x)?;
    check("weight", a, &op.weight_shape())?;
    check("dy", dy, &x.shape)?;
    check("dx", dx, &x.shape)?;
    x.device.launch(
        &SHADER,
        "prelu_backward_input",
        &[],
        &params(n, slots, inner, 0, 0),
        &[x.buffer(), a.buffer(), dy.buffer(), dx.buffer()],
        grid_1d(n as usize, 256),
    )
}

/// Prepares `da[c] = Σ (x > 0 ? 0 : x)·dy` over the elements of slope `c` into `da`
/// (`[num_parameters]`), in chunks of [`DA_CHUNK`] elements.
pub fn prelu_backward_weight_launches(
    op: &PRelu,
    x: &Tensor,
    dy: &Tensor,
    da: &Tensor,
) -> Result<Prepared> {
    prelu_backward_weight_launches_chunked(op, x, dy, da, DA_CHUNK)
}

/// [`prelu_backward_weight_launches`] with `chunk` elements per first-level workgroup (≥ 1):
/// one launch when a slot fits one chunk (it writes `da`), else partial sums of each
/// (slot, chunk) into a scratch tensor and a second launch summing each slot's partials. The
/// order of every sum is fixed, so the result is bit-for-bit reproducible. Small chunks let tests
/// reach the second level and grids over 65,535 workgroups on small inputs.
pub fn prelu_backward_weight_launches_chunked(
    op: &PRelu,
    x: &Tensor,
    dy: &Tensor,
    da: &Tensor,
    chunk: usize,
) -> Result<Prepared> {
    let (n, slots, inner) = layout(op, x)?;
    check("dy", dy, &x.shape)?;
    check("da", da, &op.weight_shape())?;
    if chunk == 0 {
        return Err(Error::Invalid(format!(
            "{}: slope-gradient chunk must be at least 1",
            PRelu::OP
        )));
    }
    let per_slot = (n / slots) as usize;
    let chunk = chunk.min(per_slot);
    let chunks = per_slot.div_ceil(chunk);
    let p = params(n, slots, inner, chunks as u32, chunk as u32);
    let dev = &x.device;
    let part = if chunks == 1 {
        da.clone()
    } else {
        Tensor::zeros(dev, &[slots as usize, chunks], da.dtype())?
    };
    let mut prep = Prepared::one(dev.launch(
        &SHADER,
        "prelu_da_partial",
        &[],
        &p,
        &[x.buffer(), dy.buffer(), part.buffer()],
        grid_1d(slots as usize * chunks, 1),
    )?);
    if chunks > 1 {
        prep.launches.push(dev.launch(
            &SHADER,
            "prelu_da_finish",
            &[],
            &p,
            &[part.buffer(), da.buffer()],
            grid_1d(slots as usize, 1),
        )?);
        prep.scratch.push(part);
    }
    Ok(prep)
}

/// The gradients of [`prelu`]: w.r.t. the input and the slopes.
#[derive(Debug)]
pub struct PReluGrads {
    /// Gradient of the input.
    pub dx: Tensor,
    /// Gradient of the slopes (`num_parameters`).
    pub da: Tensor,
}

/// The launches' input checks (their wording, naming prelu), before the graph op's.
fn check_inputs(op: &PRelu, x: &Tensor, a: &Tensor, dy: Option<&Tensor>) -> Result<()> {
    layout(op, x)?;
    check("weight", a, &op.weight_shape())?;
    dy.map_or(Ok(()), |dy| check("dy", dy, &x.shape))
}

/// PReLU of x with slopes `a`.
pub fn prelu(op: &PRelu, x: &Tensor, a: &Tensor) -> Result<Tensor> {
    check_inputs(op, x, a, None)?;
    eager::run_first(&x.device, PReluOp::Forward(*op), &[x, a])
}

/// Gradients of [`prelu`] from the forward's input and the output gradient `dy`.
pub fn prelu_backward(op: &PRelu, x: &Tensor, a: &Tensor, dy: &Tensor) -> Result<PReluGrads> {
    check_inputs(op, x, a, Some(dy))?;
    let dx = eager::run_first(&x.device, PReluOp::GradInput(*op), &[x, a, dy])?;
    let da = eager::run_first(&x.device, PReluOp::GradWeight(*op), &[x, dy])?;
    Ok(PReluGrads { dx, da })
}
