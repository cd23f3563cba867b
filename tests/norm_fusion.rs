//! The training norms' neighbours folded into their kernels (issue 14): a ReLU's gradient read
//! by a norm's backward as its dy is applied as the backward loads dy (the `UnaryGradOut`
//! launches nothing), and a residual `Add(norm(x), r)` is written by the norm's forward, the
//! sum's ReLU in its epilogue (the `Add` launches nothing). Each fold against the unfolded plan
//! (`Options::fuse` off) and the CPU reference — batch, group and parameter-free instance norm,
//! groups that fit one workgroup and groups past `MAX_CHUNK` (the chunked kernels), f32 and
//! mixed precision, f32 and f16 sums, training and inference — and where it must not apply: the
//! pre-sum value read by another op, the norm's output read twice (its ReLU's gradient is then
//! a sum's operand), a residual computed after the norm.

mod common;

use std::collections::HashMap;

use common::{assert_close, each_device};
use wgtrain::compile::{Options, Precision};
use wgtrain::graph::{Graph, Op, Value};
use wgtrain::ops::conv::{Conv2d, Padding};
use wgtrain::ops::elementwise::{BinaryOp, UnaryOp};
use wgtrain::ops::loss::{Loss, LossKind};
use wgtrain::ops::norm::gpu::MAX_CHUNK;
use wgtrain::ops::norm::{BatchNorm, GroupNorm, InstanceNorm};
use wgtrain::reference::Array;
use wgtrain::{Accumulator, DType, Device};

/// The norms folded into: batch norm (dγ, dβ from the dx kernel), group norm (dγ, dβ from
/// `norm_param_grads`), instance norm without γ, β (a gradient of one output).
#[derive(Clone, Copy, Debug)]
enum Kind {
    Batch,
    Group,
    Instance,
}

fn norm(g: &mut Graph, name: &str, x: Value, kind: Kind) -> Value {
    match kind {
        Kind::Batch => g.batch_norm(name, x, BatchNorm::default()),
        Kind::Group => g.group_norm(name, x, GroupNorm::new(2, 1e-5).unwrap()),
        Kind::Instance => g.norm(name, x, InstanceNorm::default(), false),
    }
    .unwrap()
}

/// A 3×3 convolution keeping the size, without a bias (a norm follows, which would make the
/// bias's gradient 0).
fn conv(g: &mut Graph, name: &str, x: Value, out: usize) -> Value {
    let c = g.shape(x).unwrap()[1];
    let mut k = Conv2d::new(c, out, (3, 3));
    k.padding = Padding::Same;
    k.bias = false;
    g.conv2d(name, x, k).unwrap()
}

/// `h` → flatten → fully connected (3) → MSE against `target`, plus `extra` summed in.
fn head(g: &mut Graph, h: Value, extra: Option<Value>) -> Value {
    let batch = g.shape(h).unwrap()[0];
    let target = g.input("target", &[batch, 3]).unwrap();
    let f = g.flatten("flat", h).unwrap();
    let mut out = g.linear("fc", f, 3).unwrap();
    if let Some(e) = extra {
        let avg = g.global_avg_pool("avg", e).unwrap();
        let avg = g.flatten("avg_flat", avg).unwrap();
        let avg = g.linear("fc_avg", avg, 3).unwrap();
        out = g.binary("both", BinaryOp::Add, out, avg).unwrap();
    }
    let mse = Loss::mean(LossKind::MeanSquaredError);
    g.loss("loss", out, target, None, mse).unwrap()
}

/// conv → norm → ReLU → conv → head; with `second_reader` the norm's output also feeds the
/// head's second branch, so its ReLU stays apart and the ReLU's gradient is a sum's operand.
fn relu_after_norm(shape: [usize; 4], kind: Kind, second_reader: bool) -> (Graph, Value) {
    let mut g = Graph::new();
    let x = g.input("x", &shape).unwrap();
    let h = conv(&mut g, "conv", x, 4);
    let n = norm(&mut g, "norm", h, kind);
    let y = g.unary("relu", UnaryOp::Relu, n).unwrap();
    let z = conv(&mut g, "conv2", y, 2);
    let loss = head(&mut g, z, second_reader.then_some(n));
    (g, loss)
}

