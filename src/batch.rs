//! Batches as MPS has them: `ImageBatch` (N images packed NCHW in one buffer), `LossLabels`
//! (labels with a described memory layout, optional per-sample weights; after a step they hold the
//! per-sample loss), and `StateBatch` (the persistent states a compiled graph keeps between steps).

use crate::compile::Compiled;
use crate::data::ImageSet;
use crate::error::{Error, Result};
use crate::graph::Op;
use crate::tensor::Tensor;

/// N images of C×H×W f32 values packed NCHW.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageBatch {
    /// (N, C, H, W)
    pub shape: [usize; 4],
    /// The N·C·H·W values, NCHW row-major.
    pub data: Vec<f32>,
}

impl ImageBatch {
    /// Packs images given one by one (each C·H·W values, NCHW-ordered within the image).
    pub fn from_images(images: &[&[f32]], c: usize, h: usize, w: usize) -> Result<ImageBatch> {
        let per = c * h * w;
        let mut data = Vec::with_capacity(images.len() * per);
        for (i, im) in images.iter().enumerate() {
            if im.len() != per {
                return Err(Error::Shape {
                    op: "ImageBatch".into(),
                    msg: format!(
                        "image {i} has {} values, expected {c}×{h}×{w} = {per}",
                        im.len()
                    ),
                });
            }
            data.extend_from_slice(im);
        }
        Ok(ImageBatch {
            shape: [images.len(), c, h, w],
            data,
        })
    }

    /// The images at `indices` of a dataset, scaled to [0, 1], one channel.
    pub fn from_set(set: &ImageSet, indices: &[usize]) -> Result<ImageBatch> {
        let (data, _) = set.batch(indices)?;
        Ok(ImageBatch {
            shape: [indices.len(), 1, set.rows, set.cols],
            data,
        })
    }

    /// Number of images N.
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    /// Whether the batch has no images.
    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }
}

/// How labels are laid out in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelLayout {
    /// One u32 class index per sample: (N).
    ClassIndices,
    /// One f32 row of `classes` values per sample (one-hot or probabilities): (N, classes).
    Dense {
        /// Values per row.
        classes: usize,
    },
}

/// Labels for a batch, their layout, optional per-sample weights, and — once a step has run and
/// the trainer read it back — the per-sample loss.
#[derive(Clone, Debug)]
pub struct LossLabels {
    /// Class indices or dense rows.
    pub layout: LabelLayout,
    /// Class indices (`ClassIndices`).
    pub indices: Vec<u32>,
    /// Dense rows (`Dense`).
    pub dense: Vec<f32>,
    /// (N) weights; a weight of 0 leaves a sample out (padding of a partial batch).
    pub weights: Vec<f32>,
    per_sample: Option<Vec<f32>>,
}

impl LossLabels {
    /// Class-index labels with weight 1 each; an index ≥ `classes` is an `Err` naming it.
    pub fn from_indices(labels: &[u32], classes: usize) -> Result<LossLabels> {
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| **l as usize >= classes)
        {
            return Err(Error::Invalid(format!(
                "label {i} is class {l}, but there are {classes} classes"
            )));
        }
        Ok(LossLabels {
            layout: LabelLayout::ClassIndices,
            indices: labels.to_vec(),
            dense: vec![],
            weights: vec![1.0; labels.len()],
            per_sample: None,
        })
    }

    /// Dense labels (N, classes), weight 1 each.
    pub fn from_dense(rows: &[f32], classes: usize) -> Result<LossLabels> {
        if classes == 0 || !rows.len().is_multiple_of(classes) {
            return Err(Error::Shape {
                op: "LossLabels".into(),
                msg: format!("{} values are not rows of {classes} classes", rows.len()),
            });
        }
        Ok(LossLabels {
            layout: LabelLayout::Dense { classes },
            indices: vec![],
            dense: rows.to_vec(),
            weights: vec![1.0; rows.len() / classes],
            per_sample: None,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether the batch has no samples.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Stores the per-sample loss read back after a step.
    pub fn set_loss(&mut self, per_sample: Vec<f32>) -> Result<()> {
        if per_sample.len() != self.len() {
            return Err(Error::Shape {
                op: "LossLabels".into(),
                msg: format!("{} losses for {} samples", per_sample.len(), self.len()),
            });
        }
        self.per_sample = Some(per_sample);
        Ok(())
    }

    /// The loss of sample `i` after the step (None before).
    pub fn loss(&self, i: usize) -> Option<f32> {
        self.per_sample.as_ref().and_then(|l| l.get(i).copied())
    }

    /// The loss reduced over the batch: mean over samples with a non-zero weight.
    pub fn mean_loss(&self) -> Option<f32> {
        let l = self.per_sample.as_ref()?;
        let (s, n) = l
            .iter()
            .zip(&self.weights)
            .filter(|(_, w)| **w != 0.0)
            .fold((0.0, 0), |(s, n), (v, _)| (s + v, n + 1));
        (n > 0).then(|| s / n as f32)
    }
}

/// The persistent states of a compiled graph (e.g. batch norm running statistics), the
/// recurrent states it carries from batch to batch (`Compiled::carry`) and its step counter:
/// what carries over from one step to the next besides the weights.
#[derive(Clone)]
pub struct StateBatch {
    /// Each persistent state, by node name.
    pub states: Vec<(String, Tensor)>,
    /// Each carried recurrent state (an initial-state input the last step's final state was
    /// copied into), by input name.
    pub recurrent: Vec<(String, Tensor)>,
    /// Steps the graph has run.
    pub step: u64,
}

impl StateBatch {
    /// The states and step counter of `c` (sharing its tensors).
    pub fn of(c: &Compiled) -> StateBatch {
        let states = c
            .graph
            .nodes
            .iter()
            .filter(|n| n.op == Op::State)
            .filter_map(|n| c.param(&n.name).map(|t| (n.name.clone(), t.clone())))
            .collect();
        StateBatch {
            states,
            recurrent: c.carried_inputs(),
            step: c.step_count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_validate_and_hold_losses() {
        assert!(
            LossLabels::from_indices(&[1, 10], 10)
                .unwrap_err()
                .to_string()
                .contains("class 10")
        );
        let mut l = LossLabels::from_indices(&[1, 2, 3], 10).unwrap();
        l.weights[2] = 0.0;
        assert_eq!(l.mean_loss(), None);
        l.set_loss(vec![1.0, 3.0, 100.0]).unwrap();
        assert_eq!(l.loss(1), Some(3.0));
        assert_eq!(l.mean_loss(), Some(2.0));
        assert!(l.set_loss(vec![1.0]).is_err());
        assert!(LossLabels::from_dense(&[0.0; 7], 3).is_err());
        let im = [0.5f32; 4];
        assert!(ImageBatch::from_images(&[&im, &im[..3]], 1, 2, 2).is_err());
        assert_eq!(
            ImageBatch::from_images(&[&im, &im], 1, 2, 2).unwrap().shape,
            [2, 1, 2, 2]
        );
    }
}
