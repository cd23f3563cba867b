//! Issue 16, "nothing silent, nothing panics", for graph building: every bad value, input count,
//! rank, attribute or size a caller can pass is an `Err` (naming the op), never a panic, a hang
//! or a wrapped shape. Each test is one class of bad input; the panics and hangs the graph fuzzer
//! (`tests/fuzz_graph.rs`) found are among them. GPU-free: `hostile_compile.rs` has the compile
//! side.

use std::time::Duration;

use wgtrain::graph::{Graph, Op, Value};
use wgtrain::ops::conv::{ConvKind, ConvOp};
use wgtrain::ops::dense::DenseOp;
use wgtrain::ops::dropout::DropoutOp;
use wgtrain::ops::elementwise::ElementwiseOp;
use wgtrain::ops::loss::LossOp;
use wgtrain::ops::matmul::MatMulOp;
use wgtrain::ops::norm::NormOp;
use wgtrain::ops::norm::gpu::Norm;
use wgtrain::ops::pool::PoolOp;
use wgtrain::ops::prelu::{PRelu, PReluOp};
use wgtrain::ops::recurrent::{Recurrent, RecurrentOp};
use wgtrain::ops::reduce::{ReduceKind, ReduceOp};
use wgtrain::ops::shape::{PadMode, ShapeOp, UpsampleMode, UpsampleSize};
use wgtrain::ops::softmax::SoftmaxOp;
use wgtrain::reference::Array;
use wgtrain::*;

/// Runs `f` on a thread and fails if it panics or takes longer than `secs`.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("did not return in time (or panicked)")
}

fn err_names<T: std::fmt::Debug>(r: Result<T>, words: &[&str]) {
    let e = r.expect_err("expected an Err").to_string();
    assert!(
        words.iter().all(|w| e.contains(w)),
        "{words:?} not all in: {e}"
    );
}

/// A graph with an image batch `x` (2, 3, 4, 4), a sequence `s` (3, 2, 4) and a matrix `m`.
fn base() -> (Graph, Value, Value, Value) {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3, 4, 4]).unwrap();
    let s = g.input("s", &[3, 2, 4]).unwrap();
    let m = g.input("m", &[2, 4]).unwrap();
    (g, x, s, m)
}

/// Values that do not name an output of `base()`'s graph: out of range, a bad port, and one of
/// a larger graph.
fn bad_values() -> Vec<Value> {
    let mut other = Graph::new();
    for k in 0..60 {
        other.input(&format!("o{k}"), &[2, 4]).unwrap();
    }
    vec![
        Value { node: 50, port: 0 },
        Value {
            node: usize::MAX,
            port: 0,
        },
        Value { node: 0, port: 1 },
        Value {
            node: 0,
            port: usize::MAX,
        },
        other.find("o59").unwrap(),
    ]
}

