//! Graph ops at the edges of a network: losses (the per-sample loss kept as a second output, as
//! MPS's loss labels hold it after a step) and shape ops (concat, slice, pad, upsample), each
//! with its gradient op, CPU reference and vjp rule.

use super::op::Out;
use super::{Graph, Op, Value};
use crate::error::{Error, Result};
use crate::kernels::conv::Prepared;
use crate::kernels::loss::{self, GpuLoss};
use crate::kernels::shape;
use crate::ops::loss::{LabelsShape, Loss};
use crate::ops::shape_ops::{Concat, Pad, Slice, Upsample};
use crate::reference::{self, Array};
use crate::tensor::{DType, Tensor};

#[derive(Clone, Debug, PartialEq)]
pub enum Head {
    /// `[logits, labels, weights?] -> (loss (1) or (N) for Reduction::None, per-sample loss (N))`.
    /// Labels shaped like the logits are dense; labels of shape (N) are u32 class indices.
    Loss(Loss),
    /// `[logits, labels, weights?, dloss] -> dlogits`
    LossGrad(Loss),
    /// `[x1, x2, ...] -> y`
    Concat(Concat),
    /// `[dy, x_k] -> dx_k`: the slice of dy that input `k` (starting at `offset`) filled.
    ConcatGrad {
        op: Concat,
        offset: usize,
    },
    Slice(Slice),
    /// `[dy, x] -> dx`
    SliceGrad(Slice),
    Pad(Pad),
    /// `[dy, x] -> dx`
    PadGrad(Pad),
    Upsample(Upsample),
    /// `[dy, x] -> dx`
    UpsampleGrad(Upsample),
}

fn f32(s: &[usize]) -> Out {
    (s.to_vec(), DType::F32)
}

fn labels_shape<'a>(logits: &[usize], labels: &'a [usize]) -> LabelsShape<'a> {
    if labels == logits {
        LabelsShape::Dense(labels)
    } else {
        LabelsShape::Indices(labels.iter().product())
    }
}

fn ref_labels<'a>(
    logits: &Array,
    labels: &'a Array,
    idx: &'a mut Vec<usize>,
) -> reference::loss::Labels<'a> {
    if labels.shape == logits.shape {
        reference::loss::Labels::Dense(labels)
    } else {
        *idx = labels.data.iter().map(|&v| v as usize).collect();
        reference::loss::Labels::Indices(idx)
    }
}

