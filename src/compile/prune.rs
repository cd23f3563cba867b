//! Pass 1, prune: the nodes the outputs depend on; the rest are dead and never planned.

use crate::graph::{Graph, Value};

/// `live[i]`: node `i` is needed for `outputs`.
pub fn prune(g: &Graph, outputs: &[Value]) -> Vec<bool> {
    let mut live = vec![false; g.nodes.len()];
    for v in outputs {
        live[v.node] = true;
    }
    for i in (0..g.nodes.len()).rev() {
        if live[i] {
            for u in &g.nodes[i].inputs {
                live[u.node] = true;
            }
        }
    }
    live
}
