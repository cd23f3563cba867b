//! Pass 3b, sums: an `Add(x, y)` of two values of its own shape and dtype — autograd's gradient
//! sums (`grad/<name>/acc`, where a value feeds several ops) and any other — written without
//! memory of its own.
//!
//! * Accumulated: where y's producer can add into its output (`Primitive::accumulates`: the
//!   GEMMs of matmul, fully connected layers and convolutions) it adds into x's memory
//!   (`C += …` in its epilogue) and the `Add` launches nothing: a buffer and a dispatch fewer.
//! * In place: otherwise the `Add` writes `x + y` over x (each invocation reads and writes its
//!   own element): a buffer fewer.
//!
//! Order is what makes it correct, since nodes run in graph order: the writer (y's producer, or
//! the `Add`) comes after every other write of x's memory and after every other read of it, so
//! nothing sees a partial sum, and x is dead after the sum. x's memory must be the arena's — not
//! a source, not a value the caller reads, not inside an elided concat — and y must have no
//! reader but the sum. The values re-rooted here make lifetimes and memory see the alias.

use std::collections::HashMap;

use super::alias::Aliases;
use super::fusion::Fusion;
use crate::graph::{Graph, Value};
use crate::ops::elementwise::{BinaryOp, ElementwiseOp};

/// What the pass reads, and who reads and last wrote each owner's memory so far.
struct Sums<'a> {
    g: &'a Graph,
    live: &'a [bool],
    fusion: &'a Fusion,
    /// The values the caller reads after a step.
    kept: &'a [Value],
    /// Owner → the live launching nodes reading its memory (alias nodes among them are skipped
    /// when asked: a sum turned into an alias reads nothing).
    readers: HashMap<Value, Vec<usize>>,
    /// Owner → the last node writing its memory (by default the node making it).
    last_write: HashMap<Value, usize>,
}

/// Writes the sums of `live` nodes in place when `enabled` (`Options::sum_in_place`), recording
/// the new roots in `a`; `kept` are the values the caller reads after a step.
pub fn pass(
    g: &Graph,
    live: &[bool],
    fusion: &Fusion,
    kept: &[Value],
    enabled: bool,
    a: &mut Aliases,
) {
    if !enabled {
        return;
    }
    let mut s = Sums {
        g,
        live,
        fusion,
        kept,
        readers: HashMap::new(),
        last_write: HashMap::new(),
    };
    for (i, &is_live) in live.iter().enumerate() {
        if is_live && !a.alias[i] {
            for u in fusion.reads(g, i) {
                s.readers.entry(a.owner(u)).or_default().push(i);
            }
        }
    }
    for (i, node) in g.nodes.iter().enumerate() {
        if !live[i] || !s.plain_sum(i) {
            continue;
        }
        let out = Value { node: i, port: 0 };
        if a.root.contains_key(&out) || a.slices.contains_key(&out) {
            continue;
        }
        let (x, y) = (node.inputs[0], node.inputs[1]);
        // The accumulating producer cannot apply a neuron fused onto the sum.
        let bare = fusion.fused.get(&i).is_none_or(|c| c.is_empty());
        if bare && (s.accumulate(a, i, x, y) || s.accumulate(a, i, y, x)) {
            continue;
        }
        let _ = s.in_place(a, i, x) || s.in_place(a, i, y);
    }
    a.keep(kept);
}

impl Sums<'_> {
    /// Node `i` is `Add(x, y)` with x, y and the sum of one shape and dtype (no broadcast).
    fn plain_sum(&self, i: usize) -> bool {
        let node = &self.g.nodes[i];
        let add = ElementwiseOp::Binary(BinaryOp::Add);
        node.op.downcast::<ElementwiseOp>() == Some(&add)
            && node.inputs.len() == 2
            && node.outputs.len() == 1
            && node
                .inputs
                .iter()
                .all(|u| self.g.nodes[u.node].outputs.get(u.port) == Some(&node.outputs[0]))
    }

    /// `v` owns memory of the arena that may be written over: an intermediate, not a concat's
    /// slice or an elided concat's output, and no value the caller reads lives in it.
    fn writable(&self, a: &Aliases, v: Value) -> bool {
        self.live[v.node]
            && a.intermediate(self.g, v)
            && !a.slices.contains_key(&v)
            && !a.elided.contains(&v.node)
            && self.kept.iter().all(|&k| a.owner(k) != v)
    }

    /// Every launching reader of `o`'s memory but `except` runs before node `before`.
    fn read_before(&self, a: &Aliases, o: Value, except: usize, before: usize) -> bool {
        self.readers
            .get(&o)
            .is_none_or(|r| r.iter().all(|&i| i == except || a.alias[i] || i < before))
    }

    fn last_write(&self, o: Value) -> usize {
        self.last_write.get(&o).copied().unwrap_or(o.node)
    }

    /// `v` now lives in `o`'s memory: its readers become `o`'s.
    fn reroot(&mut self, a: &mut Aliases, v: Value, o: Value) {
        a.root.insert(v, o);
        if let Some(r) = self.readers.remove(&v) {
            self.readers.entry(o).or_default().extend(r);
        }
    }

    /// Sum `i` = x + y with y's producer adding into x's memory; whether it was.
    fn accumulate(&mut self, a: &mut Aliases, i: usize, x: Value, y: Value) -> bool {
        let (o, p) = (a.owner(x), y.node);
        let producer = &self.g.nodes[p];
        let ok = y.port == 0
            && a.owner(y) == y
            && o != y
            && self.writable(a, o)
            && self.writable(a, y)
            && !a.alias[p]
            && self.fusion.fused.get(&p).is_none_or(|c| c.is_empty())
            && producer.op.primitive().is_some_and(|q| q.accumulates())
            // y is read by the sum alone; the producer reads none of x's memory, runs after x
            // is complete and after everything else reading it.
            && self.read_before(a, y, i, 0)
            && self.last_write(o) < p
            && self.read_before(a, o, i, p);
        if ok {
            self.reroot(a, y, o);
            self.reroot(a, Value { node: i, port: 0 }, o);
            a.alias[i] = true;
            a.sums_elided[i] = true;
            a.accumulating[p] = true;
            self.last_write.insert(o, p);
        }
        ok
    }

    /// Sum `i` written over x's memory; whether it was.
    fn in_place(&mut self, a: &mut Aliases, i: usize, x: Value) -> bool {
        let o = a.owner(x);
        let ok = self.writable(a, o) && self.last_write(o) < i && self.read_before(a, o, i, i);
        if ok {
            self.reroot(a, Value { node: i, port: 0 }, o);
            a.sums_in_place += 1;
            self.last_write.insert(o, i);
        }
        ok
    }
}
