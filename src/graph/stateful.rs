//! Graph ops that keep a state between the forward and its gradient: batch norm (batch statistics;
//! running statistics updated in place), instance/group/layer norm (statistics), dropout (the mask)
//! and softmax (its output). The state is an extra output port that only the gradient op reads.

use super::op::Out;
use super::{Graph, Op, Value};
use crate::error::{Error, Result};
use crate::kernels::conv::Prepared;
use crate::kernels::elementwise::UnaryOp;
use crate::kernels::{dropout, norm, softmax};
use crate::ops::dropout::Dropout;
use crate::ops::norm::{BatchNorm, GroupNorm, InstanceNorm, LayerNorm};
use crate::ops::softmax::Softmax;
use crate::reference::{self, Array};
use crate::tensor::{DType, Tensor};

#[derive(Clone, Debug, PartialEq)]
pub enum Stateful {
    /// `[x, gamma, beta, running_mean, running_var] -> (y, batch stats (2, C))`; in training mode
    /// the running statistics (persistent `State` nodes) are updated in place.
    BatchNorm { op: BatchNorm, training: bool },
    /// `[x, gamma, stats-or-running_mean, running_var?, dy] -> (dx, dgamma, dbeta)`
    BatchNormGrad { op: BatchNorm, training: bool },
    /// `[x, gamma, beta] -> (y, stats)`
    Norm(norm::Norm),
    /// `[x, gamma, stats, dy] -> (dx, dgamma, dbeta)`
    NormGrad(norm::Norm),
    /// `[x] -> (y, mask)`; the mask changes every step (seeded by the step counter). Inference: identity.
    Dropout { op: Dropout, training: bool },
    /// `[mask, dy] -> dx`
    DropoutGrad(Dropout),
    /// `[x] -> y`
    Softmax(Softmax),
    /// `[y, dy] -> dx`
    SoftmaxGrad(Softmax),
}

fn f32(s: &[usize]) -> Out {
    (s.to_vec(), DType::F32)
}

fn norm_ref_fwd(n: &norm::Norm, x: &Array, g: &Array, b: &Array) -> Result<Array> {
    match n {
        norm::Norm::Instance(o) => reference::norm::instance_norm(o, x, g, b),
        norm::Norm::Group(o) => reference::norm::group_norm(o, x, g, b),
        norm::Norm::Layer(o) => reference::norm::layer_norm(o, x, g, b),
    }
}

fn norm_ref_bwd(
    n: &norm::Norm,
    x: &Array,
    g: &Array,
    dy: &Array,
) -> Result<reference::norm::NormGrads> {
    match n {
        norm::Norm::Instance(o) => reference::norm::instance_norm_backward(o, x, g, dy),
        norm::Norm::Group(o) => reference::norm::group_norm_backward(o, x, g, dy),
        norm::Norm::Layer(o) => reference::norm::layer_norm_backward(o, x, g, dy),
    }
}

