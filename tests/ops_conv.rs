//! Convolution, fully connected and pooling kernels vs the CPU f64 reference — forward and every
//! gradient — on small awkward shapes, on every adapter; and the `Err`s bad inputs must give.
//! Shapes stay tiny: on lavapipe (software Vulkan) this file must run in well under a minute.

mod common;

use common::{assert_close, asym, each_device};
use wgtrain::ops::conv::gpu as conv;
use wgtrain::ops::conv::{
    Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, Convolution, Padding, Padding1d,
};
use wgtrain::ops::dense::FullyConnected;
use wgtrain::ops::dense::gpu as dense;
use wgtrain::ops::pool::gpu as pool;
use wgtrain::ops::pool::{GlobalAvgPool, Pool2d, PoolKind};
use wgtrain::reference::Array;
use wgtrain::{DType, Device, Tensor};

fn up(dev: &Device, a: &Array) -> Tensor {
    Tensor::from_f32(dev, &a.shape, &a.to_f32()).unwrap()
}

/// Seeded data as the f32 values the GPU sees, back in f64, so both sides start equal.
fn data(shape: &[usize], seed: u64) -> Array {
    let a = Array::seeded(shape, seed);
    Array::from_f32(&a.shape, &a.to_f32())
}

fn close(what: &str, gpu: &Tensor, reference: &Array) {
    assert_eq!(gpu.shape(), &reference.shape[..], "{what}: shape");
    assert_close(what, &gpu.to_f32().unwrap(), &reference.data, 2e-4, 1e-4);
}

/// Forward, dx, dw and db of `op` on the GPU against `ops::conv::reference`.
fn check_conv<Op: Convolution + std::fmt::Debug>(
    dev: &Device,
    op: &Op,
    x_shape: &[usize],
    seed: u64,
) {
    let what = format!("{} {x_shape:?} {op:?}", op.name());
    let x = data(x_shape, seed);
    let w = data(&op.weight_shape(), seed + 1);
    let b = op.has_bias().then(|| data(&[op.out_channels()], seed + 2));
    let (xt, wt) = (up(dev, &x), up(dev, &w));
    let bt = b.as_ref().map(|b| up(dev, b));
    let y = wgtrain::ops::conv::reference::forward(op, &x, &w, b.as_ref()).unwrap();
    let yt = conv::forward(op, &xt, &wt, bt.as_ref()).unwrap();
    close(&format!("{what}: y"), &yt, &y);
    let dy = data(&y.shape, seed + 3);
    let g = wgtrain::ops::conv::reference::backward(op, &x, &w, &dy).unwrap();
    let gt = conv::backward(op, &xt, &wt, &up(dev, &dy)).unwrap();
    close(&format!("{what}: dx"), &gt.dx, &g.dx);
    close(&format!("{what}: dw"), &gt.dw, &g.dw);
    assert_eq!(g.db.is_some(), gt.db.is_some(), "{what}: db presence");
    if let (Some(db), Some(dbt)) = (&g.db, &gt.db) {
        close(&format!("{what}: db"), dbt, db);
    }
}

