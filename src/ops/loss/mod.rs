//! The loss family.
//!
//! Loss descriptors, after MPS's `MPSCNNLossDescriptor`: the loss function, its options and the
//! reduction over the batch, with the shape and label checks.
//!
//! Logits / predictions are (N, *): sample n's row is the D = ∏(*) values of `x[n]`, flattened
//! (for the softmax losses those are the classes). Labels are either dense, with the shape of
//! the logits, or one class index per sample (cross-entropies only). Per-sample losses:
//!
//! | kind | per-sample loss over the row (t = labels, t' = smoothed labels) |
//! |---|---|
//! | softmax CE | `−Σ_c w_c·t'_c·log_softmax(x)_c`, `t' = (1 − ls)·t + ls/D` |
//! | sigmoid CE | `mean_j [max(x,0) − x·t' + ln(1 + e^{−abs(x)})]`, `t' = (1 − ls)·t + ls/2` |
//! | categorical CE | `−Σ_c w_c·t'_c·ln p_c` on probabilities p (terms with `w·t' = 0` skipped) |
//! | MSE / MAE | `mean_j (x − t)²` / `mean_j abs(x − t)` |
//! | Huber | `mean_j h(x − t)`, `h(e) = e²/2` if `abs(e) ≤ δ` else `δ·(abs(e) − δ/2)` |
//! | hinge | `mean_j max(0, 1 − t·x)`, t in {−1, +1} |
//! | KL divergence | `Σ_{t_j > 0} t_j·(ln t_j − ln p_j)` on probabilities p (Keras) |
//! | cosine distance | `1 − (x·t)/(‖x‖·‖t‖)`, norms `√max(Σ·², 1e-12)` (Keras's l2-normalise) |
//!
//! Distribution losses sum over the row, elementwise ones average over it (as Keras), so a
//! `Mean` reduction of MSE equals PyTorch's `MSELoss()`. Each per-sample loss is then multiplied
//! by its optional per-sample weight and reduced. Gradient conventions at kinks: MAE's sign(0)
//! = 0; hinge at `t·x = 1` → 0. With class weights, `Mean` still divides by N (as MPS), not by
//! the summed weights of the labelled classes as PyTorch's `CrossEntropyLoss(weight=…)` does.

pub mod gpu;
mod op;
pub mod reference;
pub(crate) mod samples;

pub use op::LossOp;

use super::axis::fmt_shape;
use crate::error::{Result, attr_err, shape_err};

/// The loss function and its options.
#[derive(Clone, Debug, PartialEq)]
pub enum LossKind {
    /// Softmax over the row then cross-entropy; `class_weights` (D) scale each class's term.
    SoftmaxCrossEntropy {
        /// Label smoothing `ls` in [0, 1], as PyTorch's `label_smoothing`.
        label_smoothing: f32,
        /// Weight per class (D), as PyTorch's `weight`.
        class_weights: Option<Vec<f32>>,
    },
    /// Independent logistic per element, stable in the logits.
    SigmoidCrossEntropy {
        /// Label smoothing `ls` in [0, 1].
        label_smoothing: f32,
    },
    /// Cross-entropy of probabilities (already softmaxed) against labels.
    CategoricalCrossEntropy {
        /// Label smoothing `ls` in [0, 1].
        label_smoothing: f32,
        /// Weight per class (D).
        class_weights: Option<Vec<f32>>,
    },
    /// Mean squared error over the row (PyTorch's `MSELoss`).
    MeanSquaredError,
    /// Mean absolute error over the row (PyTorch's `L1Loss`).
    MeanAbsoluteError,
    /// Huber loss over the row (PyTorch's `HuberLoss`).
    Huber {
        /// Where the loss turns from quadratic to linear, `δ > 0`.
        delta: f32,
    },
    /// Hinge loss, labels in {−1, +1}.
    Hinge,
    /// KL divergence of probabilities from the labels (Keras's `KLDivergence`).
    KlDivergence,
    /// Cosine distance between the row and its labels.
    CosineDistance,
}

/// How per-sample losses become the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// The (N) vector of weighted per-sample losses.
    None,
    /// `Σ w_n·l_n`, shape (1).
    Sum,
    /// `Σ w_n·l_n / N`, shape (1).
    Mean,
    /// `Σ w_n·l_n / #{n : w_n ≠ 0}` (N without weights; 0 if every weight is 0), as MPS.
    SumByNonZeroWeights,
}

/// The shape of the labels, for checking before the data exists (e.g. on the GPU side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelsShape<'a> {
    /// One class index per sample: this many.
    Indices(usize),
    /// Dense labels of this shape.
    Dense(&'a [usize]),
}

/// A loss function with its reduction.
#[derive(Clone, Debug, PartialEq)]
pub struct Loss {
    /// The loss function and its options.
    pub kind: LossKind,
    /// How per-sample losses are reduced.
    pub reduction: Reduction,
}

impl Loss {
    /// The loss, validated: `Err(Attr)` on an invalid option (e.g. smoothing outside [0, 1]).
    pub fn new(kind: LossKind, reduction: Reduction) -> Result<Self> {
        let l = Loss { kind, reduction };
        l.validate()?;
        Ok(l)
    }

