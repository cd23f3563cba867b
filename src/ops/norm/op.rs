//! Norms as graph ops. Batch norm: `[x, gamma, beta, running_mean, running_var] -> (y, batch
//! statistics)`, the running statistics (persistent `State` nodes) updated in place in training;
//! instance / group / layer norm: `[x, gamma, beta] -> (y, statistics)`, or `[x] -> (y,
//! statistics)` without the affine parameters (PyTorch's `affine=False` /
//! `elementwise_affine=False`). The statistics are an extra output port that only the gradient
//! reads; y can take one fused neuron.

use crate::error::shape_err;
use crate::error::{Error, Result};
use crate::graph::{Graph, Out, Primitive, Value};
use crate::launch::Prepared;
use crate::neuron::UnaryOp;
use crate::ops::axis::fmt_shape;
use crate::ops::checks::{arity, per_group};
use crate::reference::Array;
use crate::tensor::{DType, Tensor};

use super::gpu::{self, Norm};
use super::{BatchNorm, GroupNorm, InstanceNorm, LayerNorm, reference};

/// The norm family's graph ops: batch norm and the per-sample norms, with their gradients.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NormOp {
    /// `[x, gamma, beta, running_mean, running_var] -> (y, batch stats (2, C))`
    BatchNorm {
        /// eps, momentum, affine.
        op: BatchNorm,
        /// Batch statistics (training) or the running ones (inference).
        training: bool,
    },
    /// `[x, gamma, stats-or-running_mean, running_var?, dy] -> (dx, dgamma, dbeta)`
    BatchNormGrad {
        /// The forward's descriptor.
        op: BatchNorm,
        /// Whether the forward used batch statistics.
        training: bool,
    },
    /// `[x, gamma, beta] -> (y, stats)`
    Norm(Norm),
    /// `[x, gamma, stats, dy] -> (dx, dgamma, dbeta)`
    NormGrad(Norm),
    /// `[x] -> (y, stats)`: the norm without γ and β (no parameters at all).
    NonAffine(Norm),
    /// `[x, stats, dy] -> dx`
    NonAffineGrad(Norm),
}

fn f32(s: &[usize]) -> Out {
    (s.to_vec(), DType::F32)
}

fn ref_forward(n: &Norm, x: &Array, g: &Array, b: &Array) -> Result<Array> {
    match n {
        Norm::Instance(o) => reference::instance_norm(o, x, g, b),
        Norm::Group(o) => reference::group_norm(o, x, g, b),
        Norm::Layer(o) => reference::layer_norm(o, x, g, b),
    }
}

fn ref_backward(n: &Norm, x: &Array, g: &Array, dy: &Array) -> Result<reference::NormGrads> {
    match n {
        Norm::Instance(o) => reference::instance_norm_backward(o, x, g, dy),
        Norm::Group(o) => reference::group_norm_backward(o, x, g, dy),
        Norm::Layer(o) => reference::layer_norm_backward(o, x, g, dy),
    }
}

impl Primitive for NormOp {
    fn supports_f16(&self) -> bool {
        true
    }

    /// The elements of one statistics group (batch norm: a channel's batch × pixels), or of one
    /// affine parameter's γ/β gradient sum, the longer. Batch norm on running statistics sums
    /// nothing in its forward (1: asking it for f16 is harmless, as for its training twin).
    fn accumulation_len(&self, ins: &[&[usize]]) -> Option<usize> {
        let x = ins.first()?;
        let channels = x.get(1).copied().unwrap_or(1);
        Some(match self {
            NormOp::BatchNorm {
                training: false, ..
            } => 1,
            NormOp::BatchNorm { .. } | NormOp::BatchNormGrad { .. } => per_group(x, channels),
            NormOp::Norm(n) | NormOp::NormGrad(n) => {
                let groups = per_group(&n.state_shape(x).ok()?, 2);
                let params = per_group(&n.param_shape(x), 1);
                per_group(x, groups).max(per_group(x, params))
            }
            NormOp::NonAffine(n) | NormOp::NonAffineGrad(n) => {
                per_group(x, per_group(&n.state_shape(x).ok()?, 2))
            }
        })
    }

