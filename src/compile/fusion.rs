//! Fusion: elementwise chains collapse into one dispatch. A unary op whose input is produced by an
//! elementwise op (unary or broadcasting binary — e.g. the bias add after a conv or FC) and read by
//! nothing else is folded into that producer's dispatch as a post-op; the folded node's output
//! then aliases the producer's, and the intermediate never touches memory. A norm takes one such
//! neuron too (batch norm + ReLU, in training and at inference), and so do convolutions and fully
//! connected layers, in their GEMM epilogue after the bias (conv + bias + neuron in one dispatch).
//!
//! Training graphs fuse too: a neuron whose derivative is a function of its output (ReLU,
//! sigmoid, tanh, … — `UnaryOp::grad_from`) gets a gradient reading its output y and dy, not its
//! input, so the pre-activation (conv/FC + bias, a norm's output, an elementwise op) is read by
//! the neuron alone and the neuron folds into its producer. y stays materialised: it is the
//! fused dispatch's output. A value some gradient reads has a second reader and never fuses away
//! — nor does a neuron whose own output is read twice (e.g. by its gradient) extend the chain past
//! it, since only the end of a chain is written.
//!
//! Backward, the same idea the other way round: a neuron's gradient from its output folds into
//! the max-pool, dropout or concat backward producing its dy (`fold_grad_neurons`; a concat's
//! and a max pool's read the derivative from their forward's output, so y is dead once the
//! forward has read it), or else into the
//! training norm's backward reading it as its dy (`fold_grad_neurons_into_readers`: conv → batch
//! norm → ReLU's gradient applied as the norm's backward loads dy). Inputs an op takes only for
//! their shape (`Primitive::reads_input`) are not reads, here or in the later passes.
//!
//! A residual sum folds into a norm (`fold_residuals`): `Add(norm(x), r)` of one shape, the
//! norm's output read by the sum alone, becomes the norm writing neuron(γ·x̂ + β + r) — the sum's
//! fused neuron moving into the norm's epilogue — and the `Add` launches nothing (ResNet's
//! bn3 → add → ReLU). The norm's backward reads x and its statistics, never its output, so the
//! pre-sum value is not needed; the sum's gradient is dy itself either way.

use std::collections::HashMap;

use crate::graph::{Graph, Node, Value};
use crate::neuron::UnaryOp;
use crate::ops::axis::resolve_axis;
use crate::ops::elementwise::{BinaryOp, ElementwiseOp};
use crate::ops::pool::{PoolKind, PoolOp};
use crate::ops::shape::{Concat, ShapeOp};

/// The result of the fusion pass over the live nodes.
#[derive(Clone, Debug, Default)]
pub struct Fusion {
    /// Nodes folded into a producer: they launch nothing and alias the producer's output.
    pub absorbed: Vec<bool>,
    /// Producer node → the unary ops it applies after its own, in order.
    pub fused: HashMap<usize, Vec<UnaryOp>>,
    /// Backward producer node → the neuron whose gradient it applies as it writes (its
    /// `UnaryGradOut` absorbed), and that neuron's output y, which it then reads.
    pub grad_neurons: HashMap<usize, (UnaryOp, Value)>,
    /// Backward node → the neuron whose gradient it applies to its input
    /// `Primitive::folds_grad_neuron_input` as it reads it (that input's `UnaryGradOut`
    /// absorbed), and that neuron's output y, which it then reads.
    pub input_grad_neurons: HashMap<usize, (UnaryOp, Value)>,
    /// Norm → the residual it adds to its output (the `Add` summing them absorbed).
    pub residuals: HashMap<usize, Value>,
    /// Absorbed node → the value whose memory it uses, where that is not its input 0: a neuron
    /// gradient's dy (input 1), a residual sum's norm output.
    pub sources: HashMap<usize, Value>,
}

impl Fusion {
    /// The value whose memory an aliasing node `i` (a view or an absorbed node) uses.
    pub fn alias_source(&self, i: usize, node: &Node) -> Value {
        self.sources.get(&i).copied().unwrap_or(node.inputs[0])
    }

    /// The values launching node `i` reads: its inputs but those taken only for their shape,
    /// the y of a neuron gradient folded into it and the residual it adds.
    pub fn reads<'a>(&self, g: &'a Graph, i: usize) -> impl Iterator<Item = Value> + 'a {
        read_inputs(&g.nodes[i]).chain(self.extra_reads(i))
    }

    /// The values a fold made node `i` read besides its inputs.
    pub fn extra_reads(&self, i: usize) -> impl Iterator<Item = Value> + use<> {
        let y = self.grad_neurons.get(&i).map(|&(_, y)| y);
        let y_in = self.input_grad_neurons.get(&i).map(|&(_, y)| y);
        let r = self.residuals.get(&i).copied();
        y.into_iter().chain(y_in).chain(r)
    }
}