impl Stateful {
    pub fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        Ok(match self {
            Stateful::BatchNorm { op, training } => {
                op.check(ins[0], ins[1], ins[2])?;
                op.check_running(ins[0], ins[3], ins[4])?;
                if *training {
                    op.check_training(ins[0])?;
                }
                vec![f32(ins[0]), f32(&norm::batch_norm_state_shape(ins[0]))]
            }
            Stateful::BatchNormGrad { .. } | Stateful::NormGrad(_) => {
                let dy = ins[ins.len() - 1];
                if dy != ins[0] {
                    return Err(Error::Shape {
                        op: format!("{self:?}"),
                        msg: format!("dy {dy:?} vs x {:?}", ins[0]),
                    });
                }
                vec![f32(ins[0]), f32(ins[1]), f32(ins[1])]
            }
            Stateful::Norm(n) => vec![f32(ins[0]), f32(&n.state_shape(ins[0])?)],
            Stateful::Dropout { op, .. } => {
                op.validate()?;
                vec![f32(ins[0]), (ins[0].to_vec(), DType::U32)]
            }
            Stateful::DropoutGrad(_) => vec![f32(ins[1])],
            Stateful::Softmax(s) => {
                s.check(ins[0])?;
                vec![f32(ins[0])]
            }
            Stateful::SoftmaxGrad(_) => vec![f32(ins[0])],
        })
    }

    /// Lowers to launches; `post` (norms only) is a neuron fused onto the output.
    pub fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        step: u64,
        post: &[UnaryOp],
    ) -> Result<Prepared> {
        let fused = post.first().copied();
        if post.len() > 1
            || (fused.is_some() && !matches!(self, Stateful::BatchNorm { .. } | Stateful::Norm(_)))
        {
            return Err(Error::Invalid(format!(
                "{self:?} cannot take the fused post-ops {post:?}"
            )));
        }
        let launches = match self {
            Stateful::BatchNorm { op, training: true } => norm::batch_norm_train_launch(
                op,
                ins[0],
                Some(ins[1]),
                Some(ins[2]),
                ins[3],
                ins[4],
                outs[0],
                outs[1],
                fused,
            )?,
            Stateful::BatchNorm {
                op,
                training: false,
            } => {
                vec![norm::batch_norm_infer_post_launch(
                    op,
                    ins[0],
                    Some(ins[1]),
                    Some(ins[2]),
                    ins[3],
                    ins[4],
                    outs[0],
                    fused,
                )?]
            }
            Stateful::BatchNormGrad { op, training: true } => {
                norm::batch_norm_train_backward_launch(
                    op,
                    ins[0],
                    Some(ins[1]),
                    ins[2],
                    ins[3],
                    outs[0],
                    Some(outs[1]),
                    Some(outs[2]),
                )?
            }
            Stateful::BatchNormGrad {
                op,
                training: false,
            } => norm::batch_norm_infer_backward_launch(
                op,
                ins[0],
                Some(ins[1]),
                ins[2],
                ins[3],
                ins[4],
                outs[0],
                Some(outs[1]),
                Some(outs[2]),
            )?,
            Stateful::Norm(n) => vec![norm::norm_post_launch(
                n,
                ins[0],
                Some(ins[1]),
                Some(ins[2]),
                outs[0],
                outs[1],
                fused,
            )?],
            Stateful::NormGrad(n) => norm::norm_backward_launch(
                n,
                ins[0],
                Some(ins[1]),
                ins[2],
                ins[3],
                outs[0],
                Some(outs[1]),
                Some(outs[2]),
            )?,
            Stateful::Dropout { op, training: true } => {
                vec![dropout::dropout_launch(op, step, ins[0], outs[0], outs[1])?]
            }
            Stateful::Dropout {
                training: false, ..
            } => vec![dropout::dropout_inference_launch(ins[0], outs[0])?],
            Stateful::DropoutGrad(op) => vec![dropout::dropout_backward_launch(
                op, ins[1], ins[0], outs[0],
            )?],
            Stateful::Softmax(s) => vec![softmax::softmax_launch(s, ins[0], outs[0])?],
            Stateful::SoftmaxGrad(s) => vec![softmax::softmax_backward_launch(
                s, ins[0], ins[1], outs[0],
            )?],
        };
        Ok(Prepared {
            launches,
            scratch: vec![],
        })
    }

    /// For ops whose launch depends on the step counter: its parameter words at `step` for an
    /// input of `n` elements (the compiled graph rewrites them before every step).
    pub fn step_params(&self, step: u64, n: usize) -> Option<Vec<u32>> {
        match self {
            Stateful::Dropout { op, training: true } => {
                Some(dropout::dropout_params(op, step, n as u32).to_vec())
            }
            _ => None,
        }
    }

    /// CPU reference; `step` seeds dropout. States the reference does not expose are zeros (only
    /// the gradient op reads them, and its reference recomputes from x).
    pub fn eval_reference(&self, ins: &[&Array], outs: &[Out], step: u64) -> Result<Vec<Array>> {
        let zeros = |k: usize| Array::zeros(&outs[k].0);
        Ok(match self {
            Stateful::BatchNorm { op, training: true } => {
                let r =
                    reference::norm::batch_norm_train(op, ins[0], ins[1], ins[2], ins[3], ins[4])?;
                let mut st = r.mean.data.clone();
                st.extend(&r.var.data);
                vec![r.y, Array::new(&outs[1].0, st)]
            }
            Stateful::BatchNorm {
                op,
                training: false,
            } => {
                vec![
                    reference::norm::batch_norm_infer(op, ins[0], ins[1], ins[2], ins[3], ins[4])?,
                    zeros(1),
                ]
            }
            Stateful::BatchNormGrad { op, training } => {
                let g = if *training {
                    reference::norm::batch_norm_train_backward(op, ins[0], ins[1], ins[3])?
                } else {
                    reference::norm::batch_norm_infer_backward(
                        op, ins[0], ins[1], ins[2], ins[3], ins[4],
                    )?
                };
                vec![g.dx, g.dgamma, g.dbeta]
            }
            Stateful::Norm(n) => vec![norm_ref_fwd(n, ins[0], ins[1], ins[2])?, zeros(1)],
            Stateful::NormGrad(n) => {
                let g = norm_ref_bwd(n, ins[0], ins[1], ins[3])?;
                vec![g.dx, g.dgamma, g.dbeta]
            }
            Stateful::Dropout { op, training } => {
                let y = reference::dropout::dropout_forward(op, step, ins[0], *training)?;
                let mask = crate::ops::dropout::dropout_mask(op.seed, step, ins[0].len(), op.rate);
                vec![
                    y,
                    Array::new(&outs[1].0, mask.iter().map(|&k| k as u8 as f64).collect()),
                ]
            }
            Stateful::DropoutGrad(op) => {
                let scale = op.scale();
                vec![Array::new(
                    &outs[0].0,
                    ins[0]
                        .data
                        .iter()
                        .zip(&ins[1].data)
                        .map(|(m, g)| m * g * scale)
                        .collect(),
                )]
            }
            Stateful::Softmax(s) => vec![reference::softmax::softmax_forward(s, ins[0])?],
            Stateful::SoftmaxGrad(s) => {
                vec![reference::softmax::softmax_backward(s, ins[0], ins[1])?]
            }
        })
    }

    pub fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        let x = g.nodes[node].inputs.clone();
        let base = format!("grad/{}", g.nodes[node].name);
        let state = Value { node, port: 1 };
        let mut add = |s: Stateful, ins: &[Value]| -> Result<Value> {
            let name = g.fresh(base.clone());
            g.add(&name, Op::Stateful(s), ins)
        };
        let port = |v: Value, p: usize| {
            Some(Value {
                node: v.node,
                port: p,
            })
        };
        Ok(match self {
            Stateful::BatchNorm { op, training } => {
                let ins = if *training {
                    vec![x[0], x[1], state, dy]
                } else {
                    vec![x[0], x[1], x[3], x[4], dy]
                };
                let d = add(
                    Stateful::BatchNormGrad {
                        op: *op,
                        training: *training,
                    },
                    &ins,
                )?;
                // Running statistics are not trained: no gradient flows to them.
                vec![port(d, 0), port(d, 1), port(d, 2), None, None]
            }
            Stateful::Norm(n) => {
                let d = add(Stateful::NormGrad(*n), &[x[0], x[1], state, dy])?;
                vec![port(d, 0), port(d, 1), port(d, 2)]
            }
            Stateful::Dropout { op, training: true } => {
                vec![Some(add(Stateful::DropoutGrad(*op), &[state, dy])?)]
            }
            Stateful::Dropout {
                training: false, ..
            } => vec![Some(dy)],
            Stateful::Softmax(s) => vec![Some(add(
                Stateful::SoftmaxGrad(*s),
                &[Value { node, port: 0 }, dy],
            )?)],
            _ => {
                return Err(Error::Invalid(format!(
                    "node {:?}: {self:?} has no gradient (second derivatives are not supported)",
                    g.nodes[node].name
                )));
            }
        })
    }

    /// The op an inference graph uses instead (dropout off, batch norm on running statistics).
    pub fn for_inference(&self) -> Stateful {
        match self {
            Stateful::BatchNorm { op, .. } => Stateful::BatchNorm {
                op: *op,
                training: false,
            },
            Stateful::Dropout { op, .. } => Stateful::Dropout {
                op: *op,
                training: false,
            },
            other => other.clone(),
        }
    }
}

