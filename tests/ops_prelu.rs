//! PReLU on every adapter vs the CPU f64 reference: forward, input and slope gradients on awkward
//! shapes in both slope modes (per channel, shared), the two-level slope reduction (chunk sizes,
//! determinism, grids over 65,535 workgroups), a compiled graph vs `Graph::eval_reference` and
//! finite differences, and the errors of bad inputs.

mod common;

use std::collections::HashMap;

use common::{assert_close, each_device};
use wgtrain::graph::{Graph, Op, Value};
use wgtrain::ops::elementwise::UnaryOp;
use wgtrain::ops::prelu::gpu as gp;
use wgtrain::ops::prelu::reference as rp;
use wgtrain::ops::prelu::{PRelu, PReluOp};
use wgtrain::reference::{Array, finite_diff, max_rel_diff};
use wgtrain::{DType, Device, Tensor};

fn up(dev: &Device, a: &Array) -> Tensor {
    Tensor::from_f32(dev, &a.shape, &a.to_f32()).unwrap()
}

fn get(t: &Tensor) -> Vec<f32> {
    t.to_f32().unwrap()
}

/// Seeded values in [-1, 1) rounded to f32.
fn input(shape: &[usize], seed: u64) -> Array {
    let a = Array::seeded(shape, seed);
    Array::from_f32(&a.shape, &a.to_f32())
}

/// [`input`] with every 11th element exactly 0: the kink, where the gradient takes the slope
/// branch (for x only: dy stays non-zero there, so the convention shows in dx).
fn input_with_zeros(shape: &[usize], seed: u64) -> Array {
    let mut a = input(shape, seed);
    for v in a.data.iter_mut().step_by(11) {
        *v = 0.0;
    }
    a
}

/// Slopes of both signs and above 1, rounded to f32.
fn slopes(n: usize, seed: u64) -> Array {
    let a = Array::seeded(&[n], seed).map_scaled(1.5);
    Array::from_f32(&a.shape, &a.to_f32())
}

/// The slope modes of an input of `shape`: per channel (C), and shared (1).
fn modes(shape: &[usize]) -> Vec<PRelu> {
    let mut v = vec![PRelu::new(1).unwrap()];
    if shape[1] != 1 {
        v.push(PRelu::new(shape[1]).unwrap());
    }
    v
}

/// Forward and both gradients of `op` on the GPU vs the reference, from the same f32 inputs.
fn check_op(dev: &Device, shape: &[usize], op: PRelu, seed: u64) {
    let what = format!("{shape:?} num_parameters {}", op.num_parameters);
    let (x, a, dy) = (
        input_with_zeros(shape, seed),
        slopes(op.num_parameters, seed + 1),
        input(shape, seed + 2),
    );
    let (tx, ta, tdy) = (up(dev, &x), up(dev, &a), up(dev, &dy));
    let y = gp::prelu(&op, &tx, &ta).unwrap();
    let ry = rp::prelu_forward(&op, &x, &a).unwrap();
    assert_close(&format!("{what} y"), &get(&y), &ry.data, 1e-7, 1e-6);
    let g = gp::prelu_backward(&op, &tx, &ta, &tdy).unwrap();
    let (rdx, rda) = rp::prelu_backward(&op, &x, &a, &dy).unwrap();
    assert_close(&format!("{what} dx"), &get(&g.dx), &rdx.data, 1e-7, 1e-6);
    // f32 sums of up to a few thousand terms of magnitude < 1.
    let terms = (x.len() / op.num_parameters) as f64;
    assert_close(
        &format!("{what} da"),
        &get(&g.da),
        &rda.data,
        1e-6 * terms,
        1e-5,
    );
}

#[test]
fn gpu_matches_reference_on_awkward_shapes() {
    each_device("prelu vs reference", |dev| {
        let shapes: [&[usize]; 8] = [
            &[1, 1],
            &[1, 7],
            &[3, 33],
            &[1, 1, 1, 1],
            &[1, 7, 5, 7],
            &[2, 33, 5, 7],
            &[2, 1, 9],
            // Over one workgroup per slot and over one chunk (4096) for the shared slope.
            &[2, 3, 40, 40],
        ];
        for (i, shape) in shapes.iter().enumerate() {
            for op in modes(shape) {
                check_op(dev, shape, op, 10 * i as u64);
            }
        }
    });
}

