//! Softmax as a graph op: `[x] -> y`; its gradient reads the output y.

use crate::error::Result;
use crate::graph::{Graph, Out, Primitive, Value};
use crate::launch::Prepared;
use crate::neuron::UnaryOp;
use crate::ops::checks::{arity, same};
use crate::reference::Array;
use crate::tensor::{DType, Tensor};

use super::{Softmax, gpu, reference};

/// The softmax family's graph ops: softmax (or log-softmax) and its gradient.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SoftmaxOp {
    /// `[x] -> y`
    Softmax(Softmax),
    /// `[y, dy] -> dx`
    Grad(Softmax),
}

impl Primitive for SoftmaxOp {
    fn supports_f16(&self) -> bool {
        true
    }

    fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        let name = format!("{self:?}");
        match self {
            SoftmaxOp::Softmax(s) => {
                arity(&name, ins, 1, 1)?;
                s.check(ins[0])?;
            }
            SoftmaxOp::Grad(_) => {
                arity(&name, ins, 2, 2)?;
                same(&name, "dy", ins[1], ins[0])?;
            }
        }
        Ok(vec![(ins[0].to_vec(), DType::F32)])
    }

    fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        _fused: &[UnaryOp],
        _step: u64,
    ) -> Result<Prepared> {
        Ok(Prepared::one(match self {
            SoftmaxOp::Softmax(s) => gpu::softmax_launch(s, ins[0], outs[0])?,
            SoftmaxOp::Grad(s) => gpu::softmax_backward_launch(s, ins[0], ins[1], outs[0])?,
        }))
    }

    fn reference(&self, ins: &[&Array], _outs: &[Out], _step: u64) -> Result<Vec<Array>> {
        Ok(vec![match self {
            SoftmaxOp::Softmax(s) => reference::softmax_forward(s, ins[0])?,
            SoftmaxOp::Grad(s) => reference::softmax_backward(s, ins[0], ins[1])?,
        }])
    }

    fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        let SoftmaxOp::Softmax(s) = *self else {
            return Err(g.no_second_derivative(node));
        };
        let y = Value { node, port: 0 };
        Ok(vec![Some(g.add_grad(
            node,
            "",
            SoftmaxOp::Grad(s),
            &[y, dy],
        )?)])
    }
}

/// Builder methods.
impl Graph {
    /// Softmax (or log-softmax) along `op.axis`.
    pub fn softmax(&mut self, name: &str, x: Value, op: Softmax) -> Result<Value> {
        self.add(name, SoftmaxOp::Softmax(op), &[x])
    }
}
