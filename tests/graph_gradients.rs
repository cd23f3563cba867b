//! Gradients through whole differentiated graphs, for the ops `tests/graph.rs` leaves out: shape
//! ops (permute, reshape, view, slice, pad, upsample, concat and its split backward), softmax,
//! layer and instance norm, global pooling, transposed and 1-D convolution, mean, div, min/max and
//! every loss. Each graph's gradients with respect to its inputs and its parameters are held twice:
//! the reference's (`Graph::eval_reference`) against central finite differences of the summed loss,
//! and the GPU's (compiled with `Options { training, gradients_only: true }`) against the
//! reference's. Shapes are tiny: lavapipe runs the whole file in well under a minute.

mod common;

use std::collections::HashMap;

use common::each_device;
use wgtrain::DType;
use wgtrain::autograd::Training;
use wgtrain::compile::Options;
use wgtrain::graph::{Graph, Op, Value};
use wgtrain::ops::elementwise::{BinaryOp, UnaryOp};
use wgtrain::reference::{Array, finite_diff};

/// Reference gradient vs finite differences (f64 throughout: the differences are ~1e-9).
const FD_TOL: f64 = 1e-5;
/// GPU (f32) gradient vs the reference's.
const GPU_TOL: f64 = 2e-4;

/// `|got - want| <= tol·(|want| + max|want|)` everywhere, and finite where `want` is: relative to
/// each element and to the largest (gradients cancel, so a tiny element gets the array's scale).
fn assert_grad_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        assert!(
            err <= tol * (w.abs() + scale),
            "{what}: element {i}: {g} vs {w} (err {err:e}, scale {scale:e})"
        );
    }
}

/// A graph to differentiate, with the feeds that are data rather than variables: dense labels
/// (f32, not differentiated), class indices (u32) and any input needing a particular range.
struct Case {
    name: &'static str,
    g: Graph,
    loss: Value,
    /// f32 feeds given here instead of seeded; those under `fixed` get no gradient.
    feeds: HashMap<String, Array>,
    fixed: Vec<String>,
    u32s: HashMap<String, Vec<u32>>,
}

impl Case {
    fn new(name: &'static str, g: Graph, loss: Value) -> Case {
        Case {
            name,
            g,
            loss,
            feeds: HashMap::new(),
            fixed: Vec::new(),
            u32s: HashMap::new(),
        }
    }

    /// `name` fed with `a` and differentiated.
    fn feed(mut self, name: &str, a: Array) -> Case {
        self.feeds.insert(name.into(), a);
        self
    }

    /// `name` fed with `a` and not differentiated (labels, weights).
    fn fixed(mut self, name: &str, a: Array) -> Case {
        self.fixed.push(name.into());
        self.feed(name, a)
    }

    fn labels_u32(mut self, name: &str, v: Vec<u32>) -> Case {
        self.u32s.insert(name.into(), v);
        self
    }
}

/// Values rounded to f32 (what the GPU is fed), so both sides see the same numbers.
fn f32_array(a: &Array) -> Array {
    Array::from_f32(&a.shape, &a.to_f32())
}

