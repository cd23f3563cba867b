//! The compiled, aliased graph vs the same ops run one by one on the CPU reference, and the
//! autograd vs finite differences; plan properties; batch changes; two steps in flight.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::graph_run::{
    assert_autograd_matches_fd, assert_compiled_matches_reference, feeds, run_with,
};
use common::{assert_close, each_device};
use wgtrain::compile::{Options, Residency};
use wgtrain::graph::{Graph, Value};
use wgtrain::ops::elementwise::{BinaryOp, UnaryOp};
use wgtrain::reference::Array;

/// Small MLP with a branch, a value used twice and a max (state): returns (graph, loss, params).
fn mlp(batch: usize) -> (Graph, Value) {
    let mut g = Graph::new();
    let x = g.input("x", &[batch, 5]).unwrap();
    let w1 = g.param("w1", &[5, 7]).unwrap();
    let b1 = g.param("b1", &[7]).unwrap();
    let w2 = g.param("w2", &[7, 3]).unwrap();
    let h = g.matmul("fc1", x, w1).unwrap();
    let h = g.binary("bias1", BinaryOp::Add, h, b1).unwrap();
    let a = g.unary("tanh", UnaryOp::Tanh, h).unwrap();
    // `a` feeds three consumers: a·a, the residual add, and fc2.
    let sq = g.binary("sq", BinaryOp::Mul, a, a).unwrap();
    let r = g.binary("res", BinaryOp::Add, sq, a).unwrap();
    let o = g.matmul("fc2", r, w2).unwrap();
    let m = g.max("max", o, 1).unwrap(); // (N, 1), argmax state
    let s = g.sum("sum", o, 1).unwrap();
    let t = g.binary("mix", BinaryOp::Sub, m, s).unwrap();
    let loss = g.unary("sqr", UnaryOp::Square, t).unwrap(); // per-sample loss (N, 1)
    (g, loss)
}

#[test]
fn cpu_autograd_matches_finite_differences() {
    let (mut g, loss) = mlp(3);
    let tr = g.training(loss).unwrap();
    let f = feeds(&g, 1);
    assert_autograd_matches_fd(&g, loss, &tr, &f, 1e-6);
}

#[test]
fn compiled_graph_matches_reference_and_aliases_memory() {
    each_device("graph vs reference", |dev| {
        let (mut g, loss) = mlp(7);
        let tr = g.training(loss).unwrap();
        let s = assert_compiled_matches_reference(dev, &g, loss, &tr, &feeds(&g, 2), 1e-4);
        assert_eq!(s.submits_per_step, 1);
        assert!(s.arena_bytes < s.naive_bytes, "no aliasing: {s:?}");
        eprintln!("plan: {s:?}");
    });
}

#[test]
fn batch_size_changes_and_inference_graph_shares_weights() {
    each_device("rebatch", |dev| {
        let (mut g, loss) = mlp(4);
        let tr = g.training(loss).unwrap();
        let c = g
            .compile(dev, &[loss, tr.grads[0]], &Options::default())
            .unwrap();
        let f = feeds(&g, 3);
        for (name, a) in &f {
            c.set(name, &a.to_f32()).unwrap();
        }
        // Same network at batch 9, forward only, sharing c's parameter tensors.
        let g9 = g.with_batch(9).unwrap();
        let c9 = g9
            .compile(
                dev,
                &[loss],
                &Options {
                    share: Some(&c),
                    ..Options::default()
                },
            )
            .unwrap();
        let x9 = Array::from_f32(&[9, 5], &Array::seeded(&[9, 5], 77).to_f32());
        c9.set("x", &x9.to_f32()).unwrap();
        c9.step().unwrap();
        let mut f9 = f.clone();
        f9.insert("x".into(), x9);
        let want = g9.eval_reference(&f9, &[loss]).unwrap();
        assert_close(
            "batch 9 loss",
            &c9.read(loss).unwrap(),
            &want[0].data,
            1e-4,
            1e-4,
        );
        // Writing a weight through one is seen by the other.
        c.set("w2", &[0.0; 21]).unwrap();
        c9.step().unwrap();
        assert!(c9.read(loss).unwrap().iter().all(|&v| v == 0.0));
        assert!(
            c9.stats().live_nodes < g9.nodes.len(),
            "dead gradient nodes were not removed"
        );
    });
}

