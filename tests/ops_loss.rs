//! Loss kernels vs the CPU f64 reference: every kind × every reduction, with and without
//! per-sample and class weights, label smoothing, index and dense labels, on awkward shapes.

mod common;

use common::{assert_close, each_device};
use wgtrain::ops::loss::gpu::{self as loss, GpuLoss};
use wgtrain::ops::loss::reference::{Labels, loss_backward, loss_forward, suitable_inputs};
use wgtrain::ops::loss::{Loss, LossKind, Reduction};
use wgtrain::reference::Array;
use wgtrain::{DType, Device, Tensor};

fn up(dev: &Device, a: &Array) -> Tensor {
    Tensor::from_f32(dev, &a.shape, &a.to_f32()).unwrap()
}

/// The f32 values the GPU sees, back in f64, so the reference starts from identical inputs.
fn rounded(a: &Array) -> Array {
    Array::from_f32(&a.shape, &a.to_f32())
}

const REDUCTIONS: [Reduction; 4] = [
    Reduction::None,
    Reduction::Sum,
    Reduction::Mean,
    Reduction::SumByNonZeroWeights,
];

fn class_weights(d: usize) -> Option<Vec<f32>> {
    Some((0..d).map(|c| 0.5 + (c % 3) as f32 * 0.25).collect())
}

/// Every kind, the cross-entropies also with smoothing and class weights, for D classes.
fn kinds(d: usize) -> Vec<LossKind> {
    vec![
        LossKind::SoftmaxCrossEntropy {
            label_smoothing: 0.0,
            class_weights: None,
        },
        LossKind::SoftmaxCrossEntropy {
            label_smoothing: 0.1,
            class_weights: class_weights(d),
        },
        LossKind::SigmoidCrossEntropy {
            label_smoothing: 0.2,
        },
        LossKind::CategoricalCrossEntropy {
            label_smoothing: 0.0,
            class_weights: None,
        },
        LossKind::CategoricalCrossEntropy {
            label_smoothing: 0.1,
            class_weights: class_weights(d),
        },
        LossKind::MeanSquaredError,
        LossKind::MeanAbsoluteError,
        LossKind::Huber { delta: 0.5 },
        LossKind::Hinge,
        LossKind::KlDivergence {
            log_input: false,
            log_target: false,
        },
        LossKind::kl_div(false),
        LossKind::kl_div(true),
        LossKind::CosineDistance,
    ]
}

/// The reference's suitable inputs for each kind, rounded to f32 (what the GPU is given).
fn inputs(kind: &LossKind, shape: &[usize]) -> (Array, Array) {
    let (x, t) = suitable_inputs(kind, shape);
    (rounded(&x), rounded(&t))
}

/// One case: GPU forward (loss and per-sample companion) and backward vs the reference.
fn check_case(
    dev: &Device,
    loss: &Loss,
    x: &Array,
    labels: &Labels,
    w: Option<&Array>,
    what: &str,
) {
    let n = x.shape[0];
    let gx = up(dev, x);
    let glab = match labels {
        Labels::Dense(t) => up(dev, t),
        Labels::Indices(i) => {
            let v: Vec<u32> = i.iter().map(|&k| k as u32).collect();
            Tensor::from_u32(dev, &[n], &v).unwrap()
        }
    };
    let gw = w.map(|w| up(dev, w));
    let out = loss::loss_forward(loss, &gx, &glab, gw.as_ref()).unwrap();
    let want = loss_forward(loss, x, labels, w).unwrap();
    assert_eq!(out.loss.shape(), &want.shape[..], "{what}");
    assert_close(
        &format!("{what} loss"),
        &out.loss.to_f32().unwrap(),
        &want.data,
        1e-5,
        1e-4,
    );
    let per = Loss {
        reduction: Reduction::None,
        ..loss.clone()
    };
    assert_close(
        &format!("{what} per-sample"),
        &out.per_sample.to_f32().unwrap(),
        &loss_forward(&per, x, labels, w).unwrap().data,
        1e-5,
        1e-4,
    );
    let dl = rounded(&Array::seeded(&loss.output_shape(n), 7).map_scaled(2.0));
    let dx = loss::loss_backward(loss, &gx, &glab, gw.as_ref(), &up(dev, &dl)).unwrap();
    assert_eq!(dx.shape(), &x.shape[..], "{what}");
    assert_close(
        &format!("{what} dx"),
        &dx.to_f32().unwrap(),
        &loss_backward(loss, x, labels, w, &dl).unwrap().data,
        1e-5,
        1e-4,
    );
}

