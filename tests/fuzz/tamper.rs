//! What a caller can pass besides builder calls: a custom `Primitive` that misbehaves in every
//! way its trait allows, a graph whose public `nodes` were edited by hand, and a `Training` whose
//! public fields were.

use wgtrain::Training;
use wgtrain::graph::{Graph, Op, Out, Primitive, Value};
use wgtrain::launch::Prepared;
use wgtrain::reference::Array;
use wgtrain::{DType, Tensor, UnaryOp};

use super::Prog;

/// A custom op: what each trait method answers is drawn per instance.
#[derive(Debug, Clone, Copy)]
pub struct Weird {
    /// 0 copy of input 0, 1 no outputs, 2 rank 0, 3 a zero dim, 4 huge, 5 two outputs, 6 input
    /// count dependent.
    infer: u8,
    view: bool,
    neuron: bool,
    fusable: usize,
    /// 0 right, 1 too few arrays, 2 wrong shape, 3 inconsistent data.
    reference: u8,
    /// 0 one gradient per input (x's shape), 1 none, 2 too many, 3 wrong shape, 4 an Err.
    vjp: u8,
    inference_source: bool,
}

impl Primitive for Weird {
    fn infer(&self, ins: &[&[usize]]) -> wgtrain::Result<Vec<Out>> {
        let first = ins.first().map_or(vec![1], |s| s.to_vec());
        Ok(match self.infer {
            0 => vec![(first, DType::F32)],
            1 => vec![],
            2 => vec![(vec![], DType::F32)],
            3 => vec![(vec![2, 0], DType::F32)],
            4 => vec![(vec![1 << 40, 1 << 30], DType::F32)],
            5 => vec![(first.clone(), DType::F32), (first, DType::U32)],
            _ => vec![(vec![ins.len().max(1)], DType::F32)],
        })
    }

    fn lower(
        &self,
        _: &[&Tensor],
        _: &[&Tensor],
        _: &[UnaryOp],
        _: u64,
    ) -> wgtrain::Result<Prepared> {
        Ok(Prepared::default())
    }

    fn reference(&self, ins: &[&Array], outs: &[Out], _: u64) -> wgtrain::Result<Vec<Array>> {
        let right: Vec<Array> = outs.iter().map(|(s, _)| Array::zeros(s)).collect();
        Ok(match self.reference {
            0 => right,
            1 => vec![],
            2 => vec![Array::zeros(&[3, 7])],
            _ => {
                let shape = ins.first().map_or(vec![1], |a| a.shape.clone());
                vec![Array {
                    shape,
                    data: vec![],
                }]
            }
        })
    }

    fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> wgtrain::Result<Vec<Option<Value>>> {
        let ins = g
            .nodes
            .get(node)
            .map(|n| n.inputs.clone())
            .unwrap_or_default();
        Ok(match self.vjp {
            0 => ins.iter().map(|_| Some(dy)).collect(),
            1 => vec![],
            2 => vec![Some(dy); ins.len() + 2],
            3 => {
                let name = g.fresh(format!("weird-grad-{node}"));
                let v = g.input(&name, &[5, 1, 3])?;
                vec![Some(v); ins.len()]
            }
            _ => return Err(wgtrain::Error::Invalid("weird vjp".into())),
        })
    }

    fn fusable_neurons(&self, _: usize) -> usize {
        self.fusable
    }

    fn as_neuron(&self) -> Option<UnaryOp> {
        self.neuron.then_some(UnaryOp::Relu)
    }

    fn is_view(&self) -> bool {
        self.view
    }

    fn for_inference(&self) -> Option<Op> {
        self.inference_source.then_some(Op::Input)
    }
}

impl Prog {
    /// A `Weird` op over a few values.
    pub fn weird(&mut self) {
        let w = Weird {
            infer: self.rng.below(7) as u8,
            view: self.rng.percent(30),
            neuron: self.rng.percent(30),
            fusable: self.rng.pick(&[0, 1, usize::MAX]),
            reference: self.rng.below(4) as u8,
            vjp: self.rng.below(5) as u8,
            inference_source: self.rng.percent(10),
        };
        let name = self.name();
        let ins: Vec<Value> = (0..self.rng.below(3)).map(|_| self.value()).collect();
        let r = self.g.add(&name, w, &ins);
        self.record(format!("{name} = add({w:?}, {ins:?})"), r);
    }

    /// Edits the graph's public nodes by hand, the way no builder would.
    pub fn tamper(&mut self) {
        let n = self.g.nodes.len();
        if n == 0 {
            return;
        }
        let i = self.rng.below(n);
        let what = self.rng.below(8);
        let first = self.g.nodes[0].name.clone();
        let node = &mut self.g.nodes[i];
        match what {
            0 => node.inputs.push(Value {
                node: n + 3,
                port: 0,
            }),
            1 => node.inputs.push(Value { node: i, port: 0 }),
            2 => node.outputs.clear(),
            3 => node.outputs.push((vec![2, 2], DType::F32)),
            4 => {
                if let Some(o) = node.outputs.first_mut() {
                    o.0 = vec![usize::MAX, 2];
                }
            }
            5 => node.op = Op::Input,
            6 => node.name = first,
            _ => {
                node.inputs.clear();
            }
        }
        self.say(format!("tamper: node {i}, edit {what}"));
    }
}

/// A `Training` with its public fields edited.
pub fn tamper_training(p: &mut Prog, t: &Training) -> Training {
    let mut t = t.clone();
    match p.rng.below(5) {
        0 => {
            t.loss = Value {
                node: usize::MAX,
                port: 0,
            }
        }
        1 => t.params.push(p.value()),
        2 => t.grads.reverse(),
        3 => {
            let v = p.value();
            if let Some(g) = t.grads.first_mut() {
                *g = v;
            }
        }
        _ => t.params = t.params.iter().chain(&t.params).copied().collect(),
    }
    p.say(format!("tampered training: {t:?}"));
    t
}
