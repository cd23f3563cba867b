//! Compile once: a sequence of passes over the graph, each a short function filling in the `Plan`,
//! then the `Program` they produce (the step as data), which `exec.rs` replays.
//!
//! 0. `check`: the graph is well formed and names only its own values (`Graph::validate`);
//! 1. `prune`: drop the nodes the outputs do not need (`prune.rs`), then refuse a live value
//!    too large for the kernels' u32 indices (`limits::check_sizes`);
//! 2. `fuse`: fold neurons into their producer's dispatch, a neuron's gradient into the
//!    backward making or reading its dy, a residual sum into the norm making its operand
//!    (`fusion.rs`);
//! 3. `alias`: views and fused nodes alias their owner, contiguous concats are elided
//!    (`alias.rs`); sums are written in place, a GEMM producer adding into the other operand's
//!    memory where it can (`sums.rs`);
//! 4. `lifetimes`: when each intermediate is live, and the just-in-time update points
//!    (`lifetimes.rs`);
//! 5. `memory`: place the intermediates in one arena (`memory.rs`);
//!    then, with the device, `accumulate`: each node's accumulator (`accumulate.rs`);
//! 6. `limits`: check the plan against the device's limits (`limits.rs`);
//! 7. `allocate`: the arena, the parameter arenas or weight slot, every tensor (`allocate.rs`);
//! 8. `lower`: record every op's launches once, with the non-finite scans (`lower.rs`,
//!    `crate::health`).

mod accumulate;
mod alias;
mod allocate;
mod colour;
mod exec;
mod feeds;
pub mod fusion;
mod lifetimes;
mod limits;
mod lower;
mod memory;
mod program;
mod profile;
mod precision;
mod prune;
mod residency;
mod sums;

pub use exec::{Compiled, StepHandle};
pub use limits::MAX_ELEMENTS;
pub use precision::LOSS_SCALE;
pub use profile::{DispatchTime, Profile};
pub(crate) use program::Program;
pub use program::{ArenaPlan, HalfArenas, ParamArena, PlanStats};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::autograd::Training;
use crate::device::Device;
use crate::dtype::Accumulator;
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, Value};
use crate::tensor::Tensor;
use alias::Aliases;
use allocate::Bound;
use fusion::Fusion;
use lifetimes::Lifetimes;
use lower::Lowered;
use memory::Memory;
use precision::Mirrors;
use residency::JitState;

/// Where the weights live while a step runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Residency {
    /// Every weight (and, training, every gradient) on the GPU for the whole step.
    #[default]
    Resident,
    /// Just-in-time (`residency.rs`): weights stay on the host and one slot is reused by every
    /// layer; when training, each parameter is updated (`Compiled::attach_optimizer`) right after
    /// its gradient is complete, its gradient and optimizer state never all resident.
    JustInTime,
}

/// The storage precision of a graph's values (MPS's per-op precision, PyTorch's autocast).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// Everything f32.
    #[default]
    F32,
    /// Mixed precision (`crate::autocast`): activations and their gradients stored as f16 by
    /// every op with f16 kernels, accumulating in f32 (unless `Options::accumulator` says f16);
    /// weights, their gradients and optimizer state, losses and statistics f32. An adapter
    /// without SHADER_F16 is an `Err`.
    F16,
    /// `F16` where the adapter has SHADER_F16, else `F32` with a warning saying so.
    BestAvailable,
}

/// Dynamic loss scaling for mixed-precision training (PyTorch's `GradScaler`): the backward pass
/// is seeded with `scale` instead of 1 so small f16 gradients do not flush to zero; gradients are
/// divided by it on their way to the f32 arena. A step whose gradients overflow is skipped and
/// the scale halved; after `growth_interval` clean steps it doubles. All on the GPU: the scale
/// lives in the graph state `loss_scale` (`[scale, clean steps]`, saved by checkpoints).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossScale {
    /// The first scale (PyTorch: 2^16).
    pub init: f32,
    /// Clean steps before the scale doubles (PyTorch: 2000).
    pub growth_interval: u32,
}

