//! Mixed precision (PyTorch's autocast, MPS's per-op precision): a graph — forward and backward
//! — rewritten so that every op with f16 kernels (`Primitive::supports_f16`) stores its values
//! as f16, with casts at the seams: an f16 compute copy of each f32 weight, f32 copies of the
//! values that must stay f32 (the parameters' gradients, which go into the f32 gradient arena,
//! unscaled on the way when a loss scale is used), and f16 ↔ f32 around ops without f16
//! kernels. Compiling with `Precision::F16` runs it (`compile/mod.rs`); the compiled graph maps
//! the caller's values onto the rewritten ones, so reads and names are unchanged.

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, Value};
use crate::ops::cast::CastOp;
use crate::ops::elementwise::{BinaryOp, ElementwiseOp};
use crate::ops::shape::{Slice, SliceRange};
use crate::tensor::DType;

/// The name of the loss-scale state (`[scale, clean steps]`, f32) a loss-scaled graph reads: the
/// seed of the backward pass is multiplied by the scale, and each gradient divided by it on its
/// way to f32.
pub const LOSS_SCALE: &str = "loss_scale";

/// A graph rewritten for mixed precision, and where the original values went.
pub(crate) struct Autocast {
    pub graph: Graph,
    /// Per original node and port, the rewritten value (same dtype class, maybe f16).
    map: Vec<Vec<Value>>,
    /// Original values that must stay f32, to their f32 copies.
    kept: HashMap<Value, Value>,
    /// The loss scale's value (a slice of the `LOSS_SCALE` state), when the graph is loss-scaled.
    pub loss_scale: Option<Value>,
}

impl Autocast {
    /// The rewritten value the caller's `v` now is (its f32 copy where it must stay f32).
    pub fn value(&self, v: Value) -> Result<Value> {
        if let Some(k) = self.kept.get(&v) {
            return Ok(*k);
        }
        self.map
            .get(v.node)
            .and_then(|ports| ports.get(v.port))
            .copied()
            .ok_or_else(|| Error::Invalid(format!("{v:?} is not a value of the graph")))
    }
}

/// Rewrites `g` (valid: `compile`'s check ran): ops with f16 kernels on f16 values, except the
/// nodes named in `f32_nodes`.
/// `f32_values` stay f32 (get f32 copies). `scaled_seed`: the backward pass's seed node (a
/// `OnesLike` of the loss) and the gradients to unscale — multiplies the seed by a new
/// `LOSS_SCALE` state and divides those gradients by it as they are cast back to f32.
pub(crate) fn autocast(
    g: &Graph,
    f32_values: &[Value],
    f32_nodes: &[&str],
    scaled_seed: Option<(usize, &[Value])>,
) -> Result<Autocast> {
    let mut out = Graph::new();
    let mut map: Vec<Vec<Value>> = Vec::with_capacity(g.nodes.len());
    let mut casts: HashMap<(Value, DType), Value> = HashMap::new();
    let mut kept = HashMap::new();
    let mut loss_scale = None;
    let unscale: &[Value] = scaled_seed.map_or(&[], |s| s.1);
    let f16_inputs = f16_inputs(g, f32_nodes);
    for (i, n) in g.nodes.iter().enumerate() {
        let p = match &n.op {
            Op::Compute(p) => Some(p.clone()),
            _ => None,
        };
        let f16 = stores_f16(n, f32_nodes);
        let keeps = p.as_ref().is_some_and(|p| p.keeps_precision());
        let mut inputs = Vec::with_capacity(n.inputs.len());
        for (slot, u) in n.inputs.iter().enumerate() {
            let v = map[u.node][u.port];
            let have = out.nodes[v.node].outputs[v.port].1;
            let fixed = p.as_ref().is_some_and(|p| p.fixed_f32_input(slot));
            let want = match have {
                DType::U32 => DType::U32,
                // Taken for its shape alone: nothing to cast.
                _ if !n.op.reads_input(slot) => have,
                _ if keeps => have,
                _ if f16 && !fixed => DType::F16,
                _ => DType::F32,
            };
            inputs.push(if want == have {
                v
            } else {
                cast(&mut out, &mut casts, v, want, None)?
            });
        }
        let outputs: Vec<_> = n
            .outputs
            .iter()
            .enumerate()
            .map(|(port, (s, dt))| {
                let fixed = p.as_ref().is_some_and(|p| p.fixed_f32_output(port));
                let fed_f16 = f16_inputs.contains(&Value { node: i, port });
                let dt = if *dt == DType::F32 && ((f16 && !fixed) || fed_f16) {
                    DType::F16
                } else {
                    *dt
                };
                (s.clone(), dt)
            })
            .collect();
        // A cast to the dtype its input already has (a cast's gradient, once both sides are
        // f16) is the input itself.
        if let Some(c) = n.op.downcast::<CastOp>()
            && !c.scaled
            && out.nodes[inputs[0].node].outputs[inputs[0].port].1 == c.to
        {
            map.push(vec![inputs[0]]);
            continue;
        }
        let is_seed = scaled_seed.is_some_and(|(s, _)| s == i);
        let v = if is_seed {
            // The seed, ones × scale: [scale, clean steps] is the scaler's state (`health.wgsl`
            // updates both); a loss of shape [1] has the scale itself as its seed.
            let state = out.state(LOSS_SCALE, &[2])?;
            let window = Slice {
                ranges: vec![SliceRange {
                    start: 0,
                    end: 1,
                    step: 1,
                }],
            };
            let one = n.outputs[0].0 == [1];
            let name = if one {
                n.name.clone()
            } else {
                out.fresh("loss_scale/value".to_string())
            };
            let scale = out.slice(&name, state, window)?;
            loss_scale = Some(scale);
            if one {
                scale
            } else {
                let ones = out.push_node(Node {
                    name: out.fresh(format!("{}/ones", n.name)),
                    op: n.op.clone(),
                    inputs,
                    outputs,
                });
                // The seed is f32 (`OnesLike` keeps its output f32).
                out.add(
                    &n.name,
                    ElementwiseOp::Binary(BinaryOp::Mul),
                    &[ones, scale],
                )?
            }
        } else {
            out.push_node(Node {
                name: n.name.clone(),
                op: n.op.clone(),
                inputs,
                outputs,
            })
        };
        let ports: Vec<Value> = (0..n.outputs.len())
            .map(|port| Value { node: v.node, port })
            .collect();
        for (port, &nv) in ports.iter().enumerate() {
            let orig = Value { node: i, port };
            let dt = out.nodes[nv.node].outputs[nv.port].1;
            if dt == DType::F16 && f32_values.contains(&orig) {
                let scale = loss_scale.filter(|_| unscale.contains(&orig));
                let f = cast(&mut out, &mut casts, nv, DType::F32, scale)?;
                kept.insert(orig, f);
            } else if dt == DType::F32 && unscale.contains(&orig) {
                // An f32 gradient (from an op without f16 kernels) is unscaled all the same.
                if let Some(s) = loss_scale {
                    let name = out.fresh(format!("{}/unscaled", n.name));
                    let f = out.add(&name, ElementwiseOp::Binary(BinaryOp::Div), &[nv, s])?;
                    kept.insert(orig, f);
                }
            }
        }
        map.push(ports);
    }
    Ok(Autocast {
        graph: out,
        map,
        kept,
        loss_scale,
    })
}

