//! Compiling a graph, running it and holding it to the CPU reference: shared by `graph.rs` and
//! `neuron_fusion.rs`.

use std::collections::HashMap;

use super::assert_close;
use wgtrain::autograd::Training;
use wgtrain::graph::{Graph, Value};
use wgtrain::reference::{Array, finite_diff, max_rel_diff};

/// Every input, parameter and state of `g` filled with seeded values (rounded to f32).
pub fn feeds(g: &Graph, seed: u64) -> HashMap<String, Array> {
    let mut f = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if matches!(
            n.op,
            wgtrain::graph::Op::Input | wgtrain::graph::Op::Param | wgtrain::graph::Op::State
        ) {
            let a = Array::seeded(&n.outputs[0].0, seed + i as u64);
            f.insert(n.name.clone(), Array::from_f32(&a.shape, &a.to_f32()));
        }
    }
    f
}

/// Compiles `g` for `outs` with `opts`, feeds `f`, runs `steps` steps; each output and the plan.
pub fn run_with(
    dev: &wgtrain::Device,
    g: &Graph,
    outs: &[Value],
    opts: &wgtrain::compile::Options,
    f: &HashMap<String, Array>,
    steps: usize,
) -> (Vec<Vec<f32>>, wgtrain::compile::PlanStats) {
    let c = g.compile(dev, outs, opts).unwrap();
    for (name, a) in f {
        c.set(name, &a.to_f32()).unwrap();
    }
    for _ in 0..steps {
        c.step().unwrap();
    }
    (
        outs.iter().map(|v| c.read(*v).unwrap()).collect(),
        c.stats().clone(),
    )
}

/// Holds the reference gradient of every parameter to central finite differences of the summed
/// loss, within relative tolerance `tol`.
pub fn assert_autograd_matches_fd(
    g: &Graph,
    loss: Value,
    tr: &Training,
    f: &HashMap<String, Array>,
    tol: f64,
) {
    let grads = g.eval_reference(f, &tr.grads).unwrap();
    for (p, grad) in tr.params.iter().zip(&grads) {
        let name = g.node(*p).unwrap().name.clone();
        let fd = finite_diff(&f[&name], 1e-6, |w| {
            let mut f2 = f.clone();
            f2.insert(name.clone(), w.clone());
            g.eval_reference(&f2, &[loss]).unwrap()[0].data.iter().sum()
        });
        assert!(
            max_rel_diff(&grad.data, &fd.data) < tol,
            "{name}: {:?} vs {:?}",
            grad.data,
            fd.data
        );
    }
}

/// Compiles the training graph for the loss and every gradient, runs one step on `f`, and holds
/// each output to the reference; returns the plan.
pub fn assert_compiled_matches_reference(
    dev: &wgtrain::Device,
    g: &Graph,
    loss: Value,
    tr: &Training,
    f: &HashMap<String, Array>,
    tol: f64,
) -> wgtrain::compile::PlanStats {
    let mut outs = vec![loss];
    outs.extend(&tr.grads);
    let (got, stats) = run_with(dev, g, &outs, &Default::default(), f, 1);
    let want = g.eval_reference(f, &outs).unwrap();
    for ((v, got), w) in outs.iter().zip(&got).zip(&want) {
        assert_close(&g.node(*v).unwrap().name, got, &w.data, tol, tol);
    }
    stats
}
