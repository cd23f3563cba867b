//! The launch paths shapes choose, each taken by the smallest shape that reaches it, on every
//! adapter: convolutions through every GEMM entry of `gemm_core.wgsl` (narrow 128×64 tiles
//! crossing several tiles in M and N, the wide 128×128 and thin 128×32 entries, for the forward
//! and the data gradient, and the direct loop), and grids past 65,535 workgroups folded into 2-D (`launch::grid_1d`) for the
//! kernels that launch one workgroup per row (losses, global pooling, the bias gradient) and the
//! elementwise kernels (256 elements per workgroup: 16.8 M elements). Tolerances follow
//! `wgtrain::reference::f32_tol`.

mod common;

use std::collections::HashMap;

use common::{close_to, each_device};
use wgtrain::compile::Options;
use wgtrain::graph::{Graph, Value};
use wgtrain::launch::{GemmLoop, with_gemm_loop};
use wgtrain::ops::Fill;
use wgtrain::ops::conv::gpu as conv;
use wgtrain::ops::conv::winograd::{ConvAlgo, with_conv_algo};
use wgtrain::ops::conv::{Conv2d, Padding};
use wgtrain::ops::dense::FullyConnected;
use wgtrain::ops::elementwise::gpu as ew;
use wgtrain::ops::elementwise::{BinaryOp, UnaryOp};
use wgtrain::ops::loss::{Loss, LossKind, Reduction};
use wgtrain::ops::matmul::gpu::{THIN_N, TILE_N, gemm_grid};
use wgtrain::reference::{Array, f32_tol};
use wgtrain::{DType, Device, Tensor};

fn up(dev: &Device, a: &Array) -> Tensor {
    Tensor::from_f32(dev, &a.shape, &a.to_f32()).unwrap()
}

fn data(shape: &[usize], seed: u64) -> Array {
    Fill::Uniform(-1.0, 1.0).array(shape, seed)
}