/// The inputs `node`'s launches read (not those taken only for their shape).
pub fn read_inputs(node: &Node) -> impl Iterator<Item = Value> + '_ {
    (node.inputs.iter().enumerate())
        .filter(|(slot, _)| node.op.reads_input(*slot))
        .map(|(_, u)| *u)
}

/// Pass 2, fuse: the neuron chains among `live` nodes when `enabled` (`Options::fuse`), none
/// otherwise. `storage_bindings`: the device's storage buffers per shader stage (a folded
/// kernel may bind more than its plain twin).
pub fn pass(
    g: &Graph,
    live: &[bool],
    outputs: &[Value],
    enabled: bool,
    storage_bindings: u32,
) -> Fusion {
    if enabled {
        fuse_for(g, live, outputs, storage_bindings)
    } else {
        Fusion {
            absorbed: vec![false; g.nodes.len()],
            ..Fusion::default()
        }
    }
}

/// Finds the neuron chains among `live` nodes; values in `outputs` are never fused away. As
/// for a device binding any number of storage buffers per stage.
pub fn fuse(g: &Graph, live: &[bool], outputs: &[Value]) -> Fusion {
    fuse_for(g, live, outputs, u32::MAX)
}

/// `fuse` for a device binding `storage_bindings` storage buffers per shader stage.
pub fn fuse_for(g: &Graph, live: &[bool], outputs: &[Value], storage_bindings: u32) -> Fusion {
    let n = g.nodes.len();
    let mut uses: HashMap<Value, usize> = HashMap::new();
    // The (node, input slot) reading each value, for the folds into a reader.
    let mut readers: HashMap<Value, Vec<(usize, usize)>> = HashMap::new();
    for (i, node) in g.nodes.iter().enumerate() {
        if live[i] {
            for (slot, u) in node.inputs.iter().enumerate() {
                if node.op.reads_input(slot) {
                    *uses.entry(*u).or_default() += 1;
                    readers.entry(*u).or_default().push((i, slot));
                }
            }
        }
    }
    let mut f = Fusion {
        absorbed: vec![false; n],
        ..Fusion::default()
    };
    let mut head: Vec<usize> = (0..n).collect();
    for (i, node) in g.nodes.iter().enumerate() {
        let Some(u) = node.op.primitive().and_then(|p| p.as_neuron()) else {
            continue;
        };
        let Some(&v) = node.inputs.first() else {
            continue;
        };
        let h = head[v.node];
        let have = f.fused.get(&h).map_or(0, |c| c.len());
        // The head producer says how many neurons it applies at this port (a chain for
        // elementwise ops, one for norms on y and for GEMM epilogues, none for the rest).
        let room = g.nodes[h]
            .op
            .primitive()
            .map_or(0, |p| p.fusable_neurons(v.port));
        if live[i] && have < room && uses.get(&v) == Some(&1) && !outputs.contains(&v) {
            f.fused.entry(h).or_default().push(u);
            f.absorbed[i] = true;
            head[i] = h;
        }
    }
    let ctx = Folds {
        g,
        live,
        outputs,
        readers: &readers,
    };
    fold_residuals(&ctx, &mut f);
    fold_grad_neurons(g, live, outputs, &uses, &mut f);
    fold_grad_neurons_into_readers(&ctx, storage_bindings, &mut f);
    f
}

/// What the folds into a neighbour read: the graph, the live nodes, the values never fused
/// away and who reads each value (node, input slot).
struct Folds<'a> {
    g: &'a Graph,
    live: &'a [bool],
    outputs: &'a [Value],
    readers: &'a HashMap<Value, Vec<(usize, usize)>>,
}

impl Folds<'_> {
    /// The one live node reading `v`, and at which input slot; `None` for none or several.
    fn only_reader(&self, v: Value) -> Option<(usize, usize)> {
        match self.readers.get(&v).map(|r| &r[..]) {
            Some(&[(i, slot)]) if self.live[i] => Some((i, slot)),
            _ => None,
        }
    }

    /// The shape and dtype of `v`.
    fn out(&self, v: Value) -> Option<&crate::graph::Out> {
        self.g.nodes.get(v.node)?.outputs.get(v.port)
    }
}

