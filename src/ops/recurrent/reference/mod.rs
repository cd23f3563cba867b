//! Reference recurrent layer (one layer, one direction): forward and backward through time of the
//! RNN, LSTM and GRU cells exactly as the family doc ([`super`]) states them, in f64, one step,
//! one sequence and one hidden unit at a time. It is the oracle of the GPU kernels: its reserve
//! has the layout they write, though its backward recomputes the forward instead of reading one.

use crate::error::{Result, shape_err};
use crate::neuron::sigmoid;
use crate::ops::conv::reference::check_shape;
use crate::ops::recurrent::{Cell, Recurrent};
use crate::reference::Array;

const OP: &str = "recurrent";

/// What the forward pass gives.
#[derive(Clone, Debug, PartialEq)]
pub struct Forward {
    /// Every step's hidden state `(T, N, H)`, in time order whatever the direction.
    pub y: Array,
    /// The flat reserve: `op.reserve_len(T, N)` elements, laid out as the family doc says.
    pub reserve: Array,
    /// The hidden state after the last step processed `(N, H)` (time 0 for a reversed layer).
    pub h_n: Array,
    /// The cell state after the last step processed `(N, H)`, for an LSTM.
    pub c_n: Option<Array>,
}

/// Gradients of every forward input.
#[derive(Clone, Debug, PartialEq)]
pub struct Grads {
    /// Gradient of x `(T, N, I)`.
    pub dx: Array,
    /// Gradient of `W_ih` `(G·H, I)`.
    pub dw_ih: Array,
    /// Gradient of `W_hh` `(G·H, H)`.
    pub dw_hh: Array,
    /// Gradient of `b_ih` `(G·H,)`, exactly when the layer has biases.
    pub db_ih: Option<Array>,
    /// Gradient of `b_hh` `(G·H,)`, exactly when the layer has biases.
    pub db_hh: Option<Array>,
    /// Gradient of h0 `(N, H)`, exactly when the layer takes an initial state.
    pub dh0: Option<Array>,
    /// Gradient of c0 `(N, H)`, exactly when an LSTM layer takes an initial state.
    pub dc0: Option<Array>,
}

/// `a` must be given exactly when the op's `flag` is on, then with `shape`.
fn check_optional(
    what: &str,
    a: Option<&Array>,
    flag: (&str, bool),
    shape: &[usize],
) -> Result<()> {
    match (flag.1, a) {
        (true, Some(a)) => check_shape(OP, what, &a.shape, shape),
        (false, None) => Ok(()),
        (true, None) => shape_err(
            OP,
            format!("{what} {shape:?} is missing ({} is on)", flag.0),
        ),
        (false, Some(a)) => shape_err(
            OP,
            format!("{what} {:?} was given but {} is off", a.shape, flag.0),
        ),
    }
}

/// A cell state (or its gradient) given to a layer without one.
fn no_cell_state<T>(op: &Recurrent, what: &str, a: &Array) -> Result<T> {
    shape_err(
        OP,
        format!(
            "{what} {:?} was given but a {} layer has no cell state",
            a.shape,
            op.cell.name()
        ),
    )
}

/// `(T, N)` after checking every forward input against the op.
#[allow(clippy::too_many_arguments)]
fn check_inputs(
    op: &Recurrent,
    x: &Array,
    w_ih: &Array,
    w_hh: &Array,
    b_ih: Option<&Array>,
    b_hh: Option<&Array>,
    h0: Option<&Array>,
    c0: Option<&Array>,
) -> Result<(usize, usize)> {
    let (t, n) = op.sequence(&x.shape)?;
    // Bounds T·N·G·H, so no size below overflows.
    op.reserve_len(t, n)?;
    check_shape(OP, "w_ih", &w_ih.shape, &op.weight_ih_shape()?)?;
    check_shape(OP, "w_hh", &w_hh.shape, &op.weight_hh_shape()?)?;
    let rows = [op.gate_rows()?];
    let bias = ("bias", op.bias);
    check_optional("b_ih", b_ih, bias, &rows)?;
    check_optional("b_hh", b_hh, bias, &rows)?;
    let state = [n, op.hidden_size];
    let initial = ("initial_state", op.initial_state);
    check_optional("h0", h0, initial, &state)?;
    match c0 {
        Some(c0) if !op.cell.has_cell_state() => no_cell_state(op, "c0", c0)?,
        _ if op.cell.has_cell_state() => check_optional("c0", c0, initial, &state)?,
        _ => {}
    }
    Ok((t, n))
}

