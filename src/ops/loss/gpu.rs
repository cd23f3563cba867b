//! Losses on the GPU: the per-sample loss (N), its reduction (1), and the gradient w.r.t. the
//! logits, for every [`LossKind`] and [`Reduction`] of `ops::loss`.
//! WGSL: `wgsl/loss.wgsl`. CPU reference: `reference`.
//!
//! Labels are a tensor of either dtype: u32 (N) means class indices, f32 shaped like the logits
//! means dense labels (one-hot or probabilities). As MPS does with the labels' companion tensor,
//! the forward always writes the weighted per-sample losses `w_n·l_n` (N) — the whole output
//! for `Reduction::None`, the input of the reduction otherwise.
//!
//! Class indices out of range: the eager [`loss_forward`] / [`loss_backward`] download the labels
//! and return an `Err` naming the sample before anything runs. The prepared launches cannot see
//! the data (it changes every step), so the kernels poison such a sample instead — NaN loss, NaN
//! gradient row — rather than read another sample's values; the graph checks labels on the host
//! where it feeds them (`Loss::check_class_indices`).

use crate::device::Device;
use crate::error::{Error, Result, shape_err};
use crate::graph::OutputCheck;
use crate::launch::{FINITE, Launch, PRELUDE, Shader, f, grid_1d};
use crate::ops::axis::fmt_shape;
use crate::ops::eager;
use crate::ops::loss::{LabelsShape, Loss, LossKind, LossOp, Reduction};
use crate::tensor::{DType, Tensor};

pub(crate) static SHADER: Shader = Shader {
    name: "loss",
    user_code: false,
    parts: &[PRELUDE, FINITE, include_str!("../../../wgsl/loss.wgsl")],
};

/// A loss prepared for one device: the descriptor plus its class weights uploaded once (D), so
/// a compiled graph replays its launches without touching the host.
#[derive(Clone, Debug)]
pub struct GpuLoss {
    /// The descriptor.
    pub loss: Loss,
    class_weights: Option<Tensor>,
}

impl GpuLoss {
    /// Validates `loss` and uploads its class weights.
    pub fn new(device: &Device, loss: &Loss) -> Result<GpuLoss> {
        loss.validate()?;
        let class_weights = match loss.class_weights() {
            Some(w) if !w.is_empty() => Some(Tensor::from_f32(device, &[w.len()], w)?),
            _ => None,
        };
        Ok(GpuLoss {
            loss: loss.clone(),
            class_weights,
        })
    }
}

/// The eager forward's results.
#[derive(Clone, Debug)]
pub struct LossOutput {
    /// `(N)` for `Reduction::None` (the same tensor as `per_sample`), else `(1)`.
    pub loss: Tensor,
    /// `(N)` weighted per-sample losses `w_n·l_n`.
    pub per_sample: Tensor,
}

/// (kind code, smoothing, smoothing classes K, Huber δ) as the shader reads them.
fn kind_code(kind: &LossKind, d: usize) -> (u32, f32, f32, f32) {
    use LossKind::*;
    let d = d.max(1) as f32;
    match *kind {
        SoftmaxCrossEntropy {
            label_smoothing, ..
        } => (0, label_smoothing, d, 0.0),
        SigmoidCrossEntropy { label_smoothing } => (1, label_smoothing, 2.0, 0.0),
        CategoricalCrossEntropy {
            label_smoothing, ..
        } => (2, label_smoothing, d, 0.0),
        MeanSquaredError => (3, 0.0, 1.0, 0.0),
        MeanAbsoluteError => (4, 0.0, 1.0, 0.0),
        Huber { delta } => (5, 0.0, 1.0, delta),
        Hinge => (6, 0.0, 1.0, 0.0),
        KlDivergence { .. } => (7, 0.0, 1.0, 0.0),
        CosineDistance => (8, 0.0, 1.0, 0.0),
    }
}

fn reduction_code(r: Reduction) -> u32 {
    match r {
        Reduction::None => 0,
        Reduction::Sum => 1,
        Reduction::Mean => 2,
        Reduction::SumByNonZeroWeights => 3,
    }
}

/// The kernels' uniform, `Params` in `wgsl/loss.wgsl`, field for field.
struct Params {
    n: u32,
    d: u32,
    kind: u32,
    flags: u32,
    reduction: u32,
    /// `loss_reduce_checked`'s non-finite check ([`OutputCheck`]); 0 for every other entry.
    check_flag: u32,
    check_slot: u32,
    check_code: u32,
    ls: f32,
    ls_k: f32,
    delta: f32,
    sum_scale: f32,
}

impl Params {
    /// The uniform's words, in the WGSL struct's order.
    fn words(&self) -> [u32; 12] {
        [
            self.n,
            self.d,
            self.kind,
            self.flags,
            self.reduction,
            self.check_flag,
            self.check_slot,
            self.check_code,
            f(self.ls),
            f(self.ls_k),
            f(self.delta),
            f(self.sum_scale),
        ]
    }
}