impl Default for LossScale {
    fn default() -> Self {
        LossScale {
            init: 65_536.0,
            growth_interval: 2000,
        }
    }
}

/// How to compile.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// Fold neurons into their producer's dispatch (on by default).
    pub fuse: bool,
    /// Write sums (autograd's gradient sums among them) in place: a GEMM producer adds into the
    /// other operand's memory and the `Add` launches nothing, or the `Add` writes over a dead
    /// operand (on by default; `sums.rs`).
    pub sum_in_place: bool,
    /// Use this compiled graph's parameter tensors for parameters of the same name.
    pub share: Option<&'a Compiled>,
    /// Place every parameter in one flat arena and its gradient at the same offset of a second
    /// one, so an optimizer updates all of them with one fused kernel.
    pub training: Option<&'a Training>,
    /// Where the weights live while a step runs.
    pub residency: Residency,
    /// Scan every node's output for NaN and infinity (one small dispatch per node), so
    /// `Compiled::health` names the first node that went non-finite. The loss (training) and
    /// the gradients (with an optimizer attached) are always scanned.
    pub check_activations: bool,
    /// A training graph that computes gradients without an optimizer (no update): a step
    /// without `Compiled::attach_optimizer` is otherwise an `Err`, since it would train nothing.
    pub gradients_only: bool,
    /// Storage precision (mixed precision with `F16`).
    pub precision: Precision,
    /// Nodes kept in f32 under `Precision::F16` (by name), e.g. a sensitive layer.
    pub f32_nodes: &'a [&'a str],
    /// Dynamic loss scaling of a mixed-precision training graph (resident weights only).
    pub loss_scale: Option<LossScale>,
    /// What the summing ops accumulate in (MPS's accumulator precision option), independent of
    /// `precision`: convolutions, matmul, fully connected layers, norms, sum/mean reductions
    /// and their gradients (`Primitive::accumulation_len`); other ops pass it by. `F16` needs
    /// SHADER_F16 (an `Err` without).
    pub accumulator: Accumulator,
    /// Per-node accumulators by name, overriding `accumulator` either way (one sensitive layer
    /// in f32, or one layer in f16). Gradient nodes have names of their own
    /// (`grad/<node>/...`). A name no node has, a name listed twice, or a node named for `F16`
    /// whose op cannot accumulate in f16 is an `Err` that names it.
    pub accumulator_nodes: &'a [(&'a str, Accumulator)],
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            fuse: true,
            sum_in_place: true,
            share: None,
            training: None,
            residency: Residency::Resident,
            check_activations: false,
            gradients_only: false,
            precision: Precision::F32,
            f32_nodes: &[],
            loss_scale: None,
            accumulator: Accumulator::F32,
            accumulator_nodes: &[],
        }
    }
}

/// What the passes decided, in the order they ran; `allocate` and `lower` read it.
pub(crate) struct Plan {
    /// The values the caller may read after a step (just-in-time, gradients are intermediates).
    pub kept: Vec<Value>,
    /// Weights are kept just-in-time.
    pub jit: bool,
    pub live: Vec<bool>,
    pub fusion: Fusion,
    pub aliases: Aliases,
    pub lifetimes: Lifetimes,
    pub memory: Memory,
    /// Mixed-precision training: the f16 arenas' values and the casts they replace.
    pub mirrors: Option<Mirrors>,
}

impl Graph {
    /// Compiles the nodes needed for `outputs` (and only those) on `device`. `opts` says whether
    /// to fuse, which compiled graph to share parameters with (by name: an inference graph, or
    /// the same network at another batch size, uses the same weights), whether to lay the
    /// parameters out for training, and where the weights live.
    pub fn compile(&self, device: &Device, outputs: &[Value], opts: &Options) -> Result<Compiled> {
        if !precision::f16(device, opts)? {
            return self.compile_as_given(device, outputs, opts, None);
        }
        precision::compile_mixed(self, device, outputs, opts)
    }

