//! Just-in-time weight residency (MPS's load/purge of data sources): instead of every weight living
//! on the GPU, one *slot* is reused by every layer. Right before a launch that reads weights, they
//! are written into the slot (queue-ordered, so between the submits of one step) and later layers
//! overwrite them: peak weight memory is bounded by the largest layer rather than the sum. The
//! authoritative copy of every weight stays on the host (what the data sources loaded).
//!
//! Training works the same way, layer by layer. Each parameter's gradient is an ordinary
//! intermediate of the activation arena, alive from the node that produces it to the parameter's
//! *update point* (after the last node that reads the parameter or accumulates its gradient).
//! There the engine writes the parameter and its optimizer state (moments) from the host into a
//! second slot, runs the optimizer over that one parameter, and reads both back: weights, their
//! gradients and optimizer state are each bounded by the largest parameter, not the sum. The price
//! is host↔GPU traffic and one wait per parameter per step, so a step runs to completion before
//! `encode_step` returns. Clipping by global norm needs every gradient before any update and is
//! refused in this mode.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::device::Device;
use crate::error::{Error, Result};
use crate::graph::{Graph, Value};
use crate::health;
use crate::launch::Launch;
use crate::optim::Optimizer;
use crate::tensor::{DType, Tensor};
use crate::weights::ParamLayout;

/// Where each parameter lives in the shared slot.
pub struct JitPlan {
    pub slot: Arc<wgpu::Buffer>,
    /// Each parameter's byte offset in the slot, fixed for the whole step.
    pub offsets: HashMap<Value, u64>,
    /// The slot's size: the peak weight memory.
    pub slot_bytes: u64,
}

fn param_bytes(g: &Graph, p: Value) -> u64 {
    g.nodes[p.node].outputs[p.port].0.iter().product::<usize>() as u64 * 4
}

/// The host copy of weight `p`, or an `Err` naming the weight if it was never set.
pub fn host_weight<'a>(
    host: &'a HashMap<Value, Vec<f32>>,
    g: &Graph,
    p: Value,
) -> Result<&'a [f32]> {
    host.get(&p)
        .map(|w| &w[..])
        .ok_or_else(|| Error::Invalid(format!("weight {:?} was never set", g.nodes[p.node].name)))
}

