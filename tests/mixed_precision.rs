//! Mixed precision (issue 12): a regression and MNIST trained with f16 activations and f32
//! weights; dynamic loss scaling grows, skips an overflowing step (weights untouched) and
//! recovers, all on the GPU; a mixed-precision model resumes exactly, scaler included; and the
//! options that cannot work are refused. The per-op f16 checks are in `tests/conformance.rs`.

mod common;

use common::{each_device, subset};
use wgtrain::compile::{LossScale, Options, Precision, Residency};
use wgtrain::data::Mnist;
use wgtrain::graph::{Graph, Value};
use wgtrain::ops::elementwise::UnaryOp;
use wgtrain::ops::loss::{Loss, LossKind};
use wgtrain::ops::recurrent::{Cell, Recurrent};
use wgtrain::optim::OptimizerConfig;
use wgtrain::train::models::{MnistSize, mnist};
use wgtrain::train::{Inputs, Model, ModelConfig, TrainConfig, Trainer};
use wgtrain::{DType, Device};

fn regression(batch: usize) -> (Graph, Value) {
    let mut g = Graph::new();
    let x = g.input("x", &[batch, 1]).unwrap();
    let y = g.input("y", &[batch, 1]).unwrap();
    let h = g.linear("fc1", x, 32).unwrap();
    let h = g.unary("tanh", UnaryOp::Tanh, h).unwrap();
    let p = g.linear("fc2", h, 1).unwrap();
    let loss = g
        .loss("mse", p, y, None, Loss::mean(LossKind::MeanSquaredError))
        .unwrap();
    (g, loss)
}

fn curve(n: usize) -> Inputs {
    let xs: Vec<f32> = (0..n).map(|i| -1.0 + 2.0 * i as f32 / n as f32).collect();
    let ys: Vec<f32> = xs.iter().map(|x| (3.0 * x).sin()).collect();
    Inputs::new().f32("x", &xs).f32("y", &ys)
}

fn mixed(loss_scale: LossScale) -> ModelConfig {
    ModelConfig {
        seed: 3,
        precision: Precision::F16,
        loss_scale,
        ..ModelConfig::default()
    }
}

/// Runs `f` on each device with SHADER_F16; on one without, asserts that `Precision::F16` is
/// refused with an error naming the feature (never a silent f32 run).
fn each_f16_device(test: &str, f: impl Fn(&Device)) {
    each_device(test, |dev| {
        if dev.caps().shader_f16 {
            return f(dev);
        }
        let (g, loss) = regression(4);
        let e = Model::new(
            dev,
            &g,
            loss,
            OptimizerConfig::adam(0.01),
            mixed(LossScale::default()),
        )
        .err()
        .expect("F16 without SHADER_F16 is refused");
        assert!(e.to_string().contains("SHADER_F16"), "{e}");
        eprintln!("{}: no SHADER_F16; refused as it should be", dev.name());
    });
}

#[test]
fn a_regression_trains_in_mixed_precision_like_f32() {
    each_f16_device("mixed regression", |dev| {
        let (g, loss) = regression(16);
        let batch = curve(16);
        let adam = OptimizerConfig::adam(0.01);
        let mut m = Model::new(dev, &g, loss, adam.clone(), mixed(LossScale::default())).unwrap();
        let f32_cfg = ModelConfig {
            seed: 3,
            ..ModelConfig::default()
        };
        let mut f = Model::new(dev, &g, loss, adam, f32_cfg).unwrap();
        // Activations really are f16, weights f32.
        let s = m.summary();
        assert!(
            m.compiled()
                .graph
                .nodes
                .iter()
                .any(|n| n.outputs[0].1 == DType::F16),
            "{s}"
        );
        assert_eq!(
            m.compiled().param("fc1.weight").unwrap().dtype(),
            DType::F32
        );
        m.step(&batch).unwrap();
        f.step(&batch).unwrap();
        let (m0, f0) = (m.loss().unwrap(), f.loss().unwrap());
        assert!(
            (m0 - f0).abs() <= 0.01 * (1.0 + f0.abs()),
            "first loss {m0} vs f32 {f0}"
        );
        for _ in 0..300 {
            m.step(&batch).unwrap();
            f.step(&batch).unwrap();
        }
        let (m1, f1) = (m.loss().unwrap(), f.loss().unwrap());
        eprintln!("mixed {m0} -> {m1}, f32 {f0} -> {f1}");
        assert!(m1 < 0.05 * m0, "mixed loss {m0} -> {m1}");
        assert!(m1 < 2.0 * f1 + 1e-3, "mixed {m1} vs f32 {f1}");
        // The default scale (2^16) may overflow the first step or two, as PyTorch's does.
        assert!(m.overflow_steps() <= 3, "{} overflows", m.overflow_steps());
    });
}