/// The GEMM entry and grid a convolution's forward (M = N·OH·OW, N = C_out/g) and data gradient
/// (M = N·H·W, N = C_in/g) take: the test asserts the path it means to cover.
fn conv_paths(dev: &Device, c: &Conv2d, x: &[usize]) -> [(&'static str, [u32; 3]); 2] {
    let y = c.out_shape(x).unwrap();
    let g = c.groups;
    [
        gemm_grid(dev, y[0] * y[2] * y[3], c.out_channels / g, g),
        gemm_grid(dev, x[0] * x[2] * x[3], c.in_channels / g, g),
    ]
}

/// Forward, dx, dw and db on the GPU against the reference, under the tolerance rule with the
/// longest sum of the three GEMMs and the bias gradient.
fn check_conv(dev: &Device, c: &Conv2d, x_shape: &[usize]) {
    let what = format!("conv {x_shape:?} {c:?}");
    let x = data(x_shape, 1);
    let w = data(&c.weight_shape(), 2);
    let b = data(&[c.out_channels], 3);
    let y = wgtrain::ops::conv::reference::forward(c, &x, &w, Some(&b)).unwrap();
    let dy = data(&y.shape, 4);
    let (kh, kw) = c.kernel;
    let per_group = |ch: usize| ch / c.groups * kh * kw;
    let terms = per_group(c.in_channels)
        .max(per_group(c.out_channels))
        .max(y.shape[0] * y.shape[2] * y.shape[3]);
    let tol = f32_tol(terms);
    let (xt, wt) = (up(dev, &x), up(dev, &w));
    let yt = conv::forward(c, &xt, &wt, Some(&up(dev, &b))).unwrap();
    close_to(&format!("{what}: y"), &yt.to_f32().unwrap(), &y.data, tol);
    let r = wgtrain::ops::conv::reference::backward(c, &x, &w, &dy).unwrap();
    let g = conv::backward(c, &xt, &wt, &up(dev, &dy)).unwrap();
    close_to(
        &format!("{what}: dx"),
        &g.dx.to_f32().unwrap(),
        &r.dx.data,
        tol,
    );
    close_to(
        &format!("{what}: dw"),
        &g.dw.to_f32().unwrap(),
        &r.dw.data,
        tol,
    );
    let (db, rdb) = (g.db.unwrap(), r.db.unwrap());
    close_to(
        &format!("{what}: db"),
        &db.to_f32().unwrap(),
        &rdb.data,
        tol,
    );
}

#[test]
fn convolutions_take_every_gemm_entry() {
    each_device("conv gemm entries", |dev| {
        // The paths of the implicit GEMM, which a GPU would leave for Winograd at 3×3.
        with_conv_algo(ConvAlgo::ImplicitGemm, || {
            with_gemm_loop(GemmLoop::Tiled, || {
                let t = std::time::Instant::now();
                // 130 → 130 channels on 2×12×12: M = 288 (3 row tiles), N = 130 (3 column tiles of
                // 64, the last of 2), for the forward and the data gradient, narrow entry.
                let several = Conv2d {
                    padding: Padding::symmetric(1),
                    ..Conv2d::new(130, 130, (3, 3))
                };
                let x = [2, 130, 12, 12];
                for (entry, grid) in conv_paths(dev, &several, &x) {
                    assert_eq!(entry, "gemm");
                    assert!(grid[0] >= 3 && grid[1] >= 3, "{grid:?}");
                }
                check_conv(dev, &several, &x);
                // The wide entry needs N > TILE_N and one wave of its workgroups against two of
                // the narrow entry's (`matmul::gpu::tile_cost`): 4 groups of 65 output channels over
                // 90×90 pixels (64 row tiles per group, 256 wide workgroups) for the forward; 4
                // groups of 65 input channels for the data gradient.
                let wide_forward = Conv2d {
                    groups: 4,
                    padding: Padding::symmetric(1),
                    ..Conv2d::new(4, 4 * (TILE_N + 1), (3, 3))
                };
                let x = [1, 4, 90, 90];
                assert_eq!(conv_paths(dev, &wide_forward, &x)[0].0, "gemm_wide");
                check_conv(dev, &wide_forward, &x);
                let wide_dgrad = Conv2d {
                    groups: 4,
                    padding: Padding::symmetric(1),
                    ..Conv2d::new(4 * (TILE_N + 1), 4, (3, 3))
                };
                let x = [1, 4 * (TILE_N + 1), 90, 90];
                assert_eq!(conv_paths(dev, &wide_dgrad, &x)[1].0, "gemm_wide");
                check_conv(dev, &wide_dgrad, &x);
                // The thin entry (N ≤ 32): 7 → 32 channels strided and grouped by 1, and 32 → 7,
                // each over several row tiles (M = 2·17·17 = 578 and 2·9·9 = 162).
                let thin = Conv2d {
                    stride: (2, 2),
                    padding: Padding::symmetric(1),
                    ..Conv2d::new(7, THIN_N, (3, 3))
                };
                let x = [2, 7, 17, 17];
                let [fwd, dgrad] = conv_paths(dev, &thin, &x);
                assert_eq!((fwd.0, dgrad.0), ("gemm_thin", "gemm_thin"));
                check_conv(dev, &thin, &x);
                let thin_back = Conv2d {
                    padding: Padding::symmetric(2),
                    ..Conv2d::new(THIN_N, 7, (5, 5))
                };
                let x = [2, THIN_N, 9, 9];
                assert_eq!(conv_paths(dev, &thin_back, &x)[0].0, "gemm_thin");
                check_conv(dev, &thin_back, &x);
                eprintln!("[conv gemm entries] {:.1} s", t.elapsed().as_secs_f64());
            });
            // The direct loop (a CPU adapter's default) on the same awkward shapes.
            with_gemm_loop(GemmLoop::Direct, || {
                for (c, x) in [
                    (
                        Conv2d {
                            stride: (2, 2),
                            padding: Padding::symmetric(1),
                            ..Conv2d::new(7, 33, (3, 3))
                        },
                        [2, 7, 17, 17],
                    ),
                    (
                        Conv2d {
                            groups: 3,
                            padding: Padding::symmetric(2),
                            ..Conv2d::new(9, 6, (5, 5))
                        },
                        [1, 9, 7, 7],
                    ),
                ] {
                    assert_eq!(conv_paths(dev, &c, &x)[0].0, "gemm_direct");
                    check_conv(dev, &c, &x);
                }
            });
        });
    });
}

/// A convolution with at most 32 taps (C_in·kh·kw) and 64 output channels loops over its taps
/// (`conv::short_k`) forward and for its weight gradient, under `ConvAlgo::ShortK` and on a GPU
/// under `Auto`; one past either limit, or under `ConvAlgo::ImplicitGemm`, takes the implicit
/// GEMM. Each is checked against the reference.
#[test]
fn short_reductions_loop_over_their_taps() {
    each_device("short reductions", |dev| {
        with_conv_algo(ConvAlgo::ShortK, || {
            let entries = |c: &Conv2d, x: &[usize]| {
                let zeros = |shape: &[usize]| Tensor::zeros(dev, shape, DType::F32).unwrap();
                let (xt, w) = (zeros(x), zeros(&c.weight_shape()));
                let (y, b) = (zeros(&c.out_shape(x).unwrap()), zeros(&[c.out_channels]));
                let f = conv::forward_launches(c, &xt, &w, Some(&b), &y).unwrap();
                let dw = conv::backward_weights_launches(c, &xt, &y, &w).unwrap();
                (f.launches[0].label(), dw.launches[0].label())
            };
            let short = ("short_k_forward", "short_k_weight_grad");
            for (c, x, loops) in [
                // MNIST's first layer, one image of 7×9 and a batch of 3 at 33×33 (chunks of pixels,
                // the last partial), and 64 channels from 32 taps strided and dilated.
                (
                    Conv2d {
                        padding: Padding::symmetric(2),
                        ..Conv2d::new(1, 32, (5, 5))
                    },
                    vec![1, 1, 7, 9],
                    true,
                ),
                (
                    Conv2d {
                        padding: Padding::symmetric(2),
                        ..Conv2d::new(1, 32, (5, 5))
                    },
                    vec![3, 1, 33, 33],
                    true,
                ),
                (
                    Conv2d {
                        stride: (2, 1),
                        dilation: (2, 1),
                        ..Conv2d::new(2, 64, (4, 4))
                    },
                    vec![2, 2, 13, 7],
                    true,
                ),
                // 33 taps; 65 output channels.
                (Conv2d::new(11, 8, (3, 1)), vec![2, 11, 7, 5], false),
                (Conv2d::new(1, 65, (3, 3)), vec![2, 1, 7, 5], false),
            ] {
                let got = entries(&c, &x);
                assert_eq!(got == short, loops, "{c:?} on {x:?}: {got:?}");
                check_conv(dev, &c, &x);
            }
            let mnist = Conv2d::new(1, 32, (5, 5));
            let x = [2, 1, 9, 9];
            let gemm = with_conv_algo(ConvAlgo::ImplicitGemm, || entries(&mnist, &x));
            assert_ne!(gemm.0, short.0);
            assert_ne!(gemm.1, short.1);
            let auto = with_conv_algo(ConvAlgo::Auto, || entries(&mnist, &x));
            assert_eq!(auto == short, !dev.is_cpu(), "{auto:?}");
        })
    });
}

/// A convolution with a bias whose weight gradient loops over its taps sums db from the same
/// staged dy (`short_k_weight_grad`; over several chunks, `short_k_grad_sum` sums both): no
/// `bias_grad` dispatch. Adding into dw (a gradient summed in place) writes db, never adds to it.
/// One chunk of 7 channels, two (33 pixels), and 64 channels of 32 taps (three sums an invocation).
#[test]
fn short_reductions_sum_the_bias_with_the_weights() {
    use wgtrain::graph::Primitive;
    use wgtrain::ops::conv::{ConvKind, ConvOp};
    each_device("short reductions' bias", |dev| {
        with_conv_algo(ConvAlgo::ShortK, || {
            let (direct, split) = (
                &["short_k_weight_grad"][..],
                &["short_k_weight_grad", "short_k_grad_sum"][..],
            );
            for (c, x_shape, want) in [
                (Conv2d::new(1, 7, (3, 3)), [1, 1, 5, 8], direct),
                (Conv2d::new(1, 7, (3, 3)), [1, 1, 5, 13], split),
                (Conv2d::new(2, 64, (4, 4)), [3, 2, 7, 7], split),
            ] {
                let what = format!("{c:?} on {x_shape:?}");
                let x = data(&x_shape, 11);
                let w = data(&c.weight_shape(), 12);
                let dy = data(&c.out_shape(&x_shape).unwrap(), 13);
                let r = wgtrain::ops::conv::reference::backward(&c, &x, &w, &dy).unwrap();
                let (rdw, rdb) = (r.dw.data, r.db.unwrap().data);
                // What dw and db held before: added to dw when accumulating, never to db.
                let (dw0, db0) = (data(&c.weight_shape(), 14), data(&[c.out_channels], 15));
                let tol = f32_tol(dy.shape[0] * dy.shape[2] * dy.shape[3]);
                let op = ConvOp::GradWeightBias(ConvKind::D2(c));
                for accumulate in [false, true] {
                    let (xt, dyt) = (up(dev, &x), up(dev, &dy));
                    let (dw, db) = (up(dev, &dw0), up(dev, &db0));
                    let (ins, outs) = ([&xt, &dyt], [&dw, &db]);
                    let prep = if accumulate {
                        op.lower_accumulate(&ins, &outs)
                    } else {
                        op.lower(&ins, &outs, &[], 0)
                    }
                    .unwrap();
                    let got: Vec<&str> = prep.launches.iter().map(|l| l.label()).collect();
                    assert_eq!(got, want, "{what}");
                    dev.run(&prep.launches).unwrap();
                    let wdw: Vec<f64> = if accumulate {
                        rdw.iter().zip(&dw0.data).map(|(g, d)| g + d).collect()
                    } else {
                        rdw.clone()
                    };
                    let what = format!("{what}, accumulate {accumulate}");
                    close_to(&format!("{what}: dw"), &dw.to_f32().unwrap(), &wdw, tol);
                    close_to(&format!("{what}: db"), &db.to_f32().unwrap(), &rdb, tol);
                }
            }
        })
    });
}

/// Compiles the gradients of `sum(y ⊙ dy)` with respect to `wrt` (and y itself), runs them and
/// checks each against the reference under `f32_tol(terms)`.
fn check_graph(dev: &Device, what: &str, mut g: Graph, y: Value, wrt: &[Value], terms: usize) {
    let shape = g.shape(y).unwrap().to_vec();
    let dyv = g.input("dy", &shape).unwrap();
    let p = g.binary("p", BinaryOp::Mul, y, dyv).unwrap();
    let mut outs = vec![y];
    outs.extend(g.gradients(p, wrt).unwrap());
    let mut f = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if n.op.is_source() {
            let shape = &n.outputs[0].0;
            let a = if n.outputs[0].1 == DType::U32 {
                Fill::Classes(2).array(shape, i as u64)
            } else {
                data(shape, i as u64)
            };
            f.insert(n.name.clone(), a);
        }
    }
    let want = g.eval_reference(&f, &outs).unwrap();
    let c = g.compile(dev, &outs, &Options::default()).unwrap();
    common::set_sources(&c, &g, &f);
    c.step().unwrap();
    for (k, (v, w)) in outs.iter().zip(&want).enumerate() {
        let got = c.read(*v).unwrap();
        close_to(&format!("{what} output {k}"), &got, &w.data, f32_tol(terms));
    }
}

