//! Neurons fused into their producers — a norm, a GEMM's epilogue, a training graph's forward
//! and backward — against the unfused plan and the CPU reference, with the dispatches saved.

mod common;

use common::graph_run::{
    assert_autograd_matches_fd, assert_compiled_matches_reference, feeds, run_with,
};
use common::{assert_close, each_device};
use wgtrain::graph::{Graph, Value};
use wgtrain::ops::elementwise::{BinaryOp, UnaryOp};
use wgtrain::reference::Array;

#[test]
fn batch_norm_and_relu_fuse_at_inference() {
    use wgtrain::ops::norm::{BatchNorm, GroupNorm};
    each_device("norm fusion", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[3, 4, 5, 5]).unwrap();
        let y = g.batch_norm("bn", x, BatchNorm::default()).unwrap();
        let y = g.unary("relu", UnaryOp::Relu, y).unwrap();
        let y = g
            .group_norm("gn", y, GroupNorm::new(2, 1e-5).unwrap())
            .unwrap();
        let y = g
            .unary("act", UnaryOp::LeakyRelu { alpha: 0.1 }, y)
            .unwrap();
        let out = g.sum("out", y, 1).unwrap();
        let gi = g.for_inference();
        let mut f = feeds(&gi, 41);
        let rv = f["bn.running_var"]
            .data
            .iter()
            .map(|v| v.abs() + 0.5)
            .collect();
        f.insert("bn.running_var".into(), Array::new(&[4], rv));
        let run = |fuse: bool| {
            let opts = wgtrain::compile::Options {
                fuse,
                ..Default::default()
            };
            let (o, st) = run_with(dev, &gi, &[out], &opts, &f, 1);
            (o[0].clone(), st.dispatches_per_step)
        };
        let ((fused, df), (plain, dp)) = (run(true), run(false));
        let want = gi.eval_reference(&f, &[out]).unwrap();
        assert_close("fused", &fused, &want[0].data, 1e-4, 1e-4);
        assert_close("plain", &plain, &want[0].data, 1e-4, 1e-4);
        assert_eq!(dp - df, 2, "both neurons should fold into their norms");
    });
}

#[test]
fn conv_and_dense_take_their_neuron_in_the_gemm_epilogue() {
    use wgtrain::ops::conv::{Conv2d, ConvTranspose2d, Padding};
    use wgtrain::ops::dense::FullyConnected;
    each_device("gemm epilogue fusion", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[2, 3, 7, 7]).unwrap();
        let mut c = Conv2d::new(3, 5, (3, 3));
        c.padding = Padding::Same;
        let y = g.conv2d("conv", x, c).unwrap();
        let y = g.unary("relu", UnaryOp::Relu, y).unwrap();
        let t = g
            .conv(
                "convt",
                y,
                wgtrain::ops::conv::ConvKind::T2(ConvTranspose2d::new(5, 2, (2, 2))),
            )
            .unwrap();
        let t = g.unary("tanh", UnaryOp::Tanh, t).unwrap();
        let d = g.dense("fc", t, FullyConnected::new(2 * 8 * 8, 6)).unwrap();
        let d = g.unary("elu", UnaryOp::Elu { alpha: 0.7 }, d).unwrap();
        let out = g.flatten("out", d).unwrap();
        let f = feeds(&g, 51);
        let run = |fuse: bool| {
            let opts = wgtrain::compile::Options {
                fuse,
                ..Default::default()
            };
            let (o, st) = run_with(dev, &g, &[out], &opts, &f, 1);
            (o[0].clone(), st.dispatches_per_step)
        };
        let ((fused, df), (plain, dp)) = (run(true), run(false));
        let want = g.eval_reference(&f, &[out]).unwrap();
        assert_close("fused", &fused, &want[0].data, 2e-4, 2e-4);
        assert_close("plain", &plain, &want[0].data, 2e-4, 2e-4);
        assert_eq!(
            dp - df,
            3,
            "relu, tanh and elu should run in their producers' epilogues"
        );
    });
}