/// Where the residual comes from in `residual`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Residual {
    /// The block's input, `Add(norm, x)` (ResNet's identity blocks).
    Input,
    /// `Add(r, norm)` with r a norm computed first (ResNet's downsampling blocks: the second
    /// norm folds, the first operand its residual).
    EarlierNorm,
    /// `Add(norm, r)` with r a convolution computed after the norm: nothing folds.
    Later,
    /// `Add(norm, x)` with the norm's output also read by the head: nothing folds.
    PreSumRead,
}

/// x (4 channels) → conv → norm → Add with the residual → ReLU → conv → head.
fn residual(shape: [usize; 4], kind: Kind, res: Residual) -> (Graph, Value) {
    let mut g = Graph::new();
    let x = g.input("x", &shape).unwrap();
    let first = (res == Residual::EarlierNorm).then(|| {
        let d = conv(&mut g, "down", x, 4);
        norm(&mut g, "down_norm", d, kind)
    });
    let h = conv(&mut g, "conv", x, 4);
    let n = norm(&mut g, "norm", h, kind);
    let sum = match (res, first) {
        (Residual::EarlierNorm, Some(r)) => g.binary("add", BinaryOp::Add, r, n),
        (Residual::Later, _) => {
            let r = conv(&mut g, "late", x, 4);
            g.binary("add", BinaryOp::Add, n, r)
        }
        _ => g.binary("add", BinaryOp::Add, n, x),
    }
    .unwrap();
    let y = g.unary("relu", UnaryOp::Relu, sum).unwrap();
    let z = conv(&mut g, "conv2", y, 2);
    let loss = head(&mut g, z, (res == Residual::PreSumRead).then_some(n));
    (g, loss)
}

/// Seeded f32 inputs and parameters; running means 0.1, running variances 0.5 (inference).
fn feeds(g: &Graph) -> HashMap<String, Array> {
    let mut f = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let shape = &n.outputs[0].0;
        let a = match n.op {
            Op::Input | Op::Param if n.outputs[0].1 == DType::F32 => {
                let a = Array::seeded(shape, 11 + i as u64);
                Array::from_f32(&a.shape, &a.to_f32())
            }
            Op::State => {
                let v = if n.name.ends_with("running_var") {
                    0.5
                } else {
                    0.1
                };
                Array::new(shape, vec![v; shape.iter().product()])
            }
            _ => continue,
        };
        f.insert(n.name.clone(), a);
    }
    f
}

/// A compiled graph's outputs after one step, and its dispatches (node, kernel).
struct Run {
    values: Vec<Vec<f32>>,
    dispatches: Vec<(String, &'static str)>,
}

impl Run {
    fn of(&self, name: &str) -> Vec<&'static str> {
        (self.dispatches.iter())
            .filter(|(n, _)| n == name)
            .map(|(_, k)| *k)
            .collect()
    }

    fn running(&self, kernel: &str) -> usize {
        self.dispatches.iter().filter(|(_, k)| *k == kernel).count()
    }
}

/// Compiles `g` for `outs` under `opts` (`fuse` set here), feeds it and runs a step.
fn run(dev: &Device, g: &Graph, outs: &[Value], opts: &Options, fuse: bool) -> Run {
    let opts = Options { fuse, ..*opts };
    let c = g.compile(dev, outs, &opts).unwrap();
    for (k, a) in feeds(g) {
        // An inference graph's outputs need no target.
        if let Err(e) = c.set(&k, &a.to_f32()) {
            assert!(e.to_string().contains("not part of"), "{k}: {e}");
        }
    }
    c.step().unwrap();
    Run {
        values: outs.iter().map(|&v| c.read(v).unwrap()).collect(),
        dispatches: c.dispatches(),
    }
}

/// `got` against the reference within `tol` (relative to each output's largest value) and
/// against `unfolded` within `twin` (the same arithmetic; f16 rounds where the unfolded plan
/// stores an intermediate).
fn check(what: &str, g: &Graph, outs: &[Value], got: &Run, unfolded: &Run, tol: f64, twin: f64) {
    let want = g.eval_reference(&feeds(g), outs).unwrap();
    for (k, w) in want.iter().enumerate() {
        let scale = w.data.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(
            scale > 1e-6,
            "{what}: output {k} is ~0, the check sees nothing"
        );
        let name = &g.nodes[outs[k].node].name;
        assert_close(
            &format!("{what}: {name}"),
            &got.values[k],
            &w.data,
            tol * scale,
            tol,
        );
        let other: Vec<f64> = unfolded.values[k].iter().map(|&v| v as f64).collect();
        let what = format!("{what}: {name} folded vs not");
        assert_close(&what, &got.values[k], &other, twin * scale, twin);
    }
}