/// Differentiates `c`'s loss with respect to every f32 input and parameter, checks the reference
/// against finite differences, then every adapter against the reference.
fn check(c: Case) {
    let Case {
        name,
        mut g,
        loss,
        feeds,
        fixed,
        u32s,
    } = c;
    let mut f: HashMap<String, Array> = HashMap::new();
    let mut inputs = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if !matches!(n.op, Op::Input | Op::Param | Op::State) || u32s.contains_key(&n.name) {
            continue;
        }
        assert_eq!(n.outputs[0].1, DType::F32, "{name}: {} is not f32", n.name);
        let a = (feeds.get(&n.name).cloned())
            .unwrap_or_else(|| Array::seeded(&n.outputs[0].0, 7 + i as u64));
        f.insert(n.name.clone(), f32_array(&a));
        if n.op == Op::Input && !fixed.contains(&n.name) {
            inputs.push(Value { node: i, port: 0 });
        }
    }
    let params = g.params();
    let wrt: Vec<Value> = inputs.iter().chain(&params).copied().collect();
    let grads = g.gradients(loss, &wrt).unwrap();
    let tr = Training {
        loss,
        params,
        grads: grads[inputs.len()..].to_vec(),
    };
    let mut feed_all = f.clone();
    for (k, v) in &u32s {
        feed_all.insert(
            k.clone(),
            Array::new(&[v.len()], v.iter().map(|&x| x as f64).collect()),
        );
    }
    let want = g.eval_reference(&feed_all, &grads).unwrap();
    let mut nonzero = false;
    for (v, w) in wrt.iter().zip(&want) {
        let var = g.node(*v).unwrap().name.clone();
        let fd = finite_diff(&feed_all[&var], 1e-6, |x| {
            let mut f2 = feed_all.clone();
            f2.insert(var.clone(), x.clone());
            g.eval_reference(&f2, &[loss]).unwrap()[0].data.iter().sum()
        });
        assert_grad_close(
            &format!("{name}: reference d/d{var} vs finite differences"),
            &w.data,
            &fd.data,
            FD_TOL,
        );
        nonzero |= fd.data.iter().any(|&x| x.abs() > 1e-3);
    }
    assert!(
        nonzero,
        "{name}: every gradient is ~0, the check would see nothing"
    );
    let mut outs = vec![loss];
    outs.extend(&grads);
    let loss_want = g.eval_reference(&feed_all, &[loss]).unwrap().remove(0);
    each_device(name, |dev| {
        let opts = Options {
            training: Some(&tr),
            gradients_only: true,
            ..Options::default()
        };
        let compiled = g.compile(dev, &outs, &opts).unwrap();
        for (k, a) in &f {
            compiled.set(k, &a.to_f32()).unwrap();
        }
        for (k, v) in &u32s {
            compiled.set_u32(k, v).unwrap();
        }
        compiled.step().unwrap();
        let read = |v: Value| -> Vec<f64> {
            compiled
                .read(v)
                .unwrap()
                .iter()
                .map(|&x| x as f64)
                .collect()
        };
        assert_grad_close(
            &format!("{name}: loss"),
            &read(loss),
            &loss_want.data,
            GPU_TOL,
        );
        for ((v, gv), w) in wrt.iter().zip(&grads).zip(&want) {
            let var = &g.node(*v).unwrap().name;
            assert_grad_close(
                &format!("{name}: gpu d/d{var}"),
                &read(*gv),
                &w.data,
                GPU_TOL,
            );
        }
    });
}

/// `sum((x ⊙ c)²)` per element through a parameter `c` of `x`'s shape after the batch axis, so
/// every element of `x` gets its own gradient (a misplaced element is seen).
fn weighted_square(g: &mut Graph, x: Value) -> Value {
    let shape = g.shape(x).unwrap()[1..].to_vec();
    let c = g.param("c", &shape).unwrap();
    let y = g.binary("weigh", BinaryOp::Mul, x, c).unwrap();
    g.unary("square", UnaryOp::Square, y).unwrap()
}

#[test]
fn permute_reshape_and_view() {
    use wgtrain::ops::shape::ShapeOp;
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3, 4]).unwrap();
    let y = g.permute("permute", x, &[0, 2, 1]).unwrap(); // (2, 4, 3)
    let y = g.reshape("reshape", y, &[2, 6]).unwrap(); // (2, 2, 6)
    let y = g
        .add("view", ShapeOp::View(vec![2, 6, 2, 1]), &[y])
        .unwrap();
    let y = g.permute("permute2", y, &[0, 2, 1, 3]).unwrap(); // (2, 2, 6, 1)
    let loss = weighted_square(&mut g, y);
    check(Case::new("permute_reshape_and_view", g, loss));
}

#[test]
fn slice_and_pad() {
    use wgtrain::ops::shape::{Pad, PadMode, Slice, SliceRange};
    for mode in [PadMode::Zero, PadMode::Edge] {
        let mut g = Graph::new();
        let x = g.input("x", &[2, 3, 6, 5]).unwrap();
        let r = |start, end, step| SliceRange { start, end, step };
        let s = Slice {
            ranges: vec![r(0, 2, 1), r(1, 3, 1), r(0, 6, 2), r(1, 5, 1)],
        };
        let y = g.slice("slice", x, s).unwrap(); // (2, 2, 3, 4)
        let p = Pad {
            before: vec![0, 1, 2, 0],
            after: vec![0, 0, 1, 2],
            mode,
        };
        let y = g.pad("pad", y, p).unwrap(); // (2, 3, 6, 6)
        let loss = weighted_square(&mut g, y);
        check(Case::new("slice_and_pad", g, loss));
    }
}