#[test]
fn conv2d_forward_backward() {
    each_device("conv2d", |dev| {
        let c = Conv2d::new;
        // 3 → 7 channels, odd spatial sizes, padding 1
        check_conv(
            dev,
            &Conv2d {
                padding: Padding::symmetric(1),
                ..c(3, 7, (3, 3))
            },
            &[2, 3, 7, 5],
            1,
        );
        // everything 1
        check_conv(dev, &c(1, 1, (1, 1)), &[1, 1, 1, 1], 10);
        // 33 → 70 channels (two column tiles in N; K = 198 spans many K steps; M = 12 is one
        // row tile: `tests/launch_paths.rs` crosses tiles in M and N and takes the wide entry),
        // stride (2, 3), asymmetric padding
        check_conv(
            dev,
            &Conv2d {
                stride: (2, 3),
                padding: asym(1, 0, 2, 1),
                ..c(33, 70, (3, 2))
            },
            &[1, 33, 7, 9],
            20,
        );
        // dilation 2, groups 2, Same
        check_conv(
            dev,
            &Conv2d {
                dilation: (2, 2),
                groups: 2,
                padding: Padding::Same,
                ..c(4, 6, (3, 3))
            },
            &[2, 4, 6, 7],
            30,
        );
        // stride 3, Valid, no bias, kernel taller than wide
        check_conv(
            dev,
            &Conv2d {
                stride: (3, 3),
                bias: false,
                ..c(3, 5, (2, 3))
            },
            &[3, 3, 8, 10],
            40,
        );
        // Same with stride 2 and dilation 2: odd total padding, the extra one bottom / right
        check_conv(
            dev,
            &Conv2d {
                stride: (2, 2),
                dilation: (2, 1),
                padding: Padding::Same,
                ..c(2, 3, (3, 2))
            },
            &[1, 2, 7, 7],
            50,
        );
        // depthwise with channel multiplier 2, stride 2
        check_conv(
            dev,
            &Conv2d {
                groups: 7,
                stride: (2, 2),
                padding: Padding::symmetric(1),
                ..c(7, 14, (3, 3))
            },
            &[2, 7, 9, 6],
            60,
        );
        // many output pixels per image (M > 64), 1×1 kernel, C_out = 1
        check_conv(dev, &c(5, 1, (1, 1)), &[2, 5, 9, 8], 70);
        // Pointwise without a bias: the data passes run on the matmul GEMM, one matrix product
        // per image, where it takes fewer waves than the implicit GEMM (always on a CPU
        // adapter; odd channels and pixels, and 1 of each).
        for (cin, cout, x) in [
            (5, 7, [3, 5, 9, 7]),
            (1, 1, [1, 1, 1, 1]),
            (33, 70, [2, 33, 3, 11]),
        ] {
            let op = Conv2d {
                bias: false,
                ..c(cin, cout, (1, 1))
            };
            assert!(conv::pointwise(&op.geometry(&x).unwrap()));
            check_conv(dev, &op, &x, 80 + cin as u64);
        }
        let t = ConvTranspose2d {
            bias: false,
            ..ConvTranspose2d::new(6, 4, (1, 1))
        };
        check_conv(dev, &t, &[2, 6, 5, 3], 90);
    });
}

/// The strided data gradient runs one dispatch per stride phase: every input pixel lies in
/// exactly one phase, and a phase holds exactly the taps whose dy row `(iy + pad − ky) / s` is
/// whole, that row being `i + offset − a` (on the host over many geometries, one axis at a time).
#[test]
fn stride_phases_cover_every_input_pixel_once_with_exactly_its_taps() {
    for s in 1..=4 {
        for k in 1..=5 {
            for pad in 0..k {
                for len in 1..=9 {
                    if len + 2 * pad < k {
                        continue;
                    }
                    let op = Conv2d {
                        stride: (s, 1),
                        padding: asym(pad, pad, 0, 0),
                        ..Conv2d::new(1, 1, (k, 1))
                    };
                    let g = op.geometry(&[1, 1, len, 1]).unwrap();
                    let phases = conv::stride_phases(&g);
                    if s == 1 {
                        assert!(phases.is_empty(), "stride 1 is unphased");
                        continue;
                    }
                    let mut seen = vec![0; len];
                    for ph in &phases {
                        for i in 0..ph.pixels.0 {
                            let iy = ph.first_pixel.0 + i * s;
                            seen[iy] += 1;
                            let mut taps = Vec::new();
                            for a in 0..ph.taps.0 {
                                let ky = ph.first_tap.0 + a * s;
                                let t = iy as i64 + pad as i64 - ky as i64;
                                let oy = i as i64 + ph.offset.0 as i64 - a as i64;
                                assert_eq!(
                                    t,
                                    oy * s as i64,
                                    "s {s} k {k} pad {pad} iy {iy} ky {ky}"
                                );
                                taps.push(ky);
                            }
                            // Taps whose dy row falls outside dy are in too: the kernel reads 0 there.
                            let want: Vec<usize> = (0..k)
                                .filter(|&ky| {
                                    (iy as i64 + pad as i64 - ky as i64).rem_euclid(s as i64) == 0
                                })
                                .collect();
                            assert_eq!(taps, want, "s {s} k {k} pad {pad} len {len} iy {iy}");
                        }
                    }
                    assert!(
                        seen.iter().all(|&n| n == 1),
                        "s {s} k {k} pad {pad} len {len}: {seen:?}"
                    );
                }
            }
        }
    }
    // Dilated: unphased.
    let op = Conv2d {
        stride: (2, 2),
        dilation: (2, 1),
        ..Conv2d::new(1, 1, (3, 3))
    };
    assert!(conv::stride_phases(&op.geometry(&[1, 1, 9, 9]).unwrap()).is_empty());
}

