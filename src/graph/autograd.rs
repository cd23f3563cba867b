//! Reverse-mode differentiation: one vjp rule per op (`vjp`), applied from the loss back to the
//! requested values. Gradient nodes are ordinary nodes appended to the same graph, so they are
//! planned and replayed like the forward. Where a value feeds several ops its gradients are summed.

use std::collections::HashMap;

use super::{Graph, Op, Value};
use crate::error::{Error, Result};
use crate::kernels::elementwise::{BinaryOp, GradFrom};
use crate::kernels::reduce::ReduceOp;
use crate::kernels::transpose;

/// What `Graph::training` derived: the loss and, for each parameter, its gradient node.
#[derive(Clone, Debug)]
pub struct Training {
    pub loss: Value,
    pub params: Vec<Value>,
    pub grads: Vec<Value>,
}

impl Graph {
    /// A fresh node name derived from `base`.
    pub(super) fn fresh(&self, base: String) -> String {
        let mut name = base.clone();
        let mut k = 1;
        while self.find(&name).is_some() {
            k += 1;
            name = format!("{base}#{k}");
        }
        name
    }

    fn grad_node(&mut self, base: String, op: Op, inputs: &[Value]) -> Result<Value> {
        let name = self.fresh(base);
        self.add(&name, op, inputs)
    }

    /// Gradients of `sum(loss)` with respect to each of `wrt`, as new nodes of this graph.
    /// A `wrt` value the loss does not depend on is an `Err` (its gradient would be a silent zero).
    pub fn gradients(&mut self, loss: Value, wrt: &[Value]) -> Result<Vec<Value>> {
        let n = self.nodes.len();
        // Which nodes depend on a `wrt` value (only those need gradients).
        let mut needs = vec![false; n];
        for v in wrt {
            needs[v.node] = true;
        }
        for i in 0..n {
            if self.nodes[i].inputs.iter().any(|v| needs[v.node]) {
                needs[i] = true;
            }
        }
        let seed = self.grad_node(
            format!("grad/{}", self.nodes[loss.node].name),
            Op::OnesLike,
            &[loss],
        )?;
        let mut pending: HashMap<Value, Vec<Value>> = HashMap::new();
        pending.insert(loss, vec![seed]);
        let mut done: HashMap<Value, Value> = HashMap::new();
        for i in (0..=loss.node).rev() {
            let v = Value { node: i, port: 0 };
            let Some(parts) = pending.remove(&v) else {
                continue;
            };
            let dy = self.accumulate(v, parts)?;
            done.insert(v, dy);
            let node = self.nodes[i].clone();
            if node.inputs.iter().all(|u| !needs[u.node]) {
                continue;
            }
            let grads = self.vjp(i, dy)?;
            for (k, (u, g)) in node.inputs.iter().zip(grads).enumerate() {
                if !needs[u.node] || self.nodes[u.node].op == Op::State {
                    continue;
                }
                let g = g.ok_or_else(|| {
                    Error::Invalid(format!(
                        "node {:?} ({:?}) has no gradient for its input {k}",
                        node.name, node.op
                    ))
                })?;
                pending.entry(*u).or_default().push(g);
            }
        }
        wrt.iter()
            .map(|w| {
                done.get(w).copied().ok_or_else(|| {
                    Error::Invalid(format!(
                        "the loss does not depend on {:?}: its gradient would be zero",
                        self.nodes[w.node].name
                    ))
                })
            })
            .collect()
    }

    /// Sums the gradient contributions of a value fed to several ops.
    fn accumulate(&mut self, v: Value, mut parts: Vec<Value>) -> Result<Value> {
        let base = format!("grad/{}", self.nodes[v.node].name);
        let mut acc = parts.remove(0);
        for p in parts {
            acc = self.grad_node(format!("{base}/acc"), Op::Binary(BinaryOp::Add), &[acc, p])?;
        }
        Ok(acc)
    }

    /// The whole gradient graph: gradients of `sum(loss)` for every parameter.
    pub fn training(&mut self, loss: Value) -> Result<Training> {
        let params = self.params();
        let grads = self.gradients(loss, &params)?;
        Ok(Training {
            loss,
            params,
            grads,
        })
    }

    /// Folds a gradient computed per batch element back to a shared operand's shape by summing
    /// over the leading (batch) axes.
    fn fold_to(&mut self, base: &str, g: Value, want: &[usize]) -> Result<Value> {
        let have = self.shape(g).to_vec();
        if have == want {
            return Ok(g);
        }
        let mut g = g;
        for axis in 0..have.len() - want.len() {
            g = self.grad_node(
                format!("{base}/fold"),
                Op::Reduce(ReduceOp::Sum, axis),
                &[g],
            )?;
        }
        self.grad_node(format!("{base}/view"), Op::View(want.to_vec()), &[g])
    }