/// Mixed precision's tolerance for these graphs: the longest sum is a norm group or a weight
/// gradient over a batch's pixels.
fn f16_tol(shape: [usize; 4], acc: Accumulator) -> f64 {
    let n = shape[0] * shape[2] * shape[3] * 4;
    match acc {
        Accumulator::F32 => wgtrain::reference::f16_tol(n),
        Accumulator::F16 => wgtrain::reference::f16_acc_tol(n),
    }
}

/// The shapes: every group within one workgroup's chunk, and batch / group norm groups past
/// `MAX_CHUNK` (a partial dispatch each way: batch 2 × 48² = 4,608 per channel, 2 channels ×
/// 48² per group).
fn shapes() -> [[usize; 4]; 2] {
    const { assert!(2 * 48 * 48 > MAX_CHUNK && 3 * 7 * 9 < MAX_CHUNK) };
    [[3, 4, 7, 9], [2, 4, 48, 48]]
}

#[test]
fn a_relus_gradient_folds_into_the_norm_backward_reading_it() {
    for shape in shapes() {
        for kind in [Kind::Batch, Kind::Group, Kind::Instance] {
            let what = format!("{kind:?} norm → ReLU, x {shape:?}");
            let (mut g, loss) = relu_after_norm(shape, kind, false);
            let tr = g.training(loss).unwrap();
            let outs: Vec<Value> = [loss].iter().chain(&tr.grads).copied().collect();
            each_device(&what, |dev| {
                let opts = Options {
                    training: Some(&tr),
                    gradients_only: true,
                    ..Options::default()
                };
                let on = run(dev, &g, &outs, &opts, true);
                let off = run(dev, &g, &outs, &opts, false);
                check(&what, &g, &outs, &on, &off, 5e-5, 1e-6);
                assert_eq!(on.of("grad/relu/d0"), Vec::<&str>::new(), "{what}");
                assert_eq!(off.of("grad/relu/d0"), vec!["unary_backward_out"], "{what}");
                assert_eq!(on.running("unary_backward_out"), 0, "{what}");
                // The norm's backward launches what it did; the masked dy is never written.
                assert_eq!(
                    on.of("grad/norm").len(),
                    off.of("grad/norm").len(),
                    "{what}"
                );
                assert!(on.of("grad/norm").contains(&"norm_backward_dx"), "{what}");
                // Forward: the ReLU rides on the norm either way when fused.
                assert_eq!(on.of("relu"), Vec::<&str>::new(), "{what}");
                if dev.caps().shader_f16 {
                    for acc in [Accumulator::F32, Accumulator::F16] {
                        let opts = Options {
                            precision: Precision::F16,
                            accumulator: acc,
                            ..opts
                        };
                        let what = format!("{what}, f16 storage, {acc:?} sums");
                        let on = run(dev, &g, &outs, &opts, true);
                        let off = run(dev, &g, &outs, &opts, false);
                        let tol = f16_tol(shape, acc);
                        check(&what, &g, &outs, &on, &off, tol, tol);
                        assert_eq!(on.running("unary_backward_out"), 0, "{what}");
                        assert_eq!(off.running("unary_backward_out"), 1, "{what}");
                    }
                }
            });
        }
    }
}

#[test]
fn a_relus_gradient_stays_apart_when_the_norms_output_is_read_twice() {
    let shape = shapes()[0];
    let (mut g, loss) = relu_after_norm(shape, Kind::Batch, true);
    let tr = g.training(loss).unwrap();
    let outs: Vec<Value> = [loss].iter().chain(&tr.grads).copied().collect();
    each_device("norm output read twice", |dev| {
        let opts = Options {
            training: Some(&tr),
            gradients_only: true,
            ..Options::default()
        };
        let on = run(dev, &g, &outs, &opts, true);
        let off = run(dev, &g, &outs, &opts, false);
        check("norm output read twice", &g, &outs, &on, &off, 5e-5, 1e-6);
        // The ReLU cannot fuse into the norm (two readers), and its gradient is summed with
        // the other branch's before the norm's backward reads it.
        assert_eq!(on.of("relu"), vec!["unary_forward"]);
        assert_eq!(on.of("grad/relu/d0"), vec!["unary_backward_out"]);
    });
}

