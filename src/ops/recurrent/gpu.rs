//! Recurrent layers on the GPU. WGSL: `wgsl/recurrent/` (the data flow is in `common.wgsl`).
//! CPU reference: `ops::recurrent::reference`.
//!
//! * forward: `reserve_gates (T·N, G·H) = x · W_ihᵀ + b_ih` as one GEMM over all steps, then one
//!   `step_forward` dispatch per step (recurrent product, gates, cell update, y and the reserve).
//! * backward: `backward_prep` (h_{t-1} and c_{t-1} of every step, the carried gradients), one
//!   `step_backward` per step from the last to the first (gate gradients `dG`), `backward_final`
//!   for dh0/dc0, then the weight and input gradients as GEMMs over all steps:
//!   `dx = dG_x · W_ih`, `dW_ih = dG_xᵀ · x`, `dW_hh = dG_hᵀ · h_prev`, `db = Σ dG`.
//!
//! The whole sequence is one list of launches, so it records into the step's one command buffer.

use crate::error::{Error, Result};
use crate::launch::{PRELUDE, Prepared, Shader, f, grid_1d};
use crate::ops::conv::gpu::{bias_fill_launch, bias_grad_launches, check};
use crate::ops::eager;
use crate::ops::matmul::gpu::{Gemm, gemm_launch};
use crate::tensor::{DType, Tensor};

use super::{Cell, Inputs, OP, Recurrent, RecurrentOp};

const COMMON: &str = include_str!("../../../wgsl/recurrent/common.wgsl");
const PRODUCT: &str = include_str!("../../../wgsl/recurrent/product.wgsl");

pub(crate) static FORWARD: Shader = Shader {
    name: "recurrent_forward",
    user_code: false,
    parts: &[
        crate::neuron::WGSL,
        COMMON,
        include_str!("../../../wgsl/recurrent/forward.wgsl"),
    ],
};

pub(crate) static PREP: Shader = Shader {
    name: "recurrent_prep",
    user_code: false,
    parts: &[
        PRELUDE,
        COMMON,
        include_str!("../../../wgsl/recurrent/prep.wgsl"),
    ],
};

pub(crate) static BACKWARD: Shader = Shader {
    name: "recurrent_backward",
    user_code: false,
    parts: &[
        crate::neuron::WGSL,
        COMMON,
        PRODUCT,
        include_str!("../../../wgsl/recurrent/backward.wgsl"),
    ],
};

pub(crate) static FINAL: Shader = Shader {
    name: "recurrent_final",
    user_code: false,
    parts: &[
        COMMON,
        PRODUCT,
        include_str!("../../../wgsl/recurrent/final.wgsl"),
    ],
};

/// Hidden units and sequences per workgroup of the step kernels (a 16×16 tile).
const TILE: usize = 16;

/// The upstream gradients the backward pass reads (each may be absent: zero).
#[derive(Clone, Copy, Default)]
pub struct Upstream<'a> {
    /// `(T, N, H)`, the gradient of y.
    pub dy: Option<&'a Tensor>,
    /// `(N, H)`, the gradient of the final hidden state.
    pub dh_n: Option<&'a Tensor>,
    /// `(N, H)`, the gradient of the final cell state (LSTM).
    pub dc_n: Option<&'a Tensor>,
}

/// The backward pass's outputs; the optional ones exactly as the op has them.
pub struct GradOutputs<'a> {
    /// `(T, N, I)`.
    pub dx: &'a Tensor,
    /// `(G·H, I)`.
    pub dw_ih: &'a Tensor,
    /// `(G·H, H)`.
    pub dw_hh: &'a Tensor,
    /// `(G·H)` when the layer has biases.
    pub db_ih: Option<&'a Tensor>,
    /// `(G·H)` when the layer has biases.
    pub db_hh: Option<&'a Tensor>,
    /// `(N, H)` when the layer takes an initial state.
    pub dh0: Option<&'a Tensor>,
    /// `(N, H)` when an LSTM takes an initial state.
    pub dc0: Option<&'a Tensor>,
}