impl Head {
    pub fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        Ok(match self {
            Head::Loss(l) => {
                let (n, _) = l.check(ins[0], labels_shape(ins[0], ins[1]), ins.get(2).copied())?;
                vec![f32(&l.output_shape(n)), f32(&[n])]
            }
            Head::LossGrad(l) => {
                let w = if ins.len() == 4 { Some(ins[2]) } else { None };
                l.check(ins[0], labels_shape(ins[0], ins[1]), w)?;
                vec![f32(ins[0])]
            }
            Head::Concat(c) => vec![f32(&c.output_shape(ins)?.0)],
            Head::ConcatGrad { .. } => vec![f32(ins[1])],
            Head::Slice(s) => vec![f32(&s.output_shape(ins[0])?)],
            Head::Pad(p) => vec![f32(&p.output_shape(ins[0])?)],
            Head::Upsample(u) => vec![f32(&u.output_shape(ins[0])?)],
            Head::SliceGrad(_) | Head::PadGrad(_) | Head::UpsampleGrad(_) => vec![f32(ins[1])],
        })
    }

    pub fn lower(&self, ins: &[&Tensor], outs: &[&Tensor]) -> Result<Prepared> {
        let launches = match self {
            Head::Loss(l) => {
                let k = GpuLoss::new(ins[0].device(), l)?;
                let reduced = (l.reduction != crate::ops::loss::Reduction::None).then_some(outs[0]);
                loss::loss_forward_launch(
                    &k,
                    ins[0],
                    ins[1],
                    ins.get(2).copied(),
                    outs[1],
                    reduced,
                )?
            }
            Head::LossGrad(l) => {
                let k = GpuLoss::new(ins[0].device(), l)?;
                let w = if ins.len() == 4 { Some(ins[2]) } else { None };
                vec![loss::loss_backward_launch(
                    &k,
                    ins[0],
                    ins[1],
                    w,
                    ins[ins.len() - 1],
                    outs[0],
                )?]
            }
            Head::Concat(c) => shape::concat_launch(c, ins, outs[0])?,
            Head::ConcatGrad { op, offset } => {
                let axis =
                    crate::ops::axis::resolve_axis(Concat::OP, op.axis, ins[0].shape().len())?;
                vec![shape::copy_from_launch(ins[0], axis, *offset, outs[0])?]
            }
            Head::Slice(s) => vec![shape::slice_launch(s, ins[0], outs[0])?],
            Head::SliceGrad(s) => vec![shape::slice_backward_launch(s, ins[0], outs[0])?],
            Head::Pad(p) => vec![shape::pad_launch(p, ins[0], outs[0])?],
            Head::PadGrad(p) => vec![shape::pad_backward_launch(p, ins[0], outs[0])?],
            Head::Upsample(u) => vec![shape::upsample_launch(u, ins[0], outs[0])?],
            Head::UpsampleGrad(u) => vec![shape::upsample_backward_launch(u, ins[0], outs[0])?],
        };
        Ok(Prepared {
            launches,
            scratch: vec![],
        })
    }

    pub fn eval_reference(&self, ins: &[&Array], outs: &[Out]) -> Result<Vec<Array>> {
        let mut idx = Vec::new();
        Ok(match self {
            Head::Loss(l) => {
                let labels = ref_labels(ins[0], ins[1], &mut idx);
                let w = ins.get(2).copied();
                let out = reference::loss::loss_forward(l, ins[0], &labels, w)?;
                let per_loss = Loss {
                    kind: l.kind.clone(),
                    reduction: crate::ops::loss::Reduction::None,
                };
                let per = reference::loss::loss_forward(&per_loss, ins[0], &labels, w)?;
                vec![out, per]
            }
            Head::LossGrad(l) => {
                let labels = ref_labels(ins[0], ins[1], &mut idx);
                let w = if ins.len() == 4 { Some(ins[2]) } else { None };
                vec![reference::loss::loss_backward(
                    l,
                    ins[0],
                    &labels,
                    w,
                    ins[ins.len() - 1],
                )?]
            }
            Head::Concat(c) => vec![reference::shape_ops::concat(c, ins)?],
            Head::ConcatGrad { op, offset } => {
                let axis = crate::ops::axis::resolve_axis(Concat::OP, op.axis, ins[0].shape.len())?;
                let dy = ins[0];
                let want = &outs[0].0;
                let mut dx = Array::zeros(want);
                let st = reference::strides(&dy.shape);
                for i in 0..dx.len() {
                    let (mut rem, mut src) = (i, 0);
                    for d in (0..want.len()).rev() {
                        let c = rem % want[d] + if d == axis { *offset } else { 0 };
                        rem /= want[d];
                        src += c * st[d];
                    }
                    dx.data[i] = dy.data[src];
                }
                vec![dx]
            }
            Head::Slice(s) => vec![reference::shape_ops::slice(s, ins[0])?],
            Head::SliceGrad(s) => vec![reference::shape_ops::slice_backward(
                s,
                &ins[1].shape,
                ins[0],
            )?],
            Head::Pad(p) => vec![reference::shape_ops::pad(p, ins[0])?],
            Head::PadGrad(p) => vec![reference::shape_ops::pad_backward(
                p,
                &ins[1].shape,
                ins[0],
            )?],
            Head::Upsample(u) => vec![reference::shape_ops::upsample(u, ins[0])?],
            Head::UpsampleGrad(u) => vec![reference::shape_ops::upsample_backward(
                u,
                &ins[1].shape,
                ins[0],
            )?],
        })
    }

    pub fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        let x = g.nodes[node].inputs.clone();
        let shapes: Vec<Vec<usize>> = x.iter().map(|v| g.shape(*v).to_vec()).collect();
        let base = format!("grad/{}", g.nodes[node].name);
        let mut add = |h: Head, ins: &[Value]| -> Result<Option<Value>> {
            let name = g.fresh(base.clone());
            g.add(&name, Op::Head(h), ins).map(Some)
        };
        Ok(match self {
            Head::Loss(l) => {
                let mut ins = x.clone();
                ins.push(dy);
                // Labels and weights are data: no gradient flows to them.
                let mut v = vec![add(Head::LossGrad(l.clone()), &ins)?, None];
                if x.len() == 3 {
                    v.push(None);
                }
                v
            }
            Head::Concat(c) => {
                let mut v = Vec::new();
                let mut offset = 0;
                for (xi, sh) in x.iter().zip(&shapes) {
                    let axis = crate::ops::axis::resolve_axis(Concat::OP, c.axis, sh.len())?;
                    let len = sh[axis];
                    v.push(add(Head::ConcatGrad { op: *c, offset }, &[dy, *xi])?);
                    offset += len;
                }
                v
            }
            Head::Slice(s) => vec![add(Head::SliceGrad(s.clone()), &[dy, x[0]])?],
            Head::Pad(p) => vec![add(Head::PadGrad(p.clone()), &[dy, x[0]])?],
            Head::Upsample(u) => vec![add(Head::UpsampleGrad(*u), &[dy, x[0]])?],
            _ => {
                return Err(Error::Invalid(format!(
                    "node {:?}: {self:?} has no gradient (second derivatives are not supported)",
                    g.nodes[node].name
                )));
            }
        })
    }
}

impl Graph {
    /// A loss over `logits` and `labels` (dense like the logits, or (N) u32 class indices from
    /// `input_u32`), with optional per-sample weights (N). Port 0 is the loss, port 1
    /// (`Value { port: 1, .. }`) the per-sample loss.
    pub fn loss(
        &mut self,
        name: &str,
        logits: Value,
        labels: Value,
        weights: Option<Value>,
        op: Loss,
    ) -> Result<Value> {
        let mut ins = vec![logits, labels];
        ins.extend(weights);
        self.add(name, Op::Head(Head::Loss(op)), &ins)
    }

    pub fn concat(&mut self, name: &str, xs: &[Value], op: Concat) -> Result<Value> {
        self.add(name, Op::Head(Head::Concat(op)), xs)
    }

    pub fn slice(&mut self, name: &str, x: Value, op: Slice) -> Result<Value> {
        self.add(name, Op::Head(Head::Slice(op)), &[x])
    }

    pub fn pad(&mut self, name: &str, x: Value, op: Pad) -> Result<Value> {
        self.add(name, Op::Head(Head::Pad(op)), &[x])
    }

    pub fn upsample(&mut self, name: &str, x: Value, op: Upsample) -> Result<Value> {
        self.add(name, Op::Head(Head::Upsample(op)), &[x])
    }
}
