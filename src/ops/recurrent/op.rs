//! Recurrent layers as graph ops: one layer in one direction per node (`RecurrentOp::Forward`),
//! its backpropagation through time as one gradient node (`RecurrentOp::Backward`), and the
//! builders that stack layers and pair directions with PyTorch's parameter names.

use crate::error::{Error, Result};
use crate::graph::{Graph, Out, Primitive, Value};
use crate::launch::Prepared;
use crate::neuron::UnaryOp;
use crate::ops::checks::same;
use crate::ops::elementwise::BinaryOp;
use crate::ops::shape::Concat;
use crate::reference::Array;
use crate::tensor::{DType, Tensor};

use super::gpu::{self, GradOutputs, Upstream};
use super::{Cell, OP, Recurrent, reference};

/// The recurrent family's graph ops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RecurrentOp {
    /// `[x, w_ih, w_hh, b_ih?, b_hh?, h0?, c0?] -> [y, reserve, h_n, c_n?]` (see the module doc).
    Forward(Recurrent),
    /// `[forward inputs.., y, reserve, dy?, dh_n?, dc_n?] -> [dx, dw_ih, dw_hh, db_ih?, db_hh?,
    /// dh0?, dc0?]`: backpropagation through time, given the gradients that reach the outputs.
    Backward {
        /// The forward layer.
        op: Recurrent,
        /// Whether dy (the gradient of y) is an input.
        dy: bool,
        /// Whether dh_n is an input.
        dh_n: bool,
        /// Whether dc_n is an input (LSTM).
        dc_n: bool,
    },
}

/// Output ports of the forward op.
const Y: usize = 0;
const RESERVE: usize = 1;
const H_N: usize = 2;
const C_N: usize = 3;

impl RecurrentOp {
    fn layer(&self) -> &Recurrent {
        match self {
            RecurrentOp::Forward(op) | RecurrentOp::Backward { op, .. } => op,
        }
    }

    /// The gradient outputs' shapes, given the forward input shapes.
    fn grad_shapes(op: &Recurrent, ins: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        let mut s = vec![
            ins[0].to_vec(),
            op.weight_ih_shape()?,
            op.weight_hh_shape()?,
        ];
        if op.bias {
            s.push(vec![op.gate_rows()?]);
            s.push(vec![op.gate_rows()?]);
        }
        if op.initial_state {
            let (_, n) = op.sequence(ins[0])?;
            s.push(vec![n, op.hidden_size]);
            if op.cell.has_cell_state() {
                s.push(vec![n, op.hidden_size]);
            }
        }
        Ok(s)
    }
}

/// Checks the forward inputs' shapes; returns the forward output shapes.
fn check_forward(op: &Recurrent, ins: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
    op.check_inputs(&op.split(ins)?.0)
}

fn f32s(shapes: Vec<Vec<usize>>) -> Vec<Out> {
    shapes.into_iter().map(|s| (s, DType::F32)).collect()
}

impl Primitive for RecurrentOp {
    fn supports_f16(&self) -> bool {
        true
    }

    fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        let op = self.layer();
        let count = op.input_count();
        match *self {
            RecurrentOp::Forward(_) => {
                if ins.len() != count {
                    return Err(Error::Shape {
                        op: OP.into(),
                        msg: format!("takes {count} inputs, got {}", ins.len()),
                    });
                }
                Ok(f32s(check_forward(op, ins)?))
            }
            RecurrentOp::Backward { dy, dh_n, dc_n, .. } => {
                let extra = 2 + usize::from(dy) + usize::from(dh_n) + usize::from(dc_n);
                if ins.len() != count + extra {
                    return Err(Error::Shape {
                        op: OP.into(),
                        msg: format!("backward takes {} inputs, got {}", count + extra, ins.len()),
                    });
                }
                let outs = check_forward(op, &ins[..count])?;
                let rest = &ins[count..];
                same(OP, "y", rest[0], &outs[Y])?;
                same(OP, "reserve", rest[1], &outs[RESERVE])?;
                let mut k = 2;
                for (present, what, port) in
                    [(dy, "dy", Y), (dh_n, "dh_n", H_N), (dc_n, "dc_n", C_N)]
                {
                    if present {
                        let want = outs.get(port).ok_or_else(|| Error::Shape {
                            op: OP.into(),
                            msg: format!(
                                "{what} given, but a {} has no such output",
                                op.cell.name()
                            ),
                        })?;
                        same(OP, what, rest[k], want)?;
                        k += 1;
                    }
                }
                Ok(f32s(Self::grad_shapes(op, ins)?))
            }
        }
    }

    fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        _fused: &[UnaryOp],
        _step: u64,
    ) -> Result<Prepared> {
        let op = self.layer();
        let (i, rest) = op.split(ins)?;
        match *self {
            RecurrentOp::Forward(_) => gpu::forward_launches(
                op,
                &i,
                outs[Y],
                outs[RESERVE],
                outs[H_N],
                outs.get(C_N).copied(),
            ),
            RecurrentOp::Backward { dy, dh_n, dc_n, .. } => {
                let mut up = rest[2..].iter().copied();
                let mut take = |present: bool| if present { up.next() } else { None };
                let upstream = Upstream {
                    dy: take(dy),
                    dh_n: take(dh_n),
                    dc_n: take(dc_n),
                };
                let mut o = outs[3..].iter().copied();
                let (db_ih, db_hh) = if op.bias {
                    (o.next(), o.next())
                } else {
                    (None, None)
                };
                let dh0 = if op.initial_state { o.next() } else { None };
                let grads = GradOutputs {
                    dx: outs[0],
                    dw_ih: outs[1],
                    dw_hh: outs[2],
                    db_ih,
                    db_hh,
                    dh0,
                    dc0: o.next(),
                };
                gpu::backward_launches(op, &i, rest[0], rest[1], upstream, &grads)
            }
        }
    }

    fn reference(&self, ins: &[&Array], _outs: &[Out], _step: u64) -> Result<Vec<Array>> {
        let op = self.layer();
        let (i, rest) = op.split(ins)?;
        match *self {
            RecurrentOp::Forward(_) => {
                let f = reference::forward(op, i.x, i.w_ih, i.w_hh, i.b_ih, i.b_hh, i.h0, i.c0)?;
                let mut v = vec![f.y, f.reserve, f.h_n];
                v.extend(f.c_n);
                Ok(v)
            }
            RecurrentOp::Backward { dy, dh_n, dc_n, .. } => {
                let mut up = rest[2..].iter().copied();
                let mut take = |present: bool| if present { up.next() } else { None };
                let (dy, dh_n, dc_n) = (take(dy), take(dh_n), take(dc_n));
                let g = reference::backward(
                    op, i.x, i.w_ih, i.w_hh, i.b_ih, i.b_hh, i.h0, i.c0, dy, dh_n, dc_n,
                )?;
                let mut v = vec![g.dx, g.dw_ih, g.dw_hh];
                v.extend(g.db_ih);
                v.extend(g.db_hh);
                v.extend(g.dh0);
                v.extend(g.dc0);
                Ok(v)
            }
        }
    }

    fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        self.vjp_ports(g, node, &[Some(dy)])
    }

    fn vjp_ports(
        &self,
        g: &mut Graph,
        node: usize,
        dys: &[Option<Value>],
    ) -> Result<Vec<Option<Value>>> {
        let RecurrentOp::Forward(op) = *self else {
            return Err(g.no_second_derivative(node));
        };
        let mut ins = g.forward_inputs(node, 1)?;
        let at = |p: usize| dys.get(p).copied().flatten();
        if at(RESERVE).is_some() {
            return Err(Error::Invalid(format!(
                "node {:?}: the reserve (output 1) is not differentiable",
                g.nodes[node].name
            )));
        }
        let (dy, dh_n, dc_n) = (at(Y), at(H_N), at(C_N));
        ins.push(Value { node, port: Y });
        ins.push(Value {
            node,
            port: RESERVE,
        });
        ins.extend([dy, dh_n, dc_n].into_iter().flatten());
        let back = RecurrentOp::Backward {
            op,
            dy: dy.is_some(),
            dh_n: dh_n.is_some(),
            dc_n: dc_n.is_some(),
        };
        let d = g.add_grad(node, "", back, &ins)?;
        let outs = g.nodes[d.node].outputs.len();
        Ok((0..outs)
            .map(|port| Some(Value { node: d.node, port }))
            .collect())
    }
}

/// How outputs of the two directions of a bidirectional layer are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// `(T, N, 2H)`: forward then backward direction, as PyTorch.
    Concat,
    /// `(T, N, H)`: their sum.
    Sum,
}

/// The most layers one stack builds: each adds nodes, so a count near usize::MAX would loop
/// (and allocate) practically forever instead of failing.
pub const MAX_LAYERS: usize = 1 << 16;