/// conv + bias + `conv_act`, batch norm (batch statistics) + leaky ReLU, group norm + tanh, FC,
/// bias add + sigmoid: a training graph whose neurons all have a producer to fuse into.
fn fusable_training_graph(conv_act: UnaryOp) -> (Graph, Value, [Value; 4]) {
    use wgtrain::ops::conv::{Conv2d, Padding};
    use wgtrain::ops::{dense::FullyConnected, norm::BatchNorm, norm::GroupNorm};
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3, 6, 6]).unwrap();
    let mut c = Conv2d::new(3, 4, (3, 3));
    c.padding = Padding::Same;
    let h = g.conv2d("conv", x, c).unwrap();
    let a1 = g.unary("conv_act", conv_act, h).unwrap();
    let h = g.batch_norm("bn", a1, BatchNorm::default()).unwrap();
    let a2 = g
        .unary("bn_act", UnaryOp::LeakyRelu { alpha: 0.1 }, h)
        .unwrap();
    let h = g
        .group_norm("gn", a2, GroupNorm::new(2, 1e-5).unwrap())
        .unwrap();
    let a3 = g.unary("gn_act", UnaryOp::Tanh, h).unwrap();
    let h = g.dense("fc", a3, FullyConnected::new(144, 5)).unwrap();
    let h = g.flatten("flat", h).unwrap();
    let b = g.param("b", &[5]).unwrap();
    let h = g.binary("bias", BinaryOp::Add, h, b).unwrap();
    let a4 = g.unary("sig", UnaryOp::Sigmoid, h).unwrap();
    let s = g.unary("sq", UnaryOp::Square, a4).unwrap();
    let loss = g.sum("loss", s, 1).unwrap();
    (g, loss, [a1, a2, a3, a4])
}

#[test]
fn training_graphs_fuse_neurons_whose_gradient_reads_the_output() {
    let (mut g, loss, acts) = fusable_training_graph(UnaryOp::Relu);
    let tr = g.training(loss).unwrap();
    let mut f = feeds(&g, 71);
    let rv = f["bn.running_var"].data.iter().map(|v| v.abs() + 0.5);
    f.insert("bn.running_var".into(), Array::new(&[4], rv.collect()));
    assert_autograd_matches_fd(&g, loss, &tr, &f, 1e-5);
    let mut outs = vec![loss];
    outs.extend(&tr.grads);
    let live = vec![true; g.nodes.len()];
    let fusion = wgtrain::compile::fusion::fuse(&g, &live, &outs);
    for a in acts {
        assert!(
            fusion.absorbed[a.node],
            "{} was not fused",
            g.node(a).unwrap().name
        );
    }
    // With an x-based gradient (softplus) the conv output has two readers: that neuron stays.
    let (mut gs, ls, acts_s) = fusable_training_graph(UnaryOp::Softplus);
    let trs = gs.training(ls).unwrap();
    let mut outs_s = vec![ls];
    outs_s.extend(&trs.grads);
    let fs = wgtrain::compile::fusion::fuse(&gs, &vec![true; gs.nodes.len()], &outs_s);
    assert!(!fs.absorbed[acts_s[0].node] && fs.absorbed[acts_s[1].node]);
    each_device("training fusion", |dev| {
        let s = assert_compiled_matches_reference(dev, &g, loss, &tr, &f, 2e-4);
        let opts = wgtrain::compile::Options {
            fuse: false,
            ..Default::default()
        };
        let (plain, sp) = run_with(dev, &g, &outs, &opts, &f, 1);
        let want = g.eval_reference(&f, &outs).unwrap();
        for (k, w) in want.iter().enumerate() {
            assert_close("unfused", &plain[k], &w.data, 2e-4, 2e-4);
        }
        // And backward, the ReLU's and the leaky ReLU's gradients read by the batch and group
        // norms' backward as their dy are applied there (`fusion.rs`).
        assert_eq!(
            sp.dispatches_per_step - s.dispatches_per_step,
            6,
            "conv + relu, bn + leaky relu, gn + tanh, bias + sigmoid, 2 gradients: {s:?} vs {sp:?}"
        );
        // Fewer intermediates; the first-fit arena itself is not monotone (here +128 B).
        assert!(s.naive_bytes < sp.naive_bytes, "{s:?} vs {sp:?}");
    });
}

