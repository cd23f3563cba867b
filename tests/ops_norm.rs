//! Normalisation, softmax and dropout kernels vs the CPU f64 reference on awkward small shapes,
//! on every adapter: forwards, gradients, saved states, running-stat updates, error messages.

mod common;

use common::{assert_close, chunk_stats, close_to, each_device};
use wgtrain::ops::dropout::gpu as gdrop;
use wgtrain::ops::dropout::reference as rdrop;
use wgtrain::ops::dropout::{Dropout, dropout_mask};
use wgtrain::ops::norm::gpu::{self as gnorm, Norm};
use wgtrain::ops::norm::reference as rnorm;
use wgtrain::ops::norm::{BatchNorm, GroupNorm, InstanceNorm, LayerNorm};
use wgtrain::ops::softmax::Softmax;
use wgtrain::ops::softmax::gpu as gsoft;
use wgtrain::ops::softmax::reference as rsoft;
use wgtrain::reference::{Array, f32_tol};
use wgtrain::{DType, Device, Error, Tensor};

fn up(dev: &Device, a: &Array) -> Tensor {
    Tensor::from_f32(dev, &a.shape, &a.to_f32()).unwrap()
}

/// The f32 values the GPU sees, back in f64, so references start from identical inputs.
fn rounded(a: &Array) -> Array {
    Array::from_f32(&a.shape, &a.to_f32())
}

/// Seeded values scaled by `s` and shifted by `o`, rounded to f32.
fn input(shape: &[usize], seed: u64, s: f64, o: f64) -> Array {
    rounded(&Array::new(
        shape,
        Array::seeded(shape, seed)
            .data
            .iter()
            .map(|v| v * s + o)
            .collect(),
    ))
}

fn get(t: &Tensor) -> Vec<f32> {
    t.to_f32().unwrap()
}

/// γ, β for the GPU (None when not affine) and the values the reference uses (1, 0).
fn affine(
    dev: &Device,
    shape: &[usize],
    on: bool,
) -> (Option<Tensor>, Option<Tensor>, Array, Array) {
    if on {
        let (g, b) = (input(shape, 2, 1.0, 1.5), input(shape, 3, 1.0, 0.0));
        (Some(up(dev, &g)), Some(up(dev, &b)), g, b)
    } else {
        let n = shape.iter().product();
        (
            None,
            None,
            Array::new(shape, vec![1.0; n]),
            Array::zeros(shape),
        )
    }
}

fn check_grads(what: &str, g: &gnorm::NormGrads, r: &rnorm::NormGrads) {
    assert_close(&format!("{what} dx"), &get(&g.dx), &r.dx.data, 2e-5, 2e-4);
    assert_close(
        &format!("{what} dgamma"),
        &get(&g.dgamma),
        &r.dgamma.data,
        1e-4,
        2e-4,
    );
    assert_close(
        &format!("{what} dbeta"),
        &get(&g.dbeta),
        &r.dbeta.data,
        1e-4,
        2e-4,
    );
}

const BN_SHAPES: [&[usize]; 5] = [
    &[7, 3],
    &[1, 3, 5, 7],
    &[2, 33, 3],
    &[3, 1, 1, 7],
    &[2, 3, 9, 17],
];

#[test]
fn batch_norm_training_forward_backward_running_stats() {
    each_device("batch_norm train", |dev| {
        // PyTorch's defaults on inputs of mean 20 and variance 3 (the variance must not
        // cancel), and eps 0.5 with momentum 0.7 on inputs of variance 0.03, where eps and the
        // momentum each change every output.
        for (eps, momentum, spread, mean) in [(1e-5, 0.1, 3.0, 20.0), (0.5, 0.7, 0.3, -1.0)] {
            batch_norm_training_case(dev, BatchNorm::new(eps, momentum).unwrap(), spread, mean);
        }
    });
}

