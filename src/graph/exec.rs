//! Compile once, replay every step: dead nodes dropped, intermediates placed in one arena by the
//! memory plan, every op lowered to launches recorded once. A step is one command buffer and one
//! submit; `encode_step` returns at once and at most two steps are in flight (a semaphore of two
//! permits, released by the queue's completion callback — MPS's double-buffering pattern).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_intrusive::sync::Semaphore;

use super::autograd::Training;
use super::fusion::{Fusion, fuse};
use super::heads::Head;
use super::memory::{Interval, place};
use super::residency::JitPlan;
use super::{Graph, Op, Value};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::kernels::Launch;
use crate::ops::shape_ops::Concat;
use crate::tensor::{DType, Tensor};
use crate::weights::{ParamEntry, ParamLayout};

/// Steps allowed in flight at once.
pub const IN_FLIGHT: usize = 2;

/// What the compiled plan costs; reported in BENCHMARKS.md.
#[derive(Clone, Debug)]
pub struct PlanStats {
    pub nodes: usize,
    pub live_nodes: usize,
    pub dispatches_per_step: usize,
    pub submits_per_step: usize,
    /// Bytes of the intermediates' arena (the planned peak).
    pub arena_bytes: u64,
    /// What the intermediates would take without aliasing.
    pub naive_bytes: u64,
    /// Bytes of inputs, parameters and requested outputs (never aliased).
    pub persistent_bytes: u64,
    /// Weight bytes on the GPU at the peak: all of them resident, or the slot just-in-time.
    pub weight_bytes: u64,
}

/// How to compile.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// Fold elementwise chains into one dispatch (on by default).
    pub fuse: bool,
    /// Use this compiled graph's parameter tensors for parameters of the same name.
    pub share: Option<&'a Compiled>,
    /// Place every parameter in one flat arena and its gradient at the same offset of a second
    /// one, so an optimizer updates all of them with one fused kernel.
    pub training: Option<&'a Training>,
    /// Just-in-time weight residency (`residency.rs`): one slot reused by every layer.
    pub just_in_time: bool,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            fuse: true,
            share: None,
            training: None,
            just_in_time: false,
        }
    }
}

/// All parameters in one flat f32 tensor and their gradients in another with the same layout:
/// what the optimizers run over. Gaps between entries (binding alignment) hold zeros in both.
#[derive(Clone)]
pub struct ParamArena {
    pub params: Tensor,
    pub grads: Tensor,
    /// Name, shape and offset (in elements) of every parameter: what checkpoints and optimizer
    /// parameter groups are expressed in.
    pub layout: ParamLayout,
}

impl ParamArena {
    fn place(
        g: &Graph,
        device: &Device,
        tr: &Training,
        owner: &dyn Fn(Value) -> Value,
    ) -> Result<ParamArena> {
        let align = (device.caps().storage_offset_alignment as usize / 4).max(1);
        let mut entries = Vec::new();
        let mut at = 0;
        for (p, gr) in tr.params.iter().zip(&tr.grads) {
            let (shape, dt) = &g.nodes[p.node].outputs[p.port];
            let gv = owner(*gr);
            if *dt != DType::F32 || matches!(g.nodes[gv.node].op, Op::Input | Op::Param | Op::State)
            {
                return Err(Error::Invalid(format!(
                    "parameter {:?} cannot live in the arena",
                    g.nodes[p.node].name
                )));
            }
            entries.push(ParamEntry {
                name: g.nodes[p.node].name.clone(),
                offset: at,
                shape: shape.clone(),
            });
            at += shape.iter().product::<usize>().div_ceil(align) * align;
        }
        let total = at.max(1);
        Ok(ParamArena {
            params: Tensor::zeros(device, &[total], DType::F32)?,
            grads: Tensor::zeros(device, &[total], DType::F32)?,
            layout: ParamLayout::new(entries, total)?,
        })
    }
}