#[test]
fn slope_gradient_is_chunk_independent_and_deterministic() {
    each_device("prelu slope reduction", |dev| {
        let shape = [3, 5, 17, 13];
        for op in modes(&shape) {
            let (x, dy) = (input_with_zeros(&shape, 1), input(&shape, 2));
            let (tx, tdy) = (up(dev, &x), up(dev, &dy));
            let want = rp::prelu_backward_weight(&op, &x, &dy).unwrap();
            let mut first: Option<Vec<f32>> = None;
            // 1 and 7: many chunks per slot; 300: not a multiple of the workgroup; the default.
            for chunk in [1, 7, 256, 300, gp::DA_CHUNK, usize::MAX] {
                let da = Tensor::zeros(dev, &op.weight_shape(), DType::F32).unwrap();
                let run = || {
                    let p = gp::prelu_backward_weight_launches_chunked(&op, &tx, &tdy, &da, chunk)
                        .unwrap();
                    dev.run(&p.launches).unwrap();
                    get(&da)
                };
                let got = run();
                let what = format!("{} slopes, chunk {chunk}", op.num_parameters);
                assert_close(&what, &got, &want.data, 2e-4, 1e-5);
                assert_eq!(got, run(), "{what}: a second run differs");
                if chunk == gp::DA_CHUNK {
                    first = Some(got);
                }
            }
            // The eager backward uses the default chunk: the same bits.
            let a = up(dev, &slopes(op.num_parameters, 3));
            let g = gp::prelu_backward(&op, &tx, &a, &tdy).unwrap();
            assert_eq!(Some(get(&g.da)), first);
            let zero = Tensor::zeros(dev, &op.weight_shape(), DType::F32).unwrap();
            let e = gp::prelu_backward_weight_launches_chunked(&op, &tx, &tdy, &zero, 0)
                .err()
                .expect("chunk 0 is refused")
                .to_string();
            assert!(e.contains("prelu") && e.contains("chunk"), "{e}");
        }
    });
}

#[test]
fn grids_over_65535_workgroups() {
    each_device("prelu large grids", |dev| {
        // 65,537 slopes of 2 elements, chunk 1: 131,074 first-level and 65,537 second-level
        // workgroups, both folded into 2-D grids with spare workgroups.
        let shape = [2, 65_537];
        let op = PRelu::new(65_537).unwrap();
        let (x, dy) = (input(&shape, 4), input(&shape, 5));
        let want = rp::prelu_backward_weight(&op, &x, &dy).unwrap();
        let da = Tensor::zeros(dev, &[65_537], DType::F32).unwrap();
        let p =
            gp::prelu_backward_weight_launches_chunked(&op, &up(dev, &x), &up(dev, &dy), &da, 1)
                .unwrap();
        assert_eq!(p.launches.len(), 2);
        dev.run(&p.launches).unwrap();
        assert_close("da, 2-D grids", &get(&da), &want.data, 1e-6, 1e-6);
        // One element more than 65,535 workgroups of 256: the elementwise kernels' grid folds.
        let n = 65_535 * 256 + 1;
        let shape = [1, 1, n];
        let op = PRelu::new(1).unwrap();
        let x = input(&shape, 6);
        let a = slopes(1, 7);
        let tx = up(dev, &x);
        let ta = up(dev, &a);
        let y = get(&gp::prelu(&op, &tx, &ta).unwrap());
        let ry = rp::prelu_forward(&op, &x, &a).unwrap();
        assert_close("y, 2-D grid", &y, &ry.data, 1e-7, 1e-6);
    });
}

/// `x (N, 4, 3, 5) -> prelu (per channel) -> prelu (shared) -> square -> sum`: both slope modes,
/// chained, with a non-constant output gradient. Returns (graph, loss, [x, a1, a2]).
fn prelu_graph(batch: usize) -> (Graph, Value, [Value; 3]) {
    let mut g = Graph::new();
    let x = g.input("x", &[batch, 4, 3, 5]).unwrap();
    let h = g.prelu("act1", x, PRelu::new(4).unwrap()).unwrap();
    let h = g.prelu("act2", h, PRelu::new(1).unwrap()).unwrap();
    let s = g.unary("sq", UnaryOp::Square, h).unwrap();
    let loss = g.sum("loss", s, 1).unwrap();
    let (a1, a2) = (
        g.find("act1.weight").unwrap(),
        g.find("act2.weight").unwrap(),
    );
    assert_eq!(g.shape(a1).unwrap(), &[4]);
    assert_eq!(g.shape(a2).unwrap(), &[1]);
    (g, loss, [x, a1, a2])
}

/// x at least 0.1 away from the kink; slopes away from 0, so no finite-difference step crosses a
/// kink of either layer.
fn graph_feeds(g: &Graph) -> HashMap<String, Array> {
    let x = g.shape(g.find("x").unwrap()).unwrap().to_vec();
    let xs = Array::seeded(&x, 1);
    let xs = xs
        .data
        .iter()
        .map(|v| v.signum() * (0.1 + v.abs()))
        .collect();
    let f32s = |a: Array| Array::from_f32(&a.shape, &a.to_f32());
    HashMap::from([
        ("x".to_string(), f32s(Array::new(&x, xs))),
        (
            "act1.weight".to_string(),
            f32s(Array::new(&[4], vec![0.25, -0.5, 1.5, 0.75])),
        ),
        ("act2.weight".to_string(), f32s(Array::new(&[1], vec![0.3]))),
    ])
}

