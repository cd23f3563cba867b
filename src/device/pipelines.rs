//! The pipeline cache: each WGSL module parsed and compiled once per device and variant, the
//! bind group and pipeline layouts its entry points declare (read from naga's IR, so a launch
//! can make its bind group before its pipeline exists), and the compute pipelines themselves,
//! built on a few worker threads while the caller goes on lowering. A graph's compile asks for
//! hundreds of pipelines, each a driver compile (SPIR-V to machine code) of tens of
//! milliseconds: built one after another they made Inception v3's first compile take 57 s.
//!
//! Environment: `WGTRAIN_PIPELINE_THREADS` = how many threads build pipelines (`0` or `1`: each
//! on the thread asking for it, when it asks; default the cores available, at most 8; at most
//! 64).

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc};

use super::Device;
use crate::dtype::Variant;
use crate::error::{Error, Result};

/// The most pipeline threads `WGTRAIN_PIPELINE_THREADS` may ask for.
const MAX_THREADS: usize = 64;

/// The pipeline threads the environment asks for (module doc), or an `Err` naming a value that
/// is not a count.
pub(super) fn threads_from_env() -> Result<usize> {
    match std::env::var("WGTRAIN_PIPELINE_THREADS") {
        Ok(s) if !s.trim().is_empty() => match s.trim().parse::<usize>() {
            Ok(n) => Ok(n.min(MAX_THREADS)),
            Err(_) => Err(Error::Invalid(format!(
                "WGTRAIN_PIPELINE_THREADS={s}: expected a number of threads (0 or 1: build \
                 pipelines on the calling thread)"
            ))),
        },
        _ => Ok(std::thread::available_parallelism().map_or(1, |n| n.get().min(8))),
    }
}

type Key = (&'static str, Variant, String, String);

/// Per storage binding, the byte width of the elements an entry point reads there.
type BindingWidths = Arc<HashMap<u32, u32>>;

/// How an entry point uses one buffer binding of group 0, as wgpu's automatic layout would
/// derive it, so the explicit layout matches the shader exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct BufferUse {
    binding: u32,
    /// `None`: a uniform; `Some(read_only)`: a storage buffer.
    storage: Option<bool>,
    /// Bytes of the declared type (one element of a runtime-sized array).
    min_size: u64,
}

/// What one entry point binds and reads.
struct EntryPoint {
    widths: BindingWidths,
    /// Its buffers by binding, or why it binds something a kernel here never does.
    uses: std::result::Result<Arc<[BufferUse]>, String>,
}

/// A compiled module and its entry points by name.
type Module = (wgpu::ShaderModule, Arc<HashMap<String, EntryPoint>>);

/// A bind group layout and the pipeline layout of that one group.
type Layouts = (wgpu::BindGroupLayout, wgpu::PipelineLayout);

/// A pipeline being built or built, what its bind group is made against, and what it reads.
#[derive(Clone)]
pub(crate) struct Pipeline {
    pub handle: PipelineHandle,
    pub bind_group_layout: wgpu::BindGroupLayout,
    pub widths: BindingWidths,
}

/// Modules, layouts and pipelines by (shader name, variant, entry point, constants), and the
/// threads that build the pipelines.
pub struct PipelineCache {
    modules: Mutex<HashMap<(&'static str, Variant), Module>>,
    layouts: Mutex<HashMap<Arc<[BufferUse]>, Layouts>>,
    pipelines: Mutex<HashMap<Key, Pipeline>>,
    builders: Builders,
}

impl PipelineCache {
    /// An empty cache whose pipelines `threads` threads build (0 or 1: the caller builds each).
    pub(super) fn new(threads: usize) -> PipelineCache {
        PipelineCache {
            modules: Mutex::default(),
            layouts: Mutex::default(),
            pipelines: Mutex::default(),
            builders: Builders {
                threads,
                queue: OnceLock::new(),
            },
        }
    }

