//! The closed set of graph ops: each variant's shape inference and its lowering to kernel
//! launches. Gradient ops are ops too (created by `autograd`), so the backward pass is planned,
//! aliased and replayed exactly like the forward.

use crate::error::{Error, Result};
use crate::kernels::conv::Prepared;
use crate::kernels::elementwise::{self, BinaryOp, GradFrom, UnaryOp};
use crate::kernels::matmul;
use crate::kernels::reduce::{self, ReduceOp};
use crate::kernels::transpose;
use crate::reference::{Array, basic};
use crate::tensor::{DType, Tensor};

/// One output of an op: its shape and dtype.
pub type Out = (Vec<usize>, DType);

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Fed by the caller every step; dim 0 is the batch.
    Input,
    /// A trainable weight: persistent, initialised by the caller (data sources come later).
    Param,
    Unary(UnaryOp),
    /// `[x, dy] -> dx`
    UnaryGrad(UnaryOp),
    /// `[y, dy] -> dx` from the forward's output `y = op(x)`, for ops whose derivative is a
    /// function of y (`UnaryOp::grad_from`): x is then read by the forward alone and can fuse.
    UnaryGradOut(UnaryOp),
    /// `[a, b] -> a (op) b` with broadcasting.
    Binary(BinaryOp),
    /// `[a, b, dy] -> d(operand)`; operand 0 = a, 1 = b.
    BinaryGrad(BinaryOp, usize),
    /// `[a, b] -> op(a) · op(b)`
    MatMul {
        ta: bool,
        tb: bool,
    },
    /// `[x] -> (y, argmax state for Max)`, axis kept with size 1.
    Reduce(ReduceOp, usize),
    /// `[dy, x (its shape), state?] -> dx`
    ReduceGrad(ReduceOp, usize),
    /// `[x] -> x` permuted.
    Permute(Vec<usize>),
    /// `[x] -> x` as (batch, rest...): `shape` excludes the batch dim, so the batch can change.
    Reshape(Vec<usize>),
    /// `[x] -> x` with exactly this shape (batch-independent shapes, e.g. a weight's).
    View(Vec<usize>),
    /// Persistent values an op updates but nobody trains (batch norm's running statistics).
    State,
    /// Convolutions, fully connected, pooling and their gradients (`layers.rs`).
    Layer(super::layers::Layer),
    /// Norms, dropout, softmax and their gradients (`stateful.rs`).
    Stateful(super::stateful::Stateful),
    /// Losses and shape ops (concat, slice, pad, upsample) and their gradients (`heads.rs`).
    Head(super::heads::Head),
    /// `[x] -> ones of x's shape`: the seed of the backward pass (d sum(loss) / d loss).
    OnesLike,
}

fn shape_err(op: &Op, msg: String) -> Error {
    Error::Shape {
        op: format!("{op:?}"),
        msg,
    }
}

