//! Winograd F(4×4, 3×3) and F(2×2, 5×5) (`ops::conv::winograd`) against the CPU f64 reference on
//! every adapter: the forward, data gradient and weight gradient of 3×3 and 5×5 stride-1
//! convolutions and conv-transposes on awkward shapes (1×1 to 13×9 images, outputs not a multiple
//! of the tile, 1 to 256 channels, every padding below the filter's edge and asymmetric), the
//! epilogue (bias, fused neuron, accumulate), the passes it must leave to the implicit GEMM, and a
//! compiled graph whose convolutions share the transformed operands. Winograd is forced
//! (`with_conv_algo`), as `Auto` keeps CPU adapters on the implicit GEMM.
//!
//! Tolerance: the implicit GEMM's rule, `f32_tol(9·C_in)`, times `WINOGRAD_FACTOR` = 2. The
//! transforms scale an operand by up to 10 per axis (Bᵀ's largest row, 4 + 5 + 1) and the inverse
//! by up to 19 (Aᵀ's), with terms of either sign, so Winograd could round worse than the direct
//! sum; on these shapes its error was at most 0.56× the rule's tolerance (printed per check).

mod common;

use common::graph_run::{feeds, run_with};
use common::{asym, close_to, each_device};
use wgtrain::compile::Options;
use wgtrain::graph::Graph;
use wgtrain::launch::{GemmLoop, with_gemm_loop};
use wgtrain::ops::Fill;
use wgtrain::ops::conv::gpu as conv;
use wgtrain::ops::conv::reference;
use wgtrain::ops::conv::winograd::{ConvAlgo, with_conv_algo};
use wgtrain::ops::conv::{Conv2d, ConvTranspose2d, Convolution, Padding};
use wgtrain::ops::elementwise::UnaryOp;
use wgtrain::reference::{Array, f32_tol};
use wgtrain::{Device, Tensor};

/// How much looser than the implicit GEMM's rule Winograd's rounding is allowed to be.
const WINOGRAD_FACTOR: f64 = 2.0;
/// The same for a training step through three Winograd convolutions (see the graph test).
const CHAIN_FACTOR: f64 = 32.0;

fn up(dev: &Device, a: &Array) -> Tensor {
    Tensor::from_f32(dev, &a.shape, &a.to_f32()).unwrap()
}

fn data(shape: &[usize], seed: u64) -> Array {
    Fill::Uniform(-1.0, 1.0).array(shape, seed)
}

fn tol(channels_in: usize) -> f64 {
    WINOGRAD_FACTOR * f32_tol(9 * channels_in)
}

/// Checks `gpu` against `reference` under `tol(channels_in)`, printing the error as a multiple
/// of the implicit GEMM's tolerance (what `WINOGRAD_FACTOR` bounds).
fn close_wino(what: &str, gpu: &[f32], reference: &[f64], channels_in: usize) {
    let base = f32_tol(9 * channels_in);
    let worst = gpu
        .iter()
        .zip(reference)
        .map(|(&g, &r)| (g as f64 - r).abs() / (base * (1.0 + r.abs())))
        .fold(0.0, f64::max);
    eprintln!("{what}: error {worst:.2}× the implicit GEMM's tolerance");
    close_to(what, gpu, reference, tol(channels_in));
}

/// The labels of the launches `prep` records, to assert which algorithm ran.
fn labels(prep: &wgtrain::launch::Prepared) -> String {
    format!("{:?}", prep.launches)
}

/// Runs prepared launches and returns the output.
fn run(dev: &Device, prep: &wgtrain::launch::Prepared, out: &Tensor) -> Vec<f32> {
    dev.run(&prep.launches).unwrap();
    out.to_f32().unwrap()
}