/// Rows past 65,535: one workgroup per row, folded into a 2-D grid.
const ROWS: usize = 66_000;

#[test]
fn grids_past_65535_workgroups_fold() {
    each_device("grid fold", |dev| {
        let t = std::time::Instant::now();
        // A loss over 66,000 rows (forward and backward: one workgroup per row).
        let mut g = Graph::new();
        let x = g.input("x", &[ROWS, 2]).unwrap();
        let labels = g.input_u32("t", &[ROWS]).unwrap();
        let kind = LossKind::SoftmaxCrossEntropy {
            label_smoothing: 0.0,
            class_weights: None,
        };
        let loss = Loss::new(kind, Reduction::None).unwrap();
        let y = g.loss("y", x, labels, None, loss).unwrap();
        check_graph(dev, "loss rows", g, y, &[x], 2);
        // Global average pooling of 66,000 planes (one workgroup per plane).
        let mut g = Graph::new();
        let x = g.input("x", &[1, ROWS, 2, 1]).unwrap();
        let y = g.global_avg_pool("y", x).unwrap();
        check_graph(dev, "global pool planes", g, y, &[x], 2);
        // A layer of 66,000 outputs: the bias gradient takes one workgroup per output.
        let mut g = Graph::new();
        let x = g.input("x", &[2, 1]).unwrap();
        let y = g.dense("fc", x, FullyConnected::new(1, ROWS)).unwrap();
        let wrt = [g.find("fc.weight").unwrap(), g.find("fc.bias").unwrap()];
        check_graph(dev, "dense bias", g, y, &wrt, 2);
        // Elementwise kernels, 256 elements per workgroup: 65,536 groups and more.
        let n = 65_536 * 256 + 1;
        let a = data(&[n], 5);
        let b = data(&[1], 6);
        let (at, bt) = (up(dev, &a), up(dev, &b));
        let tanh = ew::unary(UnaryOp::Tanh, &at).unwrap().to_f32().unwrap();
        let want: Vec<f64> = a.data.iter().map(|v| v.tanh()).collect();
        close_to("folded tanh", &tanh, &want, f32_tol(1));
        let dx = ew::unary_backward(UnaryOp::Tanh, &at, &at).unwrap();
        let want: Vec<f64> = a
            .data
            .iter()
            .map(|v| v * (1.0 - v.tanh().powi(2)))
            .collect();
        close_to(
            "folded tanh backward",
            &dx.to_f32().unwrap(),
            &want,
            f32_tol(1),
        );
        let prod = ew::binary(BinaryOp::Mul, &at, &bt).unwrap();
        let want: Vec<f64> = a.data.iter().map(|v| v * b.data[0]).collect();
        close_to(
            "folded broadcast mul",
            &prod.to_f32().unwrap(),
            &want,
            f32_tol(1),
        );
        eprintln!("[grid fold] {:.1} s", t.elapsed().as_secs_f64());
    });
}