impl Op {
    /// Output shapes and dtypes from the input shapes; the builder adds the node names to errors.
    pub fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        let f32 = |s: Vec<usize>| (s, DType::F32);
        match self {
            Op::Layer(l) => return l.infer(ins),
            Op::Stateful(s) => return s.infer(ins),
            Op::Head(h) => return h.infer(ins),
            _ => {}
        }
        let arity = match self {
            Op::Layer(_) | Op::Stateful(_) | Op::Head(_) => unreachable!(),
            Op::Input | Op::Param | Op::State => 0,
            Op::Unary(_)
            | Op::Reduce(..)
            | Op::Permute(_)
            | Op::Reshape(_)
            | Op::View(_)
            | Op::OnesLike => 1,
            Op::UnaryGrad(_) | Op::UnaryGradOut(_) | Op::Binary(_) | Op::MatMul { .. } => 2,
            Op::BinaryGrad(..) => 3,
            Op::ReduceGrad(op, _) => 2 + (*op == ReduceOp::Max) as usize,
        };
        if ins.len() != arity {
            return Err(shape_err(
                self,
                format!("takes {arity} inputs, got {}", ins.len()),
            ));
        }
        Ok(match self {
            Op::Input | Op::Param | Op::State | Op::Layer(_) | Op::Stateful(_) | Op::Head(_) => {
                unreachable!("sources have no inputs to infer from")
            }
            Op::Unary(_) | Op::OnesLike => vec![f32(ins[0].to_vec())],
            Op::UnaryGradOut(u) if u.grad_from() != GradFrom::Output => {
                return Err(shape_err(
                    self,
                    format!("the derivative of {u:?} is not a function of its output"),
                ));
            }
            Op::UnaryGrad(_) | Op::UnaryGradOut(_) => {
                if ins[0] != ins[1] {
                    return Err(shape_err(
                        self,
                        format!("x {:?} vs dy {:?}", ins[0], ins[1]),
                    ));
                }
                vec![f32(ins[0].to_vec())]
            }
            Op::Binary(b) => vec![f32(elementwise::broadcast_shape(
                &format!("{b:?}"),
                ins[0],
                ins[1],
            )?)],
            Op::BinaryGrad(b, which) => {
                let out = elementwise::broadcast_shape(&format!("{b:?}"), ins[0], ins[1])?;
                if out != ins[2] {
                    return Err(shape_err(
                        self,
                        format!("dy {:?} vs output {out:?}", ins[2]),
                    ));
                }
                vec![f32(ins[*which].to_vec())]
            }
            Op::MatMul { ta, tb } => vec![f32(matmul::plan(ins[0], ins[1], *ta, *tb)?.1)],
            Op::Reduce(r, axis) => {
                reduce::split_axis(&format!("{r:?}"), ins[0], *axis)?;
                let mut s = ins[0].to_vec();
                s[*axis] = 1;
                let mut outs = vec![f32(s.clone())];
                if *r == ReduceOp::Max {
                    outs.push((s, DType::U32));
                }
                outs
            }
            Op::ReduceGrad(_, axis) => {
                let mut s = ins[1].to_vec();
                if *axis < s.len() {
                    s[*axis] = 1;
                }
                if ins[0] != s.as_slice() {
                    return Err(shape_err(
                        self,
                        format!(
                            "dy {:?} vs input {:?} reduced over axis {axis}",
                            ins[0], ins[1]
                        ),
                    ));
                }
                vec![f32(ins[1].to_vec())]
            }
            Op::Permute(p) => {
                transpose::check_perm("permute", ins[0], p)?;
                vec![f32(transpose::permuted_shape(ins[0], p))]
            }
            Op::Reshape(rest) => {
                let (n, have): (usize, usize) = (ins[0][0], ins[0][1..].iter().product());
                if have != rest.iter().product::<usize>() {
                    return Err(shape_err(
                        self,
                        format!("{:?} cannot become (batch, {rest:?})", ins[0]),
                    ));
                }
                let mut s = vec![n];
                s.extend_from_slice(rest);
                vec![f32(s)]
            }
            Op::View(shape) => {
                if ins[0].iter().product::<usize>() != shape.iter().product::<usize>() {
                    return Err(shape_err(
                        self,
                        format!("{:?} cannot become {shape:?}", ins[0]),
                    ));
                }
                vec![f32(shape.clone())]
            }
        })
    }

    /// Whether `lower` writes nothing: the output aliases the input's memory.
    pub fn is_view(&self) -> bool {
        matches!(self, Op::Reshape(_) | Op::View(_))
    }

    /// The launches computing this op from `ins` into `outs`, followed by the fused unary chain
    /// `then` (only elementwise ops take one); `step` seeds per-step ops (dropout).
    pub fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        then: &[UnaryOp],
        step: u64,
    ) -> Result<Prepared> {
        if !then.is_empty()
            && !matches!(
                self,
                Op::Unary(_) | Op::Binary(_) | Op::Stateful(_) | Op::Layer(_)
            )
        {
            return Err(Error::Invalid(format!(
                "{self:?} cannot take a fused chain"
            )));
        }
        match self {
            Op::Layer(l) => return l.lower(ins, outs, then),
            Op::Stateful(s) => return s.lower(ins, outs, step, then),
            Op::Head(h) => return h.lower(ins, outs),
            _ => {}
        }
        let launches = match self {
            Op::Layer(_) | Op::Stateful(_) | Op::Head(_) => unreachable!("handled above"),
            Op::State | Op::Input | Op::Param | Op::Reshape(_) | Op::View(_) => vec![],
            Op::Unary(u) => vec![elementwise::unary_chain_launch(*u, then, ins[0], outs[0])?],
            Op::OnesLike => vec![elementwise::unary_launch(
                UnaryOp::Linear { a: 0.0, b: 1.0 },
                ins[0],
                outs[0],
            )?],
            Op::UnaryGrad(u) => vec![elementwise::unary_backward_launch(
                *u, ins[0], ins[1], outs[0],
            )?],
            Op::UnaryGradOut(u) => vec![elementwise::unary_backward_out_launch(
                *u, ins[0], ins[1], outs[0],
            )?],
            Op::Binary(b) => vec![elementwise::binary_chain_launch(
                *b, then, ins[0], ins[1], outs[0],
            )?],
            Op::BinaryGrad(b, which) => {
                vec![elementwise::binary_grad_launch(
                    *b, *which, ins[0], ins[1], ins[2], outs[0],
                )?]
            }
            Op::MatMul { ta, tb } => {
                let (g, _) = matmul::plan(ins[0].shape(), ins[1].shape(), *ta, *tb)?;
                vec![matmul::matmul_launch(&g, ins[0], ins[1], outs[0])?]
            }
            Op::Reduce(r, axis) => vec![reduce::reduce_launch(
                *r,
                ins[0],
                *axis,
                outs[0],
                outs.get(1).copied(),
            )?],
            Op::ReduceGrad(r, axis) => {
                vec![reduce::reduce_backward_launch(
                    *r,
                    *axis,
                    ins[0],
                    ins.get(2).copied(),
                    outs[0],
                )?]
            }
            Op::Permute(p) => vec![transpose::permute_launch(ins[0], p, outs[0])?],
        };
        Ok(Prepared {
            launches,
            scratch: vec![],
        })
    }
}