#[test]
fn every_kind_reduction_weighting_and_label_form() {
    each_device("loss", |dev| {
        // N = 1 and 7; D = 1, 10, 33, and D = 10 as trailing dims (2, 5). D = 130 and N = 70
        // pass the 64-wide workgroup, so rows and the weight count take several strides.
        let shapes: [&[usize]; 6] = [&[1, 10], &[7, 33], &[7, 1], &[7, 2, 5], &[2, 130], &[70, 3]];
        for shape in shapes {
            let n = shape[0];
            let d: usize = shape[1..].iter().product();
            let mut w = Array::seeded(&[n], 3);
            w.data.iter_mut().for_each(|v| *v = v.abs() + 0.5);
            w.data[0] = 0.0; // exercises SumByNonZeroWeights' count (and its 0 divisor at N = 1)
            let w = rounded(&w);
            let idx: Vec<usize> = (0..n).map(|s| (s * 5 + 1) % d).collect();
            for kind in kinds(d) {
                let (x, t) = inputs(&kind, shape);
                for r in REDUCTIONS {
                    let loss = Loss::new(kind.clone(), r).unwrap();
                    for wt in [None, Some(&w)] {
                        let what = format!("{} {r:?} {shape:?} w={}", loss.name(), wt.is_some());
                        check_case(dev, &loss, &x, &Labels::Dense(&t), wt, &what);
                        if loss.accepts_class_indices() {
                            let what = format!("{what} indices");
                            check_case(dev, &loss, &x, &Labels::Indices(&idx), wt, &what);
                        }
                    }
                }
            }
        }
    });
}

#[test]
fn softmax_ce_extremes() {
    each_device("loss extremes", |dev| {
        // A confident right answer (no overflow in exp), uniform logits (ln C), huge sigmoid logits.
        let ce = Loss::softmax_cross_entropy(Reduction::Mean);
        let x = Array::new(&[2, 4], vec![80.0, 0.0, -80.0, 1.0, 0.3, 0.3, 0.3, 0.3]);
        let lab = Tensor::from_u32(dev, &[2], &[0, 3]).unwrap();
        let l = loss::loss_forward(&ce, &up(dev, &x), &lab, None).unwrap();
        let v = l.loss.to_f32().unwrap()[0] as f64;
        assert!((v - 4f64.ln() / 2.0).abs() < 1e-6, "{v}");
        let sce = Loss::new(
            LossKind::SigmoidCrossEntropy {
                label_smoothing: 0.0,
            },
            Reduction::Sum,
        )
        .unwrap();
        let x = Array::new(&[1, 2], vec![1000.0, -1000.0]);
        let t = Array::new(&[1, 2], vec![1.0, 1.0]);
        let l = loss::loss_forward(&sce, &up(dev, &x), &up(dev, &t), None).unwrap();
        // Summed over both elements, as PyTorch: 0 + 1000.
        assert_eq!(l.loss.to_f32().unwrap(), vec![1000.0]);
    });
}