    /// γ, β, statistics and running statistics stay f32; x and dy follow the precision.
    fn fixed_f32_input(&self, slot: usize) -> bool {
        let dy = match self {
            NormOp::BatchNormGrad { training, .. } => Some(if *training { 3 } else { 4 }),
            NormOp::NormGrad(_) => Some(3),
            NormOp::NonAffineGrad(_) => Some(2),
            _ => None,
        };
        slot != 0 && Some(slot) != dy
    }

    /// Statistics and γ/β gradients stay f32; y and dx follow the precision.
    fn fixed_f32_output(&self, port: usize) -> bool {
        port != 0
    }

    fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        let name = format!("{self:?}");
        Ok(match self {
            NormOp::BatchNorm { op, training } => {
                arity(&name, ins, 5, 5)?;
                op.check(ins[0], ins[1], ins[2])?;
                op.check_running(ins[0], ins[3], ins[4])?;
                if *training {
                    op.check_training(ins[0])?;
                }
                vec![f32(ins[0]), f32(&gpu::batch_norm_state_shape(ins[0]))]
            }
            // The gradients check what they read against x: a wrong dy, gamma or statistics
            // shape would otherwise reach the kernels.
            NormOp::BatchNormGrad { op, training } => {
                let n = if *training { 4 } else { 5 };
                arity(&name, ins, n, n)?;
                let outs = grad_outs(BatchNorm::OP, ins)?;
                op.check(ins[0], ins[1], ins[1])?;
                if *training {
                    let want = gpu::batch_norm_state_shape(ins[0]);
                    expect(BatchNorm::OP, "state", ins[2], &want)?;
                } else {
                    op.check_running(ins[0], ins[2], ins[3])?;
                }
                outs
            }
            NormOp::NormGrad(n) => {
                arity(&name, ins, 4, 4)?;
                let outs = grad_outs(n.name(), ins)?;
                n.check_params(ins[0], ins[1], ins[1])?;
                expect(n.name(), "state", ins[2], &n.state_shape(ins[0])?)?;
                outs
            }
            NormOp::Norm(n) => {
                arity(&name, ins, 3, 3)?;
                n.check_params(ins[0], ins[1], ins[2])?;
                vec![f32(ins[0]), f32(&n.state_shape(ins[0])?)]
            }
            NormOp::NonAffine(n) => {
                arity(&name, ins, 1, 1)?;
                vec![f32(ins[0]), f32(&n.state_shape(ins[0])?)]
            }
            NormOp::NonAffineGrad(n) => {
                arity(&name, ins, 3, 3)?;
                expect(n.name(), "dy", ins[2], ins[0])?;
                expect(n.name(), "state", ins[1], &n.state_shape(ins[0])?)?;
                vec![f32(ins[0])]
            }
        })
    }

    fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        fused: &[UnaryOp],
        _step: u64,
    ) -> Result<Prepared> {
        let epilogue = gpu::Epilogue::neuron(fused.first().copied());
        self.lower_with(ins, outs, epilogue, None)
    }

    /// dy: batch norm's in training, the per-sample norms' (their gradients' last input), where
    /// the device binds the folded dx kernel's storage buffers.
    fn folds_grad_neuron_input(&self, storage_bindings: u32) -> Option<usize> {
        let slot = match self {
            NormOp::BatchNormGrad { training: true, .. } | NormOp::NormGrad(_) => 3,
            NormOp::NonAffineGrad(_) => 2,
            _ => return None,
        };
        (storage_bindings >= gpu::DY_NEURON_BINDINGS).then_some(slot)
    }

    fn lower_grad_neuron_input(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        neuron: UnaryOp,
        y: &Tensor,
    ) -> Result<Prepared> {
        if self.folds_grad_neuron_input(u32::MAX).is_none() {
            return Err(Error::Invalid(format!(
                "{self:?} cannot read dy through the gradient of {neuron:?}"
            )));
        }
        self.lower_with(ins, outs, gpu::Epilogue::default(), Some((neuron, y)))
    }

    /// Every forward: y = neuron(γ·x̂ + β + residual) in the kernel writing y.
    fn adds_residual(&self) -> bool {
        matches!(
            self,
            NormOp::BatchNorm { .. } | NormOp::Norm(_) | NormOp::NonAffine(_)
        )
    }

    fn lower_residual(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        fused: &[UnaryOp],
        residual: &Tensor,
    ) -> Result<Prepared> {
        if !self.adds_residual() {
            return Err(Error::Invalid(format!("{self:?} cannot add a residual")));
        }
        let epilogue = gpu::Epilogue {
            residual: Some(residual),
            neuron: fused.first().copied(),
        };
        self.lower_with(ins, outs, epilogue, None)
    }

    /// States the reference does not expose are zeros (only the gradient op reads them, and its
    /// reference recomputes from x).
    fn reference(&self, ins: &[&Array], outs: &[Out], _step: u64) -> Result<Vec<Array>> {
        let zeros = |k: usize| Array::zeros(&outs[k].0);
        Ok(match self {
            NormOp::BatchNorm { op, training: true } => {
                let r = reference::batch_norm_train(op, ins[0], ins[1], ins[2], ins[3], ins[4])?;
                let mut st = r.mean.data.clone();
                st.extend(&r.var.data);
                vec![r.y, Array::new(&outs[1].0, st)]
            }
            NormOp::BatchNorm {
                op,
                training: false,
            } => vec![
                reference::batch_norm_infer(op, ins[0], ins[1], ins[2], ins[3], ins[4])?,
                zeros(1),
            ],
            NormOp::BatchNormGrad { op, training } => {
                let g = if *training {
                    reference::batch_norm_train_backward(op, ins[0], ins[1], ins[3])?
                } else {
                    reference::batch_norm_infer_backward(
                        op, ins[0], ins[1], ins[2], ins[3], ins[4],
                    )?
                };
                vec![g.dx, g.dgamma, g.dbeta]
            }
            NormOp::Norm(n) => vec![ref_forward(n, ins[0], ins[1], ins[2])?, zeros(1)],
            NormOp::NormGrad(n) => {
                let g = ref_backward(n, ins[0], ins[1], ins[3])?;
                vec![g.dx, g.dgamma, g.dbeta]
            }
            // Without γ, β: the affine norm at γ = 1, β = 0.
            NormOp::NonAffine(n) => {
                let (one, zero) = unit_affine(n, ins[0]);
                vec![ref_forward(n, ins[0], &one, &zero)?, zeros(1)]
            }
            NormOp::NonAffineGrad(n) => {
                let (one, _) = unit_affine(n, ins[0]);
                vec![ref_backward(n, ins[0], &one, ins[2])?.dx]
            }
        })
    }

    fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        let x = g.forward_inputs(
            node,
            match self {
                NormOp::BatchNorm { .. } => 5,
                NormOp::NonAffine(_) => 1,
                _ => 2,
            },
        )?;
        let state = Value { node, port: 1 };
        let port = |v: Value, p: usize| {
            Some(Value {
                node: v.node,
                port: p,
            })
        };
        Ok(match self {
            NormOp::BatchNorm { op, training } => {
                let ins = if *training {
                    vec![x[0], x[1], state, dy]
                } else {
                    vec![x[0], x[1], x[3], x[4], dy]
                };
                let grad = NormOp::BatchNormGrad {
                    op: *op,
                    training: *training,
                };
                let d = g.add_grad(node, "", grad, &ins)?;
                // Running statistics are not trained: no gradient flows to them.
                vec![port(d, 0), port(d, 1), port(d, 2), None, None]
            }
            NormOp::Norm(n) => {
                let d = g.add_grad(node, "", NormOp::NormGrad(*n), &[x[0], x[1], state, dy])?;
                vec![port(d, 0), port(d, 1), port(d, 2)]
            }
            NormOp::NonAffine(n) => {
                let d = g.add_grad(node, "", NormOp::NonAffineGrad(*n), &[x[0], state, dy])?;
                vec![Some(d)]
            }
            _ => return Err(g.no_second_derivative(node)),
        })
    }

    fn fusable_neurons(&self, port: usize) -> usize {
        // On y only: the statistics saved for the gradient are of the input and unaffected.
        usize::from(
            matches!(
                self,
                NormOp::BatchNorm { .. } | NormOp::Norm(_) | NormOp::NonAffine(_)
            ) && port == 0,
        )
    }

    fn for_inference(&self) -> Option<crate::graph::Op> {
        match self {
            NormOp::BatchNorm { op, .. } => Some(
                NormOp::BatchNorm {
                    op: *op,
                    training: false,
                }
                .into(),
            ),
            _ => None,
        }
    }
}