#[test]
fn the_loss_scale_halves_on_overflow_skips_the_update_and_grows_back() {
    each_f16_device("loss scaler", |dev| {
        let (g, loss) = regression(8);
        let batch = curve(8);
        // 2^24 times these gradients overflows f16 (max 65504): the first steps must be skipped.
        let ls = LossScale {
            init: 16_777_216.0,
            growth_interval: 3,
        };
        let mut m = Model::new(dev, &g, loss, OptimizerConfig::adam(0.01), mixed(ls)).unwrap();
        assert_eq!(m.loss_scale().unwrap(), Some(16_777_216.0));
        let mut scales = Vec::new();
        let mut skipped = Vec::new();
        for _ in 0..16 {
            let before = m.param("fc1.weight").unwrap();
            let scale = m.loss_scale().unwrap().unwrap();
            m.step(&batch).unwrap();
            let after = m.param("fc1.weight").unwrap();
            let n = m.check_health().unwrap();
            scales.push(scale);
            skipped.push(n);
            if n > 0 {
                assert_eq!(before, after, "a skipped step changed the weights");
                assert_eq!(m.loss_scale().unwrap(), Some(scale / 2.0), "{scales:?}");
            } else {
                assert_ne!(before, after, "a clean step changed nothing");
            }
        }
        eprintln!("scales {scales:?}, skipped {skipped:?}");
        let first_clean = skipped.iter().position(|&n| n == 0).expect("a clean step");
        assert!(
            first_clean >= 1,
            "the first step must overflow: {skipped:?}"
        );
        // Three clean steps in a row double the scale (here back to one that overflows, which
        // the next step halves again: the scaler settles, as PyTorch's does).
        let s = scales[first_clean];
        assert!(
            skipped[first_clean..first_clean + 3]
                .iter()
                .all(|&n| n == 0),
            "{skipped:?}"
        );
        assert_eq!(scales[first_clean + 3], 2.0 * s, "{scales:?}");
        assert_eq!(m.overflow_steps(), skipped.iter().sum::<u64>());
        assert_eq!(m.skipped_steps(), 0, "overflows are not failures");
    });
}

