//! The compiled step as data: every tensor, the launches in order, the per-step rewrites, the
//! parameter arena or just-in-time state, and what it costs. `compile` produces a `Program`;
//! `exec.rs` replays it. Nothing here depends on either.

use std::collections::HashMap;

use super::residency::JitState;
use crate::graph::Value;
use crate::launch::Launch;
use crate::tensor::Tensor;
use crate::weights::ParamLayout;

/// What the compiled plan costs; reported in BENCHMARKS.md.
#[derive(Clone, Debug)]
pub struct PlanStats {
    /// Nodes in the graph.
    pub nodes: usize,
    /// Nodes left after pruning and fusion.
    pub live_nodes: usize,
    /// Compute dispatches per step.
    pub dispatches_per_step: usize,
    /// Queue submits per step (1 when resident).
    pub submits_per_step: usize,
    /// Dispatches whose `read` bindings are read-only (no buffer they read is also bound
    /// writable, as when a node reads one activation arena and writes the other).
    pub read_only_dispatches: usize,
    /// Bytes of the intermediates' two arenas together (each its planned peak).
    pub arena_bytes: u64,
    /// What the intermediates would take without aliasing.
    pub naive_bytes: u64,
    /// Bytes of inputs, parameters and requested outputs (never aliased), and `scratch_bytes`.
    pub persistent_bytes: u64,
    /// Bytes of the kernels' scratch (split-K partial products, Winograd's operands), each
    /// buffer once: the ops of a step share one buffer per kind.
    pub scratch_bytes: u64,
    /// Weight bytes on the GPU at the peak: all of them resident, or the slot just-in-time.
    pub weight_bytes: u64,
}

/// The activation arena a graph would get (`Graph::plan_arena`), planned without a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArenaPlan {
    /// Bytes of the two arenas together, each its planned peak (`PlanStats::arena_bytes` once
    /// compiled).
    pub arena_bytes: u64,
    /// Bytes of the larger arena: what must fit a device's `max_buffer_size`.
    pub largest_arena_bytes: u64,
    /// What the intermediates would take without aliasing (`PlanStats::naive_bytes`).
    pub naive_bytes: u64,
    /// Intermediates placed in the arena.
    pub intermediates: usize,
    /// Concats whose inputs are written in place (they launch nothing).
    pub elided_concats: usize,
    /// Sums whose second operand's producer adds into the first's memory (they launch nothing).
    pub sums_accumulated: usize,
    /// Sums written over one of their operands (elementwise, in place).
    pub sums_in_place: usize,
}

/// All parameters in one flat f32 tensor and their gradients in another with the same layout:
/// what the optimizers run over. Gaps between entries (binding alignment) hold zeros in both.
#[derive(Clone)]
pub struct ParamArena {
    /// The flat parameter arena (f32).
    pub params: Tensor,
    /// The gradient arena, same layout as `params`.
    pub grads: Tensor,
    /// Name, shape and offset (in elements) of every parameter: what checkpoints and optimizer
    /// parameter groups are expressed in.
    pub layout: ParamLayout,
    /// Mixed precision: the f16 mirrors of both arenas (same layout), filled by one cast each.
    pub f16: Option<HalfArenas>,
}

/// A mixed-precision training graph's f16 arenas, in the layout of the f32 ones.
#[derive(Clone)]
pub struct HalfArenas {
    /// The weights' f16 compute copies, refreshed from `params` at the start of every step.
    pub params: Tensor,
    /// The f16 gradients, cast (and unscaled) into `grads` after the backward pass.
    pub grads: Tensor,
    /// The `[start, len]` chunks of the entries whose gradient is f16 (`cast::range_table`).
    pub grad_ranges: Tensor,
}

/// One compiled step: what the replayer needs, and nothing about how it was planned.
pub struct Program {
    /// Tensor of every (live) node output; views alias their input.
    pub tensors: HashMap<Value, Tensor>,
    /// The graph's launches, in order.
    pub launches: Vec<Launch>,
    /// The node each launch belongs to.
    pub owners: Vec<usize>,
    /// Kernel scratch (e.g. split-K partial sums), owned for as long as the launches.
    // Held, never read: its owner must outlive the launches that bind it.
    #[allow(dead_code)]
    pub scratch: Vec<Tensor>,
    /// (launch index, node, elements) of launches re-parameterised every step (dropout).
    pub per_step: Vec<(usize, usize, usize)>,
    /// Resident training: the flat parameter and gradient arenas.
    pub param_arena: Option<ParamArena>,
    /// Just-in-time residency: the weight slot, the host work between submits, the host copies.
    pub jit: Option<JitState>,
    /// The values the caller may read after a step.
    pub outputs: Vec<Value>,
    pub stats: PlanStats,
    /// The non-finite guard's words (`crate::health`).
    pub health: Tensor,
}
