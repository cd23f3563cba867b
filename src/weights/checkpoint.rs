//! Checkpoints in safetensors, the format PyTorch users load (`safetensors.torch.load_file`).
//!
//! Contents:
//! - weights: `<name>` (e.g. `conv1.weight`), F32, PyTorch's shape and layout;
//! - optimizer state: `optim.<name>.<slot>` (F32, the parameter's shape; slot names as PyTorch's
//!   optimizer `state_dict`, e.g. `exp_avg`) and the per-parameter step `optim.<name>.step`
//!   (I64 scalar);
//! - metadata (strings): `format`, `format_version`, `global_step`, `optimizer`,
//!   `optimizer.step`, `optimizer.schedule_position`, `rng.<stream>` = `<seed>:<counter>`,
//!   `user.<key>`, and `hash.<tensor>`, an FNV-1a-64 checksum of each tensor's bytes.
//!
//! Writes are atomic (temp file in the same directory, fsync, rename over the target, fsync the
//! directory): a crash leaves the old checkpoint or the new one, never half of one. Loading checks
//! everything before writing anything to the GPU: a truncated, corrupt or mismatched file is an
//! `Err` naming the file and the tensor.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use safetensors::tensor::{Dtype, SafeTensors, TensorView, View};

use super::{ParamLayout, ParamStore, check_arena, fnv1a};
use crate::error::{Error, Result};
use crate::optim::Optimizer;

/// Value of the `format` metadata key.
pub const FORMAT: &str = "wgtrain-checkpoint";
/// Bumped when the meaning of keys changes; files of a newer version are refused.
pub const FORMAT_VERSION: u32 = 1;

/// A random stream's position: regenerating from `seed` and skipping to `counter` continues it
/// exactly (the crate's random streams are counter-based: dropout masks, shuffles per epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RngState {
    /// The stream's seed.
    pub seed: u64,
    /// Values drawn so far.
    pub counter: u64,
}

/// The training loop's own state, saved beside the weights and the optimizer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrainState {
    /// Steps of the training loop (may differ from the optimizer's, e.g. with accumulation).
    pub global_step: u64,
    /// Random streams by name.
    pub rng: BTreeMap<String, RngState>,
    /// Free-form entries (epoch, data position, ...), stored as `user.<key>`.
    pub metadata: BTreeMap<String, String>,
}