#[test]
fn a_mixed_precision_model_resumes_exactly_with_its_loss_scale() {
    each_f16_device("mixed resume", |dev| {
        let (g, loss) = regression(8);
        let batch = curve(8);
        let ls = LossScale {
            init: 1024.0,
            growth_interval: 4,
        };
        let adam = OptimizerConfig::adam(0.01);
        let mut a = Model::new(dev, &g, loss, adam.clone(), mixed(ls)).unwrap();
        for _ in 0..6 {
            a.step(&batch).unwrap();
        }
        let dir = std::env::temp_dir().join(format!("wgtrain-mixed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.safetensors");
        a.save(&path).unwrap();
        let mut b = Model::new(dev, &g, loss, adam, mixed(ls)).unwrap();
        assert_eq!(b.loss_scale().unwrap(), Some(1024.0));
        b.load(&path).unwrap();
        assert_eq!(b.loss_scale().unwrap(), a.loss_scale().unwrap());
        assert_eq!(
            a.loss_scale().unwrap(),
            Some(2048.0),
            "4 clean steps doubled it"
        );
        for _ in 0..5 {
            a.step(&batch).unwrap();
            b.step(&batch).unwrap();
        }
        assert_eq!(a.loss().unwrap().to_bits(), b.loss().unwrap().to_bits());
        assert_eq!(
            a.param("fc2.weight").unwrap(),
            b.param("fc2.weight").unwrap()
        );
        assert_eq!(a.loss_scale().unwrap(), b.loss_scale().unwrap());
        std::fs::remove_dir_all(&dir).ok();
    });
}

#[test]
fn options_that_cannot_work_are_refused() {
    each_f16_device("mixed refusals", |dev| {
        let (mut g, loss) = regression(4);
        let tr = g.training(loss).unwrap();
        let ls = Some(LossScale::default());
        let cases: Vec<(&str, Options, &str)> = vec![
            (
                "a loss scale in f32",
                Options {
                    training: Some(&tr),
                    loss_scale: ls,
                    ..Options::default()
                },
                "Precision::F16",
            ),
            (
                "a loss scale without training",
                Options {
                    precision: Precision::F16,
                    loss_scale: ls,
                    ..Options::default()
                },
                "training",
            ),
            (
                "a loss scale just in time",
                Options {
                    training: Some(&tr),
                    precision: Precision::F16,
                    loss_scale: ls,
                    residency: Residency::JustInTime,
                    ..Options::default()
                },
                "Resident",
            ),
        ];
        for (what, opts, says) in cases {
            let e = g
                .compile(dev, &[loss], &opts)
                .err()
                .unwrap_or_else(|| panic!("{what}"));
            assert!(e.to_string().contains(says), "{what}: {e}");
        }
        // A graph that already has a node named like the scale's state.
        let mut h = g.clone();
        h.state(wgtrain::compile::LOSS_SCALE, &[2]).unwrap();
        let tr = h.training(loss).unwrap();
        let opts = Options {
            training: Some(&tr),
            precision: Precision::F16,
            loss_scale: ls,
            ..Options::default()
        };
        let e = h.compile(dev, &[loss], &opts).err().expect("name clash");
        assert!(e.to_string().contains("loss_scale"), "{e}");
        // Tensors of mixed storage in one kernel (an f16 input, f32 weights: what autocast
        // never produces, but an eager caller can) are an Err naming the binding.
        let op = Recurrent::new(Cell::Lstm, 3, 4);
        let x = wgtrain::Tensor::from_f32_as_f16(dev, &[2, 1, 3], &[0.5; 6]).unwrap();
        let w_ih = wgtrain::Tensor::from_f32(dev, &[16, 3], &[0.1; 48]).unwrap();
        let w_hh = wgtrain::Tensor::from_f32(dev, &[16, 4], &[0.1; 64]).unwrap();
        let b = wgtrain::Tensor::from_f32(dev, &[16], &[0.0; 16]).unwrap();
        let e = wgtrain::ops::recurrent::gpu::forward(&op, &[&x, &w_ih, &w_hh, &b, &b])
            .expect_err("f16 x with f32 weights");
        assert!(e.to_string().contains("binding"), "{e}");
    });
}

#[test]
fn mnist_trains_in_mixed_precision() {
    let data = Mnist::embedded().unwrap();
    let (train, test) = (subset(&data.train, 1600), subset(&data.test, 400));
    each_f16_device("mixed mnist", |dev| {
        let size = MnistSize {
            conv1: 4,
            conv2: 8,
            hidden: 32,
            kernel: 5,
        };
        let cfg = TrainConfig {
            epochs: 2,
            batch: 16,
            seed: 7,
            progress: false,
            precision: Precision::F16,
            ..TrainConfig::default()
        };
        let opt = OptimizerConfig::adam(0.003);
        let mut t = Trainer::new(dev, mnist(16, size, 7).unwrap(), opt, cfg).unwrap();
        let before = t.accuracy(&test).unwrap();
        let (first, _) = t.train_epoch(&train, None).unwrap();
        let (second, _) = t.train_epoch(&train, None).unwrap();
        let after = t.accuracy(&test).unwrap();
        eprintln!(
            "mixed mnist: accuracy {before:.3} -> {after:.3}, loss {first:.3} -> {second:.3}"
        );
        assert!(second < 0.7 * first, "loss {first} -> {second}");
        assert!(
            after > 0.6 && after > before + 0.4,
            "accuracy {before} -> {after}"
        );
    });
}

#[test]
fn a_large_f16_matmul_matches_the_reference() {
    // Big enough for the tensor-core GEMM where the adapter has f16 cooperative-matrix tiles
    // (the H100/H200 through Vulkan), the tiled core elsewhere; K not a multiple of the tile.
    each_f16_device("mixed matmul", |dev| {
        let (m, k, n) = (260, 72, 257);
        let mut g = Graph::new();
        let a = g.input("a", &[m, k]).unwrap();
        let b = g.input("b", &[k, n]).unwrap();
        let y = g.matmul("y", a, b).unwrap();
        let round = |v: Vec<f32>| -> Vec<f32> {
            v.into_iter()
                .map(|x| half::f16::from_f32(x).to_f32())
                .collect()
        };
        let av = round(wgtrain::reference::Array::seeded(&[m, k], 1).to_f32());
        let bv = round(wgtrain::reference::Array::seeded(&[k, n], 2).to_f32());
        let opts = Options {
            precision: Precision::F16,
            ..Options::default()
        };
        let c = g.compile(dev, &[y], &opts).unwrap();
        c.set("a", &av).unwrap();
        c.set("b", &bv).unwrap();
        c.step().unwrap();
        let got = c.read(y).unwrap();
        assert_eq!(c.tensor(y).unwrap().dtype(), DType::F16);
        let mut feeds = std::collections::HashMap::new();
        feeds.insert(
            "a".to_string(),
            wgtrain::reference::Array::from_f32(&[m, k], &av),
        );
        feeds.insert(
            "b".to_string(),
            wgtrain::reference::Array::from_f32(&[k, n], &bv),
        );
        let want = g.eval_reference(&feeds, &[y]).unwrap();
        common::close_to(
            "f16 matmul",
            &got,
            &want[0].data,
            wgtrain::reference::f16_tol(4),
        );
    });
}

/// An input fed as f16 refuses a finite value that f16 cannot hold (it would silently become
/// infinity), naming the input, the first such index, the value and f16's range; the largest f16
/// and values rounding to it pass, and NaN and infinity pass as into an f32 input.
#[test]
fn an_f16_fed_input_refuses_values_beyond_f16s_range() {
    each_f16_device("f16 input range", |dev| {
        let mut g = Graph::new();
        let a = g.input("a", &[2, 3]).unwrap();
        let b = g.input("b", &[3, 2]).unwrap();
        let y = g.matmul("y", a, b).unwrap();
        let opts = Options {
            precision: Precision::F16,
            ..Options::default()
        };
        let c = g.compile(dev, &[y], &opts).unwrap();
        assert_eq!(c.tensor(a).unwrap().dtype(), DType::F16, "a is fed as f16");
        for (bad, at, says) in [(70000.0f32, 4, "70000"), (-1e6, 1, "-1000000")] {
            let mut data = [1.0f32; 6];
            data[at] = bad;
            data[5] = 1e9; // a later offender: the first is named
            let e = c.set("a", &data).expect_err("beyond f16").to_string();
            for part in [
                "\"a\"".to_string(),
                format!("element {at} is {says}"),
                "65504".to_string(),
                if bad > 0.0 {
                    "become inf"
                } else {
                    "become -inf"
                }
                .to_string(),
            ] {
                assert!(e.contains(&part), "{part:?} missing from: {e}");
            }
        }
        // 65519 rounds to 65504, the largest f16; NaN and infinity are the guards' business.
        c.set("a", &[65504.0, -65519.0, f32::NAN, f32::INFINITY, 0.0, 1.0])
            .unwrap();
        c.set("b", &[1.0; 6]).unwrap();
        c.step().unwrap();
        // The eager constructor holds to the same range.
        let e = wgtrain::Tensor::from_f32_as_f16(dev, &[2], &[0.0, 65520.0])
            .expect_err("beyond f16")
            .to_string();
        assert!(e.contains("element 1 is 65520"), "{e}");
    });
}

#[test]
fn just_in_time_weights_train_in_mixed_precision_without_a_loss_scale() {
    each_f16_device("mixed just in time", |dev| {
        let (mut g, loss) = regression(8);
        let tr = g.training(loss).unwrap();
        let opts = Options {
            training: Some(&tr),
            precision: Precision::F16,
            residency: Residency::JustInTime,
            ..Options::default()
        };
        let mut c = g.compile(dev, &[loss], &opts).unwrap();
        let layout = c.param_layout().expect("a training graph").clone();
        let groups = vec![wgtrain::optim::ParamGroup::range(0..layout.len())];
        let mut opt = c.optimizer(OptimizerConfig::adam(0.01), groups).unwrap();
        c.attach_optimizer(&opt).unwrap();
        let w1: Vec<f32> = (0..32).map(|i| (i as f32 / 16.0 - 1.0) * 0.5).collect();
        c.set("fc1.weight", &w1).unwrap();
        c.set("fc1.bias", &[0.0; 32]).unwrap();
        c.set("fc2.weight", &[0.1; 32]).unwrap();
        c.set("fc2.bias", &[0.0; 1]).unwrap();
        let (xs, ys): (Vec<f32>, Vec<f32>) = (0..8)
            .map(|i| {
                let x = -1.0 + 2.0 * i as f32 / 8.0;
                (x, (3.0 * x).sin())
            })
            .unzip();
        c.set("x", &xs).unwrap();
        c.set("y", &ys).unwrap();
        let mut losses = Vec::new();
        for _ in 0..40 {
            opt.prepare_step().unwrap();
            c.step().unwrap();
            losses.push(c.read(loss).unwrap()[0]);
        }
        assert!(losses[39] < 0.5 * losses[0], "{losses:?}");
    });
}

/// With resident weights, one dispatch refreshes every weight's f16 copy and one casts every f16
/// gradient into the f32 arena (`compile::HalfArenas`); the gradients are bit for bit those of
/// a cast per parameter (just-in-time weights keep those), with and without the loss scale's
/// division.
#[test]
fn the_f16_arenas_cast_all_weights_and_gradients_in_one_dispatch_each() {
    each_f16_device("f16 arenas", |dev| {
        let (mut g, loss) = regression(8);
        let tr = g.training(loss).unwrap();
        let outs: Vec<Value> = std::iter::once(loss).chain(tr.grads.clone()).collect();
        let compile = |precision, residency, loss_scale| {
            let jit = residency == Residency::JustInTime;
            let opts = Options {
                training: Some(&tr),
                precision,
                residency,
                loss_scale,
                gradients_only: !jit,
                ..Options::default()
            };
            let mut c = g.compile(dev, &outs, &opts).unwrap();
            // Just in time needs an optimizer: one that changes nothing.
            let opt = jit.then(|| {
                let layout = c.param_layout().unwrap().clone();
                let groups = vec![wgtrain::optim::ParamGroup::range(0..layout.len())];
                let opt = c.optimizer(OptimizerConfig::sgd(0.0, 0.0), groups).unwrap();
                c.attach_optimizer(&opt).unwrap();
                opt
            });
            let w1: Vec<f32> = (0..32).map(|i| (i as f32 / 16.0 - 1.0) * 0.5).collect();
            let b1: Vec<f32> = (0..32).map(|i| i as f32 / 64.0 - 0.25).collect();
            c.set("fc1.weight", &w1).unwrap();
            c.set("fc1.bias", &b1).unwrap();
            c.set("fc2.weight", &[0.1; 32]).unwrap();
            c.set("fc2.bias", &[0.3; 1]).unwrap();
            let inputs = curve(8);
            for (name, v) in [("x", inputs.get_f32("x")), ("y", inputs.get_f32("y"))] {
                c.set(name, v.unwrap()).unwrap();
            }
            if let Some(mut o) = opt {
                o.prepare_step().unwrap();
            }
            c.step().unwrap();
            let grads: Vec<Vec<f32>> = tr.grads.iter().map(|&v| c.read(v).unwrap()).collect();
            (c, grads)
        };
        let (resident, g_res) = compile(Precision::F16, Residency::Resident, None);
        let (_, g_jit) = compile(Precision::F16, Residency::JustInTime, None);
        assert!(resident.param_arena().unwrap().f16.is_some());
        assert_eq!(g_res, g_jit, "one cast for all vs one per parameter");
        assert!(
            g_res.iter().all(|g| g.iter().any(|&v| v != 0.0)),
            "{g_res:?}"
        );
        // Scaled by a power of two and divided back in the one cast: the same gradients, up to
        // f16 subnormals the scale lifts.
        let scale = LossScale {
            init: 1024.0,
            growth_interval: 2000,
        };
        let (_, g_scaled) = compile(Precision::F16, Residency::Resident, Some(scale));
        for (a, b) in g_scaled.iter().flatten().zip(g_res.iter().flatten()) {
            assert!((a - b).abs() <= 1e-3 * b.abs() + 1e-6, "{a} vs {b}");
        }
        // 4 parameters: their 4 weight casts and 4 gradient casts are 2 dispatches, and the
        // input x, read only in f16, is fed as f16 (no cast).
        let (f32_step, _) = compile(Precision::F32, Residency::Resident, None);
        let (r16, r32) = (
            resident.stats().dispatches_per_step,
            f32_step.stats().dispatches_per_step,
        );
        assert_eq!(r16, r32 + 2, "mixed {r16} vs f32 {r32} dispatches");
        let x = resident.graph.find("x").unwrap();
        assert_eq!(resident.tensor(x).unwrap().dtype(), DType::F16);
    });
}

/// Mixed precision with fan-out: a weight shared by two matmuls and an input read by both, so
/// the shared weight's f16 gradient is a sum, accumulated in place by the second GEMM straight
/// into the f16 gradient arena (`compile/sums.rs` with `HalfArenas`). The gradients match the
/// same graph compiled without sums in place, within f16 rounding of the one add.
#[test]
fn a_shared_weight_sums_its_f16_gradient_into_the_f16_arena() {
    each_f16_device("f16 shared weight", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[7, 33]).unwrap();
        let w = g.param("w", &[33, 9]).unwrap();
        let a = g.matmul("a", x, w).unwrap();
        let t = g.unary("t", UnaryOp::Tanh, a).unwrap();
        let b = g.matmul("b", x, w).unwrap();
        let s = g
            .binary("s", wgtrain::ops::elementwise::BinaryOp::Mul, t, b)
            .unwrap();
        let y = g.input("y", &[7, 9]).unwrap();
        let loss = g
            .loss("mse", s, y, None, Loss::mean(LossKind::MeanSquaredError))
            .unwrap();
        let tr = g.training(loss).unwrap();
        let run = |sum_in_place| {
            let opts = Options {
                training: Some(&tr),
                precision: Precision::F16,
                gradients_only: true,
                sum_in_place,
                ..Options::default()
            };
            let c = g.compile(dev, &[loss], &opts).unwrap();
            assert!(c.param_arena().unwrap().f16.is_some());
            let xs: Vec<f32> = (0..7 * 33)
                .map(|i| ((i * 37 % 101) as f32 / 101.0) - 0.5)
                .collect();
            let ws: Vec<f32> = (0..33 * 9)
                .map(|i| ((i * 53 % 89) as f32 / 89.0) - 0.5)
                .collect();
            let ys: Vec<f32> = (0..7 * 9).map(|i| (i % 5) as f32 * 0.1).collect();
            c.set("x", &xs).unwrap();
            c.set("w", &ws).unwrap();
            c.set("y", &ys).unwrap();
            c.step().unwrap();
            (c.read(tr.grads[0]).unwrap(), c.stats().dispatches_per_step)
        };
        let ((on, d_on), (off, d_off)) = (run(true), run(false));
        assert!(
            d_on < d_off,
            "sums in place saved no dispatch: {d_on} vs {d_off}"
        );
        let scale = off.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(scale > 1e-3, "{off:?}");
        for (a, b) in on.iter().zip(&off) {
            assert!((a - b).abs() <= 2e-3 * scale, "{a} vs {b}");
        }
    });
}

