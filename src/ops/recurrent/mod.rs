//! The recurrent family: single-gate RNN (any neuron), LSTM and GRU layers trained over whole
//! sequences, as PyTorch's `nn.RNN`/`nn.LSTM`/`nn.GRU` (same parameter names, layouts and gate
//! orders, so state dicts load both ways).
//!
//! One graph op is one layer in one direction ([`Recurrent`]); `Graph::lstm` and friends stack
//! layers and pair directions ([`RecurrentLayers`]). Sequences are `(T, N, C)`, time-major.
//!
//! * forward: `[x (T,N,I), w_ih (G·H,I), w_hh (G·H,H), b_ih (G·H)?, b_hh (G·H)?, h0 (N,H)?,
//!   c0 (N,H)?]` → `[y (T,N,H), reserve, h_n (N,H), c_n (N,H) (LSTM only)]`
//! * the reserve keeps what backward needs, in two sections of the flat `(T·N·(G·H + E))` tensor:
//!   first `(T, N, G·H)`, then `(T, N, E)`, indexed by the time position (not processing order):
//!   - RNN (G = 1, E = 0): the pre-activation `a_t = x_t·W_ihᵀ + b_ih + h_{t-1}·W_hhᵀ + b_hh`;
//!   - LSTM (G = 4, E = H): the activated gates `i, f, g, o`, then the cell `c_t`;
//!   - GRU (G = 3, E = H): the activated gates `r, z, n`, then `W_hn·h_{t-1} + b_hn`.
//!
//! Cells (σ the logistic sigmoid; `h_{t-1}` the previous step in processing order, `h0` first):
//! * RNN: `h_t = act(a_t)`
//! * LSTM: `i,f,g,o = σ,σ,tanh,σ(x_t·W_ihᵀ + b_ih + h_{t-1}·W_hhᵀ + b_hh)`;
//!   `c_t = f·c_{t-1} + i·g`; `h_t = o·tanh(c_t)`
//! * GRU: `r,z = σ(x_t·W_i{r,z}ᵀ + b_i{r,z} + h_{t-1}·W_h{r,z}ᵀ + b_h{r,z})`;
//!   `n = tanh(x_t·W_inᵀ + b_in + r·(h_{t-1}·W_hnᵀ + b_hn))`; `h_t = (1 − z)·n + z·h_{t-1}`
//!
//! A reversed layer (`reverse`) processes t = T−1 down to 0; its outputs stay in time order.
//!
//! ```no_run
//! use wgtrain::ops::recurrent::RecurrentLayers;
//! use wgtrain::{Device, FullyConnected, Graph, Options};
//! # fn main() -> wgtrain::Result<()> {
//! let mut g = Graph::new();
//! let x = g.input("x", &[20, 8, 6])?; // (T, N, I), time-major
//! let layers = RecurrentLayers::new(32).layers(2).with_initial_state();
//! let lstm = g.lstm("lstm", x, layers)?; // parameters lstm.weight_ih_l0, ... as in PyTorch
//! let logits = g.dense("fc", lstm.last_hidden, FullyConnected::new(32, 4))?;
//! // Truncated BPTT: the final states are requested as outputs and carried into the
//! // initial-state inputs after every step, on the GPU.
//! let mut outputs = vec![logits];
//! outputs.extend(lstm.state.pairs.iter().map(|&(final_state, _)| final_state));
//! let mut step = g.compile(&Device::new()?, &outputs, &Options::default())?;
//! step.carry(&lstm.state)?;
//! # Ok(()) }
//! ```

pub mod gpu;
mod op;
pub mod reference;
pub(crate) mod samples;

pub use op::{CarriedState, MAX_LAYERS, Merge, RecurrentLayers, RecurrentOp, RecurrentOutputs};

use crate::error::{Result, attr_err, shape_err};
use crate::neuron::UnaryOp;

const OP: &str = "recurrent";

/// The cell a recurrent layer applies at every time step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell {
    /// `h_t = act(x_t·W_ihᵀ + b_ih + h_{t-1}·W_hhᵀ + b_hh)` with any neuron (PyTorch offers
    /// tanh and ReLU).
    Rnn(UnaryOp),
    /// Long short-term memory, gates i, f, g, o.
    Lstm,
    /// Gated recurrent unit, gates r, z, n, with `b_hn` inside the reset product.
    Gru,
}

