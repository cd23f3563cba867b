//! What a well-formed graph is. `Graph::add` and the sources keep every graph they build well
//! formed; `Graph::validate` re-checks a whole graph (its `nodes` are public, so a caller can edit
//! them) before compiling, differentiating or evaluating it, so no pass indexes a missing node,
//! port or input.

use crate::tensor::DType;
use std::collections::HashSet;

use super::{Graph, Op, Out};
use crate::error::{Error, Result};

/// Every output a node may have: at least one, each of rank >= 1 with no zero dimension, and an
/// element and byte count that a `usize` and a `u64` hold — so no later product of a stored
/// shape (element counts, bytes, the memory plan) can overflow.
pub(super) fn check_outputs(name: &str, outputs: &[Out]) -> Result<()> {
    let err = |msg: String| Error::Shape {
        op: format!("node {name:?}"),
        msg,
    };
    if outputs.is_empty() {
        return Err(err("the op infers no output".into()));
    }
    for (port, (shape, dtype)) in outputs.iter().enumerate() {
        if shape.is_empty() {
            // Scalars are (1) throughout (losses, reductions, kernels' index arithmetic).
            return Err(err(format!(
                "output {port} is a rank-0 scalar (): scalars have shape [1] here; use [1]"
            )));
        }
        if shape.contains(&0) {
            return Err(err(format!(
                "bad shape {shape:?} of output {port} (rank >= 1, no zero dimension)"
            )));
        }
        crate::tensor::checked_size(shape, *dtype).map_err(|e| {
            let msg = match e {
                Error::Shape { msg, .. } => msg,
                e => e.to_string(),
            };
            err(format!("output {port}: {msg}"))
        })?;
    }
    Ok(())
}

impl Graph {
    /// Checks that the graph is well formed, as `add` leaves it: names are unique; sources have
    /// no inputs and one output; every input names an existing output of an earlier node; and
    /// every computed node's outputs are what its op infers from its inputs' shapes. Compiling,
    /// differentiating, re-batching and the reference evaluation call it first.
    pub fn validate(&self) -> Result<()> {
        let mut names = HashSet::with_capacity(self.nodes.len());
        for (i, n) in self.nodes.iter().enumerate() {
            let err = |msg: String| Error::Invalid(format!("node {i} {:?}: {msg}", n.name));
            if !names.insert(n.name.as_str()) {
                return Err(err("the name is used twice".into()));
            }
            check_outputs(&n.name, &n.outputs)?;
            let mut shapes = Vec::with_capacity(n.inputs.len());
            for u in &n.inputs {
                let out = self
                    .nodes
                    .get(u.node)
                    .filter(|_| u.node < i)
                    .and_then(|p| p.outputs.get(u.port))
                    .ok_or_else(|| {
                        err(format!("input {u:?} is not an output of an earlier node"))
                    })?;
                shapes.push(out.0.as_slice());
            }
            match &n.op {
                Op::Input | Op::Param | Op::State => {
                    if !n.inputs.is_empty() || n.outputs.len() != 1 {
                        return Err(err(format!(
                            "a source has no inputs and one output, not {} and {}",
                            n.inputs.len(),
                            n.outputs.len()
                        )));
                    }
                }
                Op::Compute(p) => {
                    let want = p
                        .infer(&shapes)
                        .map_err(|e| e.context(format!("node {:?}", n.name)))?;
                    // Mixed precision stores an op's f32 outputs as f16 where it has f16 kernels.
                    let agrees = want.len() == n.outputs.len()
                        && want
                            .iter()
                            .zip(&n.outputs)
                            .enumerate()
                            .all(|(port, (w, o))| {
                                w == o
                                    || (w.0 == o.0
                                        && w.1 == DType::F32
                                        && o.1 == DType::F16
                                        && p.supports_f16()
                                        && !p.fixed_f32_output(port))
                            });
                    if !agrees {
                        return Err(err(format!(
                            "outputs {:?}, but its op infers {want:?}",
                            n.outputs
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}
