//! Launches: WGSL shaders embedded with `include_str!` (compiled and cached per device by
//! `Device::pipeline`) and `Launch`es — a pipeline with its bind group and grid, prepared once and
//! replayed any number of times into one command buffer. A launch is prepared before its
//! pipeline is built (the device's threads build it meanwhile); encoding waits for it.
//!
//! API convention of every family: `*_launch(inputs.., outputs..) -> Result<Launch>` checks shapes
//! and prepares a dispatch into outputs the caller owns (the compiled graph places them in its
//! arena); the family's graph op (`op.rs`) lowers to these launches. Running an op eagerly goes
//! through one path, `ops::eager::run(device, op, inputs)`: it infers the output shapes, allocates
//! the outputs, lowers the op and runs it. The eager conveniences named like the launch without
//! `_launch` (`softmax::gpu::softmax`, `conv::gpu::backward`, ...) are thin wrappers over
//! `eager::run` with the family's graph op; one returning several gradients runs the family's
//! gradient ops one after the other. Only ops without a graph op (`shape::gpu::split` and
//! `split_backward`) allocate and run their launches themselves.
//!
//! Binding convention of every kernel: `@binding(0)` is a uniform of parameters (u32 words; f32
//! values are bit-cast), `@binding(1..)` are storage buffers in the order the Rust side passes them.
//! Kernels with more elements than one grid row can hold use a 2-D grid: the linear workgroup id is
//! `wid.x + wid.y * nwg.x` (see `grid_1d`).

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use crate::device::{Device, PipelineHandle};
use crate::dtype::{Accumulator, Variant};
use crate::error::{Error, Result, Unit};
use crate::tensor::{Binding, DType, Tensor};

/// Helpers shared by the kernels of a 2-D grid (`group_id`, `linear_id`; `wgsl/prelude.wgsl`): the
/// first part of every shader that uses them, once.
pub const PRELUDE: &str = include_str!("../wgsl/prelude.wgsl");

/// NaN and infinity tests on the bits, and the NaN-propagating max/min (`wgsl/finite.wgsl`): part
/// of `neuron::WGSL`, and a part of its own in the shaders without neurons that need it.
pub const FINITE: &str = include_str!("../wgsl/finite.wgsl");

/// A WGSL module made of one or more source parts concatenated (so a shared core, e.g. the GEMM
/// main loop, can be combined with op-specific loaders without copying it).
pub struct Shader {
    /// Name used in errors and pipeline-cache keys.
    pub name: &'static str,
    /// WGSL source parts, concatenated in order.
    pub parts: &'static [&'static str],
    /// Holds code the user wrote (a custom optimizer's update): compiled with every runtime check,
    /// where the crate's own kernels drop some (`Device::runtime_checks`).
    pub user_code: bool,
}

impl Shader {
    /// The f32 variant's WGSL: `source_for(DType::F32, Accumulator::F32)`.
    pub fn source(&self) -> String {
        self.source_for(DType::F32, Accumulator::F32)
    }

    /// The WGSL of `v`: `source_for(v.act, v.acc)` but with only the `read` bindings in
    /// `v.read_write` declared `read_write` (a launch's bindings whose buffer it also binds
    /// writable); the others stay read-only.
    pub fn source_of(&self, v: Variant) -> String {
        self.source_with(v.act, v.acc, v.read_write)
    }

    /// The WGSL compiled for storage type `act` and accumulator `acc`: the parts concatenated
    /// with `alias act = f32;` and, where the kernels sum in `accum`, `alias accum = f32;` (each
    /// `f16` for the f16 variants, with `enable f16;`), any `enable` directive hoisted first.
    /// Kernels declare activations and their gradients `array<act>` and compute in f32
    /// (`f32(x[i])` loads, `act(v)` stores) but for their sums, typed `accum`; so one source
    /// gives every variant. Every `var<storage, read>` is declared `read_write`: wgpu tracks
    /// usage per buffer, not per range, and refuses a buffer bound read-only and read-write in
    /// one dispatch — which is exactly what happens when a kernel reads one slice of the
    /// activation arena and writes another. Kernels still say `read` for the reader (the memory
    /// plan guarantees a dispatch never writes bytes it reads), and a launch whose read-only
    /// buffers are not also bound writable takes the variant that keeps them (`source_of`).
    pub fn source_for(&self, act: DType, acc: Accumulator) -> String {
        self.source_with(act, acc, Variant::ALL)
    }