#[test]
fn values_not_of_the_graph_are_errors_everywhere() {
    for bad in bad_values() {
        let (mut g, x, _, m) = base();
        let before = g.nodes.len();
        assert!(g.shape(bad).is_err() && g.node(bad).is_err() && g.output(bad).is_err());
        let conv = ConvKind::D2(Conv2d::new(3, 2, (3, 3)));
        let results: Vec<Result<Value>> = vec![
            g.unary("a", UnaryOp::Relu, bad),
            g.binary("a", BinaryOp::Add, m, bad),
            g.matmul("a", bad, m),
            g.sum("a", bad, 0),
            g.permute("a", bad, &[1, 0]),
            g.reshape("a", bad, &[4]),
            g.flatten("a", bad),
            g.concat("a", &[m, bad], Concat { axis: 0 }),
            g.slice("a", bad, Slice::crop(&[0, 0], &[1, 1])),
            g.upsample(
                "a",
                bad,
                Upsample {
                    mode: UpsampleMode::Nearest,
                    size: UpsampleSize::Scale(2, 2),
                },
            ),
            g.conv("a", bad, conv),
            g.conv2d("a", bad, Conv2d::new(3, 2, (3, 3))),
            g.dense("a", bad, FullyConnected::new(4, 2)),
            g.pool("a", bad, Pool2d::max((2, 2), (2, 2))),
            g.global_avg_pool("a", bad),
            g.batch_norm("a", bad, BatchNorm::default()),
            g.instance_norm("a", bad, InstanceNorm::default()),
            g.group_norm(
                "a",
                bad,
                GroupNorm {
                    groups: 1,
                    eps: 1e-5,
                },
            ),
            g.layer_norm("a", bad, LayerNorm { dims: 1, eps: 1e-5 }),
            g.dropout("a", bad, Dropout { rate: 0.5, seed: 1 }),
            g.softmax("a", bad, Softmax::CHANNELS),
            g.loss(
                "a",
                m,
                bad,
                None,
                Loss::softmax_cross_entropy(Reduction::Mean),
            ),
            g.loss(
                "a",
                m,
                m,
                Some(bad),
                Loss::softmax_cross_entropy(Reduction::Mean),
            ),
            g.prelu("a", bad, PRelu { num_parameters: 1 }),
            g.lstm("a", bad, RecurrentLayers::new(2)).map(|o| o.y),
            g.image_to_sequence("a", bad),
            g.add("a", ElementwiseOp::OnesLike, &[bad]),
            g.add_with_params(
                "a",
                DenseOp::Forward(FullyConnected::new(4, 2)),
                bad,
                &[2, 4],
                None,
            ),
        ];
        for (k, r) in results.into_iter().enumerate() {
            assert!(r.is_err(), "builder {k} took {bad:?}");
        }
        // A failed builder leaves no parameter behind.
        assert_eq!(g.nodes.len(), before, "{bad:?}");
        let y = g.sum("y", x, 1).unwrap();
        assert!(g.gradients(bad, &[x]).is_err());
        assert!(g.gradients(y, &[bad]).is_err());
        assert!(g.training(bad).is_err());
        assert!(g.gradient_of(bad, y).is_err() && g.gradient_of(y, bad).is_err());
        assert!(g.eval_reference(&Default::default(), &[bad]).is_err());
        assert!(
            g.add_grad(usize::MAX, "", ElementwiseOp::OnesLike, &[y])
                .is_err()
        );
        let _ = g.no_second_derivative(usize::MAX).to_string();
    }
}

#[test]
fn sources_through_add_are_errors() {
    let (mut g, x, _, _) = base();
    for op in [Op::Input, Op::Param, Op::State] {
        err_names(g.add("src", op.clone(), &[]), &["src", "source"]);
        err_names(g.add("src", op, &[x]), &["src"]);
    }
}

