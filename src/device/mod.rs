//! The GPU device: adapter choice, what it can do, and the few primitives everything else uses
//! (buffers, submit, readback, error scopes turned into `Err`).
//!
//! Environment:
//! - `WGTRAIN_BACKEND` = `vulkan` | `metal` | `dx12` | `gl` picks the backend. Without it, GL is
//!   left out: on Linux it duplicates the Vulkan adapters and lacks compute features we rely on.
//! - `WGTRAIN_ADAPTER` = a case-insensitive substring of the adapter name (e.g. `llvmpipe`, `h100`).
//! - `WGTRAIN_SHADER_CHECKS=all` compiles the crate's own kernels with every runtime check wgpu
//!   offers, as user code always is (see `Device::runtime_checks`): for chasing a kernel bug.
//! - `WGTRAIN_PIPELINE_THREADS` = how many threads build compute pipelines (`0` or `1`: each on
//!   the thread that asks for it; default the cores available, at most 8; see `pipelines.rs`).

mod pipelines;
mod registry;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result, Unit};
use pipelines::PipelineCache;
pub(crate) use pipelines::PipelineHandle;

/// `bytes` as a binding or copy takes them: whole 4-byte words (an odd count of f16 rounds up),
/// never empty.
pub(crate) fn word_padded(bytes: u64) -> u64 {
    bytes.max(4).div_ceil(4) * 4
}

/// A cooperative-matrix tile shape the adapter supports (M×N×K, input and accumulator types).
#[derive(Clone, Debug)]
pub struct CoopTile {
    /// Tile rows M.
    pub m: u32,
    /// Tile columns N.
    pub n: u32,
    /// Tile depth K.
    pub k: u32,
    /// Input (A and B) element type, as wgpu names it.
    pub ab: String,
    /// Accumulator element type, as wgpu names it.
    pub acc: String,
}

/// What the chosen adapter offers, in the terms the kernels care about.
#[derive(Clone, Debug)]
pub struct Capabilities {
    /// f16 in shaders (`enable f16;`).
    pub shader_f16: bool,
    /// Subgroup operations in shaders.
    pub subgroup: bool,
    /// `(min, max)` subgroup size; kernels must not assume one value inside this range.
    pub subgroup_size: (u32, u32),
    /// Cooperative-matrix tile shapes the adapter supports (empty if none).
    pub cooperative_matrix: Vec<CoopTile>,
    /// Raw backend shaders (e.g. MSL) can be passed through.
    pub passthrough_shaders: bool,
    /// GPU timestamps can be queried.
    pub timestamp_query: bool,
    /// Largest storage binding, in bytes.
    pub max_storage_binding: u64,
    /// Largest buffer, in bytes.
    pub max_buffer_size: u64,
    /// Storage buffers one shader stage may bind.
    pub max_storage_buffers_per_stage: u32,
    /// Workgroup memory per workgroup, in bytes.
    pub max_workgroup_storage: u32,
    /// Invocations per workgroup.
    pub max_invocations_per_workgroup: u32,
    /// Workgroups per grid dimension.
    pub max_workgroups_per_dim: u32,
    /// Byte alignment of a storage binding's offset (arena slices are placed on it).
    pub storage_offset_alignment: u32,
}

pub(crate) struct Inner {
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub caps: Capabilities,
    pub cache: PipelineCache,
    /// Errors no scope caught (e.g. from a dropped resource), per thread; reported at that
    /// thread's next sync point.
    pub uncaptured: Arc<registry::Uncaptured>,
    /// Set by wgpu when the device is lost; the registry then opens a fresh one.
    pub lost: Arc<AtomicBool>,
}