/// `v·Wᵀ + b` for the `n` rows of `v`: `(n, R)` for `w` `(R, K)`.
fn affine(v: &[f64], n: usize, w: &Array, b: Option<&Array>) -> Vec<f64> {
    let (r, k) = (w.shape[0], w.shape[1]);
    let mut out = vec![0.0; n * r];
    for row in 0..n {
        for o in 0..r {
            let dot: f64 = (0..k).map(|i| v[row * k + i] * w.data[o * k + i]).sum();
            out[row * r + o] = dot + b.map_or(0.0, |b| b.data[o]);
        }
    }
    out
}

/// One processed step, as backward needs it.
struct Step {
    /// Time position.
    t: usize,
    /// The state the step starts from: `h_{t-1}` and (LSTM) `c_{t-1}`, `(N, H)`.
    h_prev: Vec<f64>,
    c_prev: Vec<f64>,
    /// The reserve's two sections at t: `(N, G·H)` and `(N, E·H)`; the LSTM's `c_t` is `extra`.
    gates: Vec<f64>,
    extra: Vec<f64>,
    /// `h_t`, `(N, H)`.
    h: Vec<f64>,
}

/// Time positions in processing order.
fn order(op: &Recurrent, t: usize) -> Vec<usize> {
    if op.reverse {
        (0..t).rev().collect()
    } else {
        (0..t).collect()
    }
}

/// The forward pass, checked: `(T, N)` and every step in processing order.
#[allow(clippy::too_many_arguments)]
fn run(
    op: &Recurrent,
    x: &Array,
    w_ih: &Array,
    w_hh: &Array,
    b_ih: Option<&Array>,
    b_hh: Option<&Array>,
    h0: Option<&Array>,
    c0: Option<&Array>,
) -> Result<(usize, usize, Vec<Step>)> {
    let (t_len, n) = check_inputs(op, x, w_ih, w_hh, b_ih, b_hh, h0, c0)?;
    let (isz, hs, g) = (op.input_size, op.hidden_size, op.cell.gates());
    let lstm = op.cell.has_cell_state();
    let state = |a: Option<&Array>| a.map_or_else(|| vec![0.0; n * hs], |a| a.data.clone());
    let mut h = state(h0);
    let mut c = if lstm { state(c0) } else { Vec::new() };
    let mut steps = Vec::with_capacity(t_len);
    for t in order(op, t_len) {
        let gi = affine(&x.data[t * n * isz..][..n * isz], n, w_ih, b_ih);
        let gh = affine(&h, n, w_hh, b_hh);
        let mut gates = vec![0.0; n * g * hs];
        let mut extra = vec![0.0; n * op.cell.extra() * hs];
        let mut h_new = vec![0.0; n * hs];
        for b in 0..n {
            for j in 0..hs {
                // Gate k of unit j in a (N, G·H) row; s is unit j in a (N, H) one.
                let at = |k: usize| (b * g + k) * hs + j;
                let s = b * hs + j;
                match op.cell {
                    Cell::Rnn(act) => {
                        let a = gi[at(0)] + gh[at(0)];
                        gates[at(0)] = a;
                        h_new[s] = act.f(a);
                    }
                    Cell::Lstm => {
                        let pre = |k: usize| gi[at(k)] + gh[at(k)];
                        let (i, f, gg, o) = (
                            sigmoid(pre(0)),
                            sigmoid(pre(1)),
                            pre(2).tanh(),
                            sigmoid(pre(3)),
                        );
                        for (k, v) in [i, f, gg, o].into_iter().enumerate() {
                            gates[at(k)] = v;
                        }
                        extra[s] = f * c[s] + i * gg;
                        h_new[s] = o * extra[s].tanh();
                    }
                    Cell::Gru => {
                        let r = sigmoid(gi[at(0)] + gh[at(0)]);
                        let z = sigmoid(gi[at(1)] + gh[at(1)]);
                        // b_hn inside the reset product, as in PyTorch and cuDNN.
                        let nn = (gi[at(2)] + r * gh[at(2)]).tanh();
                        for (k, v) in [r, z, nn].into_iter().enumerate() {
                            gates[at(k)] = v;
                        }
                        extra[s] = gh[at(2)];
                        h_new[s] = (1.0 - z) * nn + z * h[s];
                    }
                }
            }
        }
        let c_new = if lstm { extra.clone() } else { Vec::new() };
        steps.push(Step {
            t,
            h_prev: std::mem::replace(&mut h, h_new.clone()),
            c_prev: std::mem::replace(&mut c, c_new),
            gates,
            extra,
            h: h_new,
        });
    }
    Ok((t_len, n, steps))
}

