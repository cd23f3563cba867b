//! Fusion: elementwise chains collapse into one dispatch. A unary op whose input is produced by an
//! elementwise op (unary or broadcasting binary — e.g. the bias add after a conv or FC) and read by
//! nothing else is folded into that producer's dispatch as a post-op; the folded node's output
//! then aliases the producer's, and the intermediate never touches memory. A norm takes one such
//! neuron too (batch norm + ReLU at inference), and so do convolutions and fully connected layers,
//! in their GEMM epilogue after the bias (conv + bias + neuron in one dispatch).
//!
//! In a training graph the gradient ops read most intermediates (a neuron's gradient needs its
//! input), so chains fuse mainly in inference graphs and where no gradient needs the value.

use std::collections::HashMap;

use super::{Graph, Layer, Op, Stateful, Value};
use crate::kernels::elementwise::{MAX_CHAIN, UnaryOp};

/// The result of the fusion pass over the live nodes.
#[derive(Clone, Debug, Default)]
pub struct Fusion {
    /// Nodes folded into a producer: they launch nothing and alias the producer's output.
    pub absorbed: Vec<bool>,
    /// Producer node → the unary ops it applies after its own, in order.
    pub chains: HashMap<usize, Vec<UnaryOp>>,
}

/// Finds the chains among `live` nodes; values in `outputs` are never fused away.
pub fn fuse(g: &Graph, live: &[bool], outputs: &[Value]) -> Fusion {
    let n = g.nodes.len();
    let mut uses: HashMap<Value, usize> = HashMap::new();
    for (i, node) in g.nodes.iter().enumerate() {
        if live[i] {
            for u in &node.inputs {
                *uses.entry(*u).or_default() += 1;
            }
        }
    }
    let mut f = Fusion {
        absorbed: vec![false; n],
        chains: HashMap::new(),
    };
    let mut head: Vec<usize> = (0..n).collect();
    for (i, node) in g.nodes.iter().enumerate() {
        let Op::Unary(u) = node.op else { continue };
        let v = node.inputs[0];
        let h = head[v.node];
        let have = f.chains.get(&h).map_or(0, |c| c.len());
        // Elementwise producers take a chain; norms (batch norm on running statistics at
        // inference, instance/group/layer norm) take one neuron as their post-op.
        let (producer_ok, room) = match &g.nodes[h].op {
            Op::Unary(_) | Op::Binary(_) => (true, have < MAX_CHAIN),
            Op::Stateful(
                Stateful::BatchNorm {
                    training: false, ..
                }
                | Stateful::Norm(_),
            ) => (v.port == 0, have < 1),
            // Convolution / fully connected + bias + neuron: the neuron runs in the GEMM epilogue.
            Op::Layer(Layer::Conv(_) | Layer::Dense(_)) => (true, have < 1),
            _ => (false, false),
        };
        if live[i] && producer_ok && uses.get(&v) == Some(&1) && !outputs.contains(&v) && room {
            f.chains.entry(h).or_default().push(u);
            f.absorbed[i] = true;
            head[i] = h;
        }
    }
    f
}