#[test]
fn graph_gradients_match_finite_differences() {
    let (mut g, loss, wrt) = prelu_graph(2);
    let grads = g.gradients(loss, &wrt).unwrap();
    let f = graph_feeds(&g);
    let got = g.eval_reference(&f, &grads).unwrap();
    for (v, grad) in wrt.iter().zip(&got) {
        let name = g.node(*v).unwrap().name.clone();
        let fd = finite_diff(&f[&name], 1e-6, |w| {
            let mut f2 = f.clone();
            f2.insert(name.clone(), w.clone());
            g.eval_reference(&f2, &[loss]).unwrap()[0].data.iter().sum()
        });
        let d = max_rel_diff(&grad.data, &fd.data);
        assert!(d < 1e-7, "{name}: {d}: {:?} vs {:?}", grad.data, fd.data);
    }
}

#[test]
fn compiled_graph_matches_reference() {
    each_device("prelu graph vs reference", |dev| {
        // Batch 70: 4,200 elements for the shared slope, over one reduction chunk.
        for batch in [1, 70] {
            let (mut g, loss, wrt) = prelu_graph(batch);
            let mut outs = vec![loss];
            outs.extend(g.gradients(loss, &wrt).unwrap());
            let f = graph_feeds(&g);
            let c = g.compile(dev, &outs, &Default::default()).unwrap();
            for (name, a) in &f {
                c.set(name, &a.to_f32()).unwrap();
            }
            c.step().unwrap();
            let want = g.eval_reference(&f, &outs).unwrap();
            for (v, w) in outs.iter().zip(&want) {
                let what = format!("batch {batch}: {}", g.node(*v).unwrap().name);
                assert_close(&what, &c.read(*v).unwrap(), &w.data, 1e-4, 1e-4);
            }
        }
    });
}

#[test]
fn bad_inputs_are_errors() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 7, 3]).unwrap();
    let e = g
        .prelu("bad", x, PRelu { num_parameters: 3 })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"bad\"") && e.contains("prelu") && e.contains("num_parameters = 3"),
        "{e}"
    );
    assert!(
        g.find("bad.weight").is_none(),
        "a failed prelu left its weight"
    );
    let v = g.input("v", &[5]).unwrap();
    let e = g
        .prelu("flat", v, PRelu::new(1).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"flat\"") && e.contains("rank 1"), "{e}");
    let e = g
        .prelu("none", x, PRelu { num_parameters: 0 })
        .unwrap_err()
        .to_string();
    assert!(e.contains("num_parameters = 0"), "{e}");
    // A slope parameter of the wrong length, wired by hand.
    let w = g.param("w", &[3]).unwrap();
    let op = Op::from(PReluOp::Forward(PRelu::new(7).unwrap()));
    let e = g.add("hand", op, &[x, w]).unwrap_err().to_string();
    assert!(e.contains("\"hand\"") && e.contains("weight [3]"), "{e}");
    // Second derivatives are refused.
    let y = g.prelu("ok", x, PRelu::new(7).unwrap()).unwrap();
    let a = g.find("ok.weight").unwrap();
    let l = g.sum("l", y, 1).unwrap();
    let dx = g.gradients(l, &[x]).unwrap()[0];
    let e = g.gradients(dx, &[a]).unwrap_err().to_string();
    assert!(e.contains("no gradient"), "{e}");

    each_device("prelu errors", |dev| {
        let op = PRelu::new(7).unwrap();
        let x = up(dev, &Array::zeros(&[2, 7, 3]));
        let a3 = up(dev, &Array::zeros(&[3]));
        let e = gp::prelu(&op, &x, &a3).unwrap_err().to_string();
        assert!(e.contains("prelu") && e.contains("weight (3)"), "{e}");
        let flat = up(dev, &Array::zeros(&[7]));
        let a7 = up(dev, &Array::zeros(&[7]));
        let e = gp::prelu(&op, &flat, &a7).unwrap_err().to_string();
        assert!(e.contains("prelu") && e.contains("rank 1"), "{e}");
        let e = gp::prelu(&PRelu::new(3).unwrap(), &x, &a3)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("prelu") && e.contains("num_parameters = 3"),
            "{e}"
        );
        let dy = up(dev, &Array::zeros(&[2, 7]));
        let e = gp::prelu_backward(&op, &x, &a7, &dy)
            .unwrap_err()
            .to_string();
        assert!(e.contains("prelu") && e.contains("dy (2, 7)"), "{e}");
    });
}
