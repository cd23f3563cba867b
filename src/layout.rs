//! Where each parameter lives in a flat arena: names, shapes and offsets. Optimizers, data
//! sources, checkpoints and the compiler all speak in these ranges.

use std::ops::Range;

use crate::error::{Error, Result};

/// One parameter tensor inside the flat arena.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamEntry {
    /// Parameter name, PyTorch style (`conv1.weight`).
    pub name: String,
    /// Dimensions, as in PyTorch (OIHW for convolution weights).
    pub shape: Vec<usize>,
    /// First element in the arena.
    pub offset: usize,
}

impl ParamEntry {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Its element range in the arena.
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.numel()
    }
}

/// Where each named parameter lives in the flat arena (the gradient arena has the same layout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamLayout {
    entries: Vec<ParamEntry>,
    len: usize,
}

impl ParamLayout {
    /// A layout from explicit entries; names must be unique and ranges disjoint inside `len`.
    pub fn new(entries: Vec<ParamEntry>, len: usize) -> Result<ParamLayout> {
        // Checked first, so `numel` and `range` of an accepted entry never overflow.
        for e in &entries {
            let end = (e.shape.iter())
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .and_then(|n| n.checked_add(e.offset));
            if end.is_none() {
                return Err(Error::Invalid(format!(
                    "parameter layout: {:?} {:?} at {} overflows a usize",
                    e.name, e.shape, e.offset
                )));
            }
        }
        let mut sorted: Vec<&ParamEntry> = entries.iter().collect();
        sorted.sort_by_key(|e| e.offset);
        for (k, e) in sorted.iter().enumerate() {
            if e.name.is_empty() || e.range().end > len {
                return Err(Error::Invalid(format!(
                    "parameter layout: {:?} {:?} at {} does not fit an arena of {len}",
                    e.name, e.shape, e.offset
                )));
            }
            if let Some(next) = sorted.get(k + 1)
                && next.offset < e.range().end
            {
                return Err(Error::Invalid(format!(
                    "parameter layout: {:?} overlaps {:?}",
                    e.name, next.name
                )));
            }
        }
        let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::Invalid(format!(
                "parameter layout: name {:?} is used twice",
                w[0]
            )));
        }
        Ok(ParamLayout { entries, len })
    }

    /// Parameters placed one after another, each at a multiple of `align` elements (e.g. 64, so
    /// each can also be bound as its own tensor view at the 256-byte storage alignment).
    pub fn packed(params: &[(&str, &[usize])], align: usize) -> Result<ParamLayout> {
        let align = align.max(1);
        let mut offset = 0usize;
        let mut entries = Vec::new();
        for (name, shape) in params {
            let overflow = || {
                Error::Invalid(format!(
                    "parameter layout: {name:?} {shape:?} overflows a usize"
                ))
            };
            offset = offset
                .div_ceil(align)
                .checked_mul(align)
                .ok_or_else(overflow)?;
            entries.push(ParamEntry {
                name: name.to_string(),
                shape: shape.to_vec(),
                offset,
            });
            let n = (shape.iter()).try_fold(1usize, |acc, &d| acc.checked_mul(d));
            offset = n.and_then(|n| offset.checked_add(n)).ok_or_else(overflow)?;
        }
        Self::new(entries, offset)
    }

    /// Every entry, in arena order.
    pub fn entries(&self) -> &[ParamEntry] {
        &self.entries
    }

    /// Elements of the arena.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the arena holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entry named `name`, if any.
    pub fn get(&self, name: &str) -> Option<&ParamEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The ranges of the entries `pred` selects: the ranges of an optimizer parameter group
    /// (e.g. `|e| e.shape.len() == 1` picks biases and norm scales, kept free of weight decay).
    pub fn ranges(&self, pred: impl Fn(&ParamEntry) -> bool) -> Vec<Range<usize>> {
        self.entries
            .iter()
            .filter(|e| pred(e))
            .map(|e| e.range())
            .collect()
    }
}