/// Forward, statistics, two running-statistics updates and the gradients of batch norm `bn` in
/// training on inputs uniform in `mean ± spread`.
fn batch_norm_training_case(dev: &Device, bn: BatchNorm, spread: f64, mean: f64) {
    for shape in BN_SHAPES {
        for on in [true, false] {
            let what = format!("batch_norm train {shape:?} affine={on} {bn:?}");
            let c = [shape[1]];
            let (g, b, rg, rb) = affine(dev, &c, on);
            let rm = input(&c, 5, 1.0, 0.0);
            let rv = input(&c, 6, 0.5, 1.0);
            let (grm, grv) = (up(dev, &rm), up(dev, &rv));
            let x = input(shape, 1, spread, mean);
            let r = rnorm::batch_norm_train(&bn, &x, &rg, &rb, &rm, &rv).unwrap();
            let (y, state) =
                gnorm::batch_norm_train(&bn, &up(dev, &x), g.as_ref(), b.as_ref(), &grm, &grv)
                    .unwrap();
            assert_eq!(state.shape(), &[2, shape[1]]);
            assert_close(&format!("{what} y"), &get(&y), &r.y.data, 1e-4, 1e-4);
            let want_state: Vec<f64> = r.mean.data.iter().chain(&r.var.data).copied().collect();
            assert_close(
                &format!("{what} state"),
                &get(&state),
                &want_state,
                1e-5,
                1e-5,
            );
            assert_close(
                &format!("{what} rmean"),
                &get(&grm),
                &r.running_mean.data,
                1e-5,
                1e-5,
            );
            assert_close(
                &format!("{what} rvar"),
                &get(&grv),
                &r.running_var.data,
                1e-5,
                1e-5,
            );
            // A second step moves the already-updated running stats again.
            let x2 = input(shape, 7, 1.0, -2.0);
            let (rm1, rv1) = (rounded(&r.running_mean), rounded(&r.running_var));
            let (grm, grv) = (up(dev, &rm1), up(dev, &rv1));
            let r2 = rnorm::batch_norm_train(&bn, &x2, &rg, &rb, &rm1, &rv1).unwrap();
            gnorm::batch_norm_train(&bn, &up(dev, &x2), g.as_ref(), b.as_ref(), &grm, &grv)
                .unwrap();
            assert_close(
                &format!("{what} rmean 2"),
                &get(&grm),
                &r2.running_mean.data,
                1e-5,
                1e-5,
            );
            assert_close(
                &format!("{what} rvar 2"),
                &get(&grv),
                &r2.running_var.data,
                1e-5,
                1e-5,
            );
            let dy = input(shape, 4, 1.0, 0.0);
            let rg_ = rnorm::batch_norm_train_backward(&bn, &x, &rg, &dy).unwrap();
            let gg = gnorm::batch_norm_train_backward(
                &bn,
                &up(dev, &x),
                g.as_ref(),
                &state,
                &up(dev, &dy),
            )
            .unwrap();
            check_grads(&what, &gg, &rg_);
        }
    }
}

#[test]
fn batch_norm_inference_forward_backward() {
    each_device("batch_norm infer", |dev| {
        // The default eps on running variances in [0.5, 1.5), and eps 0.5 on running variances
        // in [0.02, 0.06), where it dominates.
        for (bn, rv_spread, rv_mean) in [
            (BatchNorm::default(), 0.5, 1.0),
            (BatchNorm::new(0.5, 0.1).unwrap(), 0.02, 0.04),
        ] {
            for shape in [&[1usize, 3][..], &[7, 3], &[1, 33, 5], &[3, 1, 1, 7]] {
                for on in [true, false] {
                    let what = format!("batch_norm infer {shape:?} affine={on} {bn:?}");
                    let c = [shape[1]];
                    let (g, b, rg, rb) = affine(dev, &c, on);
                    let rm = input(&c, 5, 1.0, 0.0);
                    let rv = input(&c, 6, rv_spread, rv_mean);
                    let x = input(shape, 1, 2.0, 0.5);
                    let dy = input(shape, 4, 1.0, 0.0);
                    let (gx, grm, grv) = (up(dev, &x), up(dev, &rm), up(dev, &rv));
                    let y = gnorm::batch_norm_infer(&bn, &gx, g.as_ref(), b.as_ref(), &grm, &grv)
                        .unwrap();
                    let ry = rnorm::batch_norm_infer(&bn, &x, &rg, &rb, &rm, &rv).unwrap();
                    assert_close(&format!("{what} y"), &get(&y), &ry.data, 1e-5, 1e-5);
                    let gg = gnorm::batch_norm_infer_backward(
                        &bn,
                        &gx,
                        g.as_ref(),
                        &grm,
                        &grv,
                        &up(dev, &dy),
                    )
                    .unwrap();
                    let rgr =
                        rnorm::batch_norm_infer_backward(&bn, &x, &rg, &rm, &rv, &dy).unwrap();
                    check_grads(&what, &gg, &rgr);
                    // Running stats are read, not written.
                    assert_eq!(get(&grm), rm.to_f32());
                    assert_eq!(get(&grv), rv.to_f32());
                }
            }
        }
    });
}

