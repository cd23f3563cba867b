//! The convolutions on the tensor cores (`ops::conv::coop`, `wgsl/gemm_core_coop.wgsl`): f16
//! tensors, every pass (forward with bias and a fused ReLU, data gradient, weight gradient with
//! and without split-K) against the f64 reference on the same f16-rounded inputs, on shapes that
//! are not multiples of the 128×128 / 128×64 blocks, the 32-wide K step or the 16×16 tiles:
//! groups, stride, dilation, asymmetric padding, 1-D, transposed and pointwise. Each pass asserts which
//! core ran: the coop core where the adapter has the tiles and the GEMM is large enough, the
//! tiled core elsewhere (lavapipe runs the same cases on the tiled core, in f16 storage).

mod common;

use wgtrain::ops::conv::gpu as conv;
use wgtrain::ops::conv::reference as cref;
use wgtrain::ops::conv::winograd::{ConvAlgo, with_conv_algo};
use wgtrain::ops::conv::{Conv1d, Conv2d, ConvTranspose2d, Convolution, Padding};
use wgtrain::ops::elementwise::UnaryOp;
use wgtrain::ops::matmul::coop::coop_supported;
use wgtrain::reference::{Array, f16_tol};
use wgtrain::{DType, Device, Tensor};

/// Seeded data rounded to f16, in f64: what both sides compute with.
fn data16(shape: &[usize], seed: u64) -> Array {
    let a = Array::seeded(shape, seed);
    let r: Vec<f32> = a
        .to_f32()
        .iter()
        .map(|&v| half::f16::from_f32(v).to_f32())
        .collect();
    Array::from_f32(shape, &r)
}

fn up16(dev: &Device, a: &Array) -> Tensor {
    Tensor::from_f32_as_f16(dev, &a.shape, &a.to_f32()).unwrap()
}

fn zeros16(dev: &Device, shape: &[usize]) -> Tensor {
    Tensor::zeros(dev, shape, DType::F16).unwrap()
}

/// |gpu − ref| ≤ f16_tol(n)·(1 + |ref|) for sums of `n` products (the f16 output's rounding is
/// inside that bound).
fn close(what: &str, gpu: &Tensor, want: &Array, n: usize) {
    let got = gpu.to_f32().unwrap();
    assert_eq!(got.len(), want.data.len(), "{what}: length");
    let tol = f16_tol(n);
    for (i, (&g, &r)) in got.iter().zip(&want.data).enumerate() {
        let err = (g as f64 - r).abs();
        assert!(
            g.is_finite() && err <= tol * (1.0 + r.abs()),
            "{what}: element {i}: gpu {g} vs reference {r} (|err| {err:.3e} > {:.3e})",
            tol * (1.0 + r.abs())
        );
    }
}

/// Runs a prepared pass; returns whether its GEMM ran on the tensor-core core (a split pass
/// writes its bias first, so any launch may be the GEMM).
fn run(dev: &Device, p: wgtrain::launch::Prepared) -> bool {
    let coop = (p.launches.iter()).any(|l| format!("{l:?}").contains("gemm_coop"));
    dev.run(&p.launches).unwrap();
    coop
}