#[test]
fn two_steps_in_flight_with_callbacks() {
    each_device("in flight", |dev| {
        let (mut g, loss) = mlp(5);
        let tr = g.training(loss).unwrap();
        let c = g
            .compile(dev, &[loss, tr.grads[2]], &Options::default())
            .unwrap();
        for (name, a) in &feeds(&g, 4) {
            c.set(name, &a.to_f32()).unwrap();
        }
        let count = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for _ in 0..6 {
            let k = count.clone();
            handles.push(
                c.encode_step_with(move || {
                    k.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap(),
            );
        }
        handles.last().unwrap().wait().unwrap();
        c.wait_all().unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 6);
        assert!(handles.iter().all(|h| h.is_done()));
        let once = c.read(loss).unwrap();
        c.step().unwrap();
        assert_eq!(
            c.read(loss).unwrap(),
            once,
            "replaying a step must be deterministic"
        );
    });
}

#[test]
fn graph_errors_name_nodes_and_shapes() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3]).unwrap();
    let w = g.param("w", &[4, 5]).unwrap();
    let e = g.matmul("fc", x, w).unwrap_err().to_string();
    assert!(
        e.contains("fc") && e.contains("x [2, 3]") && e.contains("w [4, 5]"),
        "{e}"
    );
    assert!(g.input("x", &[1]).is_err(), "duplicate names");
    let w2 = g.param("w2", &[3, 2]).unwrap();
    let unused = g.param("unused", &[2]).unwrap();
    let y = g.matmul("fc2", x, w2).unwrap();
    let l = g.sum("l", y, 1).unwrap();
    let e = g.gradients(l, &[unused]).unwrap_err().to_string();
    assert!(e.contains("unused"), "{e}");
    // Second derivatives are refused at build time, not silently zero.
    let t = g.unary("t", UnaryOp::Tanh, y).unwrap();
    let gt = g.gradients(t, &[w2]).unwrap()[0];
    let l2 = g.sum("l2", gt, 1).unwrap();
    let e = g.gradients(l2, &[w2]).unwrap_err().to_string();
    assert!(e.contains("no gradient"), "{e}");
    each_device("graph read errors", |dev| {
        let c = g.compile(dev, &[l], &Options::default()).unwrap();
        assert!(c.read(y).is_err(), "an intermediate is not readable");
        assert!(c.set("x", &[1.0; 5]).is_err(), "wrong element count");
        assert!(c.set("nope", &[1.0]).is_err());
    });
}

#[test]
fn fused_and_unfused_plans_agree() {
    each_device("fusion", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[7, 33]).unwrap();
        let w = g.param("w", &[33, 9]).unwrap();
        let b = g.param("b", &[9]).unwrap();
        let y = g.matmul("fc", x, w).unwrap();
        let y = g.binary("bias", BinaryOp::Add, y, b).unwrap();
        let y = g.unary("relu", UnaryOp::Relu, y).unwrap(); // bias + neuron: one dispatch
        let y = g
            .unary("scale", UnaryOp::Linear { a: 0.5, b: 0.1 }, y)
            .unwrap();
        let z = g.unary("tanh", UnaryOp::Tanh, y).unwrap();
        let e = g.unary("exp", UnaryOp::Exp, y).unwrap(); // `y` read twice: the chain stops there
        let out = g.binary("out", BinaryOp::Mul, z, e).unwrap();
        let out = g.unary("sq", UnaryOp::Square, out).unwrap();
        let f = feeds(&g, 5);
        let run = |fuse: bool| {
            let opts = wgtrain::compile::Options {
                fuse,
                ..Default::default()
            };
            let (o, st) = run_with(dev, &g, &[out], &opts, &f, 1);
            (o[0].clone(), st)
        };
        let (fused, sf) = run(true);
        let (plain, sp) = run(false);
        let want = g.eval_reference(&f, &[out]).unwrap();
        assert_close("fused", &fused, &want[0].data, 1e-4, 1e-4);
        assert_close("unfused", &plain, &want[0].data, 1e-4, 1e-4);
        // relu+scale fold into bias; sq folds into out; tanh and exp stay (y has two readers).
        assert_eq!(
            sp.dispatches_per_step - sf.dispatches_per_step,
            3,
            "fused {sf:?} vs plain {sp:?}"
        );
        assert!(sf.arena_bytes <= sp.arena_bytes);
    });
}