/// Every family's ops, forward and gradient, for the input-count checks.
fn every_op() -> Vec<Op> {
    let conv = [
        ConvKind::D2(Conv2d::new(3, 2, (3, 3))),
        ConvKind::D1(Conv1d::new(2, 2, 3)),
        ConvKind::T2(ConvTranspose2d::new(3, 2, (3, 3))),
        ConvKind::T1(ConvTranspose1d::new(2, 2, 3)),
    ];
    let fc = FullyConnected::new(4, 2);
    let pool = Pool2d::max((2, 2), (2, 2));
    let bn = BatchNorm::default();
    let norms = [
        Norm::Instance(InstanceNorm::default()),
        Norm::Group(GroupNorm {
            groups: 1,
            eps: 1e-5,
        }),
        Norm::Layer(LayerNorm { dims: 1, eps: 1e-5 }),
    ];
    let drop = Dropout { rate: 0.5, seed: 1 };
    let loss = Loss::softmax_cross_entropy(Reduction::Mean);
    let rec = Recurrent::new(Cell::Lstm, 4, 2);
    let slice = Slice::crop(&[0, 0], &[1, 1]);
    let pad = Pad {
        before: vec![1, 1],
        after: vec![0, 0],
        mode: PadMode::Zero,
    };
    let up = Upsample {
        mode: UpsampleMode::Bilinear,
        size: UpsampleSize::Scale(2, 2),
    };
    let mut ops: Vec<Op> = vec![
        ElementwiseOp::Unary(UnaryOp::Relu).into(),
        ElementwiseOp::UnaryGrad(UnaryOp::Tanh).into(),
        ElementwiseOp::UnaryGradOut(UnaryOp::Tanh).into(),
        ElementwiseOp::Binary(BinaryOp::Add).into(),
        ElementwiseOp::BinaryGrad(BinaryOp::Mul, 1).into(),
        ElementwiseOp::OnesLike.into(),
        MatMulOp {
            ta: false,
            tb: true,
        }
        .into(),
        ReduceOp::Reduce(ReduceKind::Max, 0).into(),
        ReduceOp::Grad(ReduceKind::Max, 0).into(),
        ReduceOp::Grad(ReduceKind::Sum, 1).into(),
        ShapeOp::Permute(vec![1, 0]).into(),
        ShapeOp::Reshape(vec![4]).into(),
        ShapeOp::View(vec![8]).into(),
        ShapeOp::Concat(Concat { axis: -1 }).into(),
        ShapeOp::ConcatGrad {
            op: Concat { axis: 1 },
            offset: 1,
        }
        .into(),
        ShapeOp::Slice(slice.clone()).into(),
        ShapeOp::SliceGrad(slice).into(),
        ShapeOp::Pad(pad.clone()).into(),
        ShapeOp::PadGrad(pad).into(),
        ShapeOp::Upsample(up).into(),
        ShapeOp::UpsampleGrad(up).into(),
        ConvOp::BiasGrad.into(),
        DenseOp::Forward(fc).into(),
        DenseOp::GradData(fc).into(),
        DenseOp::GradWeight(fc).into(),
        PoolOp::Pool(pool).into(),
        PoolOp::PoolGrad(pool).into(),
        PoolOp::GlobalAvg.into(),
        PoolOp::GlobalAvgGrad.into(),
        NormOp::BatchNorm {
            op: bn,
            training: true,
        }
        .into(),
        NormOp::BatchNormGrad {
            op: bn,
            training: true,
        }
        .into(),
        NormOp::BatchNormGrad {
            op: bn,
            training: false,
        }
        .into(),
        DropoutOp::Dropout {
            op: drop,
            training: true,
        }
        .into(),
        DropoutOp::Grad(drop).into(),
        SoftmaxOp::Softmax(Softmax::CHANNELS).into(),
        SoftmaxOp::Grad(Softmax::LOG_CHANNELS).into(),
        LossOp::Loss(loss.clone()).into(),
        LossOp::Grad(loss).into(),
        PReluOp::Forward(PRelu { num_parameters: 1 }).into(),
        PReluOp::GradInput(PRelu { num_parameters: 1 }).into(),
        PReluOp::GradWeight(PRelu { num_parameters: 1 }).into(),
        RecurrentOp::Forward(rec).into(),
        RecurrentOp::Backward {
            op: rec,
            dy: true,
            dh_n: true,
            dc_n: true,
        }
        .into(),
    ];
    for k in conv {
        ops.extend(
            [
                ConvOp::Forward(k),
                ConvOp::GradData(k),
                ConvOp::GradWeight(k),
                ConvOp::GradWeightBias(k),
            ]
            .map(Op::from),
        );
    }
    for n in norms {
        ops.extend([
            NormOp::Norm(n).into(),
            NormOp::NormGrad(n).into(),
            NormOp::NonAffine(n).into(),
            NormOp::NonAffineGrad(n).into(),
        ]);
    }
    ops
}

#[test]
fn wrong_input_counts_and_ranks_are_errors_for_every_op() {
    let (mut g, x, s, m) = base();
    let v = g.input("v", &[4]).unwrap();
    let pool = [x, s, m, v];
    for (k, op) in every_op().into_iter().enumerate() {
        err_names(
            g.add(&format!("none{k}"), op.clone(), &[]),
            &[&format!("none{k}")],
        );
        // Every count and mix of ranks 1 to 4: an Err or a value, never a panic.
        for count in 1..=9 {
            for rot in 0..4 {
                let ins: Vec<Value> = (0..count).map(|i| pool[(i + rot) % 4]).collect();
                let _ = g.add(&format!("op{k}_{count}_{rot}"), op.clone(), &ins);
            }
        }
    }
    g.validate().unwrap();
}

