//! Dispatches that do no real work, cut from training steps (issue 13): the gradient of a sum's
//! operand that was not broadcast is a view of dy; the backward seed is a constant filled once;
//! a neuron's gradient from its output folds into the max-pool or dropout backward producing
//! its dy. Each cut against the CPU reference on awkward shapes (batches 1 and 7, 33 features,
//! odd spatial sizes), against the uncut plan (`Options::fuse` off) bit for bit where it has
//! one, with the dispatches it saved — and the graphs where a cut must not apply (a broadcast
//! sum, a negated operand, a neuron's output read by two ops, a derivative from the input).

mod common;

use std::collections::HashMap;
use wgtrain::launch::{GemmLoop, with_gemm_loop};

use common::{assert_close, each_device};
use wgtrain::compile::{Options, Precision};
use wgtrain::graph::{Graph, Op, Value};
use wgtrain::ops::conv::{Conv2d, Padding};
use wgtrain::ops::dropout::Dropout;
use wgtrain::ops::elementwise::{BinaryOp, UnaryOp};
use wgtrain::ops::loss::{Loss, LossKind};
use wgtrain::ops::pool::Pool2d;
use wgtrain::ops::shape::{Pad, PadMode};
use wgtrain::reference::Array;
use wgtrain::{DType, Device};

/// Every f32 input and parameter of `g`, seeded, rounded to f32.
fn feeds(g: &Graph) -> HashMap<String, Array> {
    let mut f = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if matches!(n.op, Op::Input | Op::Param) && n.outputs[0].1 == DType::F32 {
            let a = Array::seeded(&n.outputs[0].0, 5 + i as u64);
            f.insert(n.name.clone(), Array::from_f32(&a.shape, &a.to_f32()));
        }
    }
    f
}

/// A compiled training graph's loss and gradients after `steps` steps, and its dispatches.
struct Run {
    values: Vec<Vec<f32>>,
    dispatches: Vec<(String, &'static str)>,
}

impl Run {
    /// Dispatches of node `name`.
    fn of(&self, name: &str) -> Vec<&'static str> {
        (self.dispatches.iter())
            .filter(|(n, _)| n == name)
            .map(|(_, k)| *k)
            .collect()
    }

    /// Dispatches running `kernel`.
    fn running(&self, kernel: &str) -> usize {
        self.dispatches.iter().filter(|(_, k)| *k == kernel).count()
    }
}

/// The loss of `g` and the gradient of every parameter: `[loss, grads...]`.
fn training(g: &mut Graph, loss: Value) -> (wgtrain::autograd::Training, Vec<Value>) {
    let tr = g.training(loss).unwrap();
    let mut outs = vec![loss];
    outs.extend(&tr.grads);
    (tr, outs)
}

/// Compiles `g` for `outs` (training `tr`, gradients only), feeds it and runs `steps` steps.
fn run(
    dev: &Device,
    g: &Graph,
    outs: &[Value],
    tr: &wgtrain::autograd::Training,
    fuse: bool,
    precision: Precision,
    steps: usize,
) -> Run {
    let opts = Options {
        training: Some(tr),
        gradients_only: true,
        fuse,
        precision,
        ..Options::default()
    };
    let c = g.compile(dev, outs, &opts).unwrap();
    for (k, a) in feeds(g) {
        c.set(&k, &a.to_f32()).unwrap();
    }
    for _ in 0..steps {
        c.step().unwrap();
    }
    Run {
        values: outs.iter().map(|&v| c.read(v).unwrap()).collect(),
        dispatches: c.dispatches(),
    }
}

/// `run`'s values against the f64 reference (f32 tolerance, or f16's for mixed precision).
fn check_reference(what: &str, g: &Graph, outs: &[Value], got: &Run, f16: bool) {
    let want = g.eval_reference(&feeds(g), outs).unwrap();
    // f16: its rule (4·ε_f16·√n) for the longest sum here, a weight gradient over 7·9·11
    // positions; the per-op f16 checks are tighter (`tests/conformance.rs`).
    let tol = if f16 {
        wgtrain::reference::f16_tol(7 * 9 * 11)
    } else {
        2e-5
    };
    for (k, (a, w)) in got.values.iter().zip(&want).enumerate() {
        let scale = w.data.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(
            scale > 1e-6,
            "{what}: output {k} is ~0, the check would see nothing"
        );
        let name = &g.nodes[outs[k].node].name;
        assert_close(&format!("{what}: {name}"), a, &w.data, tol * scale, tol);
    }
}

