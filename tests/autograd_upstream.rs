//! `Graph::gradients_with`: the vector-Jacobian product with an upstream gradient other than
//! ones (`torch.autograd.grad(y, x, grad_outputs=u)`), against finite differences of `Σ y ⊙ u`
//! in the reference and on the GPU; mis-shaped upstream gradients are errors.

mod common;

use std::collections::HashMap;

use common::{assert_close, each_device};
use wgtrain::ops::loss::reference::{Labels, loss_backward};
use wgtrain::reference::{Array, finite_diff, max_rel_diff};
use wgtrain::{FullyConnected, Graph, Loss, LossKind, Options, Reduction, UnaryOp, Value};

/// x (3, 4) → dense (4 → 5) → tanh = y (3, 5); upstream u (3, 5) an input; the gradients of
/// `Σ y ⊙ u` w.r.t. x and the dense weight.
fn graph() -> (Graph, Value, Value, Vec<Value>, Vec<Value>) {
    let mut g = Graph::new();
    let x = g.input("x", &[3, 4]).unwrap();
    let u = g.input("u", &[3, 5]).unwrap();
    let h = g.dense("fc", x, FullyConnected::new(4, 5)).unwrap();
    let y = g.unary("y", UnaryOp::Tanh, h).unwrap();
    let w = g.find("fc.weight").unwrap();
    let wrt = vec![x, w];
    let grads = g.gradients_with(y, u, &wrt).unwrap();
    (g, y, u, wrt, grads)
}

fn feeds(g: &Graph) -> HashMap<String, Array> {
    let mut f = HashMap::new();
    for (i, name) in ["x", "u", "fc.weight", "fc.bias"].iter().enumerate() {
        let s = g.shape(g.find(name).unwrap()).unwrap();
        let a = Array::seeded(s, 10 + i as u64);
        // A non-trivial upstream: signs and magnitudes vary, far from ones.
        let a = if *name == "u" { a.map_scaled(3.0) } else { a };
        f.insert(name.to_string(), Array::from_f32(s, &a.to_f32()));
    }
    f
}

#[test]
fn the_vjp_with_an_upstream_gradient_matches_finite_differences() {
    let (g, y, _, wrt, grads) = graph();
    let f = feeds(&g);
    let got = g.eval_reference(&f, &grads).unwrap();
    for (v, grad) in wrt.iter().zip(&got) {
        let name = g.node(*v).unwrap().name.clone();
        let fd = finite_diff(&f[&name], 1e-6, |a| {
            let mut f = f.clone();
            f.insert(name.clone(), a.clone());
            let y = &g.eval_reference(&f, &[y]).unwrap()[0];
            y.data.iter().zip(&f["u"].data).map(|(a, b)| a * b).sum()
        });
        let d = max_rel_diff(&grad.data, &fd.data);
        assert!(d < 1e-6, "d/d{name}: {d}");
    }
    // Not what ones would give.
    let mut ones = g.clone();
    let plain = ones.gradients(y, &wrt).unwrap();
    let p = ones.eval_reference(&f, &plain).unwrap();
    assert!(max_rel_diff(&p[0].data, &got[0].data) > 0.1);
}

#[test]
fn the_gpu_matches_the_reference() {
    each_device("gradients_with", |dev| {
        let (g, _, _, _, grads) = graph();
        let f = feeds(&g);
        let want = g.eval_reference(&f, &grads).unwrap();
        let c = g.compile(dev, &grads, &Options::default()).unwrap();
        for (name, a) in &f {
            c.set(name, &a.to_f32()).unwrap();
        }
        c.step().unwrap();
        for (v, w) in grads.iter().zip(&want) {
            assert_close("vjp", &c.read(*v).unwrap(), &w.data, 1e-5, 1e-4);
        }
    });
}

#[test]
fn a_mis_shaped_or_foreign_upstream_is_an_error() {
    let mut g = Graph::new();
    let x = g.input("x", &[3, 4]).unwrap();
    let y = g.unary("y", UnaryOp::Tanh, x).unwrap();
    let bad = g.input("u", &[4, 3]).unwrap();
    let labels = g.input_u32("k", &[3, 4]).unwrap();
    let n = g.nodes.len();
    let e = g.gradients_with(y, bad, &[x]).unwrap_err().to_string();
    assert!(
        e.contains("\"y\"") && e.contains("\"u\"") && e.contains("[4, 3]") && e.contains("[3, 4]"),
        "{e}"
    );
    let e = g.gradients_with(y, labels, &[x]).unwrap_err().to_string();
    assert!(e.contains("U32") && e.contains("F32"), "{e}");
    let foreign = Value { node: 99, port: 0 };
    let e = g.gradients_with(y, foreign, &[x]).unwrap_err().to_string();
    assert!(e.contains("not a value of this graph"), "{e}");
    assert_eq!(g.nodes.len(), n, "a refused call adds no node");
    // The upstream gradient of the output itself comes back as the output's gradient.
    let u = g.input("u2", &[3, 4]).unwrap();
    assert_eq!(g.gradients_with(y, u, &[y]).unwrap(), vec![u]);
}

/// Per-sample losses (`Reduction::None`) weighted by an upstream gradient: the loss's own
/// backward with that `dloss`, on the GPU too.
#[test]
fn per_sample_losses_take_an_upstream_gradient() {
    let mut g = Graph::new();
    let x = g.input("x", &[4, 3]).unwrap();
    let t = g.input("t", &[4, 3]).unwrap();
    let u = g.input("u", &[4]).unwrap();
    let loss = Loss::new(LossKind::Huber { delta: 0.5 }, Reduction::None).unwrap();
    let l = g.loss("l", x, t, None, loss.clone()).unwrap();
    let dx = g.gradients_with(l, u, &[x]).unwrap()[0];
    let mut f = HashMap::new();
    for (i, (name, s)) in [("x", vec![4, 3]), ("t", vec![4, 3]), ("u", vec![4])]
        .into_iter()
        .enumerate()
    {
        let a = Array::seeded(&s, 30 + i as u64).map_scaled(2.0);
        f.insert(name.to_string(), Array::from_f32(&s, &a.to_f32()));
    }
    let got = g.eval_reference(&f, &[dx]).unwrap();
    let want = loss_backward(&loss, &f["x"], &Labels::Dense(&f["t"]), None, &f["u"]).unwrap();
    assert_eq!(got[0], want);
    each_device("gradients_with loss", |dev| {
        let c = g.compile(dev, &[dx], &Options::default()).unwrap();
        for (name, a) in &f {
            c.set(name, &a.to_f32()).unwrap();
        }
        c.step().unwrap();
        assert_close("dx", &c.read(dx).unwrap(), &want.data, 1e-5, 1e-4);
    });
}
