//! Loading a checkpoint by name into any compiled graph ([`load_into`]), e.g. an inference
//! graph compiled without the training option, whose weights are one tensor per parameter
//! rather than a flat arena with a layout.
//!
//! Persistent states (batch-norm running statistics) come from a tensor of the state's name
//! (as PyTorch's `state_dict` holds `bn.running_mean`) or, in a checkpoint the training loop
//! wrote, from the metadata entry `user.state.<name>` ([`encode_state`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::file::File;
use super::{io, read_file};
use crate::error::Result;

/// The metadata key (after `user.`, i.e. a `TrainState::metadata` key) of a persistent state's
/// values, as the training loop saves them.
pub fn state_key(node: &str) -> String {
    format!("state.{node}")
}

/// A state's values as the metadata holds them: the hex of each value's bits, 8 digits each
/// (exact, unlike decimal).
pub fn encode_state(values: &[f32]) -> String {
    values
        .iter()
        .map(|x| format!("{:08x}", x.to_bits()))
        .collect()
}

/// The inverse of [`encode_state`] for exactly `n` values; `None` for any other length or a
/// byte that is not a hex digit.
pub fn decode_state(hex: &str, n: usize) -> Option<Vec<f32>> {
    let b = hex.as_bytes();
    if Some(b.len()) != n.checked_mul(8) || !b.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    b.chunks_exact(8)
        .map(|c| {
            let s = std::str::from_utf8(c).ok()?;
            u32::from_str_radix(s, 16).ok().map(f32::from_bits)
        })
        .collect()
}

/// One parameter or persistent state of a [`LoadTarget`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetEntry {
    /// The node's name (`fc1.weight`, `bn.running_mean`).
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// A persistent state (not trained) rather than a parameter.
    pub state: bool,
    /// Whether the target holds it (a compiled graph drops what its outputs do not need): a
    /// checkpoint may hold it or not, and it is not written.
    pub held: bool,
}

/// What [`load_into`] writes into: named parameters and states (`Compiled` is one).
pub trait LoadTarget {
    /// Every parameter and persistent state of the graph.
    fn entries(&self) -> Vec<TargetEntry>;
    /// Writes `data` into the parameter or state `name` (one the entries list as held).
    fn write(&self, name: &str, data: &[f32]) -> Result<()>;
}

/// Loads every parameter and persistent state of `target` from the checkpoint or safetensors
/// file at `path`, by name: all or nothing. Everything is read and checked first — each held
/// parameter present with its shape (F32, or F64/F16/BF16 converted), each held state as a
/// tensor or a `user.state.<name>` entry, checksums where the file has them, and no tensor or
/// state the graph does not have (optimizer tensors `optim.*` and PyTorch's batch-norm counters
/// `num_batches_tracked` are ignored) — then written. The
/// error names the file and the tensor.
pub fn load_into(path: &Path, target: &dyn LoadTarget) -> Result<()> {
    let bytes = read_file(path)?;
    let file = File::parse(path, &bytes)?;
    let entries = target.entries();
    let mut values: Vec<(&str, Vec<f32>)> = Vec::new();
    for e in entries.iter().filter(|e| e.held) {
        let v = if e.state && !file.has(&e.name) {
            state_from_metadata(path, &file.meta, e)?
        } else {
            file.f32s(&e.name, &e.shape)?
        };
        values.push((&e.name, v));
    }
    let known: BTreeSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    if let Some(name) = file
        .names()
        .into_iter()
        .find(|n| !n.starts_with("optim.") && !known.contains(n) && !batch_counter(n, &known))
    {
        return Err(io(
            path,
            format!("tensor {name:?} is not a parameter or state of this graph"),
        ));
    }
    let states: BTreeMap<&str, &str> = file
        .meta
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("user.state.")?, v.as_str())))
        .collect();
    if let Some(name) = states
        .keys()
        .find(|n| !entries.iter().any(|e| e.state && e.name == **n))
    {
        return Err(io(
            path,
            format!(
                "state {name:?} (metadata \"user.state.{name}\") is not a persistent state of this graph"
            ),
        ));
    }
    for (name, v) in values {
        target
            .write(name, &v)
            .map_err(|e| e.context(format!("{}: writing {name:?}", path.display())))?;
    }
    Ok(())
}

/// PyTorch's `<bn>.num_batches_tracked` of a batch norm this graph has (torchvision state
/// dicts carry one per norm): a counter only `momentum=None` reads, which this batch norm has not.
fn batch_counter(name: &str, known: &BTreeSet<&str>) -> bool {
    name.strip_suffix(".num_batches_tracked")
        .is_some_and(|bn| known.contains(format!("{bn}.running_mean").as_str()))
}

/// A state's values from the metadata entry the training loop writes.
fn state_from_metadata(
    path: &Path,
    meta: &std::collections::HashMap<String, String>,
    e: &TargetEntry,
) -> Result<Vec<f32>> {
    let key = format!("user.{}", state_key(&e.name));
    let n: usize = e.shape.iter().product();
    let hex = meta.get(&key).ok_or_else(|| {
        io(
            path,
            format!(
                "state {:?} is missing (neither a tensor of that name nor metadata {key:?})",
                e.name
            ),
        )
    })?;
    let v = decode_state(hex, n).ok_or_else(|| {
        io(
            path,
            format!(
                "state {:?} (metadata {key:?}) is not {n} values as 8 hex digits each ({} bytes)",
                e.name,
                hex.len()
            ),
        )
    })?;
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(io(
            path,
            format!(
                "state {:?} holds {} at element {i}; not loading it",
                e.name, v[i]
            ),
        ));
    }
    Ok(v)
}