    fn source_with(&self, act: DType, acc: Accumulator, read_write: u32) -> String {
        let mut body = self.parts.concat();
        let writable =
            |line: &str| binding_of(line).is_some_and(|n| n >= 32 || read_write & (1 << n) != 0);
        if read_write == Variant::ALL {
            body = body.replace("var<storage, read>", "var<storage, read_write>");
        } else if read_write != 0 {
            body = body
                .lines()
                .map(|line| match writable(line) {
                    true => line.replace("var<storage, read>", "var<storage, read_write>") + "\n",
                    false => format!("{line}\n"),
                })
                .collect();
        }
        let mut enables: Vec<&str> = Vec::new();
        if act == DType::F16 || acc == Accumulator::F16 {
            enables.push("enable f16;");
        }
        let mut rest = String::with_capacity(body.len() + 64);
        for line in body.lines() {
            let t = line.trim();
            if !t.starts_with("enable ") {
                rest.push_str(line);
                rest.push('\n');
            } else if !enables.contains(&t) {
                enables.push(t);
            }
        }
        // The aliases are declared last (WGSL allows any order), and directives take a line only
        // when there are some, so line numbers stay the parts' own in the plain f32 source.
        // `accum` only where the kernels use it, so it takes no name from the others (the
        // custom optimizer's user code).
        let act = if act == DType::F16 { "f16" } else { "f32" };
        let accum = match (self.has_f16_accumulator(), acc) {
            (false, _) => "",
            (true, Accumulator::F32) => "alias accum = f32;\n",
            (true, Accumulator::F16) => "alias accum = f16;\n",
        };
        let head: String = enables.iter().map(|e| format!("{e}\n")).collect();
        format!("{head}{rest}alias act = {act};\n{accum}")
    }

    /// Whether the kernels have an f16 variant (they name the `act` storage type).
    pub fn has_f16(&self) -> bool {
        self.parts.iter().any(|p| p.contains("<act>"))
    }

    /// Whether the kernels have an f16-accumulator variant (they type sums `accum`: a vector or
    /// array of it, or a conversion to it).
    pub fn has_f16_accumulator(&self) -> bool {
        self.parts
            .iter()
            .any(|p| p.contains("<accum>") || p.contains("accum("))
    }
}

/// The storage variant a launch takes: f16 when any tensor bound holds f16.
pub fn act_of(buffers: &[Binding<'_>]) -> DType {
    if buffers.iter().any(|b| b.dtype == Some(DType::F16)) {
        DType::F16
    } else {
        DType::F32
    }
}

thread_local! {
    /// The accumulator of the launches being prepared on this thread (`accumulating`).
    static ACCUMULATOR: Cell<Accumulator> = const { Cell::new(Accumulator::F32) };
    /// The GEMM main loop of the launches being prepared on this thread (`with_gemm_loop`).
    static GEMM_LOOP: Cell<GemmLoop> = const { Cell::new(GemmLoop::Auto) };
}

/// Runs `f` with the thread-local `key` set to `value`, restoring the previous value after, even
/// on an early return or a panic.
pub(crate) fn scoped<T: Copy + 'static, R>(
    key: &'static std::thread::LocalKey<Cell<T>>,
    value: T,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore<T: Copy + 'static>(&'static std::thread::LocalKey<Cell<T>>, T);
    impl<T: Copy + 'static> Drop for Restore<T> {
        fn drop(&mut self) {
            self.0.with(|c| c.set(self.1));
        }
    }
    let _restore = Restore(key, key.with(|c| c.replace(value)));
    f()
}