#[test]
fn strided_data_gradients_in_phases() {
    each_device("strided_dgrad", |dev| {
        let c = Conv2d::new;
        // The input smaller than the stride in both axes: phases without pixels are left out.
        check_conv(
            dev,
            &Conv2d {
                stride: (3, 2),
                padding: Padding::symmetric(1),
                ..c(3, 5, (3, 3))
            },
            &[2, 3, 2, 1],
            110,
        );
        // ResNet's downsample (1×1, stride 2: three of four phases have no tap, their gradient
        // zero) and its strided 3×3, at odd sizes with 33 channels.
        for (k, pad, x) in [(1, 0, [2, 33, 7, 9]), (3, 1, [1, 33, 9, 7])] {
            let op = Conv2d {
                stride: (2, 2),
                padding: Padding::symmetric(pad),
                ..c(33, 7, (k, k))
            };
            assert_eq!(conv::stride_phases(&op.geometry(&x).unwrap()).len(), 4);
            check_conv(dev, &op, &x, 120 + k as u64);
        }
        // A strided transposed convolution's forward is the phased adjoint, with its bias.
        let t = ConvTranspose2d {
            stride: (2, 3),
            padding: asym(1, 0, 0, 2),
            ..ConvTranspose2d::new(5, 3, (3, 4))
        };
        check_conv(dev, &t, &[2, 5, 4, 3], 130);
    });
}

/// A weight gradient split over K has its partial sums added by one invocation per weight where
/// the splits are few (matmul's `gemm_sum`) and by 32 per weight where they are many
/// (`sum_lanes`) and the weights few (`conv::param_grad::sums_per_output`).
#[test]
fn weight_gradient_splits_are_summed_by_rows_or_by_lanes() {
    each_device("wgrad sums", |dev| {
        // K = 1·16·16 = 256: 4 splits of 64. K = 3·28·28 = 2,352 on one tile: 37 splits.
        for (op, x_shape, entry) in [
            (Conv2d::new(3, 5, (3, 3)), [1, 3, 18, 18], "gemm_sum"),
            (Conv2d::new(1, 2, (3, 3)), [3, 1, 30, 30], "sum_lanes"),
        ] {
            let x = up(dev, &data(&x_shape, 140));
            let dy = up(dev, &data(&op.out_shape(&x_shape).unwrap(), 141));
            let dw = Tensor::zeros(dev, &op.weight_shape(), DType::F32).unwrap();
            let prep = conv::backward_weights_launches(&op, &x, &dy, &dw).unwrap();
            let labels: Vec<String> = prep.launches.iter().map(|l| format!("{l:?}")).collect();
            assert!(
                labels.iter().any(|l| l.contains(entry)),
                "{x_shape:?}: {labels:?}"
            );
            check_conv(dev, &op, &x_shape, 140);
        }
    });
}