/// Shape and dtype checks shared by forward and backward; returns N and the kernels' uniform.
fn check(
    k: &GpuLoss,
    logits: &Tensor,
    labels: &Tensor,
    weights: Option<&Tensor>,
) -> Result<(usize, Params)> {
    let op = k.loss.name();
    logits.expect_dtype(op, DType::F32)?;
    let ls = match labels.dtype {
        DType::U32 if labels.shape.len() == 1 => LabelsShape::Indices(labels.shape[0]),
        DType::U32 => {
            return shape_err(
                op,
                format!(
                    "u32 labels are class indices (N), got {} for logits {}",
                    fmt_shape(&labels.shape),
                    fmt_shape(&logits.shape)
                ),
            );
        }
        // One f32 per sample where class indices fit: the labels were meant as indices.
        DType::F32
            if k.loss.accepts_class_indices()
                && labels.shape.len() == 1
                && logits.shape.len() > 1
                && logits.shape.first() == labels.shape.first() =>
        {
            return shape_err(
                op,
                format!(
                    "labels {} are f32, one value per sample: class-index labels must be u32 \
                     (declare them with `input_u32` and write them with `set_u32`; as a \
                     tensor, `Tensor::from_u32`), dense labels have the logits' shape {}",
                    fmt_shape(&labels.shape),
                    fmt_shape(&logits.shape)
                ),
            );
        }
        DType::F32 => LabelsShape::Dense(&labels.shape),
        DType::F16 => {
            return Err(Error::Invalid(format!(
                "{op}: labels must be u32 class indices or f32, got f16 {}",
                fmt_shape(&labels.shape)
            )));
        }
    };
    if let Some(w) = weights {
        w.expect_dtype(op, DType::F32)?;
    }
    let (n, d) = k
        .loss
        .check(&logits.shape, ls, weights.map(|w| &w.shape[..]))?;
    let (code, smooth, smooth_k, delta) = kind_code(&k.loss.kind, d);
    let (log_input, log_target) = match k.loss.kind {
        LossKind::KlDivergence {
            log_input,
            log_target,
        } => (log_input, log_target),
        _ => (false, false),
    };
    let flags = matches!(ls, LabelsShape::Indices(_)) as u32
        | (weights.is_some() as u32) << 1
        | (k.class_weights.is_some() as u32) << 2
        | (log_input as u32) << 3
        | (log_target as u32) << 4;
    let params = Params {
        n: n as u32,
        d: d as u32,
        kind: code,
        flags,
        reduction: reduction_code(k.loss.reduction),
        check_flag: 0,
        check_slot: 0,
        check_code: 0,
        ls: smooth,
        ls_k: smooth_k,
        delta,
        sum_scale: k.loss.sum_scale(d) as f32,
    };
    Ok((n, params))
}

fn expect_shape(op: &str, what: &str, t: &Tensor, want: &[usize]) -> Result<()> {
    t.expect_dtype(op, DType::F32)?;
    if t.shape != want {
        return shape_err(
            op,
            format!("{what} {} must be {}", fmt_shape(&t.shape), fmt_shape(want)),
        );
    }
    Ok(())
}

/// Prepares the forward: `per_sample` (N) ← `w_n·l_n`, then for a reducing loss `reduced` (1) ←
/// the reduction of it. `logits` (N, *); `labels` u32 (N) or f32 like the logits; `weights` (N).
/// `reduced` is required exactly when the reduction is not `None`.
pub fn loss_forward_launch(
    k: &GpuLoss,
    logits: &Tensor,
    labels: &Tensor,
    weights: Option<&Tensor>,
    per_sample: &Tensor,
    reduced: Option<&Tensor>,
) -> Result<Vec<Launch>> {
    forward_launches(k, logits, labels, weights, per_sample, reduced, None)
}

/// [`loss_forward_launch`] of a reducing loss whose reduction also runs `check` on both outputs
/// (`loss_reduce_checked`): the compiler's two non-finite scans of them, in its one workgroup.
pub(crate) fn loss_forward_checked_launches(
    k: &GpuLoss,
    logits: &Tensor,
    labels: &Tensor,
    weights: Option<&Tensor>,
    per_sample: &Tensor,
    reduced: &Tensor,
    check: &OutputCheck,
) -> Result<Vec<Launch>> {
    let r = Some(reduced);
    forward_launches(k, logits, labels, weights, per_sample, r, Some(check))
}