#[test]
fn upsample_nearest_and_bilinear() {
    use wgtrain::ops::shape::{Upsample, UpsampleMode, UpsampleSize};
    let mut g = Graph::new();
    let x = g.input("x", &[2, 2, 3, 4]).unwrap();
    let near = Upsample {
        mode: UpsampleMode::Nearest,
        size: UpsampleSize::Scale(2, 3),
    };
    let a = g.upsample("nearest", x, near).unwrap(); // (2, 2, 6, 12)
    let bil = Upsample {
        mode: UpsampleMode::Bilinear,
        size: UpsampleSize::Size(6, 12),
    };
    let b = g.upsample("bilinear", x, bil).unwrap();
    let y = g.binary("join", BinaryOp::Sub, a, b).unwrap();
    let loss = weighted_square(&mut g, y);
    check(Case::new("upsample_nearest_and_bilinear", g, loss));
}

/// Concat's backward is a split: each input gets its slice of the gradient.
#[test]
fn concat_and_its_split_backward() {
    use wgtrain::ops::shape::Concat;
    let mut g = Graph::new();
    let a = g.input("a", &[2, 3, 4]).unwrap();
    let b = g.input("b", &[2, 2, 4]).unwrap();
    let e = g.input("e", &[2, 5, 3]).unwrap();
    let ab = g.concat("channels", &[a, b], Concat { axis: 1 }).unwrap(); // (2, 5, 4)
    let y = g.concat("last", &[ab, e, ab], Concat { axis: -1 }).unwrap(); // (2, 5, 11)
    let loss = weighted_square(&mut g, y);
    check(Case::new("concat_and_its_split_backward", g, loss));
}

#[test]
fn softmax_and_log_softmax() {
    use wgtrain::ops::softmax::Softmax;
    let mut g = Graph::new();
    let x = g.input("x", &[3, 5, 2]).unwrap();
    let s = g
        .softmax(
            "softmax",
            x,
            Softmax {
                axis: 1,
                log: false,
            },
        )
        .unwrap();
    let l = g
        .softmax(
            "log_softmax",
            x,
            Softmax {
                axis: -1,
                log: true,
            },
        )
        .unwrap();
    let y = g.binary("join", BinaryOp::Add, s, l).unwrap();
    let loss = weighted_square(&mut g, y);
    // Logits over a range where no probability is negligible.
    let x = Array::seeded(&[3, 5, 2], 3).map_scaled(2.0);
    check(Case::new("softmax_and_log_softmax", g, loss).feed("x", x));
}

/// Non-default eps, large enough to matter for inputs of variance ~0.3.
#[test]
fn layer_norm_and_instance_norm() {
    use wgtrain::ops::norm::{InstanceNorm, LayerNorm};
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3, 5]).unwrap();
    let a = g
        .layer_norm("ln", x, LayerNorm { dims: 2, eps: 0.05 })
        .unwrap();
    let b = g
        .instance_norm("in", x, InstanceNorm { eps: 0.02 })
        .unwrap();
    let y = g.binary("join", BinaryOp::Mul, a, b).unwrap();
    let loss = weighted_square(&mut g, y);
    check(Case::new("layer_norm_and_instance_norm", g, loss));
}

#[test]
fn global_pooling() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3, 4, 5]).unwrap();
    let a = g.global_avg_pool("gap", x).unwrap(); // (2, 3, 1, 1)
    let a = g.reshape("flat_a", a, &[3, 1]).unwrap();
    let s = g.input("s", &[2, 3, 7]).unwrap();
    let b = g.global_avg_pool1d("gap1d", s).unwrap(); // (2, 3, 1)
    let m = g.global_max_pool1d("gmp1d", s).unwrap();
    let y = g.binary("ab", BinaryOp::Mul, a, b).unwrap();
    let y = g.binary("abm", BinaryOp::Add, y, m).unwrap();
    let loss = weighted_square(&mut g, y);
    check(Case::new("global_pooling", g, loss));
}