impl Op {
    /// The CPU f64 reference of this op (u32 states as f64 indices): the oracle the compiled graph
    /// is tested against, node by node.
    pub fn eval_reference(
        &self,
        ins: &[&Array],
        out_shapes: &[Out],
        step: u64,
    ) -> Result<Vec<Array>> {
        let shape0 = &out_shapes[0].0;
        Ok(match self {
            Op::Layer(l) => l.eval_reference(ins)?,
            Op::Stateful(s) => s.eval_reference(ins, out_shapes, step)?,
            Op::Head(h) => h.eval_reference(ins, out_shapes)?,
            Op::Input | Op::Param | Op::State => unreachable!("sources are fed, not evaluated"),
            Op::Unary(u) => vec![basic::unary(*u, ins[0])],
            Op::OnesLike => vec![Array::new(shape0, vec![1.0; ins[0].len()])],
            Op::UnaryGrad(u) => vec![basic::unary_backward(*u, ins[0], ins[1])],
            Op::UnaryGradOut(u) => vec![basic::unary_backward_out(*u, ins[0], ins[1])?],
            Op::Binary(b) => vec![basic::binary(*b, ins[0], ins[1], shape0)],
            Op::BinaryGrad(b, which) => {
                let (ga, gb) = basic::binary_backward(*b, ins[0], ins[1], ins[2]);
                vec![if *which == 0 { ga } else { gb }]
            }
            Op::MatMul { ta, tb } => {
                // Batched: loop over the leading dims (a 2-D operand is shared).
                let (a, b) = (ins[0], ins[1]);
                let (m2, n2) = (shape0[shape0.len() - 2], shape0[shape0.len() - 1]);
                let batch = shape0.len() - 2;
                let nb: usize = shape0[..batch].iter().product();
                let mat = |x: &Array, i: usize| {
                    let r = x.shape.len();
                    let (p, q) = (x.shape[r - 2], x.shape[r - 1]);
                    let k = if r == 2 { 0 } else { i };
                    Array::new(&[p, q], x.data[k * p * q..(k + 1) * p * q].to_vec())
                };
                let mut data = Vec::with_capacity(nb * m2 * n2);
                for i in 0..nb {
                    data.extend(basic::matmul(&mat(a, i), &mat(b, i), *ta, *tb).data);
                }
                vec![Array::new(shape0, data)]
            }
            Op::Reduce(r, axis) => {
                let (y, arg) = basic::reduce(*r, ins[0], *axis);
                let mut outs = vec![y];
                if *r == ReduceOp::Max {
                    outs.push(Array::new(
                        &out_shapes[1].0,
                        arg.iter().map(|&a| a as f64).collect(),
                    ));
                }
                outs
            }
            Op::ReduceGrad(r, axis) => {
                let arg: Vec<usize> = ins
                    .get(2)
                    .map(|a| a.data.iter().map(|&v| v as usize).collect())
                    .unwrap_or_default();
                vec![basic::reduce_backward(
                    *r,
                    &ins[1].shape,
                    *axis,
                    ins[0],
                    &arg,
                )]
            }
            Op::Permute(p) => vec![basic::permute(ins[0], p)],
            Op::Reshape(_) | Op::View(_) => vec![Array::new(shape0, ins[0].data.clone())],
        })
    }
}