impl JitPlan {
    /// Places the parameters in the slot: the ones one launch reads together never overlap, the
    /// others may share bytes (first fit, in node order). `reads` lists each launch's parameters.
    pub fn place(g: &Graph, reads: &[Vec<Value>], device: &Device) -> Result<JitPlan> {
        let align = device.caps().storage_offset_alignment as u64;
        let mut params: Vec<Value> = reads.iter().flatten().copied().collect();
        params.sort();
        params.dedup();
        let mut offsets: HashMap<Value, u64> = HashMap::new();
        let mut slot_bytes = 0u64;
        for &p in &params {
            let bytes = param_bytes(g, p);
            // Byte ranges of the already placed parameters some launch reads together with p.
            let mut taken: Vec<(u64, u64)> = reads
                .iter()
                .filter(|r| r.contains(&p))
                .flatten()
                .filter_map(|q| offsets.get(q).map(|&o| (o, o + param_bytes(g, *q))))
                .collect();
            taken.sort();
            let mut at = 0;
            for (s, e) in taken {
                if at + bytes <= s {
                    break;
                }
                at = at.max(e.div_ceil(align) * align);
            }
            offsets.insert(p, at);
            slot_bytes = slot_bytes.max(at + bytes);
        }
        device.check_binding("just-in-time weight slot", slot_bytes)?;
        let slot = Arc::new(device.scoped(|d| {
            d.create_buffer(&wgpu::BufferDescriptor {
                label: Some("weight slot"),
                size: slot_bytes.max(4),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?);
        Ok(JitPlan {
            slot,
            offsets,
            slot_bytes,
        })
    }

    /// What must be written into the slot, and when: `reads` are (launch index, parameters it
    /// reads), `updates` are (launch index, parameter) update points. A parameter still in the
    /// slot since its last write (nothing overlapping written since, not updated since) is not
    /// written again within a step.
    pub fn events(
        &self,
        g: &Graph,
        reads: &[(usize, Vec<Value>)],
        updates: &[(usize, usize, Value)],
    ) -> Vec<(usize, Event)> {
        let mut order: Vec<(usize, u8, usize)> = Vec::new();
        order.extend(updates.iter().enumerate().map(|(k, u)| (u.0, 0, k)));
        order.extend(reads.iter().enumerate().map(|(k, r)| (r.0, 1, k)));
        order.sort();
        let mut in_slot: Vec<(Value, u64, u64)> = Vec::new();
        let mut out = Vec::new();
        for (at, kind, k) in order {
            if kind == 0 {
                let (_, entry, p) = updates[k];
                in_slot.retain(|s| s.0 != p);
                out.push((at, Event::Update(entry)));
                continue;
            }
            let mut write = Vec::new();
            for &p in &reads[k].1 {
                if in_slot.iter().any(|s| s.0 == p) {
                    continue;
                }
                let (s, e) = (self.offsets[&p], self.offsets[&p] + param_bytes(g, p));
                in_slot.retain(|q| q.2 <= s || q.1 >= e);
                in_slot.push((p, s, e));
                write.push(p);
            }
            if !write.is_empty() {
                out.push((at, Event::Upload(write)));
            }
        }
        out
    }
}

/// Host work between the submits of a just-in-time step, before the launch at its index.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Write these parameters into the weight slot.
    Upload(Vec<Value>),
    /// Run the optimizer over parameter `k` of the layout (its update point).
    Update(usize),
}

/// Just-in-time residency at run time: the plan, the host work between submits, the weights'
/// host copies (what the data sources loaded) and, when training, the per-parameter updates.
pub struct JitState {
    pub plan: JitPlan,
    pub events: Vec<(usize, Event)>,
    pub host: Mutex<HashMap<Value, Vec<f32>>>,
    pub training: Option<JitTraining>,
}

/// A training graph's side of just-in-time residency.
pub struct JitTraining {
    pub layout: ParamLayout,
    /// The parameter of each layout entry.
    pub params: Vec<Value>,
    /// The gradient of each entry: an arena intermediate, valid at the entry's update point.
    pub grads: Vec<Tensor>,
    pub optimizer: Option<JitOptimizer>,
}

/// The optimizer run one parameter at a time: a slot holding one parameter and its state rows
/// (`[1 + slots, stride]`), the launches of each entry, a readback buffer, and the optimizer's
/// host state (`[slots, layout.len()]`, shared with the `Optimizer` for checkpoints).
pub struct JitOptimizer {
    slot: Arc<wgpu::Buffer>,
    staging: wgpu::Buffer,
    launches: Vec<Vec<Launch>>,
    strides: Vec<usize>,
    slots: usize,
    state: Arc<Mutex<Vec<f32>>>,
    /// The update slot's size.
    pub bytes: u64,
}

impl JitTraining {
    /// The attached optimizer's update launches (their `ready` flags guard each step).
    pub fn launches(&self) -> impl Iterator<Item = &Launch> {
        self.optimizer
            .iter()
            .flat_map(|o| o.launches.iter().flatten())
    }

    /// Records `opt`'s update of every parameter against the update slot (one for all of them),
    /// each after a non-finite scan of its gradient into `health`: a flagged step skips this and
    /// every later update (those before it, in the same step, have run).
    pub fn attach(&mut self, device: &Device, opt: &Optimizer, health: &Tensor) -> Result<()> {
        let state = opt.host_state().ok_or_else(|| {
            Error::Invalid(
                "a just-in-time training graph needs an optimizer made with Optimizer::just_in_time"
                    .into(),
            )
        })?;
        if opt.len() != self.layout.len() {
            return Err(Error::Invalid(format!(
                "optimizer over {} elements, the parameter layout has {}",
                opt.len(),
                self.layout.len()
            )));
        }
        let align = (device.caps().storage_offset_alignment as usize / 4).max(1);
        let slots = opt.slot_names().len();
        let strides: Vec<usize> = self
            .layout
            .entries()
            .iter()
            .map(|e| e.numel().div_ceil(align) * align)
            .collect();
        let rows = 1 + slots.max(1);
        let bytes = (rows * strides.iter().copied().max().unwrap_or(align) * 4) as u64;
        device.check_binding("just-in-time optimizer slot", bytes)?;
        let (slot, staging) = device.scoped(|d| {
            let slot = d.create_buffer(&wgpu::BufferDescriptor {
                label: Some("optimizer slot"),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let staging = d.create_buffer(&wgpu::BufferDescriptor {
                label: Some("optimizer readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            (Arc::new(slot), staging)
        })?;
        let mut launches = Vec::new();
        for (k, e) in self.layout.entries().iter().enumerate() {
            let s = strides[k];
            let w = Tensor::view(device, slot.clone(), 0, &[e.numel()], DType::F32)?;
            let st = Tensor::view(
                device,
                slot.clone(),
                (s * 4) as u64,
                &[slots.max(1) * s],
                DType::F32,
            )?;
            let base = u32::try_from(e.offset).map_err(|_| {
                Error::Invalid(format!("parameter {:?} lies past a u32 offset", e.name))
            })?;
            let update = opt.launches_for(e.range(), &w, &self.grads[k], &st, s, health)?;
            let mut l = Vec::new();
            if !update.is_empty() {
                // (a parameter in no group is frozen: nothing to guard)
                let g = &self.grads[k];
                l.push(health::scan(device, health, g, health::GRAD, None, base)?);
            }
            l.extend(update);
            launches.push(l);
        }
        // Built before the first step needs them, so a failed one is this call's `Err`.
        crate::launch::built(launches.iter().flatten())?;
        self.optimizer = Some(JitOptimizer {
            slot,
            staging,
            launches,
            strides,
            slots,
            state,
            bytes,
        });
        Ok(())
    }

    /// Updates entry `k`: its weights and state into the slot, the optimizer, both read back.
    pub fn update(
        &self,
        device: &Device,
        host: &Mutex<HashMap<Value, Vec<f32>>>,
        k: usize,
        g: &Graph,
    ) -> Result<()> {
        let o = self.optimizer.as_ref().ok_or_else(|| {
            Error::Invalid(
                "just-in-time training graph: attach an optimizer (Compiled::attach_optimizer) before stepping"
                    .into(),
            )
        })?;
        if o.launches[k].is_empty() {
            return Ok(()); // in no parameter group: frozen, nothing to move
        }
        let e = &self.layout.entries()[k];
        let (p, n, s, total) = (self.params[k], e.numel(), o.strides[k], self.layout.len());
        let rows = 1 + o.slots;
        let (d, q) = device.wgpu();
        {
            let host = host.lock().unwrap();
            let w = host_weight(&host, g, p)?;
            let state = o.state.lock().unwrap();
            device.scoped(|_| {
                q.write_buffer(&o.slot, 0, bytemuck::cast_slice(w));
                for r in 0..o.slots {
                    let src = &state[r * total + e.offset..r * total + e.offset + n];
                    q.write_buffer(&o.slot, ((1 + r) * s * 4) as u64, bytemuck::cast_slice(src));
                }
            })?;
        }
        let bytes = (rows * s * 4) as u64;
        device.scoped(|_| {
            let mut enc = crate::launch::encode(d, "update", &o.launches[k])?;
            enc.copy_buffer_to_buffer(&o.slot, 0, &o.staging, 0, bytes);
            q.submit([enc.finish()]);
            Ok(())
        })??;
        device.map_read(&o.staging, bytes, |b| {
            let f: &[f32] = bytemuck::cast_slice(b);
            host.lock().unwrap().insert(p, f[..n].to_vec());
            let mut state = o.state.lock().unwrap();
            for r in 0..o.slots {
                let row = &f[(1 + r) * s..(1 + r) * s + n];
                state[r * total + e.offset..r * total + e.offset + n].copy_from_slice(row);
            }
        })
    }
}

impl JitState {
    /// Submits per step: one per stretch of launches between events, one per update, one last.
    pub fn submits(&self, launches: usize) -> usize {
        let (mut cursor, mut n) = (0, 1);
        for (at, ev) in &self.events {
            if *at > cursor && *at <= launches {
                n += 1;
                cursor = *at;
            }
            n += usize::from(matches!(ev, Event::Update(_)));
        }
        n
    }
}