fn io(path: &Path, msg: impl Into<String>) -> Error {
    Error::Io {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// A tensor owned for serialisation.
struct Owned {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Owned {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        (&self.data[..]).into()
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn state_name(param: &str, slot: &str) -> String {
    format!("optim.{param}.{slot}")
}

/// Writes `bytes` to `path` atomically: a temp file beside it, fsynced, renamed over `path`, and
/// the directory fsynced so the rename itself is durable.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io(path, "not a file path"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        #[cfg(unix)]
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(path, format!("writing the checkpoint failed: {e}"))
    })
}

/// Saves the weights of `layout` from the `params` arena, the optimizer's state and counters (if
/// any) and `train`, atomically.
pub fn save(
    path: &Path,
    layout: &ParamLayout,
    params: &dyn ParamStore,
    optimizer: Option<&Optimizer>,
    train: &TrainState,
) -> Result<()> {
    check_arena(layout, params)?;
    let host = params.read_all()?;
    let mut tensors: BTreeMap<String, Owned> = BTreeMap::new();
    for e in layout.entries() {
        tensors.insert(
            e.name.clone(),
            Owned {
                dtype: Dtype::F32,
                shape: e.shape.clone(),
                data: f32_bytes(&host[e.range()]),
            },
        );
    }
    let mut meta: HashMap<String, String> = HashMap::new();
    meta.insert("format".into(), FORMAT.into());
    meta.insert("format_version".into(), FORMAT_VERSION.to_string());
    meta.insert("global_step".into(), train.global_step.to_string());
    for (k, r) in &train.rng {
        meta.insert(format!("rng.{k}"), format!("{}:{}", r.seed, r.counter));
    }
    for (k, v) in &train.metadata {
        meta.insert(format!("user.{k}"), v.clone());
    }
    if let Some(opt) = optimizer {
        if opt.len() != layout.len() {
            return Err(io(
                path,
                format!(
                    "the optimizer's arena has {} elements, the layout {}",
                    opt.len(),
                    layout.len()
                ),
            ));
        }
        let state = opt.read_state()?;
        let n = opt.len();
        for (s, slot) in opt.slot_names().iter().enumerate() {
            for e in layout.entries() {
                let r = e.range();
                tensors.insert(
                    state_name(&e.name, slot),
                    Owned {
                        dtype: Dtype::F32,
                        shape: e.shape.clone(),
                        data: f32_bytes(&state[s * n + r.start..s * n + r.end]),
                    },
                );
            }
        }
        for e in layout.entries() {
            tensors.insert(
                state_name(&e.name, "step"),
                Owned {
                    dtype: Dtype::I64,
                    shape: vec![],
                    data: (opt.step_count() as i64).to_le_bytes().to_vec(),
                },
            );
        }
        meta.insert("optimizer".into(), opt.config().algorithm.name());
        meta.insert("optimizer.slots".into(), opt.slot_names().join(","));
        meta.insert("optimizer.step".into(), opt.step_count().to_string());
        meta.insert(
            "optimizer.schedule_position".into(),
            opt.schedule_position().to_string(),
        );
    }
    for (k, t) in &tensors {
        meta.insert(format!("hash.{k}"), format!("{:016x}", fnv1a(&t.data)));
    }
    let bytes = safetensors::tensor::serialize(tensors.iter(), Some(meta))
        .map_err(|e| io(path, format!("serialising: {e}")))?;
    write_atomic(path, &bytes)
}

/// A parsed checkpoint file: its tensors and metadata, checksums verified.
struct File<'a> {
    path: &'a Path,
    st: SafeTensors<'a>,
    meta: HashMap<String, String>,
}

impl<'a> File<'a> {
    fn parse(path: &'a Path, bytes: &'a [u8]) -> Result<File<'a>> {
        let bad = |e: safetensors::SafeTensorError| {
            io(
                path,
                format!("not a valid safetensors file (truncated or corrupt?): {e}"),
            )
        };
        let st = SafeTensors::deserialize(bytes).map_err(bad)?;
        let (_, m) = SafeTensors::read_metadata(bytes).map_err(bad)?;
        let meta = m.metadata().clone().unwrap_or_default();
        for (name, t) in st.iter() {
            if let Some(h) = meta.get(&format!("hash.{name}"))
                && *h != format!("{:016x}", fnv1a(t.data()))
            {
                return Err(io(
                    path,
                    format!("tensor {name:?}: data corrupt (checksum mismatch)"),
                ));
            }
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
        Ok(t)
    }