    /// The gradient node(s) of one forward node, as MPS's `gradientFilterWithSource`: given `dy`
    /// (the gradient arriving at `forward`'s output), the gradient of each of its inputs.
    pub fn gradient_of(&mut self, forward: Value, dy: Value) -> Result<Vec<Option<Value>>> {
        if self.shape(forward) != self.shape(dy) {
            return Err(Error::Shape {
                op: format!("gradient of {:?}", self.nodes[forward.node].name),
                msg: format!(
                    "dy {:?} vs output {:?}",
                    self.shape(dy),
                    self.shape(forward)
                ),
            });
        }
        self.vjp(forward.node, dy)
    }

    /// The vjp rule of node `i`: given dy (the gradient of its output), the gradient of each input
    /// (`None` where the op has none).
    fn vjp(&mut self, i: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        let node = self.nodes[i].clone();
        let base = format!("grad/{}", node.name);
        let x = &node.inputs;
        let d = |g: &mut Graph, k: usize, op: Op, ins: &[Value]| -> Result<Option<Value>> {
            g.grad_node(format!("{base}/d{k}"), op, ins).map(Some)
        };
        Ok(match &node.op {
            Op::Input | Op::Param | Op::State | Op::OnesLike => vec![],
            Op::Layer(l) => return l.vjp(self, i, dy),
            Op::Stateful(s) => return s.vjp(self, i, dy),
            Op::Head(h) => return h.vjp(self, i, dy),
            // Read as little of the forward as the derivative needs: from the output y where it
            // is a function of y, so the input stays free to fuse into its producer (conv + bias
            // + ReLU in one dispatch in training too; y itself is the fused dispatch's output).
            Op::Unary(u) => vec![match u.grad_from() {
                GradFrom::Nothing(scale) => d(self, 0, Op::Unary(scale), &[dy])?,
                GradFrom::Output => {
                    let y = Value { node: i, port: 0 };
                    d(self, 0, Op::UnaryGradOut(*u), &[y, dy])?
                }
                GradFrom::Input => d(self, 0, Op::UnaryGrad(*u), &[x[0], dy])?,
            }],
            Op::Binary(b) => vec![
                d(self, 0, Op::BinaryGrad(*b, 0), &[x[0], x[1], dy])?,
                d(self, 1, Op::BinaryGrad(*b, 1), &[x[0], x[1], dy])?,
            ],
            Op::MatMul { ta, tb } => {
                let (ta, tb) = (*ta, *tb);
                // c = op(a)·op(b): da = op(b)·dyᵀ if ta else dy·op(b)ᵀ; db = dyᵀ·op(a) if tb else op(a)ᵀ·dy.
                let da = if ta {
                    d(self, 0, Op::MatMul { ta: tb, tb: true }, &[x[1], dy])?
                } else {
                    d(self, 0, Op::MatMul { ta: false, tb: !tb }, &[dy, x[1]])?
                };
                let db = if tb {
                    d(self, 1, Op::MatMul { ta: true, tb: ta }, &[dy, x[0]])?
                } else {
                    d(self, 1, Op::MatMul { ta: !ta, tb: false }, &[x[0], dy])?
                };
                let (sa, sb) = (self.shape(x[0]).to_vec(), self.shape(x[1]).to_vec());
                vec![
                    Some(self.fold_to(&base, da.unwrap(), &sa)?),
                    Some(self.fold_to(&base, db.unwrap(), &sb)?),
                ]
            }
            Op::Reduce(r, axis) => {
                let state = Value { node: i, port: 1 };
                let ins = if *r == ReduceOp::Max {
                    vec![dy, x[0], state]
                } else {
                    vec![dy, x[0]]
                };
                vec![d(self, 0, Op::ReduceGrad(*r, *axis), &ins)?]
            }
            Op::Permute(p) => vec![d(self, 0, Op::Permute(transpose::inverse(p)), &[dy])?],
            Op::Reshape(_) | Op::View(_) => {
                let s = self.shape(x[0]).to_vec();
                let op = if matches!(node.op, Op::Reshape(_)) {
                    Op::Reshape(s[1..].to_vec())
                } else {
                    Op::View(s)
                };
                vec![d(self, 0, op, &[dy])?]
            }
            Op::UnaryGrad(_) | Op::UnaryGradOut(_) | Op::BinaryGrad(..) | Op::ReduceGrad(..) => {
                return Err(Error::Invalid(format!(
                    "node {:?}: {:?} has no gradient (second derivatives are not supported)",
                    node.name, node.op
                )));
            }
        })
    }
}