/// Bias gradients of few channels over many pixels are split into chunks summed by their own
/// workgroups, then the chunks summed (matmul's `gemm_sum` for these few), uneven last chunks
/// included.
#[test]
fn bias_gradients_split_over_chunks() {
    use wgtrain::ops::conv::gpu::bias_chunks;
    each_device("bias chunks", |dev| {
        // 3 images of 2 channels, 50×47: 7,050 values per channel in 2 chunks of 3,525.
        let two = Conv2d {
            padding: Padding::symmetric(1),
            ..Conv2d::new(3, 2, (3, 3))
        };
        assert_eq!(bias_chunks(3 * 50 * 47, 2), 2);
        check_conv(dev, &two, &[3, 3, 50, 47]);
        // One channel of 2×70×61 = 8,540 values: 3 chunks, the last one shorter.
        let one = Conv2d {
            padding: Padding::symmetric(1),
            ..Conv2d::new(1, 1, (3, 3))
        };
        assert_eq!(bias_chunks(2 * 70 * 61, 1), 3);
        check_conv(dev, &one, &[2, 1, 70, 61]);
        // A fully connected layer of 3 outputs over a batch of 5,000 (inner 1): 2 chunks.
        assert_eq!(bias_chunks(5000, 3), 2);
        let mut g = Graph::new();
        let x = g.input("x", &[5000, 2]).unwrap();
        let y = g.dense("fc", x, FullyConnected::new(2, 3)).unwrap();
        let wrt = [g.find("fc.weight").unwrap(), g.find("fc.bias").unwrap()];
        check_graph(dev, "dense bias chunks", g, y, &wrt, 5000);
    });
}