/// Runs `prepare` (an op's lowering) with its launches compiled for accumulator `acc`, restoring
/// the previous one after. The accumulator cannot be read off the bound tensors as the storage
/// variant is, and every family's launch goes through `Device::launch`: a scope set by the one
/// place that decides it (`Op`'s lowerings in `graph/op.rs`) reaches every launch of a node
/// without threading it through each family's lowering.
pub(crate) fn accumulating<R>(acc: Accumulator, prepare: impl FnOnce() -> R) -> R {
    scoped(&ACCUMULATOR, acc, prepare)
}

/// The accumulator the launches being prepared take (`Accumulator::F32` outside `accumulating`).
pub(crate) fn accumulator() -> Accumulator {
    ACCUMULATOR.with(|a| a.get())
}

/// The scratch buffers of one graph's lowering, by slot, and whether a slot had to be replaced by
/// a larger one.
#[derive(Default)]
struct ScratchPool {
    slots: Vec<Option<Tensor>>,
    grew: bool,
}

thread_local! {
    /// The pool of the lowering in progress on this thread (`sharing_scratch`).
    static SHARED_SCRATCH: RefCell<Option<ScratchPool>> = const { RefCell::new(None) };
}

/// Runs `lower` (a graph's lowering) with the scratch its ops ask for through [`shared_scratch`]
/// shared between them: a step's launches run one after another, each seeing the writes of those
/// before, so one buffer per slot serves every op that needs its scratch only during its own
/// launches (Winograd's transformed operands). Where a later op needed a larger buffer than an
/// earlier one got, `lower` runs again with every slot sized for the largest request up front, so
/// the graph keeps one buffer per slot.
pub(crate) fn sharing_scratch<R>(lower: impl Fn() -> Result<R>) -> Result<R> {
    struct Restore(Option<ScratchPool>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            SHARED_SCRATCH.with(|s| *s.borrow_mut() = prev);
        }
    }
    let _restore = Restore(SHARED_SCRATCH.with(|s| s.replace(Some(ScratchPool::default()))));
    let first = lower()?;
    let pool = SHARED_SCRATCH
        .with(|s| s.borrow_mut().take())
        .unwrap_or_default();
    if !pool.grew {
        return Ok(first);
    }
    drop(first);
    let sized = ScratchPool {
        slots: pool.slots,
        grew: false,
    };
    SHARED_SCRATCH.with(|s| *s.borrow_mut() = Some(sized));
    lower()
}

/// The [`shared_scratch`] slot of split-K partial products (matmul's, the convolutions' data and
/// weight passes): each op's split launches are followed at once by the sum that reads them, so
/// one buffer serves every split of a step. Winograd's operands take slots 0 to 3.
pub(crate) const SPLIT_PARTIALS_SLOT: usize = 4;

/// A scratch tensor for slot `slot` of an op's launches: inside [`sharing_scratch`] a view of the
/// slot's buffer (replaced by a larger one when it is too small), else a tensor of its own.
pub(crate) fn shared_scratch(
    dev: &Device,
    slot: usize,
    shape: &[usize],
    dtype: DType,
) -> Result<Tensor> {
    SHARED_SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let Some(pool) = s.as_mut() else {
            return Tensor::zeros(dev, shape, dtype);
        };
        if pool.slots.len() <= slot {
            pool.slots.resize(slot + 1, None);
        }
        if let Some(t) = &pool.slots[slot] {
            if t.device.same_device(dev)
                && let Ok(v) = Tensor::view(dev, t.buffer.clone(), 0, shape, dtype)
            {
                return Ok(v);
            }
            pool.grew = true;
        }
        let t = Tensor::zeros(dev, shape, dtype)?;
        pool.slots[slot] = Some(t.clone());
        Ok(t)
    })
}

/// Which main loop of `wgsl/gemm_core.wgsl` the GEMMs on the f32-summing core take: matmul, the
/// dense layers and the tiled convolutions (not the tensor-core GEMMs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GemmLoop {
    /// `Direct` on a CPU adapter (lavapipe), else `Tiled`.
    #[default]
    Auto,
    /// Shared-memory tiles of 128 rows by 32, 64 or 128 columns.
    Tiled,
    /// One invocation per 8×8 block of the output, no shared memory: no idle tile rows or
    /// columns, for adapters whose lanes are a CPU's.
    Direct,
}

