//! Pass 6, limit checks: what the plan needs against what the device allows, before anything is
//! allocated. Each failure is an `Error::TooLarge` naming its unit (and the node, where one).

use super::memory::Memory;
use crate::device::Device;
use crate::error::{Error, Result, Unit};
use crate::graph::Graph;
use crate::launch::MAX_WORKGROUP_BYTES;

pub use crate::tensor::MAX_ELEMENTS;

/// Every live value's element count against [`MAX_ELEMENTS`], before the memory plan sums byte
/// counts. With each value at most 2^34 bytes, no sum over a graph's values (the arena, the
/// parameter layout, the just-in-time slot) can approach u64.
pub fn check_sizes(g: &Graph, live: &[bool]) -> Result<()> {
    for (i, node) in g.nodes.iter().enumerate() {
        if !live[i] {
            continue;
        }
        for (port, (shape, _)) in node.outputs.iter().enumerate() {
            let n = shape
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
                .unwrap_or(u64::MAX);
            if n > MAX_ELEMENTS {
                return Err(Error::TooLarge {
                    what: format!("node {:?} output {port} {shape:?} (limits)", node.name),
                    amount: n,
                    limit: MAX_ELEMENTS,
                    unit: Unit::Elements,
                });
            }
        }
    }
    Ok(())
}

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
    for (k, bytes) in memory.arena_bytes().into_iter().enumerate() {
        if bytes > caps.max_buffer_size {
            return Err(Error::TooLarge {
                what: format!("activation arena {k}"),
                amount: bytes,
                limit: caps.max_buffer_size,
                unit: Unit::BufferBytes,
            });
        }
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