impl NormOp {
    /// The launches of any norm op: a forward with its `epilogue` (residual, neuron), a
    /// training backward reading dy through `neuron`'s derivative when one is folded.
    fn lower_with(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        epilogue: gpu::Epilogue,
        neuron: gpu::DyNeuron,
    ) -> Result<Prepared> {
        let (g, b) = (ins.get(1).copied(), ins.get(2).copied());
        Ok(match self {
            NormOp::BatchNorm { op, training: true } => gpu::batch_norm_train_epilogue_launch(
                op, ins[0], g, b, ins[3], ins[4], outs[0], outs[1], epilogue,
            )?,
            NormOp::BatchNorm {
                op,
                training: false,
            } => Prepared::one(gpu::batch_norm_infer_epilogue_launch(
                op, ins[0], g, b, ins[3], ins[4], outs[0], epilogue,
            )?),
            NormOp::BatchNormGrad { op, training: true } => {
                gpu::batch_norm_train_backward_neuron_launch(
                    op,
                    ins[0],
                    g,
                    ins[2],
                    ins[3],
                    neuron,
                    outs[0],
                    Some(outs[1]),
                    Some(outs[2]),
                )?
            }
            NormOp::BatchNormGrad {
                op,
                training: false,
            } => Prepared {
                launches: gpu::batch_norm_infer_backward_launch(
                    op,
                    ins[0],
                    g,
                    ins[2],
                    ins[3],
                    ins[4],
                    outs[0],
                    Some(outs[1]),
                    Some(outs[2]),
                )?,
                scratch: vec![],
            },
            NormOp::Norm(n) => {
                gpu::norm_epilogue_launch(n, ins[0], g, b, outs[0], outs[1], epilogue)?
            }
            NormOp::NormGrad(n) => gpu::norm_backward_neuron_launch(
                n,
                ins[0],
                g,
                ins[2],
                ins[3],
                neuron,
                outs[0],
                Some(outs[1]),
                Some(outs[2]),
            )?,
            NormOp::NonAffine(n) => {
                gpu::norm_epilogue_launch(n, ins[0], None, None, outs[0], outs[1], epilogue)?
            }
            NormOp::NonAffineGrad(n) => gpu::norm_backward_neuron_launch(
                n, ins[0], None, ins[1], ins[2], neuron, outs[0], None, None,
            )?,
        })
    }
}