impl Cell {
    /// Gates per hidden unit (G): rows of the weights are `G·H`.
    pub fn gates(self) -> usize {
        match self {
            Cell::Rnn(_) => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }

    /// Extra reserve values per hidden unit and step (E): the LSTM cell, GRU's `W_hn·h + b_hn`.
    pub fn extra(self) -> usize {
        match self {
            Cell::Rnn(_) => 0,
            Cell::Lstm | Cell::Gru => 1,
        }
    }

    /// Whether the cell carries a cell state besides h (LSTM).
    pub fn has_cell_state(self) -> bool {
        matches!(self, Cell::Lstm)
    }

    /// Short name, used in errors and node names.
    pub fn name(self) -> &'static str {
        match self {
            Cell::Rnn(_) => "rnn",
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
        }
    }
}

/// One recurrent layer in one direction: the graph op's attributes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recurrent {
    /// The cell.
    pub cell: Cell,
    /// Features per step of the input (I).
    pub input_size: usize,
    /// Hidden units (H).
    pub hidden_size: usize,
    /// Whether `b_ih` and `b_hh` are learned and added.
    pub bias: bool,
    /// Processes the sequence from its last step to its first.
    pub reverse: bool,
    /// Whether `h0` (and `c0` for an LSTM) are inputs; zeros otherwise.
    pub initial_state: bool,
}

impl Recurrent {
    /// A forward-direction layer with biases and zero initial state.
    pub fn new(cell: Cell, input_size: usize, hidden_size: usize) -> Recurrent {
        Recurrent {
            cell,
            input_size,
            hidden_size,
            bias: true,
            reverse: false,
            initial_state: false,
        }
    }

    /// `Err(Attr)` for a zero size or an RNN neuron with invalid parameters.
    pub fn validate(&self) -> Result<()> {
        if self.input_size == 0 || self.hidden_size == 0 {
            return attr_err(
                OP,
                format!(
                    "input_size {} and hidden_size {} must be at least 1",
                    self.input_size, self.hidden_size
                ),
            );
        }
        if let Cell::Rnn(act) = self.cell {
            act.validate()?;
        }
        self.gate_rows()?;
        Ok(())
    }

    /// `G·H`, the rows of both weight matrices (checked).
    pub fn gate_rows(&self) -> Result<usize> {
        self.cell
            .gates()
            .checked_mul(self.hidden_size)
            .map_or_else(|| attr_err(OP, "hidden_size overflows"), Ok)
    }

    /// `(G·H, I)`.
    pub fn weight_ih_shape(&self) -> Result<Vec<usize>> {
        Ok(vec![self.gate_rows()?, self.input_size])
    }

    /// `(G·H, H)`.
    pub fn weight_hh_shape(&self) -> Result<Vec<usize>> {
        Ok(vec![self.gate_rows()?, self.hidden_size])
    }

    /// How many inputs the forward op takes: x, the two weights, the biases, the initial states.
    pub fn input_count(&self) -> usize {
        let states = if self.initial_state {
            1 + usize::from(self.cell.has_cell_state())
        } else {
            0
        };
        3 + 2 * usize::from(self.bias) + states
    }

    /// `(T, N)` of a sequence input `(T, N, I)`; `Err` for another rank, an empty sequence or
    /// batch, or the wrong feature count.
    pub fn sequence(&self, x: &[usize]) -> Result<(usize, usize)> {
        self.validate()?;
        match *x {
            [t, n, i] if t > 0 && n > 0 && i == self.input_size => Ok((t, n)),
            [0, _, _] => shape_err(OP, "the sequence is empty (T = 0)"),
            [_, _, i] if i != self.input_size => shape_err(
                OP,
                format!(
                    "input has {i} features per step, the layer expects {}",
                    self.input_size
                ),
            ),
            _ => shape_err(
                OP,
                format!(
                    "input {x:?} must be a non-empty sequence (T, N, {})",
                    self.input_size
                ),
            ),
        }
    }

    /// Elements of the reserve for `T` steps of `N` sequences (checked).
    pub fn reserve_len(&self, t: usize, n: usize) -> Result<usize> {
        let gates = self.gate_rows()?;
        let per =
            (self.cell.extra().checked_mul(self.hidden_size)).and_then(|e| e.checked_add(gates));
        per.and_then(|per| t.checked_mul(n)?.checked_mul(per))
            .map_or_else(|| shape_err(OP, "the reserve size overflows"), Ok)
    }
}