/// Runs `f` (a graph's compile, an eager op) with the GEMMs it prepares on loop `l`, restoring
/// the previous choice after: for comparing the loops, and for tests that cover both on one
/// adapter. The results agree to rounding (each output sums over K in the same order).
pub fn with_gemm_loop<R>(l: GemmLoop, f: impl FnOnce() -> R) -> R {
    scoped(&GEMM_LOOP, l, f)
}

/// Whether the GEMMs prepared now on `dev` take the direct loop (`with_gemm_loop`).
pub(crate) fn direct_gemm(dev: &crate::device::Device) -> bool {
    match GEMM_LOOP.with(|l| l.get()) {
        GemmLoop::Auto => dev.is_cpu(),
        GemmLoop::Tiled => false,
        GemmLoop::Direct => true,
    }
}

/// The most workgroup (shared) memory any kernel declares: the GEMM core's two double-buffered
/// tiles. `tests/wgsl_translate.rs` holds every shader to it; `Graph::compile` checks the device.
pub const MAX_WORKGROUP_BYTES: u32 = 16_896;

/// Size of every kernel's parameter uniform, in u32 words.
pub const UNIFORM_WORDS: usize = 64;

/// One dispatch, ready to encode: pipeline (perhaps still being built), bound buffers (the
/// uniform included), grid.
pub struct Launch {
    pub(crate) pipeline: PipelineHandle,
    pub(crate) bind_group: wgpu::BindGroup,
    pub(crate) groups: [u32; 3],
    pub(crate) label: &'static str,
    /// Its kernels' `read` bindings declared read-write (`Variant::read_write`): those whose
    /// buffer it also binds writable; 0 when every one stays read-only.
    pub(crate) read_write: u32,
    /// The parameter uniform, kept so per-step values (dropout seeds, optimizer step and learning
    /// rate) can be rewritten between replays without re-recording (`Device::rewrite_params`).
    pub(crate) uniform: wgpu::Buffer,
    /// Set by `Optimizer::prepare_step` for the update it records: a compiled step refuses to
    /// replay an update whose per-step values (step count, bias corrections) were not written.
    pub(crate) ready: Option<Arc<std::sync::atomic::AtomicBool>>,
}

/// Dispatches ready to encode, and the scratch tensors they write (kept alive with them).
#[derive(Default)]
pub struct Prepared {
    /// The dispatches, in encode order.
    pub launches: Vec<Launch>,
    /// Tensors the launches write besides their outputs (e.g. split-K partial sums).
    pub scratch: Vec<Tensor>,
}

impl Prepared {
    /// A single launch with no scratch.
    pub fn one(l: Launch) -> Self {
        Prepared {
            launches: vec![l],
            scratch: Vec::new(),
        }
    }

    /// Appends `other`'s launches and scratch after these.
    pub fn extend(&mut self, other: Prepared) {
        self.launches.extend(other.launches);
        self.scratch.extend(other.scratch);
    }
}