#[test]
fn shape_arithmetic_overflow_is_an_error_naming_the_op() {
    let mut g = Graph::new();
    let big = g.input("big", &[1, 1 << 60]).unwrap();
    let small = g.input("small", &[2, 3]).unwrap();
    // Sources whose elements or bytes overflow.
    err_names(g.input("e", &[1 << 40, 1 << 40]), &["\"e\"", "elements"]);
    err_names(g.param("b", &[1 << 62, 2]), &["\"b\"", "bytes"]);
    err_names(
        g.concat("cat", &[big; 16], Concat { axis: 1 }),
        &["concat", "overflows"],
    );
    let pad = Pad {
        before: vec![0, usize::MAX],
        after: vec![0, 1],
        mode: PadMode::Zero,
    };
    err_names(g.pad("pad", small, pad), &["pad", "overflows"]);
    let up = Upsample {
        mode: UpsampleMode::Nearest,
        size: UpsampleSize::Scale(usize::MAX, 2),
    };
    err_names(g.upsample("up", small, up), &["upsample", "overflows"]);
    err_names(g.reshape("r", small, &[1 << 40, 1 << 40]), &["\"r\""]);
    err_names(
        g.add("v", ShapeOp::View(vec![usize::MAX, 3]), &[small]),
        &["\"v\"", "view"],
    );
    let wide = g.input("wide", &[1 << 40, 1]).unwrap();
    let tall = g.input("tall", &[1, 1 << 40]).unwrap();
    err_names(g.matmul("mm", wide, tall), &["mm"]);
    let split = wgtrain::ops::shape::Split {
        axis: 1,
        sizes: vec![usize::MAX, 4],
    };
    err_names(split.output_shapes(&[2, 3]), &["split", "overflows"]);
    // An LSTM whose gates fit a usize but whose reserve row (gates and cell) does not.
    let lstm = Recurrent::new(Cell::Lstm, 1, usize::MAX / 4);
    assert!(lstm.gate_rows().is_ok());
    err_names(lstm.reserve_len(1, 1), &["reserve", "overflows"]);
    // A crop whose end passes usize saturates, and the slice refuses it.
    let crop = Slice::crop(&[0, usize::MAX], &[1, 2]);
    err_names(g.slice("crop", small, crop), &["slice"]);
}

#[test]
fn conv_and_pool_attributes_past_usize_are_errors() {
    let mut g = Graph::new();
    let x = g.input("x", &[1, 2, 5, 5]).unwrap();
    let l = g.input("l", &[1, 2, 5]).unwrap();
    let mut c = Conv2d::new(2, 2, (3, 3));
    c.padding = Padding::symmetric(usize::MAX);
    err_names(g.conv2d("c1", x, c), &["conv2d", "overflows"]);
    let mut c = Conv2d::new(2, 2, (3, 3));
    (c.dilation, c.padding) = ((usize::MAX, 1), Padding::Same);
    assert!(g.conv2d("c2", x, c).is_err());
    let mut t = ConvTranspose2d::new(2, 2, (3, 3));
    t.stride = (usize::MAX, 1);
    err_names(
        g.conv("t1", x, ConvKind::T2(t)),
        &["conv_transpose2d", "overflows"],
    );
    t.padding = Padding::Same;
    err_names(
        g.conv("t2", x, ConvKind::T2(t)),
        &["conv_transpose2d", "overflows"],
    );
    let mut t1 = ConvTranspose1d::new(2, 2, usize::MAX);
    t1.dilation = usize::MAX;
    assert!(g.conv("t3", l, ConvKind::T1(t1)).is_err());
    err_names(
        g.pool("p", x, Pool2d::max((usize::MAX, 2), (1, 1))),
        &["max_pool2d", "taps"],
    );
    let same = Pool2d {
        padding: Padding::Same,
        ..Pool2d::avg((1 << 20, 1 << 20), (1, 1), true)
    };
    err_names(g.pool("p2", x, same), &["avg_pool2d", "taps"]);
    // The public helpers take anything too.
    let _ = Padding::Same.resolve((5, 5), (usize::MAX, 0), (0, usize::MAX), (usize::MAX, 0));
    let _ = ConvTranspose2d {
        stride: (usize::MAX, 2),
        ..t
    }
    .resolved_padding(usize::MAX, 3);
    let geo = Conv2d::new(2, 2, (3, 3)).geometry(&[1, 2, 5, 5]).unwrap();
    assert_eq!(geo.tap_y(usize::MAX, usize::MAX), None);
}

