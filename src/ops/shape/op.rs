//! Shape graph ops: views (reshape, view), permute, concat, slice, pad, upsample and their
//! gradients.

use crate::error::shape_err;
use crate::error::{Error, Result};
use crate::graph::{Graph, Out, Primitive, Value};
use crate::launch::Prepared;
use crate::neuron::UnaryOp;
use crate::ops::axis::fmt_shape;
use crate::ops::axis::resolve_axis;
use crate::ops::checks::numel;
use crate::reference::{Array, strides};
use crate::tensor::{DType, Tensor};

use super::{Concat, Pad, Slice, Upsample, gpu, permute, reference};

/// The shape family's graph ops: views, permute, concat, slice, pad, upsample, and gradients.
#[derive(Clone, Debug, PartialEq)]
pub enum ShapeOp {
    /// `[x] -> x` permuted.
    Permute(Vec<usize>),
    /// `[x] -> x` as (batch, rest...): `rest` excludes the batch dim, so the batch can change.
    Reshape(Vec<usize>),
    /// `[x] -> x` with exactly this shape (batch-independent shapes, e.g. a weight's).
    View(Vec<usize>),
    /// `[x1, x2, ...] -> y`
    Concat(Concat),
    /// `[dy, x_k] -> dx_k`: the slice of dy that input `k` (starting at `offset`) filled.
    ConcatGrad {
        /// The forward's descriptor.
        op: Concat,
        /// Where input `k` starts along the concat axis.
        offset: usize,
    },
    /// `[x] -> x[ranges]`
    Slice(Slice),
    /// `[dy, x] -> dx`
    SliceGrad(Slice),
    /// `[x] -> x padded`
    Pad(Pad),
    /// `[dy, x] -> dx`
    PadGrad(Pad),
    /// `[x] -> x upsampled`
    Upsample(Upsample),
    /// `[dy, x] -> dx`
    UpsampleGrad(Upsample),
}

fn f32(s: &[usize]) -> Out {
    (s.to_vec(), DType::F32)
}

/// `[dy, x] -> dx` of x's shape, with dy checked against `forward`, the output of forward op
/// `op` (worded as the launches word it).
fn grad_of(op: &str, ins: &[&[usize]], forward: Vec<usize>) -> Result<Out> {
    if ins[0] != forward.as_slice() {
        let (dy, want) = (fmt_shape(ins[0]), fmt_shape(&forward));
        return shape_err(op, format!("dy {dy} does not match {want}"));
    }
    Ok(f32(ins[1]))
}

impl ShapeOp {
    /// Inputs taken: (at least, at most).
    fn arity(&self) -> (usize, usize) {
        match self {
            ShapeOp::Concat(_) => (1, usize::MAX),
            ShapeOp::ConcatGrad { .. }
            | ShapeOp::SliceGrad(_)
            | ShapeOp::PadGrad(_)
            | ShapeOp::UpsampleGrad(_) => (2, 2),
            _ => (1, 1),
        }
    }
}

impl Primitive for ShapeOp {
    fn supports_f16(&self) -> bool {
        true
    }

    fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        let err = |msg: String| Error::Shape {
            op: format!("{self:?}"),
            msg,
        };
        let (lo, hi) = self.arity();
        if ins.len() < lo || ins.len() > hi {
            return Err(err(format!("takes {lo}..={hi} inputs, got {}", ins.len())));
        }
        Ok(vec![match self {
            ShapeOp::Permute(p) => {
                permute::check_perm("permute", ins[0], p)?;
                f32(&permute::permuted_shape(ins[0], p))
            }
            ShapeOp::Reshape(rest) => {
                let Some((&n, tail)) = ins[0].split_first() else {
                    return Err(err(format!("{:?} has no batch axis", ins[0])));
                };
                if numel("reshape", tail)? != numel("reshape", rest)? {
                    return Err(err(format!("{:?} cannot become (batch, {rest:?})", ins[0])));
                }
                let mut s = vec![n];
                s.extend_from_slice(rest);
                f32(&s)
            }
            ShapeOp::View(shape) => {
                if numel("view", ins[0])? != numel("view", shape)? {
                    return Err(err(format!("{:?} cannot become {shape:?}", ins[0])));
                }
                f32(shape)
            }
            ShapeOp::Concat(c) => f32(&c.output_shape(ins)?.0),
            ShapeOp::Slice(s) => f32(&s.output_shape(ins[0])?),
            ShapeOp::Pad(p) => f32(&p.output_shape(ins[0])?),
            ShapeOp::Upsample(u) => f32(&u.output_shape(ins[0])?),
            // [dy, x]: dy must be what the forward made of x, or the gradient would silently
            // read the wrong elements.
            ShapeOp::ConcatGrad { op, offset } => {
                let (dy, x) = (ins[0], ins[1]);
                let axis = resolve_axis(Concat::OP, op.axis, dy.len())?;
                let fits = x.len() == dy.len()
                    && (0..x.len()).all(|k| k == axis || x[k] == dy[k])
                    && offset
                        .checked_add(x[axis])
                        .is_some_and(|end| end <= dy[axis]);
                if !fits {
                    let (x, dy) = (fmt_shape(x), fmt_shape(dy));
                    let msg =
                        format!("x {x} at offset {offset} of axis {axis} does not fit in dy {dy}");
                    return shape_err(Concat::OP, msg);
                }
                f32(x)
            }
            ShapeOp::SliceGrad(s) => grad_of(Slice::OP, ins, s.output_shape(ins[1])?)?,
            ShapeOp::PadGrad(p) => grad_of(Pad::OP, ins, p.output_shape(ins[1])?)?,
            ShapeOp::UpsampleGrad(u) => grad_of(Upsample::OP, ins, u.output_shape(ins[1])?)?,
        }])
    }

    fn is_view(&self) -> bool {
        matches!(self, ShapeOp::Reshape(_) | ShapeOp::View(_))
    }

    /// The gradients `[dy, x]` take the forward input x for its shape alone.
    fn reads_input(&self, slot: usize) -> bool {
        let grad = matches!(
            self,
            ShapeOp::ConcatGrad { .. }
                | ShapeOp::SliceGrad(_)
                | ShapeOp::PadGrad(_)
                | ShapeOp::UpsampleGrad(_)
        );
        !grad || slot != 1
    }

    /// A concat's gradient applies a neuron's gradient as it copies (`fusion.rs`), reading the
    /// neuron's output from the concat's output.
    fn folds_grad_neuron(&self) -> bool {
        matches!(self, ShapeOp::ConcatGrad { .. })
    }

    /// `y` is the concat's output (dy's shape): the window this gradient copies holds the
    /// neuron's output.
    fn lower_grad_neuron(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        neuron: UnaryOp,
        y: &Tensor,
    ) -> Result<Prepared> {
        let ShapeOp::ConcatGrad { op, offset } = self else {
            return Err(crate::graph::cannot_fold(self, neuron));
        };
        let axis = resolve_axis(Concat::OP, op.axis, ins[0].shape().len())?;
        let launch = gpu::copy_from_grad_launch(ins[0], y, axis, *offset, neuron, outs[0])?;
        Ok(Prepared::one(launch))
    }

    fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        _fused: &[UnaryOp],
        _step: u64,
    ) -> Result<Prepared> {
        let launches = match self {
            ShapeOp::Reshape(_) | ShapeOp::View(_) => vec![],
            ShapeOp::Permute(p) => vec![permute::permute_launch(ins[0], p, outs[0])?],
            ShapeOp::Concat(c) => gpu::concat_launch(c, ins, outs[0])?,
            ShapeOp::ConcatGrad { op, offset } => {
                let axis = resolve_axis(Concat::OP, op.axis, ins[0].shape().len())?;
                vec![gpu::copy_from_launch(ins[0], axis, *offset, outs[0])?]
            }
            ShapeOp::Slice(s) => vec![gpu::slice_launch(s, ins[0], outs[0])?],
            ShapeOp::SliceGrad(s) => vec![gpu::slice_backward_launch(s, ins[0], outs[0])?],
            ShapeOp::Pad(p) => vec![gpu::pad_launch(p, ins[0], outs[0])?],
            ShapeOp::PadGrad(p) => vec![gpu::pad_backward_launch(p, ins[0], outs[0])?],
            ShapeOp::Upsample(u) => vec![gpu::upsample_launch(u, ins[0], outs[0])?],
            ShapeOp::UpsampleGrad(u) => vec![gpu::upsample_backward_launch(u, ins[0], outs[0])?],
        };
        Ok(Prepared {
            launches,
            scratch: vec![],
        })
    }

    fn reference(&self, ins: &[&Array], outs: &[Out], _step: u64) -> Result<Vec<Array>> {
        let shape0 = &outs[0].0;
        Ok(vec![match self {
            ShapeOp::Permute(p) => reference::permute(ins[0], p),
            ShapeOp::Reshape(_) | ShapeOp::View(_) => Array::new(shape0, ins[0].data.clone()),
            ShapeOp::Concat(c) => reference::concat(c, ins)?,
            ShapeOp::ConcatGrad { op, offset } => {
                let axis = resolve_axis(Concat::OP, op.axis, ins[0].shape.len())?;
                let dy = ins[0];
                let mut dx = Array::zeros(shape0);
                let st = strides(&dy.shape);
                for i in 0..dx.len() {
                    let (mut rem, mut src) = (i, 0);
                    for d in (0..shape0.len()).rev() {
                        let c = rem % shape0[d] + if d == axis { *offset } else { 0 };
                        rem /= shape0[d];
                        src += c * st[d];
                    }
                    dx.data[i] = dy.data[src];
                }
                dx
            }
            ShapeOp::Slice(s) => reference::slice(s, ins[0])?,
            ShapeOp::SliceGrad(s) => reference::slice_backward(s, &ins[1].shape, ins[0])?,
            ShapeOp::Pad(p) => reference::pad(p, ins[0])?,
            ShapeOp::PadGrad(p) => reference::pad_backward(p, &ins[1].shape, ins[0])?,
            ShapeOp::Upsample(u) => reference::upsample(u, ins[0])?,
            ShapeOp::UpsampleGrad(u) => reference::upsample_backward(u, &ins[1].shape, ins[0])?,
        }])
    }

    fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        let x = g.forward_inputs(node, 1)?;
        let mut d = |op: ShapeOp, ins: &[Value]| g.add_grad(node, "", op, ins).map(Some);
        Ok(match self {
            ShapeOp::Permute(p) => {
                let op = ShapeOp::Permute(permute::inverse(p));
                vec![Some(g.add_grad(node, "d0", op, &[dy])?)]
            }
            ShapeOp::Reshape(_) => {
                let s = g.shape(x[0])?[1..].to_vec();
                vec![Some(g.add_grad(node, "d0", ShapeOp::Reshape(s), &[dy])?)]
            }
            ShapeOp::View(_) => {
                let s = g.shape(x[0])?.to_vec();
                vec![Some(g.add_grad(node, "d0", ShapeOp::View(s), &[dy])?)]
            }
            ShapeOp::Concat(c) => {
                let mut v = Vec::new();
                let mut offset = 0;
                for xi in &x {
                    let sh = g.shape(*xi)?.to_vec();
                    let axis = resolve_axis(Concat::OP, c.axis, sh.len())?;
                    let op = ShapeOp::ConcatGrad { op: *c, offset };
                    v.push(Some(g.add_grad(node, "", op, &[dy, *xi])?));
                    offset += sh[axis];
                }
                v
            }
            ShapeOp::Slice(s) => vec![d(ShapeOp::SliceGrad(s.clone()), &[dy, x[0]])?],
            ShapeOp::Pad(p) => vec![d(ShapeOp::PadGrad(p.clone()), &[dy, x[0]])?],
            ShapeOp::Upsample(u) => vec![d(ShapeOp::UpsampleGrad(*u), &[dy, x[0]])?],
            _ => return Err(g.no_second_derivative(node)),
        })
    }
}