/// A stack of recurrent layers, as PyTorch's `nn.LSTM(input, hidden, num_layers, bias,
/// bidirectional=...)`; the input size is taken from the graph.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecurrentLayers {
    /// Hidden units per layer and direction (H).
    pub hidden_size: usize,
    /// Layers stacked (each reads the previous one's y).
    pub num_layers: usize,
    /// Whether every layer learns `b_ih` and `b_hh`.
    pub bias: bool,
    /// A second, reversed direction per layer and how the two are merged.
    pub bidirectional: Option<Merge>,
    /// Whether the initial states are inputs (`<name>.h0_l0` … of shape (N, H), for carrying
    /// state between batches with a [`CarriedState`]); zeros otherwise.
    pub initial_state: bool,
}

impl RecurrentLayers {
    /// One forward layer of `hidden_size` units with biases and zero initial state.
    pub fn new(hidden_size: usize) -> RecurrentLayers {
        RecurrentLayers {
            hidden_size,
            num_layers: 1,
            bias: true,
            bidirectional: None,
            initial_state: false,
        }
    }

    /// `num_layers` stacked layers.
    pub fn layers(self, num_layers: usize) -> RecurrentLayers {
        RecurrentLayers { num_layers, ..self }
    }

    /// A reversed direction beside each layer, merged by `merge`.
    pub fn bidirectional(self, merge: Merge) -> RecurrentLayers {
        RecurrentLayers {
            bidirectional: Some(merge),
            ..self
        }
    }

    /// Initial states as inputs (and final states carried by a [`CarriedState`]).
    pub fn with_initial_state(self) -> RecurrentLayers {
        RecurrentLayers {
            initial_state: true,
            ..self
        }
    }

    /// Without biases.
    pub fn without_bias(self) -> RecurrentLayers {
        RecurrentLayers {
            bias: false,
            ..self
        }
    }
}

/// What a stack of recurrent layers gives.
#[derive(Clone, Debug)]
pub struct RecurrentOutputs {
    /// The top layer's output `(T, N, D·H)` (or `(T, N, H)` with [`Merge::Sum`]).
    pub y: Value,
    /// Final hidden state `(N, H)` of each layer and direction, in PyTorch's order (l0,
    /// l0_reverse, l1, ...).
    pub h_n: Vec<Value>,
    /// Final cell states (LSTM), in the same order; empty otherwise.
    pub c_n: Vec<Value>,
    /// The top layer's final hidden state `(N, D·H)` (directions concatenated): what a
    /// sequence classifier reads.
    pub last_hidden: Value,
    /// The initial-state inputs and the final states that feed them next batch.
    pub state: CarriedState,
}

/// The recurrent state carried from one batch to the next (truncated backpropagation through
/// time): after each step the final states are copied on the GPU into the initial-state inputs,
/// so the next batch continues the sequences; no gradient crosses the boundary (the inputs are
/// fed, not computed). `Compiled::carry` installs it; `Compiled::reset_state` zeroes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CarriedState {
    /// `(final state, initial-state input)` pairs.
    pub pairs: Vec<(Value, Value)>,
}

impl Graph {
    /// A stack of LSTM layers over the sequence `x (T, N, I)`.
    pub fn lstm(
        &mut self,
        name: &str,
        x: Value,
        layers: RecurrentLayers,
    ) -> Result<RecurrentOutputs> {
        self.recurrent(name, Cell::Lstm, x, layers)
    }

    /// A stack of GRU layers over the sequence `x (T, N, I)`.
    pub fn gru(
        &mut self,
        name: &str,
        x: Value,
        layers: RecurrentLayers,
    ) -> Result<RecurrentOutputs> {
        self.recurrent(name, Cell::Gru, x, layers)
    }

    /// A stack of single-gate RNN layers with neuron `act` over the sequence `x (T, N, I)`.
    pub fn rnn(
        &mut self,
        name: &str,
        act: UnaryOp,
        x: Value,
        layers: RecurrentLayers,
    ) -> Result<RecurrentOutputs> {
        self.recurrent(name, Cell::Rnn(act), x, layers)
    }

    /// A stack of recurrent layers of `cell`. Parameters are `<name>.weight_ih_l{k}`,
    /// `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}` (and `_reverse`), as in a PyTorch state
    /// dict; layer nodes are `<name>/l{k}` and `<name>/l{k}_reverse`. On an `Err` the graph is
    /// left as it was.
    pub fn recurrent(
        &mut self,
        name: &str,
        cell: Cell,
        x: Value,
        layers: RecurrentLayers,
    ) -> Result<RecurrentOutputs> {
        self.atomic(|g| g.recurrent_stack(name, cell, x, layers))
    }