fn forward_launches(
    k: &GpuLoss,
    logits: &Tensor,
    labels: &Tensor,
    weights: Option<&Tensor>,
    per_sample: &Tensor,
    reduced: Option<&Tensor>,
    output_check: Option<&OutputCheck>,
) -> Result<Vec<Launch>> {
    let op = k.loss.name();
    let (n, mut params) = check(k, logits, labels, weights)?;
    expect_shape(op, "per-sample output", per_sample, &[n])?;
    let dev = &logits.device;
    // Absent optional inputs are flagged off; bind an f32 tensor in their place (never read;
    // f32 as they are, whatever the logits' storage).
    let w = weights.unwrap_or(per_sample).buffer();
    let cw = k.class_weights.as_ref().unwrap_or(per_sample).buffer();
    let mut launches = vec![dev.launch(
        &SHADER,
        "loss_forward",
        &[],
        &params.words(),
        &[logits.buffer(), labels.buffer(), w, cw, per_sample.buffer()],
        grid_1d(n, 1),
    )?];
    match (k.loss.reduction, reduced) {
        (Reduction::None, None) => {}
        (Reduction::None, Some(_)) => {
            return Err(Error::Invalid(format!(
                "{op}: reduction None outputs only the per-sample loss; got a reduced output too"
            )));
        }
        (r, None) => {
            return Err(Error::Invalid(format!(
                "{op}: reduction {r:?} needs a (1) output for the reduced loss"
            )));
        }
        (_, Some(out)) => {
            expect_shape(op, "reduced output", out, &[1])?;
            let mut bindings = vec![per_sample.buffer(), labels.buffer(), w, cw, out.buffer()];
            let entry = match output_check {
                Some(c) => {
                    params.check_flag = c.flag;
                    params.check_slot = c.slot;
                    params.check_code = c.code;
                    bindings.push(c.health.buffer());
                    "loss_reduce_checked"
                }
                None => "loss_reduce",
            };
            let words = &params.words();
            launches.push(dev.launch(&SHADER, entry, &[], words, &bindings, [1, 1, 1])?);
        }
    }
    Ok(launches)
}

/// Prepares `dx` (the logits' shape) ← d(loss output)/d(logits) · `dloss`, with `dloss` shaped
/// like the loss output: (N) for `Reduction::None`, else (1). Labels and weights are constants.
pub fn loss_backward_launch(
    k: &GpuLoss,
    logits: &Tensor,
    labels: &Tensor,
    weights: Option<&Tensor>,
    dloss: &Tensor,
    dx: &Tensor,
) -> Result<Launch> {
    let op = k.loss.name();
    let (n, params) = check(k, logits, labels, weights)?;
    expect_shape(op, "dloss", dloss, &k.loss.output_shape(n))?;
    expect_shape(op, "dx", dx, &logits.shape)?;
    let w = weights.unwrap_or(dloss).buffer();
    let cw = k.class_weights.as_ref().unwrap_or(dloss).buffer();
    logits.device.launch(
        &SHADER,
        "loss_backward",
        &[],
        &params.words(),
        &[
            logits.buffer(),
            labels.buffer(),
            w,
            cw,
            dloss.buffer(),
            dx.buffer(),
        ],
        grid_1d(n, 1),
    )
}

/// Host-side check of u32 class-index labels (a download): an `Err` naming the loss, the sample,
/// the index and the logits' shape. Dense labels pass.
pub fn check_labels(loss: &Loss, logits: &Tensor, labels: &Tensor) -> Result<()> {
    if labels.dtype != DType::U32 {
        return Ok(());
    }
    let d = logits.shape.iter().skip(1).product();
    let idx: Vec<usize> = labels.to_u32()?.iter().map(|&v| v as usize).collect();
    loss.check_class_indices(&idx, d).map_err(|e| match e {
        Error::Attr { op, msg } => Error::Attr {
            op,
            msg: format!("{msg} (logits {})", fmt_shape(&logits.shape)),
        },
        e => e,
    })
}

/// The loss of `logits` against `labels` (u32 indices (N) or f32 like the logits), with optional
/// per-sample `weights` (N). Index labels are range-checked on the host first.
pub fn loss_forward(
    loss: &Loss,
    logits: &Tensor,
    labels: &Tensor,
    weights: Option<&Tensor>,
) -> Result<LossOutput> {
    check(
        &GpuLoss::new(&logits.device, loss)?,
        logits,
        labels,
        weights,
    )?;
    check_labels(loss, logits, labels)?;
    let mut ins = vec![logits, labels];
    ins.extend(weights);
    let (reduced, per_sample) = eager::result_and_state(eager::run(
        &logits.device,
        LossOp::Loss(loss.clone()),
        &ins,
    )?)?;
    let per_sample =
        per_sample.ok_or_else(|| Error::Invalid("the loss op gave no per-sample loss".into()))?;
    Ok(LossOutput {
        loss: match loss.reduction {
            Reduction::None => per_sample.clone(),
            _ => reduced,
        },
        per_sample,
    })
}

/// The gradient w.r.t. the logits for upstream `dloss` ((N) for `Reduction::None`, else (1)).
pub fn loss_backward(
    loss: &Loss,
    logits: &Tensor,
    labels: &Tensor,
    weights: Option<&Tensor>,
    dloss: &Tensor,
) -> Result<Tensor> {
    check(
        &GpuLoss::new(&logits.device, loss)?,
        logits,
        labels,
        weights,
    )?;
    check_labels(loss, logits, labels)?;
    let mut ins = vec![logits, labels];
    ins.extend(weights);
    ins.push(dloss);
    eager::run_first(&logits.device, LossOp::Grad(loss.clone()), &ins)
}