/// A data pass (forward, or the unphased data gradient) with a small grid and a long K is split
/// over K, its partial products summed by `gemm_sum` onto the bias, with the neuron; adding into
/// the output too.
#[test]
fn data_passes_split_over_k() {
    each_device("forward split-K", |dev| {
        let relu = Some(wgtrain::ops::elementwise::UnaryOp::Relu);
        // K = 128·9 = 1,152 over 9 output pixels: 2 splits of 576. Groups: 2 of K = 1,152 each.
        // 5×5 of 41 channels (K = 1,025: splits of 544 and 481), stride 2, padding.
        let cases = [
            (Conv2d::new(128, 7, (3, 3)), [1, 128, 5, 5]),
            (
                Conv2d {
                    groups: 2,
                    ..Conv2d::new(256, 6, (3, 3))
                },
                [2, 256, 4, 3],
            ),
            (
                Conv2d {
                    stride: (2, 2),
                    padding: Padding::symmetric(2),
                    bias: false,
                    ..Conv2d::new(41, 5, (5, 5))
                },
                [1, 41, 7, 6],
            ),
        ];
        for (op, xs) in cases {
            let what = format!("{op:?} {xs:?}");
            let (x, w) = (data(&xs, 1), data(&op.weight_shape(), 2));
            let b = op.has_bias().then(|| data(&[op.out_channels], 3));
            let (xt, wt) = (up(dev, &x), up(dev, &w));
            let bt = b.as_ref().map(|b| up(dev, b));
            let (splits, _) = conv::data_split(&op.geometry(&xs).unwrap(), false, &xt);
            assert!(splits > 1, "{what}: not split");
            let y = wgtrain::ops::conv::reference::forward(&op, &x, &w, b.as_ref()).unwrap();
            // Plain, and with a fused ReLU.
            close(
                &what,
                &conv::forward(&op, &xt, &wt, bt.as_ref()).unwrap(),
                &y,
            );
            let yt = Tensor::zeros(dev, &y.shape, DType::F32).unwrap();
            let p = conv::forward_fused_launches(&op, &xt, &wt, bt.as_ref(), &yt, relu).unwrap();
            assert!(
                p.launches
                    .iter()
                    .any(|l| format!("{l:?}").contains("gemm_sum")),
                "{what}: {:?}",
                p.launches
            );
            dev.run(&p.launches).unwrap();
            let mut want = y.clone();
            want.data.iter_mut().for_each(|v| *v = v.max(0.0));
            close(&format!("{what} relu"), &yt, &want);
            // Added into what the output holds (the graph does this without a bias only).
            if b.is_none() {
                let before = data(&y.shape, 4);
                let yt = up(dev, &before);
                let p = conv::forward_into(&op, &xt, &wt, None, &yt, None, true).unwrap();
                dev.run(&p.launches).unwrap();
                let mut want = y;
                want.data
                    .iter_mut()
                    .zip(&before.data)
                    .for_each(|(v, b)| *v += b);
                close(&format!("{what} accumulate"), &yt, &want);
            }
        }
    });
}

/// The data gradient split over K (C_out·kh·kw = 1,152 over 25 input pixels: 2 splits), and a
/// transposed convolution's forward, which is that pass with a bias.
#[test]
fn data_gradients_split_over_k() {
    each_device("dgrad split-K", |dev| {
        let op = Conv2d {
            padding: Padding::symmetric(1),
            ..Conv2d::new(7, 128, (3, 3))
        };
        let xs = [1, 7, 5, 5];
        let xt = up(dev, &data(&xs, 150));
        let g = op.geometry(&xs).unwrap();
        assert!(conv::stride_phases(&g).is_empty());
        assert_eq!(conv::data_split(&g, true, &xt).0, 2);
        check_conv(dev, &op, &xs, 150);
        let t = ConvTranspose2d::new(128, 5, (3, 3));
        let ts = [2, 128, 3, 4];
        let tt = up(dev, &data(&ts, 160));
        assert!(conv::data_split(&t.geometry(&ts).unwrap(), true, &tt).0 > 1);
        check_conv(dev, &t, &ts, 160);
    });
}