/// One case: the op, its input shape, and which passes (forward, data gradient, weight
/// gradient) are large enough for the tensor cores.
fn check<Op: Convolution + std::fmt::Debug>(
    dev: &Device,
    op: &Op,
    x_shape: &[usize],
    large: [bool; 3],
    seed: u64,
) {
    let what = format!("{} {x_shape:?}", op.name());
    let coop = coop_supported(dev).is_ok();
    let g = op.geometry(x_shape).unwrap();
    let x = data16(x_shape, seed);
    let w = data16(&op.weight_shape(), seed + 1);
    let b = op
        .has_bias()
        .then(|| data16(&[op.out_channels()], seed + 2));
    let (xt, wt) = (up16(dev, &x), up16(dev, &w));
    let bt = b.as_ref().map(|b| up16(dev, b));

    // Forward, with the bias and a fused ReLU in the epilogue.
    let mut y = cref::forward(op, &x, &w, b.as_ref()).unwrap();
    y.data.iter_mut().for_each(|v| *v = v.max(0.0));
    let yt = zeros16(dev, &y.shape);
    let p =
        conv::forward_fused_launches(op, &xt, &wt, bt.as_ref(), &yt, Some(UnaryOp::Relu)).unwrap();
    let ran = run(dev, p);
    assert_eq!(ran, coop && large[0], "{what}: forward core (coop {ran})");
    let taps = g.kernel.0 * g.kernel.1;
    let fwd_k = if op.is_transposed() {
        g.out_channels / g.groups * taps
    } else {
        g.in_channels / g.groups * taps
    };
    close(&format!("{what}: y"), &yt, &y, fwd_k);

    // Data gradient.
    let dy = data16(&y.shape, seed + 3);
    let dx = cref::backward_data(op, x_shape, &w, &dy).unwrap();
    let (dyt, dxt) = (up16(dev, &dy), zeros16(dev, x_shape));
    let ran = run(
        dev,
        conv::backward_data_launches(op, x_shape, &wt, &dyt, &dxt).unwrap(),
    );
    assert_eq!(ran, coop && large[1], "{what}: data gradient core");
    let dgrad_k = if op.is_transposed() {
        g.in_channels / g.groups * taps
    } else {
        g.out_channels / g.groups * taps
    };
    close(&format!("{what}: dx"), &dxt, &dx, dgrad_k);

    // Weight gradient (split-K where the pixels are many).
    let dw = cref::backward_weights(op, &x, &dy).unwrap();
    let dwt = zeros16(dev, &op.weight_shape());
    let ran = run(
        dev,
        conv::backward_weights_launches(op, &xt, &dyt, &dwt).unwrap(),
    );
    assert_eq!(ran, coop && large[2], "{what}: weight gradient core");
    close(
        &format!("{what}: dw"),
        &dwt,
        &dw,
        g.batch * g.out_size.0 * g.out_size.1,
    );
}

#[test]
fn conv_passes_on_the_tensor_cores_match_the_reference() {
    common::each_device("conv_coop", |dev| {
        if !dev.caps().shader_f16 {
            eprintln!("[conv_coop] {}: no SHADER_F16, nothing to run", dev.name());
            return;
        }
        // The implicit GEMM is what is under test; on a GPU Winograd would take the 3×3 passes.
        with_conv_algo(ConvAlgo::ImplicitGemm, || cases(dev));
    });
}

fn cases(dev: &Device) {
    // 128×64 blocks (N = 64), edges in M (162 pixels) and K (288).
    check(
        dev,
        &Conv2d {
            padding: Padding::symmetric(1),
            ..Conv2d::new(32, 64, (3, 3))
        },
        &[2, 32, 9, 9],
        [true, true, true],
        1,
    );
    // 128×128 blocks (N = 96), stride, dilation, asymmetric padding, an odd kernel.
    check(
        dev,
        &Conv2d {
            stride: (2, 1),
            dilation: (1, 2),
            padding: Padding::Explicit {
                top: 1,
                bottom: 0,
                left: 2,
                right: 1,
            },
            ..Conv2d::new(40, 96, (3, 2))
        },
        &[3, 40, 11, 10],
        [true, true, true],
        10,
    );
    // Groups: 36 output and 40 input channels per group (not multiples of 16).
    check(
        dev,
        &Conv2d {
            groups: 2,
            padding: Padding::symmetric(1),
            ..Conv2d::new(80, 72, (3, 3))
        },
        &[2, 80, 7, 7],
        [true, true, true],
        20,
    );
    // 1-D.
    check(
        dev,
        &Conv1d {
            padding: wgtrain::ops::conv::Padding1d::Explicit { left: 2, right: 2 },
            ..Conv1d::new(48, 64, 5)
        },
        &[4, 48, 33],
        [true, true, true],
        30,
    );
    // Transposed: its forward is the data-gradient module and the reverse.
    check(
        dev,
        &ConvTranspose2d {
            stride: (2, 2),
            padding: Padding::symmetric(1),
            ..ConvTranspose2d::new(64, 32, (3, 3))
        },
        &[3, 64, 5, 5],
        [true, true, true],
        40,
    );
    // Many pixels: the weight gradient splits K over workgroups and sums the splits.
    check(
        dev,
        &Conv2d {
            padding: Padding::symmetric(1),
            ..Conv2d::new(32, 32, (3, 3))
        },
        &[8, 32, 16, 16],
        [true, true, true],
        50,
    );
    // Pointwise without a bias (in f32 it can take the matmul GEMM; in f16 this core).
    check(
        dev,
        &Conv2d {
            bias: false,
            ..Conv2d::new(128, 128, (1, 1))
        },
        &[4, 128, 16, 16],
        [true, true, true],
        55,
    );
    // Too narrow for the tensor cores (16 output, 8 input channels): the tiled core.
    check(
        dev,
        &Conv2d::new(8, 16, (3, 3)),
        &[2, 8, 9, 9],
        [false, false, false],
        60,
    );
}
