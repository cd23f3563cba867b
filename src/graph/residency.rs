//! Just-in-time weight residency (MPS's load/purge of data sources): instead of every weight living
//! on the GPU, one *slot* as large as the largest layer's weights is reused by every layer. Right
//! before a layer runs its weights are written into the slot (queue-ordered, so between the
//! submits of one step), and the next layer overwrites them: peak weight memory is bounded by the
//! largest layer rather than the sum. The price is one submit per layer with weights.
//!
//! Built for forward (inference) graphs; a training graph keeps its weights resident in the flat
//! arena (its gradients and optimizer state would need the same treatment).

use std::collections::HashMap;
use std::sync::Arc;

use super::{Graph, Op, Value};
use crate::device::Device;
use crate::error::{Error, Result};

/// Where each layer's weights go in the shared slot.
pub struct JitPlan {
    pub slot: Arc<wgpu::Buffer>,
    /// Consumer node → its parameters and their byte offsets in the slot.
    pub per_node: HashMap<usize, Vec<(Value, u64)>>,
    /// The slot's size: the peak weight memory.
    pub slot_bytes: u64,
    /// What the same weights take resident.
    pub resident_bytes: u64,
}

impl JitPlan {
    /// Plans the slot for the live nodes of `g`. Each parameter must feed exactly one node.
    pub fn place(g: &Graph, live: &[bool], device: &Device) -> Result<JitPlan> {
        let align = device.caps().storage_offset_alignment as u64;
        let mut consumer: HashMap<Value, usize> = HashMap::new();
        for (i, n) in g.nodes.iter().enumerate() {
            if !live[i] {
                continue;
            }
            for u in &n.inputs {
                if g.nodes[u.node].op == Op::Param
                    && let Some(other) = consumer.insert(*u, i)
                {
                    return Err(Error::Invalid(format!(
                        "just-in-time residency: parameter {:?} feeds both {:?} and {:?}; each weight must belong to one layer",
                        g.nodes[u.node].name, g.nodes[other].name, n.name
                    )));
                }
            }
        }
        let mut per_node: HashMap<usize, Vec<(Value, u64)>> = HashMap::new();
        let (mut slot_bytes, mut resident_bytes) = (0u64, 0u64);
        let mut params: Vec<(Value, usize)> = consumer.into_iter().collect();
        params.sort();
        for (p, node) in params {
            let bytes = g.nodes[p.node].outputs[0].0.iter().product::<usize>() as u64 * 4;
            let list = per_node.entry(node).or_default();
            let at = list.last().map_or(0, |&(q, o)| {
                o + (g.nodes[q.node].outputs[0].0.iter().product::<usize>() as u64 * 4)
                    .div_ceil(align)
                    * align
            });
            list.push((p, at));
            slot_bytes = slot_bytes.max(at + bytes);
            resident_bytes += bytes;
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
            per_node,
            slot_bytes,
            resident_bytes,
        })
    }
}
