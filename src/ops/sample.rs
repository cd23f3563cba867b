//! Sample cases of every op, declared by each family next to its op (`src/ops/<family>/
//! samples.rs`) and listed in [`FAMILIES`](super::FAMILIES): the conformance tests
//! (`tests/conformance.rs`) run each one compiled on the GPU against the f64 reference, its
//! gradients against the reference vjp and finite differences, and its fused neuron against the
//! unfused plan; the op benchmark (`benches/ops.rs`) times the same graphs at larger sizes.
//!
//! A sample is a small graph: sources (inputs, parameters, states) feeding the op under test,
//! whose output (port 0) is what is checked. Sources are filled with deterministic data by
//! [`Sample::feeds`], from the [`Fill`] the sample gives them (uniform in [-1, 1) otherwise).

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::Result;
use crate::graph::{Graph, Op, Value};
use crate::reference::Array;
use crate::tensor::DType;

/// Builds a sample's graph at a size multiplier (1: the test shapes, awkward and tiny) and
/// returns the value under test.
pub type Build = Arc<dyn Fn(&mut Graph, usize) -> Result<Value> + Send + Sync>;

/// How a source of a sample is filled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fill {
    /// Uniform in [lo, hi).
    Uniform(f64, f64),
    /// Class indices in 0..classes (u32 labels).
    Classes(usize),
    /// Positive rows (over all but dim 0) summing to 1: probabilities, dense labels.
    Probabilities,
    /// ±1 (hinge labels).
    Signs,
    /// Magnitude uniform in [lo, hi), either sign: inputs kept off a kink at 0.
    AwayFromZero(f64, f64),
}

impl Fill {
    /// The data of a source of `shape` filled this way, seeded by `seed`, rounded to f32 (so
    /// the reference starts from exactly what the GPU sees).
    pub fn array(self, shape: &[usize], seed: u64) -> Array {
        let u = Array::seeded(shape, seed); // [-1, 1)
        let data: Vec<f64> = match self {
            Fill::Uniform(lo, hi) => u
                .data
                .iter()
                .map(|v| lo + (v + 1.0) / 2.0 * (hi - lo))
                .collect(),
            Fill::Classes(c) => u
                .data
                .iter()
                .map(|v| (((v + 1.0) / 2.0 * c as f64) as usize).min(c - 1) as f64)
                .collect(),
            Fill::Signs => u
                .data
                .iter()
                .map(|&v| if v < 0.0 { -1.0 } else { 1.0 })
                .collect(),
            Fill::AwayFromZero(lo, hi) => u
                .data
                .iter()
                .map(|&v| v.signum() * (lo + v.abs() * (hi - lo)))
                .collect(),
            Fill::Probabilities => {
                let d = shape[1..].iter().product::<usize>().max(1);
                let e: Vec<f64> = u.data.iter().map(|v| (1.5 * v).exp()).collect();
                e.chunks(d)
                    .flat_map(|row| {
                        let s: f64 = row.iter().sum();
                        row.iter().map(move |v| v / s).collect::<Vec<_>>()
                    })
                    .collect()
            }
        };
        let a = Array::new(shape, data);
        Array::from_f32(&a.shape, &a.to_f32())
    }
}

/// One case of one op: its name (reported on failure), how to build it, how to fill its sources
/// and what it is not differentiable with respect to.
#[derive(Clone)]
pub struct Sample {
    /// `<family>/<case>`, unique.
    pub name: String,
    /// How to build the op's graph.
    pub build: Build,
    /// Fills of sources by node name; the rest are uniform in [-1, 1).
    pub fills: Vec<(String, Fill)>,
    /// f32 inputs and parameters the op has no gradient for (labels, weights of a loss); u32
    /// sources and states never have one.
    pub no_grad: Vec<String>,
    /// Relative (and absolute) tolerance of the GPU against the reference.
    pub tol: f64,
    /// How many output ports the eager check compares (all by default; 1 where the reference
    /// leaves the others, e.g. saved statistics, as placeholders).
    pub ports: usize,
}

impl std::fmt::Debug for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sample({})", self.name)
    }
}

impl Sample {
    /// A sample named `name` built by `build` (see [`Build`]), default fills and tolerance 1e-4.
    pub fn new(
        name: impl Into<String>,
        build: impl Fn(&mut Graph, usize) -> Result<Value> + Send + Sync + 'static,
    ) -> Sample {
        Sample {
            name: name.into(),
            build: Arc::new(build),
            fills: Vec::new(),
            no_grad: Vec::new(),
            tol: 1e-4,
            ports: usize::MAX,
        }
    }

    /// Fills source `name` with `fill`.
    pub fn fill(mut self, name: &str, fill: Fill) -> Sample {
        self.fills.push((name.into(), fill));
        self
    }

    /// The op has no gradient with respect to source `name`.
    pub fn no_grad(mut self, name: &str) -> Sample {
        self.no_grad.push(name.into());
        self
    }

    /// The eager check compares only the first `ports` output ports.
    pub fn ports(mut self, ports: usize) -> Sample {
        self.ports = ports;
        self
    }

    /// Sets the tolerance of the GPU-vs-reference comparison.
    pub fn tol(mut self, tol: f64) -> Sample {
        self.tol = tol;
        self
    }

    /// The graph at size multiplier `scale` and the value under test.
    pub fn graph(&self, scale: usize) -> Result<(Graph, Value)> {
        let mut g = Graph::new();
        let y = (self.build)(&mut g, scale)?;
        Ok((g, y))
    }

    /// Deterministic data for every source of `g` (u32 sources as class indices in f64).
    pub fn feeds(&self, g: &Graph) -> HashMap<String, Array> {
        let mut f = HashMap::new();
        for (i, n) in g.nodes.iter().enumerate() {
            if !n.op.is_source() {
                continue;
            }
            let fill = self
                .fills
                .iter()
                .find(|(k, _)| *k == n.name)
                .map(|(_, f)| *f)
                .unwrap_or(Fill::Uniform(-1.0, 1.0));
            let seed = 1000 + i as u64 * 7919;
            f.insert(n.name.clone(), fill.array(&n.outputs[0].0, seed));
        }
        f
    }

    /// The sources the op is differentiated with respect to: f32 inputs and parameters not
    /// marked `no_grad`.
    pub fn wrt(&self, g: &Graph) -> Vec<Value> {
        (0..g.nodes.len())
            .filter(|&i| {
                let n = &g.nodes[i];
                matches!(n.op, Op::Input | Op::Param)
                    && n.outputs[0].1 == DType::F32
                    && !self.no_grad.contains(&n.name)
            })
            .map(|node| Value { node, port: 0 })
            .collect()
    }
}
