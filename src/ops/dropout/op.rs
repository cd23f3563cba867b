//! Dropout as a graph op: `[x] -> (y, mask)`, the mask drawn anew every step (seeded by the step
//! counter) and kept as a state for the gradient; identity at inference.

use crate::error::Result;
use crate::graph::{Graph, Op, Out, Primitive, Value};
use crate::launch::Prepared;
use crate::neuron::UnaryOp;
use crate::ops::checks::arity;
use crate::reference::Array;
use crate::tensor::{DType, Tensor};

use super::{Dropout, dropout_mask, gpu, reference};

/// The dropout family's graph ops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DropoutOp {
    /// `[x] -> (y, mask)`; inference: identity.
    Dropout {
        /// Rate and seed.
        op: Dropout,
        /// Whether it drops (training) or is the identity (inference).
        training: bool,
    },
    /// `[mask, dy] -> dx`
    Grad(Dropout),
}

impl Primitive for DropoutOp {
    fn supports_f16(&self) -> bool {
        true
    }

    fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        let name = format!("{self:?}");
        Ok(match self {
            DropoutOp::Dropout { op, .. } => {
                arity(&name, ins, 1, 1)?;
                op.validate()?;
                vec![(ins[0].to_vec(), DType::F32), (ins[0].to_vec(), DType::U32)]
            }
            DropoutOp::Grad(op) => {
                arity(&name, ins, 2, 2)?;
                op.validate()?;
                crate::ops::checks::same(&name, "dy", ins[1], ins[0])?;
                vec![(ins[1].to_vec(), DType::F32)]
            }
        })
    }

    fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        _fused: &[UnaryOp],
        step: u64,
    ) -> Result<Prepared> {
        Ok(Prepared::one(match self {
            DropoutOp::Dropout { op, training: true } => {
                gpu::dropout_launch(op, step, ins[0], outs[0], outs[1])?
            }
            DropoutOp::Dropout {
                training: false, ..
            } => gpu::dropout_inference_launch(ins[0], outs[0])?,
            DropoutOp::Grad(op) => gpu::dropout_backward_launch(op, ins[1], ins[0], outs[0])?,
        }))
    }

    fn folds_grad_neuron(&self) -> bool {
        matches!(self, DropoutOp::Grad(_))
    }

    fn lower_grad_neuron(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        neuron: UnaryOp,
        y: &Tensor,
    ) -> Result<Prepared> {
        let DropoutOp::Grad(op) = self else {
            return Err(crate::graph::cannot_fold(self, neuron));
        };
        let launch = gpu::dropout_backward_out_launch(op, ins[1], ins[0], neuron, y, outs[0])?;
        Ok(Prepared::one(launch))
    }

    fn reference(&self, ins: &[&Array], outs: &[Out], step: u64) -> Result<Vec<Array>> {
        Ok(match self {
            DropoutOp::Dropout { op, training } => {
                let y = reference::dropout_forward(op, step, ins[0], *training)?;
                let mask = dropout_mask(op.seed, step, ins[0].len(), op.rate);
                let mask = mask.iter().map(|&k| k as u8 as f64).collect();
                vec![y, Array::new(&outs[1].0, mask)]
            }
            DropoutOp::Grad(op) => {
                let scale = op.scale();
                let dx = ins[0].data.iter().zip(&ins[1].data);
                vec![Array::new(
                    &outs[0].0,
                    dx.map(|(m, g)| m * g * scale).collect(),
                )]
            }
        })
    }

    fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        Ok(match self {
            DropoutOp::Dropout { op, training: true } => {
                let mask = Value { node, port: 1 };
                vec![Some(g.add_grad(
                    node,
                    "",
                    DropoutOp::Grad(*op),
                    &[mask, dy],
                )?)]
            }
            DropoutOp::Dropout {
                training: false, ..
            } => vec![Some(dy)],
            DropoutOp::Grad(_) => return Err(g.no_second_derivative(node)),
        })
    }

    fn step_params(&self, step: u64, n: usize) -> Option<Vec<u32>> {
        match self {
            DropoutOp::Dropout { op, training: true } => {
                Some(gpu::dropout_params(op, step, n as u32).to_vec())
            }
            _ => None,
        }
    }

    fn for_inference(&self) -> Option<Op> {
        match self {
            DropoutOp::Dropout { op, .. } => Some(
                DropoutOp::Dropout {
                    op: *op,
                    training: false,
                }
                .into(),
            ),
            _ => None,
        }
    }
}

/// Builder methods.
impl Graph {
    /// Dropout in training mode (`Graph::for_inference` turns it off).
    pub fn dropout(&mut self, name: &str, x: Value, op: Dropout) -> Result<Value> {
        self.add(name, DropoutOp::Dropout { op, training: true }, &[x])
    }
}
