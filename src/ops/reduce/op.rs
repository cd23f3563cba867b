//! Reductions as graph ops: `[x] -> (y, argmax state for Max)` with the axis kept as size 1.

use crate::error::{Error, Result};
use crate::graph::{Graph, Out, Primitive, Value};
use crate::launch::Prepared;
use crate::neuron::UnaryOp;
use crate::reference::Array;
use crate::tensor::{DType, Tensor};

use super::gpu::{self, ReduceKind};
use super::reference;

/// The reduce family's graph ops: a reduction and its gradient.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReduceOp {
    /// `[x] -> (y, argmax state for Max)`, the axis kept with size 1.
    Reduce(ReduceKind, usize),
    /// `[dy, x (its shape), state?] -> dx`
    Grad(ReduceKind, usize),
}

impl Primitive for ReduceOp {
    fn supports_f16(&self) -> bool {
        true
    }

    /// A sum or mean: the axis length. A max compares and the gradients broadcast: they sum
    /// nothing, so they have no accumulator to choose.
    fn accumulation_len(&self, ins: &[&[usize]]) -> Option<usize> {
        match self {
            ReduceOp::Reduce(ReduceKind::Sum | ReduceKind::Mean, axis) => {
                Some(ins.first()?.get(*axis).copied().unwrap_or(1).max(1))
            }
            _ => None,
        }
    }

    fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        let arity = match self {
            ReduceOp::Reduce(..) => 1,
            ReduceOp::Grad(k, _) => 2 + (*k == ReduceKind::Max) as usize,
        };
        let err = |msg: String| Error::Shape {
            op: format!("{self:?}"),
            msg,
        };
        if ins.len() != arity {
            return Err(err(format!("takes {arity} inputs, got {}", ins.len())));
        }
        Ok(match self {
            ReduceOp::Reduce(k, axis) => {
                gpu::split_axis(&format!("{k:?}"), ins[0], *axis)?;
                let mut s = ins[0].to_vec();
                s[*axis] = 1;
                let mut outs = vec![(s.clone(), DType::F32)];
                if *k == ReduceKind::Max {
                    outs.push((s, DType::U32));
                }
                outs
            }
            ReduceOp::Grad(k, axis) => {
                gpu::split_axis(&format!("{k:?}"), ins[1], *axis)?;
                let mut s = ins[1].to_vec();
                s[*axis] = 1;
                if ins[0] != s.as_slice() {
                    return Err(err(format!(
                        "dy {:?} vs input {:?} reduced over axis {axis}",
                        ins[0], ins[1]
                    )));
                }
                // Max reads the forward's argmax, one index per output element.
                if let Some(arg) = ins.get(2)
                    && *arg != s.as_slice()
                {
                    return Err(err(format!("argmax {arg:?} vs dy {:?}", ins[0])));
                }
                vec![(ins[1].to_vec(), DType::F32)]
            }
        })
    }

    fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        _fused: &[UnaryOp],
        _step: u64,
    ) -> Result<Prepared> {
        Ok(Prepared::one(match self {
            ReduceOp::Reduce(k, axis) => {
                gpu::reduce_launch(*k, ins[0], *axis, outs[0], outs.get(1).copied())?
            }
            ReduceOp::Grad(k, axis) => {
                gpu::reduce_backward_launch(*k, *axis, ins[0], ins.get(2).copied(), outs[0])?
            }
        }))
    }

    fn reference(&self, ins: &[&Array], outs: &[Out], _step: u64) -> Result<Vec<Array>> {
        Ok(match self {
            ReduceOp::Reduce(k, axis) => {
                let (y, arg) = reference::reduce(*k, ins[0], *axis);
                let mut v = vec![y];
                if *k == ReduceKind::Max {
                    v.push(Array::new(
                        &outs[1].0,
                        arg.iter().map(|&a| a as f64).collect(),
                    ));
                }
                v
            }
            ReduceOp::Grad(k, axis) => {
                let arg: Vec<usize> = ins
                    .get(2)
                    .map(|a| a.data.iter().map(|&v| v as usize).collect())
                    .unwrap_or_default();
                vec![reference::reduce_backward(
                    *k,
                    &ins[1].shape,
                    *axis,
                    ins[0],
                    &arg,
                )]
            }
        })
    }

    fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        let ReduceOp::Reduce(k, axis) = *self else {
            return Err(g.no_second_derivative(node));
        };
        let x = g.forward_inputs(node, 1)?[0];
        let mut ins = vec![dy, x];
        if k == ReduceKind::Max {
            ins.push(Value { node, port: 1 });
        }
        Ok(vec![Some(g.add_grad(
            node,
            "d0",
            ReduceOp::Grad(k, axis),
            &ins,
        )?)])
    }
}

/// Builder methods.
impl Graph {
    /// Sum over `axis` (kept as size 1).
    pub fn sum(&mut self, name: &str, x: Value, axis: usize) -> Result<Value> {
        self.add(name, ReduceOp::Reduce(ReduceKind::Sum, axis), &[x])
    }

    /// Mean over `axis` (kept as size 1).
    pub fn mean(&mut self, name: &str, x: Value, axis: usize) -> Result<Value> {
        self.add(name, ReduceOp::Reduce(ReduceKind::Mean, axis), &[x])
    }

    /// Max over `axis`; the argmax is kept as the node's state for the gradient.
    pub fn max(&mut self, name: &str, x: Value, axis: usize) -> Result<Value> {
        self.add(name, ReduceOp::Reduce(ReduceKind::Max, axis), &[x])
    }
}
