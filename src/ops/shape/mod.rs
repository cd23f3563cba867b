//! The shape family. Descriptors: concat, split, reshape, flatten, slice/crop, pad and upsample, each with
//! its output-shape inference and checks. Axes are signed (−1 = last); default is the channels.

pub mod gpu;
mod op;
pub mod permute;
pub mod reference;
pub(crate) mod row_copy;
pub(crate) mod samples;

pub use op::ShapeOp;

use super::axis::{fmt_shape, resolve_axis};
use super::checks::{add, mul, numel};
use crate::error::{Result, attr_err, shape_err};

/// Concatenate along `axis`; every other dim must agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concat {
    /// Signed: −1 is the last axis.
    pub axis: isize,
}

impl Concat {
    pub(crate) const OP: &'static str = "concat";
    /// Along the channels of (N, C, ...).
    pub const CHANNELS: Concat = Concat { axis: 1 };

    /// Output shape and the resolved axis.
    pub fn output_shape(&self, inputs: &[&[usize]]) -> Result<(Vec<usize>, usize)> {
        let Some(first) = inputs.first() else {
            return shape_err(Self::OP, "needs at least one input, got none");
        };
        let axis = resolve_axis(Self::OP, self.axis, first.len())?;
        let mut out = first.to_vec();
        for (i, s) in inputs.iter().enumerate().skip(1) {
            let agree =
                s.len() == first.len() && (0..s.len()).all(|k| k == axis || s[k] == first[k]);
            if !agree {
                return shape_err(
                    Self::OP,
                    format!(
                        "input {i} {} does not match input 0 {} outside axis {axis}",
                        fmt_shape(s),
                        fmt_shape(first)
                    ),
                );
            }
            out[axis] = add(Self::OP, "the concatenated axis", out[axis], s[axis])?;
        }
        Ok((out, axis))
    }
}

/// Split along `axis` into pieces of `sizes` (which must sum to that dim).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// Signed: −1 is the last axis.
    pub axis: isize,
    /// Size of each piece along `axis`.
    pub sizes: Vec<usize>,
}

impl Split {
    pub(crate) const OP: &'static str = "split";

    /// Output shapes and the resolved axis.
    pub fn output_shapes(&self, input: &[usize]) -> Result<(Vec<Vec<usize>>, usize)> {
        let axis = resolve_axis(Self::OP, self.axis, input.len())?;
        let total = (self.sizes.iter())
            .try_fold(0usize, |acc, &n| acc.checked_add(n))
            .ok_or_else(|| super::checks::overflow(Self::OP, "the sum of the sizes"))?;
        if self.sizes.is_empty() || self.sizes.contains(&0) || total != input[axis] {
            return shape_err(
                Self::OP,
                format!(
                    "sizes {:?} (sum {total}) must be non-zero and sum to dim {} of axis {axis} of x {}",
                    self.sizes,
                    input[axis],
                    fmt_shape(input)
                ),
            );
        }
        let shapes = self
            .sizes
            .iter()
            .map(|&n| {
                let mut s = input.to_vec();
                s[axis] = n;
                s
            })
            .collect();
        Ok((shapes, axis))
    }
}

/// Reinterpret the row-major data with a new shape of the same element count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reshape {
    /// The new shape.
    pub shape: Vec<usize>,
}

impl Reshape {
    pub(crate) const OP: &'static str = "reshape";

    /// The output shape; `Err(Shape)` if the element counts differ.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let (a, b) = (numel(Self::OP, input)?, numel(Self::OP, &self.shape)?);
        if a != b {
            return shape_err(
                Self::OP,
                format!(
                    "x {} has {a} elements but target {} has {b}",
                    fmt_shape(input),
                    fmt_shape(&self.shape)
                ),
            );
        }
        Ok(self.shape.clone())
    }
}

/// Collapse the axes `axis ..` into one: (N, C, H, W) with axis 1 → (N, C·H·W).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flatten {
    /// First axis merged; signed: −1 is the last axis.
    pub axis: isize,
}

impl Flatten {
    pub(crate) const OP: &'static str = "flatten";
    /// Keep the batch axis, flatten the rest (before a dense layer).
    pub const FROM_CHANNELS: Flatten = Flatten { axis: 1 };

    /// The output shape; `Err(Attr)` if `axis` is out of range.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let axis = resolve_axis(Self::OP, self.axis, input.len())?;
        let mut out = input[..axis].to_vec();
        out.push(numel(Self::OP, &input[axis..])?);
        Ok(out)
    }
}

/// `start .. end` by `step` along one axis (`end` exclusive, `start < end <= dim`, `step >= 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceRange {
    /// First index taken.
    pub start: usize,
    /// End index, exclusive.
    pub end: usize,
    /// Distance between taken indices.
    pub step: usize,
}

/// Strided slice with one range per axis; a crop is a slice with step 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slice {
    /// One range per axis of the input.
    pub ranges: Vec<SliceRange>,
}

impl Slice {
    pub(crate) const OP: &'static str = "slice";