/// A pointwise convolution's data passes keep the epilogue, on the matmul GEMM or the implicit
/// GEMM: the fused neuron, and adding into the output (a gradient sum written in place).
#[test]
fn pointwise_conv_fuses_and_accumulates() {
    each_device("pointwise conv epilogue", |dev| {
        let op = Conv2d {
            bias: false,
            ..Conv2d::new(6, 5, (1, 1))
        };
        let xs = [2, 6, 3, 7];
        let (x, w) = (data(&xs, 1), data(&op.weight_shape(), 2));
        let y = wgtrain::ops::conv::reference::forward(&op, &x, &w, None).unwrap();
        let before = data(&y.shape, 3);
        // The graph adds into an output only without a neuron: each is checked alone.
        let yt = up(dev, &before);
        let p = conv::forward_into(&op, &up(dev, &x), &up(dev, &w), None, &yt, None, true);
        dev.run(&p.unwrap().launches).unwrap();
        let mut want = y.clone();
        want.data
            .iter_mut()
            .zip(&before.data)
            .for_each(|(v, b)| *v += b);
        close("pointwise accumulate", &yt, &want);
        let yt = up(dev, &before);
        let p = conv::forward_fused_launches(
            &op,
            &up(dev, &x),
            &up(dev, &w),
            None,
            &yt,
            Some(wgtrain::ops::elementwise::UnaryOp::Relu),
        );
        dev.run(&p.unwrap().launches).unwrap();
        let mut want = y;
        want.data.iter_mut().for_each(|v| *v = v.max(0.0));
        close("pointwise relu", &yt, &want);
    });
}

#[test]
fn conv1d_and_transpose_forward_backward() {
    each_device("conv1d / conv_transpose", |dev| {
        check_conv(
            dev,
            &Conv1d {
                stride: 2,
                dilation: 2,
                padding: Padding1d::Same,
                ..Conv1d::new(3, 4, 3)
            },
            &[2, 3, 11],
            100,
        );
        check_conv(
            dev,
            &Conv1d {
                groups: 2,
                padding: Padding1d::Explicit { left: 3, right: 0 },
                ..Conv1d::new(4, 6, 5)
            },
            &[1, 4, 7],
            110,
        );
        check_conv(dev, &Conv1d::new(1, 1, 1), &[1, 1, 1], 120);
        // stride 2, padding 1, output_padding 1, groups 2
        check_conv(
            dev,
            &ConvTranspose2d {
                stride: (2, 2),
                padding: Padding::symmetric(1),
                output_padding: (1, 1),
                groups: 2,
                ..ConvTranspose2d::new(4, 6, (3, 3))
            },
            &[2, 4, 4, 5],
            200,
        );
        // output_padding >= stride (allowed below the dilation), asymmetric padding
        check_conv(
            dev,
            &ConvTranspose2d {
                dilation: (2, 2),
                output_padding: (1, 1),
                padding: asym(0, 1, 1, 0),
                bias: false,
                ..ConvTranspose2d::new(3, 2, (2, 3))
            },
            &[1, 3, 3, 4],
            210,
        );
        // Same with the kernel smaller than the stride: output = in · stride
        check_conv(
            dev,
            &ConvTranspose2d {
                stride: (3, 3),
                padding: Padding::Same,
                ..ConvTranspose2d::new(3, 5, (2, 2))
            },
            &[1, 3, 3, 2],
            220,
        );
        check_conv(
            dev,
            &ConvTranspose1d {
                stride: 3,
                output_padding: 2,
                padding: Padding1d::Explicit { left: 1, right: 0 },
                ..ConvTranspose1d::new(3, 5, 3)
            },
            &[2, 3, 5],
            230,
        );
        check_conv(
            dev,
            &ConvTranspose1d {
                stride: 2,
                groups: 2,
                padding: Padding1d::Same,
                ..ConvTranspose1d::new(2, 4, 4)
            },
            &[1, 2, 6],
            240,
        );
    });
}

