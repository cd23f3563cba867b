//! Where the loop's batches come from: a `Dataset` fills the named inputs of a batch from sample
//! indices. The shipped MNIST and HAPT sets fill `image` (f32) and `labels` (u32 class indices).

use super::inputs::Inputs;
use crate::data::{HarWindows, ImageSet};
use crate::error::{Error, Result};

/// Samples the loop can draw batches from, any inputs: images and labels, signals and targets,
/// an autoencoder's images alone.
pub trait Dataset {
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Appends the samples at `indices`, in order, to the inputs they feed (by the graph's
    /// input names; `Inputs::f32_mut` / `u32_mut`), sample after sample.
    fn fill(&self, indices: &[usize], batch: &mut Inputs) -> Result<()>;
}

impl Dataset for ImageSet {
    fn len(&self) -> usize {
        self.n
    }
    fn fill(&self, indices: &[usize], batch: &mut Inputs) -> Result<()> {
        let (data, labels) = self.batch(indices)?;
        batch.f32_mut("image")?.extend(data);
        batch
            .u32_mut("labels")?
            .extend(labels.iter().map(|&l| l as u32));
        Ok(())
    }
}

impl Dataset for HarWindows {
    // `HarWindows::len` is the window length; the dataset's length is its window count `n`.
    #[allow(clippy::misnamed_getters)]
    fn len(&self) -> usize {
        self.n
    }
    fn fill(&self, indices: &[usize], batch: &mut Inputs) -> Result<()> {
        // The fields are public: windows built by hand may not hold what `n` says.
        self.check()?;
        let per = self.channels * self.len;
        let x = batch.f32_mut("image")?;
        for &i in indices {
            if i >= self.n {
                return Err(Error::Invalid(format!("window {i} of {}", self.n)));
            }
            x.extend_from_slice(&self.x[i * per..(i + 1) * per]);
        }
        let y = batch.u32_mut("labels")?;
        y.extend(indices.iter().map(|&i| self.labels[i] as u32));
        Ok(())
    }
}

/// A dataset held in memory as named columns of `n` samples each (the simplest way to train on
/// your own arrays): `InMemory::new(n).f32("x", xs).f32("y", ys)`.
#[derive(Clone, Debug, Default)]
pub struct InMemory {
    n: usize,
    columns: Inputs,
}

impl InMemory {
    /// No columns yet; every column added must hold `n` samples.
    pub fn new(n: usize) -> InMemory {
        InMemory {
            n,
            columns: Inputs::new(),
        }
    }

    /// With the f32 column `name` (`n` samples of equal size, sample after sample).
    pub fn f32(mut self, name: &str, values: &[f32]) -> InMemory {
        self.columns = self.columns.f32(name, values);
        self
    }

    /// With the u32 column `name` (class indices).
    pub fn u32(mut self, name: &str, values: &[u32]) -> InMemory {
        self.columns = self.columns.u32(name, values);
        self
    }
}

impl Dataset for InMemory {
    fn len(&self) -> usize {
        self.n
    }
    fn fill(&self, indices: &[usize], batch: &mut Inputs) -> Result<()> {
        use super::inputs::Column;
        for (name, col) in self.columns.iter() {
            if self.n == 0 || col.len() % self.n != 0 {
                return Err(Error::Shape {
                    op: format!("dataset column {name:?}"),
                    msg: format!("{} values are not {} equal samples", col.len(), self.n),
                });
            }
            let per = col.len() / self.n;
            if let Some(&i) = indices.iter().find(|&&i| i >= self.n) {
                return Err(Error::Invalid(format!("sample {i} of {}", self.n)));
            }
            match col {
                Column::F32(v) => {
                    let out = batch.f32_mut(name)?;
                    indices
                        .iter()
                        .for_each(|&i| out.extend_from_slice(&v[i * per..(i + 1) * per]));
                }
                Column::U32(v) => {
                    let out = batch.u32_mut(name)?;
                    indices
                        .iter()
                        .for_each(|&i| out.extend_from_slice(&v[i * per..(i + 1) * per]));
                }
            }
        }
        Ok(())
    }
}