/// Computes, for step `n`, new parameter words for some of the update launches: `(index, words)`.
pub type StepParams = dyn Fn(u64) -> Vec<(usize, Vec<u32>)> + Send + Sync;

/// A step submitted to the GPU.
pub struct StepHandle {
    device: Device,
    index: wgpu::SubmissionIndex,
    done: Arc<AtomicBool>,
}

impl StepHandle {
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Blocks until this step's work is complete.
    pub fn wait(&self) -> Result<()> {
        let (d, _) = self.device.wgpu();
        d.poll(wgpu::PollType::Wait {
            submission_index: Some(self.index.clone()),
            timeout: None,
        })
        .map_err(|e| Error::Device(format!("waiting for a step: {e}")))?;
        self.device.take_uncaptured()
    }
}

/// Just-in-time residency at run time: the plan, where each node's upload goes in the launch
/// list, and the weights' host copies (what the data sources loaded).
struct JitState {
    plan: JitPlan,
    uploads: Vec<(usize, usize)>,
    host: Mutex<HashMap<Value, Vec<f32>>>,
}

/// A graph compiled for one device and batch size.
pub struct Compiled {
    device: Device,
    pub graph: Graph,
    /// Tensor of every (live) node output; views alias their input.
    tensors: HashMap<Value, Tensor>,
    launches: Vec<Launch>,
    /// Launches appended after the graph's (the optimizer update), re-parameterised every step
    /// by `update_params`.
    update: Vec<Launch>,
    update_params: Option<Box<StepParams>>,
    param_arena: Option<ParamArena>,
    jit: Option<JitState>,
    /// Kernel scratch (e.g. split-K partial sums), owned for as long as the launches.
    _scratch: Vec<Tensor>,
    /// (launch index, node, elements) of launches re-parameterised every step (dropout).
    per_step: Vec<(usize, usize, usize)>,
    /// Steps encoded so far: seeds dropout, part of what a checkpoint saves.
    step: AtomicU64,
    outputs: Vec<Value>,
    stats: PlanStats,
    permits: Arc<Semaphore>,
    in_flight: Mutex<VecDeque<wgpu::SubmissionIndex>>,
}

impl Graph {
    /// Compiles the nodes needed for `outputs` (and only those) on `device`.
    pub fn compile(&self, device: &Device, outputs: &[Value]) -> Result<Compiled> {
        self.compile_sharing(device, outputs, None)
    }

    /// Like `compile`, but parameters and states with the same name as in `share` use its tensors: an
    /// inference graph, or the same network at another batch size, trains the same weights.
    pub fn compile_sharing(
        &self,
        device: &Device,
        outputs: &[Value],
        share: Option<&Compiled>,
    ) -> Result<Compiled> {
        self.compile_with(
            device,
            outputs,
            &Options {
                share,
                ..Options::default()
            },
        )
    }