/// Runs the layer over the whole sequence. Inputs as the family doc lists them: x `(T, N, I)`,
/// the weights, the biases exactly when `op.bias`, h0 (and c0 for an LSTM) exactly when
/// `op.initial_state` (zeros otherwise); a wrong shape or a missing or extra input is an `Err`.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    op: &Recurrent,
    x: &Array,
    w_ih: &Array,
    w_hh: &Array,
    b_ih: Option<&Array>,
    b_hh: Option<&Array>,
    h0: Option<&Array>,
    c0: Option<&Array>,
) -> Result<Forward> {
    let (t_len, n, steps) = run(op, x, w_ih, w_hh, b_ih, b_hh, h0, c0)?;
    let hs = op.hidden_size;
    let (rows, e) = (op.gate_rows()?, op.cell.extra() * hs);
    let len = op.reserve_len(t_len, n)?;
    let mut y = Array::zeros(&[t_len, n, hs]);
    let mut reserve = Array::zeros(&[len]);
    let (first, second) = reserve.data.split_at_mut(t_len * n * rows);
    for s in &steps {
        y.data[s.t * n * hs..][..n * hs].copy_from_slice(&s.h);
        first[s.t * n * rows..][..n * rows].copy_from_slice(&s.gates);
        second[s.t * n * e..][..n * e].copy_from_slice(&s.extra);
    }
    let last = steps.last().expect("op.sequence rejects T = 0");
    Ok(Forward {
        y,
        reserve,
        h_n: Array::new(&[n, hs], last.h.clone()),
        c_n: op
            .cell
            .has_cell_state()
            .then(|| Array::new(&[n, hs], last.extra.clone())),
    })
}

