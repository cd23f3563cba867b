//! The graph: value nodes connected by ops, built with shape inference — what MPSNNGraph is.
//! The op families (`src/ops/`) add their builder methods and implement `Primitive`;
//! `autograd` appends the gradient graph; `compile` plans and replays it.
//!
//! ```no_run
//! use wgtrain::graph::Graph;
//! use wgtrain::ops::elementwise::UnaryOp;
//! # fn main() -> wgtrain::Result<()> {
//! let mut g = Graph::new();
//! let x = g.input("x", &[4, 3])?;                 // (N, 3); N may change per step
//! let w = g.param("w", &[3, 2])?;
//! let y = g.matmul("fc", x, w)?;                 // (N, 2)
//! let h = g.unary("act", UnaryOp::Tanh, y)?;
//! let loss = g.sum("loss", h, 1)?;               // per-sample loss (N, 1)
//! let grads = g.gradients(loss, &[w])?;          // dloss/dw, a node of the same graph
//! # let _ = grads; Ok(()) }
//! ```

mod names;
mod op;
mod validate;

use crate::error::{Error, Result};
use crate::tensor::DType;
pub(crate) use op::cannot_fold;
pub use op::{Op, Out, OutputCheck, Primitive};

/// One output of one node: what ops consume and produce. A value is an index: it names an
/// output of the graph that made it and of that graph's twins (`clone`, `for_inference`,
/// `with_batch`), which keep every node at its position. Every function taking a value checks
/// that it names an existing output of its graph (an `Err` otherwise); a value of an unrelated
/// graph that happens to be in range cannot be told apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value {
    /// Index of the producing node in [`Graph::nodes`].
    pub node: usize,
    /// 0 = the node's result; 1 = its state (argmax, mask, statistics) where it has one.
    pub port: usize,
}

#[derive(Clone, Debug)]
/// One op applied to earlier values.
pub struct Node {
    /// Unique name, used in errors, checkpoints and parameter layouts.
    pub name: String,
    /// What the node computes (a source or a [`Primitive`]).
    pub op: Op,
    /// The values it reads, in the op's input order.
    pub inputs: Vec<Value>,
    /// Shapes and dtypes of the outputs, as inferred at the batch size the graph was built with.
    pub outputs: Vec<op::Out>,
}