fn bits(v: &[Vec<f32>]) -> Vec<Vec<u32>> {
    v.iter()
        .map(|x| x.iter().map(|f| f.to_bits()).collect())
        .collect()
}

/// Sums and differences of every kind: operands of the sum's shape (the gradient is a view),
/// broadcast ones (reduced: a dispatch) and a negated one (a dispatch); two parameters whose
/// gradients are views of one dy (each gets its own slot of the gradient arena).
fn sums(batch: usize) -> (Graph, Value) {
    let mut g = Graph::new();
    let x = g.input("x", &[batch, 33]).unwrap();
    let target = g.input("target", &[batch, 33]).unwrap();
    let p1 = g.param("p1", &[batch, 33]).unwrap();
    let p2 = g.param("p2", &[batch, 33]).unwrap();
    let q = g.param("q", &[33]).unwrap();
    let b = g.param("b", &[1]).unwrap();
    let r = g.param("r", &[batch, 33]).unwrap();
    let a = g.binary("a", BinaryOp::Add, p1, p2).unwrap();
    let s1 = g.binary("s1", BinaryOp::Add, x, a).unwrap();
    let s2 = g.binary("s2", BinaryOp::Sub, s1, q).unwrap();
    let t = g.unary("t", UnaryOp::Tanh, s2).unwrap();
    let u = g.binary("u", BinaryOp::Add, t, b).unwrap();
    let d = g.binary("d", BinaryOp::Sub, u, r).unwrap();
    let loss = g
        .loss(
            "loss",
            d,
            target,
            None,
            Loss::mean(LossKind::MeanSquaredError),
        )
        .unwrap();
    (g, loss)
}

#[test]
fn a_sums_gradient_is_a_view_of_dy_unless_the_operand_was_broadcast_or_negated() {
    for batch in [1, 7] {
        let (mut g, loss) = sums(batch);
        let (tr, outs) = training(&mut g, loss);
        each_device("sum gradients as views", |dev| {
            // Three steps: the seed and every gradient slot must survive being replayed.
            let got = run(dev, &g, &outs, &tr, true, Precision::F32, 3);
            check_reference(&format!("sums, batch {batch}"), &g, &outs, &got, false);
            for view in [
                "grad/a/d0",
                "grad/a/d1",
                "grad/s1/d1",
                "grad/s2/d0",
                "grad/u/d0",
            ] {
                assert_eq!(
                    got.of(view),
                    Vec::<&str>::new(),
                    "{view}: a view launches nothing"
                );
            }
            // The seed is filled once: no dispatch of its own.
            assert_eq!(got.of("grad/loss"), Vec::<&str>::new(), "the seed");
            // At batch 1, q [33] is not broadcast along any axis of size > 1 but still has
            // fewer axes, and b [1] is broadcast: both reduce, as does the negated r.
            for kept in ["grad/s2/d1", "grad/u/d1", "grad/d/d1"] {
                assert_eq!(got.of(kept), vec!["binary_grad"], "{kept}");
            }
            // p1's and p2's gradients are both dy of the sum `a`: the second is copied into
            // its own slot of the gradient arena.
            assert_eq!(got.of("grad/a/d1/copy"), vec!["unary_forward"]);
            assert_eq!(got.running("unary_forward"), 1, "{:?}", got.dispatches);
        });
    }
}