    fn recurrent_stack(
        &mut self,
        name: &str,
        cell: Cell,
        x: Value,
        layers: RecurrentLayers,
    ) -> Result<RecurrentOutputs> {
        let err = |msg: String| Error::Shape {
            op: format!("node {name:?}"),
            msg,
        };
        if layers.num_layers == 0 || layers.num_layers > MAX_LAYERS {
            return Err(err(format!(
                "num_layers {} must be in 1..={MAX_LAYERS}",
                layers.num_layers
            )));
        }
        let shape = self.shape(x)?.to_vec();
        let &[_, n, input] = shape.as_slice() else {
            return Err(err(format!("input {shape:?} must be a sequence (T, N, I)")));
        };
        let h = layers.hidden_size;
        let suffixes: &[&str] = if layers.bidirectional.is_some() {
            &["", "_reverse"]
        } else {
            &[""]
        };
        let mut out = RecurrentOutputs {
            y: x,
            h_n: vec![],
            c_n: vec![],
            last_hidden: x,
            state: CarriedState::default(),
        };
        let mut input_size = input;
        for l in 0..layers.num_layers {
            let mut ys = vec![];
            let mut finals = vec![];
            for (d, sfx) in suffixes.iter().enumerate() {
                let op = Recurrent {
                    cell,
                    input_size,
                    hidden_size: h,
                    bias: layers.bias,
                    reverse: d == 1,
                    initial_state: layers.initial_state,
                };
                op.validate().map_err(|e| err(e.to_string()))?;
                let p = |what: &str| format!("{name}.{what}_l{l}{sfx}");
                let mut ins = vec![
                    out.y,
                    self.param(&p("weight_ih"), &op.weight_ih_shape()?)?,
                    self.param(&p("weight_hh"), &op.weight_hh_shape()?)?,
                ];
                if op.bias {
                    ins.push(self.param(&p("bias_ih"), &[op.gate_rows()?])?);
                    ins.push(self.param(&p("bias_hh"), &[op.gate_rows()?])?);
                }
                let mut inits = vec![];
                if op.initial_state {
                    inits.push(self.input(&p("h0"), &[n, h])?);
                    if cell.has_cell_state() {
                        inits.push(self.input(&p("c0"), &[n, h])?);
                    }
                    ins.extend(&inits);
                }
                let node =
                    self.add(&format!("{name}/l{l}{sfx}"), RecurrentOp::Forward(op), &ins)?;
                let port = |port| Value {
                    node: node.node,
                    port,
                };
                ys.push(port(Y));
                finals.push(port(H_N));
                out.h_n.push(port(H_N));
                let mut carried = vec![port(H_N)];
                if cell.has_cell_state() {
                    out.c_n.push(port(C_N));
                    carried.push(port(C_N));
                }
                out.state.pairs.extend(carried.into_iter().zip(inits));
            }
            let (y, last) = match layers.bidirectional {
                None => (ys[0], finals[0]),
                Some(merge) => {
                    let cat = |g: &mut Graph, what: &str, vs: &[Value], axis| {
                        g.concat(&format!("{name}/l{l}/{what}"), vs, Concat { axis })
                    };
                    let y = match merge {
                        Merge::Concat => cat(self, "y", &ys, 2)?,
                        Merge::Sum => {
                            self.binary(&format!("{name}/l{l}/y"), BinaryOp::Add, ys[0], ys[1])?
                        }
                    };
                    (y, cat(self, "h_n", &finals, 1)?)
                }
            };
            out.y = y;
            out.last_hidden = last;
            input_size = self.shape(y)?[2];
        }
        Ok(out)
    }

    /// A conv1d image batch `(N, C, W)` as a sequence `(W, N, C)` (MPS's image-to-matrix copy),
    /// with its gradient.
    pub fn image_to_sequence(&mut self, name: &str, x: Value) -> Result<Value> {
        self.permute(name, x, &[2, 0, 1])
    }

    /// A sequence `(T, N, C)` as a conv1d image batch `(N, C, T)`, with its gradient.
    pub fn sequence_to_image(&mut self, name: &str, x: Value) -> Result<Value> {
        self.permute(name, x, &[1, 2, 0])
    }
}