#[test]
fn launches_replay_into_caller_outputs() {
    each_device("loss launch", |dev| {
        // Prepared once, replayed as the data changes; the per-sample companion is always written.
        let loss = Loss::new(
            LossKind::SoftmaxCrossEntropy {
                label_smoothing: 0.05,
                class_weights: Some(vec![1.0, 2.0, 0.5]),
            },
            Reduction::Mean,
        )
        .unwrap();
        let k = GpuLoss::new(dev, &loss).unwrap();
        let (gx, lab) = (
            Tensor::zeros(dev, &[4, 3], DType::F32).unwrap(),
            Tensor::zeros(dev, &[4, 3], DType::F32).unwrap(),
        );
        let per = Tensor::zeros(dev, &[4], DType::F32).unwrap();
        let red = Tensor::zeros(dev, &[1], DType::F32).unwrap();
        let one = Tensor::from_f32(dev, &[1], &[1.0]).unwrap();
        let dx = Tensor::zeros(dev, &[4, 3], DType::F32).unwrap();
        let mut step = loss::loss_forward_launch(&k, &gx, &lab, None, &per, Some(&red)).unwrap();
        assert_eq!(step.len(), 2);
        step.push(loss::loss_backward_launch(&k, &gx, &lab, None, &one, &dx).unwrap());
        for (seed, labels) in [(9, [0usize, 1, 2, 1]), (10, [2, 2, 0, 1])] {
            let x = rounded(&Array::seeded(&[4, 3], seed).map_scaled(2.0));
            let mut t = Array::zeros(&[4, 3]);
            labels
                .iter()
                .enumerate()
                .for_each(|(s, &c)| t.data[s * 3 + c] = 1.0);
            gx.write_f32(&x.to_f32()).unwrap();
            lab.write_f32(&t.to_f32()).unwrap();
            dev.run(&step).unwrap();
            // Dense one-hot labels: Mean divides by N (PyTorch's rule for probability targets).
            let l = Labels::Dense(&t);
            let want = loss_forward(&loss, &x, &l, None).unwrap();
            assert_close(
                "replayed loss",
                &red.to_f32().unwrap(),
                &want.data,
                1e-5,
                1e-4,
            );
            let none = Loss {
                reduction: Reduction::None,
                ..loss.clone()
            };
            let want = loss_forward(&none, &x, &l, None).unwrap();
            assert_close(
                "replayed per-sample",
                &per.to_f32().unwrap(),
                &want.data,
                1e-5,
                1e-4,
            );
            let g = loss_backward(&loss, &x, &l, None, &Array::new(&[1], vec![1.0])).unwrap();
            assert_close("replayed dx", &dx.to_f32().unwrap(), &g.data, 1e-5, 1e-4);
        }
    });
}