/// `Add(h, r)` (either operand order) of one shape and dtype, where h is a norm's output read by
/// the sum alone, folds into the norm (`Primitive::adds_residual`): it writes
/// neuron(γ·x̂ + β + r) into its output, which the sum and its fused neurons alias. r must be
/// complete before the norm runs (an earlier node's), and the norm must have room for the sum's
/// neurons (`fusable_neurons`).
fn fold_residuals(c: &Folds, f: &mut Fusion) {
    let add = ElementwiseOp::Binary(BinaryOp::Add);
    for (a, node) in c.g.nodes.iter().enumerate() {
        if !c.live[a] || f.absorbed[a] || node.op.downcast::<ElementwiseOp>() != Some(&add) {
            continue;
        }
        let (Some(&x0), Some(&x1), [sum]) =
            (node.inputs.first(), node.inputs.get(1), &node.outputs[..])
        else {
            continue;
        };
        let chain = f.fused.get(&a).map_or(0, |ch| ch.len());
        for (h, r) in [(x0, x1), (x1, x0)] {
            let n = h.node;
            let norm = c.g.nodes[n].op.primitive();
            let ok = node.inputs.len() == 2
                && h.port == 0
                && r.node < n
                && c.out(h) == Some(sum)
                && c.out(r) == Some(sum)
                && norm.is_some_and(|p| p.adds_residual() && chain <= p.fusable_neurons(0))
                && c.live[n]
                && !f.absorbed[n]
                && !f.fused.contains_key(&n)
                && !f.residuals.contains_key(&n)
                && c.only_reader(h) == Some((a, usize::from(h != x0)))
                && !c.outputs.contains(&h);
            if ok {
                if let Some(neurons) = f.fused.remove(&a) {
                    f.fused.insert(n, neurons);
                }
                f.residuals.insert(n, r);
                f.sources.insert(a, h);
                f.absorbed[a] = true;
                break;
            }
        }
    }
}

/// A neuron's gradient from its output, `UnaryGradOut [y, d]`, not folded into d's producer,
/// folds into the one op reading it when that op can read it through the derivative
/// (`Primitive::folds_grad_neuron_input`: a training norm's backward, given the device's
/// `storage_bindings`): conv → batch norm → ReLU's backward then never writes dy·[y > 0]. The
/// absorbed gradient aliases d, which the reader binds in its place, reading y too.
fn fold_grad_neurons_into_readers(c: &Folds, storage_bindings: u32, f: &mut Fusion) {
    for (i, node) in c.g.nodes.iter().enumerate() {
        let Some(&ElementwiseOp::UnaryGradOut(u)) = node.op.downcast::<ElementwiseOp>() else {
            continue;
        };
        let (Some(&y), Some(&d)) = (node.inputs.first(), node.inputs.get(1)) else {
            continue;
        };
        let out = Value { node: i, port: 0 };
        let Some((q, slot)) = c.only_reader(out) else {
            continue;
        };
        let folds = c.g.nodes[q]
            .op
            .primitive()
            .and_then(|p| p.folds_grad_neuron_input(storage_bindings));
        let dtype = |v: Value| c.out(v).map(|o| o.1);
        // One storage dtype for y, d and what the reader takes in d's place.
        if c.live[i]
            && !f.absorbed[i]
            && !f.absorbed[q]
            && folds == Some(slot)
            && !f.input_grad_neurons.contains_key(&q)
            && !c.outputs.contains(&out)
            && dtype(y) == dtype(out)
            && dtype(d) == dtype(out)
        {
            f.input_grad_neurons.insert(q, (u, y));
            f.sources.insert(i, d);
            f.absorbed[i] = true;
        }
    }
}

/// A neuron's gradient from its output, `UnaryGradOut [y, d]`, folds into the producer of d
/// when that producer can apply it (`Primitive::folds_grad_neuron`: max pooling's, dropout's
/// and a concat's backward) and d is read by nothing else: conv → ReLU → max pool's backward is
/// then one dispatch instead of two. A concat's backward reads the derivative from the
/// concat's output (`concat_holding`), max pooling's from the pool's output
/// (`pool_holding`), so y itself is dead once the concat has copied it or the pool has read it:
/// neither Inception's branch ends nor the activations before a max pool are kept into the
/// backward pass for their masks.
fn fold_grad_neurons(
    g: &Graph,
    live: &[bool],
    outputs: &[Value],
    uses: &HashMap<Value, usize>,
    f: &mut Fusion,
) {
    for (i, node) in g.nodes.iter().enumerate() {
        let Some(&ElementwiseOp::UnaryGradOut(u)) = node.op.downcast::<ElementwiseOp>() else {
            continue;
        };
        let (Some(&y), Some(&d)) = (node.inputs.first(), node.inputs.get(1)) else {
            continue;
        };
        let p = d.node;
        let dtype = |v: Value| g.nodes[v.node].outputs.get(v.port).map(|o| o.1);
        let folds = g.nodes[p]
            .op
            .primitive()
            .is_some_and(|q| q.folds_grad_neuron());
        // The value read (sought last: a concat's holder is a scan of the nodes before it)
        // must be complete before the producer runs, in the kernel's one storage dtype.
        if live[i]
            && live[p]
            && folds
            && d.port == 0
            && y.node < p
            && !f.absorbed[p]
            && !f.fused.contains_key(&p)
            && !f.grad_neurons.contains_key(&p)
            && uses.get(&d) == Some(&1)
            && !outputs.contains(&d)
            && node.outputs.first().map(|o| o.1) == dtype(d)
            && let Some(read) = neuron_output_read(g, live, f, p, y)
            && read.node < p
            && dtype(read) == dtype(d)
        {
            f.grad_neurons.insert(p, (u, read));
            f.sources.insert(i, d);
            f.absorbed[i] = true;
        }
    }
}