/// Forward (with bias) and data gradient of `op` on Winograd against the reference; asserts
/// both took it.
fn check<Op: Convolution + std::fmt::Debug>(dev: &Device, op: &Op, x_shape: &[usize]) {
    let what = format!("{x_shape:?} {op:?}");
    let x = data(x_shape, 1);
    let w = data(&op.weight_shape(), 2);
    let b = op.has_bias().then(|| data(&[op.out_channels()], 3));
    let y = reference::forward(op, &x, &w, b.as_ref()).unwrap();
    let dy = data(&y.shape, 4);
    let r = reference::backward(op, &x, &w, &dy).unwrap();
    let (xt, wt, dyt) = (up(dev, &x), up(dev, &w), up(dev, &dy));
    let bt = b.as_ref().map(|b| up(dev, b));
    with_conv_algo(ConvAlgo::Winograd, || {
        let yt = Tensor::zeros(dev, &y.shape, wgtrain::DType::F32).unwrap();
        let prep = conv::forward_launches(op, &xt, &wt, bt.as_ref(), &yt).unwrap();
        assert!(
            labels(&prep).contains("output_transform"),
            "{what}: forward {}",
            labels(&prep)
        );
        let (cin, cout) = channels(op);
        close_wino(&format!("{what}: y"), &run(dev, &prep, &yt), &y.data, cin);
        let dxt = Tensor::zeros(dev, x_shape, wgtrain::DType::F32).unwrap();
        let prep = conv::backward_data_launches(op, x_shape, &wt, &dyt, &dxt).unwrap();
        assert!(
            labels(&prep).contains("output_transform"),
            "{what}: dx {}",
            labels(&prep)
        );
        close_wino(
            &format!("{what}: dx"),
            &run(dev, &prep, &dxt),
            &r.dx.data,
            cout,
        );
        // The weight gradient: a sum over every output pixel of every image.
        let dwt = Tensor::zeros(dev, &w.shape, wgtrain::DType::F32).unwrap();
        let prep = conv::backward_weights_launches(op, &xt, &dyt, &dwt).unwrap();
        assert!(
            labels(&prep).contains("filter_grad_transform"),
            "{what}: dw {}",
            labels(&prep)
        );
        // Its sum runs over the convolution's output pixels (the op's input when transposed).
        let out = if op.is_transposed() { &x } else { &y };
        let pixels = out.shape[0] * out.shape[2] * out.shape[3];
        close_wino(
            &format!("{what}: dw"),
            &run(dev, &prep, &dwt),
            &r.dw.data,
            pixels.div_ceil(9),
        );
    });
}

/// (input, output) channels of the op's forward.
fn channels<Op: Convolution>(op: &Op) -> (usize, usize) {
    let w = op.weight_shape();
    if op.is_transposed() {
        (w[0], op.out_channels())
    } else {
        (w[1], op.out_channels())
    }
}

fn conv3(cin: usize, cout: usize, padding: Padding) -> Conv2d {
    Conv2d {
        padding,
        ..Conv2d::new(cin, cout, (3, 3))
    }
}

#[test]
fn winograd_matches_the_reference_on_awkward_shapes() {
    each_device("winograd shapes", |dev| {
        // Same padding; sizes off the 4×4 tile, one channel, 33 channels.
        check(dev, &conv3(3, 5, Padding::symmetric(1)), &[2, 3, 7, 5]);
        check(dev, &conv3(1, 1, Padding::symmetric(1)), &[1, 1, 1, 1]);
        check(dev, &conv3(33, 7, Padding::symmetric(1)), &[1, 33, 9, 6]);
        check(dev, &conv3(7, 17, Padding::symmetric(1)), &[1, 7, 13, 9]);
        // Valid (no padding): the data gradient pads by 2; padding 2 widens the output.
        check(dev, &conv3(4, 6, Padding::symmetric(0)), &[2, 4, 6, 11]);
        check(dev, &conv3(2, 3, Padding::symmetric(2)), &[1, 2, 5, 3]);
        // Asymmetric.
        check(dev, &conv3(3, 4, asym(2, 0, 0, 1)), &[2, 3, 8, 7]);
        // Without a bias.
        let mut c = conv3(5, 3, Padding::symmetric(1));
        c.bias = false;
        check(dev, &c, &[3, 5, 4, 4]);
        // A conv-transpose at stride 1: its forward is the adjoint pass.
        let mut t = ConvTranspose2d::new(4, 3, (3, 3));
        t.padding = Padding::symmetric(1);
        check(dev, &t, &[2, 4, 6, 5]);
        let mut t = ConvTranspose2d::new(3, 2, (3, 3));
        t.padding = asym(0, 2, 1, 0);
        t.bias = false;
        check(dev, &t, &[1, 3, 5, 7]);
    });
}

fn conv5(cin: usize, cout: usize, padding: Padding) -> Conv2d {
    Conv2d {
        padding,
        ..Conv2d::new(cin, cout, (5, 5))
    }
}