fn err<T: std::fmt::Debug>(r: wgtrain::Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn bad_inputs_are_errors() {
    each_device("loss errors", |dev| {
        let ce = Loss::softmax_cross_entropy(Reduction::Mean);
        let x = up(dev, &Array::seeded(&[3, 4], 1));
        let dense = |s: &[usize]| Tensor::zeros(dev, s, DType::F32).unwrap();
        let idx = |v: &[u32]| Tensor::from_u32(dev, &[v.len()], v).unwrap();

        let e = err(loss::loss_forward(&ce, &x, &dense(&[3, 5]), None));
        assert!(
            e.contains("softmax_cross_entropy") && e.contains("(3, 5)") && e.contains("(3, 4)"),
            "{e}"
        );
        // Out-of-range class index: rejected on the host, naming the sample, forward and backward.
        let e = err(loss::loss_forward(&ce, &x, &idx(&[0, 4, 1]), None));
        assert!(
            e.contains("softmax_cross_entropy")
                && e.contains("class index 4")
                && e.contains("sample 1")
                && e.contains("4 classes")
                && e.contains("(3, 4)"),
            "{e}"
        );
        let dl = dense(&[1]);
        let e = err(loss::loss_backward(&ce, &x, &idx(&[0, 1, 9]), None, &dl));
        assert!(e.contains("class index 9") && e.contains("sample 2"), "{e}");
        let e = err(loss::loss_forward(&ce, &x, &idx(&[0, 1]), None));
        assert!(e.contains("labels (2)") && e.contains("(3, 4)"), "{e}");
        let mse = Loss::new(LossKind::MeanSquaredError, Reduction::Sum).unwrap();
        let e = err(loss::loss_forward(&mse, &x, &idx(&[0, 1, 2]), None));
        assert!(e.contains("mse") && e.contains("class-index"), "{e}");
        let e = err(loss::loss_forward(
            &mse,
            &x,
            &dense(&[3, 4]),
            Some(&dense(&[4])),
        ));
        assert!(e.contains("weights (4)") && e.contains("(3, 4)"), "{e}");
        let e = err(loss::loss_backward(
            &mse,
            &x,
            &dense(&[3, 4]),
            None,
            &dense(&[3]),
        ));
        assert!(
            e.contains("mse") && e.contains("dloss (3)") && e.contains("(1)"),
            "{e}"
        );
        let cw = Loss::new(
            LossKind::SoftmaxCrossEntropy {
                label_smoothing: 0.0,
                class_weights: Some(vec![1.0; 3]),
            },
            Reduction::Sum,
        )
        .unwrap();
        let e = err(loss::loss_forward(&cw, &x, &dense(&[3, 4]), None));
        assert!(
            e.contains("class_weights (3)") && e.contains("4 classes"),
            "{e}"
        );
        let e = err(loss::loss_forward(
            &ce,
            &x,
            &Tensor::from_u32(dev, &[3, 1], &[0, 1, 2]).unwrap(),
            None,
        ));
        assert!(e.contains("u32 labels") && e.contains("(3, 1)"), "{e}");

        // The launch API: a reducing loss needs its (1) output, of the right shape.
        let k = GpuLoss::new(dev, &ce).unwrap();
        let per = dense(&[3]);
        let e = err(loss::loss_forward_launch(
            &k,
            &x,
            &idx(&[0, 1, 2]),
            None,
            &per,
            None,
        ));
        assert!(
            e.contains("softmax_cross_entropy") && e.contains("Mean"),
            "{e}"
        );
        let e = err(loss::loss_forward_launch(
            &k,
            &x,
            &idx(&[0, 1, 2]),
            None,
            &dense(&[2]),
            Some(&dense(&[1])),
        ));
        assert!(
            e.contains("per-sample output (2)") && e.contains("(3)"),
            "{e}"
        );
        // Unchecked out-of-range indices through the launch API poison only their sample.
        let l = loss::loss_forward_launch(&k, &x, &idx(&[0, 7, 2]), None, &per, Some(&dl)).unwrap();
        dev.run(&l).unwrap();
        let v = per.to_f32().unwrap();
        assert!(
            v[0].is_finite() && v[1].is_nan() && v[2].is_finite(),
            "{v:?}"
        );
        assert!(dl.to_f32().unwrap()[0].is_nan());
    });
}

/// Compiles `loss(x, t)` (with `gradients` w.r.t. x of the loss output summed), feeds it, runs
/// one step: (port 0, port 1, dx).
fn compiled_loss(
    dev: &Device,
    loss: &Loss,
    x: &Array,
    labels: &[u32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut g = wgtrain::Graph::new();
    let xv = g.input("x", &x.shape).unwrap();
    let t = g.input_u32("t", &[labels.len()]).unwrap();
    let l = g.loss("loss", xv, t, None, loss.clone()).unwrap();
    let per = wgtrain::Value {
        node: l.node,
        port: 1,
    };
    let dx = g.gradients(l, &[xv]).unwrap()[0];
    let c = g
        .compile(dev, &[l, per, dx], &wgtrain::Options::default())
        .unwrap();
    c.set("x", &x.to_f32()).unwrap();
    c.set_u32("t", labels).unwrap();
    c.step().unwrap();
    (
        c.read(l).unwrap(),
        c.read(per).unwrap(),
        c.read(dx).unwrap(),
    )
}

#[test]
fn reduction_none_fills_port_0_in_a_compiled_graph() {
    each_device("loss none compiled", |dev| {
        let x = rounded(&Array::seeded(&[5, 4], 3).map_scaled(2.0));
        let idx = [0usize, 3, 1, 1, 2];
        let lab: Vec<u32> = idx.iter().map(|&k| k as u32).collect();
        let none = Loss::new(
            LossKind::SoftmaxCrossEntropy {
                label_smoothing: 0.1,
                class_weights: class_weights(4),
            },
            Reduction::None,
        )
        .unwrap();
        let (y, per, dx) = compiled_loss(dev, &none, &x, &lab);
        let want = loss_forward(&none, &x, &Labels::Indices(&idx), None).unwrap();
        assert_eq!(want.shape, [5]);
        assert_close("port 0", &y, &want.data, 1e-5, 1e-4);
        assert_close("port 1", &per, &want.data, 1e-5, 1e-4);
        assert!(y.iter().all(|v| *v > 0.0), "{y:?}");
        let ones = Array::new(&[5], vec![1.0; 5]);
        let g = loss_backward(&none, &x, &Labels::Indices(&idx), None, &ones).unwrap();
        assert_close("dx", &dx, &g.data, 1e-5, 1e-4);
        // In a training graph (parameters in the arena, gradient of Σ per-sample losses).
        let mut g = wgtrain::Graph::new();
        let xv = g.input("x", &[5, 4]).unwrap();
        let t = g.input_u32("t", &[5]).unwrap();
        let h = g
            .dense("fc", xv, wgtrain::FullyConnected::new(4, 4))
            .unwrap();
        let l = g.loss("loss", h, t, None, none.clone()).unwrap();
        let training = g.training(l).unwrap();
        let opts = wgtrain::Options {
            training: Some(&training),
            gradients_only: true,
            ..wgtrain::Options::default()
        };
        let c = g.compile(dev, &[l], &opts).unwrap();
        let fc_w = rounded(&Array::seeded(&[4, 4], 8));
        c.set("x", &x.to_f32()).unwrap();
        c.set_u32("t", &lab).unwrap();
        c.set("fc.weight", &fc_w.to_f32()).unwrap();
        c.set("fc.bias", &[0.0; 4]).unwrap();
        c.step().unwrap();
        let feeds = std::collections::HashMap::from([
            ("x".to_string(), x.clone()),
            (
                "t".to_string(),
                Array::new(&[5], idx.iter().map(|&k| k as f64).collect()),
            ),
            ("fc.weight".to_string(), fc_w),
            ("fc.bias".to_string(), Array::zeros(&[4])),
        ]);
        let want_t = g.eval_reference(&feeds, &[l]).unwrap();
        let got = c.read(l).unwrap();
        assert_close("training port 0", &got, &want_t[0].data, 1e-5, 1e-4);
        assert!(got.iter().all(|v| *v > 0.0), "{got:?}");
        // Only port 0 requested: still the per-sample losses.
        let mut g = wgtrain::Graph::new();
        let xv = g.input("x", &[5, 4]).unwrap();
        let t = g.input_u32("t", &[5]).unwrap();
        let l = g.loss("loss", xv, t, None, none.clone()).unwrap();
        let c = g.compile(dev, &[l], &wgtrain::Options::default()).unwrap();
        c.set("x", &x.to_f32()).unwrap();
        c.set_u32("t", &lab).unwrap();
        c.step().unwrap();
        assert_close("port 0 alone", &c.read(l).unwrap(), &want.data, 1e-5, 1e-4);
    });
}

/// Runs a dense-label loss on the GPU: the reduced loss and dx (for dloss 1), both also checked
/// against the reference.
fn gpu_loss(dev: &Device, loss: &Loss, x: &Array, t: &Array) -> (f64, Vec<f32>) {
    let out = loss::loss_forward(loss, &up(dev, x), &up(dev, t), None).unwrap();
    let v = out.loss.to_f32().unwrap()[0] as f64;
    let want = loss_forward(loss, x, &Labels::Dense(t), None).unwrap().data[0];
    assert!(
        (v - want).abs() <= 1e-5 * want.abs().max(1.0),
        "{v} vs {want}"
    );
    let one = Array::new(&[1], vec![1.0]);
    let dx = loss::loss_backward(loss, &up(dev, x), &up(dev, t), None, &up(dev, &one)).unwrap();
    (v, dx.to_f32().unwrap())
}

#[test]
fn pytorch_numbers() {
    each_device("loss pytorch", |dev| {
        // F.cross_entropy(x, y, weight=w) with x = [[1, 2, 3]] * 2, y = [0, 2], w = [1, 2, 3]:
        // per-sample −log_softmax: lse = ln(e + e² + e³) = 3.4076059644443806, so 2.40760596…
        // and 0.40760596…; mean = (1·2.4076 + 3·0.4076) / (1 + 3).
        let lse = 3.4076059644443806f64;
        let ce = Loss::new(
            LossKind::SoftmaxCrossEntropy {
                label_smoothing: 0.0,
                class_weights: Some(vec![1.0, 2.0, 3.0]),
            },
            Reduction::Mean,
        )
        .unwrap();
        let x = Array::new(&[2, 3], vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
        let lab = Tensor::from_u32(dev, &[2], &[0, 2]).unwrap();
        let out = loss::loss_forward(&ce, &up(dev, &x), &lab, None).unwrap();
        let want = (1.0 * (lse - 1.0) + 3.0 * (lse - 3.0)) / 4.0;
        assert!((want - 0.9076059644443806).abs() < 1e-12);
        let got = out.loss.to_f32().unwrap()[0] as f64;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        let r = loss_forward(&ce, &x, &Labels::Indices(&[0, 2]), None).unwrap();
        assert!((r.data[0] - want).abs() < 1e-14);
        // With label_smoothing=0.3: Σ_n [0.7·w_y·(lse − x_y) + 0.1·Σ_c w_c·(lse − x_c)] / Σ w_y
        // (PyTorch divides the smoothing term by Σ w_y too).
        let smooth = Loss::new(
            LossKind::SoftmaxCrossEntropy {
                label_smoothing: 0.3,
                class_weights: Some(vec![1.0, 2.0, 3.0]),
            },
            Reduction::Mean,
        )
        .unwrap();
        let all: f64 = (1..=3).map(|c| c as f64 * (lse - c as f64)).sum();
        let want_s = (0.7 * (lse - 1.0) + 0.1 * all + 0.7 * 3.0 * (lse - 3.0) + 0.1 * all) / 4.0;
        let out = loss::loss_forward(&smooth, &up(dev, &x), &lab, None).unwrap();
        let got = out.loss.to_f32().unwrap()[0] as f64;
        assert!((got - want_s).abs() < 1e-6, "{got} vs {want_s}");
        // Its gradient: w_y·(softmax − onehot) / Σ w_y.
        let one = Tensor::from_f32(dev, &[1], &[1.0]).unwrap();
        let dx = loss::loss_backward(&ce, &up(dev, &x), &lab, None, &one).unwrap();
        let p: Vec<f64> = [1.0f64, 2.0, 3.0].iter().map(|v| (v - lse).exp()).collect();
        let want_dx = [
            (p[0] - 1.0) / 4.0,
            p[1] / 4.0,
            p[2] / 4.0,
            3.0 * p[0] / 4.0,
            3.0 * p[1] / 4.0,
            3.0 * (p[2] - 1.0) / 4.0,
        ];
        assert_close(
            "weighted ce dx",
            &dx.to_f32().unwrap(),
            &want_dx,
            1e-6,
            1e-5,
        );

        // F.mse_loss / l1_loss on x = [[1, 2], [3, 4]], t = 0: sum 30 / 10, mean 7.5 / 2.5.
        let x = Array::new(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let t = Array::zeros(&[2, 2]);
        for (kind, sum, mean) in [
            (LossKind::MeanSquaredError, 30.0, 7.5),
            (LossKind::MeanAbsoluteError, 10.0, 2.5),
        ] {
            let s = Loss::new(kind.clone(), Reduction::Sum).unwrap();
            let (v, dx) = gpu_loss(dev, &s, &x, &t);
            assert_eq!(v, sum, "{kind:?} sum");
            // d sum / dx: 2x for MSE, sign(x) for MAE — no 1/D.
            let want: Vec<f64> = x
                .data
                .iter()
                .map(|&v| if sum == 30.0 { 2.0 * v } else { 1.0 })
                .collect();
            assert_close("sum dx", &dx, &want, 1e-6, 1e-6);
            let m = Loss::new(kind.clone(), Reduction::Mean).unwrap();
            assert_eq!(gpu_loss(dev, &m, &x, &t).0, mean, "{kind:?} mean");
        }
        // F.binary_cross_entropy_with_logits(x, t, reduction='sum') at x = 0: 4·ln 2.
        let bce = Loss::new(
            LossKind::SigmoidCrossEntropy {
                label_smoothing: 0.0,
            },
            Reduction::Sum,
        )
        .unwrap();
        let (v, _) = gpu_loss(dev, &bce, &Array::zeros(&[2, 2]), &x.map_scaled(0.1));
        assert!((v - 4.0 * 2f64.ln()).abs() < 1e-6, "{v}");

        // F.kl_div(ln q, p, reduction='sum') with q = [0.25, 0.75], p = [0.5, 0.5]:
        // 0.5·ln(0.5/0.25) + 0.5·ln(0.5/0.75) = 0.5·ln(4/3); log_target=True takes ln p.
        let lq = Array::new(&[1, 2], vec![0.25f64.ln(), 0.75f64.ln()]);
        let p = Array::new(&[1, 2], vec![0.5, 0.5]);
        let lp = Array::new(&[1, 2], vec![0.5f64.ln(); 2]);
        let want = 0.5 * (4.0f64 / 3.0).ln();
        for (log_target, t) in [(false, &p), (true, &lp)] {
            let kl = Loss::new(LossKind::kl_div(log_target), Reduction::Sum).unwrap();
            let (v, dx) = gpu_loss(dev, &kl, &rounded(&lq), &rounded(t));
            assert!(
                (v - want).abs() < 1e-6,
                "log_target {log_target}: {v} vs {want}"
            );
            // d/d(ln q) = −p.
            assert_close("kl dx", &dx, &[-0.5, -0.5], 1e-6, 1e-6);
        }
        // 'batchmean' is our Mean: the same over one sample.
        let kl = Loss::new(LossKind::kl_div(false), Reduction::Mean).unwrap();
        let (v, _) = gpu_loss(dev, &kl, &rounded(&lq), &p);
        assert!((v - want).abs() < 1e-6, "{v}");
    });
}