    /// `compile` on the graph's own dtypes; `mirrors`: a mixed-precision training graph's f16
    /// arenas (`precision::Mirrors`).
    fn compile_as_given(
        &self,
        device: &Device,
        outputs: &[Value],
        opts: &Options,
        mirrors: Option<&Mirrors>,
    ) -> Result<Compiled> {
        let g = self;
        let caps = device.caps();
        let align = caps.storage_offset_alignment as u64;
        let plan = plan(
            g,
            outputs,
            opts,
            (align, caps.max_storage_buffers_per_stage),
            mirrors,
        )?;
        let accumulators = accumulate::pass(g, device, opts)?;
        limits::check(g, device, &plan.live, &plan.memory)?;
        let bound = allocate::pass(g, device, &plan, opts.share, opts.training)?;
        let health = crate::health::buffer(device)?;
        let checks = lower::Checks {
            health: &health,
            loss: opts.training.map(|t| t.loss.node),
            activations: opts.check_activations,
        };
        // Winograd's transformed operands: one buffer per slot for all of the graph's passes.
        let lowered = crate::launch::sharing_scratch(|| {
            lower::pass(g, device, &plan, &bound, &checks, &accumulators)
        })?;
        let live = plan.live.clone();
        let mut c = Compiled::new(device, g.clone(), program(g, plan, bound, lowered, health));
        c.require_feeds(&live, opts.share);
        c.gradients_only = opts.gradients_only;
        Ok(c)
    }
}

impl Graph {
    /// The activation arena `compile` would plan for `outputs` under `opts` (passes 0 to 5:
    /// check, prune, fuse, alias, lifetimes, memory), without a device: `align` is the device's
    /// storage offset alignment (`Capabilities::storage_offset_alignment`, 256 on most; a power
    /// of two, else an `Err`). Tells
    /// what a graph costs before allocating it: whether its arena fits a device's
    /// `max_buffer_size`, and how much aliasing saves. Planned as for an adapter binding at
    /// least 9 storage buffers per shader stage (every Vulkan, Metal and DX12 one we know).
    pub fn plan_arena(&self, outputs: &[Value], opts: &Options, align: u64) -> Result<ArenaPlan> {
        if !align.is_power_of_two() {
            return Err(Error::Invalid(format!(
                "plan_arena: the alignment {align} is not a power of two"
            )));
        }
        let p = plan(self, outputs, opts, (align, u32::MAX), None)?;
        Ok(ArenaPlan {
            arena_bytes: p.memory.placement.peak,
            largest_arena_bytes: p.memory.arena_bytes().into_iter().max().unwrap_or(0),
            naive_bytes: p.memory.placement.naive,
            intermediates: p.memory.owned.len(),
            elided_concats: p.aliases.elided.len(),
            sums_accumulated: p.aliases.sums_elided.iter().filter(|&&e| e).count(),
            sums_in_place: p.aliases.sums_in_place,
        })
    }
}