/// A handle to one GPU; cheap to clone, and shared: the process keeps one open device per
/// adapter (and feature set), and `Device::new`, `Device::all` and `Device::from_adapter` hand
/// out clones of it, since several devices opened on one NVIDIA GPU (Vulkan) and used from
/// parallel threads of one process hung intermittently in the driver on an H200, where one
/// shared device did not. The device stays open for the process's life (with its pipeline
/// cache), unless it is lost: then the next of those calls opens a fresh one.
///
/// Threads sharing it do not see each other's errors: wgpu's error scopes are per thread, and
/// errors no scope caught are reported to the thread that caused them (`take_uncaptured`).
/// Settings made on the underlying wgpu device (`wgpu()`) affect every holder.
#[derive(Clone)]
pub struct Device(pub(crate) Arc<Inner>);

fn parse_backend(s: &str) -> Result<wgpu::Backends> {
    match s.to_ascii_lowercase().as_str() {
        "vulkan" | "vk" => Ok(wgpu::Backends::VULKAN),
        "metal" | "mtl" => Ok(wgpu::Backends::METAL),
        "dx12" | "d3d12" => Ok(wgpu::Backends::DX12),
        "gl" | "gles" | "opengl" => Ok(wgpu::Backends::GL),
        other => Err(Error::Invalid(format!(
            "WGTRAIN_BACKEND={other}: expected one of vulkan, metal, dx12, gl"
        ))),
    }
}

fn install_hint() -> &'static str {
    if cfg!(target_os = "linux") {
        "install a Vulkan driver: `apt-get install -y mesa-vulkan-drivers` gives lavapipe (software Vulkan), or your GPU vendor's driver"
    } else if cfg!(target_os = "macos") {
        "Metal should always be present on macOS 10.13+; check WGTRAIN_BACKEND/WGTRAIN_ADAPTER"
    } else {
        "install a Vulkan or DX12 capable GPU driver"
    }
}

impl Device {
    /// The adapter picked by the environment (see module doc), high-performance first.
    pub fn new() -> Result<Device> {
        let backends = match std::env::var("WGTRAIN_BACKEND") {
            Ok(s) if !s.is_empty() => parse_backend(&s)?,
            _ => wgpu::Backends::PRIMARY,
        };
        let name = std::env::var("WGTRAIN_ADAPTER")
            .ok()
            .filter(|s| !s.is_empty());
        let adapters = Self::adapters(backends);
        let (adapter, ordinal) = match &name {
            Some(n) => adapters
                .into_iter()
                .find(|(a, _)| a.get_info().name.to_lowercase().contains(&n.to_lowercase()))
                .ok_or_else(|| {
                    Error::NoAdapter(format!(
                        "no adapter whose name contains {n:?} (WGTRAIN_ADAPTER)"
                    ))
                })?,
            None => adapters
                .into_iter()
                .next()
                .ok_or_else(|| Error::NoAdapter(install_hint().into()))?,
        };
        let features = Self::requested(&adapter, wgpu::Features::empty());
        registry::shared(adapter, features, ordinal)
    }

    /// Every adapter found, best first (discrete, integrated, virtual, CPU), one device each
    /// (the process's shared one, as `new` gives). Tests run on all of them; adapters that fail
    /// to open are returned as `Err`.
    pub fn all() -> Vec<Result<Device>> {
        let backends = match std::env::var("WGTRAIN_BACKEND") {
            Ok(s) if !s.is_empty() => match parse_backend(&s) {
                Ok(b) => b,
                Err(e) => return vec![Err(e)],
            },
            _ => wgpu::Backends::PRIMARY,
        };
        Self::adapters(backends)
            .into_iter()
            .map(|(adapter, ordinal)| {
                let features = Self::requested(&adapter, wgpu::Features::empty());
                registry::shared(adapter, features, ordinal)
            })
            .collect()
    }