    /// The window `start .. start + size` on each axis (`start` and `size` of one length each;
    /// an end past usize saturates, which `output_shape` then refuses as out of range).
    pub fn crop(start: &[usize], size: &[usize]) -> Slice {
        let ranges = start
            .iter()
            .zip(size)
            .map(|(&s, &n)| SliceRange {
                start: s,
                end: s.saturating_add(n),
                step: 1,
            })
            .collect();
        Slice { ranges }
    }

    /// The same slice with each step at most `end - start`: a step that long or longer takes
    /// only `start`, so the result is unchanged, and step × stride then neither overflows a
    /// usize nor wraps the kernels' u32 words.
    pub(crate) fn clamped_steps(&self) -> Slice {
        let ranges = (self.ranges.iter())
            .map(|r| SliceRange {
                step: r.step.min(r.end.saturating_sub(r.start)).max(1),
                ..*r
            })
            .collect();
        Slice { ranges }
    }

    /// Per axis `ceil((end − start) / step)`.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        if self.ranges.len() != input.len() {
            return attr_err(
                Self::OP,
                format!(
                    "{} ranges for x {} of rank {}",
                    self.ranges.len(),
                    fmt_shape(input),
                    input.len()
                ),
            );
        }
        let mut out = Vec::with_capacity(input.len());
        for (k, (r, &d)) in self.ranges.iter().zip(input).enumerate() {
            if r.step == 0 || r.start >= r.end || r.end > d {
                return attr_err(
                    Self::OP,
                    format!(
                        "axis {k}: {}..{} step {} out of range for dim {d} of x {} (need start < end <= dim, step >= 1)",
                        r.start,
                        r.end,
                        r.step,
                        fmt_shape(input)
                    ),
                );
            }
            out.push((r.end - r.start).div_ceil(r.step));
        }
        Ok(out)
    }
}

/// How padding values are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode {
    /// Zeros.
    Zero,
    /// Replicate the edge element (PyTorch's "replicate").
    Edge,
}

/// Pad each axis with `before[k]` and `after[k]` elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pad {
    /// Elements added before each axis.
    pub before: Vec<usize>,
    /// Elements added after each axis.
    pub after: Vec<usize>,
    /// What the added elements hold.
    pub mode: PadMode,
}

impl Pad {
    pub(crate) const OP: &'static str = "pad";

    /// The output shape; `Err` if `before` / `after` do not have one entry per axis, or edge padding of an empty x.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        if self.before.len() != input.len() || self.after.len() != input.len() {
            return attr_err(
                Self::OP,
                format!(
                    "before ({}) / after ({}) need one entry per axis of x {}",
                    self.before.len(),
                    self.after.len(),
                    fmt_shape(input)
                ),
            );
        }
        if self.mode == PadMode::Edge && input.contains(&0) {
            return shape_err(
                Self::OP,
                format!("edge padding of an empty x {}", fmt_shape(input)),
            );
        }
        (0..input.len())
            .map(|k| {
                let what = format!("the padded axis {k}");
                add(
                    Self::OP,
                    &what,
                    add(Self::OP, &what, self.before[k], input[k])?,
                    self.after[k],
                )
            })
            .collect()
    }
}

/// Interpolation of [`Upsample`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsampleMode {
    /// `src = floor(dst·in/out)`, exact in integers (PyTorch's "nearest" computes this in f32,
    /// which agrees for integer scale factors).
    Nearest,
    /// PyTorch's bilinear with `align_corners = false`: `src = max((dst + 0.5)·in/out − 0.5, 0)`,
    /// `i0 = floor(src)`, `i1 = min(i0 + 1, in − 1)`, weights `1 − (src − i0)` and `src − i0`.
    Bilinear,
}

/// Output size of [`Upsample`], for the last two axes (H, W).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsampleSize {
    /// Integer factors (sh, sw) >= 1.
    Scale(usize, usize),
    /// Explicit (H_out, W_out) >= 1.
    Size(usize, usize),
}

/// Resize the last two axes of (…, H, W), usually (N, C, H, W).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upsample {
    /// Nearest or bilinear.
    pub mode: UpsampleMode,
    /// Output size, or scale factors.
    pub size: UpsampleSize,
}

impl Upsample {
    pub(crate) const OP: &'static str = "upsample";

    /// The output shape; `Err` if H or W is 0 or the size is invalid.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        if input.len() < 2 || input[input.len() - 2..].contains(&0) {
            return shape_err(
                Self::OP,
                format!(
                    "x {} must have rank >= 2 (…, H, W) with H, W >= 1",
                    fmt_shape(input)
                ),
            );
        }
        let (h, w) = (input[input.len() - 2], input[input.len() - 1]);
        let (oh, ow) = match self.size {
            UpsampleSize::Scale(a, b) => (
                mul(Self::OP, "the output height", h, a)?,
                mul(Self::OP, "the output width", w, b)?,
            ),
            UpsampleSize::Size(a, b) => (a, b),
        };
        if oh == 0 || ow == 0 {
            return attr_err(
                Self::OP,
                format!(
                    "{:?} gives an empty output for x {}",
                    self.size,
                    fmt_shape(input)
                ),
            );
        }
        let mut out = input.to_vec();
        let r = out.len();
        out[r - 2] = oh;
        out[r - 1] = ow;
        Ok(out)
    }
}