/// γ = 1 and β = 0 of the shape x calls for (the reference of the norms without them).
fn unit_affine(n: &Norm, x: &Array) -> (Array, Array) {
    let p = n.param_shape(&x.shape);
    let one = Array::new(&p, vec![1.0; p.iter().product()]);
    (one, Array::zeros(&p))
}

/// `[x, ..., dy] -> (dx, dgamma, dbeta)` shapes, dy checked against x.
fn grad_outs(op: &str, ins: &[&[usize]]) -> Result<Vec<Out>> {
    expect(op, "dy", ins[ins.len() - 1], ins[0])?;
    Ok(vec![f32(ins[0]), f32(ins[1]), f32(ins[1])])
}

/// Errors unless `got == want`, worded as the launches word it.
fn expect(op: &str, what: &str, got: &[usize], want: &[usize]) -> Result<()> {
    if got != want {
        let (got, want) = (fmt_shape(got), fmt_shape(want));
        return shape_err(op, format!("{what} {got} does not match {want} expected"));
    }
    Ok(())
}

/// Builder methods. Norm layers get `<name>.weight` / `<name>.bias` params (gamma, beta) and batch
/// norm also `<name>.running_mean` / `<name>.running_var` states, as PyTorch names them.
impl Graph {
    /// Batch norm over the channels of (N, C, ...) in training mode (batch statistics).
    pub fn batch_norm(&mut self, name: &str, x: Value, op: BatchNorm) -> Result<Value> {
        let s = self.shape(x)?;
        let c = *s.get(1).ok_or_else(|| Error::Shape {
            op: format!("node {name:?}"),
            msg: format!("batch norm needs (N, C, ...), got {s:?}"),
        })?;
        let op = NormOp::BatchNorm { op, training: true };
        self.atomic(|g| {
            let gamma = g.param(&format!("{name}.weight"), &[c])?;
            let beta = g.param(&format!("{name}.bias"), &[c])?;
            let rm = g.state(&format!("{name}.running_mean"), &[c])?;
            let rv = g.state(&format!("{name}.running_var"), &[c])?;
            g.add(name, op, &[x, gamma, beta, rm, rv])
        })
    }