/// Checks every forward input against the op; returns `(T, N)`.
fn check_inputs(op: &Recurrent, i: &Inputs<'_, Tensor>) -> Result<(usize, usize)> {
    op.check_inputs(&i.map(|t| t.shape()))?;
    let (t, n) = op.sequence(&i.x.shape)?;
    let named = [
        ("x", Some(i.x)),
        ("weight_ih", Some(i.w_ih)),
        ("weight_hh", Some(i.w_hh)),
    ];
    let optional = [
        ("bias_ih", i.b_ih),
        ("bias_hh", i.b_hh),
        ("h0", i.h0),
        ("c0", i.c0),
    ];
    for (what, tensor) in named.into_iter().chain(optional) {
        if let Some(tensor) = tensor {
            tensor.expect_dtype(&format!("{OP} {what}"), DType::F32)?;
        }
    }
    // The kernels index (T, N, G·H + H) with u32.
    let reserve = op.reserve_len(t, n)?;
    let largest = [reserve, i.x.numel(), i.w_ih.numel(), i.w_hh.numel()]
        .into_iter()
        .max()
        .unwrap_or(0);
    if u32::try_from(largest).is_err() {
        return Err(Error::Invalid(format!(
            "{OP}: {largest} elements in one tensor (sequence {:?}, hidden {}) exceed the 2^32 - 1 a kernel indexes",
            i.x.shape, op.hidden_size
        )));
    }
    Ok((t, n))
}

fn missing<T>(what: &str) -> Result<T> {
    Err(Error::Shape {
        op: OP.into(),
        msg: format!("the layer needs {what} but none was given"),
    })
}

/// The uniform words of the step kernels (layout: `Params` in `common.wgsl`).
fn params(op: &Recurrent, t: usize, step: usize, seq: usize, n: usize, up: [bool; 3]) -> Vec<u32> {
    let (cell, (act, a, b)) = match op.cell {
        Cell::Rnn(act) => (0, act.code()),
        Cell::Lstm => (1, (0, 0.0, 0.0)),
        Cell::Gru => (2, (0, 0.0, 0.0)),
    };
    vec![
        t as u32,
        step as u32,
        seq as u32,
        n as u32,
        op.hidden_size as u32,
        cell,
        act,
        f(a),
        f(b),
        op.bias as u32,
        op.initial_state as u32,
        op.reverse as u32,
        up[0] as u32,
        up[1] as u32,
        up[2] as u32,
    ]
}

/// The time position processed at `step`.
fn position(op: &Recurrent, step: usize, seq: usize) -> usize {
    if op.reverse { seq - 1 - step } else { step }
}

fn tile_grid(op: &Recurrent, n: usize) -> [u32; 3] {
    [
        op.hidden_size.div_ceil(TILE) as u32,
        n.div_ceil(TILE) as u32,
        1,
    ]
}

/// A `(rows, cols)` view of the first `rows·cols` elements of `t`.
fn matrix(t: &Tensor, rows: usize, cols: usize) -> Result<Tensor> {
    Tensor::view(
        &t.device,
        t.buffer.clone(),
        t.offset,
        &[rows, cols],
        t.dtype(),
    )
}

