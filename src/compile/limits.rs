//! Pass 6, limit checks: what the plan needs against what the device allows, before anything is
//! allocated. Each failure is an `Error::TooLarge` naming its unit (and the node, where one).

use super::memory::Memory;
use crate::device::Device;
use crate::error::{Error, Result, Unit};
use crate::graph::Graph;
use crate::launch::MAX_WORKGROUP_BYTES;

/// Workgroup memory of the kernels, the arena's size, and the storage bindings of every live node.
pub fn check(g: &Graph, device: &Device, live: &[bool], memory: &Memory) -> Result<()> {
    let caps = device.caps();
    if caps.max_workgroup_storage < MAX_WORKGROUP_BYTES {
        return Err(Error::TooLarge {
            what: format!("the kernels on {}", device.name()),
            amount: MAX_WORKGROUP_BYTES as u64,
            limit: caps.max_workgroup_storage as u64,
            unit: Unit::WorkgroupBytes,
        });
    }
    if memory.placement.peak > caps.max_buffer_size {
        return Err(Error::TooLarge {
            what: "the activation arena".into(),
            amount: memory.placement.peak,
            limit: caps.max_buffer_size,
            unit: Unit::BufferBytes,
        });
    }
    let max_bindings = caps.max_storage_buffers_per_stage as u64;
    for (i, node) in g.nodes.iter().enumerate() {
        let bindings = (node.inputs.len() + node.outputs.len()) as u64;
        if live[i] && bindings > max_bindings {
            return Err(Error::TooLarge {
                what: format!("node {:?} (limits)", node.name),
                amount: bindings,
                limit: max_bindings,
                unit: Unit::Bindings,
            });
        }
    }
    Ok(())
}