/// Found by the fuzzer: `num_layers` near usize::MAX looped practically forever.
#[test]
fn a_recurrent_stack_of_usize_max_layers_is_an_error_at_once() {
    let e = within(10, || {
        let mut g = Graph::new();
        let x = g.input("x", &[3, 2, 4]).unwrap();
        let r = g
            .lstm("rnn", x, RecurrentLayers::new(2).layers(usize::MAX))
            .map(|o| o.y);
        (r.map_err(|e| e.to_string()), g.nodes.len())
    });
    let (r, nodes) = e;
    assert!(r.unwrap_err().contains("num_layers"));
    assert_eq!(nodes, 1, "the failed stack left nodes behind");
}

/// Found by the fuzzer: every `add` scanned every node for its name, so building was quadratic
/// (a stack of 2^16 recurrent layers, 330k nodes, took minutes). Now linear.
#[test]
fn large_graphs_build_in_linear_time() {
    let nodes = within(20, || {
        let mut g = Graph::new();
        let mut v = g.input("x", &[2, 3]).unwrap();
        for k in 0..100_000 {
            v = g.unary(&format!("n{k}"), UnaryOp::Relu, v).unwrap();
        }
        // Names stay unique, including after a failed multi-node builder.
        assert!(g.unary("n7", UnaryOp::Relu, v).is_err());
        // "n5" is taken: the weight is made, then the layer refused and the weight removed.
        assert!(g.dense("n5", v, FullyConnected::new(3, 2)).is_err());
        assert!(g.find("n5.weight").is_none());
        g.param("n5.weight", &[1]).unwrap();
        let s = g.input("s", &[3, 2, 4]).unwrap();
        let max = wgtrain::ops::recurrent::MAX_LAYERS;
        g.gru("gru", s, RecurrentLayers::new(2).layers(max))
            .unwrap();
        g.nodes.len()
    });
    assert!(nodes > 400_000, "{nodes}");
}

/// Issue 16: a max pool over 1×1×2^40×1 must not hang (it scanned every window); the graph
/// either builds it at once or refuses it at once, and the reference refuses to allocate it.
#[test]
fn a_max_pool_over_a_huge_axis_returns_at_once() {
    let (built, reference) = within(10, || {
        let mut g = Graph::new();
        let x = g.input("x", &[1, 1, 1 << 40, 1]).unwrap();
        let y = g.pool("pool", x, Pool2d::max((2, 1), (2, 1)));
        let y2 = g.pool(
            "pool2",
            x,
            Pool2d {
                padding: Padding::Same,
                ..Pool2d::max((3, 1), (1, 1))
            },
        );
        let shapes = (y.map(|v| g.shape(v).unwrap().to_vec()), y2.is_ok());
        let r = g.eval_reference(&Default::default(), &[x]).map(|_| ());
        (shapes, r.map_err(|e| e.to_string()))
    });
    assert_eq!(built.0.unwrap(), vec![1, 1, 1 << 39, 1]);
    assert!(built.1);
    assert!(reference.unwrap_err().contains("elements"));
}

/// Found by the fuzzer: an average pool over a kernel of usize::MAX rows (with Same padding the
/// window fits) made the reference visit every tap.
#[test]
fn a_pool_window_of_usize_max_taps_is_refused() {
    let r = within(10, || {
        let mut g = Graph::new();
        let x = g.input("x", &[3, 1, 6, 15]).unwrap();
        let p = Pool2d {
            padding: Padding::Same,
            ..Pool2d::avg((usize::MAX - 1, 1), (usize::MAX - 1, usize::MAX - 1), true)
        };
        g.pool("p", x, p).map(|_| ()).map_err(|e| e.to_string())
    });
    assert!(r.unwrap_err().contains("taps"));
}