/// A network as a list of nodes in topological order (a node only refers to earlier ones).
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// Every node, in topological order.
    pub nodes: Vec<Node>,
    names: names::Names,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    /// The node producing `v`; an `Err` unless `v` names an output of this graph.
    pub fn node(&self, v: Value) -> Result<&Node> {
        self.output(v)?;
        Ok(&self.nodes[v.node])
    }

    /// Shape and dtype of a value; an `Err` unless `v` names an output of this graph.
    pub fn output(&self, v: Value) -> Result<&Out> {
        self.nodes
            .get(v.node)
            .and_then(|n| n.outputs.get(v.port))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{v:?} is not a value of this graph ({} nodes{})",
                    self.nodes.len(),
                    self.nodes.get(v.node).map_or(String::new(), |n| format!(
                        "; node {:?} has {} outputs",
                        n.name,
                        n.outputs.len()
                    ))
                ))
            })
    }

    /// Shape of a value at the batch size the graph was built with; an `Err` unless `v` names
    /// an output of this graph.
    pub fn shape(&self, v: Value) -> Result<&[usize]> {
        Ok(&self.output(v)?.0)
    }

    /// Finds a node by name.
    pub fn find(&self, name: &str) -> Option<Value> {
        self.names
            .find(&self.nodes, name)
            .map(|node| Value { node, port: 0 })
    }

    /// Appends a node whose name `taken` said is new, and indexes it.
    fn push(&mut self, node: Node) -> Value {
        self.names.push(&node.name, self.nodes.len());
        self.nodes.push(node);
        Value {
            node: self.nodes.len() - 1,
            port: 0,
        }
    }

    /// Appends a node as given (outputs not re-inferred): how `crate::autocast` copies a node
    /// with f16 outputs. `validate` checks the result.
    pub(crate) fn push_node(&mut self, node: Node) -> Value {
        self.names.sync(&self.nodes);
        self.push(node)
    }

    /// Adds a node, inferring its output shapes; a mismatch names the node and its inputs.
    /// Sources are added by `input`, `param` and `state`, not here.
    pub fn add(&mut self, name: &str, op: impl Into<Op>, inputs: &[Value]) -> Result<Value> {
        let op = op.into();
        if op.is_source() {
            return Err(Error::Invalid(format!(
                "node {name:?}: {op:?} is a source; add it with Graph::input, param or state"
            )));
        }
        self.check_new_name(name)?;
        let mut shapes: Vec<&[usize]> = Vec::with_capacity(inputs.len());
        for &v in inputs {
            let s = self.shape(v).map_err(|_| {
                Error::Invalid(format!("node {name:?}: input {v:?} does not exist"))
            })?;
            shapes.push(s);
        }
        let outputs = op.infer(&shapes).map_err(|e| {
            let described: Vec<String> = inputs
                .iter()
                .zip(&shapes)
                .map(|(v, s)| format!("{} {s:?}", self.nodes[v.node].name))
                .collect();
            Error::Shape {
                op: format!("node {name:?}"),
                msg: format!("{e} (inputs: {})", described.join(", ")),
            }
        })?;
        validate::check_outputs(name, &outputs)?;
        Ok(self.push(Node {
            name: name.to_string(),
            op,
            inputs: inputs.to_vec(),
            outputs,
        }))
    }

    /// Errors if a node is already named `name`.
    fn check_new_name(&mut self, name: &str) -> Result<()> {
        self.names.sync(&self.nodes);
        if self.names.taken(&self.nodes, name) {
            return Err(Error::Invalid(format!("node name {name:?} is used twice")));
        }
        Ok(())
    }

    fn source(&mut self, name: &str, op: Op, shape: &[usize]) -> Result<Value> {
        self.source_typed(name, op, shape, DType::F32)
    }

    fn source_typed(&mut self, name: &str, op: Op, shape: &[usize], dtype: DType) -> Result<Value> {
        let out = (shape.to_vec(), dtype);
        validate::check_outputs(name, std::slice::from_ref(&out))?;
        self.check_new_name(name)?;
        Ok(self.push(Node {
            name: name.into(),
            op,
            inputs: vec![],
            outputs: vec![out],
        }))
    }

    /// A value fed every step, e.g. an image batch `(N, C, H, W)`; dim 0 is the batch size.
    pub fn input(&mut self, name: &str, shape: &[usize]) -> Result<Value> {
        self.source(name, Op::Input, shape)
    }

    /// A persistent value an op updates but nobody trains (e.g. batch norm's running statistics).
    pub fn state(&mut self, name: &str, shape: &[usize]) -> Result<Value> {
        self.source(name, Op::State, shape)
    }

    /// A u32 value fed every step, e.g. class-index labels `(N)`.
    pub fn input_u32(&mut self, name: &str, shape: &[usize]) -> Result<Value> {
        self.source_typed(name, Op::Input, shape, DType::U32)
    }

    /// A trainable weight of a fixed shape.
    pub fn param(&mut self, name: &str, shape: &[usize]) -> Result<Value> {
        self.source(name, Op::Param, shape)
    }

    /// A fresh node name derived from `base`.
    pub fn fresh(&self, base: String) -> String {
        let mut name = base.clone();
        let mut k = 1;
        while self.names.taken(&self.nodes, &name) {
            k += 1;
            name = format!("{base}#{k}");
        }
        name
    }

    /// Appends a gradient node of `node` (named `grad/<node name>[/suffix]`): what vjp rules use.
    pub fn add_grad(
        &mut self,
        node: usize,
        suffix: &str,
        op: impl Into<Op>,
        inputs: &[Value],
    ) -> Result<Value> {
        let forward = self.nodes.get(node).ok_or_else(|| {
            Error::Invalid(format!(
                "gradient of node {node}: the graph has {} nodes",
                self.nodes.len()
            ))
        })?;
        let mut base = format!("grad/{}", forward.name);
        if !suffix.is_empty() {
            base = format!("{base}/{suffix}");
        }
        let name = self.fresh(base);
        self.add(&name, op, inputs)
    }

    /// The inputs of forward node `node`, at least `at_least` of them: what a vjp rule reads
    /// first, so a rule called with a node out of range (or of another op) is an `Err`.
    pub fn forward_inputs(&self, node: usize, at_least: usize) -> Result<Vec<Value>> {
        match self.nodes.get(node) {
            Some(n) if n.inputs.len() >= at_least => Ok(n.inputs.clone()),
            Some(n) => Err(Error::Invalid(format!(
                "gradient of node {:?}: {} inputs, its op has at least {at_least}",
                n.name,
                n.inputs.len()
            ))),
            None => Err(Error::Invalid(format!(
                "gradient of node {node}: the graph has {} nodes",
                self.nodes.len()
            ))),
        }
    }

    /// The error of a vjp rule asked to differentiate a gradient op.
    pub fn no_second_derivative(&self, node: usize) -> Error {
        match self.nodes.get(node) {
            Some(n) => Error::Invalid(format!(
                "node {:?}: {:?} has no gradient (second derivatives are not supported)",
                n.name, n.op
            )),
            None => Error::Invalid(format!("node {node} has no gradient (no such node)")),
        }
    }

    /// Adds `op` over `x` with its own parameters `<name>.weight` (`w_shape`) and, when `bias`
    /// gives its length, `<name>.bias` — PyTorch's state-dict names.
    pub fn add_with_params(
        &mut self,
        name: &str,
        op: impl Into<Op>,
        x: Value,
        w_shape: &[usize],
        bias: Option<usize>,
    ) -> Result<Value> {
        let op = op.into();
        self.atomic(|g| {
            let w = g.param(&format!("{name}.weight"), w_shape)?;
            let mut ins = vec![x, w];
            if let Some(c) = bias {
                ins.push(g.param(&format!("{name}.bias"), &[c])?);
            }
            g.add(name, op, &ins)
        })
    }

    /// Runs a builder that adds several nodes: on an `Err` the graph is left as it was, so a
    /// failed call leaves no orphan parameter behind (`training` would refuse it later).
    pub(crate) fn atomic<T>(&mut self, build: impl FnOnce(&mut Graph) -> Result<T>) -> Result<T> {
        let len = self.nodes.len();
        let r = build(self);
        if r.is_err() {
            self.names.forget(&self.nodes, len);
            self.nodes.truncate(len);
        }
        r
    }

    /// The same graph with every `Input` given batch size `batch` and all shapes re-inferred.
    pub fn with_batch(&self, batch: usize) -> Result<Graph> {
        self.validate()?;
        let mut g = Graph::new();
        for n in &self.nodes {
            match n.op {
                Op::Input => {
                    let mut s = n.outputs[0].0.clone();
                    s[0] = batch;
                    g.source_typed(&n.name, Op::Input, &s, n.outputs[0].1)?;
                }
                Op::Param | Op::State => {
                    g.source_typed(&n.name, n.op.clone(), &n.outputs[0].0, n.outputs[0].1)?;
                }
                _ => {
                    let v = g.add(&n.name, n.op.clone(), &n.inputs)?;
                    // Keep f16 storage chosen by mixed precision (`add` infers f32).
                    for (o, was) in g.nodes[v.node].outputs.iter_mut().zip(&n.outputs) {
                        o.1 = was.1;
                    }
                }
            }
        }
        g.validate()?;
        Ok(g)
    }

    /// The inference twin of this graph: dropout off, batch norm on its running statistics; same
    /// node names, so compiling it with `Options::share` gives it the trained weights.
    pub fn for_inference(&self) -> Graph {
        let mut g = self.clone();
        for n in &mut g.nodes {
            if let Some(op) = n.op.primitive().and_then(|p| p.for_inference()) {
                n.op = op;
            }
        }
        g
    }

    /// Evaluates the needed nodes on the CPU reference, op by op, from `feeds` (inputs and
    /// parameters by name). The oracle for the compiled graph.
    pub fn eval_reference(
        &self,
        feeds: &std::collections::HashMap<String, crate::reference::Array>,
        outputs: &[Value],
    ) -> Result<Vec<crate::reference::Array>> {
        self.validate()?;
        for &v in outputs {
            self.output(v)?;
        }
        // The oracle evaluates what the compiler could run: a value past the kernels' element
        // limit is refused here too, not allocated (an f64 array of 2^40 elements aborts).
        let last = outputs.iter().map(|v| v.node).max().unwrap_or(0);
        for n in self.nodes.iter().take(last + 1) {
            for (s, _) in &n.outputs {
                let count = s.iter().product::<usize>();
                if count as u64 > crate::tensor::MAX_ELEMENTS {
                    return Err(Error::TooLarge {
                        what: format!("node {:?} {s:?} (reference)", n.name),
                        amount: count as u64,
                        limit: crate::tensor::MAX_ELEMENTS,
                        unit: crate::error::Unit::Elements,
                    });
                }
            }
        }
        let mut vals: std::collections::HashMap<Value, crate::reference::Array> =
            std::collections::HashMap::new();
        for (i, n) in self.nodes.iter().enumerate().take(last + 1) {
            let outs = match n.op {
                Op::Input | Op::Param | Op::State => {
                    let a = feeds
                        .get(&n.name)
                        .ok_or_else(|| Error::Invalid(format!("no feed for {:?}", n.name)))?;
                    let want = &n.outputs[0].0;
                    if a.shape != *want || a.data.len() != want.iter().product::<usize>() {
                        return Err(Error::Shape {
                            op: format!("node {:?}", n.name),
                            msg: format!(
                                "fed {:?} ({} values), expected {want:?}",
                                a.shape,
                                a.data.len()
                            ),
                        });
                    }
                    vec![a.clone()]
                }
                _ => {
                    let ins: Vec<&crate::reference::Array> =
                        n.inputs.iter().map(|u| &vals[u]).collect();
                    let outs = n.op.eval_reference(&ins, &n.outputs, 0)?;
                    // The next references index what this one gave: its count and shapes must
                    // be the node's (a custom op's reference could give anything).
                    let fits = outs.len() == n.outputs.len()
                        && outs.iter().zip(&n.outputs).all(|(a, (s, _))| {
                            a.shape == *s && a.data.len() == s.iter().product::<usize>()
                        });
                    if !fits {
                        let got: Vec<_> = outs.iter().map(|a| (&a.shape, a.data.len())).collect();
                        return Err(Error::Invalid(format!(
                            "node {:?}: the reference gave {got:?} (shape, elements), the node \
                             has outputs {:?}",
                            n.name, n.outputs
                        )));
                    }
                    outs
                }
            };
            for (port, a) in outs.into_iter().enumerate() {
                vals.insert(Value { node: i, port }, a);
            }
        }
        Ok(outputs.iter().map(|v| vals[v].clone()).collect())
    }

    /// Every parameter node, in order.
    pub fn params(&self) -> Vec<Value> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].op == Op::Param)
            .map(|node| Value { node, port: 0 })
            .collect()
    }
}