/// Forward (y, state) and backward of a per-sample norm against the reference.
#[allow(clippy::too_many_arguments)]
fn per_sample_case(
    dev: &Device,
    op: Norm,
    shape: &[usize],
    pshape: &[usize],
    m: usize,
    on: bool,
    rfwd: impl Fn(&Array, &Array, &Array) -> Array,
    rbwd: impl Fn(&Array, &Array, &Array) -> rnorm::NormGrads,
) {
    let what = format!("{} {op:?} {shape:?} affine={on}", op.name());
    let (g, b, rg, rb) = affine(dev, pshape, on);
    let x = input(shape, 1, 3.0, -4.0);
    let dy = input(shape, 4, 1.0, 0.0);
    let gx = up(dev, &x);
    let (y, state) = gnorm::norm(&op, &gx, g.as_ref(), b.as_ref()).unwrap();
    assert_eq!(state.shape(), &op.state_shape(shape).unwrap()[..]);
    assert_close(
        &format!("{what} y"),
        &get(&y),
        &rfwd(&x, &rg, &rb).data,
        1e-4,
        1e-4,
    );
    assert_close(
        &format!("{what} state"),
        &get(&state),
        &chunk_stats(&x, m),
        1e-5,
        1e-5,
    );
    let gg = gnorm::norm_backward(&op, &gx, g.as_ref(), &state, &up(dev, &dy)).unwrap();
    check_grads(&what, &gg, &rbwd(&x, &rg, &dy));
}

#[test]
fn instance_norm_forward_backward() {
    each_device("instance_norm", |dev| {
        let op = InstanceNorm::default();
        for shape in [
            &[1usize, 3, 33][..],
            &[3, 2, 7],
            &[2, 4, 3, 5],
            &[7, 3, 1],
            &[1, 1, 300],
        ] {
            let s: usize = shape[2..].iter().product();
            for on in [true, false] {
                per_sample_case(
                    dev,
                    op.into(),
                    shape,
                    &[shape[1]],
                    s,
                    on,
                    |x, g, b| rnorm::instance_norm(&op, x, g, b).unwrap(),
                    |x, g, dy| rnorm::instance_norm_backward(&op, x, g, dy).unwrap(),
                );
            }
        }
    });
}

#[test]
fn group_norm_forward_backward() {
    each_device("group_norm", |dev| {
        let cases: [(&[usize], &[usize]); 5] = [
            (&[3, 4, 7], &[1, 2, 4]),
            (&[2, 6, 3, 3], &[1, 3, 6]),
            (&[1, 33, 5], &[1, 3, 11, 33]),
            (&[7, 3], &[1, 3]),
            (&[2, 2, 200], &[1]),
        ];
        for (shape, groups) in cases {
            for &gr in groups {
                let op = GroupNorm::new(gr, 1e-5).unwrap();
                let m = shape[1] / gr * shape[2..].iter().product::<usize>();
                for on in [true, false] {
                    per_sample_case(
                        dev,
                        op.into(),
                        shape,
                        &[shape[1]],
                        m,
                        on,
                        |x, g, b| rnorm::group_norm(&op, x, g, b).unwrap(),
                        |x, g, dy| rnorm::group_norm_backward(&op, x, g, dy).unwrap(),
                    );
                }
            }
        }
    });
}

