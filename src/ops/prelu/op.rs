//! PReLU as a graph op: `[x, a] -> y`, with the slopes `a` a parameter `<name>.weight`; its
//! gradient is two ops, `[x, a, dy] -> dx` and `[x, dy] -> da`.

use crate::error::{Error, Result};
use crate::graph::{Graph, Out, Primitive, Value};
use crate::launch::Prepared;
use crate::neuron::UnaryOp;
use crate::ops::checks::{arity, same};
use crate::reference::Array;
use crate::tensor::{DType, Tensor};

use super::{PRelu, gpu, reference};

/// The PReLU graph ops: the forward and its two gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PReluOp {
    /// `[x, a] -> y`
    Forward(PRelu),
    /// `[x, a, dy] -> dx`
    GradInput(PRelu),
    /// `[x, dy] -> da` (`[num_parameters]`)
    GradWeight(PRelu),
}

impl Primitive for PReluOp {
    fn supports_f16(&self) -> bool {
        true
    }

    fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        let name = format!("{self:?}");
        Ok(vec![match self {
            PReluOp::Forward(op) => {
                arity(&name, ins, 2, 2)?;
                op.layout(ins[0])?;
                same(&name, "weight", ins[1], &op.weight_shape())?;
                (ins[0].to_vec(), DType::F32)
            }
            PReluOp::GradInput(op) => {
                arity(&name, ins, 3, 3)?;
                op.layout(ins[0])?;
                same(&name, "weight", ins[1], &op.weight_shape())?;
                same(&name, "dy", ins[2], ins[0])?;
                (ins[0].to_vec(), DType::F32)
            }
            PReluOp::GradWeight(op) => {
                arity(&name, ins, 2, 2)?;
                op.layout(ins[0])?;
                same(&name, "dy", ins[1], ins[0])?;
                (op.weight_shape(), DType::F32)
            }
        }])
    }

    fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        _fused: &[UnaryOp],
        _step: u64,
    ) -> Result<Prepared> {
        Ok(match self {
            PReluOp::Forward(op) => Prepared::one(gpu::prelu_launch(op, ins[0], ins[1], outs[0])?),
            PReluOp::GradInput(op) => Prepared::one(gpu::prelu_backward_input_launch(
                op, ins[0], ins[1], ins[2], outs[0],
            )?),
            PReluOp::GradWeight(op) => {
                gpu::prelu_backward_weight_launches(op, ins[0], ins[1], outs[0])?
            }
        })
    }

    fn reference(&self, ins: &[&Array], _outs: &[Out], _step: u64) -> Result<Vec<Array>> {
        Ok(vec![match self {
            PReluOp::Forward(op) => reference::prelu_forward(op, ins[0], ins[1])?,
            PReluOp::GradInput(op) => reference::prelu_backward_input(op, ins[0], ins[1], ins[2])?,
            PReluOp::GradWeight(op) => reference::prelu_backward_weight(op, ins[0], ins[1])?,
        }])
    }

    fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        let PReluOp::Forward(op) = *self else {
            return Err(g.no_second_derivative(node));
        };
        let ins = g.forward_inputs(node, 2)?;
        let (x, a) = (ins[0], ins[1]);
        Ok(vec![
            Some(g.add_grad(node, "d0", PReluOp::GradInput(op), &[x, a, dy])?),
            Some(g.add_grad(node, "d1", PReluOp::GradWeight(op), &[x, dy])?),
        ])
    }
}

/// Builder methods.
impl Graph {
    /// PReLU of `x` (`(N, C, ...)`) with its own slopes, the parameter `<name>.weight` of shape
    /// `[op.num_parameters]` (PyTorch's name; `num_parameters` is C or 1). A bad input or slope
    /// count is an `Err` naming the node, and adds nothing to the graph.
    pub fn prelu(&mut self, name: &str, x: Value, op: PRelu) -> Result<Value> {
        let shape = self
            .nodes
            .get(x.node)
            .and_then(|n| n.outputs.get(x.port))
            .map(|o| o.0.clone())
            .ok_or_else(|| Error::Invalid(format!("node {name:?}: input {x:?} does not exist")))?;
        op.layout(&shape).map_err(|e| Error::Shape {
            op: format!("node {name:?}"),
            msg: e.to_string(),
        })?;
        self.add_with_params(name, PReluOp::Forward(op), x, &op.weight_shape(), None)
    }
}
