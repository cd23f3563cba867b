//! Pass 7, allocate: the tensor of every live value. Intermediates are views of the two arenas
//! at their planned offsets (an elided concat's inputs, of its output); just-in-time weights, views
//! of the weight slot; a resident training graph's parameters and gradients, views of the flat
//! parameter and gradient arenas; views and fused nodes, reshapes of their owner; values written
//! into another's memory (`sums.rs`), reshapes of its tensor; every other
//! source or kept output, a buffer of its own (or the shared graph's tensor of the same name).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use super::Plan;
use super::exec::Compiled;
use super::precision::Mirrors;
use super::program::{HalfArenas, ParamArena};
use super::residency::{JitPlan, JitTraining};
use crate::autograd::Training;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, Value};
use crate::tensor::{DType, Tensor};
use crate::weights::{ParamEntry, ParamLayout};

/// Every live value's tensor, and where the weights live.
pub struct Bound {
    pub tensors: HashMap<Value, Tensor>,
    /// Just-in-time: the weight slot.
    pub jit: Option<JitPlan>,
    /// Just-in-time training: the layout and each gradient's tensor.
    pub jit_training: Option<JitTraining>,
    /// Resident training: the flat arenas.
    pub param_arena: Option<ParamArena>,
    /// Bytes of buffers owned outside the activation arena.
    pub persistent_bytes: u64,
}

