//! Checkpoints in safetensors, the format PyTorch users load (`safetensors.torch.load_file`).
//!
//! Contents:
//! - weights: `<name>` (e.g. `conv1.weight`), F32, PyTorch's shape and layout (loading also
//!   takes F64, F16 and BF16 tensors, as PyTorch may save them, converted to f32: an F64 value
//!   past f32's range, or NaN or infinity in any dtype, is an `Err` naming the tensor; F64
//!   values below f32's smallest subnormal become 0);
//! - optimizer state: `optim.<name>.<slot>` (F32, the parameter's shape; slot names as PyTorch's
//!   optimizer `state_dict`, e.g. `exp_avg`) and the per-parameter step `optim.<name>.step`
//!   (I64 scalar);
//! - metadata (strings): `format`, `format_version`, `global_step`, `optimizer`,
//!   `optimizer.step`, `optimizer.schedule_position`, `rng.<stream>` = `<seed>:<counter>`,
//!   `user.<key>`; `hash.<tensor>`, an FNV-1a-64 checksum of each tensor's bytes
//!   ([`tensor_checksum`]); and `metadata_hash`, a checksum of all the other metadata, tensor
//!   checksums included ([`metadata_checksum`]). A missing or wrong checksum is an `Err`.
//!
//! Writes are atomic (temp file in the same directory, fsync, rename over the target, fsync the
//! directory): a crash leaves the old checkpoint or the new one, never half of one; the temp
//! files a crash leaves behind are removed by the next successful save to the same path.
//! Loading is two phases: [`read`] checks everything (tensors, checksums, counters) and returns
//! a [`Checkpoint`]; [`Checkpoint::apply`] writes it. A truncated, corrupt, edited or mismatched
//! file is an `Err` naming the file and the tensor, and changes nothing. [`load_into`] loads by
//! name into any compiled graph (an inference graph has no arena layout), weights and the
//! persistent states the training loop saves as `user.state.<name>`.

mod file;
mod into;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use safetensors::tensor::{Dtype, View};

use super::{ParamLayout, ParamStore, check_arena};
use crate::error::{Error, Result};
use crate::optim::Optimizer;
use file::File;
pub use file::{METADATA_HASH, metadata_checksum, tensor_checksum};
pub use into::{LoadTarget, TargetEntry, decode_state, encode_state, load_into, state_key};

/// Value of the `format` metadata key.
pub const FORMAT: &str = "wgtrain-checkpoint";
/// Bumped when the meaning of keys changes; files of a newer version are refused.
pub const FORMAT_VERSION: u32 = 1;
/// The largest step count, epoch or random-stream counter a checkpoint holds: PyTorch's int64
/// counters, and room to count on without overflowing.
pub const MAX_COUNTER: u64 = i64::MAX as u64;

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

/// The prefix of the temp files `write_atomic` writes for a target named `name`:
/// `.<name>.tmp-<pid>-<counter>` beside it.
fn temp_prefix(name: &std::ffi::OsStr) -> String {
    format!(".{}.tmp-", name.to_string_lossy())
}

