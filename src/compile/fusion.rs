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
//! the max-pool or dropout backward producing its dy (`fold_grad_neurons`). Inputs an op takes
//! only for their shape (`Primitive::reads_input`) are not reads, here or in the later passes.

use std::collections::HashMap;

use crate::graph::{Graph, Node, Value};
use crate::neuron::UnaryOp;
use crate::ops::elementwise::ElementwiseOp;

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
    /// Absorbed neuron gradient → the producer's output it aliases (its dy, input 1).
    pub grad_sources: HashMap<usize, Value>,
}

impl Fusion {
    /// The value whose memory an aliasing node `i` (a view or an absorbed node) uses.
    pub fn alias_source(&self, i: usize, node: &Node) -> Value {
        self.grad_sources.get(&i).copied().unwrap_or(node.inputs[0])
    }

    /// The values launching node `i` reads: its inputs but those taken only for their shape,
    /// and the y of a neuron gradient folded into it.
    pub fn reads<'a>(&self, g: &'a Graph, i: usize) -> impl Iterator<Item = Value> + 'a {
        let extra = self.grad_neurons.get(&i).map(|&(_, y)| y);
        read_inputs(&g.nodes[i]).chain(extra)
    }
}

/// The inputs `node`'s launches read (not those taken only for their shape).
pub fn read_inputs(node: &Node) -> impl Iterator<Item = Value> + '_ {
    (node.inputs.iter().enumerate())
        .filter(|(slot, _)| node.op.reads_input(*slot))
        .map(|(_, u)| *u)
}

/// Pass 2, fuse: the neuron chains among `live` nodes when `enabled` (`Options::fuse`), none otherwise.
pub fn pass(g: &Graph, live: &[bool], outputs: &[Value], enabled: bool) -> Fusion {
    if enabled {
        fuse(g, live, outputs)
    } else {
        Fusion {
            absorbed: vec![false; g.nodes.len()],
            ..Fusion::default()
        }
    }
}

/// Finds the neuron chains among `live` nodes; values in `outputs` are never fused away.
pub fn fuse(g: &Graph, live: &[bool], outputs: &[Value]) -> Fusion {
    let n = g.nodes.len();
    let mut uses: HashMap<Value, usize> = HashMap::new();
    for (i, node) in g.nodes.iter().enumerate() {
        if live[i] {
            for u in read_inputs(node) {
                *uses.entry(u).or_default() += 1;
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
    fold_grad_neurons(g, live, outputs, &uses, &mut f);
    f
}

/// A neuron's gradient from its output, `UnaryGradOut [y, d]`, folds into the producer of d
/// when that producer can apply it (`Primitive::folds_grad_neuron`: max pooling's and
/// dropout's backward) and d is read by nothing else: conv → ReLU → max pool's backward is
/// then one dispatch instead of two, reading y where it writes dx.
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
        // y must be complete before the producer runs, in the kernel's one storage dtype.
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
            && dtype(y) == dtype(d)
            && node.outputs.first().map(|o| o.1) == dtype(d)
        {
            f.grad_neurons.insert(p, (u, y));
            f.grad_sources.insert(i, d);
            f.absorbed[i] = true;
        }
    }
}
