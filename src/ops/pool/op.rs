//! Pooling as graph ops: windowed max / average pooling (max keeps its argmax as a state for the
//! gradient) and global average pooling, with their gradients.

use crate::error::Result;
use crate::graph::{Graph, Out, Primitive, Value};
use crate::launch::Prepared;
use crate::neuron::UnaryOp;
use crate::ops::checks::{arity, same};
use crate::reference::Array;
use crate::tensor::{DType, Tensor};

use super::{GlobalAvgPool, Pool2d, PoolKind, gpu, reference};

/// The pooling family's graph ops and their gradients.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PoolOp {
    /// `[x] -> (y, argmax state for max pooling)`
    Pool(Pool2d),
    /// `[dy, x, argmax?] -> dx`
    PoolGrad(Pool2d),
    /// `[x] -> y (N, C, 1, 1)`
    GlobalAvg,
    /// `[dy, x] -> dx`
    GlobalAvgGrad,
}

fn f32(s: Vec<usize>) -> Out {
    (s, DType::F32)
}

impl Primitive for PoolOp {
    fn supports_f16(&self) -> bool {
        true
    }

    fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        Ok(match self {
            PoolOp::Pool(p) => {
                arity(p.name(), ins, 1, 1)?;
                let out = p.out_shape(ins[0])?;
                let mut outs = vec![f32(out.clone())];
                if p.kind == PoolKind::Max {
                    outs.push((out, DType::U32));
                }
                outs
            }
            PoolOp::PoolGrad(p) => {
                arity(p.name(), ins, 2, 3)?;
                same(p.name(), "output gradient", ins[0], &p.out_shape(ins[1])?)?;
                vec![f32(ins[1].to_vec())]
            }
            PoolOp::GlobalAvg => {
                arity("global_avg_pool", ins, 1, 1)?;
                vec![f32(GlobalAvgPool.out_shape(ins[0])?)]
            }
            PoolOp::GlobalAvgGrad => {
                arity("global_avg_pool", ins, 2, 2)?;
                let want = GlobalAvgPool.out_shape(ins[1])?;
                same("global_avg_pool", "output gradient", ins[0], &want)?;
                vec![f32(ins[1].to_vec())]
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
            PoolOp::Pool(p) => gpu::forward_launch(p, ins[0], outs[0], outs.get(1).copied())?,
            PoolOp::PoolGrad(p) => {
                gpu::backward_launch(p, ins[1].shape(), ins[0], ins.get(2).copied(), outs[0])?
            }
            PoolOp::GlobalAvg => gpu::global_avg_forward_launch(&GlobalAvgPool, ins[0], outs[0])?,
            PoolOp::GlobalAvgGrad => {
                gpu::global_avg_backward_launch(&GlobalAvgPool, ins[1].shape(), ins[0], outs[0])?
            }
        }))
    }

    /// The gradients take the forward input x (input 1) for its shape alone.
    fn reads_input(&self, slot: usize) -> bool {
        !matches!(self, PoolOp::PoolGrad(_) | PoolOp::GlobalAvgGrad) || slot != 1
    }

    fn folds_grad_neuron(&self) -> bool {
        matches!(self, PoolOp::PoolGrad(p) if p.kind == PoolKind::Max)
    }

    /// `y` is the forward pool's output, which holds the neuron's output wherever the gradient
    /// reaches (`gpu::max_backward_out_launch`).
    fn lower_grad_neuron(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        neuron: UnaryOp,
        y: &Tensor,
    ) -> Result<Prepared> {
        let (PoolOp::PoolGrad(p), Some(arg)) = (self, ins.get(2)) else {
            return Err(crate::graph::cannot_fold(self, neuron));
        };
        let launch = gpu::max_backward_out_launch(p, ins[0], arg, neuron, y, outs[0])?;
        Ok(Prepared::one(launch))
    }

    fn reference(&self, ins: &[&Array], _outs: &[Out], _step: u64) -> Result<Vec<Array>> {
        Ok(match self {
            PoolOp::Pool(p) => {
                let (y, arg) = reference::forward(p, ins[0])?;
                let mut outs = vec![y.clone()];
                if let Some(a) = arg {
                    outs.push(Array::new(&y.shape, a.iter().map(|&i| i as f64).collect()));
                }
                outs
            }
            PoolOp::PoolGrad(p) => {
                let arg: Option<Vec<usize>> = ins
                    .get(2)
                    .map(|a| a.data.iter().map(|&v| v as usize).collect());
                vec![reference::backward(
                    p,
                    &ins[1].shape,
                    ins[0],
                    arg.as_deref(),
                )?]
            }
            PoolOp::GlobalAvg => vec![reference::global_avg_forward(&GlobalAvgPool, ins[0])?],
            PoolOp::GlobalAvgGrad => vec![reference::global_avg_backward(
                &GlobalAvgPool,
                &ins[1].shape,
                ins[0],
            )?],
        })
    }

    fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        let x = g.forward_inputs(node, 1)?[0];
        Ok(vec![Some(match self {
            PoolOp::Pool(p) => {
                let mut ins = vec![dy, x];
                if p.kind == PoolKind::Max {
                    ins.push(Value { node, port: 1 });
                }
                g.add_grad(node, "d0", PoolOp::PoolGrad(*p), &ins)?
            }
            PoolOp::GlobalAvg => g.add_grad(node, "d0", PoolOp::GlobalAvgGrad, &[dy, x])?,
            _ => return Err(g.no_second_derivative(node)),
        })])
    }
}

/// Builder methods.
impl Graph {
    /// Windowed max or average pooling.
    pub fn pool(&mut self, name: &str, x: Value, op: Pool2d) -> Result<Value> {
        self.add(name, PoolOp::Pool(op), &[x])
    }

    /// Mean over H and W: (N, C, H, W) -> (N, C, 1, 1).
    pub fn global_avg_pool(&mut self, name: &str, x: Value) -> Result<Value> {
        self.add(name, PoolOp::GlobalAvg, &[x])
    }
}