#[test]
fn transposed_conv2d_and_conv1d() {
    use wgtrain::ops::conv::{Conv1d, ConvTranspose2d, Padding, Padding1d};
    let mut g = Graph::new();
    let x = g.input("x", &[2, 4, 3, 3]).unwrap();
    let mut t = ConvTranspose2d::new(4, 2, (3, 2));
    t.stride = (2, 1);
    t.groups = 2;
    t.padding = Padding::Explicit {
        top: 1,
        bottom: 1,
        left: 0,
        right: 1,
    };
    t.output_padding = (1, 0);
    let y = g.conv_transpose2d("tconv", x, t).unwrap();
    let a = weighted_square(&mut g, y);
    let a = g.sum("sum_a", a, 1).unwrap();
    let s = g.input("s", &[2, 3, 9]).unwrap();
    let mut c = Conv1d::new(3, 2, 3);
    c.stride = 2;
    c.dilation = 2;
    c.padding = Padding1d::Explicit { left: 2, right: 1 };
    let z = g.conv1d("conv1d", s, c).unwrap();
    let z = g.unary("sq_z", UnaryOp::Square, z).unwrap();
    let zs = g.sum("sum_z", z, 1).unwrap();
    let zs = g.sum("sum_z2", zs, 2).unwrap(); // (2, 1, 1)
    let a = g.sum("sum_a2", a, 1).unwrap();
    let a = g.sum("sum_a3", a, 1).unwrap(); // (2, 1, 1)
    let loss = g.binary("total", BinaryOp::Add, a, zs).unwrap();
    check(Case::new("transposed_conv2d_and_conv1d", g, loss));
}

/// Mean, division (denominator kept away from 0), elementwise min/max and the reduction max.
#[test]
fn mean_div_min_max() {
    let mut g = Graph::new();
    let a = g.input("a", &[3, 4, 5]).unwrap();
    let b = g.input("b", &[3, 4, 5]).unwrap();
    let d = g.binary("div", BinaryOp::Div, a, b).unwrap();
    let hi = g.binary("max", BinaryOp::Max, a, d).unwrap();
    let lo = g.binary("min", BinaryOp::Min, a, d).unwrap();
    let m = g.mean("mean", hi, 2).unwrap(); // (3, 4, 1)
    let r = g.max("rmax", lo, 1).unwrap(); // (3, 1, 5)
    let y = g.binary("mix", BinaryOp::Mul, m, r).unwrap(); // (3, 4, 5)
    let loss = weighted_square(&mut g, y);
    let b = Array::seeded(&[3, 4, 5], 5);
    let b = Array::new(
        &b.shape,
        b.data
            .iter()
            .map(|v| v.signum() * (0.5 + v.abs()))
            .collect(),
    );
    check(Case::new("mean_div_min_max", g, loss).feed("b", b));
}

/// A loss of `kind` over logits (4, 5) (after a parameter scale) and `labels`, with per-sample
/// weights under `SumByNonZeroWeights`.
fn loss_case(
    name: &'static str,
    kind: wgtrain::ops::loss::LossKind,
    labels: Array,
    reduction: wgtrain::ops::loss::Reduction,
) -> Case {
    use wgtrain::ops::loss::{Loss, Reduction};
    let (n, d) = (4, 5);
    let mut g = Graph::new();
    let x = g.input("x", &[n, d]).unwrap();
    let c = g.param("c", &[d]).unwrap();
    let y = g.binary("scale", BinaryOp::Mul, x, c).unwrap();
    let l = g.input("labels", &[n, d]).unwrap();
    let weighted = reduction == Reduction::SumByNonZeroWeights;
    let w = weighted.then(|| g.input("weights", &[n]).unwrap());
    let loss = g.loss("loss", y, l, w, Loss { kind, reduction }).unwrap();
    let mut case = Case::new(name, g, loss).fixed("labels", labels);
    if weighted {
        case = case.fixed("weights", Array::new(&[n], vec![0.5, 0.0, 2.0, 1.0]));
    }
    case
}

/// Rows of probabilities (positive, summing to 1).
fn probabilities(n: usize, d: usize, seed: u64) -> Array {
    let a = Array::seeded(&[n, d], seed);
    let mut data: Vec<f64> = a.data.iter().map(|v| 1.2 + v).collect();
    for row in data.chunks_mut(d) {
        let s: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= s);
    }
    Array::new(&[n, d], data)
}

#[test]
fn regression_losses() {
    use wgtrain::ops::loss::{LossKind, Reduction};
    let t = Array::seeded(&[4, 5], 40);
    check(loss_case(
        "mse",
        LossKind::MeanSquaredError,
        t.clone(),
        Reduction::Mean,
    ));
    check(loss_case(
        "mae",
        LossKind::MeanAbsoluteError,
        t.clone(),
        Reduction::Sum,
    ));
    check(loss_case(
        "huber",
        LossKind::Huber { delta: 0.3 },
        t.clone(),
        Reduction::SumByNonZeroWeights,
    ));
    check(loss_case(
        "cosine distance",
        LossKind::CosineDistance,
        t,
        Reduction::Mean,
    ));
}