    /// How many threads build pipelines (0 or 1: none but the caller).
    pub(super) fn threads(&self) -> usize {
        self.builders.threads
    }
}

/// Locks `m`; the maps behind these locks are only inserted into whole, so a panic elsewhere
/// cannot leave one half-updated.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A compute pipeline built or being built; clones share one build. Resolving it (`get`) waits
/// for the build, or does it on the calling thread if no worker has started it yet, so a
/// waiter never idles while its own pipeline sits in the queue.
#[derive(Clone)]
pub(crate) struct PipelineHandle(Arc<Build>);

struct Build {
    /// `pipeline <shader>::<entry>`, for its error.
    what: String,
    /// Taken by whichever thread builds it.
    job: Mutex<Option<Job>>,
    built: OnceLock<std::result::Result<wgpu::ComputePipeline, String>>,
}

/// What `create_compute_pipeline` needs, owned, so another thread can call it.
struct Job {
    device: wgpu::Device,
    module: wgpu::ShaderModule,
    layout: wgpu::PipelineLayout,
    entry: String,
    constants: Vec<(String, f64)>,
}

impl Job {
    fn build(self) -> std::result::Result<wgpu::ComputePipeline, String> {
        let constants: Vec<(&str, f64)> = self
            .constants
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        // Scopes are per thread in wgpu: these catch this build's errors on whichever thread
        // runs it.
        super::scope(&self.device, |d| {
            d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&self.entry),
                layout: Some(&self.layout),
                module: &self.module,
                entry_point: Some(&self.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    ..Default::default()
                },
                cache: None,
            })
        })
    }
}

impl Build {
    /// Builds the pipeline unless another thread took the job first.
    fn run(&self) {
        let Some(job) = lock(&self.job).take() else {
            return;
        };
        // A panic in the driver must still fill the slot: its waiters would hang otherwise.
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.build()))
            .unwrap_or_else(|_| Err("wgpu panicked while building it".into()));
        let _ = self.built.set(built);
    }
}

impl PipelineHandle {
    /// The pipeline, once built (waiting for the thread building it, or building it here); a
    /// failed build is an `Err` naming the shader and entry point.
    pub(crate) fn get(&self) -> Result<&wgpu::ComputePipeline> {
        self.0.run();
        self.0
            .built
            .wait()
            .as_ref()
            .map_err(|e| Error::Gpu(format!("{}: {e}", self.0.what)))
    }

    /// The build's error, if it has finished and failed.
    fn failed(&self) -> Option<Error> {
        match self.0.built.get() {
            Some(Err(e)) => Some(Error::Gpu(format!("{}: {e}", self.0.what))),
            _ => None,
        }
    }
}

/// The worker threads, started at the first pipeline, and their queue. Workers own no `Device`:
/// they end when the cache (and so the queue's sender) is dropped with its device.
struct Builders {
    threads: usize,
    /// `None` when the caller builds: one thread asked for, or none could be started.
    queue: OnceLock<Option<mpsc::Sender<Arc<Build>>>>,
}

impl Builders {
    /// Starts `build` on a worker, or runs it now where there are none.
    fn submit(&self, build: &Arc<Build>) {
        let queue = self.queue.get_or_init(|| self.start());
        if let Some(tx) = queue
            && tx.send(build.clone()).is_ok()
        {
            return;
        }
        build.run();
    }

    fn start(&self) -> Option<mpsc::Sender<Arc<Build>>> {
        if self.threads <= 1 {
            return None;
        }
        let (tx, rx) = mpsc::channel::<Arc<Build>>();
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..self.threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("wgtrain-pipelines-{i}"))
                .spawn(move || {
                    loop {
                        let next = lock(&rx).recv();
                        match next {
                            Ok(build) => build.run(),
                            Err(_) => return,
                        }
                    }
                });
            started += usize::from(spawned.is_ok());
        }
        (started > 0).then_some(tx)
    }
}