/// The forward op's inputs by name, split from its flat input list (`Recurrent::split`).
pub struct Inputs<'a, T: ?Sized> {
    /// The sequence `(T, N, I)`.
    pub x: &'a T,
    /// `(G·H, I)`.
    pub w_ih: &'a T,
    /// `(G·H, H)`.
    pub w_hh: &'a T,
    /// `(G·H)`, when the layer has biases.
    pub b_ih: Option<&'a T>,
    /// `(G·H)`, when the layer has biases.
    pub b_hh: Option<&'a T>,
    /// `(N, H)`, when the layer takes an initial state.
    pub h0: Option<&'a T>,
    /// `(N, H)`, when an LSTM takes an initial state.
    pub c0: Option<&'a T>,
}

impl<'a, T: ?Sized> Inputs<'a, T> {
    /// The same inputs seen through `f` (e.g. tensors as their shapes).
    pub fn map<U: ?Sized>(&self, f: impl Fn(&'a T) -> &'a U) -> Inputs<'a, U> {
        Inputs {
            x: f(self.x),
            w_ih: f(self.w_ih),
            w_hh: f(self.w_hh),
            b_ih: self.b_ih.map(&f),
            b_hh: self.b_hh.map(&f),
            h0: self.h0.map(&f),
            c0: self.c0.map(&f),
        }
    }
}

impl Recurrent {
    /// The forward inputs by name and what follows them in `ins` (the backward op's extra
    /// inputs); `Err` when `ins` is too short.
    pub fn split<'a, 'b, T: ?Sized>(
        &self,
        ins: &'b [&'a T],
    ) -> Result<(Inputs<'a, T>, &'b [&'a T])> {
        let count = self.input_count();
        if ins.len() < count {
            return shape_err(
                OP,
                format!(
                    "takes {count} inputs (x, weights, biases, initial states), got {}",
                    ins.len()
                ),
            );
        }
        let mut rest = ins[3..count].iter().copied();
        let mut take = |present: bool| if present { rest.next() } else { None };
        let (b_ih, b_hh) = (take(self.bias), take(self.bias));
        let h0 = take(self.initial_state);
        let c0 = take(self.initial_state && self.cell.has_cell_state());
        Ok((
            Inputs {
                x: ins[0],
                w_ih: ins[1],
                w_hh: ins[2],
                b_ih,
                b_hh,
                h0,
                c0,
            },
            &ins[count..],
        ))
    }

    /// Checks the forward inputs: each present exactly when the layer has it, each of its shape;
    /// returns the forward output shapes (the one check of the graph op and the launches).
    pub fn check_inputs(&self, i: &Inputs<'_, [usize]>) -> Result<Vec<Vec<usize>>> {
        let outs = self.output_shapes(i.x)?;
        let rows = vec![self.gate_rows()?];
        let with_cell = self.initial_state && self.cell.has_cell_state();
        // (name, given, whether the layer has it, its shape)
        let expected = [
            ("weight_ih", Some(i.w_ih), true, self.weight_ih_shape()?),
            ("weight_hh", Some(i.w_hh), true, self.weight_hh_shape()?),
            ("bias_ih", i.b_ih, self.bias, rows.clone()),
            ("bias_hh", i.b_hh, self.bias, rows),
            ("h0", i.h0, self.initial_state, outs[2].clone()),
            ("c0", i.c0, with_cell, outs[2].clone()),
        ];
        for (what, given, wanted, shape) in expected {
            match (given, wanted) {
                (Some(g), true) if g != shape.as_slice() => {
                    return shape_err(OP, format!("{what} has shape {g:?}, expected {shape:?}"));
                }
                (Some(_), true) | (None, false) => {}
                (None, true) => {
                    return shape_err(OP, format!("the layer needs {what} but none was given"));
                }
                (Some(g), false) => {
                    return shape_err(OP, format!("{what} {g:?} given to a layer without one"));
                }
            }
        }
        Ok(outs)
    }

    /// The shapes of the forward outputs for an input `(T, N, I)`: `y (T, N, H)`, the flat
    /// reserve, `h_n (N, H)` and, for an LSTM, `c_n (N, H)`.
    pub fn output_shapes(&self, x: &[usize]) -> Result<Vec<Vec<usize>>> {
        let (t, n) = self.sequence(x)?;
        let h = self.hidden_size;
        let mut s = vec![vec![t, n, h], vec![self.reserve_len(t, n)?], vec![n, h]];
        if self.cell.has_cell_state() {
            s.push(vec![n, h]);
        }
        Ok(s)
    }
}