#[test]
fn layer_norm_forward_backward() {
    each_device("layer_norm", |dev| {
        let cases: [(&[usize], &[usize]); 5] = [
            (&[7, 33], &[1, 2]),
            (&[3, 5, 7], &[1, 2, 3]),
            (&[2, 3, 4, 5], &[1, 2]),
            (&[1, 257], &[1]),
            (&[300, 3], &[1]),
        ];
        for (shape, dims) in cases {
            for &d in dims {
                let op = LayerNorm { dims: d, eps: 1e-5 };
                let inner = &shape[shape.len() - d..];
                for on in [true, false] {
                    per_sample_case(
                        dev,
                        op.into(),
                        shape,
                        inner,
                        inner.iter().product(),
                        on,
                        |x, g, b| rnorm::layer_norm(&op, x, g, b).unwrap(),
                        |x, g, dy| rnorm::layer_norm_backward(&op, x, g, dy).unwrap(),
                    );
                }
            }
        }
    });
}

/// Softmax and log-softmax forward and backward checked so every element counts, under the
/// tolerance rule with `n` the softmax axis length: y relative to itself (a probability flushed
/// to zero is off by 100 %), log-softmax absolutely (relative on the probability), softmax's
/// dx = y·(dy − Σ y·dy) relative to y·(1 + |dy| + |Σ y·dy|) and log-softmax's dx = dy − p·Σ dy
/// relative to |dy| + p·Σ|dy| — each the size of its terms, not of the row's largest value.
fn check_softmax(what: &str, op: &Softmax, n: usize, x: &Array, dy: &Array, got: [&[f32]; 2]) {
    let tol = f32_tol(n);
    let y = rsoft::softmax_forward(op, x).unwrap();
    if op.log {
        close_to(&format!("{what} y"), got[0], &y.data, tol);
    } else {
        assert_close(&format!("{what} y"), got[0], &y.data, 1e-30, tol);
    }
    // Backward from the same (rounded) y on both sides, as the GPU ran it.
    let y = rounded(&y);
    let dx = rsoft::softmax_backward(op, &y, dy).unwrap();
    // Σ over the softmax axis of |y·dy| (softmax) or |dy| (log-softmax), broadcast back.
    let axis = op.axis.rem_euclid(x.shape.len() as isize) as usize;
    let inner: usize = x.shape[axis + 1..].iter().product();
    let len = x.shape[axis];
    let row_sum = |i: usize, f: &dyn Fn(usize) -> f64| {
        let (o, j) = (i / (len * inner), i % inner);
        (0..len).map(|k| f((o * len + k) * inner + j)).sum::<f64>()
    };
    for (i, &g) in got[1].iter().enumerate() {
        let (r, d) = (dx.data[i], dy.data[i]);
        let scale = if op.log {
            let p = y.data[i].exp();
            d.abs() + p * row_sum(i, &|k| dy.data[k].abs())
        } else {
            y.data[i] * (1.0 + d.abs() + row_sum(i, &|k| y.data[k] * dy.data[k]).abs())
        };
        let err = (g as f64 - r).abs();
        assert!(
            err <= tol * scale,
            "{what} dx: element {i}: gpu {g} vs reference {r} (err {err:e}, allowed {:e})",
            tol * scale
        );
    }
}