/// Prepares the forward pass into `y (T, N, H)`, the flat `reserve`, `h_n (N, H)` and, for an
/// LSTM, `c_n (N, H)`.
pub fn forward_launches(
    op: &Recurrent,
    i: &Inputs<'_, Tensor>,
    y: &Tensor,
    reserve: &Tensor,
    h_n: &Tensor,
    c_n: Option<&Tensor>,
) -> Result<Prepared> {
    let (seq, n) = check_inputs(op, i)?;
    let shapes = op.output_shapes(&i.x.shape)?;
    check(OP, "y", y, &shapes[0])?;
    check(OP, "reserve", reserve, &shapes[1])?;
    check(OP, "h_n", h_n, &shapes[2])?;
    match (c_n, shapes.get(3)) {
        (Some(c), Some(s)) => check(OP, "c_n", c, s)?,
        (None, None) => {}
        _ => return missing("c_n (exactly for an LSTM)"),
    }
    let gh = op.gate_rows()?;
    let tn = seq * n;
    let gates = matrix(reserve, tn, gh)?;
    let mut launches = Vec::with_capacity(seq + 2);
    if let Some(b) = i.b_ih {
        launches.push(bias_fill_launch(b, &gates)?);
    }
    launches.push(gemm_launch(
        &Gemm::plain(tn, gh, op.input_size, false, true, i.b_ih.is_some()),
        i.x,
        i.w_ih,
        &gates,
    )?);
    // Absent optional inputs bind a tensor the kernel does not read.
    let b_hh = i.b_hh.unwrap_or(i.w_hh);
    let h0 = i.h0.unwrap_or(h_n);
    let c0 = i.c0.unwrap_or(h_n);
    let c_n = c_n.unwrap_or(h_n);
    for step in 0..seq {
        let t = position(op, step, seq);
        launches.push(i.x.device.launch(
            &FORWARD,
            "step_forward",
            &[],
            &params(op, t, step, seq, n, [false; 3]),
            &[
                reserve.buffer(),
                i.w_hh.buffer(),
                b_hh.buffer(),
                h0.buffer(),
                c0.buffer(),
                y.buffer(),
                h_n.buffer(),
                c_n.buffer(),
            ],
            tile_grid(op, n),
        )?);
    }
    Ok(Prepared {
        launches,
        scratch: Vec::new(),
    })
}

