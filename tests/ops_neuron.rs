//! Every neuron of the table (`UnaryOp::all()`) through its unary kernel vs its f64 reference,
//! forward and backward, on awkward lengths, away from kinks; the gradients read from the output
//! (`Op::UnaryGradOut`), kinks included; and SiLU / Mish chained, fused into GEMM and norm
//! epilogues and trained through a graph.

mod common;

use std::collections::HashMap;

use common::{assert_close, each_device};
use wgtrain::graph::{Graph, Value};
use wgtrain::ops::elementwise::gpu as elementwise;
use wgtrain::ops::elementwise::reference as basic;
use wgtrain::ops::elementwise::{BinaryOp, UnaryOp};
use wgtrain::reference::{Array, finite_diff, max_rel_diff};
use wgtrain::{Device, Tensor};

/// Points where a neuron's derivative jumps (its convention there is tested on the CPU side).
fn kinks(op: UnaryOp) -> Vec<f64> {
    match op {
        UnaryOp::Relu | UnaryOp::LeakyRelu { .. } | UnaryOp::Elu { .. } | UnaryOp::Abs => {
            vec![0.0]
        }
        UnaryOp::ReluN { n } => vec![0.0, n as f64],
        UnaryOp::HardSigmoid { a, b } => {
            let (a, b) = (a as f64, b as f64);
            vec![-b / a, (1.0 - b) / a]
        }
        _ => vec![],
    }
}

/// Inputs in (−4, 4) (positive for log, sqrt, recip), at least 0.01 from every kink, rounded to
/// f32.
fn inputs(op: UnaryOp, len: usize) -> Array {
    let mut x = Array::seeded(&[len], 31).map_scaled(4.0);
    for v in &mut x.data {
        if matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip) {
            *v = v.abs() + 0.05;
        }
        for k in kinks(op) {
            if (*v - k).abs() < 0.01 {
                *v = k + 0.02;
            }
        }
    }
    Array::from_f32(&x.shape, &x.to_f32())
}

fn up(dev: &Device, a: &Array) -> Tensor {
    Tensor::from_f32(dev, &a.shape, &a.to_f32()).unwrap()
}

#[test]
fn every_neuron_matches_reference() {
    each_device("neuron", |dev| {
        for op in UnaryOp::all() {
            // 257: more than one 256-invocation workgroup.
            for len in [1, 7, 33, 257] {
                let x = inputs(op, len);
                let dy = Array::from_f32(&[len], &Array::seeded(&[len], 32).to_f32());
                let (gx, gdy) = (up(dev, &x), up(dev, &dy));
                let what = format!("{} ({op:?}) len {len}", op.name());
                let y = elementwise::unary(op, &gx).unwrap().to_f32().unwrap();
                assert_close(&what, &y, &basic::unary(op, &x).data, 1e-5, 1e-5);
                let dx = elementwise::unary_backward(op, &gx, &gdy)
                    .unwrap()
                    .to_f32()
                    .unwrap();
                let want = basic::unary_backward(op, &x, &dy).unwrap();
                assert_close(&format!("{what} backward"), &dx, &want.data, 1e-5, 1e-4);
            }
        }
    });
}

#[test]
fn silu_and_mish_match_reference_over_a_wide_range() {
    each_device("silu mish range", |dev| {
        // (−30, 30): the tails, where exp over/underflows in f32 without the stable forms.
        let len = 300;
        let x = Array::from_f32(&[len], &Array::seeded(&[len], 41).map_scaled(30.0).to_f32());
        let dy = Array::from_f32(&[len], &Array::seeded(&[len], 42).to_f32());
        for op in [UnaryOp::Silu, UnaryOp::Mish] {
            let y = elementwise::unary(op, &up(dev, &x))
                .unwrap()
                .to_f32()
                .unwrap();
            assert_close(op.name(), &y, &basic::unary(op, &x).data, 1e-5, 1e-5);
            let dx = elementwise::unary_backward(op, &up(dev, &x), &up(dev, &dy))
                .unwrap()
                .to_f32()
                .unwrap();
            let want = basic::unary_backward(op, &x, &dy).unwrap();
            assert_close(
                &format!("{} backward", op.name()),
                &dx,
                &want.data,
                1e-5,
                1e-4,
            );
        }
    });
}

#[test]
fn saturating_neurons_stay_finite_in_the_tails() {
    each_device("neuron tails", |dev| {
        // Large |x|: no exp overflow, no inf·0 in the derivative; identity / zero in the tails.
        let x = [-1e30f32, -50.0, 50.0, 1e30];
        let gx = Tensor::from_f32(dev, &[4], &x).unwrap();
        let ones = Tensor::from_f32(dev, &[4], &[1.0; 4]).unwrap();
        for op in [UnaryOp::GeluTanh, UnaryOp::Silu, UnaryOp::Mish] {
            let y = elementwise::unary(op, &gx).unwrap().to_f32().unwrap();
            assert_eq!(&y[2..], &[50.0, 1e30], "{op:?}");
            assert!(y[0] == 0.0 && y[1].abs() < 1e-19, "{op:?}: {y:?}");
            let dx = elementwise::unary_backward(op, &gx, &ones)
                .unwrap()
                .to_f32()
                .unwrap();
            assert_eq!(&dx[2..], &[1.0, 1.0], "{op:?}");
            assert!(dx[0] == 0.0 && dx[1].abs() < 1e-19, "{op:?}: {dx:?}");
        }
    });
}