/// Forward (and argmax) and backward of `op` against `ops::pool::reference`.
fn check_pool(dev: &Device, op: &Pool2d, x: &Array, seed: u64) {
    let what = format!("{} {:?} {op:?}", op.name(), x.shape);
    let (y, arg) = wgtrain::ops::pool::reference::forward(op, x).unwrap();
    let (yt, argt) = pool::forward(op, &up(dev, x)).unwrap();
    close(&format!("{what}: y"), &yt, &y);
    assert_eq!(arg.is_some(), argt.is_some(), "{what}: argmax presence");
    if let (Some(a), Some(at)) = (&arg, &argt) {
        let at: Vec<usize> = at.to_u32().unwrap().iter().map(|&i| i as usize).collect();
        assert_eq!(&at, a, "{what}: argmax");
    }
    let dy = data(&y.shape, seed);
    let dx = wgtrain::ops::pool::reference::backward(op, &x.shape, &dy, arg.as_deref()).unwrap();
    let dxt = pool::backward(op, &x.shape, &up(dev, &dy), argt.as_ref()).unwrap();
    close(&format!("{what}: dx"), &dxt, &dx);
}

#[test]
fn pooling_forward_backward() {
    each_device("pool", |dev| {
        let kinds = [
            PoolKind::Max,
            PoolKind::Avg {
                count_include_pad: true,
            },
            PoolKind::Avg {
                count_include_pad: false,
            },
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            let s = 300 + 10 * i as u64;
            let base = Pool2d::max((3, 3), (2, 2));
            // overlapping windows (kernel > stride)
            check_pool(
                dev,
                &Pool2d { kind, ..base },
                &data(&[2, 3, 7, 6], s),
                s + 1,
            );
            // gaps between windows (kernel < stride)
            let gaps = Pool2d {
                kind,
                ..Pool2d::max((2, 1), (3, 2))
            };
            check_pool(dev, &gaps, &data(&[1, 3, 7, 5], s + 2), s + 3);
            let asym_pad = Pool2d {
                kind,
                padding: asym(1, 0, 2, 1),
                ..Pool2d::max((3, 3), (1, 2))
            };
            check_pool(dev, &asym_pad, &data(&[2, 1, 4, 5], s + 4), s + 5);
            let same = Pool2d {
                kind,
                padding: Padding::Same,
                ..Pool2d::max((3, 2), (2, 3))
            };
            check_pool(dev, &same, &data(&[1, 2, 7, 5], s + 6), s + 7);
            let dil = Pool2d {
                kind,
                dilation: (2, 2),
                padding: Padding::symmetric(1),
                ..Pool2d::max((2, 3), (2, 1))
            };
            check_pool(dev, &dil, &data(&[1, 2, 6, 7], s + 8), s + 9);
            check_pool(
                dev,
                &Pool2d {
                    kind,
                    ..Pool2d::max((1, 1), (1, 1))
                },
                &data(&[1, 1, 1, 1], s + 10),
                s + 11,
            );
        }
        // Ties go to the first in window order; overlapping windows add at a shared argmax.
        #[rustfmt::skip]
        let x = Array::new(&[1, 1, 4, 4], vec![
            1.0, 5.0, 2.0, 0.0,
            3.0, 4.0, 7.0, 7.0,
            0.0, 9.0, 1.0, 1.0,
            2.0, 2.0, 3.0, 8.0,
        ]);
        check_pool(dev, &Pool2d::max((2, 2), (2, 2)), &x, 400);
        check_pool(dev, &Pool2d::max((2, 2), (1, 1)), &x, 401);
        // Padding never wins, even against negative inputs.
        let neg = Array::new(&[1, 1, 1, 1], vec![-3.0]);
        let op = Pool2d {
            padding: Padding::symmetric(1),
            ..Pool2d::max((3, 3), (1, 1))
        };
        check_pool(dev, &op, &neg, 402);

        for (i, shape) in [[2, 3, 5, 1], [1, 33, 7, 7], [2, 2, 20, 20]]
            .iter()
            .enumerate()
        {
            let what = format!("global_avg_pool {shape:?}");
            let x = data(shape, 500 + i as u64);
            let op = GlobalAvgPool;
            let y = wgtrain::ops::pool::reference::global_avg_forward(&op, &x).unwrap();
            let yt = pool::global_avg_forward(&op, &up(dev, &x)).unwrap();
            close(&format!("{what}: y"), &yt, &y);
            let dy = data(&y.shape, 510 + i as u64);
            let dx = wgtrain::ops::pool::reference::global_avg_backward(&op, shape, &dy).unwrap();
            let dxt = pool::global_avg_backward(&op, shape, &up(dev, &dy)).unwrap();
            close(&format!("{what}: dx"), &dxt, &dx);
        }
    });
}