#[test]
fn the_backward_seed_is_never_written_over_by_a_sum_in_place() {
    // loss + loss: the loss's gradient is the sum of two views of the seed, which the sums
    // pass would write over if the seed lived in the arena — doubling it every step.
    let mut g = Graph::new();
    let x = g.input("x", &[7, 33]).unwrap();
    let target = g.input("target", &[7, 5]).unwrap();
    let h = g.linear("fc", x, 5).unwrap();
    let h = g.flatten("h", h).unwrap();
    let l = g
        .loss("l", h, target, None, Loss::mean(LossKind::MeanSquaredError))
        .unwrap();
    let loss = g.binary("twice", BinaryOp::Add, l, l).unwrap();
    let (tr, outs) = training(&mut g, loss);
    let seed = g.find("grad/twice").expect("the seed node");
    each_device("the seed is never written over", |dev| {
        let opts = Options {
            training: Some(&tr),
            gradients_only: true,
            ..Options::default()
        };
        let mut read = outs.clone();
        read.push(seed);
        let c = g.compile(dev, &read, &opts).unwrap();
        for (k, a) in feeds(&g) {
            c.set(&k, &a.to_f32()).unwrap();
        }
        let want = g.eval_reference(&feeds(&g), &outs).unwrap();
        for step in 0..3 {
            c.step().unwrap();
            assert_eq!(c.read(seed).unwrap(), vec![1.0], "step {step}: the seed");
            for (v, w) in outs.iter().zip(&want) {
                let what = format!("step {step}: {}", g.nodes[v.node].name);
                assert_close(&what, &c.read(*v).unwrap(), &w.data, 1e-5, 1e-4);
            }
        }
        let kernels: Vec<_> = c
            .dispatches()
            .into_iter()
            .filter(|(n, _)| n == "grad/twice")
            .collect();
        assert!(kernels.is_empty(), "the seed launched {kernels:?}");
    });
}

/// conv → `neuron` → max pool (odd sizes: the last row and column are in no window) → fully
/// connected → MSE. With `second_reader`, the neuron's output also feeds a global average
/// added to the loss, so its gradient is a sum of two and cannot fold into the pool's.
fn conv_neuron_pool(batch: usize, neuron: UnaryOp, second_reader: bool) -> (Graph, Value) {
    let pool = Pool2d::max((2, 2), (2, 2));
    conv_neuron_pool_with(batch, neuron, second_reader, pool)
}

/// `conv_neuron_pool` with another max pooling (output shapes of 9×11 inputs: 4×5 for 2×2
/// stride 2; 5×6 for 3×3 stride 2 padded 1, overlapping windows).
fn conv_neuron_pool_with(
    batch: usize,
    neuron: UnaryOp,
    second_reader: bool,
    pool: Pool2d,
) -> (Graph, Value) {
    let mut g = Graph::new();
    let x = g.input("x", &[batch, 2, 9, 11]).unwrap();
    let target = g.input("target", &[batch, 3]).unwrap();
    let mut c = Conv2d::new(2, 5, (3, 3));
    c.padding = Padding::Same;
    let h = g.conv2d("conv", x, c).unwrap();
    let y = g.unary("neuron", neuron, h).unwrap();
    let p = g.pool("pool", y, pool).unwrap();
    let mut out = g.linear("fc", p, 3).unwrap();
    if second_reader {
        let avg = g.global_avg_pool("avg", y).unwrap();
        let avg = g.linear("fc_avg", avg, 3).unwrap();
        out = g.binary("both", BinaryOp::Add, out, avg).unwrap();
    }
    let out = g.flatten("out", out).unwrap();
    let loss = g
        .loss(
            "loss",
            out,
            target,
            None,
            Loss::mean(LossKind::MeanSquaredError),
        )
        .unwrap();
    (g, loss)
}

/// fully connected (33) → `neuron` → dropout → fully connected → MSE.
fn fc_neuron_dropout(batch: usize, neuron: UnaryOp) -> (Graph, Value) {
    let mut g = Graph::new();
    let x = g.input("x", &[batch, 7]).unwrap();
    let target = g.input("target", &[batch, 3]).unwrap();
    let h = g.linear("fc1", x, 33).unwrap();
    let y = g.unary("neuron", neuron, h).unwrap();
    let d = g
        .dropout("dropout", y, Dropout::new(0.25, 9).unwrap())
        .unwrap();
    let out = g.linear("fc2", d, 3).unwrap();
    let out = g.flatten("out", out).unwrap();
    let loss = g
        .loss(
            "loss",
            out,
            target,
            None,
            Loss::mean(LossKind::MeanSquaredError),
        )
        .unwrap();
    (g, loss)
}