#[test]
fn gradient_node_of_a_single_forward_node() {
    let mut g = Graph::new();
    let x = g.input("x", &[3, 4]).unwrap();
    let w = g.param("w", &[4, 2]).unwrap();
    let y = g.matmul("fc", x, w).unwrap();
    let dy = g.input("dy", &[3, 2]).unwrap();
    let grads = g.gradient_of(y, dy).unwrap();
    assert_eq!(grads.len(), 2);
    let (dx, dw) = (grads[0].unwrap(), grads[1].unwrap());
    assert_eq!(g.shape(dx).unwrap(), &[3, 4]);
    assert_eq!(g.shape(dw).unwrap(), &[4, 2]);
    let f = feeds(&g, 9);
    let got = g.eval_reference(&f, &[dx, dw]).unwrap();
    let (rx, rw) = wgtrain::ops::matmul::reference::matmul_backward(&f["x"], &f["w"], &f["dy"]);
    assert_eq!(got[0].data, rx.data);
    assert_eq!(got[1].data, rw.data);
    let bad = g.input("bad", &[2, 2]).unwrap();
    assert!(g.gradient_of(y, bad).is_err());
}

/// A small CNN with two branches joined by an add, max and average pooling, a dense head.
fn cnn(batch: usize) -> (Graph, Value) {
    use wgtrain::ops::conv::{Conv2d, Padding};
    use wgtrain::ops::dense::FullyConnected;
    use wgtrain::ops::pool::Pool2d;
    let mut g = Graph::new();
    let x = g.input("image", &[batch, 2, 9, 9]).unwrap();
    let mut c1 = Conv2d::new(2, 4, (3, 3));
    c1.padding = Padding::Same;
    let h = g.conv2d("conv1", x, c1).unwrap();
    let h = g.unary("relu1", UnaryOp::Relu, h).unwrap();
    let h = g.pool("pool1", h, Pool2d::max((3, 3), (2, 2))).unwrap(); // kernel != stride, (N, 4, 4, 4)
    let a = g.conv2d("branch_a", h, Conv2d::new(4, 3, (1, 1))).unwrap();
    let mut cb = Conv2d::new(4, 3, (3, 3));
    cb.padding = Padding::Same;
    cb.bias = false;
    let b = g.conv2d("branch_b", h, cb).unwrap();
    let b = g.unary("tanh_b", UnaryOp::Tanh, b).unwrap();
    let j = g.binary("join", BinaryOp::Add, a, b).unwrap();
    let j = g
        .pool("pool2", j, Pool2d::avg((2, 2), (2, 2), true))
        .unwrap(); // (N, 3, 2, 2)
    let y = g.dense("fc", j, FullyConnected::new(12, 5)).unwrap(); // image form -> (N, 5, 1, 1)
    let y = g.flatten("flat", y).unwrap();
    let s = g.unary("sq", UnaryOp::Square, y).unwrap();
    let loss = g.sum("loss", s, 1).unwrap();
    (g, loss)
}

#[test]
fn cnn_cpu_autograd_matches_finite_differences() {
    let (mut g, loss) = cnn(2);
    let tr = g.training(loss).unwrap();
    let f = feeds(&g, 11);
    assert_autograd_matches_fd(&g, loss, &tr, &f, 1e-5);
}

