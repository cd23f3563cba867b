//! Pass 4, lifetimes: each arena intermediate lives from the node writing it to the last node
//! reading it (through views). Just-in-time, also the parameters each node reads and each
//! parameter's update point (the last node reading it or producing its gradient), where its
//! gradient must still be alive. An elided concat's inputs live inside its output, which lives
//! as long as all of them; memory written in place (`sums.rs`) lives until its last writer too.

use std::collections::HashMap;

use super::alias::Aliases;
use super::fusion::Fusion;
use crate::autograd::Training;
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, Value};

/// When each intermediate is live, and the just-in-time reads and update points.
pub struct Lifetimes {
    /// Memory-owning intermediate → (first, last) node position it is live.
    pub life: HashMap<Value, (usize, usize)>,
    /// Just-in-time: launching node → the parameters it reads.
    pub reads: HashMap<usize, Vec<Value>>,
    /// Just-in-time training: node → (layout entry, parameter) updated right after it.
    pub update_after: HashMap<usize, Vec<(usize, Value)>>,
}

/// The lifetimes of `live` nodes' intermediates. `jit`: weights are just-in-time; `training`
/// then has update points.
pub fn pass(
    g: &Graph,
    live: &[bool],
    aliases: &Aliases,
    fusion: &Fusion,
    jit: bool,
    training: Option<&Training>,
) -> Result<Lifetimes> {
    let mut life: HashMap<Value, (usize, usize)> = HashMap::new();
    for (i, node) in g.nodes.iter().enumerate() {
        if !live[i] || aliases.alias[i] {
            continue;
        }
        for port in 0..node.outputs.len() {
            let v = Value { node: i, port };
            if aliases.intermediate(g, v) {
                life.insert(v, (i, i));
            } else if aliases.root.contains_key(&v)
                && let Some(l) = life.get_mut(&aliases.owner(v))
            {
                // A producer adding into another value's memory writes it here.
                l.1 = l.1.max(i);
            }
        }
        for u in fusion.reads(g, i) {
            if let Some(l) = life.get_mut(&aliases.owner(u)) {
                l.1 = l.1.max(i);
            }
        }
    }
    let mut reads: HashMap<usize, Vec<Value>> = HashMap::new();
    let mut update_node: HashMap<Value, usize> = HashMap::new();
    if jit {
        for (i, node) in g.nodes.iter().enumerate() {
            if !live[i] || aliases.alias[i] {
                continue;
            }
            // A residual folded into a norm is read by the norm (`fusion.rs`).
            let mut ps: Vec<Value> = (node.inputs.iter().copied())
                .chain(fusion.extra_reads(i))
                .map(|u| aliases.owner(u))
                .filter(|o| g.nodes[o.node].op == Op::Param)
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
    let mut update_after: HashMap<usize, Vec<(usize, Value)>> = HashMap::new();
    if let (true, Some(tr)) = (jit, training) {
        for (k, (p, gr)) in tr.params.iter().zip(&tr.grads).enumerate() {
            let grad = aliases.owner(*gr);
            // The gradient is complete at its own node, which may follow its owner's (a sum
            // written into the first contribution's memory).
            let at = update_node.get(p).copied().unwrap_or(0).max(gr.node);
            update_after.entry(at).or_default().push((k, *p));
            if let Some(l) = life.get_mut(&grad) {
                l.1 = l.1.max(at);
            }
        }
    }
    for (u, (out, _)) in &aliases.slices {
        // The alias pass elides only concats of intermediates into an intermediate; an Err,
        // not a panic, should that ever not hold.
        let elided = || Error::Invalid(format!("lifetimes: elided concat input {u:?} of {out:?}"));
        let lu = life.remove(u).ok_or_else(elided)?;
        let lo = life.get_mut(out).ok_or_else(elided)?;
        *lo = (lo.0.min(lu.0), lo.1.max(lu.1));
    }
    Ok(Lifetimes {
        life,
        reads,
        update_after,
    })
}