/// Builder methods. Norm layers get `<name>.weight` / `<name>.bias` params (gamma, beta) and batch
/// norm also `<name>.running_mean` / `<name>.running_var` states, as PyTorch names them.
impl Graph {
    /// Batch norm over the channels of (N, C, ...) in training mode (batch statistics).
    pub fn batch_norm(&mut self, name: &str, x: Value, op: BatchNorm) -> Result<Value> {
        let c = *self.shape(x).get(1).ok_or_else(|| Error::Shape {
            op: format!("node {name:?}"),
            msg: format!("batch norm needs (N, C, ...), got {:?}", self.shape(x)),
        })?;
        let gamma = self.param(&format!("{name}.weight"), &[c])?;
        let beta = self.param(&format!("{name}.bias"), &[c])?;
        let rm = self.state(&format!("{name}.running_mean"), &[c])?;
        let rv = self.state(&format!("{name}.running_var"), &[c])?;
        self.add(
            name,
            Op::Stateful(Stateful::BatchNorm { op, training: true }),
            &[x, gamma, beta, rm, rv],
        )
    }

    fn affine_norm(&mut self, name: &str, x: Value, n: norm::Norm, p: Vec<usize>) -> Result<Value> {
        let gamma = self.param(&format!("{name}.weight"), &p)?;
        let beta = self.param(&format!("{name}.bias"), &p)?;
        self.add(name, Op::Stateful(Stateful::Norm(n)), &[x, gamma, beta])
    }

    pub fn instance_norm(&mut self, name: &str, x: Value, op: InstanceNorm) -> Result<Value> {
        let c = self.shape(x).get(1).copied().unwrap_or(0);
        self.affine_norm(name, x, op.into(), vec![c])
    }

    pub fn group_norm(&mut self, name: &str, x: Value, op: GroupNorm) -> Result<Value> {
        let c = self.shape(x).get(1).copied().unwrap_or(0);
        self.affine_norm(name, x, op.into(), vec![c])
    }

    pub fn layer_norm(&mut self, name: &str, x: Value, op: LayerNorm) -> Result<Value> {
        let s = self.shape(x);
        let p = s[s.len().saturating_sub(op.dims)..].to_vec();
        self.affine_norm(name, x, op.into(), p)
    }

    pub fn dropout(&mut self, name: &str, x: Value, op: Dropout) -> Result<Value> {
        self.add(
            name,
            Op::Stateful(Stateful::Dropout { op, training: true }),
            &[x],
        )
    }

    pub fn softmax(&mut self, name: &str, x: Value, op: Softmax) -> Result<Value> {
        self.add(name, Op::Stateful(Stateful::Softmax(op)), &[x])
    }
}
