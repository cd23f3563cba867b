//! The accumulate pass (after `memory`, the first that needs the device): each node's
//! accumulator (`Options::accumulator`, overridden by name in `Options::accumulator_nodes`),
//! which `lower` hands to `Op`'s lowerings (plain, adding into the output, or with a folded
//! neuron gradient). Only ops whose kernels sum in `accum` (`Primitive::accumulation_len`) take
//! `F16`; the graph-wide setting passes the others by, a node *named* for `F16` that cannot is
//! an `Err`.

use super::Options;
use crate::device::Device;
use crate::dtype::{Accumulator, F16_ACCUMULATING_OPS};
use crate::error::{Error, Result};
use crate::graph::Graph;

/// The accumulator of every node of `g` (f32 for sources and ops that cannot take f16).
pub(super) fn pass(g: &Graph, device: &Device, opts: &Options) -> Result<Vec<Accumulator>> {
    let list = opts.accumulator_nodes;
    for (i, (name, _)) in list.iter().enumerate() {
        if g.find(name).is_none() {
            return Err(Error::Invalid(format!(
                "Options::accumulator_nodes names {name:?}, which is no node of the graph"
            )));
        }
        if list[..i].iter().any(|(n, _)| n == name) {
            return Err(Error::Invalid(format!(
                "Options::accumulator_nodes names {name:?} twice"
            )));
        }
    }
    let asks_f16 =
        opts.accumulator == Accumulator::F16 || list.iter().any(|&(_, a)| a == Accumulator::F16);
    if asks_f16 && !device.caps().shader_f16 {
        return Err(Error::Device(format!(
            "Accumulator::F16 needs SHADER_F16, which {} does not offer",
            device.name()
        )));
    }
    let asked = |name: &str| list.iter().find(|(n, _)| *n == name).map(|&(_, a)| a);
    let mut out = Vec::with_capacity(g.nodes.len());
    for n in &g.nodes {
        let named = asked(&n.name);
        if named.unwrap_or(opts.accumulator) == Accumulator::F32 {
            out.push(Accumulator::F32);
            continue;
        }
        let ins: Vec<&[usize]> = n
            .inputs
            .iter()
            .map(|u| g.nodes[u.node].outputs[u.port].0.as_slice())
            .collect();
        let sums =
            n.op.primitive()
                .is_some_and(|p| p.accumulation_len(&ins).is_some());
        if !sums && named.is_some() {
            return Err(Error::Invalid(format!(
                "node {:?} ({:?}) cannot accumulate in f16: {F16_ACCUMULATING_OPS}",
                n.name, n.op
            )));
        }
        // The graph-wide f16 passes the ops that do not sum by.
        out.push(if sums {
            Accumulator::F16
        } else {
            Accumulator::F32
        });
    }
    Ok(out)
}
