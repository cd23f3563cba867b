//! Reading a checkpoint: parse the safetensors file, verify the checksums of the metadata and of
//! every tensor, and check every tensor and metadata entry against the layout and the optimizer.
//! Nothing here writes anywhere: `read` returns a [`Checkpoint`] whose `apply` cannot fail on
//! the file's content.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::{
    Checkpoint, FORMAT, FORMAT_VERSION, MAX_COUNTER, OptimState, RngState, TrainState, io,
    state_name,
};
use crate::error::{Error, Result};
use crate::optim::Optimizer;
use crate::weights::{ParamLayout, fnv1a};

/// The checksum stored under `hash.<tensor>`: FNV-1a-64 of the tensor's bytes, 16 lowercase hex
/// digits. Checksums catch corruption and accidental edits, not tampering (there is no key).
pub fn tensor_checksum(data: &[u8]) -> String {
    format!("{:016x}", fnv1a(data))
}

/// The metadata key holding the checksum of every other metadata entry (tensor checksums
/// included), so an edited counter, running statistic or checksum is refused.
pub const METADATA_HASH: &str = "metadata_hash";

/// The checksum stored under [`METADATA_HASH`]: FNV-1a-64 of the metadata entries other than
/// that one, in key order, each key and value preceded by its length in bytes (u64,
/// little-endian) so that no two different tables hash the same bytes; 16 lowercase hex digits.
/// For tools that edit a checkpoint's metadata on purpose (recompute it after the edit).
pub fn metadata_checksum(meta: &HashMap<String, String>) -> String {
    let sorted: BTreeMap<&String, &String> = meta
        .iter()
        .filter(|(k, _)| k.as_str() != METADATA_HASH)
        .collect();
    let mut bytes = Vec::new();
    for (k, v) in sorted {
        for s in [k, v] {
            bytes.extend_from_slice(&(s.len() as u64).to_le_bytes());
            bytes.extend_from_slice(s.as_bytes());
        }
    }
    format!("{:016x}", fnv1a(&bytes))
}

/// A parsed checkpoint file: its tensors and metadata, checksums verified.
pub(super) struct File<'a> {
    path: &'a Path,
    st: SafeTensors<'a>,
    pub(super) meta: HashMap<String, String>,
}