#[test]
fn classification_losses() {
    use wgtrain::ops::loss::{LossKind, Reduction};
    let binary = Array::new(
        &[4, 5],
        Array::seeded(&[4, 5], 41)
            .data
            .iter()
            .map(|v| if *v > 0.0 { 1.0 } else { 0.0 })
            .collect(),
    );
    let signs = Array::new(&[4, 5], binary.data.iter().map(|v| 2.0 * v - 1.0).collect());
    let sigmoid = LossKind::SigmoidCrossEntropy {
        label_smoothing: 0.1,
    };
    check(loss_case(
        "sigmoid cross-entropy",
        sigmoid,
        binary,
        Reduction::Mean,
    ));
    check(loss_case(
        "hinge",
        LossKind::Hinge,
        signs,
        Reduction::SumByNonZeroWeights,
    ));
    let softmax = LossKind::SoftmaxCrossEntropy {
        label_smoothing: 0.2,
        class_weights: Some(vec![1.0, 0.5, 2.0, 1.5, 0.25]),
    };
    check(loss_case(
        "softmax cross-entropy, dense labels",
        softmax,
        probabilities(4, 5, 42),
        Reduction::Mean,
    ));
}

/// Losses over probabilities: the logits go through a softmax first (categorical cross-entropy
/// and Keras's KL take probabilities), or a log-softmax (PyTorch's KL takes log-probabilities).
#[test]
fn probability_losses() {
    use wgtrain::ops::loss::{Loss, LossKind, Reduction};
    use wgtrain::ops::softmax::Softmax;
    let cases = [
        (
            "categorical cross-entropy",
            LossKind::CategoricalCrossEntropy {
                label_smoothing: 0.1,
                class_weights: Some(vec![1.0, 2.0, 0.5, 1.0, 1.5]),
            },
            false,
            false,
        ),
        (
            "kl divergence (log input)",
            LossKind::kl_div(false),
            true,
            false,
        ),
        (
            "kl divergence (log input, log target)",
            LossKind::kl_div(true),
            true,
            true,
        ),
        (
            "kl divergence (probabilities)",
            LossKind::KlDivergence {
                log_input: false,
                log_target: false,
            },
            false,
            false,
        ),
    ];
    for (name, kind, log_input, log_target) in cases {
        let mut g = Graph::new();
        let x = g.input("x", &[4, 5]).unwrap();
        let p = g
            .softmax(
                "softmax",
                x,
                Softmax {
                    axis: 1,
                    log: log_input,
                },
            )
            .unwrap();
        let l = g.input("labels", &[4, 5]).unwrap();
        let loss = Loss {
            kind,
            reduction: Reduction::Sum,
        };
        let loss = g.loss("loss", p, l, None, loss).unwrap();
        let t = probabilities(4, 5, 43);
        let t = if log_target {
            Array::new(&t.shape, t.data.iter().map(|v| v.ln()).collect())
        } else {
            t
        };
        check(Case::new(name, g, loss).fixed("labels", t));
    }
}

/// Class-index labels (u32) with a class weight per class.
#[test]
fn softmax_cross_entropy_with_class_indices() {
    use wgtrain::ops::loss::{Loss, LossKind, Reduction};
    let mut g = Graph::new();
    let x = g.input("x", &[4, 5]).unwrap();
    let c = g.param("c", &[5]).unwrap();
    let y = g.binary("scale", BinaryOp::Mul, x, c).unwrap();
    let l = g.input_u32("labels", &[4]).unwrap();
    let kind = LossKind::SoftmaxCrossEntropy {
        label_smoothing: 0.0,
        class_weights: Some(vec![1.0, 0.5, 2.0, 1.5, 0.25]),
    };
    let loss = g
        .loss(
            "loss",
            y,
            l,
            None,
            Loss {
                kind,
                reduction: Reduction::Mean,
            },
        )
        .unwrap();
    check(
        Case::new("softmax cross-entropy, class indices", g, loss)
            .labels_u32("labels", vec![3, 0, 4, 1]),
    );
}