/// Whether `file` is one of the temp files of the target whose prefix is `prefix`.
fn is_temp_of(file: &str, prefix: &str) -> bool {
    file.strip_prefix(prefix)
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(pid, n)| {
            [pid, n]
                .iter()
                .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Writes `bytes` to `path` atomically: a temp file beside it, fsynced, renamed over `path`, and
/// the directory fsynced so the rename itself is durable. A failed write removes its temp file;
/// a successful one also removes the temp files earlier writes to `path` left when they were
/// interrupted (a crash, a kill). Two writers saving to one path at the same time are not
/// supported: one of them may find its temp file gone and return an `Err`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io(path, "not a file path"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = temp_prefix(name);
    let tmp = dir.join(format!(
        "{prefix}{}-{}",
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
    })?;
    // Best effort: a stale temp file that cannot be removed costs disk space, not correctness,
    // and the checkpoint itself is written.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if is_temp_of(&e.file_name().to_string_lossy(), &prefix)
                && e.file_type().is_ok_and(|t| t.is_file())
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
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
    // Refused here rather than written as a checkpoint `load` would refuse.
    let counters = std::iter::once(("global_step".to_string(), train.global_step)).chain(
        train
            .rng
            .iter()
            .map(|(k, r)| (format!("rng.{k}"), r.counter)),
    );
    for (what, c) in counters {
        if c > MAX_COUNTER {
            return Err(io(
                path,
                format!(
                    "{what} = {c} exceeds the largest counter a checkpoint holds ({MAX_COUNTER})"
                ),
            ));
        }
    }
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
        for (what, c) in [
            ("optimizer.step", opt.step_count()),
            ("optimizer.schedule_position", opt.schedule_position()),
        ] {
            if c > MAX_COUNTER {
                return Err(io(
                    path,
                    format!(
                        "{what} = {c} exceeds the largest counter a checkpoint holds ({MAX_COUNTER})"
                    ),
                ));
            }
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
        meta.insert(format!("hash.{k}"), tensor_checksum(&t.data));
    }
    meta.insert(METADATA_HASH.into(), metadata_checksum(&meta));
    let bytes = safetensors::tensor::serialize(tensors.iter(), Some(meta))
        .map_err(|e| io(path, format!("serialising: {e}")))?;
    write_atomic(path, &bytes)
}

/// The optimizer's part of a checkpoint, checked against the optimizer it was read for.
struct OptimState {
    algorithm: String,
    slots: Vec<String>,
    /// `[slots, n]`, slot-major, as `Optimizer::write_state` takes it.
    state: Vec<f32>,
    step: u64,
    position: u64,
}

/// A checkpoint read and checked in full (every tensor present with its dtype, shape and
/// checksum, every metadata entry parsed, the metadata checksum verified) and not yet applied.
/// [`read`] gives it, so a caller can check its own metadata (`train_state`) before anything
/// changes; [`Checkpoint::apply`] then writes it and can fail only on a device error.
pub struct Checkpoint {
    path: PathBuf,
    layout: ParamLayout,
    /// One vector per layout entry, layout order.
    weights: Vec<Vec<f32>>,
    optim: Option<OptimState>,
    train: TrainState,
}

impl Checkpoint {
    /// The file it came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The training loop's state it holds.
    pub fn train_state(&self) -> &TrainState {
        &self.train
    }

    /// Writes the weights into `params` and, when given, the state and counters into
    /// `optimizer`, which must be the arena and optimizer it was read for (checked first:
    /// element count, algorithm, slots); returns the training state.
    pub fn apply(
        self,
        params: &dyn ParamStore,
        optimizer: Option<&mut Optimizer>,
    ) -> Result<TrainState> {
        let at = |e: Error| e.context(self.path.display());
        check_arena(&self.layout, params).map_err(at)?;
        if let Some(opt) = &optimizer {
            let Some(s) = &self.optim else {
                return Err(io(
                    &self.path,
                    "was read without an optimizer; it has no optimizer state to apply",
                ));
            };
            let algorithm = opt.config().algorithm.name();
            if algorithm != s.algorithm
                || opt.slot_names() != s.slots.as_slice()
                || opt.len() != self.layout.len()
            {
                return Err(io(
                    &self.path,
                    format!(
                        "was read for a {:?} optimizer with slots {:?} over {} elements, not this {algorithm:?} one with {:?} over {}",
                        s.algorithm,
                        s.slots,
                        self.layout.len(),
                        opt.slot_names(),
                        opt.len()
                    ),
                ));
            }
        }
        write_entries(&self.layout, params, &self.weights).map_err(at)?;
        if let (Some(opt), Some(s)) = (optimizer, &self.optim) {
            opt.write_state(&s.state).map_err(at)?;
            opt.set_counters(s.step, s.position);
        }
        Ok(self.train)
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io(path, format!("cannot read: {e}")))
}

/// Reads `path` and checks it against `layout` and, when given, `optimizer` (algorithm, slots,
/// arena), writing nothing: every tensor present (F32, or I64 for the step counts), of the
/// layout's shape, with its checksum; no tensor the model does not have; the metadata checksum
/// and every counter. The error names the file, and the tensor or entry at fault.
pub fn read(
    path: &Path,
    layout: &ParamLayout,
    optimizer: Option<&Optimizer>,
) -> Result<Checkpoint> {
    let bytes = read_file(path)?;
    file::read(path, &bytes, layout, optimizer)
}

/// Restores what `save` wrote: the weights into `params`, the optimizer's state and counters (when
/// given), and returns the training state. Everything is read and checked first ([`read`]);
/// a file that fails any check changes nothing.
pub fn load(
    path: &Path,
    layout: &ParamLayout,
    params: &dyn ParamStore,
    optimizer: Option<&mut Optimizer>,
) -> Result<TrainState> {
    check_arena(layout, params)?;
    read(path, layout, optimizer.as_deref())?.apply(params, optimizer)
}

/// Loads only the weights of `layout` (fine-tuning, inference): any safetensors file with those
/// names, shapes and F32 data (F64, F16, BF16 converted), e.g. one PyTorch wrote; other tensors
/// are ignored.
pub fn load_weights(path: &Path, layout: &ParamLayout, params: &dyn ParamStore) -> Result<()> {
    check_arena(layout, params)?;
    let bytes = read_file(path)?;
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

/// One tensor of a safetensors file as f32 (F64, F16, BF16 converted), checked against `shape`
/// (the `Init::Checkpoint` path).
pub fn read_tensor(path: &Path, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let bytes = read_file(path)?;
    File::parse(path, &bytes)?.f32s(name, shape)
}