/// Prepares backpropagation through time: from the forward inputs `i`, the forward outputs
/// `y` and `reserve`, and the upstream gradients, every gradient in `out`.
pub fn backward_launches(
    op: &Recurrent,
    i: &Inputs<'_, Tensor>,
    y: &Tensor,
    reserve: &Tensor,
    up: Upstream<'_>,
    out: &GradOutputs<'_>,
) -> Result<Prepared> {
    let (seq, n) = check_inputs(op, i)?;
    let shapes = op.output_shapes(&i.x.shape)?;
    check(OP, "y", y, &shapes[0])?;
    check(OP, "reserve", reserve, &shapes[1])?;
    if let Some(dy) = up.dy {
        check(OP, "dy", dy, &shapes[0])?;
    }
    if let Some(d) = up.dh_n {
        check(OP, "dh_n", d, &shapes[2])?;
    }
    match (up.dc_n, shapes.get(3)) {
        (Some(d), Some(s)) => check(OP, "dc_n", d, s)?,
        (Some(_), None) => return missing("a cell state for dc_n (only an LSTM has one)"),
        _ => {}
    }
    check(OP, "dx", out.dx, &i.x.shape)?;
    check(OP, "dw_ih", out.dw_ih, &op.weight_ih_shape()?)?;
    check(OP, "dw_hh", out.dw_hh, &op.weight_hh_shape()?)?;
    let dev = &i.x.device;
    let h = op.hidden_size;
    let gh = op.gate_rows()?;
    let tn = seq * n;
    let lstm = op.cell.has_cell_state();
    // The backward's scratch follows the activations' storage, except the running dh/dc
    // (`carry`), which accumulates over every step and stays f32.
    let act = i.x.dtype();
    let prev = Tensor::zeros(dev, &[1 + usize::from(lstm), seq, n, h], act)?;
    let carry = Tensor::zeros(dev, &[2, n, h], DType::F32)?;
    let dg_x = Tensor::zeros(dev, &[tn, gh], act)?;
    let dg_h = if op.cell == Cell::Gru {
        Tensor::zeros(dev, &[tn, gh], act)?
    } else {
        dg_x.clone()
    };
    let flags = [up.dy.is_some(), up.dh_n.is_some(), up.dc_n.is_some()];
    let unread = i.w_hh;
    let mut launches = Vec::with_capacity(seq + 8);
    launches.push(dev.launch(
        &PREP,
        "backward_prep",
        &[],
        &params(op, 0, 0, seq, n, flags),
        &[
            reserve.buffer(),
            y.buffer(),
            i.h0.unwrap_or(unread).buffer(),
            i.c0.unwrap_or(unread).buffer(),
            up.dh_n.unwrap_or(unread).buffer(),
            up.dc_n.unwrap_or(unread).buffer(),
            prev.buffer(),
            carry.buffer(),
        ],
        grid_1d(tn * h, 256),
    )?);
    for step in (0..seq).rev() {
        let t = position(op, step, seq);
        launches.push(dev.launch(
            &BACKWARD,
            "step_backward",
            &[],
            &params(op, t, step, seq, n, flags),
            &[
                reserve.buffer(),
                i.w_hh.buffer(),
                prev.buffer(),
                up.dy.unwrap_or(unread).buffer(),
                dg_x.buffer(),
                dg_h.buffer(),
                carry.buffer(),
            ],
            tile_grid(op, n),
        )?);
    }
    if let Some(dh0) = out.dh0 {
        check(OP, "dh0", dh0, &shapes[2])?;
        let dc0 = match (out.dc0, lstm) {
            (Some(d), true) => {
                check(OP, "dc0", d, &shapes[2])?;
                d
            }
            (None, false) => dh0,
            _ => return missing("dc0 (exactly for an LSTM)"),
        };
        let first = position(op, 0, seq);
        launches.push(dev.launch(
            &FINAL,
            "backward_final",
            &[],
            &params(op, first, 0, seq, n, flags),
            &[
                i.w_hh.buffer(),
                dg_h.buffer(),
                carry.buffer(),
                dh0.buffer(),
                dc0.buffer(),
            ],
            tile_grid(op, n),
        )?);
    }
    // dx (T·N, I) = dG_x · W_ih;  dW_ih (G·H, I) = dG_xᵀ · x;  dW_hh (G·H, H) = dG_hᵀ · h_prev.
    launches.push(gemm_launch(
        &Gemm::plain(tn, op.input_size, gh, false, false, false),
        &dg_x,
        i.w_ih,
        out.dx,
    )?);
    launches.push(gemm_launch(
        &Gemm::plain(gh, op.input_size, tn, true, false, false),
        &dg_x,
        i.x,
        out.dw_ih,
    )?);
    let h_prev = matrix(&prev, tn, h)?;
    launches.push(gemm_launch(
        &Gemm::plain(gh, h, tn, true, false, false),
        &dg_h,
        &h_prev,
        out.dw_hh,
    )?);
    let mut extra_scratch = Vec::new();
    match (out.db_ih, out.db_hh, op.bias) {
        (Some(db_ih), Some(db_hh), true) => {
            check(OP, "db_ih", db_ih, &[gh])?;
            check(OP, "db_hh", db_hh, &[gh])?;
            for (g, db) in [(&dg_x, db_ih), (&dg_h, db_hh)] {
                let p = bias_grad_launches(g, db)?;
                launches.extend(p.launches);
                extra_scratch.extend(p.scratch);
            }
        }
        (None, None, false) => {}
        _ => return missing("db_ih and db_hh (exactly when the layer has biases)"),
    }
    let mut scratch = vec![prev, carry, dg_x];
    scratch.extend(extra_scratch);
    if op.cell == Cell::Gru {
        scratch.push(dg_h);
    }
    Ok(Prepared { launches, scratch })
}

/// Runs the forward pass at once: `[y, reserve, h_n, c_n?]`.
pub fn forward(op: &Recurrent, ins: &[&Tensor]) -> Result<Vec<Tensor>> {
    let x = ins
        .first()
        .ok_or_else(|| Error::Invalid(format!("{OP}: no inputs")))?;
    eager::run(&x.device, RecurrentOp::Forward(*op), ins)
}