/// Compiles the graph fused and unfused: equal bit for bit (a neuron derivative from y times
/// the same f32 dx, in one dispatch or two), both match the reference; fused, the
/// `backward` kernel of `grad_node` became `folded` and the neuron's gradient launches nothing.
fn check_fold(what: &str, g: &Graph, loss: Value, grad_node: &str, folded: &str, unfolded: &str) {
    let mut g = g.clone();
    let (tr, outs) = training(&mut g, loss);
    each_device(what, |dev| {
        let on = run(dev, &g, &outs, &tr, true, Precision::F32, 1);
        let off = run(dev, &g, &outs, &tr, false, Precision::F32, 1);
        check_reference(what, &g, &outs, &on, false);
        assert_eq!(bits(&on.values), bits(&off.values), "{what}: folded vs not");
        assert_eq!(on.of(grad_node), vec![folded], "{what}");
        assert_eq!(off.of(grad_node), vec![unfolded], "{what}");
        assert_eq!(on.of("grad/neuron/d0"), Vec::<&str>::new(), "{what}");
        assert_eq!(
            off.of("grad/neuron/d0"),
            vec!["unary_backward_out"],
            "{what}"
        );
        assert!(on.dispatches.len() < off.dispatches.len(), "{what}");
        if dev.caps().shader_f16 {
            // Mixed precision folds too (y, dy and dx all f16), within f16's tolerance.
            let half = run(dev, &g, &outs, &tr, true, Precision::F16, 1);
            check_reference(&format!("{what} (f16)"), &g, &outs, &half, true);
            assert_eq!(
                half.running(folded),
                1,
                "{what} (f16): {:?}",
                half.dispatches
            );
            assert_eq!(half.running("unary_backward_out"), 0, "{what} (f16)");
        }
    });
}

#[test]
fn a_neurons_gradient_folds_into_the_max_pool_backward() {
    for batch in [1, 7] {
        for neuron in [
            UnaryOp::Relu,
            UnaryOp::Sigmoid,
            UnaryOp::LeakyRelu { alpha: 0.1 },
        ] {
            let overlapping = Pool2d::max((3, 3), (2, 2)).padding(Padding::symmetric(1));
            // 3×1/3 tiles the 9×11 image exactly: the per-window kernels.
            for (pool, kind, tiled) in [
                (Pool2d::max((2, 2), (2, 2)), "2×2/2", ""),
                (overlapping, "3×3/2 padded", ""),
                (Pool2d::max((3, 1), (3, 1)), "3×1/3", "_tiled"),
            ] {
                let (g, loss) = conv_neuron_pool_with(batch, neuron, false, pool);
                let what = format!("conv → {neuron:?} → max pool {kind}, batch {batch}");
                check_fold(
                    &what,
                    &g,
                    loss,
                    "grad/pool/d0",
                    &format!("max_backward_out{tiled}"),
                    &format!("max_backward{tiled}"),
                );
                // The derivative is read from the pool's output, so nothing in the backward
                // pass reads the neuron's output: it dies at the pool.
                let mut g = g.clone();
                let (_, outs) = training(&mut g, loss);
                let live = vec![true; g.nodes.len()];
                let fusion = wgtrain::compile::fusion::fuse(&g, &live, &outs);
                let node = |name: &str| g.nodes.iter().position(|n| n.name == name).unwrap();
                let pool_out = Value {
                    node: node("pool"),
                    port: 0,
                };
                let read = fusion.grad_neurons.get(&node("grad/pool/d0")).map(|r| r.1);
                assert_eq!(read, Some(pool_out), "{what}");
                let y = Value {
                    node: node("neuron"),
                    port: 0,
                };
                let late = (0..g.nodes.len())
                    .filter(|&i| g.nodes[i].name.starts_with("grad") && !fusion.absorbed[i])
                    .any(|i| fusion.reads(&g, i).any(|u| u == y));
                assert!(!late, "{what}: a gradient still reads the neuron's output");
            }
        }
    }
}

#[test]
fn a_neurons_gradient_folds_into_the_dropout_backward() {
    for batch in [1, 7] {
        for neuron in [UnaryOp::Relu, UnaryOp::Tanh] {
            let (g, loss) = fc_neuron_dropout(batch, neuron);
            let what = format!("fc → {neuron:?} → dropout, batch {batch}");
            check_fold(
                &what,
                &g,
                loss,
                "grad/dropout",
                "dropout_backward_out",
                "dropout_backward",
            );
        }
    }
}