#[test]
fn softmax_every_axis_forward_backward() {
    each_device("softmax", |dev| {
        // Lengths 1, 7, 33, 257 along the first, middle and last axes; both kernel shapes.
        let cases: [(&[usize], &[isize]); 7] = [
            (&[257], &[0]),
            (&[3, 257], &[1, -1]),
            (&[257, 2], &[0]),
            (&[2, 33, 5], &[0, 1, 2]),
            (&[4, 33], &[-1, 0]),
            (&[7, 1], &[0, 1]),
            (&[1, 7], &[0, 1]),
        ];
        for (shape, axes) in cases {
            for &axis in axes {
                for log in [false, true] {
                    let op = Softmax { axis, log };
                    let what = format!("{} {shape:?} axis {axis}", op.name());
                    // Logits in [68, 92): overflow without the max subtraction; probabilities
                    // down to e^-24 ≈ 4e-11, each checked relatively.
                    let x = input(shape, 1, 12.0, 80.0);
                    let dy = input(shape, 2, 1.0, 0.0);
                    let y = gsoft::softmax(&op, &up(dev, &x)).unwrap();
                    let ry = rounded(&rsoft::softmax_forward(&op, &x).unwrap());
                    let dx = gsoft::softmax_backward(&op, &up(dev, &ry), &up(dev, &dy)).unwrap();
                    let n = shape[axis.rem_euclid(shape.len() as isize) as usize];
                    check_softmax(&what, &op, n, &x, &dy, [&get(&y), &get(&dx)]);
                }
            }
        }
    });
}

#[test]
fn dropout_mask_is_bit_identical_and_grads_match() {
    each_device("dropout", |dev| {
        let pairs = [
            (0u64, 0u64),
            (42, 3),
            (0x0123_4567_89ab_cdef, 7),
            (u64::MAX, 1 << 40),
        ];
        for shape in [&[257usize][..], &[3, 33, 5]] {
            let x = input(shape, 1, 1.0, 0.0);
            let dy = input(shape, 2, 1.0, 0.0);
            let (gx, gdy) = (up(dev, &x), up(dev, &dy));
            for (seed, step) in pairs {
                for rate in [0.0f32, 0.5, 0.9] {
                    let what = format!("dropout {shape:?} seed {seed} step {step} rate {rate}");
                    let d = Dropout::new(rate, seed).unwrap();
                    let (y, mask) = gdrop::dropout(&d, step, &gx, true).unwrap();
                    let mask = mask.unwrap();
                    assert_eq!(mask.dtype(), DType::U32);
                    let got: Vec<bool> = mask.to_u32().unwrap().iter().map(|&m| m == 1).collect();
                    assert_eq!(got, dropout_mask(seed, step, x.len(), rate), "{what} mask");
                    let ry = rdrop::dropout_forward(&d, step, &x, true).unwrap();
                    assert_close(&format!("{what} y"), &get(&y), &ry.data, 0.0, 1e-6);
                    let dx = gdrop::dropout_backward(&d, &gdy, Some(&mask)).unwrap();
                    let rdx = rdrop::dropout_backward(&d, step, &dy, true).unwrap();
                    assert_close(&format!("{what} dx"), &get(&dx), &rdx.data, 0.0, 1e-6);
                }
            }
            // Inference: identity, eagerly (same tensor) and as a copy launch.
            let d = Dropout::new(0.5, 1).unwrap();
            let (y, mask) = gdrop::dropout(&d, 0, &gx, false).unwrap();
            assert!(mask.is_none());
            assert_eq!(get(&y), x.to_f32());
            assert_eq!(
                get(&gdrop::dropout_backward(&d, &gdy, None).unwrap()),
                dy.to_f32()
            );
            let y = Tensor::zeros(dev, shape, DType::F32).unwrap();
            dev.run(&[gdrop::dropout_inference_launch(&gx, &y).unwrap()])
                .unwrap();
            assert_eq!(get(&y), x.to_f32());
        }
    });
}

/// The error text, asserting every `needle` is in it.
fn expect_err<T: std::fmt::Debug>(r: Result<T, Error>, needles: &[&str]) {
    let e = r.unwrap_err().to_string();
    for n in needles {
        assert!(e.contains(n), "`{n}` missing from: {e}");
    }
}