/// Passes 0 to 5, which need no device: `align` is its storage offset alignment and
/// `bindings` its storage buffers per shader stage.
fn plan(
    g: &Graph,
    outputs: &[Value],
    opts: &Options,
    (align, bindings): (u64, u32),
    mirrors: Option<&Mirrors>,
) -> Result<Plan> {
    check(g, outputs, opts.training)?;
    let jit = opts.residency == Residency::JustInTime;
    let (computed, kept) = targets(outputs, opts.training, jit);
    let live = prune::prune(g, &computed);
    limits::check_sizes(g, &live)?;
    // Values in the f16 mirrors are written once and read across the step, like outputs.
    let mirrored = mirrors.map_or_else(Vec::new, |m| m.values(g));
    let outs: Vec<Value> = computed.iter().chain(&mirrored).copied().collect();
    let fusion = fusion::pass(g, &live, &outs, opts.fuse, bindings);
    let persist: Vec<Value> = kept.iter().chain(&mirrored).copied().collect();
    let mut aliases = alias::pass(g, &live, &fusion, &persist, opts.fuse, align);
    sums::pass(g, &live, &fusion, &persist, opts.sum_in_place, &mut aliases);
    let mirrors = mirrors.cloned().and_then(|mut m| {
        m.keep_placeable(g, &live, &|v| aliases.owner(v))
            .then_some(m)
    });
    let lifetimes = lifetimes::pass(g, &live, &aliases, &fusion, jit, opts.training)?;
    let memory = memory::pass(g, &lifetimes, &aliases, &fusion, align)?;
    Ok(Plan {
        kept,
        jit,
        live,
        fusion,
        aliases,
        lifetimes,
        memory,
        mirrors,
    })
}

/// Pass 0, check: the graph is well formed and every value the caller names is one of its
/// outputs, so no later pass indexes a missing node or port.
fn check(g: &Graph, outputs: &[Value], training: Option<&Training>) -> Result<()> {
    g.validate()?;
    for &v in outputs {
        g.output(v)
            .map_err(|e| e.context("compile: a requested output"))?;
    }
    if let Some(t) = training {
        t.check(g)?;
    }
    Ok(())
}

/// What to compute (the outputs and, training, every gradient, into the gradient arena) and
/// what stays readable after a step (just-in-time training: the outputs only).
fn targets(outputs: &[Value], training: Option<&Training>, jit: bool) -> (Vec<Value>, Vec<Value>) {
    let mut computed = outputs.to_vec();
    for g in training.map_or(&[][..], |t| &t.grads[..]) {
        if !computed.contains(g) {
            computed.push(*g);
        }
    }
    let kept = if jit && training.is_some() {
        outputs.to_vec()
    } else {
        computed.clone()
    };
    (computed, kept)
}

/// The step as data: the passes' results assembled for replay, with what the plan costs.
fn program(g: &Graph, plan: Plan, bound: Bound, lowered: Lowered, health: Tensor) -> Program {
    let jit = bound.jit.map(|slot| JitState {
        events: slot.events(g, &lowered.read_at, &lowered.updates),
        plan: slot,
        host: Mutex::new(HashMap::new()),
        training: bound.jit_training,
    });
    // Shared scratch appears once per op using it: count each buffer once.
    let mut seen = std::collections::HashSet::new();
    let scratch_bytes: u64 = lowered
        .scratch
        .iter()
        .filter(|t| seen.insert(Arc::as_ptr(&t.buffer)))
        .map(|t| t.buffer.size())
        .sum();
    let stats = PlanStats {
        nodes: g.nodes.len(),
        live_nodes: plan.live.iter().filter(|&&l| l).count(),
        dispatches_per_step: lowered.launches.len(),
        read_only_dispatches: lowered.launches.iter().filter(|l| l.read_only()).count(),
        arena_bytes: plan.memory.placement.peak,
        naive_bytes: plan.memory.placement.naive,
        persistent_bytes: bound.persistent_bytes + scratch_bytes,
        scratch_bytes,
        weight_bytes: match &jit {
            Some(j) => j.plan.slot_bytes,
            None => g
                .nodes
                .iter()
                .enumerate()
                .filter(|(i, n)| plan.live[*i] && n.op == Op::Param)
                .map(|(_, n)| n.outputs[0].0.iter().product::<usize>() as u64 * 4)
                .sum(),
        },
        submits_per_step: jit
            .as_ref()
            .map_or(1, |j| j.submits(lowered.launches.len())),
    };
    Program {
        tensors: bound.tensors,
        launches: lowered.launches,
        owners: lowered.owners,
        scratch: lowered.scratch,
        per_step: lowered.per_step,
        param_arena: bound.param_arena,
        jit,
        outputs: plan.kept,
        stats,
        health,
    }
}