#[test]
fn silu_and_mish_chain_in_one_dispatch() {
    each_device("neuron chain", |dev| {
        for len in [1, 7, 33, 257] {
            let x = inputs(UnaryOp::Silu, len);
            let gx = up(dev, &x);
            let chains: [(UnaryOp, &[UnaryOp]); 3] = [
                (UnaryOp::Silu, &[UnaryOp::Mish]),
                (UnaryOp::Mish, &[UnaryOp::Silu, UnaryOp::Tanh]),
                (UnaryOp::Linear { a: 2.0, b: -0.5 }, &[UnaryOp::Mish]),
            ];
            for (first, then) in chains {
                let y = Tensor::zeros(dev, &[len], wgtrain::DType::F32).unwrap();
                let l = elementwise::unary_fused_launch(first, then, &gx, &y).unwrap();
                dev.run(&[l]).unwrap();
                let mut want = basic::unary(first, &x);
                for op in then {
                    want = basic::unary(*op, &want);
                }
                let what = format!("{first:?} then {then:?} len {len}");
                assert_close(&what, &y.to_f32().unwrap(), &want.data, 1e-5, 1e-5);
            }
            // A bias add with SiLU fused: the binary kernel's chain.
            let b = Array::from_f32(&[1], &[0.25]);
            let y = Tensor::zeros(dev, &[len], wgtrain::DType::F32).unwrap();
            let l = elementwise::binary_fused_launch(
                BinaryOp::Add,
                &[UnaryOp::Silu],
                &gx,
                &up(dev, &b),
                &y,
            )
            .unwrap();
            dev.run(&[l]).unwrap();
            let want = basic::unary(UnaryOp::Silu, &basic::binary(BinaryOp::Add, &x, &b, &[len]));
            assert_close("bias + silu", &y.to_f32().unwrap(), &want.data, 1e-5, 1e-5);
        }
    });
}

/// Every input, parameter and state of `g` filled with seeded values rounded to f32 (variances
/// positive).
fn feeds(g: &Graph, seed: u64) -> HashMap<String, Array> {
    let mut f = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if n.op.is_source() {
            let mut a = Array::seeded(&n.outputs[0].0, seed + i as u64);
            if n.name.ends_with("running_var") {
                a.data.iter_mut().for_each(|v| *v = v.abs() + 0.5);
            }
            f.insert(n.name.clone(), Array::from_f32(&a.shape, &a.to_f32()));
        }
    }
    f
}

/// Compiles `g` for `outs` (fused or not), feeds `f`, runs a step: the outputs and the
/// dispatches per step.
fn run(
    dev: &Device,
    g: &Graph,
    outs: &[Value],
    f: &HashMap<String, Array>,
    fuse: bool,
    training: Option<&wgtrain::autograd::Training>,
) -> (Vec<Vec<f32>>, usize) {
    let opts = wgtrain::compile::Options {
        fuse,
        training,
        gradients_only: true,
        ..Default::default()
    };
    let c = g.compile(dev, outs, &opts).unwrap();
    for (name, a) in f {
        c.set(name, &a.to_f32()).unwrap();
    }
    c.step().unwrap();
    let got = outs.iter().map(|v| c.read(*v).unwrap()).collect();
    (got, c.stats().dispatches_per_step)
}

#[test]
fn silu_and_mish_fuse_into_gemm_and_norm_epilogues() {
    use wgtrain::ops::conv::{Conv2d, Padding};
    use wgtrain::ops::dense::FullyConnected;
    use wgtrain::ops::norm::BatchNorm;
    each_device("silu mish epilogues", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[2, 3, 5, 5]).unwrap();
        let mut c = Conv2d::new(3, 4, (3, 3));
        c.padding = Padding::Same;
        let y = g.conv2d("conv", x, c).unwrap();
        let y = g.unary("mish", UnaryOp::Mish, y).unwrap();
        let y = g.batch_norm("bn", y, BatchNorm::default()).unwrap();
        let y = g.unary("silu", UnaryOp::Silu, y).unwrap();
        let d = g.dense("fc", y, FullyConnected::new(4 * 5 * 5, 7)).unwrap();
        let d = g.unary("silu2", UnaryOp::Silu, d).unwrap();
        let out = g.flatten("out", d).unwrap();
        let gi = g.for_inference();
        let f = feeds(&gi, 81);
        let want = gi.eval_reference(&f, &[out]).unwrap();
        let (fused, df) = run(dev, &gi, &[out], &f, true, None);
        let (plain, dp) = run(dev, &gi, &[out], &f, false, None);
        assert_close("fused", &fused[0], &want[0].data, 2e-4, 2e-4);
        assert_close("plain", &plain[0], &want[0].data, 2e-4, 2e-4);
        assert_eq!(
            dp - df,
            3,
            "mish, silu and silu should run in the conv, batch norm and FC epilogues"
        );
    });
}