/// Whether node `n` stores its outputs as f16 (an op with f16 kernels, not a cast, not named
/// in `f32_nodes`); its inputs then want f16 too, except the slots it keeps f32.
fn stores_f16(n: &Node, f32_nodes: &[&str]) -> bool {
    n.op.primitive()
        .is_some_and(|p| p.supports_f16() && !p.keeps_precision())
        && !f32_nodes.contains(&n.name.as_str())
}

/// The f32 inputs that every reader takes as f16: fed as f16 (`Compiled::set` converts on the
/// host), so no cast dispatch reads them, and their upload is half the bytes.
fn f16_inputs(g: &Graph, f32_nodes: &[&str]) -> HashSet<Value> {
    let mut all_f16: HashMap<Value, bool> = HashMap::new();
    for n in &g.nodes {
        let f16 = stores_f16(n, f32_nodes);
        for (slot, u) in n.inputs.iter().enumerate() {
            let src = &g.nodes[u.node];
            if src.op != Op::Input || src.outputs[u.port].1 != DType::F32 {
                continue;
            }
            if !n.op.reads_input(slot) {
                continue;
            }
            let wants = f16 && !n.op.primitive().is_some_and(|p| p.fixed_f32_input(slot));
            *all_f16.entry(*u).or_insert(true) &= wants;
        }
    }
    all_f16
        .into_iter()
        .filter(|&(_, f)| f)
        .map(|(v, _)| v)
        .collect()
}

/// The cast of `v` to `to` (one per value and dtype, shared by its readers), divided by `scale`.
fn cast(
    out: &mut Graph,
    casts: &mut HashMap<(Value, DType), Value>,
    v: Value,
    to: DType,
    scale: Option<Value>,
) -> Result<Value> {
    if scale.is_none()
        && let Some(&c) = casts.get(&(v, to))
    {
        return Ok(c);
    }
    let n = &out.nodes[v.node];
    let port = if n.outputs.len() > 1 {
        format!(":{}", v.port)
    } else {
        String::new()
    };
    let suffix = if scale.is_some() { "/unscaled" } else { "" };
    let dt = if to == DType::F16 { "f16" } else { "f32" };
    let name = out.fresh(format!("{}{port}/{dt}{suffix}", n.name));
    let op = CastOp {
        to,
        scaled: scale.is_some(),
    };
    let ins: Vec<Value> = std::iter::once(v).chain(scale).collect();
    let c = out.add(&name, op, &ins)?;
    if scale.is_none() {
        casts.insert((v, to), c);
    }
    Ok(c)
}
