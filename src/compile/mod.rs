//! Compile once: dead nodes dropped, elementwise chains fused, intermediates placed in one arena
//! by the memory plan, parameters (and gradients, when training) in flat arenas or a
//! just-in-time slot, and every op lowered to launches recorded once (`exec.rs` replays them).

pub mod exec;
pub mod fusion;
pub mod memory;
pub mod residency;

pub use exec::{Compiled, PlanStats, StepHandle};

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use futures_intrusive::sync::Semaphore;

use crate::autograd::Training;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, Value};
use crate::ops::shape::ShapeOp;
use crate::tensor::{DType, Tensor};
use crate::weights::{ParamEntry, ParamLayout};
use exec::IN_FLIGHT;
use fusion::{Fusion, fuse};
use memory::{Interval, place};
use residency::{JitPlan, JitState, JitTraining};

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
    /// Just-in-time weight residency (`residency.rs`): weights stay on the host and one slot is
    /// reused by every layer; when training, each parameter is updated (`attach_optimizer`)
    /// right after its gradient is complete, its gradient and optimizer state never all resident.
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
    /// The parameters one after another, each at the storage alignment (so each can be bound as
    /// its own view). Just-in-time graphs use the same layout for their host copies, so their
    /// checkpoints and optimizer groups are the resident ones'.
    fn layout(
        g: &Graph,
        device: &Device,
        tr: &Training,
        owner: &dyn Fn(Value) -> Value,
    ) -> Result<ParamLayout> {
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
        ParamLayout::new(entries, at.max(1))
    }
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
        let jit_training = opts.just_in_time && opts.training.is_some();
        // What the caller may read after a step. Just-in-time, gradients are intermediates.
        let requested = outputs;
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
        if have < crate::launch::MAX_WORKGROUP_BYTES {
            return Err(Error::TooLarge {
                what: format!("workgroup memory of the kernels on {}", device.name()),
                bytes: crate::launch::MAX_WORKGROUP_BYTES as u64,
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
        let kept = if jit_training { requested } else { outputs };
        let persistent = |v: Value| {
            matches!(self.nodes[v.node].op, Op::Input | Op::Param | Op::State)
                || kept.iter().any(|o| root.get(o).copied().unwrap_or(*o) == v)
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
        // Just-in-time: the parameters each launching node reads (through views), and each
        // parameter's update point: the last node reading it or producing its gradient. Its
        // gradient stays alive until then.
        let mut reads: HashMap<usize, Vec<Value>> = HashMap::new();
        let mut update_node: HashMap<Value, usize> = HashMap::new();
        if opts.just_in_time {
            for (i, node) in self.nodes.iter().enumerate() {
                if !live[i] || alias(i) {
                    continue;
                }
                let mut ps: Vec<Value> = node
                    .inputs
                    .iter()
                    .map(|u| owner(&root, *u))
                    .filter(|o| self.nodes[o.node].op == Op::Param)
                    .collect();
                ps.sort();
                ps.dedup();
                for p in &ps {
                    update_node.insert(*p, i);
                }
                if !ps.is_empty() {
                    reads.insert(i, ps);
                }
            }
        }
        // Node → (layout entry, parameter) of the parameters updated right after it.
        let mut update_after: HashMap<usize, Vec<(usize, Value)>> = HashMap::new();
        if let (true, Some(tr)) = (jit_training, opts.training) {
            for (k, (p, gr)) in tr.params.iter().zip(&tr.grads).enumerate() {
                let g = owner(&root, *gr);
                let at = update_node.get(p).copied().unwrap_or(0).max(g.node);
                update_after.entry(at).or_default().push((k, *p));
                if let Some(l) = life.get_mut(&g) {
                    l.1 = l.1.max(at);
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
            let Some(ShapeOp::Concat(c)) = node.op.downcast::<ShapeOp>() else {
                continue;
            };
            let out = Value { node: i, port: 0 };
            let shape = &node.outputs[0].0;
            let Ok(axis) =
                crate::ops::axis::resolve_axis(crate::ops::shape::Concat::OP, c.axis, shape.len())
            else {
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
            let groups: Vec<Vec<Value>> = reads.values().cloned().collect();
            let plan = JitPlan::place(self, &groups, device)?;
            for (&p, &at) in &plan.offsets {
                let shape = &self.nodes[p.node].outputs[p.port].0;
                tensors.insert(
                    p,
                    Tensor::view(device, plan.slot.clone(), at, shape, DType::F32)?,
                );
            }
            Some(plan)
        } else {
            None
        };
        let mut param_arena = None;
        let mut jit_train = None;
        if let Some(tr) = opts.training {
            if share.is_some() {
                return Err(Error::Invalid(
                    "a training graph owns its parameters: do not share them".into(),
                ));
            }
            let layout = ParamArena::layout(self, device, tr, &|v| owner(&root, v))?;
            if jit.is_some() {
                // Gradients are arena intermediates (placed above), read at the update points.
                let grads = tr
                    .grads
                    .iter()
                    .zip(layout.entries())
                    .map(|(g, e)| tensors[&owner(&root, *g)].reshape(&[e.numel()]))
                    .collect::<Result<Vec<_>>>()?;
                jit_train = Some(JitTraining {
                    layout,
                    params: tr.params.clone(),
                    grads,
                    optimizer: None,
                });
            } else {
                let a = ParamArena {
                    params: Tensor::zeros(device, &[layout.len().max(1)], DType::F32)?,
                    grads: Tensor::zeros(device, &[layout.len().max(1)], DType::F32)?,
                    layout,
                };
                for (k, e) in a.layout.entries().iter().enumerate() {
                    let (pv, gv) = (tr.params[k], owner(&root, tr.grads[k]));
                    let at = e.offset as u64 * 4;
                    let (pb, gb) = (a.params.buffer.clone(), a.grads.buffer.clone());
                    tensors.insert(pv, Tensor::view(device, pb, at, &e.shape, DType::F32)?);
                    let gshape = &self.nodes[gv.node].outputs[gv.port].0;
                    tensors.insert(gv, Tensor::view(device, gb, at, gshape, DType::F32)?);
                }
                persistent_bytes += 2 * a.params.bytes();
                param_arena = Some(a);
            }
        }
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
                    if let Some(c) = share.filter(|c| c.is_jit_param(&node.name)) {
                        let _ = c;
                        return Err(Error::Invalid(format!(
                            "node {:?}: the shared graph keeps this weight just-in-time (on the \
                             host); compile this graph with just_in_time too and set its weights",
                            node.name
                        )));
                    }
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
        // Just-in-time: (first launch of the node, its parameters) for every node reading weights,
        // and (launch after the node, layout entry, parameter) for every update point.
        let mut read_at: Vec<(usize, Vec<Value>)> = Vec::new();
        let mut updates: Vec<(usize, usize, Value)> = Vec::new();
        let add_updates = |updates: &mut Vec<(usize, usize, Value)>, i: usize, at: usize| {
            let after = update_after.get(&i).map_or(&[][..], |u| &u[..]);
            updates.extend(after.iter().map(|&(k, p)| (at, k, p)));
        };
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
                add_updates(&mut updates, i, launches.len());
                continue;
            }
            let then = fusion.chains.get(&i).map_or(&[][..], |c| &c[..]);
            if let Some(p) = node.op.primitive()
                && p.step_params(0, 0).is_some()
            {
                per_step.push((launches.len(), i, ins[0].numel()));
            }
            let prepared = node
                .op
                .lower(&ins, &outs, then, 0)
                .map_err(|e| Error::Invalid(format!("node {:?}: {e}", node.name)))?;
            if let Some(r) = reads.get(&i) {
                read_at.push((launches.len(), r.clone()));
            }
            launches.extend(prepared.launches);
            scratch.extend(prepared.scratch);
            add_updates(&mut updates, i, launches.len());
        }
        let jit = jit.map(|plan| JitState {
            events: plan.events(self, &read_at, &updates),
            plan,
            host: Mutex::new(HashMap::new()),
            training: jit_train,
        });
        let stats = PlanStats {
            nodes: n,
            live_nodes: live.iter().filter(|&&l| l).count(),
            dispatches_per_step: launches.len(),
            arena_bytes: placement.peak,
            naive_bytes: placement.naive,
            persistent_bytes: persistent_bytes + scratch.iter().map(|t| t.bytes()).sum::<u64>(),
            weight_bytes: match &jit {
                Some(j) => j.plan.slot_bytes,
                None => self
                    .nodes
                    .iter()
                    .enumerate()
                    .filter(|(i, n)| live[*i] && n.op == Op::Param)
                    .map(|(_, n)| n.outputs[0].0.iter().product::<usize>() as u64 * 4)
                    .sum(),
            },
            submits_per_step: jit.as_ref().map_or(1, |j| j.submits(launches.len())),
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
            jit,
            per_step,
            step: AtomicU64::new(0),
            outputs: kept.to_vec(),
            stats,
            permits: Arc::new(Semaphore::new(false, IN_FLIGHT)),
            in_flight: Mutex::new(VecDeque::new()),
        })
    }
}
