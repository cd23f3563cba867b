//! What a step is fed: named columns of f32 or u32 values, one per input of the graph, for a
//! whole batch (sample after sample). Datasets fill them; `Model::step` writes them.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// One input's values for a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// Floating-point data (images, signals, targets, per-sample weights).
    F32(Vec<f32>),
    /// Class indices (inputs made with `Graph::input_u32`).
    U32(Vec<u32>),
}

impl Column {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Column::F32(v) => v.len(),
            Column::U32(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A batch by input name.
///
/// ```
/// use wgtrain::train::Inputs;
/// let batch = Inputs::new().f32("image", &[0.5; 4]).u32("labels", &[3]);
/// assert_eq!(batch.names(), vec!["image", "labels"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inputs {
    columns: BTreeMap<String, Column>,
}

impl Inputs {
    /// No columns.
    pub fn new() -> Inputs {
        Inputs::default()
    }

    /// With f32 values for the input `name` (replacing any).
    pub fn f32(mut self, name: &str, values: &[f32]) -> Inputs {
        self.columns
            .insert(name.to_string(), Column::F32(values.to_vec()));
        self
    }

    /// With class indices for the u32 input `name` (replacing any).
    pub fn u32(mut self, name: &str, values: &[u32]) -> Inputs {
        self.columns
            .insert(name.to_string(), Column::U32(values.to_vec()));
        self
    }

    /// The f32 column `name` to append to (created empty; a dataset's `fill` writes here).
    /// An `Err` if `name` already holds u32 values.
    pub fn f32_mut(&mut self, name: &str) -> Result<&mut Vec<f32>> {
        let c = self
            .columns
            .entry(name.to_string())
            .or_insert_with(|| Column::F32(Vec::new()));
        match c {
            Column::F32(v) => Ok(v),
            Column::U32(_) => Err(Error::Invalid(format!(
                "input {name:?} holds class indices (u32), not f32 values"
            ))),
        }
    }

    /// The u32 column `name` to append to (created empty). An `Err` if it holds f32 values.
    pub fn u32_mut(&mut self, name: &str) -> Result<&mut Vec<u32>> {
        let c = self
            .columns
            .entry(name.to_string())
            .or_insert_with(|| Column::U32(Vec::new()));
        match c {
            Column::U32(v) => Ok(v),
            Column::F32(_) => Err(Error::Invalid(format!(
                "input {name:?} holds f32 values, not class indices (u32)"
            ))),
        }
    }

    /// The column `name`.
    pub fn get(&self, name: &str) -> Option<&Column> {
        self.columns.get(name)
    }

    /// The f32 values of `name`, if it holds f32 values.
    pub fn get_f32(&self, name: &str) -> Option<&[f32]> {
        match self.columns.get(name)? {
            Column::F32(v) => Some(v),
            Column::U32(_) => None,
        }
    }

    /// The class indices of `name`, if it holds u32 values.
    pub fn get_u32(&self, name: &str) -> Option<&[u32]> {
        match self.columns.get(name)? {
            Column::U32(v) => Some(v),
            Column::F32(_) => None,
        }
    }

    /// Whether `name` has a column.
    pub fn contains(&self, name: &str) -> bool {
        self.columns.contains_key(name)
    }

    /// The column names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.columns.keys().map(String::as_str).collect()
    }

    /// Every column, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Column)> {
        self.columns.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Empties every column, keeping its allocation and type (a dataset refills them per batch).
    pub fn clear(&mut self) {
        for c in self.columns.values_mut() {
            match c {
                Column::F32(v) => v.clear(),
                Column::U32(v) => v.clear(),
            }
        }
    }
}
