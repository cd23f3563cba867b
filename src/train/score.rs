//! What evaluation measures: metrics over the inference twin's output for a dataset, batch by
//! batch. Accuracy and the confusion matrix (per-class precision and recall) for classifiers,
//! mean squared and absolute error for regression and reconstruction; a user's own metric
//! implements [`Metric`].

use super::ConfusionMatrix;
use super::inputs::Inputs;
use crate::error::{Error, Result};

/// One evaluation batch: the model's output for its real samples, and the batch as the dataset
/// filled it (targets and labels by input name; its first `rows` samples are real).
pub struct Scored<'a> {
    /// The output, `rows × width` values (sample after sample).
    pub output: &'a [f32],
    /// Values per sample of the output (classes, for logits).
    pub width: usize,
    /// The dataset index of the batch's first sample (errors name samples by it).
    pub first: usize,
    /// Real samples in this batch.
    pub rows: usize,
    /// Samples the dataset filled (the real ones first, then padding).
    pub batch: usize,
    /// The batch the dataset filled.
    pub inputs: &'a Inputs,
}

/// A quantity measured over a dataset.
pub trait Metric {
    /// Its name in reports (`"accuracy"`, `"mse"`).
    fn name(&self) -> String;
    /// Whether a larger value is better (a target is reached from above or below).
    fn higher_is_better(&self) -> bool {
        true
    }
    /// Forgets every batch seen.
    fn reset(&mut self);
    /// Takes one batch into account.
    fn update(&mut self, batch: &Scored) -> Result<()>;
    /// The value over every batch since `reset` (NaN if there were none).
    fn value(&self) -> f64;
}

fn missing(metric: &str, input: &str, inputs: &Inputs) -> Error {
    Error::Invalid(format!(
        "{metric}: the dataset filled no input {input:?} (it filled {:?})",
        inputs.names()
    ))
}

/// The class of each output row: its argmax (ties to the smaller class); `Err` on a
/// non-finite value, naming the sample (row `i` is sample `first + i`).
pub fn argmax_rows(output: &[f32], width: usize, first: usize, rows: usize) -> Result<Vec<u32>> {
    let mut out = Vec::with_capacity(rows);
    for i in 0..rows {
        let row = output
            .get(i * width..(i + 1) * width)
            .ok_or_else(|| Error::Invalid(format!("output has no row {i}")))?;
        if let Some(k) = row.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                step: 0,
                msg: format!(
                    "the output of sample {} holds {} (class {k}): no prediction; the weights \
                     or the input are not finite",
                    first + i,
                    row[k]
                ),
            });
        }
        out.push((0..width).fold(0, |m, k| if row[k] > row[m] { k } else { m }) as u32);
    }
    Ok(out)
}

/// The share of samples whose argmax output is their class index in the u32 input `labels`.
pub struct Accuracy {
    labels: String,
    correct: u64,
    seen: u64,
}

impl Accuracy {
    /// Against the class indices of the input `labels`.
    pub fn new(labels: &str) -> Accuracy {
        Accuracy {
            labels: labels.to_string(),
            correct: 0,
            seen: 0,
        }
    }
}

impl Metric for Accuracy {
    fn name(&self) -> String {
        "accuracy".into()
    }
    fn reset(&mut self) {
        (self.correct, self.seen) = (0, 0);
    }
    fn update(&mut self, b: &Scored) -> Result<()> {
        let y = b
            .inputs
            .get_u32(&self.labels)
            .ok_or_else(|| missing("accuracy", &self.labels, b.inputs))?;
        let p = argmax_rows(b.output, b.width, b.first, b.rows)?;
        let y = y.get(..b.rows).ok_or_else(|| {
            Error::Invalid(format!(
                "accuracy: fewer labels than the {} samples",
                b.rows
            ))
        })?;
        self.correct += y.iter().zip(&p).filter(|(a, b)| a == b).count() as u64;
        self.seen += b.rows as u64;
        Ok(())
    }
    fn value(&self) -> f64 {
        self.correct as f64 / self.seen as f64
    }
}