/// Dispatches of the residual graph's `add` and `relu`, and the ReLU's gradient.
fn residual_dispatches(r: &Run) -> [Vec<&'static str>; 3] {
    [r.of("add"), r.of("relu"), r.of("grad/relu/d0")]
}

#[test]
fn a_residual_sum_folds_into_the_norm_producing_its_operand() {
    for shape in shapes() {
        for kind in [Kind::Batch, Kind::Group, Kind::Instance] {
            for res in [Residual::Input, Residual::EarlierNorm] {
                let what = format!("{kind:?} norm + {res:?} → ReLU, x {shape:?}");
                let (mut g, loss) = residual(shape, kind, res);
                let tr = g.training(loss).unwrap();
                let outs: Vec<Value> = [loss].iter().chain(&tr.grads).copied().collect();
                each_device(&what, |dev| {
                    let opts = Options {
                        training: Some(&tr),
                        gradients_only: true,
                        ..Options::default()
                    };
                    let on = run(dev, &g, &outs, &opts, true);
                    let off = run(dev, &g, &outs, &opts, false);
                    check(&what, &g, &outs, &on, &off, 5e-5, 1e-6);
                    // The sum and its ReLU launch nothing; the ReLU's gradient, read by both
                    // operands' gradients (views of it), keeps its dispatch.
                    let none = Vec::<&str>::new();
                    assert_eq!(
                        residual_dispatches(&on),
                        [none.clone(), none, vec!["unary_backward_out"]],
                        "{what}"
                    );
                    assert_eq!(off.of("add"), vec!["binary_forward"], "{what}");
                    assert_eq!(on.dispatches.len() + 2, off.dispatches.len(), "{what}");
                    if dev.caps().shader_f16 {
                        for acc in [Accumulator::F32, Accumulator::F16] {
                            let opts = Options {
                                precision: Precision::F16,
                                accumulator: acc,
                                ..opts
                            };
                            let what = format!("{what}, f16 storage, {acc:?} sums");
                            let on = run(dev, &g, &outs, &opts, true);
                            let off = run(dev, &g, &outs, &opts, false);
                            let tol = f16_tol(shape, acc);
                            check(&what, &g, &outs, &on, &off, tol, tol);
                            assert_eq!(on.running("binary_forward"), 0, "{what}");
                            assert_eq!(off.running("binary_forward"), 1, "{what}");
                        }
                    }
                });
            }
        }
    }
}

#[test]
fn a_residual_sum_stays_apart_when_the_pre_sum_value_is_read_or_the_residual_comes_later() {
    let shape = shapes()[0];
    for res in [Residual::Later, Residual::PreSumRead] {
        let what = format!("batch norm + {res:?}");
        let (mut g, loss) = residual(shape, Kind::Batch, res);
        let tr = g.training(loss).unwrap();
        let outs: Vec<Value> = [loss].iter().chain(&tr.grads).copied().collect();
        each_device(&what, |dev| {
            let opts = Options {
                training: Some(&tr),
                gradients_only: true,
                ..Options::default()
            };
            let on = run(dev, &g, &outs, &opts, true);
            let off = run(dev, &g, &outs, &opts, false);
            check(&what, &g, &outs, &on, &off, 5e-5, 1e-6);
            // The sum launches, its ReLU fused into it as before.
            assert_eq!(on.of("add"), vec!["binary_forward"], "{what}");
            assert_eq!(on.of("relu"), Vec::<&str>::new(), "{what}");
        });
    }
}

#[test]
fn a_residual_sum_folds_into_batch_norm_at_inference() {
    for shape in shapes() {
        for res in [Residual::Input, Residual::EarlierNorm] {
            let what = format!("inference: batch norm + {res:?} → ReLU, x {shape:?}");
            let (g, _) = residual(shape, Kind::Batch, res);
            let g = g.for_inference();
            let out = g.find("conv2").unwrap();
            each_device(&what, |dev| {
                let opts = Options::default();
                let on = run(dev, &g, &[out], &opts, true);
                let off = run(dev, &g, &[out], &opts, false);
                check(&what, &g, &[out], &on, &off, 5e-5, 1e-6);
                assert_eq!(on.of("add"), Vec::<&str>::new(), "{what}");
                assert_eq!(on.of("relu"), Vec::<&str>::new(), "{what}");
                assert_eq!(on.of("norm"), vec!["norm_apply"], "{what}");
                if dev.caps().shader_f16 {
                    let opts = Options {
                        precision: Precision::F16,
                        ..opts
                    };
                    let what = format!("{what}, f16");
                    let on = run(dev, &g, &[out], &opts, true);
                    let off = run(dev, &g, &[out], &opts, false);
                    let tol = f16_tol(shape, Accumulator::F32);
                    check(&what, &g, &[out], &on, &off, tol, tol);
                    assert_eq!(on.running("binary_forward"), 0, "{what}");
                }
            });
        }
    }
}