/// F(2×2, 5×5): the same shapes' kinds with a 5×5 filter (padding up to 4).
#[test]
fn winograd_5x5_matches_the_reference() {
    each_device("winograd 5x5", |dev| {
        check(dev, &conv5(3, 5, Padding::symmetric(2)), &[2, 3, 7, 5]);
        check(dev, &conv5(1, 1, Padding::symmetric(2)), &[1, 1, 1, 1]);
        check(dev, &conv5(33, 7, Padding::symmetric(2)), &[1, 33, 9, 6]);
        check(dev, &conv5(4, 6, Padding::symmetric(0)), &[2, 4, 6, 11]);
        check(dev, &conv5(2, 3, Padding::symmetric(4)), &[1, 2, 3, 4]);
        check(dev, &conv5(3, 4, asym(3, 0, 1, 2)), &[2, 3, 8, 7]);
        check(dev, &conv5(64, 16, Padding::symmetric(2)), &[1, 64, 8, 8]);
        let mut t = ConvTranspose2d::new(4, 3, (5, 5));
        t.padding = asym(2, 1, 0, 3);
        check(dev, &t, &[2, 4, 6, 5]);
    });
}

/// Passes whose tiles and channels are multiples of 4 take the products' 16-byte module
/// (`winograd_gemm_vec4.wgsl`, M stored four tiles at a time): forward and data gradient both
/// aligned, a partial last block of tiles, several blocks, 3×3 and 5×5; on the tiled loop too.
#[test]
fn winograd_products_four_at_a_time() {
    each_device("winograd vec4", |dev| {
        let cases: [(Conv2d, [usize; 4]); 4] = [
            // 12 tiles (4 × 3), 4 and 8 channels.
            (conv3(8, 4, Padding::symmetric(1)), [1, 8, 13, 9]),
            // 4 images of 5 × 5 tiles = 100: rows 100..127 of the block outside.
            (conv3(4, 8, Padding::symmetric(1)), [4, 4, 20, 20]),
            // 324 tiles: three blocks of 128 rows, the last partial.
            (conv3(4, 4, Padding::symmetric(1)), [4, 4, 36, 36]),
            // F(2×2, 5×5): 4 images of 3 × 3 tiles.
            (conv5(8, 12, Padding::symmetric(2)), [4, 8, 6, 6]),
        ];
        for (op, x_shape) in &cases {
            check(dev, op, x_shape);
        }
        with_gemm_loop(GemmLoop::Tiled, || {
            for (op, x_shape) in &cases {
                check(dev, op, x_shape);
            }
        });
    });
}

/// Passes run over the batch in chunks of images where the scratch budget asks for it: one image
/// a chunk here (forward, data and weight gradients, 3×3 and 5×5, a conv-transpose), and two
/// images of a batch of three (a shorter last chunk).
#[test]
fn winograd_in_chunks_of_images() {
    use wgtrain::ops::conv::winograd::with_chunk_bytes;
    each_device("winograd chunks", |dev| {
        with_chunk_bytes(1, || {
            check(dev, &conv3(3, 5, Padding::symmetric(1)), &[3, 3, 7, 5]);
            check(dev, &conv5(4, 6, asym(3, 0, 1, 2)), &[2, 4, 6, 7]);
            let mut t = ConvTranspose2d::new(4, 3, (3, 3));
            t.padding = Padding::symmetric(1);
            check(dev, &t, &[2, 4, 6, 5]);
        });
        // Two images' operands: 36 · 7 channels · 2 · 2 tiles · 4 bytes each.
        with_chunk_bytes(36 * 7 * 4 * 4 * 2, || {
            check(dev, &conv3(7, 5, Padding::symmetric(1)), &[3, 7, 8, 6]);
        });
        // The chunks are dispatches: one filter transform, then three per chunk (and per
        // weight-gradient chunk, then one inverse transform).
        let mut op = conv3(7, 5, Padding::symmetric(1));
        op.bias = false;
        let x = up(dev, &data(&[3, 7, 8, 6], 5));
        let w = up(dev, &data(&op.weight_shape(), 6));
        let y = Tensor::zeros(dev, &[3, 5, 8, 6], wgtrain::DType::F32).unwrap();
        let dw = Tensor::zeros(dev, &op.weight_shape(), wgtrain::DType::F32).unwrap();
        for (bytes, chunks) in [(1, 3), (36 * 7 * 4 * 4 * 2, 2), (1 << 30, 1)] {
            with_chunk_bytes(bytes, || {
                with_conv_algo(ConvAlgo::Winograd, || {
                    let f = conv::forward_launches(&op, &x, &w, None, &y).unwrap();
                    assert_eq!(f.launches.len(), 1 + 3 * chunks, "{}", labels(&f));
                    let g = conv::backward_weights_launches(&op, &x, &y, &dw).unwrap();
                    assert_eq!(g.launches.len(), 3 * chunks + 1, "{}", labels(&g));
                });
            });
        }
    });
}