#[test]
fn compiled_cnn_matches_reference() {
    each_device("cnn graph", |dev| {
        let (mut g, loss) = cnn(3);
        let tr = g.training(loss).unwrap();
        let s = assert_compiled_matches_reference(dev, &g, loss, &tr, &feeds(&g, 12), 2e-4);
        assert!(s.arena_bytes < s.naive_bytes);
    });
}

/// Batch norm, dropout, a channel concat, softmax cross-entropy with class-index labels.
fn cnn_with_states(batch: usize) -> (Graph, Value) {
    use wgtrain::ops::conv::{Conv2d, Padding};
    use wgtrain::ops::dense::FullyConnected;
    use wgtrain::ops::dropout::Dropout;
    use wgtrain::ops::loss::{Loss, LossKind, Reduction};
    use wgtrain::ops::norm::BatchNorm;
    use wgtrain::ops::shape::Concat;
    let mut g = Graph::new();
    let x = g.input("image", &[batch, 3, 6, 6]).unwrap();
    let labels = g.input_u32("labels", &[batch]).unwrap();
    let mut c = Conv2d::new(3, 4, (3, 3));
    c.padding = Padding::Same;
    let a = g.conv2d("conv_a", x, c).unwrap();
    let a = g.batch_norm("bn", a, BatchNorm::default()).unwrap();
    let a = g.unary("relu", UnaryOp::Relu, a).unwrap();
    let b = g.conv2d("conv_b", x, Conv2d::new(3, 2, (1, 1))).unwrap();
    let j = g.concat("cat", &[a, b], Concat { axis: 1 }).unwrap(); // (N, 6, 6, 6)
    let j = g
        .dropout("drop", j, Dropout::new(0.3, 42).unwrap())
        .unwrap();
    let y = g.dense("fc", j, FullyConnected::new(216, 5)).unwrap();
    let y = g.flatten("logits", y).unwrap();
    let kind = LossKind::SoftmaxCrossEntropy {
        label_smoothing: 0.1,
        class_weights: None,
    };
    let loss = g
        .loss(
            "loss",
            y,
            labels,
            None,
            Loss {
                kind,
                reduction: Reduction::Mean,
            },
        )
        .unwrap();
    (g, loss)
}

fn state_feeds(g: &Graph, batch: usize, seed: u64) -> HashMap<String, Array> {
    let mut f = feeds(g, seed);
    f.insert(
        "labels".into(),
        Array::new(
            &[batch],
            (0..batch).map(|i| ((i * 3 + 1) % 5) as f64).collect(),
        ),
    );
    let v = f["bn.running_var"]
        .data
        .iter()
        .map(|v| v.abs() + 0.5)
        .collect();
    f.insert("bn.running_var".into(), Array::new(&[4], v));
    f
}

#[test]
fn states_concat_and_loss_cpu_autograd_matches_finite_differences() {
    let (mut g, loss) = cnn_with_states(3);
    let tr = g.training(loss).unwrap();
    let f = state_feeds(&g, 3, 21);
    assert_autograd_matches_fd(&g, loss, &tr, &f, 1e-5);
}