impl<'a> File<'a> {
    /// Parses `bytes` and verifies every checksum. A file of ours (`format` is ours, or it has a
    /// metadata checksum) must carry the metadata checksum and one checksum per tensor; a plain
    /// safetensors file (e.g. PyTorch's) has none, and any `hash.<tensor>` it has is checked.
    pub(super) fn parse(path: &'a Path, bytes: &'a [u8]) -> Result<File<'a>> {
        let bad = |e: safetensors::SafeTensorError| {
            io(
                path,
                format!("not a valid safetensors file (truncated or corrupt?): {e}"),
            )
        };
        let st = SafeTensors::deserialize(bytes).map_err(bad)?;
        let (_, m) = SafeTensors::read_metadata(bytes).map_err(bad)?;
        let meta = m.metadata().clone().unwrap_or_default();
        let sealed =
            meta.get("format").is_some_and(|f| f == FORMAT) || meta.contains_key(METADATA_HASH);
        if sealed {
            match meta.get(METADATA_HASH) {
                None => {
                    return Err(io(
                        path,
                        format!(
                            "metadata checksum {METADATA_HASH:?} is missing (the metadata was edited, or an older wgtrain wrote the file)"
                        ),
                    ));
                }
                Some(h) if *h != metadata_checksum(&meta) => {
                    return Err(io(
                        path,
                        "metadata edited or corrupt (metadata checksum mismatch)",
                    ));
                }
                Some(_) => {}
            }
        }
        // Sorted, so the first error reported does not depend on hashing order.
        let mut names = st.names();
        names.sort_unstable();
        for name in names {
            let t = st
                .tensor(name)
                .map_err(|_| io(path, format!("tensor {name:?} is missing")))?;
            match meta.get(&format!("hash.{name}")) {
                Some(h) if *h != tensor_checksum(t.data()) => {
                    return Err(io(
                        path,
                        format!("tensor {name:?}: data corrupt (checksum mismatch)"),
                    ));
                }
                None if sealed => {
                    return Err(io(
                        path,
                        format!(
                            "tensor {name:?} has no checksum (metadata \"hash.{name}\" is missing)"
                        ),
                    ));
                }
                _ => {}
            }
        }
        if sealed
            && let Some(k) = meta
                .keys()
                .filter_map(|k| k.strip_prefix("hash."))
                .find(|name| st.tensor(name).is_err())
        {
            return Err(io(
                path,
                format!("metadata has a checksum for tensor {k:?}, which the file does not hold"),
            ));
        }
        Ok(File { path, st, meta })
    }

    fn tensor(&self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<TensorView<'a>> {
        let t = self
            .st
            .tensor(name)
            .map_err(|_| io(self.path, format!("tensor {name:?} is missing")))?;
        if t.dtype() != dtype {
            return Err(io(
                self.path,
                format!("tensor {name:?} is {:?}, expected {dtype:?}", t.dtype()),
            ));
        }
        if t.shape() != shape {
            return Err(io(
                self.path,
                format!(
                    "tensor {name:?} has shape {:?}, expected {shape:?}",
                    t.shape()
                ),
            ));
        }
        let want = shape
            .iter()
            .try_fold(dtype.bitsize() / 8, |a, &d| a.checked_mul(d));
        if want != Some(t.data().len()) {
            return Err(io(
                self.path,
                format!(
                    "tensor {name:?} holds {} bytes, its shape {shape:?} needs {want:?}",
                    t.data().len()
                ),
            ));
        }
        Ok(t)
    }

    /// The tensor `name` of `shape` as f32: F32 as stored, F64, F16 and BF16 converted (PyTorch
    /// saves any of them). NaN or infinity in it, or an F64 value past f32's range, is an `Err`
    /// naming the tensor and element (weights and optimizer state are never loaded poisoned).
    pub(super) fn f32s(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let stored = self
            .st
            .tensor(name)
            .map_err(|_| io(self.path, format!("tensor {name:?} is missing")))?
            .dtype();
        if !matches!(stored, Dtype::F32 | Dtype::F64 | Dtype::F16 | Dtype::BF16) {
            return Err(io(
                self.path,
                format!(
                    "tensor {name:?} is {stored:?}, expected F32 (or F64, F16, BF16, converted)"
                ),
            ));
        }
        let t = self.tensor(name, stored, shape)?;
        let bytes = t.data();
        let v: Vec<f32> = match stored {
            Dtype::F64 => {
                let wide = bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
                let mut v = Vec::with_capacity(bytes.len() / 8);
                for (i, x) in wide.enumerate() {
                    let narrow = x as f32;
                    if x.is_finite() && !narrow.is_finite() {
                        return Err(io(
                            self.path,
                            format!(
                                "tensor {name:?} (F64) holds {x:e} at element {i}, past the f32 range; not loading it"
                            ),
                        ));
                    }
                    v.push(narrow);
                }
                v
            }
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            _ => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        };
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite {
                step: 0,
                msg: format!(
                    "{}: tensor {name:?} ({stored:?}) holds {} at element {i}; not loading it",
                    self.path.display(),
                    v[i]
                ),
            });
        }
        Ok(v)
    }

    /// Whether the file holds a tensor `name`.
    pub(super) fn has(&self, name: &str) -> bool {
        self.st.tensor(name).is_ok()
    }

    /// The file's tensor names, sorted.
    pub(super) fn names(&self) -> Vec<&str> {
        let mut names = self.st.names();
        names.sort_unstable();
        names
    }

    fn i64_scalar(&self, name: &str) -> Result<i64> {
        let t = self.tensor(name, Dtype::I64, &[])?;
        let b: [u8; 8] = t
            .data()
            .try_into()
            .map_err(|_| io(self.path, format!("tensor {name:?} is not 8 bytes")))?;
        Ok(i64::from_le_bytes(b))
    }

    /// A count of the metadata: present, decimal, at most [`MAX_COUNTER`].
    fn meta_count(&self, key: &str) -> Result<u64> {
        let v = self
            .meta
            .get(key)
            .ok_or_else(|| io(self.path, format!("metadata {key:?} is missing")))?;
        parse_count(v).ok_or_else(|| {
            io(
                self.path,
                format!("metadata {key:?} = {v:?} is not a count (0 to {MAX_COUNTER})"),
            )
        })
    }

    fn check_format(&self) -> Result<()> {
        if self.meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(io(
                self.path,
                format!(
                    "not a wgtrain checkpoint (metadata \"format\" is not {FORMAT:?}); load_weights reads plain safetensors"
                ),
            ));
        }
        let v = self.meta_count("format_version")?;
        if v > FORMAT_VERSION as u64 {
            return Err(io(
                self.path,
                format!("format version {v} is newer than this build reads ({FORMAT_VERSION})"),
            ));
        }
        Ok(())
    }

    fn train_state(&self) -> Result<TrainState> {
        let mut t = TrainState {
            global_step: self.meta_count("global_step")?,
            ..Default::default()
        };
        for (k, v) in &self.meta {
            if let Some(name) = k.strip_prefix("rng.") {
                let parsed = v
                    .split_once(':')
                    .and_then(|(a, b)| Some((plain_digits(a)?.parse().ok()?, parse_count(b)?)));
                let (seed, counter) = parsed.ok_or_else(|| {
                    io(
                        self.path,
                        format!(
                            "metadata {k:?} = {v:?} is not <seed>:<counter> (counter at most {MAX_COUNTER})"
                        ),
                    )
                })?;
                t.rng.insert(name.to_string(), RngState { seed, counter });
            } else if let Some(name) = k.strip_prefix("user.") {
                t.metadata.insert(name.to_string(), v.clone());
            }
        }
        Ok(t)
    }

    /// The optimizer's state, checked against `opt` (algorithm, slots, shapes, one step count);
    /// the names of the tensors it read are added to `seen`.
    fn optim_state(
        &self,
        layout: &ParamLayout,
        opt: &Optimizer,
        seen: &mut BTreeSet<String>,
    ) -> Result<OptimState> {
        let path = self.path;
        let want = opt.config().algorithm.name();
        match self.meta.get("optimizer") {
            Some(saved) if *saved == want => {}
            Some(saved) => {
                return Err(io(
                    path,
                    format!("holds {saved:?} optimizer state, the optimizer is {want:?}"),
                ));
            }
            None => {
                return Err(io(
                    path,
                    format!(
                        "holds no optimizer state (saved without one), the optimizer is {want:?}"
                    ),
                ));
            }
        }
        let slots = opt.slot_names().join(",");
        match self.meta.get("optimizer.slots") {
            Some(saved) if *saved == slots => {}
            Some(saved) => {
                return Err(io(
                    path,
                    format!("holds optimizer slots {saved:?}, the optimizer has {slots:?}"),
                ));
            }
            None => return Err(io(path, "metadata \"optimizer.slots\" is missing")),
        }
        let step = self.meta_count("optimizer.step")?;
        let position = self.meta_count("optimizer.schedule_position")?;
        let n = opt.len();
        if n != layout.len() {
            return Err(io(
                path,
                format!(
                    "the optimizer's arena has {n} elements, the layout {}",
                    layout.len()
                ),
            ));
        }
        let total = opt
            .slot_names()
            .len()
            .checked_mul(n)
            .ok_or_else(|| io(path, "the optimizer's state does not fit in memory"))?;
        let mut state = vec![0f32; total];
        for (s, slot) in opt.slot_names().iter().enumerate() {
            for e in layout.entries() {
                let name = state_name(&e.name, slot);
                let v = self.f32s(&name, &e.shape)?;
                let r = e.range();
                state[s * n + r.start..s * n + r.end].copy_from_slice(&v);
                seen.insert(name);
            }
        }
        for e in layout.entries() {
            let name = state_name(&e.name, "step");
            let v = self.i64_scalar(&name)?;
            if u64::try_from(v).ok() != Some(step) {
                return Err(io(
                    path,
                    format!(
                        "tensor {name:?} = {v}, but the optimizer step is {step} (one step for the whole arena)"
                    ),
                ));
            }
            seen.insert(name);
        }
        Ok(OptimState {
            algorithm: want,
            slots: opt.slot_names().to_vec(),
            state,
            step,
            position,
        })
    }
}

