//! Pass 3, alias and elide: which values own memory. Views and fused-away nodes alias their
//! input (followed to the value owning the bytes); persistent values (sources, requested
//! outputs) get buffers of their own; the rest are intermediates of the activation arena.
//!
//! Concat elision: where every input's slice of a concat's output is one contiguous, aligned byte
//! range (concat along the first axis, or leading dims of size 1), the producers write straight
//! into the output and the concat costs nothing. Otherwise it copies. Sums written in place
//! (`sums.rs`, the next pass) add more roots here.

use std::collections::{HashMap, HashSet};

use super::fusion::Fusion;
use crate::graph::{Graph, Op, Value};
use crate::ops::axis::resolve_axis;
use crate::ops::shape::{Concat, ShapeOp};

/// Who owns the memory of each live value.
pub struct Aliases {
    /// `alias[i]`: node `i` writes nothing of its own (a view, or fused into its producer).
    pub alias: Vec<bool>,
    /// A value without memory of its own → the value whose memory it uses (a view or fused
    /// node's output; one written in place by `sums.rs`). Followed to the end by `owner`.
    pub root: HashMap<Value, Value>,
    /// Owners of the values the caller reads after a step: never reused within it.
    kept: HashSet<Value>,
    /// Concat input → (the concat's output, byte offset of its slice there).
    pub slices: HashMap<Value, (Value, u64)>,
    /// Concats whose inputs were written in place: they launch nothing.
    pub elided: Vec<usize>,
    /// `Add` nodes whose second operand's producer added into the first's memory: they launch
    /// nothing (`sums.rs`).
    pub sums_elided: Vec<bool>,
    /// Producers that add their result into the memory they are given (`C += …`).
    pub accumulating: Vec<bool>,
    /// `Add` nodes writing over one of their operands (elementwise, in place).
    pub sums_in_place: usize,
}

impl Aliases {
    /// The value owning `v`'s memory. Every root is an earlier node's value, so the walk ends.
    pub fn owner(&self, mut v: Value) -> Value {
        while let Some(&r) = self.root.get(&v) {
            v = r;
        }
        v
    }

    /// Records `kept` (the values read after a step) as the owners they now have.
    pub fn keep(&mut self, kept: &[Value]) {
        self.kept = kept.iter().map(|&o| self.owner(o)).collect();
    }

    /// Whether `v` keeps its own buffer across steps: a source, a constant (filled once, so
    /// never written over) or a value the caller reads.
    pub fn persistent(&self, g: &Graph, v: Value) -> bool {
        let op = &g.nodes[v.node].op;
        matches!(op, Op::Input | Op::Param | Op::State)
            || (v.port == 0 && constant(op).is_some())
            || self.kept.contains(&v)
    }

    /// Whether `v` (of a live node) owns memory in the activation arena.
    pub fn intermediate(&self, g: &Graph, v: Value) -> bool {
        !self.alias[v.node] && !self.root.contains_key(&v) && !self.persistent(g, v)
    }
}

/// The value every element of `op`'s output 0 always has (`Primitive::constant`).
pub fn constant(op: &Op) -> Option<f32> {
    op.primitive().and_then(|p| p.constant())
}

/// Follows views and fused nodes to their owners and, when `elide` (`Options::fuse`), places
/// the inputs of contiguous concats in their output. `kept` are the values read after a step;
/// `align` is the binding offset alignment in bytes.
pub fn pass(
    g: &Graph,
    live: &[bool],
    fusion: &Fusion,
    kept: &[Value],
    elide: bool,
    align: u64,
) -> Aliases {
    // A view needs an input to alias (an op claiming to be a view of nothing is lowered).
    let alias: Vec<bool> = (0..g.nodes.len())
        .map(|i| (g.nodes[i].op.is_view() && !g.nodes[i].inputs.is_empty()) || fusion.absorbed[i])
        .collect();
    let mut a = Aliases {
        alias,
        root: HashMap::new(),
        kept: HashSet::new(),
        slices: HashMap::new(),
        elided: Vec::new(),
        sums_elided: vec![false; g.nodes.len()],
        accumulating: vec![false; g.nodes.len()],
        sums_in_place: 0,
    };
    for (i, node) in g.nodes.iter().enumerate() {
        if live[i] && a.alias[i] {
            let source = fusion.alias_source(i, node);
            a.root.insert(Value { node: i, port: 0 }, a.owner(source));
        }
    }
    a.keep(kept);
    if elide {
        elide_concats(g, live, align, &mut a);
    }
    a
}

fn elide_concats(g: &Graph, live: &[bool], align: u64, a: &mut Aliases) {
    for (i, node) in g.nodes.iter().enumerate() {
        let Some(ShapeOp::Concat(c)) = node.op.downcast::<ShapeOp>() else {
            continue;
        };
        let out = Value { node: i, port: 0 };
        let shape = &node.outputs[0].0;
        let Ok(axis) = resolve_axis(Concat::OP, c.axis, shape.len()) else {
            continue;
        };
        if !live[i] || !a.intermediate(g, out) || shape[..axis].iter().product::<usize>() != 1 {
            continue;
        }
        let inner: usize = shape[axis + 1..].iter().product();
        let (mut plan, mut at, mut ok) = (Vec::new(), 0u64, true);
        for u in &node.inputs {
            ok &= u.port == 0
                && a.owner(*u) == *u
                && a.intermediate(g, *u)
                && !a.slices.contains_key(u)
                && !a.elided.contains(&u.node)
                && !plan.iter().any(|(p, _)| p == u)
                && at.is_multiple_of(align);
            plan.push((*u, at));
            at += (g.nodes[u.node].outputs[0].0[axis] * inner * 4) as u64;
        }
        if ok {
            for (u, b) in plan {
                a.slices.insert(u, (out, b));
            }
            a.elided.push(i);
        }
    }
}