/// GEMMs with a small grid and a long K are split over K, the splits added by `gemm_sum`, which
/// also accumulates and applies the fused neuron: every operand layout, a batch, an uneven last
/// split.
#[test]
fn gemms_split_over_k() {
    use wgtrain::ops::matmul::gpu::{Gemm, gemm_split};
    each_device("split-K gemm", |dev| {
        with_gemm_loop(GemmLoop::Tiled, || {
            // x (3, 200) · Wᵀ: 3 splits of 80, 80 and 40.
            assert_eq!(
                gemm_split(dev, &Gemm::plain(3, 5, 200, false, true, true)),
                (3, 80)
            );
            // (5, 300) · (300, 3), batch 2; and Aᵀ (4, 300) · (300, 5), a weight gradient's.
            let batched = Gemm {
                batch: 2,
                ..Gemm::plain(5, 3, 300, false, false, false)
            };
            assert!(gemm_split(dev, &batched).0 > 1);
            assert!(gemm_split(dev, &Gemm::plain(4, 5, 300, true, false, false)).0 > 1);
            // A fully connected layer with its bias (accumulated onto) and a fused ReLU.
            let mut g = Graph::new();
            let x = g.input("x", &[3, 200]).unwrap();
            let h = g.dense("fc", x, FullyConnected::new(200, 5)).unwrap();
            let y = g.unary("relu", UnaryOp::Relu, h).unwrap();
            let wrt = [x, g.find("fc.weight").unwrap(), g.find("fc.bias").unwrap()];
            check_graph(dev, "split dense", g, y, &wrt, 200);
            // A batched product.
            let mut g = Graph::new();
            let a = g.input("a", &[2, 5, 300]).unwrap();
            let b = g.input("b", &[2, 300, 3]).unwrap();
            let y = g.matmul("y", a, b).unwrap();
            check_graph(dev, "split batched matmul", g, y, &[a, b], 300);
            // dB = Aᵀ · dC with K = 300: the transposed-A split.
            let mut g = Graph::new();
            let a = g.input("a", &[300, 4]).unwrap();
            let b = g.input("b", &[4, 5]).unwrap();
            let y = g.matmul("y", a, b).unwrap();
            check_graph(dev, "split transposed matmul", g, y, &[a, b], 300);
            // Two layers split over K (forward 3 and 2 splits, fc1's data gradient 2) share one
            // buffer of partial products, the largest's (fc1's forward: 3 × 3 × 160 floats).
            let mut g = Graph::new();
            let x = g.input("x", &[3, 200]).unwrap();
            let h = g.dense("fc1", x, FullyConnected::new(200, 160)).unwrap();
            let y = g.dense("fc2", h, FullyConnected::new(160, 5)).unwrap();
            let c = g.compile(dev, &[y], &Options::default()).unwrap();
            let (largest, smallest) = (3 * 3 * 160 * 4, 2 * 3 * 5 * 4);
            let scratch = c.stats().scratch_bytes;
            assert!(
                scratch >= largest && scratch < largest + smallest,
                "scratch {scratch} B: not one shared buffer of {largest} B"
            );
            check_graph(dev, "two split layers", g, y, &[x], 200);
        });
    });
}