    /// Checks `n` against x first (a bad x is named as such, not as a bad parameter shape).
    fn affine_norm(&mut self, name: &str, x: Value, n: Norm) -> Result<Value> {
        let s = self.shape(x)?;
        n.state_shape(s)
            .map_err(|e| e.context(format!("node {name:?}")))?;
        let p = n.param_shape(s);
        self.atomic(|g| {
            let gamma = g.param(&format!("{name}.weight"), &p)?;
            let beta = g.param(&format!("{name}.bias"), &p)?;
            g.add(name, NormOp::Norm(n), &[x, gamma, beta])
        })
    }

    /// Adds an instance norm of `x` (N, C, *) with parameters `{name}.weight` and `{name}.bias` (C).
    pub fn instance_norm(&mut self, name: &str, x: Value, op: InstanceNorm) -> Result<Value> {
        self.affine_norm(name, x, op.into())
    }

    /// Adds a group norm of `x` (N, C, *) with parameters `{name}.weight` and `{name}.bias` (C).
    pub fn group_norm(&mut self, name: &str, x: Value, op: GroupNorm) -> Result<Value> {
        self.affine_norm(name, x, op.into())
    }

    /// Adds a layer norm over the last `dims` axes of `x`, with parameters `{name}.weight` and `{name}.bias` of those axes' shape.
    pub fn layer_norm(&mut self, name: &str, x: Value, op: LayerNorm) -> Result<Value> {
        self.affine_norm(name, x, op.into())
    }

    /// Adds an instance, group or layer norm of `x`, with its affine parameters γ, β
    /// (`{name}.weight`, `{name}.bias`) when `affine`, or none at all (`y = (x − μ)/√(σ² +
    /// eps)`), as PyTorch's `InstanceNorm2d(affine=False)` — that one's default; our
    /// `instance_norm` is affine — or `LayerNorm(elementwise_affine=False)`.
    pub fn norm(
        &mut self,
        name: &str,
        x: Value,
        op: impl Into<Norm>,
        affine: bool,
    ) -> Result<Value> {
        let n = op.into();
        if affine {
            return self.affine_norm(name, x, n);
        }
        let s = self.shape(x)?;
        n.state_shape(s)
            .map_err(|e| e.context(format!("node {name:?}")))?;
        self.add(name, NormOp::NonAffine(n), &[x])
    }
}