#[test]
fn a_neurons_gradient_stays_apart_when_its_output_has_two_readers_or_needs_its_input() {
    let cases = [
        (
            "read twice",
            conv_neuron_pool(7, UnaryOp::Relu, true),
            "unary_backward_out",
        ),
        (
            "GELU",
            conv_neuron_pool(7, UnaryOp::Gelu, false),
            "unary_backward",
        ),
    ];
    for (what, (mut g, loss), neuron_grad) in cases {
        let (tr, outs) = training(&mut g, loss);
        each_device(what, |dev| {
            let got = run(dev, &g, &outs, &tr, true, Precision::F32, 1);
            check_reference(what, &g, &outs, &got, false);
            assert_eq!(got.of("grad/pool/d0"), vec!["max_backward"], "{what}");
            assert_eq!(got.of("grad/neuron/d0"), vec![neuron_grad], "{what}");
            assert_eq!(got.running("max_backward_out"), 0, "{what}");
        });
    }
    // A neuron whose derivative is read from its input (GELU) keeps its own gradient
    // dispatch after the dropout's too.
    let (mut g, loss) = fc_neuron_dropout(7, UnaryOp::Gelu);
    let (tr, outs) = training(&mut g, loss);
    each_device("dropout after GELU", |dev| {
        let got = run(dev, &g, &outs, &tr, true, Precision::F32, 1);
        check_reference("dropout after GELU", &g, &outs, &got, false);
        assert_eq!(got.of("grad/dropout"), vec!["dropout_backward"]);
    });
}

#[test]
fn operands_taken_for_their_shape_alone_can_be_written_over_by_a_sum() {
    // p = pad(conv(x)); q = p + bias (broadcast); z = p + r (r an input, never written over).
    // The bias gradient reduces dy, taking p and the bias for their shapes alone (and the
    // pad's gradient takes the conv's output so too): nothing reads p after z, which can
    // therefore write over it. Were p read by the bias gradient, z could not be in place.
    let mut g = Graph::new();
    let x = g.input("x", &[7, 2, 5, 5]).unwrap();
    let r = g.input("r", &[7, 3, 7, 7]).unwrap();
    let target = g.input("target", &[7, 3 * 7 * 7]).unwrap();
    let h = g.conv2d("conv", x, Conv2d::new(2, 3, (3, 3))).unwrap(); // (7, 3, 3, 3)
    let pad = Pad {
        before: vec![0, 0, 2, 2],
        after: vec![0, 0, 2, 2],
        mode: PadMode::Zero,
    };
    let p = g.pad("pad", h, pad).unwrap(); // (7, 3, 7, 7)
    let bias = g.param("bias", &[3, 1, 1]).unwrap();
    let q = g.binary("q", BinaryOp::Add, p, bias).unwrap();
    let z = g.binary("z", BinaryOp::Add, p, r).unwrap();
    let t = g.binary("t", BinaryOp::Mul, q, z).unwrap();
    let t = g.flatten("flat", t).unwrap();
    let loss = g
        .loss(
            "loss",
            t,
            target,
            None,
            Loss::mean(LossKind::MeanSquaredError),
        )
        .unwrap();
    let (tr, outs) = training(&mut g, loss);
    let opts = Options {
        training: Some(&tr),
        gradients_only: true,
        ..Options::default()
    };
    let plan = g.plan_arena(&outs, &opts, 256).unwrap();
    // z over p, and p's gradient (q's part plus z's) over one of its parts; were p read by
    // the bias gradient, only the second.
    assert_eq!(plan.sums_in_place, 2, "{plan:?}");
    each_device("a sum over a value read for its shape", |dev| {
        let got = run(dev, &g, &outs, &tr, true, Precision::F32, 2);
        check_reference("pad + bias", &g, &outs, &got, false);
        assert_eq!(got.of("grad/q/d1"), vec!["binary_grad"]);
    });
}