/// `s` if it is a number as `save` writes it: ASCII digits, no leading zero (`str::parse`
/// would also take `+1` and `01`, which `save` never writes: an edit).
fn plain_digits(s: &str) -> Option<&str> {
    let canonical = match s.as_bytes() {
        [] => false,
        [b'0', _, ..] => false,
        b => b.iter().all(u8::is_ascii_digit),
    };
    canonical.then_some(s)
}

/// A decimal count of at most [`MAX_COUNTER`].
fn parse_count(s: &str) -> Option<u64> {
    plain_digits(s)?.parse().ok().filter(|&c| c <= MAX_COUNTER)
}

/// Reads and checks everything `save` wrote against `layout` (and `optimizer`'s algorithm,
/// slots and arena); see [`Checkpoint`].
pub(super) fn read(
    path: &Path,
    bytes: &[u8],
    layout: &ParamLayout,
    optimizer: Option<&Optimizer>,
) -> Result<Checkpoint> {
    let file = File::parse(path, bytes)?;
    file.check_format()?;
    let train = file.train_state()?;
    let mut weights = Vec::with_capacity(layout.entries().len());
    let mut seen = BTreeSet::new();
    for e in layout.entries() {
        weights.push(file.f32s(&e.name, &e.shape)?);
        seen.insert(e.name.clone());
    }
    let optim = match optimizer {
        Some(opt) => Some(file.optim_state(layout, opt, &mut seen)?),
        None => None,
    };
    let mut names = file.st.names();
    names.sort_unstable();
    for name in names {
        // Without an optimizer the optimizer's tensors are simply not read.
        let known = seen.contains(name) || (optimizer.is_none() && name.starts_with("optim."));
        if !known {
            return Err(io(
                path,
                format!("tensor {name:?} is not part of this model (not in the layout)"),
            ));
        }
    }
    Ok(Checkpoint {
        path: path.to_path_buf(),
        layout: layout.clone(),
        weights,
        optim,
        train,
    })
}