/// The confusion matrix of argmax predictions against the u32 input `labels`: per-class
/// precision and recall (`matrix()`); its value is the accuracy.
pub struct Confusion {
    labels: String,
    matrix: ConfusionMatrix,
}

impl Confusion {
    /// Over `classes` classes, against the input `labels`.
    pub fn new(labels: &str, classes: usize) -> Result<Confusion> {
        Ok(Confusion {
            labels: labels.to_string(),
            matrix: ConfusionMatrix::new(classes)?,
        })
    }

    /// The counts so far.
    pub fn matrix(&self) -> &ConfusionMatrix {
        &self.matrix
    }
}

impl Metric for Confusion {
    fn name(&self) -> String {
        "confusion_accuracy".into()
    }
    fn reset(&mut self) {
        if let Ok(m) = ConfusionMatrix::new(self.matrix.classes()) {
            self.matrix = m;
        }
    }
    fn update(&mut self, b: &Scored) -> Result<()> {
        let y = b
            .inputs
            .get_u32(&self.labels)
            .ok_or_else(|| missing("confusion", &self.labels, b.inputs))?;
        let p = argmax_rows(b.output, b.width, b.first, b.rows)?;
        for (t, q) in y.iter().zip(&p).take(b.rows) {
            self.matrix.add(*t as usize, *q as usize)?;
        }
        Ok(())
    }
    fn value(&self) -> f64 {
        self.matrix.accuracy()
    }
}

/// Mean of `f(output - target)` over every element, the target an f32 input of the same
/// per-sample size as the output.
struct Elementwise {
    target: String,
    sum: f64,
    count: u64,
}

impl Elementwise {
    fn update(&mut self, what: &str, b: &Scored, f: fn(f64) -> f64) -> Result<()> {
        let t = b
            .inputs
            .get_f32(&self.target)
            .ok_or_else(|| missing(what, &self.target, b.inputs))?;
        // A target of another per-sample size would compare unrelated values.
        let n = b.rows.saturating_mul(b.width);
        let (Some(o), true) = (
            b.output.get(..n),
            t.len() == b.batch.saturating_mul(b.width),
        ) else {
            return Err(Error::Shape {
                op: what.into(),
                msg: format!(
                    "target {:?} holds {} values for {} samples; the output has {} per sample",
                    self.target,
                    t.len(),
                    b.batch,
                    b.width
                ),
            });
        };
        let t = &t[..n];
        self.sum += o
            .iter()
            .zip(t)
            .map(|(&a, &b)| f(a as f64 - b as f64))
            .sum::<f64>();
        self.count += n as u64;
        Ok(())
    }
}

/// A public metric over [`Elementwise`]: one definition for MSE and MAE.
macro_rules! elementwise_metric {
    ($(#[$doc:meta])* $t:ident, $name:literal, $f:expr) => {
        $(#[$doc])*
        pub struct $t(Elementwise);

        impl $t {
            /// Against the f32 input `target` (e.g. `"image"` for an autoencoder).
            pub fn new(target: &str) -> $t {
                $t(Elementwise {
                    target: target.to_string(),
                    sum: 0.0,
                    count: 0,
                })
            }
        }

        impl Metric for $t {
            fn name(&self) -> String {
                $name.into()
            }
            fn higher_is_better(&self) -> bool {
                false
            }
            fn reset(&mut self) {
                (self.0.sum, self.0.count) = (0.0, 0);
            }
            fn update(&mut self, b: &Scored) -> Result<()> {
                self.0.update($name, b, $f)
            }
            fn value(&self) -> f64 {
                self.0.sum / self.0.count as f64
            }
        }
    };
}

elementwise_metric!(
    /// Mean squared error between the output and the f32 input `target` (every element).
    MeanSquaredError,
    "mse",
    |d| d * d
);
elementwise_metric!(
    /// Mean absolute error between the output and the f32 input `target` (every element).
    MeanAbsoluteError,
    "mae",
    f64::abs
);