#[test]
fn compiled_states_concat_and_loss_match_reference() {
    each_device("states graph", |dev| {
        let batch = 4;
        let (mut g, loss) = cnn_with_states(batch);
        let tr = g.training(loss).unwrap();
        let per_sample = Value {
            node: loss.node,
            port: 1,
        };
        let mut outs = vec![loss, per_sample];
        outs.extend(&tr.grads);
        let c = g.compile(dev, &outs, &Options::default()).unwrap();
        let f = state_feeds(&g, batch, 22);
        for (name, a) in &f {
            if name == "labels" {
                c.set_u32(name, &a.data.iter().map(|&v| v as u32).collect::<Vec<_>>())
                    .unwrap();
            } else {
                c.set(name, &a.to_f32()).unwrap();
            }
        }
        c.step().unwrap(); // step 0: the same dropout mask as the reference
        let want = g.eval_reference(&f, &outs).unwrap();
        for (v, w) in outs.iter().zip(&want) {
            assert_close(
                &g.node(*v).unwrap().name,
                &c.read(*v).unwrap(),
                &w.data,
                2e-4,
                2e-4,
            );
        }
        // The running statistics moved; the next step draws a new dropout mask.
        let rm = c.read(g.find("bn.running_mean").unwrap()).unwrap();
        assert!(
            rm.iter()
                .zip(&f["bn.running_mean"].data)
                .any(|(a, b)| (*a as f64 - b).abs() > 1e-4)
        );
        let before = c.read(per_sample).unwrap();
        c.step().unwrap();
        assert_ne!(
            c.read(per_sample).unwrap(),
            before,
            "dropout mask did not change between steps"
        );
        // Inference twin: dropout off, running statistics, shared weights.
        let gi = g.for_inference();
        let ci = gi
            .compile(
                dev,
                &[loss],
                &Options {
                    share: Some(&c),
                    ..Options::default()
                },
            )
            .unwrap();
        ci.set("image", &f["image"].to_f32()).unwrap();
        ci.set_u32(
            "labels",
            &f["labels"]
                .data
                .iter()
                .map(|&v| v as u32)
                .collect::<Vec<_>>(),
        )
        .unwrap();
        ci.step().unwrap();
        let mut fi = f.clone();
        for name in ["bn.running_mean", "bn.running_var"] {
            let v = c.read(g.find(name).unwrap()).unwrap();
            fi.insert(name.into(), Array::from_f32(&[4], &v));
        }
        for p in &tr.params {
            let n = g.node(*p).unwrap().name.clone();
            fi.insert(
                n.clone(),
                Array::from_f32(g.shape(*p).unwrap(), &c.read(*p).unwrap()),
            );
        }
        let wi = gi.eval_reference(&fi, &[loss]).unwrap();
        assert_close(
            "inference loss",
            &ci.read(loss).unwrap(),
            &wi[0].data,
            2e-4,
            2e-4,
        );
    });
}

#[test]
fn training_compile_places_params_and_grads_in_flat_arenas() {
    each_device("param arena", |dev| {
        let (mut g, loss) = cnn(2);
        let tr = g.training(loss).unwrap();
        let opts = wgtrain::compile::Options {
            training: Some(&tr),
            gradients_only: true,
            ..Default::default()
        };
        let c = g.compile(dev, &[loss], &opts).unwrap();
        let f = feeds(&g, 13);
        for (name, a) in &f {
            c.set(name, &a.to_f32()).unwrap();
        }
        c.step().unwrap();
        let arena = c.param_arena().unwrap();
        assert_eq!(arena.layout.entries().len(), tr.params.len());
        let flat_p = arena.params.to_f32().unwrap();
        let flat_g = arena.grads.to_f32().unwrap();
        let want = g.eval_reference(&f, &tr.grads).unwrap();
        for (k, e) in arena.layout.entries().iter().enumerate() {
            let n: usize = e.shape.iter().product();
            assert_eq!(
                &flat_p[e.offset..e.offset + n],
                &f[&e.name].to_f32()[..],
                "{} in the param arena",
                e.name
            );
            assert_close(
                &e.name,
                &flat_g[e.offset..e.offset + n],
                &want[k].data,
                2e-4,
                2e-4,
            );
        }
    });
}