    /// Compiles with explicit options (fusion on or off, shared parameters).
    pub fn compile_with(
        &self,
        device: &Device,
        outputs: &[Value],
        opts: &Options,
    ) -> Result<Compiled> {
        let share = opts.share;
        // A training graph always produces every gradient (into the gradient arena).
        let mut wanted = outputs.to_vec();
        for g in opts.training.map_or(&[][..], |t| &t.grads[..]) {
            if !wanted.contains(g) {
                wanted.push(*g);
            }
        }
        let outputs = &wanted[..];
        let n = self.nodes.len();
        let have = device.caps().max_workgroup_storage;
        if have < crate::kernels::MAX_WORKGROUP_BYTES {
            return Err(Error::TooLarge {
                what: format!("workgroup memory of the kernels on {}", device.name()),
                bytes: crate::kernels::MAX_WORKGROUP_BYTES as u64,
                limit: have as u64,
            });
        }
        // Dead-node removal: keep what the outputs depend on.
        let mut live = vec![false; n];
        for v in outputs {
            live[v.node] = true;
        }
        for i in (0..n).rev() {
            if live[i] {
                for u in &self.nodes[i].inputs {
                    live[u.node] = true;
                }
            }
        }
        let fusion = if opts.fuse {
            fuse(self, &live, outputs)
        } else {
            Fusion {
                absorbed: vec![false; n],
                ..Fusion::default()
            }
        };
        // Views and fused-away nodes alias their input: follow them to the value owning memory.
        let alias = |i: usize| self.nodes[i].op.is_view() || fusion.absorbed[i];
        let mut root: HashMap<Value, Value> = HashMap::new();
        let owner = |root: &HashMap<Value, Value>, v: Value| *root.get(&v).unwrap_or(&v);
        for (i, node) in self.nodes.iter().enumerate() {
            if live[i] && alias(i) {
                root.insert(Value { node: i, port: 0 }, owner(&root, node.inputs[0]));
            }
        }
        // Lifetimes of memory-owning intermediates.
        let persistent = |v: Value| {
            matches!(self.nodes[v.node].op, Op::Input | Op::Param | Op::State)
                || outputs
                    .iter()
                    .any(|o| root.get(o).copied().unwrap_or(*o) == v)
        };
        let mut life: HashMap<Value, (usize, usize)> = HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if !live[i] || alias(i) {
                continue;
            }
            for port in 0..node.outputs.len() {
                let v = Value { node: i, port };
                if !persistent(v) {
                    life.insert(v, (i, i));
                }
            }
            for u in &node.inputs {
                if let Some(l) = life.get_mut(&owner(&root, *u)) {
                    l.1 = l.1.max(i);
                }
            }
        }
        // Concat elision: where every input's slice of the output is one contiguous, aligned byte
        // range (concat along the first axis, or leading dims of size 1), the producers write
        // straight into the output and the concat costs nothing. Otherwise it copies.
        let align = device.caps().storage_offset_alignment as u64;
        let mut slices: HashMap<Value, (Value, u64)> = HashMap::new();
        let mut elided: Vec<usize> = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let Op::Head(Head::Concat(c)) = &node.op else {
                continue;
            };
            let out = Value { node: i, port: 0 };
            let shape = &node.outputs[0].0;
            let Ok(axis) = crate::ops::axis::resolve_axis(Concat::OP, c.axis, shape.len()) else {
                continue;
            };
            if !opts.fuse
                || !live[i]
                || !life.contains_key(&out)
                || shape[..axis].iter().product::<usize>() != 1
            {
                continue;
            }
            let inner: usize = shape[axis + 1..].iter().product();
            let (mut plan, mut at, mut ok) = (Vec::new(), 0u64, true);
            for u in &node.inputs {
                ok &= u.port == 0
                    && owner(&root, *u) == *u
                    && life.contains_key(u)
                    && !slices.contains_key(u)
                    && !elided.contains(&u.node)
                    && !plan.iter().any(|(p, _)| p == u)
                    && at.is_multiple_of(align);
                plan.push((*u, at));
                at += (self.nodes[u.node].outputs[0].0[axis] * inner * 4) as u64;
            }
            if ok {
                for (u, b) in plan {
                    let lu = life.remove(&u).expect("checked above");
                    let lo = life.get_mut(&out).expect("checked above");
                    *lo = (lo.0.min(lu.0), lo.1.max(lu.1));
                    slices.insert(u, (out, b));
                }
                elided.push(i);
            }
        }
        let mut owned: Vec<Value> = life.keys().copied().collect();
        owned.sort();
        let bytes = |v: Value| {
            let (s, dt) = &self.nodes[v.node].outputs[v.port];
            (s.iter().product::<usize>() * dt.size()) as u64
        };
        let items: Vec<Interval> = owned
            .iter()
            .map(|&v| Interval {
                bytes: bytes(v),
                first: life[&v].0,
                last: life[&v].1,
            })
            .collect();
        let caps = device.caps();
        let placement = place(&items, caps.storage_offset_alignment as u64);
        if placement.peak > caps.max_buffer_size {
            return Err(Error::TooLarge {
                what: "the activation arena".into(),
                bytes: placement.peak,
                limit: caps.max_buffer_size,
            });
        }
        let arena = Arc::new(device.scoped(|d| {
            d.create_buffer(&wgpu::BufferDescriptor {
                label: Some("activation arena"),
                size: placement.peak.max(4),
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?);
        // Tensors: arena views for intermediates, own buffers for persistent values.
        let mut tensors: HashMap<Value, Tensor> = HashMap::new();
        for (k, &v) in owned.iter().enumerate() {
            let (s, dt) = &self.nodes[v.node].outputs[v.port];
            tensors.insert(
                v,
                Tensor::view(device, arena.clone(), placement.offsets[k], s, *dt)?,
            );
        }
        for (u, (out, b)) in &slices {
            let t = &tensors[out];
            let shape = &self.nodes[u.node].outputs[0].0;
            tensors.insert(
                *u,
                Tensor::view(device, t.buffer.clone(), t.offset + b, shape, DType::F32)?,
            );
        }
        let mut persistent_bytes = 0;
        let jit = if opts.just_in_time {
            if opts.training.is_some() || share.is_some() {
                return Err(Error::Invalid(
                    "just-in-time residency is for forward graphs that own their weights (training keeps them resident)"
                        .into(),
                ));
            }
            let plan = JitPlan::place(self, &live, device)?;
            for list in plan.per_node.values() {
                for &(p, at) in list {
                    let shape = &self.nodes[p.node].outputs[0].0;
                    tensors.insert(
                        p,
                        Tensor::view(device, plan.slot.clone(), at, shape, DType::F32)?,
                    );
                }
            }
            Some(plan)
        } else {
            None
        };
        let param_arena = match opts.training {
            Some(tr) => {
                if share.is_some() {
                    return Err(Error::Invalid(
                        "a training graph owns its parameters: do not share them".into(),
                    ));
                }
                let a = ParamArena::place(self, device, tr, &|v| owner(&root, v))?;
                for (k, e) in a.layout.entries().iter().enumerate() {
                    let (pv, gv) = (tr.params[k], owner(&root, tr.grads[k]));
                    let dt = DType::F32;
                    tensors.insert(
                        pv,
                        Tensor::view(
                            device,
                            a.params.buffer.clone(),
                            e.offset as u64 * 4,
                            &e.shape,
                            dt,
                        )?,
                    );
                    let gshape = &self.nodes[gv.node].outputs[gv.port].0;
                    tensors.insert(
                        gv,
                        Tensor::view(
                            device,
                            a.grads.buffer.clone(),
                            e.offset as u64 * 4,
                            gshape,
                            dt,
                        )?,
                    );
                }
                persistent_bytes += 2 * a.params.bytes();
                Some(a)
            }
            None => None,
        };
        for (i, node) in self.nodes.iter().enumerate() {
            if !live[i] {
                continue;
            }
            for port in 0..node.outputs.len() {
                let v = Value { node: i, port };
                if alias(i) {
                    let src = &tensors[&node.inputs[0]];
                    tensors.insert(v, src.reshape(&node.outputs[0].0)?);
                } else if let std::collections::hash_map::Entry::Vacant(slot) = tensors.entry(v) {
                    let (s, dt) = &node.outputs[port];
                    let shared = share
                        .filter(|_| matches!(node.op, Op::Param | Op::State))
                        .and_then(|c| c.param(&node.name));
                    let t = match shared {
                        Some(t) if t.shape() == s.as_slice() => t.clone(),
                        Some(t) => {
                            return Err(Error::Shape {
                                op: format!("node {:?}", node.name),
                                msg: format!(
                                    "shared parameter is {:?}, this graph needs {s:?}",
                                    t.shape()
                                ),
                            });
                        }
                        None => {
                            persistent_bytes += bytes(v);
                            Tensor::zeros(device, s, *dt)?
                        }
                    };
                    slot.insert(t);
                }
            }
        }
        // Lower every live node once; the list is replayed every step.
        let mut launches = Vec::new();
        let mut scratch: Vec<Tensor> = Vec::new();
        let mut per_step: Vec<(usize, usize, usize)> = Vec::new();
        // Just-in-time: (first launch of the node, node) for every node whose weights are loaded.
        let mut uploads: Vec<(usize, usize)> = Vec::new();
        let max_bindings = caps.max_storage_buffers_per_stage as usize;
        for (i, node) in self.nodes.iter().enumerate() {
            if !live[i] {
                continue;
            }
            let ins: Vec<&Tensor> = node.inputs.iter().map(|u| &tensors[u]).collect();
            let outs: Vec<&Tensor> = (0..node.outputs.len())
                .map(|p| &tensors[&Value { node: i, port: p }])
                .collect();
            if ins.len() + outs.len() > max_bindings {
                return Err(Error::TooLarge {
                    what: format!("node {:?}: storage bindings", node.name),
                    bytes: (ins.len() + outs.len()) as u64,
                    limit: max_bindings as u64,
                });
            }
            if fusion.absorbed[i] || elided.contains(&i) {
                continue;
            }
            let then = fusion.chains.get(&i).map_or(&[][..], |c| &c[..]);
            if let Op::Stateful(st) = &node.op
                && st.step_params(0, 0).is_some()
            {
                per_step.push((launches.len(), i, ins[0].numel()));
            }
            let prepared = node
                .op
                .lower(&ins, &outs, then, 0)
                .map_err(|e| Error::Invalid(format!("node {:?}: {e}", node.name)))?;
            if jit.as_ref().is_some_and(|j| j.per_node.contains_key(&i)) {
                uploads.push((launches.len(), i));
            }
            launches.extend(prepared.launches);
            scratch.extend(prepared.scratch);
        }
        let stats = PlanStats {
            nodes: n,
            live_nodes: live.iter().filter(|&&l| l).count(),
            dispatches_per_step: launches.len(),
            arena_bytes: placement.peak,
            naive_bytes: placement.naive,
            persistent_bytes: persistent_bytes + scratch.iter().map(|t| t.bytes()).sum::<u64>(),
            weight_bytes: match &jit {
                Some(j) => j.slot_bytes,
                None => self
                    .nodes
                    .iter()
                    .enumerate()
                    .filter(|(i, n)| live[*i] && n.op == Op::Param)
                    .map(|(_, n)| n.outputs[0].0.iter().product::<usize>() as u64 * 4)
                    .sum(),
            },
            submits_per_step: 1 + uploads
                .len()
                .saturating_sub(usize::from(uploads.first().is_some_and(|u| u.0 == 0))),
        };
        Ok(Compiled {
            device: device.clone(),
            graph: self.clone(),
            tensors,
            launches,
            _scratch: scratch,
            update: Vec::new(),
            update_params: None,
            param_arena,
            jit: jit.map(|plan| JitState {
                plan,
                uploads,
                host: Mutex::new(HashMap::new()),
            }),
            per_step,
            step: AtomicU64::new(0),
            outputs: outputs.to_vec(),
            stats,
            permits: Arc::new(Semaphore::new(false, IN_FLIGHT)),
            in_flight: Mutex::new(VecDeque::new()),
        })
    }
}

impl Compiled {
    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn stats(&self) -> &PlanStats {
        &self.stats
    }

    pub fn outputs(&self) -> &[Value] {
        &self.outputs
    }

    /// The tensor holding `v` (valid for inputs, parameters and requested outputs between steps).
    pub fn tensor(&self, v: Value) -> Result<&Tensor> {
        self.tensors
            .get(&v)
            .ok_or_else(|| Error::Invalid(format!("{v:?} is not part of this compiled graph")))
    }

    /// The parameter tensor named `name`.
    /// The parameter or state tensor named `name` (what `compile_sharing` shares).
    pub fn param(&self, name: &str) -> Option<&Tensor> {
        let v = self.graph.find(name)?;
        matches!(self.graph.node(v).op, Op::Param | Op::State)
            .then(|| self.tensors.get(&v))
            .flatten()
    }

    /// Writes f32 data into the input or parameter named `name` (queue-ordered: a step already
    /// submitted still sees the old contents).
    pub fn set(&self, name: &str, data: &[f32]) -> Result<()> {
        let v = self
            .graph
            .find(name)
            .ok_or_else(|| Error::Invalid(format!("no node named {name:?}")))?;
        if !matches!(self.graph.node(v).op, Op::Input | Op::Param | Op::State) {
            return Err(Error::Invalid(format!(
                "node {name:?} is computed, not fed"
            )));
        }
        if let Some(j) = self
            .jit
            .as_ref()
            .filter(|_| self.graph.node(v).op == Op::Param)
        {
            // Just-in-time weights stay on the host until their layer runs.
            let want: usize = self.graph.shape(v).iter().product();
            if data.len() != want {
                return Err(Error::Shape {
                    op: format!("node {name:?}"),
                    msg: format!(
                        "{} values for a weight {:?}",
                        data.len(),
                        self.graph.shape(v)
                    ),
                });
            }
            j.host.lock().unwrap().insert(v, data.to_vec());
            return Ok(());
        }
        self.tensor(v)?
            .write_f32(data)
            .map_err(|e| Error::Invalid(format!("node {name:?}: {e}")))
    }

    /// Writes u32 data (class-index labels) into the input named `name`.
    pub fn set_u32(&self, name: &str, data: &[u32]) -> Result<()> {
        let v = self
            .graph
            .find(name)
            .ok_or_else(|| Error::Invalid(format!("no node named {name:?}")))?;
        if self.graph.node(v).op != Op::Input {
            return Err(Error::Invalid(format!("node {name:?} is not an input")));
        }
        self.tensor(v)?
            .write_u32(data)
            .map_err(|e| Error::Invalid(format!("node {name:?}: {e}")))
    }

    /// Reads a requested output (waits for the steps in flight).
    pub fn read(&self, v: Value) -> Result<Vec<f32>> {
        if !self.outputs.contains(&v)
            && !matches!(self.graph.node(v).op, Op::Input | Op::Param | Op::State)
        {
            return Err(Error::Invalid(format!(
                "{:?} was not requested as an output; its memory is reused within the step",
                self.graph.node(v).name
            )));
        }
        self.wait_all()?;
        if let Some(j) = self
            .jit
            .as_ref()
            .filter(|_| self.graph.node(v).op == Op::Param)
        {
            return j.host.lock().unwrap().get(&v).cloned().ok_or_else(|| {
                Error::Invalid(format!(
                    "weight {:?} was never set",
                    self.graph.node(v).name
                ))
            });
        }
        self.tensor(v)?.to_f32()
    }

    /// Submits one step and returns at once, unless two are already in flight, in which case it
    /// first waits for the older one. `on_done` runs when the GPU has finished this step.
    pub fn encode_step_with(&self, on_done: impl FnOnce() + Send + 'static) -> Result<StepHandle> {
        loop {
            if let Some(mut permit) = self.permits.try_acquire(1) {
                permit.disarm();
                break;
            }
            let oldest = self.in_flight.lock().unwrap().pop_front();
            let (d, _) = self.device.wgpu();
            d.poll(wgpu::PollType::Wait {
                submission_index: oldest,
                timeout: Some(Duration::from_secs(60)),
            })
            .map_err(|e| Error::Device(format!("waiting for a step in flight: {e}")))?;
        }
        let step = self.step.fetch_add(1, Ordering::SeqCst);
        for &(l, node, n) in &self.per_step {
            if let Op::Stateful(st) = &self.graph.nodes[node].op
                && let Some(p) = st.step_params(step, n)
            {
                self.device.rewrite_params(&self.launches[l], &p)?;
            }
        }
        if let Some(f) = &self.update_params {
            for (k, p) in f(step) {
                let l = self
                    .update
                    .get(k)
                    .ok_or_else(|| Error::Invalid(format!("update launch {k} does not exist")))?;
                self.device.rewrite_params(l, &p)?;
            }
        }
        let (_, q) = self.device.wgpu();
        let all: Vec<&Launch> = self.launches.iter().chain(&self.update).collect();
        // One submit per segment: just-in-time residency starts a segment at every layer whose
        // weights must be written into the slot first (queue-ordered writes between submits).
        let mut cuts: Vec<(usize, Option<usize>)> = vec![(0, None)];
        if let Some(j) = &self.jit {
            for &(at, node) in &j.uploads {
                if at == 0 {
                    cuts[0].1 = Some(node);
                } else {
                    cuts.push((at, Some(node)));
                }
            }
        }
        let mut index = None;
        for (k, &(start, node)) in cuts.iter().enumerate() {
            if let (Some(j), Some(node)) = (&self.jit, node) {
                let host = j.host.lock().unwrap();
                for &(p, at) in &j.plan.per_node[&node] {
                    let data = host.get(&p).ok_or_else(|| {
                        Error::Invalid(format!(
                            "weight {:?} was never set",
                            self.graph.nodes[p.node].name
                        ))
                    })?;
                    self.device
                        .scoped(|_| q.write_buffer(&j.plan.slot, at, bytemuck::cast_slice(data)))?;
                }
            }
            let end = cuts.get(k + 1).map_or(all.len(), |c| c.0);
            index = Some(self.submit(&all[start..end]));
        }
        let index = index.expect("at least one segment");
        let done = Arc::new(AtomicBool::new(false));
        let (flag, permits) = (done.clone(), self.permits.clone());
        q.on_submitted_work_done(move || {
            flag.store(true, Ordering::Release);
            permits.release(1);
            on_done();
        });
        self.in_flight.lock().unwrap().push_back(index.clone());
        self.device.take_uncaptured()?;
        Ok(StepHandle {
            device: self.device.clone(),
            index,
            done,
        })
    }

    /// Encodes `launches` into one compute pass and submits it.
    fn submit(&self, launches: &[&Launch]) -> wgpu::SubmissionIndex {
        let (d, q) = self.device.wgpu();
        let mut enc = d.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("step"),
        });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("step"),
                timestamp_writes: None,
            });
            for l in launches {
                pass.set_pipeline(&l.pipeline);
                pass.set_bind_group(0, &l.bind_group, &[]);
                pass.dispatch_workgroups(l.groups[0], l.groups[1], l.groups[2]);
            }
        }
        q.submit([enc.finish()])
    }

    /// Steps encoded so far (the next step's dropout seed).
    pub fn step_count(&self) -> u64 {
        self.step.load(Ordering::SeqCst)
    }

    /// Continues counting from `step` (resuming from a checkpoint reproduces the same masks).
    pub fn set_step_count(&self, step: u64) {
        self.step.store(step, Ordering::SeqCst)
    }

    /// The flat parameter and gradient arenas (graphs compiled with `Options::training`).
    pub fn param_arena(&self) -> Option<&ParamArena> {
        self.param_arena.as_ref()
    }

    /// Appends launches to every step after the graph's own (the optimizer update over the
    /// arena); `params` rewrites their parameters before each step (step count, learning rate).
    pub fn set_update(&mut self, launches: Vec<Launch>, params: Option<Box<StepParams>>) {
        self.stats.dispatches_per_step = self.launches.len() + launches.len();
        self.update = launches;
        self.update_params = params;
    }

    pub fn encode_step(&self) -> Result<StepHandle> {
        self.encode_step_with(|| {})
    }

    /// One step, waited for.
    pub fn step(&self) -> Result<()> {
        self.encode_step()?.wait()
    }

    /// Waits for every step in flight.
    pub fn wait_all(&self) -> Result<()> {
        self.in_flight.lock().unwrap().clear();
        self.device.wait()
    }
}
