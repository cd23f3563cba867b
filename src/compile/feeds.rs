//! What a step reads that the caller must write first: every live input and parameter. A value
//! never written reads zeros, which trains nothing and reports no error, so `encode_step` refuses
//! it (and a training step with no optimizer attached) with an `Err` saying what to call.

use std::sync::Mutex;

use super::exec::Compiled;
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, Value};

/// Which nodes have been written since compile, and which the step reads.
pub(crate) struct Feeds {
    /// Node indices of the live inputs and parameters.
    required: Vec<usize>,
    /// Written, by node index.
    fed: Mutex<Vec<bool>>,
}

impl Feeds {
    pub fn new(nodes: usize) -> Feeds {
        Feeds {
            required: Vec::new(),
            fed: Mutex::new(vec![false; nodes]),
        }
    }
}

impl Compiled {
    /// Records the live inputs and parameters of the step, and those shared with `share` as
    /// already written (the graph they come from owns their initialisation).
    pub(super) fn require_feeds(&mut self, live: &[bool], share: Option<&Compiled>) {
        let g = &self.graph;
        self.feeds.required = (0..g.nodes.len())
            .filter(|&i| live[i] && matches!(g.nodes[i].op, Op::Input | Op::Param))
            .collect();
        let shared: Vec<usize> = self
            .feeds
            .required
            .iter()
            .copied()
            .filter(|&i| {
                let name = &g.nodes[i].name;
                g.nodes[i].op == Op::Param
                    && share.is_some_and(|s| s.param(name).is_some() || s.is_jit_param(name))
            })
            .collect();
        let mut fed = self.feeds.fed.lock().unwrap();
        shared.into_iter().for_each(|i| fed[i] = true);
    }

    /// Marks `v`'s node as written.
    pub(super) fn mark_fed(&self, v: Value) {
        if let Some(f) = self.feeds.fed.lock().unwrap().get_mut(v.node) {
            *f = true;
        }
    }

    /// Marks the node named `name` as written.
    pub(super) fn mark_fed_name(&self, name: &str) {
        if let Some(v) = self.graph.find(name) {
            self.mark_fed(v);
        }
    }

    /// Marks every input and parameter as written: for a caller that writes the tensors
    /// directly (`Compiled::tensor`, `param_arena`) rather than through `set`.
    pub fn assume_written(&self) {
        self.feeds
            .fed
            .lock()
            .unwrap()
            .iter_mut()
            .for_each(|f| *f = true);
    }

    /// Whether a step reads `v` (a live input or parameter).
    pub fn reads(&self, v: Value) -> bool {
        self.resolve(v)
            .is_ok_and(|v| self.feeds.required.contains(&v.node))
    }

    /// The names of the live inputs (what a step must be fed).
    pub fn input_names(&self) -> Vec<String> {
        let g = &self.graph;
        let ins = self.feeds.required.iter();
        ins.filter(|&&i| g.nodes[i].op == Op::Input)
            .map(|&i| g.nodes[i].name.clone())
            .collect()
    }

    /// `Err` naming the first input never written, parameter never initialised, or a training
    /// graph stepped without its optimizer.
    pub(super) fn check_fed(&self) -> Result<()> {
        let fed = self.feeds.fed.lock().unwrap();
        if let Some(&i) = self.feeds.required.iter().find(|&&i| !fed[i]) {
            return Err(unfed(&self.graph, i));
        }
        if self.param_layout().is_some() && !self.optimizer_attached && !self.gradients_only {
            return Err(Error::Invalid(
                "a training step with no optimizer attached would compute gradients and never \
                 change a weight: attach an optimizer (Compiled::optimizer + attach_optimizer, or train \
                 through Graph::train), or compile with Options::gradients_only to read gradients"
                    .into(),
            ));
        }
        Ok(())
    }
}

fn unfed(g: &Graph, i: usize) -> Error {
    let n = &g.nodes[i];
    if n.op == Op::Param {
        Error::Invalid(format!(
            "parameter {:?} was never initialised (it would train from zeros): write it with \
             Compiled::set, weights::upload or a checkpoint, or train through Graph::train, \
             which initialises every parameter",
            n.name
        ))
    } else {
        let how = match n.outputs[0].1 {
            crate::tensor::DType::U32 => "Compiled::set_u32",
            _ => "Compiled::set",
        };
        Error::Invalid(format!(
            "input {:?} was never written before a step (it would read zeros): write it with {how}",
            n.name
        ))
    }
}