/// Two conv → batch norm → ReLU branches concatenated on channels, then a conv: each branch's
/// ReLU gradient folds into the concat's backward (`fusion.rs`), which reads the mask from the
/// concat's output, so no gradient reads a branch's own output and it dies at the concat
/// (Inception's branch ends). With `twice`, one branch is concatenated twice: its gradient is a
/// sum of two windows, and nothing folds.
fn concat_of_branches(twice: bool) -> (Graph, Value, [Value; 2]) {
    use wgtrain::ops::conv::{Conv2d, Padding};
    use wgtrain::ops::norm::BatchNorm;
    use wgtrain::ops::shape::Concat;
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3, 5, 7]).unwrap();
    let mut ends = Vec::new();
    for (name, cout, k) in [("a", 4, 3), ("b", 3, 1)] {
        let mut c = Conv2d::new(3, cout, (k, k));
        c.padding = Padding::Same;
        let h = g.conv2d(&format!("{name}.conv"), x, c).unwrap();
        let bn = BatchNorm::default();
        let h = g.batch_norm(&format!("{name}.bn"), h, bn).unwrap();
        ends.push(g.unary(&format!("{name}.relu"), UnaryOp::Relu, h).unwrap());
    }
    let mut parts = ends.clone();
    if twice {
        parts.push(ends[0]);
    }
    let cat = g.concat("cat", &parts, Concat::CHANNELS).unwrap();
    let cin = if twice { 11 } else { 7 };
    let h = g.conv2d("head", cat, Conv2d::new(cin, 2, (2, 3))).unwrap();
    let s = g.unary("sq", UnaryOp::Square, h).unwrap();
    let loss = g.sum("loss", s, 1).unwrap();
    (g, loss, [ends[0], ends[1]])
}

#[test]
fn a_concats_backward_applies_its_inputs_relu_gradients_from_its_output() {
    use wgtrain::ops::shape::ShapeOp;
    for twice in [false, true] {
        let (mut g, loss, ends) = concat_of_branches(twice);
        let tr = g.training(loss).unwrap();
        let mut f = feeds(&g, 83);
        for bn in ["a.bn", "b.bn"] {
            let name = format!("{bn}.running_var");
            let rv = f[&name].data.iter().map(|v| v.abs() + 0.5).collect();
            let n = f[&name].data.len();
            f.insert(name, Array::new(&[n], rv));
        }
        let mut outs = vec![loss];
        outs.extend(&tr.grads);
        let fusion = wgtrain::compile::fusion::fuse(&g, &vec![true; g.nodes.len()], &outs);
        let cat = Value {
            node: g.nodes.iter().position(|n| n.name == "cat").unwrap(),
            port: 0,
        };
        let folded: Vec<usize> = (0..g.nodes.len())
            .filter(|&i| {
                matches!(
                    g.nodes[i].op.downcast::<ShapeOp>(),
                    Some(ShapeOp::ConcatGrad { .. })
                ) && fusion.grad_neurons.get(&i).map(|&(_, y)| y) == Some(cat)
            })
            .collect();
        // Branch b (once in the concat) folds; a folds only when it is there once.
        assert_eq!(folded.len(), if twice { 1 } else { 2 }, "{fusion:?}");
        for (k, end) in ends.iter().enumerate() {
            let read_by_a_gradient = g.nodes.iter().enumerate().any(|(i, n)| {
                n.name.starts_with("grad")
                    && !fusion.absorbed[i]
                    && fusion.reads(&g, i).any(|u| u == *end)
            });
            let once = k == 1 || !twice;
            assert_eq!(read_by_a_gradient, !once, "branch {k}, twice = {twice}");
        }
        each_device("concat backward with the ReLU gradient", |dev| {
            assert_compiled_matches_reference(dev, &g, loss, &tr, &f, 2e-4);
            if dev.caps().shader_f16 {
                // The f16 variant of the folded copy: within f16's rounding of the reference.
                let opts = wgtrain::compile::Options {
                    training: Some(&tr),
                    precision: wgtrain::compile::Precision::F16,
                    gradients_only: true,
                    ..Default::default()
                };
                let (got, _) = run_with(dev, &g, &tr.grads, &opts, &f, 1);
                let want = g.eval_reference(&f, &tr.grads).unwrap();
                // One scale for all: a conv bias before a batch norm has a zero gradient, which
                // f16 rounding of the others leaves a little off zero.
                let scale =
                    (want.iter().flat_map(|w| &w.data)).fold(0f64, |m, x| m.max(x.abs())) as f32;
                assert!(scale > 1e-2, "{scale}");
                for ((v, got), w) in tr.grads.iter().zip(&got).zip(&want) {
                    let name = &g.node(*v).unwrap().name;
                    for (a, b) in got.iter().zip(&w.data) {
                        assert!((a - *b as f32).abs() <= 1e-2 * scale, "{name}: {a} vs {b}");
                    }
                }
            }
        });
    }
}