#[test]
fn winograd_error_with_many_channels() {
    // The rounding of a 9·64-term sum through the transforms, on values of both signs.
    each_device("winograd 64 channels", |dev| {
        check(dev, &conv3(64, 16, Padding::symmetric(1)), &[1, 64, 8, 8]);
        check(dev, &conv3(256, 16, Padding::symmetric(1)), &[1, 256, 8, 8]);
    });
}

#[test]
fn winograd_epilogue_fuses_the_neuron_and_accumulates() {
    each_device("winograd epilogue", |dev| {
        let op = conv3(3, 4, Padding::symmetric(1));
        let x = data(&[2, 3, 5, 6], 11);
        let w = data(&op.weight_shape(), 12);
        let b = data(&[4], 13);
        let y = reference::forward(&op, &x, &w, Some(&b)).unwrap();
        let prior = data(&y.shape, 14);
        let (xt, wt, bt) = (up(dev, &x), up(dev, &w), up(dev, &b));
        with_conv_algo(ConvAlgo::Winograd, || {
            // y = relu(conv + b)
            let yt = Tensor::zeros(dev, &y.shape, wgtrain::DType::F32).unwrap();
            let relu = Some(UnaryOp::Relu);
            let prep = conv::forward_fused_launches(&op, &xt, &wt, Some(&bt), &yt, relu).unwrap();
            assert!(labels(&prep).contains("output_transform"));
            let want: Vec<f64> = y.data.iter().map(|v| v.max(0.0)).collect();
            close_to("relu(conv + b)", &run(dev, &prep, &yt), &want, tol(3));
            // y = prior + conv + b
            let yt = up(dev, &prior);
            let prep = conv::forward_into(&op, &xt, &wt, Some(&bt), &yt, None, true).unwrap();
            let want: Vec<f64> = y.data.iter().zip(&prior.data).map(|(a, p)| a + p).collect();
            close_to("prior + conv + b", &run(dev, &prep, &yt), &want, tol(3));
        });
    });
}

#[test]
fn ineligible_passes_keep_the_implicit_gemm() {
    each_device("winograd ineligible", |dev| {
        let mut strided = conv3(3, 4, Padding::symmetric(1));
        strided.stride = (2, 1);
        let mut dilated = conv3(3, 4, Padding::symmetric(2));
        dilated.dilation = (2, 2);
        let mut grouped = conv3(4, 4, Padding::symmetric(1));
        grouped.groups = 2;
        let seven = Conv2d {
            padding: Padding::symmetric(3),
            ..Conv2d::new(3, 4, (7, 7))
        };
        let mut five_wide_pad = conv5(3, 4, Padding::symmetric(1));
        five_wide_pad.padding = Padding::symmetric(5);
        let wide_pad = conv3(3, 4, Padding::symmetric(3));
        for op in [strided, dilated, grouped, seven, five_wide_pad, wide_pad] {
            let x_shape = [1, op.in_channels, 9, 9];
            let x = data(&x_shape, 21);
            let w = data(&op.weight_shape(), 22);
            let (xt, wt) = (up(dev, &x), up(dev, &w));
            let b = up(dev, &data(&[4], 23));
            let y = reference::forward(&op, &x, &w, Some(&data(&[4], 23))).unwrap();
            with_conv_algo(ConvAlgo::Winograd, || {
                let yt = Tensor::zeros(dev, &y.shape, wgtrain::DType::F32).unwrap();
                let prep = conv::forward_launches(&op, &xt, &wt, Some(&b), &yt).unwrap();
                assert!(
                    !labels(&prep).contains("transform"),
                    "{op:?}: {}",
                    labels(&prep)
                );
                close_to(
                    &format!("{op:?}"),
                    &run(dev, &prep, &yt),
                    &y.data,
                    f32_tol(9 * 25),
                );
            });
        }
        // And the choice `ImplicitGemm` keeps an eligible one off Winograd.
        let op = conv3(3, 4, Padding::symmetric(1));
        let xt = up(dev, &data(&[1, 3, 8, 8], 24));
        let wt = up(dev, &data(&op.weight_shape(), 25));
        let yt = Tensor::zeros(dev, &[1, 4, 8, 8], wgtrain::DType::F32).unwrap();
        let b = up(dev, &data(&[4], 26));
        with_conv_algo(ConvAlgo::ImplicitGemm, || {
            let prep = conv::forward_launches(&op, &xt, &wt, Some(&b), &yt).unwrap();
            assert!(!labels(&prep).contains("transform"), "{}", labels(&prep));
        });
    });
}