/// Backward through time of `sum(y·dy) + sum(h_n·dh_n) + sum(c_n·dc_n)`: a missing upstream
/// gradient is zero. Recomputes the forward in f64 (it does not read a reserve). Inputs are
/// checked as [`forward`] checks them; dy is `(T, N, H)`, dh_n and dc_n `(N, H)`, and dc_n given
/// to a layer without a cell state is an `Err`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    op: &Recurrent,
    x: &Array,
    w_ih: &Array,
    w_hh: &Array,
    b_ih: Option<&Array>,
    b_hh: Option<&Array>,
    h0: Option<&Array>,
    c0: Option<&Array>,
    dy: Option<&Array>,
    dh_n: Option<&Array>,
    dc_n: Option<&Array>,
) -> Result<Grads> {
    let (t_len, n, steps) = run(op, x, w_ih, w_hh, b_ih, b_hh, h0, c0)?;
    let (isz, hs, g) = (op.input_size, op.hidden_size, op.cell.gates());
    let rows = op.gate_rows()?;
    let lstm = op.cell.has_cell_state();
    let state = [n, hs];
    if let Some(dy) = dy {
        check_shape(OP, "dy", &dy.shape, &[t_len, n, hs])?;
    }
    if let Some(dh_n) = dh_n {
        check_shape(OP, "dh_n", &dh_n.shape, &state)?;
    }
    match dc_n {
        Some(dc_n) if !lstm => no_cell_state(op, "dc_n", dc_n)?,
        Some(dc_n) => check_shape(OP, "dc_n", &dc_n.shape, &state)?,
        None => {}
    }

    let mut dx = Array::zeros(&x.shape);
    let mut dw_ih = Array::zeros(&w_ih.shape);
    let mut dw_hh = Array::zeros(&w_hh.shape);
    let mut db_ih = vec![0.0; rows];
    let mut db_hh = vec![0.0; rows];
    let zeros = |a: Option<&Array>| a.map_or_else(|| vec![0.0; n * hs], |a| a.data.clone());
    // The gradient reaching the state after the step being undone.
    let mut dh = zeros(dh_n);
    let mut dc = if lstm { zeros(dc_n) } else { Vec::new() };
    for s in steps.iter().rev() {
        if let Some(dy) = dy {
            for (d, v) in dh.iter_mut().zip(&dy.data[s.t * n * hs..][..n * hs]) {
                *d += v;
            }
        }
        // Gradients of the pre-activations `x_t·W_ihᵀ + b_ih` and `h_{t-1}·W_hhᵀ + b_hh`: the
        // same but for the GRU's n gate, where the second is scaled by r.
        let mut dgi = vec![0.0; n * rows];
        let mut dgh = vec![0.0; n * rows];
        let mut dh_prev = vec![0.0; n * hs];
        let mut dc_prev = vec![0.0; dc.len()];
        for b in 0..n {
            for j in 0..hs {
                let at = |k: usize| (b * g + k) * hs + j;
                let u = b * hs + j;
                let d = dh[u];
                match op.cell {
                    Cell::Rnn(act) => {
                        let da = d * act.df(s.gates[at(0)]);
                        dgi[at(0)] = da;
                        dgh[at(0)] = da;
                    }
                    Cell::Lstm => {
                        let [i, f, gg, o] = [0, 1, 2, 3].map(|k| s.gates[at(k)]);
                        let tc = s.extra[u].tanh();
                        let dct = dc[u] + d * o * (1.0 - tc * tc);
                        let da = [
                            dct * gg * i * (1.0 - i),
                            dct * s.c_prev[u] * f * (1.0 - f),
                            dct * i * (1.0 - gg * gg),
                            d * tc * o * (1.0 - o),
                        ];
                        for (k, v) in da.into_iter().enumerate() {
                            dgi[at(k)] = v;
                            dgh[at(k)] = v;
                        }
                        dc_prev[u] = dct * f;
                    }
                    Cell::Gru => {
                        let [r, z, nn] = [0, 1, 2].map(|k| s.gates[at(k)]);
                        let dan = d * (1.0 - z) * (1.0 - nn * nn);
                        let daz = d * (s.h_prev[u] - nn) * z * (1.0 - z);
                        let dar = dan * s.extra[u] * r * (1.0 - r);
                        dgi[at(0)] = dar;
                        dgh[at(0)] = dar;
                        dgi[at(1)] = daz;
                        dgh[at(1)] = daz;
                        dgi[at(2)] = dan;
                        dgh[at(2)] = dan * r;
                        dh_prev[u] = d * z;
                    }
                }
            }
        }
        for b in 0..n {
            let xb = (s.t * n + b) * isz;
            for row in 0..rows {
                let (di, dhh) = (dgi[b * rows + row], dgh[b * rows + row]);
                for i in 0..isz {
                    dx.data[xb + i] += di * w_ih.data[row * isz + i];
                    dw_ih.data[row * isz + i] += di * x.data[xb + i];
                }
                for m in 0..hs {
                    dh_prev[b * hs + m] += dhh * w_hh.data[row * hs + m];
                    dw_hh.data[row * hs + m] += dhh * s.h_prev[b * hs + m];
                }
                db_ih[row] += di;
                db_hh[row] += dhh;
            }
        }
        dh = dh_prev;
        dc = dc_prev;
    }
    let initial = op.initial_state;
    Ok(Grads {
        dx,
        dw_ih,
        dw_hh,
        db_ih: op.bias.then(|| Array::new(&[rows], db_ih)),
        db_hh: op.bias.then(|| Array::new(&[rows], db_hh)),
        dh0: initial.then(|| Array::new(&state, dh)),
        dc0: (initial && lstm).then(|| Array::new(&state, dc)),
    })
}

#[cfg(test)]
mod tests;