    /// The adapters of `backends`, best first, each with how many adapters with the same
    /// `AdapterInfo` came before it (identical GPUs whose backend reports no PCI bus id are told
    /// apart by their order).
    fn adapters(backends: wgpu::Backends) -> Vec<(wgpu::Adapter, usize)> {
        let mut list = registry::adapters(backends);
        let rank = |t: wgpu::DeviceType| match t {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Other => 3,
            wgpu::DeviceType::Cpu => 4,
        };
        list.sort_by_key(|a| rank(a.get_info().device_type));
        let infos: Vec<wgpu::AdapterInfo> = list.iter().map(|a| a.get_info()).collect();
        list.into_iter()
            .enumerate()
            .map(|(i, a)| (a, infos[..i].iter().filter(|o| **o == infos[i]).count()))
            .collect()
    }

    /// The device on `adapter` with every optional feature we can use: the process's open one
    /// for this adapter, or a new one. Identical adapters whose backend reports no PCI bus id
    /// cannot be told apart here, so they share the first's device (`new` and `all` tell them
    /// apart by enumeration order).
    pub fn from_adapter(adapter: wgpu::Adapter) -> Result<Device> {
        Self::from_adapter_without(adapter, wgpu::Features::empty())
    }

    /// `from_adapter` without requesting `without`: the device an adapter lacking those
    /// features would give, so the refusals (f16 without SHADER_F16) are tested on any adapter.
    /// A different feature set is a different device (shared in turn by the callers asking for
    /// that set), so the NVIDIA hang above applies if the two are used from parallel threads.
    pub fn from_adapter_without(adapter: wgpu::Adapter, without: wgpu::Features) -> Result<Device> {
        let features = Self::requested(&adapter, without);
        registry::shared(adapter, features, 0)
    }

    /// The optional features we use that `adapter` has, less `without`.
    fn requested(adapter: &wgpu::Adapter, without: wgpu::Features) -> wgpu::Features {
        let wanted = wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP
            | wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        adapter.features() & wanted & !without
    }