/// The slots of `read` (bindings 1.. are `buffers`) whose buffer is also bound at a slot of
/// `written`, as a [`Variant::read_write`] mask.
fn writable_reads(read: &[u32], written: &[u32], buffers: &[Binding<'_>]) -> u32 {
    let at = |slot: &u32| {
        buffers
            .get((*slot as usize).wrapping_sub(1))
            .map(|b| b.buffer)
    };
    let mut mask = 0;
    for slot in read {
        let shared = at(slot).is_some_and(|r| written.iter().filter_map(at).any(|w| r == w));
        if shared {
            // A binding past the mask's bits takes the plain source.
            mask |= 1u32.checked_shl(*slot).unwrap_or(Variant::ALL);
        }
    }
    mask
}

/// The binding number a WGSL line declares (`@binding(n)`), if any.
fn binding_of(line: &str) -> Option<u32> {
    let rest = &line[line.find("@binding(")? + "@binding(".len()..];
    rest[..rest.find(')')?].trim().parse().ok()
}

/// Workgroups for `n` items at `per_group` items each, folded into 2-D when one row would exceed
/// the 65,535 per-dimension limit that every backend guarantees.
pub fn grid_1d(n: usize, per_group: usize) -> [u32; 3] {
    let groups = n.div_ceil(per_group).max(1) as u32;
    if groups <= 65_535 {
        [groups, 1, 1]
    } else {
        let y = groups.div_ceil(65_535);
        [groups.div_ceil(y), y, 1]
    }
}

impl Device {
    /// Prepares one dispatch of `shader::entry` over `groups`, with `params` as the uniform at
    /// binding 0 and `buffers` at bindings 1.. .
    pub fn launch(
        &self,
        shader: &'static Shader,
        entry: &'static str,
        constants: &[(&str, f64)],
        params: &[u32],
        buffers: &[Binding<'_>],
        groups: [u32; 3],
    ) -> Result<Launch> {
        let max = self.caps().max_workgroups_per_dim;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::TooLarge {
                what: format!(
                    "{}::{entry} grid {groups:?} (workgroups per dimension)",
                    shader.name
                ),
                amount: *groups.iter().max().unwrap() as u64,
                limit: max as u64,
                unit: Unit::Workgroups,
            });
        }
        let act = act_of(buffers);
        if act == DType::F16 && !self.caps().shader_f16 {
            return Err(Error::Device(format!(
                "{}::{entry}: f16 tensors need SHADER_F16, which {} does not offer",
                shader.name,
                self.name()
            )));
        }
        // A kernel without sums typed `accum` has one accumulator; its f32 source serves.
        let acc = if shader.has_f16_accumulator() {
            accumulator()
        } else {
            Accumulator::F32
        };
        if acc == Accumulator::F16 && !self.caps().shader_f16 {
            return Err(Error::Device(format!(
                "{}::{entry}: f16 accumulation needs SHADER_F16, which {} does not offer",
                shader.name,
                self.name()
            )));
        }
        // Read-only bindings wherever the buffer bound is not also bound writable (the driver
        // may then load through its read-only path; wgpu refuses the mix within one buffer).
        let kept = Variant {
            act,
            acc,
            read_write: 0,
        };
        let (read, written) =
            self.storage_slots(shader.name, kept, entry, shader.user_code, || {
                shader.source_of(kept)
            })?;
        // Per binding, for the crate's kernels (one declaration a line); user code that shares a
        // buffer gets every `read` binding read-write, however it lays its declarations out.
        let read_write = match writable_reads(&read, &written, buffers) {
            0 => 0,
            _ if shader.user_code => Variant::ALL,
            mask => mask,
        };
        let variant = Variant { read_write, ..kept };
        let pipeline = self.pipeline(
            shader.name,
            variant,
            || shader.source_of(variant),
            shader.user_code,
            entry,
            constants,
        )?;
        for (i, b) in buffers.iter().enumerate() {
            let slot = i as u32 + 1;
            if let (Some(dt), Some(&w)) = (b.dtype, pipeline.widths.get(&slot))
                && dt.size() as u32 != w
            {
                return Err(Error::Invalid(format!(
                    "{}::{entry}: binding {slot} reads {w}-byte elements but holds a {dt:?} \
                     tensor{}",
                    shader.name,
                    if dt == DType::F16 {
                        " (this kernel has no f16 variant for it)"
                    } else {
                        ""
                    }
                )));
            }
        }
        // Entries of one shader share a parameter struct but may fill only its head: pad to a fixed
        // 256 bytes so every struct fits (and uniform arrays stay 16-byte strided).
        if params.len() > UNIFORM_WORDS {
            return Err(Error::Invalid(format!(
                "{}::{entry}: {} parameter words exceed {UNIFORM_WORDS}",
                shader.name,
                params.len()
            )));
        }
        let mut words = params.to_vec();
        words.resize(UNIFORM_WORDS, 0);
        let (bind_group, uniform) = self.scoped(|d| {
            let ubuf = d.create_buffer(&wgpu::BufferDescriptor {
                label: Some(entry),
                size: (words.len() * 4) as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            self.0
                .queue
                .write_buffer(&ubuf, 0, bytemuck::cast_slice(&words));
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: ubuf.as_entire_binding(),
            }];
            for (i, b) in buffers.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: i as u32 + 1,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: b.buffer,
                        offset: b.offset,
                        size: wgpu::BufferSize::new(b.size),
                    }),
                });
            }
            let bg = d.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(entry),
                layout: &pipeline.bind_group_layout,
                entries: &entries,
            });
            (bg, ubuf)
        })?;
        Ok(Launch {
            pipeline: pipeline.handle,
            bind_group,
            groups,
            label: entry,
            read_write: variant.read_write,
            uniform,
            ready: None,
        })
    }

    /// Rewrites a prepared launch's parameters (queue-ordered: steps already submitted keep the
    /// old values). The words must describe the same buffers and grid.
    pub fn rewrite_params(&self, launch: &Launch, params: &[u32]) -> Result<()> {
        if params.len() > UNIFORM_WORDS {
            return Err(Error::Invalid(format!(
                "{}: {} parameter words exceed {UNIFORM_WORDS}",
                launch.label,
                params.len()
            )));
        }
        self.scoped(|_| {
            self.0
                .queue
                .write_buffer(&launch.uniform, 0, bytemuck::cast_slice(params))
        })
    }

    /// Encodes `launches` in order into one compute pass and submits once. wgpu inserts the
    /// barriers between dispatches that touch the same buffers.
    pub fn run(&self, launches: &[Launch]) -> Result<()> {
        self.run_repeated(launches, 1)
    }

    /// Encodes `launches` `times` times over into one submit (benchmarks, replayed steps).
    pub fn run_repeated(&self, launches: &[Launch], times: usize) -> Result<()> {
        built(launches)?;
        self.scoped(|d| {
            let enc = encode(d, "wgtrain step", (0..times).flat_map(|_| launches))?;
            self.0.queue.submit([enc.finish()]);
            Ok(())
        })?
    }
}