#[test]
fn the_mnist_step_launches_no_seed_and_no_separate_relu_gradient() {
    use wgtrain::ops::conv::winograd::{ConvAlgo, with_conv_algo};
    use wgtrain::optim::OptimizerConfig;
    use wgtrain::train::models::{MnistSize, mnist};
    use wgtrain::train::{TrainConfig, Trainer};
    each_device("the MNIST step's dispatches", |dev| {
        for size in [MnistSize::SMALL, MnistSize::MPS] {
            for precision in [Precision::F32, Precision::F16] {
                // `Auto` loops over conv1's taps on a GPU alone (`conv::short_k`); forced, on
                // any adapter.
                for algo in [ConvAlgo::Auto, ConvAlgo::ShortK] {
                    if precision == Precision::F16 && !dev.caps().shader_f16 {
                        continue;
                    }
                    let cfg = TrainConfig {
                        batch: 64,
                        progress: false,
                        precision,
                        ..TrainConfig::default()
                    };
                    let net = mnist(64, size, 1).unwrap();
                    // The split-K counts below are the tiled loop's (a CPU adapter's direct loop
                    // splits fewer GEMMs).
                    let t = with_conv_algo(algo, || {
                        with_gemm_loop(GemmLoop::Tiled, || {
                            Trainer::new(dev, net, OptimizerConfig::adam(1e-3), cfg).unwrap()
                        })
                    });
                    let d = t.compiled().dispatches();
                    let kernels: Vec<&str> = d.iter().map(|(_, k)| *k).collect();
                    // 42 and 45 before: the seed's fill, and ReLU's gradient after each max pool
                    // and after the dropout, each a dispatch of its own. In f16 an adapter with
                    // tensor cores (`ops::matmul::coop`) runs a split-K GEMM and its sum as one.
                    // A convolution's data pass split over K (`conv::gpu::data_split`) adds the
                    // splits' sum, and the forward also the bias written first.
                    // A data pass on Winograd (`conv::winograd`: on a GPU the MPS net's conv2
                    // data gradient) adds its three transforms.
                    let split_extra = d
                        .iter()
                        .filter(|(n, k)| {
                            let data_pass = !n.ends_with("/d1") && !n.ends_with("/d2");
                            let extra =
                                ["gemm_sum", "bias_fill"].contains(k) || k.ends_with("_transform");
                            n.contains("conv") && data_pass && extra
                        })
                        .count();
                    // A fully connected layer's GEMM split over K (`matmul::gpu::gemm_split`) adds
                    // the splits' sum.
                    let fc_sums = d
                        .iter()
                        .filter(|(n, k)| n.contains("fc") && *k == "gemm_sum")
                        .count();
                    // conv1's weight gradient looping over its taps in f32 sums its bias too: the
                    // chunks of its own bias gradient and their sum are gone.
                    let taps =
                        precision == Precision::F32 && (algo == ConvAlgo::ShortK || !dev.is_cpu());
                    let conv1: Vec<&str> = (d.iter())
                        .filter(|(n, _)| n == "grad/conv1/d1")
                        .map(|(_, k)| *k)
                        .collect();
                    if taps {
                        assert_eq!(conv1, ["short_k_weight_grad", "short_k_grad_sum"], "{d:?}");
                    } else {
                        assert!(conv1.contains(&"bias_grad"), "{d:?}");
                    }
                    // 38 and 42 before the fully connected layers' bias moved into their GEMM's
                    // epilogue (no bias fill of its own); 36 and 40 with three of their GEMMs split;
                    // 33 and 37 before the loss's reduction checked both its outputs itself (two
                    // non-finite scans fewer).
                    let base = if precision == Precision::F32 { 31 } else { 35 };
                    let want = base + split_extra + fc_sums - if taps { 2 } else { 0 };
                    let coop = kernels.contains(&"gemm_coop");
                    // The tensor cores' splits need no sums of their own: never more.
                    let ok = if coop {
                        d.len() <= want
                    } else {
                        d.len() == want
                    };
                    assert!(
                        ok,
                        "{size:?} {precision:?} {algo:?}: {} dispatches: {d:?}",
                        d.len()
                    );
                    // The gradients' non-finite scan is the step's only one: the loss checks itself.
                    let scans = kernels.iter().filter(|k| **k == "scan").count();
                    assert_eq!(scans, 1, "{d:?}");
                    assert!(!kernels.contains(&"unary_backward_out"), "{d:?}");
                    assert!(!kernels.contains(&"unary_forward"), "{d:?}");
                    assert_eq!(
                        // Both pools are 2×2/2 on even images: the per-window kernel.
                        kernels
                            .iter()
                            .filter(|k| **k == "max_backward_out_tiled")
                            .count(),
                        2
                    );
                    assert_eq!(
                        kernels
                            .iter()
                            .filter(|k| **k == "dropout_backward_out")
                            .count(),
                        1
                    );
                }
            }
        }
    });
}