#[test]
fn fully_connected_forward_backward() {
    each_device("fully_connected", |dev| {
        let cases: [(FullyConnected, &[usize]); 4] = [
            (FullyConnected::new(7, 3), &[5, 7]),
            (
                FullyConnected {
                    bias: false,
                    ..FullyConnected::new(30, 4)
                },
                &[2, 3, 2, 5],
            ),
            (FullyConnected::new(1, 1), &[1, 1]),
            (FullyConnected::new(33, 65), &[70, 33]),
        ];
        for (i, (op, x_shape)) in cases.into_iter().enumerate() {
            let what = format!("fully_connected {x_shape:?} {op:?}");
            let s = 600 + 10 * i as u64;
            let x = data(x_shape, s);
            let w = data(&op.weight_shape(), s + 1);
            let b = op.bias.then(|| data(&[op.out_features], s + 2));
            let (xt, wt) = (up(dev, &x), up(dev, &w));
            let bt = b.as_ref().map(|b| up(dev, b));
            let y = wgtrain::ops::dense::reference::forward(&op, &x, &w, b.as_ref()).unwrap();
            let yt = dense::forward(&op, &xt, &wt, bt.as_ref()).unwrap();
            close(&format!("{what}: y"), &yt, &y);
            let dy = data(&y.shape, s + 3);
            let g = wgtrain::ops::dense::reference::backward(&op, &x, &w, &dy).unwrap();
            let gt = dense::backward(&op, &xt, &wt, &up(dev, &dy)).unwrap();
            close(&format!("{what}: dx"), &gt.dx, &g.dx);
            close(&format!("{what}: dw"), &gt.dw, &g.dw);
            assert_eq!(g.db.is_some(), gt.db.is_some(), "{what}: db presence");
            if let (Some(db), Some(dbt)) = (&g.db, &gt.db) {
                close(&format!("{what}: db"), dbt, db);
            }
        }
    });
}

/// Asserts `r` is an `Err` whose message contains every one of `want`.
fn expect_err<T: std::fmt::Debug>(r: wgtrain::Result<T>, want: &[&str]) {
    let m = r.expect_err("expected an error").to_string();
    for w in want {
        assert!(m.contains(w), "error {m:?} does not mention {w:?}");
    }
}