/// The WGSL parsed, and per entry point what it binds (buffer kind and declared size, for its
/// layout) and the element width (bytes of its scalar) of every storage binding it uses, read
/// from naga's IR so a launch can refuse a tensor of the wrong width (an f16 tensor bound where
/// a kernel reads f32) instead of computing garbage. The module goes to wgpu as it is
/// (`ShaderSource::Naga`).
fn parse(src: &str) -> std::result::Result<(naga::Module, HashMap<String, EntryPoint>), String> {
    use naga::{AddressSpace, TypeInner};
    let module = naga::front::wgsl::parse_str(src).map_err(|e| e.emit_to_string(src))?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| format!("{e:?}"))?;
    fn width(m: &naga::Module, ty: naga::Handle<naga::Type>) -> Option<u32> {
        match &m.types[ty].inner {
            TypeInner::Scalar(s) | TypeInner::Atomic(s) => Some(s.width as u32),
            TypeInner::Vector { scalar, .. } | TypeInner::Matrix { scalar, .. } => {
                Some(scalar.width as u32)
            }
            TypeInner::Array { base, .. } => width(m, *base),
            _ => None,
        }
    }
    let mut out = HashMap::new();
    for (k, ep) in module.entry_points.iter().enumerate() {
        let used = info.get_entry_point(k);
        let mut widths = HashMap::new();
        let mut uses = Ok(Vec::new());
        for (h, var) in module.global_variables.iter() {
            let Some(b) = &var.binding else { continue };
            if used[h].is_empty() {
                continue;
            }
            // As wgpu derives an automatic layout: read-only only when never stored to.
            let storage = match var.space {
                AddressSpace::Uniform => None,
                AddressSpace::Storage { access } => Some(access == naga::StorageAccess::LOAD),
                other => {
                    uses = Err(format!("binding {} is {other:?}, not a buffer", b.binding));
                    continue;
                }
            };
            if b.group != 0 {
                uses = Err(format!(
                    "binding {} is in group {}, not 0",
                    b.binding, b.group
                ));
            }
            if storage.is_some()
                && let Some(bytes) = width(&module, var.ty)
            {
                widths.insert(b.binding, bytes);
            }
            let min_size = module.types[var.ty].inner.size(module.to_ctx()) as u64;
            if let Ok(u) = &mut uses {
                u.push(BufferUse {
                    binding: b.binding,
                    storage,
                    min_size,
                });
            }
        }
        let uses = uses.map(|mut u| {
            u.sort_by_key(|b| b.binding);
            Arc::from(u)
        });
        let entry = EntryPoint {
            widths: Arc::new(widths),
            uses,
        };
        out.insert(ep.name.clone(), entry);
    }
    Ok((module, out))
}

impl Device {
    /// The compute pipeline of `entry` in the WGSL module `name` compiled for `variant` (storage
    /// and accumulator types; from `source()` the first time the pair is seen) with these
    /// pipeline constants, cached for the device's life: its handle (built on a worker thread,
    /// `PipelineHandle::get` waits), the layout its bind group is made against, and the element
    /// width each storage binding of the entry reads. Shader and layout errors are an `Err` here;
    /// a failed pipeline is one here when built on this thread, else from `get`.
    pub(crate) fn pipeline(
        &self,
        name: &'static str,
        variant: impl Into<Variant>,
        source: impl FnOnce() -> String,
        user_code: bool,
        entry: &str,
        constants: &[(&str, f64)],
    ) -> Result<Pipeline> {
        let variant = variant.into();
        let key: Key = (name, variant, entry.to_string(), format!("{constants:?}"));
        let cache = &self.0.cache;
        // A failed build is not kept (a retry builds again, as when built inline).
        if let Some(p) = lock(&cache.pipelines).get(&key)
            && p.handle.failed().is_none()
        {
            return Ok(p.clone());
        }
        let (module, entries) = self.module(name, variant, source, user_code)?;
        let ep = entries.get(entry).ok_or_else(|| {
            Error::Gpu(format!(
                "shader {name} ({variant:?}) has no entry point {entry}"
            ))
        })?;
        let uses = ep.uses.as_ref().map_err(|e| {
            Error::Gpu(format!(
                "shader {name}::{entry}: {e} (kernels bind buffers in group 0)"
            ))
        })?;
        let (bind_group_layout, layout) = self.layouts(uses)?;
        let build = Arc::new(Build {
            what: format!("pipeline {name}::{entry}"),
            job: Mutex::new(Some(Job {
                device: self.0.device.clone(),
                module,
                layout,
                entry: entry.to_string(),
                constants: constants.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
            })),
            built: OnceLock::new(),
        });
        let p = Pipeline {
            handle: PipelineHandle(build.clone()),
            bind_group_layout,
            widths: ep.widths.clone(),
        };
        // Another thread may have asked for the same key meanwhile: keep one build per key.
        let p = {
            let mut pipelines = lock(&cache.pipelines);
            match pipelines.get(&key) {
                Some(other) if other.handle.failed().is_none() => other.clone(),
                _ => {
                    pipelines.insert(key, p.clone());
                    p
                }
            }
        };
        if !Arc::ptr_eq(&p.handle.0, &build) {
            return Ok(p);
        }
        cache.builders.submit(&build);
        // Built inline, its error is this call's, as before there were threads; with threads,
        // always the waiter's, however fast the build failed.
        match p.handle.failed() {
            Some(e) if cache.builders.threads <= 1 => Err(e),
            _ => Ok(p),
        }
    }