/// Builder methods.
impl Graph {
    /// `x` with its axes permuted: `y.shape[i] = x.shape[perm[i]]`.
    pub fn permute(&mut self, name: &str, x: Value, perm: &[usize]) -> Result<Value> {
        self.add(name, ShapeOp::Permute(perm.to_vec()), &[x])
    }

    /// `(N, ...) -> (N, rest...)`, e.g. flatten with `rest = [C·H·W]`.
    pub fn reshape(&mut self, name: &str, x: Value, rest: &[usize]) -> Result<Value> {
        self.add(name, ShapeOp::Reshape(rest.to_vec()), &[x])
    }

    /// `(N, ...) -> (N, product of the rest)`.
    pub fn flatten(&mut self, name: &str, x: Value) -> Result<Value> {
        let s = self.shape(x)?;
        let rest = numel("flatten", &s[1..])?;
        self.reshape(name, x, &[rest])
    }

    /// The inputs concatenated along `op.axis`.
    pub fn concat(&mut self, name: &str, xs: &[Value], op: Concat) -> Result<Value> {
        self.add(name, ShapeOp::Concat(op), xs)
    }

    /// Adds a strided slice of `x`.
    pub fn slice(&mut self, name: &str, x: Value, op: Slice) -> Result<Value> {
        self.add(name, ShapeOp::Slice(op), &[x])
    }

    /// Adds a padding of `x`.
    pub fn pad(&mut self, name: &str, x: Value, op: Pad) -> Result<Value> {
        self.add(name, ShapeOp::Pad(op), &[x])
    }

    /// Adds a resize of `x`'s last two axes.
    pub fn upsample(&mut self, name: &str, x: Value, op: Upsample) -> Result<Value> {
        self.add(name, ShapeOp::Upsample(op), &[x])
    }
}