#[test]
fn concat_producers_write_into_their_slice_when_contiguous() {
    use wgtrain::ops::shape::Concat;
    each_device("concat elision", |dev| {
        let align = dev.caps().storage_offset_alignment as usize / 4; // floats per aligned offset
        let mut g = Graph::new();
        let x = g.input("x", &[1, align]).unwrap();
        let w = g.param("w", &[align, align]).unwrap();
        let h = g.matmul("h", x, w).unwrap();
        let a = g.unary("a", UnaryOp::Tanh, h).unwrap();
        let b = g.unary("b", UnaryOp::Sigmoid, h).unwrap();
        let c = g.unary("c", UnaryOp::Exp, h).unwrap();
        // (1, 3·align): leading dim 1, so each slice is contiguous and aligned.
        let cat = g.concat("cat", &[a, b, c], Concat { axis: 1 }).unwrap();
        let y = g.unary("y", UnaryOp::Square, cat).unwrap();
        let loss = g.sum("loss", y, 1).unwrap();
        let tr = g.training(loss).unwrap();
        let outs = [loss, tr.grads[0]];
        let f = feeds(&g, 31);
        let run = |fuse: bool| {
            let opts = wgtrain::compile::Options {
                fuse,
                ..Default::default()
            };
            run_with(dev, &g, &outs, &opts, &f, 1)
        };
        let ((elided, se), (copied, sc)) = (run(true), run(false));
        let want = g.eval_reference(&f, &outs).unwrap();
        for k in 0..outs.len() {
            assert_close("elided", &elided[k], &want[k].data, 1e-4, 1e-4);
            assert_close("copied", &copied[k], &want[k].data, 1e-4, 1e-4);
        }
        assert!(
            se.dispatches_per_step < sc.dispatches_per_step,
            "{se:?} vs {sc:?}"
        );
    });
}

#[test]
fn just_in_time_weights_bound_peak_weight_memory_by_the_largest_layer() {
    use wgtrain::ops::dense::FullyConnected;
    each_device("jit residency", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[4, 96]).unwrap();
        let h = g.dense("fc1", x, FullyConnected::new(96, 160)).unwrap();
        let h = g.unary("r1", UnaryOp::Relu, h).unwrap();
        let h = g.dense("fc2", h, FullyConnected::new(160, 160)).unwrap();
        let h = g.unary("r2", UnaryOp::Relu, h).unwrap();
        let y = g.dense("fc3", h, FullyConnected::new(160, 33)).unwrap();
        let f = feeds(&g, 61);
        let run = |jit: bool| {
            let opts = wgtrain::compile::Options {
                residency: if jit {
                    Residency::JustInTime
                } else {
                    Residency::Resident
                },
                ..Default::default()
            };
            let (o, st) = run_with(dev, &g, &[y], &opts, &f, 2);
            (o[0].clone(), st)
        };
        let ((jit, sj), (resident, sr)) = (run(true), run(false));
        assert_eq!(jit, resident, "the same kernels on the same weights");
        let want = g.eval_reference(&f, &[y]).unwrap();
        assert_close("jit", &jit, &want[0].data, 2e-4, 2e-4);
        let largest = (160 * 160 * 4) as u64; // fc2.weight, plus its bias in the slot
        assert!(
            sj.weight_bytes < sr.weight_bytes && sj.weight_bytes >= largest,
            "{sj:?} vs {sr:?}"
        );
        assert_eq!((sj.submits_per_step, sr.submits_per_step), (3, 1));
        eprintln!(
            "weights on the GPU: resident {} B, just-in-time {} B",
            sr.weight_bytes, sj.weight_bytes
        );
        // Errors: a weight never set; a just-in-time training graph stepped without an optimizer.
        let c = g
            .compile(
                dev,
                &[y],
                &wgtrain::compile::Options {
                    residency: Residency::JustInTime,
                    ..Default::default()
                },
            )
            .unwrap();
        c.set("x", &f["x"].to_f32()).unwrap();
        assert!(
            c.step()
                .unwrap_err()
                .to_string()
                .contains("never initialised")
        );
        let mut gt = g.clone();
        let s = gt.sum("s", y, 1).unwrap();
        let tr = gt.training(s).unwrap();
        let opts = wgtrain::compile::Options {
            residency: Residency::JustInTime,
            training: Some(&tr),
            ..Default::default()
        };
        let c = gt.compile(dev, &[s], &opts).unwrap();
        for (name, a) in &f {
            c.set(name, &a.to_f32()).unwrap();
        }
        let e = c.step().unwrap_err().to_string();
        assert!(e.contains("attach an optimizer"), "{e}");
    });
}