/// A norm's γ/β gradients stay f32; under a loss scale they are divided by it in place in the
/// f32 gradient arena by the same one dispatch that casts the f16 gradients (no `Div` per
/// parameter), and come out as without the scale (a power of two: exact up to f16 subnormals).
#[test]
fn f32_gradients_are_unscaled_in_place_by_the_arena_cast() {
    each_f16_device("f32 gradients unscaled in place", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[7, 5]).unwrap();
        let y = g.input("y", &[7, 1]).unwrap();
        let h = g.linear("fc1", x, 33).unwrap();
        let ln = wgtrain::ops::norm::LayerNorm { dims: 1, eps: 1e-5 };
        let h = g.layer_norm("ln", h, ln).unwrap();
        let h = g.unary("tanh", UnaryOp::Tanh, h).unwrap();
        let p = g.linear("fc2", h, 1).unwrap();
        let loss = g
            .loss("mse", p, y, None, Loss::mean(LossKind::MeanSquaredError))
            .unwrap();
        let tr = g.training(loss).unwrap();
        let run = |loss_scale| {
            let opts = Options {
                training: Some(&tr),
                precision: Precision::F16,
                loss_scale,
                gradients_only: true,
                ..Options::default()
            };
            let c = g.compile(dev, &[loss], &opts).unwrap();
            for (k, e) in c.param_layout().unwrap().entries().iter().enumerate() {
                let v: Vec<f32> = (0..e.numel())
                    .map(|i| ((i * 31 + k * 7) % 17) as f32 / 17.0 - 0.4)
                    .collect();
                c.set(&e.name, &v).unwrap();
            }
            let xs: Vec<f32> = (0..35)
                .map(|i| ((i * 13 % 11) as f32 / 11.0) - 0.5)
                .collect();
            let ys: Vec<f32> = (0..7).map(|i| i as f32 * 0.2 - 0.6).collect();
            c.set("x", &xs).unwrap();
            c.set("y", &ys).unwrap();
            c.step().unwrap();
            let grads: Vec<Vec<f32>> = tr.grads.iter().map(|&v| c.read(v).unwrap()).collect();
            (grads, c.dispatches())
        };
        let (plain, d_plain) = run(None);
        let scale = LossScale {
            init: 1024.0,
            growth_interval: 2000,
        };
        let (scaled, d_scaled) = run(Some(scale));
        let divides = d_scaled
            .iter()
            .filter(|(_, k)| *k == "binary_forward")
            .count();
        assert_eq!(divides, 0, "a Div per f32 gradient: {d_scaled:?}");
        // The scale's copy is the seed itself: at most one dispatch more than unscaled.
        assert!(
            d_scaled.len() <= d_plain.len() + 1,
            "{d_scaled:?} vs {d_plain:?}"
        );
        for (k, (a, b)) in scaled.iter().zip(&plain).enumerate() {
            let m = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(m > 0.0, "gradient {k} is zero");
            for (u, v) in a.iter().zip(b) {
                assert!((u - v).abs() <= 1e-3 * m, "gradient {k}: {u} vs {v}");
            }
        }
    });
}