#[test]
fn a_device_binding_8_storage_buffers_keeps_the_relus_gradient_apart() {
    let (mut g, loss) = relu_after_norm(shapes()[0], Kind::Batch, false);
    let tr = g.training(loss).unwrap();
    let outs: Vec<Value> = [loss].iter().chain(&tr.grads).copied().collect();
    let live = vec![true; g.nodes.len()];
    let bn_grad = g.find("grad/norm").unwrap().node;
    let relu_grad = g.find("grad/relu/d0").unwrap().node;
    for (bindings, folds) in [(8, false), (9, true)] {
        let f = wgtrain::compile::fusion::fuse_for(&g, &live, &outs, bindings);
        assert_eq!(
            f.input_grad_neurons.contains_key(&bn_grad),
            folds,
            "{bindings}"
        );
        assert_eq!(f.absorbed[relu_grad], folds, "{bindings}");
    }
}

/// The message of an `Err`; a panic on `Ok`.
fn err<T>(r: wgtrain::Result<T>) -> String {
    match r {
        Ok(_) => panic!("accepted what it must refuse"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_folded_launches_refuse_what_they_cannot_apply() {
    use wgtrain::Tensor;
    use wgtrain::ops::norm::NormOp;
    use wgtrain::ops::norm::gpu as gnorm;
    each_device("folded norm launches refuse", |dev| {
        let t = |s: &[usize]| Tensor::zeros(dev, s, DType::F32).unwrap();
        let (x, gamma, beta, state) = (t(&[2, 3, 4]), t(&[3]), t(&[3]), t(&[2, 2, 3]));
        let (y, wrong) = (t(&[2, 3, 4]), t(&[2, 3, 5]));
        let norm = InstanceNorm::default().into();
        let (gm, bt) = (Some(&gamma), Some(&beta));
        // A residual or a neuron's output of another shape than x.
        let epi = gnorm::Epilogue {
            residual: Some(&wrong),
            neuron: None,
        };
        let e = err(gnorm::norm_epilogue_launch(
            &norm, &x, gm, bt, &y, &state, epi,
        ));
        assert!(e.contains("residual (2, 3, 5)"), "{e}");
        let relu = Some((UnaryOp::Relu, &wrong));
        let e = err(gnorm::norm_backward_neuron_launch(
            &norm, &x, gm, &state, &y, relu, &y, None, None,
        ));
        assert!(e.contains("y (2, 3, 5)"), "{e}");
        // GELU's derivative is not a function of its output.
        let gelu = Some((UnaryOp::Gelu, &y));
        let e = err(gnorm::norm_backward_neuron_launch(
            &norm, &x, gm, &state, &y, gelu, &y, None, None,
        ));
        assert!(e.contains("not a function of its output"), "{e}");
        // A forward reads no dy to fold into; a backward writes no y to add to.
        let bn = BatchNorm::default();
        let fwd: Op = NormOp::BatchNorm {
            op: bn,
            training: true,
        }
        .into();
        let bwd: Op = NormOp::BatchNormGrad {
            op: bn,
            training: true,
        }
        .into();
        let acc = Accumulator::F32;
        let relu = UnaryOp::Relu;
        let e = err(fwd.lower_grad_neuron_input(&[&x], &[&y], relu, &y, acc));
        assert!(e.contains("cannot read dy"), "{e}");
        let e = err(bwd.lower_residual(&[&x], &[&y], &[], &y, acc));
        assert!(e.contains("cannot add a residual"), "{e}");
        // Two neurons after the residual: the norm's epilogue has room for one.
        let two = [UnaryOp::Relu, UnaryOp::Tanh];
        let e = err(fwd.lower_residual(&[&x], &[&y], &two, &y, acc));
        assert!(e.contains("cannot add a residual"), "{e}");
    });
}