/// Allocates the plan's memory on `device`. `share`: take parameters and states from that
/// graph by name; `training`: lay the parameters out for an optimizer.
pub fn pass(
    g: &Graph,
    device: &Device,
    plan: &Plan,
    share: Option<&Compiled>,
    training: Option<&Training>,
) -> Result<Bound> {
    let (memory, aliases) = (&plan.memory, &plan.aliases);
    let mut arenas = Vec::new();
    for (bytes, label) in memory
        .arena_bytes()
        .into_iter()
        .zip(["activation arena 0", "activation arena 1"])
    {
        arenas.push(Arc::new(device.scoped(|d| {
            d.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(4),
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?));
    }
    let mut tensors: HashMap<Value, Tensor> = HashMap::new();
    for (k, &v) in memory.owned.iter().enumerate() {
        let (s, dt) = &g.nodes[v.node].outputs[v.port];
        let at = memory.placement.offsets[k];
        let (arena, at) = match at.checked_sub(memory.split) {
            Some(second) => (&arenas[1], second),
            None => (&arenas[0], at),
        };
        tensors.insert(v, Tensor::view(device, arena.clone(), at, s, *dt)?);
    }
    for (u, (out, b)) in &aliases.slices {
        let t = &tensors[out];
        let shape = &g.nodes[u.node].outputs[0].0;
        let view = Tensor::view(device, t.buffer.clone(), t.offset + b, shape, DType::F32)?;
        tensors.insert(*u, view);
    }
    let mut bound = Bound {
        tensors,
        jit: None,
        jit_training: None,
        param_arena: None,
        persistent_bytes: 0,
    };
    if plan.jit {
        let groups: Vec<Vec<Value>> = plan.lifetimes.reads.values().cloned().collect();
        let slot = JitPlan::place(g, &groups, device)?;
        for (&p, &at) in &slot.offsets {
            let shape = &g.nodes[p.node].outputs[p.port].0;
            let view = Tensor::view(device, slot.slot.clone(), at, shape, DType::F32)?;
            bound.tensors.insert(p, view);
        }
        bound.jit = Some(slot);
    }
    if let Some(tr) = training {
        if share.is_some() {
            return Err(Error::Invalid(
                "a training graph owns its parameters: do not share them".into(),
            ));
        }
        if !plan.jit {
            params(g, device, tr, plan, &mut bound)?;
        }
    }
    for (i, node) in g.nodes.iter().enumerate() {
        if !plan.live[i] {
            continue;
        }
        for port in 0..node.outputs.len() {
            let v = Value { node: i, port };
            if aliases.alias[i] || aliases.root.contains_key(&v) {
                // A value written into another's memory (`sums.rs`) is a view of its owner.
                let src = if aliases.alias[i] {
                    plan.fusion.alias_source(i, node)
                } else {
                    aliases.owner(v)
                };
                let src = bound.tensors.get(&src).ok_or_else(|| {
                    Error::Invalid(format!(
                        "allocate: {v:?} aliases {src:?}, which has no tensor"
                    ))
                })?;
                let view = src.reshape(&node.outputs[0].0)?;
                bound.tensors.insert(v, view);
            } else if let Entry::Vacant(slot) = bound.tensors.entry(v) {
                let t = shared(g, share, v)?;
                if t.is_none() {
                    bound.persistent_bytes += super::memory::value_bytes(g, v);
                }
                let (s, dt) = &node.outputs[port];
                let fill = super::alias::constant(&node.op).filter(|_| port == 0);
                slot.insert(match (t, fill) {
                    (Some(t), _) => t,
                    (None, Some(c)) => constant(device, s, *dt, c)?,
                    (None, None) => Tensor::zeros(device, s, *dt)?,
                });
            }
        }
    }
    // Just-in-time, after every tensor exists: a gradient the caller also asked for as an
    // output has a buffer of its own rather than an arena slice.
    if let Some(tr) = training.filter(|_| plan.jit) {
        params(g, device, tr, plan, &mut bound)?;
    }
    Ok(bound)
}

/// A tensor of `shape` holding `c` everywhere: a constant's value, written once.
fn constant(device: &Device, shape: &[usize], dt: DType, c: f32) -> Result<Tensor> {
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let data = vec![c; n.ok_or_else(|| Error::Invalid(format!("constant {shape:?}: too large")))?];
    match dt {
        DType::F32 => Tensor::from_f32(device, shape, &data),
        DType::F16 => Tensor::from_f32_as_f16(device, shape, &data),
        DType::U32 => Err(Error::Invalid(format!(
            "constant {shape:?}: a u32 constant {c}"
        ))),
    }
}

/// The tensor a persistent value shares with `share` (a parameter or state of the same name),
/// `None` when it gets its own.
fn shared(g: &Graph, share: Option<&Compiled>, v: Value) -> Result<Option<Tensor>> {
    let node = &g.nodes[v.node];
    let s = &node.outputs[v.port].0;
    if share.is_some_and(|c| c.is_jit_param(&node.name)) {
        return Err(Error::Invalid(format!(
            "node {:?}: the shared graph keeps this weight just-in-time (on the host); compile \
             this graph with Residency::JustInTime too and set its weights",
            node.name
        )));
    }
    let shared = share
        .filter(|_| matches!(node.op, Op::Param | Op::State))
        .and_then(|c| c.param(&node.name));
    match shared {
        Some(t) if t.shape() == s.as_slice() => Ok(Some(t.clone())),
        Some(t) => Err(Error::Shape {
            op: format!("node {:?} (allocate)", node.name),
            msg: format!(
                "shared parameter is {:?}, this graph needs {s:?}",
                t.shape()
            ),
        }),
        None => Ok(None),
    }
}

/// A training graph's parameters: views of the flat arenas (resident), or the layout and the
/// gradients' arena tensors (just-in-time; the weights are in the slot).
fn params(g: &Graph, device: &Device, tr: &Training, plan: &Plan, bound: &mut Bound) -> Result<()> {
    let aliases = &plan.aliases;
    // f16 mirrors need every entry's offset aligned for an f16 view: twice the elements.
    let per_element = if plan.mirrors.is_some() { 2 } else { 4 };
    let layout = param_layout(g, device, tr, per_element, &|v| aliases.owner(v))?;
    if bound.jit.is_some() {
        // Gradients are arena intermediates (or, requested as outputs, buffers of their own),
        // read at the update points.
        let grads = tr
            .grads
            .iter()
            .zip(layout.entries())
            .map(|(gr, e)| {
                let t = bound.tensors.get(&aliases.owner(*gr)).ok_or_else(|| {
                    Error::Invalid(format!("allocate: the gradient {gr:?} has no tensor"))
                })?;
                t.reshape(&[e.numel()])
            })
            .collect::<Result<Vec<_>>>()?;
        bound.jit_training = Some(JitTraining {
            layout,
            params: tr.params.clone(),
            grads,
            optimizer: None,
        });
        return Ok(());
    }
    let mut a = ParamArena {
        params: Tensor::zeros(device, &[layout.len().max(1)], DType::F32)?,
        grads: Tensor::zeros(device, &[layout.len().max(1)], DType::F32)?,
        layout,
        f16: None,
    };
    for (k, e) in a.layout.entries().iter().enumerate() {
        let (pv, gv) = (tr.params[k], aliases.owner(tr.grads[k]));
        let at = e.offset as u64 * 4;
        let (pb, gb) = (a.params.buffer.clone(), a.grads.buffer.clone());
        let gshape = &g.nodes[gv.node].outputs[gv.port].0;
        let (pt, gt) = (
            Tensor::view(device, pb, at, &e.shape, DType::F32)?,
            Tensor::view(device, gb, at, gshape, DType::F32)?,
        );
        bound.tensors.insert(pv, pt);
        bound.tensors.insert(gv, gt);
    }
    bound.persistent_bytes += 2 * a.params.bytes();
    if let Some(m) = &plan.mirrors {
        let h = half_arenas(g, device, m, &a, &|v| aliases.owner(v), bound)?;
        bound.persistent_bytes += 2 * h.params.bytes() + h.grad_ranges.bytes();
        a.f16 = Some(h);
    }
    bound.param_arena = Some(a);
    Ok(())
}

/// The f16 mirrors of the arenas (`precision::Mirrors`): each weight's f16 copy and each f16
/// gradient a view at its entry's offset; an f32 gradient unscaled in place, a view of the f32
/// gradient arena.
fn half_arenas(
    g: &Graph,
    device: &Device,
    m: &Mirrors,
    arena: &ParamArena,
    owner: &dyn Fn(Value) -> Value,
    bound: &mut Bound,
) -> Result<HalfArenas> {
    let layout = &arena.layout;
    let n = layout.len().max(1);
    let (params, grads) = (
        Tensor::zeros(device, &[n], DType::F16)?,
        Tensor::zeros(device, &[n], DType::F16)?,
    );
    let mut ranges = Vec::new();
    for (k, e) in layout.entries().iter().enumerate() {
        let at = e.offset as u64 * 2;
        if let Some(i) = m.param_casts[k] {
            let v = Value { node: i, port: 0 };
            let view = Tensor::view(device, params.buffer.clone(), at, &e.shape, DType::F16)?;
            bound.tensors.insert(v, view);
        }
        if let Some(i) = m.grad_casts[k] {
            let o = owner(g.nodes[i].inputs[0]);
            let shape = &g.nodes[o.node].outputs[o.port].0;
            let f16 = Mirrors::from_f16(g, i);
            let view = if f16 {
                Tensor::view(device, grads.buffer.clone(), at, shape, DType::F16)?
            } else {
                let b = arena.grads.buffer.clone();
                Tensor::view(device, b, 2 * at, shape, DType::F32)?
            };
            bound.tensors.insert(o, view);
            ranges.push((e.range(), !f16));
        }
    }
    let mut words = crate::ops::cast::gpu::range_table(&ranges)?;
    if words.is_empty() {
        // An empty table still binds one (empty) chunk's words.
        words = vec![0, 0, 0];
    }
    Ok(HalfArenas {
        params,
        grads,
        grad_ranges: Tensor::from_u32(device, &[words.len()], &words)?,
    })
}

/// The parameters one after another, each at the storage alignment (so each can be bound as
/// its own view). Just-in-time graphs use the same layout for their host copies, so their
/// checkpoints and optimizer groups are the resident ones'.
fn param_layout(
    g: &Graph,
    device: &Device,
    tr: &Training,
    element_bytes: usize,
    owner: &dyn Fn(Value) -> Value,
) -> Result<ParamLayout> {
    let align = (device.caps().storage_offset_alignment as usize / element_bytes).max(1);
    let mut entries = Vec::new();
    let mut at = 0;
    let mut placed = std::collections::HashSet::new();
    for (p, gr) in tr.params.iter().zip(&tr.grads) {
        let (shape, dt) = &g.nodes[p.node].outputs[p.port];
        let gv = owner(*gr);
        let op = &g.nodes[gv.node].op;
        // Each gradient's memory is its own slot: not a source's or a constant's, and not
        // shared with another parameter's (`Graph::training` copies where it would be).
        let foreign = matches!(op, Op::Input | Op::Param | Op::State)
            || super::alias::constant(op).is_some()
            || !placed.insert(gv);
        if *dt != DType::F32 || foreign {
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