/// Waits until the pipelines of `launches` are built (`Device::pipeline`); the first failure, in
/// order, is the `Err`.
pub(crate) fn built<'a>(launches: impl IntoIterator<Item = &'a Launch>) -> Result<()> {
    launches
        .into_iter()
        .try_for_each(|l| l.pipeline.get().map(drop))
}

/// A command encoder holding one compute pass of `launches`, in order (more commands, e.g.
/// copies, may follow before it is finished and submitted); waits for pipelines still being
/// built, and a failed one is the `Err`.
pub(crate) fn encode<'a>(
    d: &wgpu::Device,
    label: &str,
    launches: impl IntoIterator<Item = &'a Launch>,
) -> Result<wgpu::CommandEncoder> {
    let mut enc = d.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: None,
        });
        for l in launches {
            pass.set_pipeline(l.pipeline.get()?);
            pass.set_bind_group(0, &l.bind_group, &[]);
            pass.dispatch_workgroups(l.groups[0], l.groups[1], l.groups[2]);
        }
    }
    Ok(enc)
}

impl Launch {
    /// Its grid, in workgroups.
    pub fn groups(&self) -> [u32; 3] {
        self.groups
    }

    /// Its kernel's entry point.
    pub fn label(&self) -> &'static str {
        self.label
    }

    /// Whether every `read` binding of its kernel stayed read-only.
    pub fn read_only(&self) -> bool {
        self.read_write == 0
    }

    /// The `read` bindings its kernel declares read-write (`Variant::read_write`).
    pub fn read_write(&self) -> u32 {
        self.read_write
    }
}

impl std::fmt::Debug for Launch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Launch({} {:?})", self.label, self.groups)
    }
}

/// Bit-casts an f32 into a parameter word.
pub fn f(x: f32) -> u32 {
    x.to_bits()
}