    fn f32s(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self.tensor(name, Dtype::F32, shape)?;
        Ok(t.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn meta_u64(&self, key: &str) -> Result<u64> {
        let v = self
            .meta
            .get(key)
            .ok_or_else(|| io(self.path, format!("metadata {key:?} is missing")))?;
        v.parse().map_err(|_| {
            io(
                self.path,
                format!("metadata {key:?} = {v:?} is not a count"),
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
        let v = self.meta_u64("format_version")?;
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
            global_step: self.meta_u64("global_step")?,
            ..Default::default()
        };
        for (k, v) in &self.meta {
            if let Some(name) = k.strip_prefix("rng.") {
                let parsed = v
                    .split_once(':')
                    .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
                let (seed, counter) = parsed.ok_or_else(|| {
                    io(
                        self.path,
                        format!("metadata {k:?} = {v:?} is not <seed>:<counter>"),
                    )
                })?;
                t.rng.insert(name.to_string(), RngState { seed, counter });
            } else if let Some(name) = k.strip_prefix("user.") {
                t.metadata.insert(name.to_string(), v.clone());
            }
        }
        Ok(t)
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io(path, format!("cannot read: {e}")))
}

/// Restores what `save` wrote: the weights into `params`, the optimizer's state and counters (when
/// given), and returns the training state. Every tensor is checked (present, F32 or I64 as
/// saved, the layout's shape, checksum) and no unexpected tensor may be present before anything
/// is written.
pub fn load(
    path: &Path,
    layout: &ParamLayout,
    params: &dyn ParamStore,
    optimizer: Option<&mut Optimizer>,
) -> Result<TrainState> {
    check_arena(layout, params)?;
    let bytes = read(path)?;
    let file = File::parse(path, &bytes)?;
    file.check_format()?;
    let train = file.train_state()?;
    let mut weights = Vec::new();
    for e in layout.entries() {
        weights.push(file.f32s(&e.name, &e.shape)?);
    }
    let mut expected: Vec<String> = layout.entries().iter().map(|e| e.name.clone()).collect();
    let mut opt_state = None;
    if let Some(opt) = &optimizer {
        let want = opt.config().algorithm.name();
        match file.meta.get("optimizer") {
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
        let step = file.meta_u64("optimizer.step")?;
        let pos = file.meta_u64("optimizer.schedule_position")?;
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
        let mut state = vec![0f32; opt.slot_names().len() * n];
        for (s, slot) in opt.slot_names().iter().enumerate() {
            for e in layout.entries() {
                let name = state_name(&e.name, slot);
                let v = file.f32s(&name, &e.shape)?;
                let r = e.range();
                state[s * n + r.start..s * n + r.end].copy_from_slice(&v);
                expected.push(name);
            }
        }
        for e in layout.entries() {
            let name = state_name(&e.name, "step");
            let t = file.tensor(&name, Dtype::I64, &[])?;
            let v = i64::from_le_bytes(t.data().try_into().expect("8 bytes checked by shape"));
            if v < 0 || v as u64 != step {
                return Err(io(
                    path,
                    format!(
                        "tensor {name:?} = {v}, but the optimizer step is {step} (one step for the whole arena)"
                    ),
                ));
            }
            expected.push(name);
        }
        opt_state = Some((state, step, pos));
    }
    for name in file.st.names() {
        let known = expected.iter().any(|e| e == name)
            || (optimizer.is_none() && name.starts_with("optim."));
        if !known {
            return Err(io(
                path,
                format!("tensor {name:?} is not part of this model (not in the layout)"),
            ));
        }
    }
    write_entries(layout, params, &weights)?;
    if let (Some(opt), Some((state, step, pos))) = (optimizer, opt_state) {
        opt.write_state(&state)?;
        opt.set_counters(step, pos);
    }
    Ok(train)
}

/// Loads only the weights of `layout` (fine-tuning, inference): any safetensors file with those
/// names, shapes and F32 data, e.g. one PyTorch wrote; other tensors are ignored.
pub fn load_weights(path: &Path, layout: &ParamLayout, params: &dyn ParamStore) -> Result<()> {
    check_arena(layout, params)?;
    let bytes = read(path)?;
    let file = File::parse(path, &bytes)?;
    let mut weights = Vec::new();
    for e in layout.entries() {
        weights.push(file.f32s(&e.name, &e.shape)?);
    }
    write_entries(layout, params, &weights)
}

/// Writes every entry's values (layout order) into the arena; the gaps stay zero.
fn write_entries(
    layout: &ParamLayout,
    params: &dyn ParamStore,
    weights: &[Vec<f32>],
) -> Result<()> {
    let mut host = vec![0f32; layout.len()];
    for (e, w) in layout.entries().iter().zip(weights) {
        host[e.range()].copy_from_slice(w);
    }
    params.write_all(&host)
}

/// One F32 tensor of a safetensors file, checked against `shape` (the `Init::Checkpoint` path).
pub fn read_tensor(path: &Path, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let bytes = read(path)?;
    File::parse(path, &bytes)?.f32s(name, shape)
}