#[test]
fn gradient_ops_refuse_inputs_their_forward_did_not_make() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3]).unwrap();
    let x1 = g.input("x1", &[3]).unwrap();
    let dy = g.input("dy", &[2, 5]).unwrap();
    let one = g.input("one", &[1]).unwrap();
    let arg = g.input_u32("arg", &[2, 2]).unwrap();
    let add = |g: &mut Graph, name: &str, op: Op, ins: &[Value]| {
        let e = g.add(name, op, ins).expect_err(name).to_string();
        assert!(e.contains(name), "{e}");
    };
    let cat = |offset| ShapeOp::ConcatGrad {
        op: Concat { axis: 1 },
        offset,
    };
    add(&mut g, "cg1", cat(3).into(), &[dy, x]);
    add(&mut g, "cg2", cat(usize::MAX).into(), &[dy, x]);
    // Found by the fuzzer: an x of lower rank than dy indexed past its end.
    add(&mut g, "cg3", cat(0).into(), &[dy, x1]);
    add(
        &mut g,
        "sg",
        ShapeOp::SliceGrad(Slice::crop(&[0, 0], &[1, 1])).into(),
        &[dy, x],
    );
    let pad = Pad {
        before: vec![0, 0],
        after: vec![0, 1],
        mode: PadMode::Edge,
    };
    add(&mut g, "pg", ShapeOp::PadGrad(pad).into(), &[dy, x]);
    let up = Upsample {
        mode: UpsampleMode::Nearest,
        size: UpsampleSize::Scale(1, 1),
    };
    add(&mut g, "ug", ShapeOp::UpsampleGrad(up).into(), &[dy, x]);
    add(
        &mut g,
        "bg",
        ElementwiseOp::BinaryGrad(BinaryOp::Add, 2).into(),
        &[x, x, x],
    );
    add(
        &mut g,
        "rg",
        ReduceOp::Grad(ReduceKind::Max, 1).into(),
        &[one, x, arg],
    );
    add(
        &mut g,
        "rg2",
        ReduceOp::Grad(ReduceKind::Sum, 7).into(),
        &[x, x],
    );
    let loss = Loss::softmax_cross_entropy(Reduction::Mean);
    add(&mut g, "lg", LossOp::Grad(loss).into(), &[x, x, dy]);
    let bad = Dropout { rate: 1.0, seed: 0 };
    add(&mut g, "dg", DropoutOp::Grad(bad).into(), &[x, x]);
    let n = Norm::Layer(LayerNorm { dims: 1, eps: 1e-5 });
    add(&mut g, "ng", NormOp::NormGrad(n).into(), &[x, x1, x, x]);
    add(&mut g, "nf", NormOp::Norm(n).into(), &[x, one, one]);
    let bn = NormOp::BatchNormGrad {
        op: BatchNorm::default(),
        training: true,
    };
    add(&mut g, "bng", bn.into(), &[x, x1, one, x]);
}

#[test]
fn hand_edited_graphs_are_refused_not_indexed() {
    type Edit = fn(&mut Graph);
    let edits: [Edit; 7] = [
        |g| g.nodes[2].inputs.push(Value { node: 9, port: 0 }),
        |g| g.nodes[2].inputs[0] = Value { node: 2, port: 0 },
        |g| g.nodes[2].outputs.clear(),
        |g| g.nodes[0].outputs[0].0 = vec![usize::MAX, 2],
        |g| g.nodes[2].op = Op::Input,
        |g| g.nodes[2].name = "x".into(),
        |g| g.nodes[2].inputs.clear(),
    ];
    for (k, edit) in edits.iter().enumerate() {
        let mut g = Graph::new();
        let x = g.input("x", &[2, 3]).unwrap();
        let w = g.param("w", &[3, 2]).unwrap();
        let y = g.matmul("y", x, w).unwrap();
        let loss = g.sum("loss", y, 1).unwrap();
        edit(&mut g);
        assert!(g.validate().is_err(), "edit {k}");
        assert!(g.with_batch(4).is_err(), "edit {k}");
        assert!(g.clone().training(loss).is_err(), "edit {k}");
        assert!(g.clone().gradient_of(y, y).is_err(), "edit {k}");
        let mut feeds = std::collections::HashMap::new();
        feeds.insert("x".to_string(), Array::zeros(&[2, 3]));
        feeds.insert("w".to_string(), Array::zeros(&[3, 2]));
        assert!(g.eval_reference(&feeds, &[loss]).is_err(), "edit {k}");
    }
}

