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
//! | KL divergence | `Σ_j T_j·(ln T_j − ln P_j)`: input `x = ln P` (`log_input`, PyTorch) or P; target `t = ln T` (`log_target`) or T, terms with T = 0 skipped |
//! | cosine distance | `1 − (x·t)/(‖x‖·‖t‖)`, norms `√max(Σ·², 1e-12)` (Keras's l2-normalise) |
//!
//! Distribution losses (the cross-entropies except sigmoid CE, KL, cosine) sum over the row;
//! elementwise ones (sigmoid CE, MSE, MAE, Huber, hinge: [`LossKind::is_elementwise`]) average
//! over it. Each per-sample loss `l_n` is then multiplied by its optional per-sample weight `w_n`
//! and reduced ([`Reduction`]):
//!
//! - `Sum` adds `w_n·l_n`, times D for elementwise kinds: the sum over every element, as
//!   PyTorch's `reduction='sum'`.
//! - `Mean` divides `Σ w_n·l_n` by `Σ_n c_n`, where `c_n` is the class weight of sample n's
//!   target when the labels are class indices and the loss has class weights, else 1 (so N; dense
//!   labels divide by N, as PyTorch does for probability targets):
//!   PyTorch's `CrossEntropyLoss(weight=…)` / `NLLLoss(weight=…)`, and for elementwise kinds
//!   the mean over every element (PyTorch's `reduction='mean'`).
//! - `SumByNonZeroWeights` divides by the number of non-zero per-sample weights (MPS), which
//!   the training loop uses to ignore padded samples.
//!
//! Where PyTorch differs (the rest matches `torch.nn.functional` to rounding):
//!
//! | here | PyTorch |
//! |---|---|
//! | `None` gives one loss per sample (N); elementwise kinds give the row mean | `reduction='none'` gives (N) for the cross-entropies, the elementwise (N, *) tensor for `mse_loss`, `l1_loss`, `huber_loss`, `binary_cross_entropy_with_logits`, `kl_div` (our value is its `.mean(1)`, or `.sum(1)` for KL) |
//! | KL `Mean` is `Σ/N` | `kl_div(reduction='batchmean')`; its `'mean'` divides by every element |
//! | `KlDivergence { log_input: false, .. }` takes probabilities (Keras) | `kl_div` always takes log-probabilities |
//! | KL targets `T ≤ 0` (without `log_target`) add nothing | `T < 0` gives NaN |
//! | a `Mean` whose divisor is 0 (every target's class weight 0) is 0 | NaN |
//! | per-sample weights, `SumByNonZeroWeights`, label smoothing on sigmoid CE, hinge, cosine distance (Keras's) | no direct equivalent |
//!
//! Gradient conventions at kinks: MAE's sign(0) = 0; hinge at `t·x = 1` → 0.

pub mod gpu;
mod op;
pub mod reference;
pub(crate) mod samples;

pub use op::LossOp;

use super::axis::fmt_shape;
use crate::error::{Result, attr_err, shape_err};

/// The loss function and its options (formulas and PyTorch's equivalents: the [module
/// documentation](crate::ops::loss)).
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
    /// KL divergence of the predictions from the labels: `Σ T·(ln T − ln P)`. With
    /// `log_input` the input is `ln P` (PyTorch's `kl_div`, see [`LossKind::kl_div`]), else P
    /// itself (Keras's `KLDivergence`); with `log_target` the labels are `ln T`.
    KlDivergence {
        /// The input holds log-probabilities (PyTorch), not probabilities (Keras).
        log_input: bool,
        /// The labels hold log-probabilities (PyTorch's `log_target`).
        log_target: bool,
    },
    /// Cosine distance between the row and its labels.
    CosineDistance,
}

impl LossKind {
    /// PyTorch's `kl_div(input, target, log_target=…)`: the input holds log-probabilities.
    pub fn kl_div(log_target: bool) -> LossKind {
        LossKind::KlDivergence {
            log_input: true,
            log_target,
        }
    }

    /// Whether the per-sample loss is the mean of an elementwise term over the row (sigmoid
    /// CE, MSE, MAE, Huber, hinge); `Reduction::Sum` then scales by D to sum every element.
    pub fn is_elementwise(&self) -> bool {
        matches!(
            self,
            LossKind::SigmoidCrossEntropy { .. }
                | LossKind::MeanSquaredError
                | LossKind::MeanAbsoluteError
                | LossKind::Huber { .. }
                | LossKind::Hinge
        )
    }
}

/// How per-sample losses become the output (see the module documentation for PyTorch's
/// equivalents).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// The (N) vector of weighted per-sample losses `w_n·l_n` (port 0 and port 1 alike).
    None,
    /// `Σ w_n·l_n`, times D for elementwise kinds (the sum over every element), shape (1).
    Sum,
    /// `Σ w_n·l_n / Σ_n c_n`, shape (1): `c_n` the class weight of sample n's target (class-index
    /// labels with class weights, as PyTorch), else 1, so the divisor is N.
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

/// A loss function with its reduction. It computes what `torch.nn.functional`'s losses do,
/// except where the table in the [module documentation](crate::ops::loss) says otherwise (the per-sample
/// output of `None`, KL's `Mean`, a zero divisor, the options PyTorch lacks).
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

    /// `kind` averaged over the batch (PyTorch's `reduction='mean'`), e.g.
    /// `Loss::mean(LossKind::MeanSquaredError)` for `nn.MSELoss()`.
    pub fn mean(kind: LossKind) -> Self {
        Loss {
            kind,
            reduction: Reduction::Mean,
        }
    }

    /// `kind` summed (PyTorch's `reduction='sum'`).
    pub fn sum(kind: LossKind) -> Self {
        Loss {
            kind,
            reduction: Reduction::Sum,
        }
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
            LossKind::KlDivergence { .. } => "kl_divergence",
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

    /// The factor of `Reduction::Sum` over `Σ w_n·l_n` for rows of D values: D for elementwise
    /// kinds (so the sum is over every element, as PyTorch), else 1.
    pub fn sum_scale(&self, d: usize) -> f64 {
        if self.reduction == Reduction::Sum && self.kind.is_elementwise() {
            d as f64
        } else {
            1.0
        }
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