#[test]
fn silu_and_mish_train_through_a_graph() {
    use wgtrain::ops::dense::FullyConnected;
    let mut g = Graph::new();
    let x = g.input("x", &[3, 6]).unwrap();
    let h = g.dense("fc1", x, FullyConnected::new(6, 9)).unwrap();
    let h = g.unary("mish", UnaryOp::Mish, h).unwrap();
    let h = g.dense("fc2", h, FullyConnected::new(9, 4)).unwrap();
    let h = g.flatten("flat", h).unwrap();
    let b = g.param("b", &[4]).unwrap();
    let h = g.binary("bias", BinaryOp::Add, h, b).unwrap();
    let h = g.unary("silu", UnaryOp::Silu, h).unwrap();
    let s = g.unary("sq", UnaryOp::Square, h).unwrap();
    let loss = g.sum("loss", s, 1).unwrap();
    let tr = g.training(loss).unwrap();
    let f = feeds(&g, 91);
    // The reference gradients (through UnaryGrad of SiLU and Mish) vs finite differences.
    let grads = g.eval_reference(&f, &tr.grads).unwrap();
    for (p, grad) in tr.params.iter().zip(&grads) {
        let name = g.node(*p).unwrap().name.clone();
        let fd = finite_diff(&f[&name], 1e-6, |w| {
            let mut f2 = f.clone();
            f2.insert(name.clone(), w.clone());
            g.eval_reference(&f2, &[loss]).unwrap()[0].data.iter().sum()
        });
        let d = max_rel_diff(&grad.data, &fd.data);
        assert!(d < 1e-5, "{name}: rel diff {d}");
    }
    let mut outs = vec![loss];
    outs.extend(&tr.grads);
    let want = g.eval_reference(&f, &outs).unwrap();
    each_device("silu mish training", |dev| {
        let (got, _) = run(dev, &g, &outs, &f, true, Some(&tr));
        for ((v, got), w) in outs.iter().zip(&got).zip(&want) {
            assert_close(&g.node(*v).unwrap().name, got, &w.data, 2e-4, 2e-4);
        }
    });
}

#[test]
fn gradient_from_the_output_matches_reference() {
    each_device("neuron grad from output", |dev| {
        for op in basic::output_based_ops() {
            for len in [1, 7, 33] {
                // x in (−4, 4) (positive for sqrt / recip) with the kinks themselves at the front.
                let mut x = Array::seeded(&[len], 61).map_scaled(4.0);
                let positive = matches!(op, UnaryOp::Sqrt | UnaryOp::Recip);
                let kinks = match op {
                    _ if positive => vec![],
                    UnaryOp::ReluN { n } => vec![0.0, n as f64],
                    UnaryOp::HardSigmoid { a, b } => {
                        vec![-b as f64 / a as f64, (1.0 - b as f64) / a as f64]
                    }
                    _ => vec![0.0, -0.0],
                };
                for (v, k) in x.data.iter_mut().zip(&kinks) {
                    *v = *k;
                }
                if positive {
                    x.data.iter_mut().for_each(|v| *v = v.abs() + 0.1);
                }
                let x = Array::from_f32(&[len], &x.to_f32());
                let y = Array::from_f32(&[len], &basic::unary(op, &x).to_f32());
                let dy = Array::from_f32(&[len], &Array::seeded(&[len], 62).to_f32());
                let (gy, gdy) = (up(dev, &y), up(dev, &dy));
                let dx = elementwise::unary_backward_out(op, &gy, &gdy)
                    .unwrap()
                    .to_f32()
                    .unwrap();
                let what = format!("{op:?} len {len}");
                let want = basic::unary_backward_out(op, &y, &dy).unwrap();
                assert_close(&what, &dx, &want.data, 1e-6, 1e-5);
                // The x-based reference agrees, kinks included (y is rounded to f32 here).
                let from_x = basic::unary_backward(op, &x, &dy).unwrap();
                assert_close(&format!("{what} vs x-based"), &dx, &from_x.data, 1e-5, 1e-4);
            }
        }
        // Ops whose derivative is not a function of y are refused, not computed wrongly.
        let t = Tensor::from_f32(dev, &[3], &[1.0, 2.0, 3.0]).unwrap();
        for op in [
            UnaryOp::Softplus,
            UnaryOp::Gelu,
            UnaryOp::Silu,
            UnaryOp::Mish,
            UnaryOp::LeakyRelu { alpha: -0.5 },
        ] {
            assert!(
                elementwise::unary_backward_out(op, &t, &t).is_err(),
                "{op:?}"
            );
        }
    });
}