/// A pointwise convolution's data passes take the matmul GEMM (one product per image, grid z =
/// the images) or the implicit GEMM over all pixels (z = its K splits), whichever takes fewer
/// waves (`conv::gpu::pointwise_faster`): per image Inception v3's 17×17 maps leave most of a
/// tile and a wave idle, ResNet-50's 56×56 ones do not. Only the launches are built (no run).
#[test]
fn pointwise_convolutions_take_the_faster_gemm() {
    each_device("pointwise route", |dev| {
        with_gemm_loop(GemmLoop::Tiled, || {
            for (cin, cout, hw, batched_forward, batched_dgrad) in [
                // Inception v3's 768 → 192 at 17×17; ResNet-50's 64 → 256 and 256 → 64 at 56×56,
                // where 64 channels per image (its M) fill half a tile's rows.
                (768, 192, 17, false, true),
                (64, 256, 56, true, false),
                (256, 64, 56, false, true),
            ] {
                let op = Conv2d {
                    bias: false,
                    ..Conv2d::new(cin, cout, (1, 1))
                };
                let batch = 32;
                let zeros = |shape: &[usize]| Tensor::zeros(dev, shape, DType::F32).unwrap();
                let x = zeros(&[batch, cin, hw, hw]);
                let w = zeros(&op.weight_shape());
                let y = zeros(&[batch, cout, hw, hw]);
                let forward = conv::forward_launches(&op, &x, &w, None, &y).unwrap();
                let dgrad = conv::backward_data_launches(&op, x.shape(), &w, &y, &x).unwrap();
                for (what, p, batched) in [
                    ("forward", forward, batched_forward),
                    ("data gradient", dgrad, batched_dgrad),
                ] {
                    let groups = p.launches[0].groups();
                    assert_eq!(
                        groups[2] == batch as u32,
                        batched,
                        "{cin} → {cout} at {hw}×{hw}, {what}: {:?}",
                        p.launches
                    );
                }
            }
        });
    });
}