#[test]
fn bad_inputs_are_errors_naming_op_and_shape() {
    each_device("norm errors", |dev| {
        let z = |s: &[usize]| Tensor::zeros(dev, s, DType::F32).unwrap();
        let x = z(&[2, 6, 5]);
        let (g6, g5) = (z(&[6]), z(&[5]));
        let bn = BatchNorm::default();
        // Groups not dividing C.
        let gn: Norm = GroupNorm::new(4, 1e-5).unwrap().into();
        expect_err(
            gnorm::norm(&gn, &x, Some(&g6), Some(&g6)),
            &["group_norm", "groups = 4", "C = 6"],
        );
        // Wrong gamma / beta / running-stat shapes.
        expect_err(
            gnorm::batch_norm_train(&bn, &x, Some(&g5), None, &g6, &g6),
            &["batch_norm", "gamma (5)", "(2, 6, 5)"],
        );
        expect_err(
            gnorm::batch_norm_infer(&bn, &x, None, Some(&g5), &g6, &g6),
            &["batch_norm", "beta (5)"],
        );
        expect_err(
            gnorm::batch_norm_infer(&bn, &x, None, None, &g6, &g5),
            &["batch_norm", "running_var (5)", "(6)"],
        );
        let inn: Norm = InstanceNorm::default().into();
        expect_err(
            gnorm::norm(&inn, &x, Some(&g6), Some(&g5)),
            &["instance_norm", "beta (5)"],
        );
        expect_err(
            gnorm::norm(&inn, &z(&[2, 6]), None, None),
            &["instance_norm", "(2, 6)"],
        );
        let ln: Norm = LayerNorm { dims: 2, eps: 1e-5 }.into();
        expect_err(
            gnorm::norm(&ln, &x, Some(&g6), None),
            &["layer_norm", "gamma (6)", "(6, 5)"],
        );
        let ln4: Norm = LayerNorm { dims: 4, eps: 1e-5 }.into();
        expect_err(
            gnorm::norm(&ln4, &x, None, None),
            &["layer_norm", "dims = 4", "out of range"],
        );
        // One value per channel cannot train batch norm.
        let x16 = z(&[1, 6]);
        expect_err(
            gnorm::batch_norm_train(&bn, &x16, None, None, &g6, &g6),
            &["batch_norm", "(1, 6)"],
        );
        // Mismatched dy, state, outputs.
        let (y, st) = gnorm::norm(&ln, &x, None, None).unwrap();
        assert_eq!(st.shape(), &[2, 2]);
        expect_err(
            gnorm::norm_backward(&ln, &x, None, &st, &z(&[2, 6])),
            &["layer_norm", "dy (2, 6)"],
        );
        expect_err(
            gnorm::norm_backward(&ln, &x, None, &z(&[2, 3]), &y),
            &["layer_norm", "state (2, 3)", "(2, 2)"],
        );
        expect_err(
            gnorm::norm_launch(&ln, &x, None, None, &g6, &st).map(|p| p.launches.len()),
            &["layer_norm", "y (6)"],
        );
        let (_, bst) = gnorm::batch_norm_train(&bn, &x, None, None, &z(&[6]), &z(&[6])).unwrap();
        expect_err(
            gnorm::batch_norm_train_backward(&bn, &x, Some(&g5), &bst, &y),
            &["batch_norm", "gamma (5)"],
        );
        // Softmax axis out of range, and shape mismatches.
        let sm = Softmax {
            axis: 2,
            log: false,
        };
        expect_err(
            gsoft::softmax(&sm, &z(&[2, 3])),
            &["softmax", "axis 2", "rank 2"],
        );
        let lsm = Softmax {
            axis: -3,
            log: true,
        };
        expect_err(
            gsoft::softmax(&lsm, &z(&[2, 3])),
            &["log_softmax", "axis -3"],
        );
        expect_err(
            gsoft::softmax_backward(&Softmax::CHANNELS, &z(&[2, 3]), &z(&[3, 2])),
            &["softmax", "dy (3, 2)", "y (2, 3)"],
        );
        expect_err(
            gsoft::softmax_launch(&Softmax::CHANNELS, &z(&[2, 3]), &z(&[6])),
            &["softmax", "y (6)"],
        );
        // Dropout rate >= 1, and a mask of the wrong dtype or shape.
        let bad = Dropout { rate: 1.0, seed: 0 };
        expect_err(gdrop::dropout(&bad, 0, &x, true), &["dropout", "rate = 1"]);
        expect_err(gdrop::dropout(&bad, 0, &x, false), &["dropout", "rate = 1"]);
        let d = Dropout::new(0.5, 0).unwrap();
        expect_err(
            gdrop::dropout_launch(&d, 0, &x, &z(&[2, 6, 5]), &z(&[2, 6, 5])),
            &["dropout", "mask", "U32"],
        );
        let m = Tensor::zeros(dev, &[60], DType::U32).unwrap();
        expect_err(
            gdrop::dropout_backward(&d, &x, Some(&m)),
            &["dropout", "mask (60)", "(2, 6, 5)"],
        );
    });
}