#[test]
fn reference_feeds_of_the_wrong_length_are_errors() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3]).unwrap();
    let y = g.unary("y", UnaryOp::Tanh, x).unwrap();
    let mut feeds = std::collections::HashMap::new();
    feeds.insert(
        "x".to_string(),
        Array {
            shape: vec![2, 3],
            data: vec![0.0; 5],
        },
    );
    err_names(g.eval_reference(&feeds, &[y]), &["\"x\"", "5 values"]);
}

/// The name index behind `find` and `add` follows hand edits of the public `nodes`.
#[test]
fn names_follow_hand_edits() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3]).unwrap();
    let y = g.unary("y", UnaryOp::Relu, x).unwrap();
    // Pushed by hand: found, and its name is taken.
    let mut node = g.node(y).unwrap().clone();
    node.name = "pushed".into();
    g.nodes.push(node);
    assert_eq!(g.find("pushed").map(|v| v.node), Some(2));
    assert!(g.input("pushed", &[1]).is_err());
    // Truncated by hand: the names are free again.
    g.nodes.truncate(1);
    assert!(g.find("y").is_none() && g.find("pushed").is_none());
    g.unary("y", UnaryOp::Relu, x).unwrap();
    // Renamed by hand: found under the new name only; a duplicate made so is refused later.
    g.nodes[1].name = "x".into();
    assert_eq!(g.find("x").map(|v| v.node), Some(0));
    g.nodes[1].name = "renamed".into();
    assert_eq!(g.find("renamed").map(|v| v.node), Some(1));
    assert!(g.find("y").is_none());
    g.nodes[1].name = "x".into();
    err_names(g.validate(), &["\"x\"", "twice"]);
}

/// The trait methods are public too: a vjp rule called with a node out of range, or a node of
/// another op, and shape inference given rank-0 shapes (an eager tensor of shape `[]`), are
/// `Err`s or answers, never panics.
#[test]
fn primitives_called_directly_take_anything() {
    let (mut g, x, s, m) = base();
    let y = g.sum("y", m, 1).unwrap();
    for (k, op) in every_op().into_iter().enumerate() {
        let p = op.primitive().expect("a computed op");
        let scalar: &[usize] = &[];
        for count in 0..6 {
            let _ = p.infer(&vec![scalar; count]);
            let _ = p.infer(&vec![&[1usize][..]; count]);
        }
        assert!(p.vjp(&mut g, usize::MAX, y).is_err(), "op {k}");
        for node in [x.node, s.node, m.node, y.node] {
            let _ = p.vjp(&mut g, node, y);
            let _ = p.vjp_ports(&mut g, node, &[None, Some(y), Some(x)]);
        }
    }
}

#[test]
fn parameter_layouts_past_usize_are_errors() {
    use wgtrain::layout::ParamEntry;
    let e = |offset, shape: &[usize]| ParamEntry {
        name: "w".into(),
        shape: shape.to_vec(),
        offset,
    };
    err_names(
        ParamLayout::new(vec![e(usize::MAX, &[2])], 4),
        &["\"w\"", "overflows"],
    );
    err_names(
        ParamLayout::new(vec![e(0, &[1 << 40, 1 << 40])], 4),
        &["\"w\"", "overflows"],
    );
    let big: &[usize] = &[usize::MAX];
    err_names(
        ParamLayout::packed(&[("a", big), ("b", &[2])], 64),
        &["\"b\"", "overflows"],
    );
}

/// Scalars are shape [1]: a rank-0 source, or a node edited to a rank-0 output, is refused with
/// a message saying so.
#[test]
fn rank_0_is_refused_saying_to_use_shape_1() {
    let mut g = Graph::new();
    err_names(g.input("x", &[]), &["\"x\"", "rank-0", "[1]"]);
    err_names(g.param("w", &[]), &["\"w\"", "rank-0", "[1]"]);
    assert!(g.nodes.is_empty());
    let x = g.input("x", &[1]).unwrap();
    let y = g.unary("y", UnaryOp::Relu, x).unwrap();
    g.nodes[y.node].outputs[0].0 = vec![];
    err_names(g.validate(), &["\"y\"", "rank-0", "use [1]"]);
}
