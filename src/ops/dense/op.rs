//! Fully connected layers as graph ops: `[x, w, b?] -> y` on the GEMM core with its neuron fused
//! into the epilogue, and the data and weight gradients (the bias gradient is the conv family's).

use crate::error::{Error, Result};
use crate::graph::{Graph, Out, Primitive, Value};
use crate::launch::Prepared;
use crate::neuron::UnaryOp;
use crate::ops::checks::{arity, check_bias, per_group, same};
use crate::ops::conv::ConvOp;
use crate::reference::Array;
use crate::tensor::{DType, Tensor};

use super::{FullyConnected, gpu, reference};

const NAME: &str = "fully_connected";

/// The fully connected family's graph ops: forward and its data and weight gradients.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DenseOp {
    /// `[x, w, b?] -> y`
    Forward(FullyConnected),
    /// `[w, dy, x] -> dx`
    GradData(FullyConnected),
    /// `[x, dy] -> dw`
    GradWeight(FullyConnected),
}

impl Primitive for DenseOp {
    fn supports_f16(&self) -> bool {
        true
    }

    /// Forward: in_features; data gradient: out_features; weight gradient: the batch rows.
    fn accumulation_len(&self, ins: &[&[usize]]) -> Option<usize> {
        Some(match self {
            DenseOp::Forward(d) => d.in_features.max(1),
            DenseOp::GradData(d) => d.out_features.max(1),
            DenseOp::GradWeight(d) => per_group(ins.first()?, d.in_features),
        })
    }

    fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        let s = match self {
            DenseOp::Forward(d) => {
                arity(NAME, ins, 2, 3)?;
                same(NAME, "weight", ins[1], &d.weight_shape())?;
                check_bias(NAME, d.bias, ins, d.out_features)?;
                d.out_shape(ins[0])?
            }
            DenseOp::GradData(d) => {
                arity(NAME, ins, 3, 3)?;
                same(NAME, "output gradient", ins[1], &d.out_shape(ins[2])?)?;
                ins[2].to_vec()
            }
            DenseOp::GradWeight(d) => {
                arity(NAME, ins, 2, 2)?;
                same(NAME, "output gradient", ins[1], &d.out_shape(ins[0])?)?;
                d.weight_shape()
            }
        };
        Ok(vec![(s, DType::F32)])
    }

    fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        fused: &[UnaryOp],
        _step: u64,
    ) -> Result<Prepared> {
        Ok(match self {
            DenseOp::Forward(d) => gpu::forward_fused_launches(
                d,
                ins[0],
                ins[1],
                ins.get(2).copied(),
                outs[0],
                fused.first().copied(),
            )?,
            DenseOp::GradData(d) => {
                gpu::backward_data_launches(d, ins[2].shape(), ins[0], ins[1], outs[0])?
            }
            DenseOp::GradWeight(d) => gpu::backward_weights_launches(d, ins[0], ins[1], outs[0])?,
        })
    }

    /// The gradients' GEMMs add into their output; the forward (its epilogue adds the bias) is
    /// not offered.
    fn accumulates(&self) -> bool {
        !matches!(self, DenseOp::Forward(_))
    }

    fn lower_accumulate(&self, ins: &[&Tensor], outs: &[&Tensor]) -> Result<Prepared> {
        match self {
            DenseOp::GradData(d) => {
                gpu::backward_data_into(d, ins[2].shape(), ins[0], ins[1], outs[0], true)
            }
            DenseOp::GradWeight(d) => gpu::backward_weights_into(d, ins[0], ins[1], outs[0], true),
            DenseOp::Forward(_) => Err(Error::Invalid(format!("{self:?} cannot add into y"))),
        }
    }

    fn reference(&self, ins: &[&Array], _outs: &[Out], _step: u64) -> Result<Vec<Array>> {
        Ok(vec![match self {
            DenseOp::Forward(d) => reference::forward(d, ins[0], ins[1], ins.get(2).copied())?,
            DenseOp::GradData(d) => reference::backward_data(d, &ins[2].shape, ins[0], ins[1])?,
            DenseOp::GradWeight(d) => reference::backward_weights(d, ins[0], ins[1])?,
        }])
    }

    fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        let DenseOp::Forward(f) = *self else {
            return Err(g.no_second_derivative(node));
        };
        let x = g.forward_inputs(node, 2)?;
        let mut v = vec![
            Some(g.add_grad(node, "d0", DenseOp::GradData(f), &[x[1], dy, x[0]])?),
            Some(g.add_grad(node, "d1", DenseOp::GradWeight(f), &[x[0], dy])?),
        ];
        if x.len() == 3 {
            v.push(Some(g.add_grad(node, "d2", ConvOp::BiasGrad, &[dy])?));
        }
        Ok(v)
    }

    fn fusable_neurons(&self, port: usize) -> usize {
        usize::from(matches!(self, DenseOp::Forward(_)) && port == 0)
    }
}

/// Builder methods; weights are `param` nodes `<name>.weight` (out, in) and `<name>.bias`.
impl Graph {
    /// Fully connected on (N, K) or on images (N, C, H, W) flattened.
    pub fn dense(&mut self, name: &str, x: Value, op: FullyConnected) -> Result<Value> {
        op.out_shape(self.shape(x)?).map_err(|e| Error::Shape {
            op: format!("node {name:?}"),
            msg: e.to_string(),
        })?;
        let bias = op.bias.then_some(op.out_features);
        self.add_with_params(name, DenseOp::Forward(op), x, &op.weight_shape(), bias)
    }
}