#[test]
fn bad_inputs_are_errors_naming_the_op() {
    each_device("conv errors", |dev| {
        let t = |shape: &[usize]| Tensor::zeros(dev, shape, DType::F32).unwrap();
        let op = Conv2d {
            padding: Padding::symmetric(1),
            ..Conv2d::new(3, 4, (3, 3))
        };
        let (x, w, b) = (t(&[1, 3, 5, 5]), t(&[4, 3, 3, 3]), t(&[4]));
        // channel mismatch
        expect_err(
            conv::forward(&op, &t(&[1, 2, 5, 5]), &w, Some(&b)),
            &["conv2d", "[1, 2, 5, 5]", "2 channels", "in_channels is 3"],
        );
        // stride 0, dilation 0
        let s0 = Conv2d {
            stride: (0, 1),
            ..op
        };
        expect_err(
            conv::forward(&s0, &x, &w, Some(&b)),
            &["conv2d", "stride (0, 1)"],
        );
        let d0 = Conv1d {
            dilation: 0,
            ..Conv1d::new(3, 4, 3)
        };
        expect_err(
            conv::forward(&d0, &t(&[1, 3, 8]), &t(&[4, 3, 3]), Some(&b)),
            &["conv1d", "dilation 0"],
        );
        // kernel larger than the padded input
        expect_err(
            conv::forward(&Conv2d::new(3, 4, (5, 3)), &t(&[1, 3, 4, 6]), &w, Some(&b)),
            &["conv2d", "kernel height 5", "padded input height 4"],
        );
        // groups not dividing the channels
        let g4 = Conv2d {
            groups: 2,
            ..Conv2d::new(4, 6, (1, 1))
        };
        expect_err(
            conv::forward(
                &Conv2d { groups: 4, ..g4 },
                &t(&[1, 4, 2, 2]),
                &t(&[6, 1, 1, 1]),
                Some(&t(&[6])),
            ),
            &["conv2d", "groups 4 does not divide out_channels 6"],
        );
        // wrong weight shape, forward and backward
        expect_err(
            conv::forward(&op, &x, &t(&[4, 3, 3, 2]), Some(&b)),
            &["conv2d", "weight", "[4, 3, 3, 2]", "[4, 3, 3, 3]"],
        );
        expect_err(
            conv::backward(&op, &x, &t(&[4, 1, 3, 3]), &t(&[1, 4, 5, 5])),
            &["conv2d", "weight", "[4, 1, 3, 3]"],
        );
        // bias missing or of the wrong shape
        expect_err(conv::forward(&op, &x, &w, None), &["conv2d", "bias"]);
        expect_err(
            conv::forward(&op, &x, &w, Some(&t(&[3]))),
            &["conv2d", "bias", "[3]", "[4]"],
        );
        // output gradient of the wrong shape
        expect_err(
            conv::backward(&op, &x, &w, &t(&[1, 4, 5, 4])),
            &["conv2d", "output gradient", "[1, 4, 5, 4]", "[1, 4, 5, 5]"],
        );
        // a u32 input
        let xu = Tensor::zeros(dev, &[1, 3, 5, 5], DType::U32).unwrap();
        expect_err(conv::forward(&op, &xu, &w, Some(&b)), &["conv2d", "U32"]);
        // conv-transpose: channel mismatch and output_padding too large
        let ct = ConvTranspose2d {
            stride: (2, 2),
            ..ConvTranspose2d::new(3, 2, (3, 3))
        };
        expect_err(
            conv::forward(&ct, &t(&[1, 4, 3, 3]), &t(&[3, 2, 3, 3]), Some(&t(&[2]))),
            &["conv_transpose2d", "in_channels is 3"],
        );
        expect_err(
            conv::forward(
                &ConvTranspose2d {
                    output_padding: (0, 2),
                    ..ct
                },
                &t(&[1, 3, 3, 3]),
                &t(&[3, 2, 3, 3]),
                Some(&t(&[2])),
            ),
            &["conv_transpose2d", "output_padding (0, 2)"],
        );
        // pooling
        expect_err(
            pool::forward(&Pool2d::max((2, 2), (2, 0)), &x),
            &["max_pool2d", "stride (2, 0)"],
        );
        expect_err(
            pool::forward(&Pool2d::avg((6, 2), (1, 1), true), &x),
            &["avg_pool2d", "kernel height 6"],
        );
        let mp = Pool2d::max((2, 2), (2, 2));
        expect_err(
            pool::backward(&mp, &[1, 3, 5, 5], &t(&[1, 3, 2, 2]), None),
            &["max_pool2d", "argmax"],
        );
        expect_err(
            pool::global_avg_forward(&GlobalAvgPool, &t(&[2, 3])),
            &["global_avg_pool", "rank 2"],
        );
        // fully connected
        let fc = FullyConnected::new(12, 5);
        expect_err(
            dense::forward(&fc, &t(&[7, 11]), &t(&[5, 12]), Some(&t(&[5]))),
            &["fully_connected", "11", "in_features is 12"],
        );
        expect_err(
            dense::forward(&fc, &t(&[7, 12]), &t(&[12, 5]), Some(&t(&[5]))),
            &["fully_connected", "weight", "[12, 5]", "[5, 12]"],
        );
    });
}