/// A training step of a net with three 3×3 convolutions of different sizes on Winograd equals
/// the implicit GEMM's (and the reference), and the graph holds one buffer per scratch slot
/// however many passes use it.
#[test]
fn a_compiled_graph_shares_winograd_scratch() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3, 9, 10]).unwrap();
    let c1 = g
        .conv2d("c1", x, conv3(3, 8, Padding::symmetric(1)))
        .unwrap();
    let r1 = g.unary("r1", UnaryOp::Relu, c1).unwrap();
    let c2 = g
        .conv2d("c2", r1, conv3(8, 5, Padding::symmetric(0)))
        .unwrap();
    let c3 = g
        .conv2d("c3", c2, conv3(5, 4, Padding::symmetric(2)))
        .unwrap();
    let s = g.unary("sq", UnaryOp::Square, c3).unwrap();
    let loss = g.sum("loss", s, 1).unwrap();
    let tr = g.training(loss).unwrap();
    let f = feeds(&g, 41);
    let mut outs = vec![loss];
    outs.extend(&tr.grads);
    let want = g.eval_reference(&f, &outs).unwrap();
    each_device("winograd graph", |dev| {
        let opts = Options::default();
        let (gemm, gemm_stats) = with_conv_algo(ConvAlgo::ImplicitGemm, || {
            run_with(dev, &g, &outs, &opts, &f, 1)
        });
        let (wino, wino_stats) = with_conv_algo(ConvAlgo::Winograd, || {
            run_with(dev, &g, &outs, &opts, &f, 1)
        });
        // Stacked sums amplify each rounding, and the weight gradients (180-term sums that
        // cancel) most: the implicit GEMM's step reaches 0.86–0.95× the rule for the loss's 720
        // terms, Winograd's 5.2× on the H200 and 21.5× on lavapipe (every pass's error, within
        // the rule alone, feeds the weight gradients). Held to CHAIN_FACTOR× the rule.
        let worst_of = |got: &[f32], want: &[f64]| -> f64 {
            got.iter()
                .zip(want)
                .map(|(&g, &r)| (g as f64 - r).abs() / (f32_tol(720) * (1.0 + r.abs())))
                .fold(0.0, f64::max)
        };
        let worst = |got: &[Vec<f32>]| -> f64 {
            got.iter()
                .zip(&want)
                .map(|(a, w)| worst_of(a, &w.data))
                .fold(0.0, f64::max)
        };
        for (k, v) in outs.iter().enumerate() {
            eprintln!(
                "{}: error / f32_tol(720): implicit GEMM {:.2}, Winograd {:.2}",
                g.node(*v).unwrap().name,
                worst_of(&gemm[k], &want[k].data),
                worst_of(&wino[k], &want[k].data)
            );
        }
        let (e_gemm, e_wino) = (worst(&gemm), worst(&wino));
        assert!(e_gemm <= 1.0, "implicit GEMM: {e_gemm:.2}× the rule");
        assert!(e_wino <= CHAIN_FACTOR, "Winograd: {e_wino:.2}× the rule");
        assert_eq!(gemm.len(), wino.len());
        // Five Winograd passes (three forwards, the data gradients of c2 and c3) and four
        // dispatches each where the implicit GEMM takes one (or a few split-K ones).
        assert!(
            wino_stats.dispatches_per_step >= gemm_stats.dispatches_per_step + 5 * 2,
            "{} vs {} dispatches",
            wino_stats.dispatches_per_step,
            gemm_stats.dispatches_per_step
        );
        // The same inputs and parameters either way; Winograd's scratch is four buffers (U, V,
        // M, and the weight gradients' partial sums S), each as large as the largest pass needs:
        // (channels in, out, 4×4 tiles) of c1, c2, c3 and the data gradients of c3 and c2 (the
        // weight gradients' V and M are their forwards', S one split of channels in × out here).
        assert_eq!(
            wino_stats.persistent_bytes - wino_stats.scratch_bytes,
            gemm_stats.persistent_bytes - gemm_stats.scratch_bytes
        );
        let passes = [(3, 8, 18), (8, 5, 8), (5, 4, 18), (4, 5, 8), (5, 8, 18)];
        let most = |f: fn(&(usize, usize, usize)) -> usize| passes.iter().map(f).max().unwrap();
        let largest =
            36 * 4 * (2 * most(|p| p.0 * p.1) + most(|p| p.0 * p.2) + most(|p| p.1 * p.2));
        // (A pass Winograd does not take would add split-K partial products, at most the
        // implicit GEMM's shared buffer.)
        assert!(
            wino_stats.scratch_bytes <= largest as u64 + gemm_stats.scratch_bytes,
            "{} bytes of scratch, more than one buffer per slot ({largest} + {})",
            wino_stats.scratch_bytes,
            gemm_stats.scratch_bytes
        );
    });
}

