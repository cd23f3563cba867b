//! Reverse-mode differentiation: one vjp rule per op (`vjp`), applied from the loss back to the
//! requested values. Gradient nodes are ordinary nodes appended to the same graph, so they are
//! planned and replayed like the forward. Where a value feeds several ops its gradients are summed.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::graph::{Graph, Op, Value};
use crate::ops::elementwise::{BinaryOp, ElementwiseOp};
use crate::tensor::DType;

/// What `Graph::training` derived: the loss and, for each parameter, its gradient node.
#[derive(Clone, Debug)]
pub struct Training {
    /// The loss value.
    pub loss: Value,
    /// Every parameter the loss depends on, in graph order.
    pub params: Vec<Value>,
    /// Each parameter's gradient node, in the order of `params`.
    pub grads: Vec<Value>,
}

impl Training {
    /// Checks it against `g` (its fields are public): the loss is a value of `g`, and each
    /// parameter a distinct `Param` node with a gradient of its shape. Compiling checks it.
    pub fn check(&self, g: &Graph) -> Result<()> {
        g.output(self.loss)?;
        if self.params.len() != self.grads.len() {
            return Err(Error::Invalid(format!(
                "training: {} parameters but {} gradients",
                self.params.len(),
                self.grads.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for (p, gr) in self.params.iter().zip(&self.grads) {
            let node = g.node(*p)?;
            if node.op != Op::Param || p.port != 0 || !seen.insert(p.node) {
                return Err(Error::Invalid(format!(
                    "training: {p:?} ({:?}) is not a distinct parameter",
                    node.name
                )));
            }
            if g.shape(*gr)? != g.shape(*p)? {
                return Err(Error::Shape {
                    op: format!("training: gradient of {:?}", node.name),
                    msg: format!("{:?} vs the parameter's {:?}", g.shape(*gr)?, g.shape(*p)?),
                });
            }
        }
        Ok(())
    }
}

impl Graph {
    fn grad_node(&mut self, base: String, op: impl Into<Op>, inputs: &[Value]) -> Result<Value> {
        let name = self.fresh(base);
        self.add(&name, op, inputs)
    }

    /// Gradients of `sum(loss)` with respect to each of `wrt`, as new nodes of this graph.
    /// A `wrt` value the loss does not depend on is an `Err` (its gradient would be a silent zero).
    pub fn gradients(&mut self, loss: Value, wrt: &[Value]) -> Result<Vec<Value>> {
        self.backward(loss, None, wrt)
    }

    /// Gradients of `sum(output ⊙ upstream)` with respect to each of `wrt`: the vector-Jacobian
    /// product with an upstream gradient, as `torch.autograd.grad(output, wrt, grad_outputs=
    /// upstream)`. `upstream` is an f32 value of `output`'s shape, held constant (no gradient
    /// flows through it); any other shape is an `Err` naming both.
    pub fn gradients_with(
        &mut self,
        output: Value,
        upstream: Value,
        wrt: &[Value],
    ) -> Result<Vec<Value>> {
        self.backward(output, Some(upstream), wrt)
    }

    /// `gradients` seeded with ones, or with `upstream`.
    fn backward(
        &mut self,
        loss: Value,
        upstream: Option<Value>,
        wrt: &[Value],
    ) -> Result<Vec<Value>> {
        self.validate()?;
        for &v in std::iter::once(&loss).chain(wrt).chain(upstream.as_ref()) {
            self.output(v)?;
        }
        if let Some(u) = upstream {
            let (want, got) = (self.output(loss)?, self.output(u)?);
            if want != got || got.1 != DType::F32 {
                return Err(Error::Shape {
                    op: format!(
                        "gradients of {:?} with upstream {:?}",
                        self.nodes[loss.node].name, self.nodes[u.node].name
                    ),
                    msg: format!(
                        "upstream {:?} {:?} must match the output's {:?} {:?}",
                        got.1, got.0, want.1, want.0
                    ),
                });
            }
        }
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
        let seed = match upstream {
            Some(u) => u,
            None => self.grad_node(
                format!("grad/{}", self.nodes[loss.node].name),
                ElementwiseOp::OnesLike,
                &[loss],
            )?,
        };
        let mut pending: HashMap<Value, Vec<Value>> = HashMap::new();
        pending.insert(loss, vec![seed]);
        let mut done: HashMap<Value, Value> = HashMap::new();
        for i in (0..=loss.node).rev() {
            // The gradient reaching each output port (most ops have one differentiable output).
            let ports = self.nodes[i].outputs.len();
            let mut dys = vec![None; ports];
            for (port, dy) in dys.iter_mut().enumerate() {
                let v = Value { node: i, port };
                if let Some(parts) = pending.remove(&v) {
                    let acc = self.accumulate(v, parts)?;
                    done.insert(v, acc);
                    *dy = Some(acc);
                }
            }
            if dys.iter().all(Option::is_none) {
                continue;
            }
            let node = self.nodes[i].clone();
            if node.inputs.iter().all(|u| !needs[u.node]) {
                continue;
            }
            let grads = self.vjp(i, &dys)?;
            // A rule giving too few gradients would drop some; one of the wrong shape would be
            // broadcast into the sum: both are errors, never silent.
            if grads.len() != node.inputs.len() {
                return Err(Error::Invalid(format!(
                    "node {:?} ({:?}): its vjp gave {} gradients for {} inputs",
                    node.name,
                    node.op,
                    grads.len(),
                    node.inputs.len()
                )));
            }
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
                if self.shape(g)? != self.shape(*u)? {
                    return Err(Error::Shape {
                        op: format!("gradient of node {:?}", node.name),
                        msg: format!(
                            "input {k}: gradient {:?} vs the input's {:?}",
                            self.shape(g)?,
                            self.shape(*u)?
                        ),
                    });
                }
                pending.entry(*u).or_default().push(g);
            }
        }
        let grads = wrt
            .iter()
            .map(|w| {
                done.get(w).copied().ok_or_else(|| {
                    Error::Invalid(format!(
                        "the loss does not depend on {:?}: its gradient would be zero",
                        self.nodes[w.node].name
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.own_memory(grads)
    }

    /// Gives each gradient memory of its own, copying where needed: the seed (a constant, never
    /// written) and a view (a sum's gradient passing through, `ElementwiseOp::Identity`) of a
    /// source or of what another gradient already is would otherwise share those bytes — and a
    /// training graph places each gradient in its own slot of the gradient arena. A source
    /// that is itself the gradient (an upstream gradient of `wrt`) comes back as it is.
    fn own_memory(&mut self, grads: Vec<Value>) -> Result<Vec<Value>> {
        let mut roots = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(grads.len());
        for gr in grads {
            let mut root = gr;
            while self.nodes[root.node].op.is_view() && !self.nodes[root.node].inputs.is_empty() {
                root = self.nodes[root.node].inputs[0];
            }
            let op = &self.nodes[root.node].op;
            let constant = op.primitive().is_some_and(|p| p.constant().is_some());
            let shared = op.is_source() || !roots.insert(root);
            out.push(if constant || (gr != root && shared) {
                let name = format!("{}/copy", self.nodes[gr.node].name);
                self.grad_node(name, ElementwiseOp::Copy, &[gr])?
            } else {
                gr
            });
        }
        Ok(out)
    }

    /// Sums the gradient contributions of a value fed to several ops.
    fn accumulate(&mut self, v: Value, mut parts: Vec<Value>) -> Result<Value> {
        let base = format!("grad/{}", self.nodes[v.node].name);
        let mut acc = parts.remove(0);
        for p in parts {
            acc = self.grad_node(
                format!("{base}/acc"),
                ElementwiseOp::Binary(BinaryOp::Add),
                &[acc, p],
            )?;
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

    /// The gradient node(s) of one forward node, as MPS's `gradientFilterWithSource`: given `dy`
    /// (the gradient arriving at `forward`'s output), the gradient of each of its inputs.
    pub fn gradient_of(&mut self, forward: Value, dy: Value) -> Result<Vec<Option<Value>>> {
        self.validate()?;
        let (want, got) = (self.shape(forward)?, self.shape(dy)?);
        if want != got {
            return Err(Error::Shape {
                op: format!("gradient of {:?}", self.nodes[forward.node].name),
                msg: format!("dy {got:?} vs output {want:?}"),
            });
        }
        let mut dys = vec![None; self.nodes[forward.node].outputs.len()];
        dys[forward.port] = Some(dy);
        self.vjp(forward.node, &dys)
    }

    /// The vjp rule of node `i`: given the gradient at each of its outputs, the gradient of each
    /// input (`None` where the op has none).
    fn vjp(&mut self, i: usize, dys: &[Option<Value>]) -> Result<Vec<Option<Value>>> {
        match self.nodes[i].op.clone() {
            Op::Compute(p) => p.vjp_ports(self, i, dys),
            _ => Ok(vec![]),
        }
    }
}