    /// The module `name` compiled for `variant` and its entry points, parsed from `source()`
    /// the first time.
    fn module(
        &self,
        name: &'static str,
        variant: Variant,
        source: impl FnOnce() -> String,
        user_code: bool,
    ) -> Result<(wgpu::ShaderModule, Arc<HashMap<String, EntryPoint>>)> {
        let mut modules = lock(&self.0.cache.modules);
        if let Some(m) = modules.get(&(name, variant)) {
            return Ok(m.clone());
        }
        let (module, entries) = parse(&source())
            .map_err(|e| Error::Gpu(format!("shader {name} ({variant:?}): {e}")))?;
        let m = self
            .scoped(|d| {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(name),
                    source: wgpu::ShaderSource::Naga(std::borrow::Cow::Owned(module)),
                };
                // Safety: the crate's kernels are trusted per `runtime_checks`; user code keeps
                // every check.
                unsafe { d.create_shader_module_trusted(desc, self.runtime_checks(user_code)) }
            })
            .map_err(|e| Error::Gpu(format!("shader {name}: {e}")))?;
        let m = (m, Arc::new(entries));
        modules.insert((name, variant), m.clone());
        Ok(m)
    }

    /// The storage bindings the entry `entry` of `name`'s `variant` reads only and those it
    /// writes (from the module's IR, parsed once).
    pub(crate) fn storage_slots(
        &self,
        name: &'static str,
        variant: Variant,
        entry: &str,
        user_code: bool,
        source: impl FnOnce() -> String,
    ) -> Result<(Vec<u32>, Vec<u32>)> {
        let (_, entries) = self.module(name, variant, source, user_code)?;
        let uses = match entries.get(entry).map(|ep| ep.uses.as_ref()) {
            Some(Ok(uses)) => uses.clone(),
            // The pipeline of the launch's own variant reports these.
            _ => return Ok((Vec::new(), Vec::new())),
        };
        let slots = |read_only: bool| {
            uses.iter()
                .filter(|u| u.storage == Some(read_only))
                .map(|u| u.binding)
                .collect()
        };
        Ok((slots(true), slots(false)))
    }

    /// The bind group layout of `uses` and its pipeline layout, made once per distinct list.
    fn layouts(&self, uses: &Arc<[BufferUse]>) -> Result<Layouts> {
        let mut layouts = lock(&self.0.cache.layouts);
        if let Some(l) = layouts.get(uses) {
            return Ok(l.clone());
        }
        let entries: Vec<wgpu::BindGroupLayoutEntry> = uses
            .iter()
            .map(|u| wgpu::BindGroupLayoutEntry {
                binding: u.binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match u.storage {
                        None => wgpu::BufferBindingType::Uniform,
                        Some(read_only) => wgpu::BufferBindingType::Storage { read_only },
                    },
                    has_dynamic_offset: false,
                    min_binding_size: NonZeroU64::new(u.min_size),
                },
                count: None,
            })
            .collect();
        let l = self.scoped(|d| {
            let group = d.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: None,
                entries: &entries,
            });
            let pipeline = d.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: None,
                bind_group_layouts: &[Some(&group)],
                immediate_size: 0,
            });
            (group, pipeline)
        })?;
        layouts.insert(uses.clone(), l.clone());
        Ok(l)
    }
}