    /// Opens a new device on `adapter` requesting `features` (the registry's; everything else
    /// goes through it).
    fn open(adapter: wgpu::Adapter, features: wgpu::Features) -> Result<Device> {
        let pipeline_threads = pipelines::threads_from_env()?;
        let info = adapter.get_info();
        let have = adapter.features();
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("wgtrain"),
            required_features: features,
            required_limits: limits.clone(),
            // SAFETY: the only experimental feature requested is cooperative matrix, used by kernels
            // that are validated by naga and tested against the CPU reference.
            experimental_features: unsafe { wgpu::ExperimentalFeatures::enabled() },
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| Error::Device(format!("{} ({:?}): {e}", info.name, info.backend)))?;
        let uncaptured = Arc::new(registry::Uncaptured::default());
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| sink.push(e.to_string())));
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        device.set_device_lost_callback(move |_, _| flag.store(true, Ordering::Release));
        let cooperative_matrix =
            if features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
                adapter
                    .cooperative_matrix_properties()
                    .iter()
                    .map(|p| CoopTile {
                        m: p.m_size,
                        n: p.n_size,
                        k: p.k_size,
                        ab: format!("{:?}", p.ab_type),
                        acc: format!("{:?}", p.cr_type),
                    })
                    .collect()
            } else {
                Vec::new()
            };
        let caps = Capabilities {
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            subgroup: features.contains(wgpu::Features::SUBGROUP),
            subgroup_size: (info.subgroup_min_size, info.subgroup_max_size),
            cooperative_matrix,
            passthrough_shaders: have.contains(wgpu::Features::PASSTHROUGH_SHADERS),
            timestamp_query: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            max_storage_binding: limits.max_storage_buffer_binding_size,
            max_buffer_size: limits.max_buffer_size,
            max_storage_buffers_per_stage: limits.max_storage_buffers_per_shader_stage,
            max_workgroup_storage: limits.max_compute_workgroup_storage_size,
            max_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_workgroups_per_dim: limits.max_compute_workgroups_per_dimension,
            storage_offset_alignment: limits.min_storage_buffer_offset_alignment,
        };
        Ok(Device(Arc::new(Inner {
            adapter,
            device,
            queue,
            info,
            caps,
            cache: PipelineCache::new(pipeline_threads),
            uncaptured,
            lost,
        })))
    }

    /// Whether `self` and `other` are handles to the same open device (and so share its queue,
    /// pipeline cache and memory).
    pub fn same_device(&self, other: &Device) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Whether the device was lost (driver reset, out of memory, `destroy` on the wgpu device):
    /// work on it fails from then on, and `Device::new` and friends open a fresh one.
    pub fn is_lost(&self) -> bool {
        self.0.lost.load(Ordering::Acquire)
    }

    /// The runtime checks a shader module is compiled with. User code (a custom optimizer's
    /// WGSL) gets all of them. The crate's kernels, whose indices and loop bounds come from
    /// shapes checked on the host and whose tests run on every adapter, drop the loop-bounding
    /// counters and integer-division guards everywhere, and the index clamps where the backend
    /// itself keeps every buffer access inside its binding (Vulkan's robust buffer access, which
    /// every Vulkan device has). The tensor-core GEMMs pay most for them (BENCHMARKS.md).
    pub fn runtime_checks(&self, user_code: bool) -> wgpu::ShaderRuntimeChecks {
        let mut checks = wgpu::ShaderRuntimeChecks::checked();
        if user_code || std::env::var("WGTRAIN_SHADER_CHECKS").is_ok_and(|v| v == "all") {
            return checks;
        }
        checks.force_loop_bounding = false;
        checks.int_div_checks = false;
        checks.bounds_checks = self.0.info.backend != wgpu::Backend::Vulkan;
        checks
    }

    /// The adapter's name, vendor, backend and driver.
    pub fn info(&self) -> &wgpu::AdapterInfo {
        &self.0.info
    }

    /// Whether the adapter is a software one running on the CPU (lavapipe, say): its invocations
    /// are a core's vector lanes.
    pub fn is_cpu(&self) -> bool {
        self.0.info.device_type == wgpu::DeviceType::Cpu
    }

    /// What the adapter offers.
    pub fn caps(&self) -> &Capabilities {
        &self.0.caps
    }

    /// The underlying wgpu device and queue.
    pub fn wgpu(&self) -> (&wgpu::Device, &wgpu::Queue) {
        (&self.0.device, &self.0.queue)
    }

    /// The underlying wgpu adapter.
    pub fn adapter(&self) -> &wgpu::Adapter {
        &self.0.adapter
    }

    /// One line naming the adapter, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)`.
    pub fn name(&self) -> String {
        let i = &self.0.info;
        format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
    }

    /// A multi-line report of the adapter, its features and the limits that matter. It starts
    /// with the adapter's name, unlabelled: callers print `adapter: ` before it.
    pub fn describe(&self) -> String {
        let c = &self.0.caps;
        let i = &self.0.info;
        let coop: Vec<String> = c
            .cooperative_matrix
            .iter()
            .map(|t| format!("{}x{}x{} {}->{}", t.m, t.n, t.k, t.ab, t.acc))
            .collect();
        format!(
            "{}\n  driver: {} {}\n  SHADER_F16: {}  SUBGROUP: {} (size {}..{})  TIMESTAMP_QUERY: {}  PASSTHROUGH_SHADERS: {}\n  EXPERIMENTAL_COOPERATIVE_MATRIX: {}\n  limits: storage binding {} B, buffer {} B, {} storage buffers/stage, workgroup storage {} B, {} invocations/workgroup",
            self.name(),
            i.driver,
            i.driver_info,
            c.shader_f16,
            c.subgroup,
            c.subgroup_size.0,
            c.subgroup_size.1,
            c.timestamp_query,
            c.passthrough_shaders,
            if coop.is_empty() {
                "no".to_string()
            } else {
                coop.join(", ")
            },
            c.max_storage_binding,
            c.max_buffer_size,
            c.max_storage_buffers_per_stage,
            c.max_workgroup_storage,
            c.max_invocations_per_workgroup,
        )
    }

    /// Checks that a buffer of `bytes` can be bound as storage; names `what` otherwise.
    pub fn check_binding(&self, what: &str, bytes: u64) -> Result<()> {
        let limit = self
            .0
            .caps
            .max_storage_binding
            .min(self.0.caps.max_buffer_size);
        if bytes > limit {
            return Err(Error::TooLarge {
                what: what.to_string(),
                amount: bytes,
                limit,
                unit: Unit::BindingBytes,
            });
        }
        Ok(())
    }

    /// A storage buffer of at least `bytes` (rounded up to 4, never empty).
    pub fn storage_buffer(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        self.check_binding(label, bytes)?;
        let size = word_padded(bytes);
        self.scoped(|d| {
            d.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })
    }

    /// Runs `f` inside validation and out-of-memory error scopes; any error becomes an `Err`.
    pub fn scoped<T>(&self, f: impl FnOnce(&wgpu::Device) -> T) -> Result<T> {
        let out = scope(&self.0.device, f).map_err(Error::Gpu)?;
        self.take_uncaptured()?;
        Ok(out)
    }

    /// How many threads build this device's compute pipelines (`WGTRAIN_PIPELINE_THREADS`,
    /// read when the device was opened): 0 or 1 means each is built on the thread asking for it.
    pub fn pipeline_threads(&self) -> usize {
        self.0.cache.threads()
    }

    /// Reports errors that happened outside any scope since the last check on this thread: the
    /// calling thread's own (a thread sharing the device never gets another's), and those left
    /// by threads that ended without checking.
    pub fn take_uncaptured(&self) -> Result<()> {
        let errs = self.0.uncaptured.take();
        if errs.is_empty() {
            return Ok(());
        }
        Err(Error::Gpu(errs.join("; ")))
    }

    /// Blocks (sleeping in the driver, not spinning) until all submitted work is done.
    pub fn wait(&self) -> Result<()> {
        self.0
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device(format!("poll: {e}")))?;
        self.take_uncaptured()
    }

    /// Copies `bytes` bytes from `src` at `offset` back to the host.
    pub fn read_buffer(&self, src: &wgpu::Buffer, offset: u64, bytes: u64) -> Result<Vec<u8>> {
        let size = word_padded(bytes);
        let staging = self.scoped(|d| {
            let staging = d.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut enc = d.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
            enc.copy_buffer_to_buffer(src, offset, &staging, 0, size);
            self.0.queue.submit([enc.finish()]);
            staging
        })?;
        let mut out = self.map_read(&staging, size, |b| b.to_vec())?;
        out.truncate(bytes as usize);
        Ok(out)
    }

    /// Maps the first `bytes` of `staging` (MAP_READ, its copy already submitted), waits for the
    /// GPU, hands them to `read`, and unmaps.
    pub(crate) fn map_read<R>(
        &self,
        staging: &wgpu::Buffer,
        bytes: u64,
        read: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, ..bytes, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::Device("readback callback never ran".into()))?
            .map_err(|e| Error::Gpu(format!("map_async: {e}")))?;
        let view = staging
            .get_mapped_range(..bytes)
            .map_err(|e| Error::Gpu(format!("map range: {e}")))?;
        let out = read(&view);
        drop(view);
        staging.unmap();
        Ok(out)
    }
}

/// Runs `f` inside validation and out-of-memory error scopes on the calling thread (wgpu keeps
/// them per thread); the error they caught, if any.
fn scope<T>(
    d: &wgpu::Device,
    f: impl FnOnce(&wgpu::Device) -> T,
) -> std::result::Result<T, String> {
    let oom = d.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let val = d.push_error_scope(wgpu::ErrorFilter::Validation);
    let out = f(d);
    let v = pollster::block_on(val.pop());
    let o = pollster::block_on(oom.pop());
    match v.or(o) {
        Some(e) => Err(e.to_string()),
        None => Ok(out),
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Device({})", self.name())
    }
}