/// Where `p`, a producer folding the gradient of a neuron whose output is `y`, reads that
/// output: a concat's gradient from the concat's output (`concat_holding`), max pooling's from
/// the pool's (`pool_holding`), any other from y itself; `None` where the holder is missing.
fn neuron_output_read(g: &Graph, live: &[bool], f: &Fusion, p: usize, y: Value) -> Option<Value> {
    let op = &g.nodes[p].op;
    if let Some(ShapeOp::ConcatGrad { .. }) = op.downcast::<ShapeOp>() {
        concat_holding(g, live, f, p, y)
    } else if let Some(PoolOp::PoolGrad(_)) = op.downcast::<PoolOp>() {
        pool_holding(g, live, f, p, y)
    } else {
        Some(y)
    }
}

/// The output of the live max pooling whose input was `y`, where `grad` is its gradient
/// (`PoolGrad [dy, x, argmax]` with x = y): at every element the gradient reaches (some window's
/// argmax), y's value is that window's output.
fn pool_holding(g: &Graph, live: &[bool], f: &Fusion, grad: usize, y: Value) -> Option<Value> {
    let node = &g.nodes[grad];
    let (&dy, &x, &arg) = (
        node.inputs.first()?,
        node.inputs.get(1)?,
        node.inputs.get(2)?,
    );
    let pool = &g.nodes[arg.node];
    let out = Value {
        node: arg.node,
        port: 0,
    };
    let is_max = |p: Option<&PoolOp>| matches!(p, Some(PoolOp::Pool(q)) if q.kind == PoolKind::Max);
    let ok = x == y
        && arg.port == 1
        && live[arg.node]
        && !f.absorbed[arg.node]
        && is_max(pool.op.downcast::<PoolOp>())
        && pool.inputs.first() == Some(&y)
        && pool.outputs.first() == g.nodes[dy.node].outputs.get(dy.port);
    ok.then_some(out)
}

/// The output of a live concat holding `y` in the window that `grad`, a `ConcatGrad` of `y`,
/// copies out of its dy: every element of that window is a copy of y's, so the derivative read
/// there is the one read from y. `None` when `grad` is not such a gradient or no such concat
/// is live (launching, not fused away, before `grad`).
fn concat_holding(g: &Graph, live: &[bool], f: &Fusion, grad: usize, y: Value) -> Option<Value> {
    let node = &g.nodes[grad];
    let Some(&ShapeOp::ConcatGrad { op, offset }) = node.op.downcast::<ShapeOp>() else {
        return None;
    };
    let (&dy, &x) = (node.inputs.first()?, node.inputs.get(1)?);
    if x != y {
        return None;
    }
    let dy_out = g.nodes[dy.node].outputs.get(dy.port)?;
    let axis = resolve_axis(Concat::OP, op.axis, dy_out.0.len()).ok()?;
    let holds = |c: usize| {
        let n = &g.nodes[c];
        let mut at = 0usize;
        for u in &n.inputs {
            if *u == y && at == offset {
                return true;
            }
            let extent = g.nodes[u.node]
                .outputs
                .get(u.port)
                .and_then(|o| o.0.get(axis));
            at = match extent.and_then(|&e| at.checked_add(e)) {
                Some(a) => a,
                None => return false,
            };
        }
        false
    };
    (0..grad)
        .find(|&c| {
            live[c]
                && !f.absorbed[c]
                && g.nodes[c].op.downcast::<ShapeOp>() == Some(&ShapeOp::Concat(op))
                && g.nodes[c].outputs.first() == Some(dy_out)
                && holds(c)
        })
        .map(|c| Value { node: c, port: 0 })
}