#[test]
fn launch_forms_partial_grads_and_folded_grid() {
    each_device("norm launches", |dev| {
        let op = LayerNorm { dims: 1, eps: 1e-5 };
        let norm: Norm = op.into();
        let shape = [3, 7];
        let x = input(&shape, 1, 1.0, 0.0);
        let dy = input(&shape, 2, 1.0, 0.0);
        let g = input(&[7], 3, 1.0, 1.0);
        let (gx, gg, gdy) = (up(dev, &x), up(dev, &g), up(dev, &dy));
        let r = rnorm::layer_norm_backward(&op, &x, &g, &dy).unwrap();
        let (_, st) = gnorm::norm(&norm, &gx, Some(&gg), None).unwrap();
        let z = |s: &[usize]| Tensor::zeros(dev, s, DType::F32).unwrap();
        // dx only: one launch; dgamma only / dbeta only: the other goes to a scratch.
        let dx = z(&shape);
        let l = gnorm::norm_backward_launch(&norm, &gx, Some(&gg), &st, &gdy, &dx, None, None);
        let l = l.unwrap();
        assert_eq!(l.launches.len(), 1);
        dev.run(&l.launches).unwrap();
        assert_close("dx only", &get(&dx), &r.dx.data, 2e-5, 2e-4);
        let (dx, dg, db) = (z(&shape), z(&[7]), z(&[7]));
        let l = gnorm::norm_backward_launch(&norm, &gx, Some(&gg), &st, &gdy, &dx, Some(&dg), None)
            .unwrap();
        dev.run(&l.launches).unwrap();
        assert_close("dgamma only", &get(&dg), &r.dgamma.data, 1e-4, 2e-4);
        let l = gnorm::norm_backward_launch(&norm, &gx, Some(&gg), &st, &gdy, &dx, None, Some(&db))
            .unwrap();
        dev.run(&l.launches).unwrap();
        assert_close("dbeta only", &get(&db), &r.dbeta.data, 1e-4, 2e-4);
        // More statistics groups (rows) than one grid row holds: the 2-D grid fold.
        let shape = [66_000, 2];
        let x = input(&shape, 5, 1.0, 0.0);
        let (y, st) = gnorm::norm(&norm, &up(dev, &x), None, None).unwrap();
        let ones = Array::new(&[2], vec![1.0; 2]);
        let ry = rnorm::layer_norm(&op, &x, &ones, &Array::zeros(&[2])).unwrap();
        assert_close("folded grid y", &get(&y), &ry.data, 1e-3, 1e-4);
        assert_close(
            "folded grid state",
            &get(&st),
            &chunk_stats(&x, 2),
            1e-6,
            1e-5,
        );
        let sm = Softmax {
            axis: -1,
            log: true,
        };
        // Softmax and log-softmax, forward and backward, over more rows than one grid row holds.
        let x = input(&[66_000, 40], 6, 6.0, 0.0);
        let dy = input(&[66_000, 40], 7, 1.0, 0.0);
        for log in [true, false] {
            let op = Softmax { axis: -1, log };
            let y = gsoft::softmax(&op, &up(dev, &x)).unwrap();
            let ry = rounded(&rsoft::softmax_forward(&op, &x).unwrap());
            let dx = gsoft::softmax_backward(&op, &up(dev, &ry), &up(dev, &dy)).unwrap();
            let what = format!("folded grid {}", op.name());
            check_softmax(&what, &op, 40, &x, &dy, [&get(&y), &get(&dx)]);
        }
        // A u32 x is refused, naming the op.
        let xu = Tensor::zeros(dev, &[2, 3], DType::U32).unwrap();
        expect_err(gnorm::norm(&norm, &xu, None, None), &["layer_norm", "U32"]);
        expect_err(gsoft::softmax(&sm, &xu), &["log_softmax", "U32"]);
    });
}