    /// Plain softmax cross-entropy (no smoothing, no class weights).
    pub fn softmax_cross_entropy(reduction: Reduction) -> Self {
        let kind = LossKind::SoftmaxCrossEntropy {
            label_smoothing: 0.0,
            class_weights: None,
        };
        Loss { kind, reduction }
    }

    /// The op name used in errors.
    pub fn name(&self) -> &'static str {
        match self.kind {
            LossKind::SoftmaxCrossEntropy { .. } => "softmax_cross_entropy",
            LossKind::SigmoidCrossEntropy { .. } => "sigmoid_cross_entropy",
            LossKind::CategoricalCrossEntropy { .. } => "categorical_cross_entropy",
            LossKind::MeanSquaredError => "mse",
            LossKind::MeanAbsoluteError => "mae",
            LossKind::Huber { .. } => "huber",
            LossKind::Hinge => "hinge",
            LossKind::KlDivergence => "kl_divergence",
            LossKind::CosineDistance => "cosine_distance",
        }
    }

    /// Class-index labels make sense only for the categorical cross-entropies.
    pub fn accepts_class_indices(&self) -> bool {
        matches!(
            self.kind,
            LossKind::SoftmaxCrossEntropy { .. } | LossKind::CategoricalCrossEntropy { .. }
        )
    }

    /// The per-class weights, if any.
    pub fn class_weights(&self) -> Option<&[f32]> {
        match &self.kind {
            LossKind::SoftmaxCrossEntropy { class_weights, .. }
            | LossKind::CategoricalCrossEntropy { class_weights, .. } => class_weights.as_deref(),
            _ => None,
        }
    }

    /// Label smoothing in [0, 1]; class weights finite and >= 0; Huber's δ > 0.
    pub fn validate(&self) -> Result<()> {
        let op = self.name();
        let ls = match self.kind {
            LossKind::SoftmaxCrossEntropy {
                label_smoothing, ..
            }
            | LossKind::SigmoidCrossEntropy { label_smoothing }
            | LossKind::CategoricalCrossEntropy {
                label_smoothing, ..
            } => label_smoothing,
            _ => 0.0,
        };
        if !(0.0..=1.0).contains(&ls) {
            return attr_err(op, format!("label_smoothing = {ls} must be in [0, 1]"));
        }
        if let Some(w) = self.class_weights()
            && let Some(bad) = w.iter().find(|v| !(v.is_finite() && **v >= 0.0))
        {
            return attr_err(op, format!("class weight {bad} must be finite and >= 0"));
        }
        if let LossKind::Huber { delta } = self.kind
            && !(delta.is_finite() && delta > 0.0)
        {
            return attr_err(op, format!("delta = {delta} must be finite and > 0"));
        }
        Ok(())
    }

    /// Checks logits (N, *) against the labels and the optional per-sample weights (N).
    /// Returns (N, D).
    pub fn check(
        &self,
        logits: &[usize],
        labels: LabelsShape,
        weights: Option<&[usize]>,
    ) -> Result<(usize, usize)> {
        self.validate()?;
        let op = self.name();
        if logits.is_empty() {
            return shape_err(op, "logits must have rank >= 1 (N, ...), got a scalar ()");
        }
        let (n, d) = (logits[0], logits[1..].iter().product::<usize>());
        match labels {
            LabelsShape::Dense(l) if l != logits => {
                return shape_err(
                    op,
                    format!(
                        "labels {} do not match logits {}",
                        fmt_shape(l),
                        fmt_shape(logits)
                    ),
                );
            }
            LabelsShape::Indices(_) if !self.accepts_class_indices() => {
                return attr_err(
                    op,
                    format!(
                        "class-index labels need a categorical cross-entropy; {op} takes dense labels like logits {}",
                        fmt_shape(logits)
                    ),
                );
            }
            LabelsShape::Indices(len) if len != n => {
                return shape_err(
                    op,
                    format!(
                        "labels ({len}) class indices do not match logits {} with N = {n}",
                        fmt_shape(logits)
                    ),
                );
            }
            _ => {}
        }
        if let Some(w) = weights
            && w != [n]
        {
            return shape_err(
                op,
                format!(
                    "weights {} do not match ({n}), N of logits {}",
                    fmt_shape(w),
                    fmt_shape(logits)
                ),
            );
        }
        if let Some(cw) = self.class_weights()
            && cw.len() != d
        {
            return shape_err(
                op,
                format!(
                    "class_weights ({}) do not match the {d} classes of logits {}",
                    cw.len(),
                    fmt_shape(logits)
                ),
            );
        }
        Ok((n, d))
    }

    /// Every class index must be below `classes` (host-side check before upload).
    pub fn check_class_indices(&self, indices: &[usize], classes: usize) -> Result<()> {
        if let Some((n, &k)) = indices.iter().enumerate().find(|&(_, &k)| k >= classes) {
            return attr_err(
                self.name(),
                format!("class index {k} of sample {n} out of range for {classes} classes"),
            );
        }
        Ok(())
    }

    /// (N) for `Reduction::None`, else (1).
    pub fn output_shape(&self, n: usize) -> Vec<usize> {
        if self.reduction == Reduction::None {
            vec![n]
        } else {
            vec![1]
        }
    }
}