/// f16 storage (mixed precision) on Winograd: the transforms read and write f16, the products
/// stay f32. Against the reference fed the same f16-rounded values, within `f16_tol` (the output's
/// rounding) on top of Winograd's f32 tolerance.
#[test]
fn winograd_f16_storage_matches_the_reference() {
    use wgtrain::DType;
    use wgtrain::reference::f16_tol;
    let half = |a: &Array| Array {
        shape: a.shape.clone(),
        data: a
            .data
            .iter()
            .map(|&v| half::f16::from_f64(v).to_f64())
            .collect(),
    };
    each_device("winograd f16", |dev| {
        if !dev.caps().shader_f16 {
            eprintln!("{}: no SHADER_F16, nothing to run", dev.name());
            return;
        }
        let h = |a: &Array| Tensor::from_f32_as_f16(dev, &a.shape, &a.to_f32()).unwrap();
        let cases: [(Conv2d, [usize; 4]); 3] = [
            (conv3(5, 7, Padding::symmetric(1)), [2, 5, 7, 9]),
            (conv3(33, 3, asym(2, 0, 0, 1)), [1, 33, 6, 5]),
            (conv5(4, 6, Padding::symmetric(2)), [2, 4, 6, 7]),
        ];
        for (op, x_shape) in cases {
            let what = format!("f16 {x_shape:?} {op:?}");
            let x = half(&data(&x_shape, 31));
            let w = half(&data(&op.weight_shape(), 32));
            let b = half(&data(&[op.out_channels], 33));
            let y = reference::forward(&op, &x, &w, Some(&b)).unwrap();
            let dy = half(&data(&y.shape, 34));
            let r = reference::backward(&op, &x, &w, &dy).unwrap();
            let (xt, wt, bt, dyt) = (h(&x), h(&w), h(&b), h(&dy));
            let f16_close = |pass: &str,
                             prep: &wgtrain::launch::Prepared,
                             out: &Tensor,
                             want: &[f64],
                             n: usize| {
                assert!(
                    labels(prep).contains("_transform"),
                    "{what}: {pass} {}",
                    labels(prep)
                );
                assert_eq!(out.dtype(), DType::F16);
                close_to(
                    &format!("{what}: {pass}"),
                    &run(dev, prep, out),
                    want,
                    f16_tol(4) + tol(n),
                );
            };
            with_conv_algo(ConvAlgo::Winograd, || {
                let yt = Tensor::zeros(dev, &y.shape, DType::F16).unwrap();
                let prep = conv::forward_launches(&op, &xt, &wt, Some(&bt), &yt).unwrap();
                f16_close("y", &prep, &yt, &y.data, op.in_channels);
                let dxt = Tensor::zeros(dev, &x_shape, DType::F16).unwrap();
                let prep = conv::backward_data_launches(&op, &x_shape, &wt, &dyt, &dxt).unwrap();
                f16_close("dx", &prep, &dxt, &r.dx.data, op.out_channels);
                let dwt = Tensor::zeros(dev, &w.shape, DType::F16).unwrap();
                let prep = conv::backward_weights_launches(&op, &xt, &dyt, &dwt).unwrap();
                let pixels = y.shape[0] * y.shape[2] * y.shape[3];
                f16_close("dw", &prep, &dwt, &r.dw.data, pixels.div_ceil(9));
            });
        }
    });
}
