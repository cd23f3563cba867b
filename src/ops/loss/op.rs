//! Losses as graph ops: `[logits, labels, weights?] -> (loss, per-sample loss (N))` — the
//! per-sample loss kept as a second output, as MPS's loss labels hold it after a step.

use crate::error::{Error, Result, shape_err};
use crate::graph::{Graph, Out, OutputCheck, Primitive, Value};
use crate::launch::Prepared;
use crate::neuron::UnaryOp;
use crate::ops::axis::fmt_shape;
use crate::ops::checks::arity;
use crate::reference::Array;
use crate::tensor::{DType, Tensor};

use super::gpu::{self, GpuLoss};
use super::{LabelsShape, Loss, Reduction, reference};

/// The loss family's graph ops: a loss and its gradient w.r.t. the logits.
#[derive(Clone, Debug, PartialEq)]
pub enum LossOp {
    /// `[logits, labels, weights?] -> (loss (1) or (N) for Reduction::None, per-sample loss
    /// (N))`. Labels shaped like the logits are dense; labels of shape (N) are u32 class indices.
    Loss(Loss),
    /// `[logits, labels, weights?, dloss] -> dlogits`
    Grad(Loss),
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

/// Labels that are neither the logits' shape nor (N) fit no loss: a shape error saying what
/// would fit, before `Loss::check` reads them as class indices (and names the wrong cause).
fn check_labels_shape(l: &Loss, logits: &[usize], labels: &[usize]) -> Result<()> {
    if labels == logits || logits.is_empty() {
        return Ok(()); // dense, or a scalar Loss::check refuses
    }
    let (op, got, want) = (l.name(), fmt_shape(labels), fmt_shape(logits));
    let per_sample = labels.len() == 1;
    if l.accepts_class_indices() {
        if per_sample {
            return Ok(()); // class indices: Loss::check compares their count with N
        }
        return shape_err(
            op,
            format!(
                "labels {got} fit neither form: dense labels have the logits' shape {want}, \
                 class-index labels are ({}) u32 (`input_u32`)",
                logits[0]
            ),
        );
    }
    let why = if per_sample {
        " (labels of one value per sample are class indices, which only the softmax and \
         categorical cross-entropies take)"
    } else {
        ""
    };
    shape_err(
        op,
        format!(
            "the loss compares labels with logits element by element: labels {got} and \
             logits {want} must have the same shape{why}"
        ),
    )
}

fn ref_labels<'a>(
    logits: &Array,
    labels: &'a Array,
    idx: &'a mut Vec<usize>,
) -> reference::Labels<'a> {
    if labels.shape == logits.shape {
        reference::Labels::Dense(labels)
    } else {
        *idx = labels.data.iter().map(|&v| v as usize).collect();
        reference::Labels::Indices(idx)
    }
}

impl Primitive for LossOp {
    fn supports_f16(&self) -> bool {
        true
    }

    /// Labels, per-sample weights and the upstream gradient of the loss stay f32.
    fn fixed_f32_input(&self, slot: usize) -> bool {
        slot >= 1
    }

    /// The losses are f32; the logits' gradient follows the logits.
    fn fixed_f32_output(&self, _port: usize) -> bool {
        matches!(self, LossOp::Loss(_))
    }

    fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        let name = format!("{self:?}");
        Ok(match self {
            LossOp::Loss(l) => {
                arity(&name, ins, 2, 3)?;
                check_labels_shape(l, ins[0], ins[1])?;
                let (n, _) = l.check(ins[0], labels_shape(ins[0], ins[1]), ins.get(2).copied())?;
                vec![f32(&l.output_shape(n)), f32(&[n])]
            }
            LossOp::Grad(l) => {
                arity(&name, ins, 3, 4)?;
                check_labels_shape(l, ins[0], ins[1])?;
                let w = if ins.len() == 4 { Some(ins[2]) } else { None };
                let (n, _) = l.check(ins[0], labels_shape(ins[0], ins[1]), w)?;
                // dloss is the gradient of the loss output: (1), or (N) unreduced.
                let (dloss, want) = (ins[ins.len() - 1], l.output_shape(n));
                if dloss != want.as_slice() {
                    let (got, want) = (fmt_shape(dloss), fmt_shape(&want));
                    return shape_err(l.name(), format!("dloss {got} must be {want}"));
                }
                vec![f32(ins[0])]
            }
        })
    }

    fn index_bound(&self, port: usize, ins: &[&[usize]]) -> Option<usize> {
        let (LossOp::Loss(l) | LossOp::Grad(l)) = self;
        let (logits, labels) = (ins.first()?, ins.get(1)?);
        match (port, labels_shape(logits, labels)) {
            (1, ls @ LabelsShape::Indices(_)) => l.check(logits, ls, None).ok().map(|(_, d)| d),
            _ => None,
        }
    }

    fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        _fused: &[UnaryOp],
        _step: u64,
    ) -> Result<Prepared> {
        let launches = match self {
            LossOp::Loss(l) => {
                let k = GpuLoss::new(ins[0].device(), l)?;
                let w = ins.get(2).copied();
                if l.reduction == Reduction::None {
                    // Port 0 is the per-sample loss itself: written as well as port 1 (the
                    // kernel has one per-sample output).
                    let mut v = gpu::loss_forward_launch(&k, ins[0], ins[1], w, outs[0], None)?;
                    v.extend(gpu::loss_forward_launch(
                        &k, ins[0], ins[1], w, outs[1], None,
                    )?);
                    v
                } else {
                    gpu::loss_forward_launch(&k, ins[0], ins[1], w, outs[1], Some(outs[0]))?
                }
            }
            LossOp::Grad(l) => {
                let k = GpuLoss::new(ins[0].device(), l)?;
                let w = if ins.len() == 4 { Some(ins[2]) } else { None };
                let dloss = ins[ins.len() - 1];
                vec![gpu::loss_backward_launch(
                    &k, ins[0], ins[1], w, dloss, outs[0],
                )?]
            }
        };
        Ok(Prepared {
            launches,
            scratch: vec![],
        })
    }

    /// A reducing loss: its one-workgroup reduction reads every per-sample loss.
    fn checks_outputs(&self) -> bool {
        matches!(self, LossOp::Loss(l) if l.reduction != Reduction::None)
    }

    fn lower_checked(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        check: &OutputCheck,
    ) -> Result<Prepared> {
        let LossOp::Loss(l) = self else {
            return Err(Error::Invalid(format!("{self:?} cannot check its outputs")));
        };
        let k = GpuLoss::new(ins[0].device(), l)?;
        let w = ins.get(2).copied();
        let launches =
            gpu::loss_forward_checked_launches(&k, ins[0], ins[1], w, outs[1], outs[0], check)?;
        Ok(Prepared {
            launches,
            scratch: vec![],
        })
    }

    fn reference(&self, ins: &[&Array], _outs: &[Out], _step: u64) -> Result<Vec<Array>> {
        let mut idx = Vec::new();
        let labels = ref_labels(ins[0], ins[1], &mut idx);
        Ok(match self {
            LossOp::Loss(l) => {
                let w = ins.get(2).copied();
                let out = reference::loss_forward(l, ins[0], &labels, w)?;
                let per_sample = Loss {
                    kind: l.kind.clone(),
                    reduction: Reduction::None,
                };
                let per = reference::loss_forward(&per_sample, ins[0], &labels, w)?;
                vec![out, per]
            }
            LossOp::Grad(l) => {
                let w = if ins.len() == 4 { Some(ins[2]) } else { None };
                let dloss = ins[ins.len() - 1];
                vec![reference::loss_backward(l, ins[0], &labels, w, dloss)?]
            }
        })
    }

    fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        let LossOp::Loss(l) = self else {
            return Err(g.no_second_derivative(node));
        };
        let x = g.forward_inputs(node, 2)?;
        let mut ins = x.clone();
        ins.push(dy);
        // Labels and weights are data: no gradient flows to them.
        let mut v = vec![
            Some(g.add_grad(node, "", LossOp::Grad(l.clone()), &ins)?),
            None,
        ];
        if x.len() == 3 {
            v.push(None);
        }
        Ok(v)
    }
}

/// Builder methods.
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
        self.add(name, LossOp::Loss(op), &ins)
    }
}