/// `[x]` through `g.norm(.., affine = false)`: no parameters in the graph, the affine norm's
/// values at γ = 1, β = 0, PyTorch's numbers for `InstanceNorm1d(affine=False)`, and the
/// gradient w.r.t. x on the GPU against the reference.
#[test]
fn norms_without_affine_parameters() {
    use std::collections::HashMap;
    use wgtrain::{Graph, Options};
    let x = input(&[2, 4, 6], 11, 2.0, 0.5);
    let norms: [Norm; 3] = [
        InstanceNorm { eps: 1e-3 }.into(),
        GroupNorm::new(2, 1e-2).unwrap().into(),
        LayerNorm { dims: 2, eps: 1e-3 }.into(),
    ];
    for n in norms {
        let mut g = Graph::new();
        let xv = g.input("x", &x.shape).unwrap();
        let y = g.norm("y", xv, n, false).unwrap();
        assert!(
            g.params().is_empty(),
            "{n:?}: parameters in a non-affine norm"
        );
        let dy = g.input("dy", &x.shape).unwrap();
        let p = g.binary("p", wgtrain::BinaryOp::Mul, y, dy).unwrap();
        let dx = g.gradients(p, &[xv]).unwrap()[0];
        let mut feeds = HashMap::new();
        feeds.insert("x".to_string(), x.clone());
        feeds.insert("dy".to_string(), input(&x.shape, 12, 1.0, 0.0));
        let want = g.eval_reference(&feeds, &[y, dx]).unwrap();
        // The affine norm at γ = 1, β = 0.
        let mut a = Graph::new();
        let av = a.input("x", &x.shape).unwrap();
        let ay = a.norm("y", av, n, true).unwrap();
        let ps = a.shape(a.find("y.weight").unwrap()).unwrap().to_vec();
        let mut af = feeds.clone();
        let k = ps.iter().product();
        af.insert("y.weight".into(), Array::new(&ps, vec![1.0; k]));
        af.insert("y.bias".into(), Array::zeros(&ps));
        assert_eq!(a.eval_reference(&af, &[ay]).unwrap()[0], want[0], "{n:?}");
        each_device("norm no affine", |dev| {
            let c = g.compile(dev, &[y, dx], &Options::default()).unwrap();
            for (name, v) in &feeds {
                c.set(name, &v.to_f32()).unwrap();
            }
            c.step().unwrap();
            assert_close("y", &c.read(y).unwrap(), &want[0].data, 1e-5, 1e-4);
            assert_close("dx", &c.read(dx).unwrap(), &want[1].data, 1e-5, 1e-4);
        });
    }
    // F.instance_norm(x, eps=0) on one row [1, 2, 3, 4]: mean 2.5, biased var 1.25.
    let mut g = Graph::new();
    let xv = g.input("x", &[1, 1, 4]).unwrap();
    let y = g.norm("y", xv, InstanceNorm { eps: 0.0 }, false).unwrap();
    let feeds = HashMap::from([(
        "x".to_string(),
        Array::new(&[1, 1, 4], vec![1.0, 2.0, 3.0, 4.0]),
    )]);
    let got = g.eval_reference(&feeds, &[y]).unwrap();
    let s = 1.25f64.sqrt();
    let want = [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s];
    assert!(
        got[0]
            .data
            .iter()
            .zip(want)
            .all(|(a, b)| (a - b).abs() < 1e-12)
    );
    // A bad x is named as such, and leaves the graph unchanged.
    let n = g.nodes.len();
    let e = g
        .norm("bad", xv, GroupNorm::new(3, 1e-5).unwrap(), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"bad\"") && e.contains("groups = 3"), "{e}");
    assert_eq!(g.nodes.len(), n);
}
