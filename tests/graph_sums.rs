//! Sums written in place (`compile/sums.rs`): graphs whose values feed several ops — residual
//! blocks, a value read by two to four convolutions or matmuls, by a convolution and an
//! elementwise op, chains where the order of the contributions decides which sum can be
//! accumulated, split-K GEMMs and shared weights — differentiated and compiled with
//! `Options::sum_in_place` on and off. With it on the gradients must equal the ones without
//! bit for bit (`C + A·B` in the epilogue is the `Add` of the same two f32 values) and the CPU
//! reference within f32 tolerance, the plan must show the sums it wrote in place, and each
//! accumulated sum must be one dispatch fewer. Values read after the sum, or read by the
//! caller, are never written over.

mod common;

use std::collections::HashMap;

use common::each_device;
use wgtrain::autograd::Training;
use wgtrain::compile::Options;
use wgtrain::graph::{Graph, Op, Value};
use wgtrain::ops::conv::{Conv2d, ConvKind, ConvOp, Padding};
use wgtrain::ops::dense::FullyConnected;
use wgtrain::ops::elementwise::{BinaryOp, UnaryOp};
use wgtrain::reference::Array;

/// GPU (f32) against the f64 reference, relative to each element and the largest.
const GPU_TOL: f64 = 2e-4;

fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(
        scale > 1e-6,
        "{what}: ~0 everywhere, the check would see nothing"
    );
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(
            err <= GPU_TOL * (w.abs() + scale),
            "{what}: element {i}: {g} vs {w}"
        );
    }
}

/// Sums the plan wrote in place: (accumulated by their producer, written over an operand).
type Counts = (usize, usize);

/// Every f32 input and parameter of `g`, seeded, rounded to f32.
fn feeds(g: &Graph) -> HashMap<String, Array> {
    let mut f = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if matches!(n.op, Op::Input | Op::Param) {
            let a = Array::seeded(&n.outputs[0].0, 11 + i as u64);
            f.insert(n.name.clone(), Array::from_f32(&a.shape, &a.to_f32()));
        }
    }
    f
}

/// Compiles `outs` of `g` with sums in place on and off on every adapter: on equals off bit
/// for bit, both match the reference, and the plan has `want` sums in place (each accumulated
/// one a dispatch fewer).
fn compare(name: &str, g: &Graph, outs: &[Value], tr: Option<&Training>, want: Counts) {
    let f = feeds(g);
    let reference = g.eval_reference(&f, outs).unwrap();
    let opts = |on: bool| Options {
        training: tr,
        gradients_only: tr.is_some(),
        sum_in_place: on,
        ..Options::default()
    };
    let plan = g.plan_arena(outs, &opts(true), 256).unwrap();
    assert_eq!(
        (plan.sums_accumulated, plan.sums_in_place),
        want,
        "{name}: sums in place"
    );
    let off = g.plan_arena(outs, &opts(false), 256).unwrap();
    assert_eq!(
        (off.sums_accumulated, off.sums_in_place),
        (0, 0),
        "{name}: off"
    );
    assert!(plan.naive_bytes <= off.naive_bytes, "{name}");
    each_device(name, |dev| {
        let run = |on: bool| {
            let c = g.compile(dev, outs, &opts(on)).unwrap();
            for (k, a) in &f {
                c.set(k, &a.to_f32()).unwrap();
            }
            c.step().unwrap();
            let read: Vec<Vec<f32>> = outs.iter().map(|&v| c.read(v).unwrap()).collect();
            (read, c.stats().dispatches_per_step)
        };
        let (on, on_dispatches) = run(true);
        let (off, off_dispatches) = run(false);
        assert_eq!(off_dispatches - on_dispatches, want.0, "{name}: dispatches");
        for (k, ((a, b), r)) in on.iter().zip(&off).zip(&reference).enumerate() {
            let what = format!("{name}: output {k} ({:?})", g.nodes[outs[k].node].name);
            let (ab, bb): (Vec<u32>, Vec<u32>) = (
                a.iter().map(|x| x.to_bits()).collect(),
                b.iter().map(|x| x.to_bits()).collect(),
            );
            assert_eq!(ab, bb, "{what}: in place vs not");
            assert_close(&what, a, &r.data);
        }
    });
}

/// The loss, and the gradients of every f32 input and parameter, compared as `compare` does.
fn gradients(name: &str, mut g: Graph, y: Value, want: Counts) {
    let shape = g.shape(y).unwrap()[1..].to_vec();
    let c = g.param("weigh", &shape).unwrap();
    let wy = g.binary("weighted", BinaryOp::Mul, y, c).unwrap();
    let loss = g.unary("square", UnaryOp::Square, wy).unwrap();
    let inputs: Vec<Value> = (0..g.nodes.len())
        .filter(|&i| g.nodes[i].op == Op::Input)
        .map(|node| Value { node, port: 0 })
        .collect();
    let params = g.params();
    let wrt: Vec<Value> = inputs.iter().chain(&params).copied().collect();
    let grads = g.gradients(loss, &wrt).unwrap();
    let tr = Training {
        loss,
        params,
        grads: grads[inputs.len()..].to_vec(),
    };
    let mut outs = vec![loss];
    outs.extend(&grads);
    compare(name, &g, &outs, Some(&tr), want);
}

fn conv(k: usize, cin: usize, cout: usize) -> Conv2d {
    let mut c = Conv2d::new(cin, cout, (k, k));
    c.padding = Padding::Same;
    c
}

#[test]
fn a_residual_block_accumulates_the_branch_into_the_skip_gradient() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3, 6, 6]).unwrap();
    let a = g.conv2d("a", x, conv(3, 3, 4)).unwrap();
    let a = g.unary("relu", UnaryOp::Relu, a).unwrap();
    let b = g.conv2d("b", a, conv(3, 4, 3)).unwrap();
    let y = g.binary("residual", BinaryOp::Add, x, b).unwrap();
    // dx = residual's gradient + conv a's data gradient, which adds into it; the forward sum
    // writes over conv b's output, which nothing reads after it (the sum's gradient is a view
    // of dy, reading neither operand).
    gradients("residual block", g, y, (1, 1));
}

#[test]
fn a_value_read_by_two_to_four_convolutions_sums_into_one_buffer() {
    for branches in 2..=4 {
        let mut g = Graph::new();
        let x = g.input("x", &[2, 4, 5, 5]).unwrap();
        let outs: Vec<Value> = (0..branches)
            .map(|k| {
                let c = conv(1 + 2 * (k % 2), 4, 2 + k);
                g.conv2d(&format!("branch{k}"), x, c).unwrap()
            })
            .collect();
        let cat = wgtrain::ops::shape::Concat { axis: 1 };
        let y = g.concat("cat", &outs, cat).unwrap();
        // Every data gradient after the first adds into the first's memory.
        gradients("fan-out to convolutions", g, y, (branches - 1, 0));
    }
}

#[test]
fn a_value_read_by_matmuls_and_fully_connected_layers_sums_into_one_buffer() {
    let mut g = Graph::new();
    let x = g.input("x", &[6, 5]).unwrap();
    let w1 = g.param("w1", &[5, 7]).unwrap();
    let w2 = g.param("w2", &[5, 3]).unwrap();
    let m1 = g.matmul("m1", x, w1).unwrap();
    let m2 = g.matmul("m2", x, w2).unwrap();
    let d = g.dense("fc", x, FullyConnected::new(5, 4)).unwrap();
    let cat = wgtrain::ops::shape::Concat { axis: 1 };
    let y = g.concat("cat", &[m1, m2, d], cat).unwrap();
    gradients("fan-out to matmuls", g, y, (2, 0));
}

#[test]
fn a_conv_and_an_elementwise_reader_accumulate_or_write_in_place_by_their_order() {
    for conv_first in [true, false] {
        let mut g = Graph::new();
        let x = g.input("x", &[2, 3, 4, 4]).unwrap();
        let (c, e) = if conv_first {
            let c = g.conv2d("conv", x, conv(3, 3, 3)).unwrap();
            (c, g.unary("tanh", UnaryOp::Tanh, x).unwrap())
        } else {
            let e = g.unary("tanh", UnaryOp::Tanh, x).unwrap();
            (g.conv2d("conv", x, conv(3, 3, 3)).unwrap(), e)
        };
        let y = g.binary("mix", BinaryOp::Mul, c, e).unwrap();
        // Backward runs from the last reader: the conv's data gradient comes after the tanh's
        // gradient only when the conv is first, and only then can it add into it; otherwise
        // the sum writes over the conv's gradient.
        let want = if conv_first { (1, 0) } else { (0, 1) };
        gradients("conv and elementwise readers", g, y, want);
    }
}

#[test]
fn a_chain_of_contributions_accumulates_only_where_the_order_allows() {
    // x read by a matmul, an elementwise op and another matmul: the contributions arrive as
    // m2's, the elementwise op's, m1's. The first sum cannot be accumulated (the elementwise
    // gradient is no GEMM, and m2's came first), so it writes over m2's gradient; m1's data
    // gradient ran before that write, so the second sum is written in place too. The forward
    // sum y = s + m2 writes over one operand as well: its gradient reads neither.
    let mut g = Graph::new();
    let x = g.input("x", &[4, 6]).unwrap();
    let w1 = g.param("w1", &[6, 6]).unwrap();
    let w2 = g.param("w2", &[6, 6]).unwrap();
    let m1 = g.matmul("m1", x, w1).unwrap();
    let e = g.unary("sigmoid", UnaryOp::Sigmoid, x).unwrap();
    let m2 = g.matmul("m2", x, w2).unwrap();
    let s = g.binary("s", BinaryOp::Mul, m1, e).unwrap();
    let y = g.binary("y", BinaryOp::Add, s, m2).unwrap();
    gradients("chain of contributions", g, y, (0, 3));
}

#[test]
fn split_k_gemms_and_shared_weights_accumulate_after_summing_their_splits() {
    // dx = dy1·w1ᵀ + dy2·w2ᵀ with M = 8, N = 16, K = 256: split over K (a small grid, a long K),
    // the splits' sum adding into the other contribution; the forward sum m1 + m2 is m2's
    // GEMM adding into m1's output.
    let mut g = Graph::new();
    let x = g.input("x", &[8, 16]).unwrap();
    let w1 = g.param("w1", &[16, 256]).unwrap();
    let w2 = g.param("w2", &[16, 256]).unwrap();
    let m1 = g.matmul("m1", x, w1).unwrap();
    let m2 = g.matmul("m2", x, w2).unwrap();
    let y = g.binary("y", BinaryOp::Add, m1, m2).unwrap();
    gradients("split-K data gradients", g, y, (2, 0));

    // A weight shared by two matmuls with K = 256 rows: dW = x1ᵀ·dy1 + x2ᵀ·dy2, split over K,
    // summed into the gradient the caller reads (the sum's memory is the parameter's gradient);
    // the forward sum, m2 adding into m1.
    let mut g = Graph::new();
    let x1 = g.input("x1", &[256, 16]).unwrap();
    let x2 = g.input("x2", &[256, 16]).unwrap();
    let w = g.param("w", &[16, 8]).unwrap();
    let m1 = g.matmul("m1", x1, w).unwrap();
    let m2 = g.matmul("m2", x2, w).unwrap();
    let y = g.binary("y", BinaryOp::Add, m1, m2).unwrap();
    gradients("a shared matmul weight", g, y, (2, 0));
}

#[test]
fn a_shared_convolution_weight_accumulates_with_and_without_split_k() {
    // The weight gradient's K is N·OH·OW: 2·2·2 = 8 (one split, the GEMM epilogue adds) and
    // 2·12·12 = 288 (several splits, their sum adds).
    for side in [2, 12] {
        let mut g = Graph::new();
        let x1 = g.input("x1", &[2, 3, side, side]).unwrap();
        let x2 = g.input("x2", &[2, 3, side, side]).unwrap();
        let mut c = conv(3, 3, 4);
        c.bias = false;
        let w = g.param("w", &[4, 3, 3, 3]).unwrap();
        let k = ConvOp::Forward(ConvKind::D2(c));
        let y1 = g.add("c1", k, &[x1, w]).unwrap();
        let y2 = g.add("c2", k, &[x2, w]).unwrap();
        let y = g.binary("y", BinaryOp::Add, y1, y2).unwrap();
        // The weight's two gradients are summed, and so is the forward: c2 adds into c1's
        // output (the sum's gradient is a view of dy and reads neither operand).
        gradients("a shared conv weight", g, y, (2, 0));
    }
}

#[test]
fn an_operand_read_after_the_sum_or_by_the_caller_is_not_written_over() {
    let build = || {
        let mut g = Graph::new();
        let x = g.input("x", &[4, 5]).unwrap();
        let w1 = g.param("w1", &[5, 3]).unwrap();
        let w2 = g.param("w2", &[5, 3]).unwrap();
        let a = g.matmul("a", x, w1).unwrap();
        let b = g.matmul("b", x, w2).unwrap();
        let s = g.binary("s", BinaryOp::Add, a, b).unwrap();
        (g, a, b, s)
    };
    // a read after the sum: b's producer may not add into it, and a may not add into b (b's
    // memory would then hold a + b while a is still read); the sum writes over b instead.
    let (mut g, a, _, s) = build();
    let y = g.binary("later", BinaryOp::Mul, s, a).unwrap();
    compare("read after the sum", &g, &[y], None, (0, 1));
    // Both read after the sum: nothing is written in place.
    let (mut g, a, b, s) = build();
    let y = g.binary("later", BinaryOp::Mul, s, a).unwrap();
    let y = g.binary("later2", BinaryOp::Mul, y, b).unwrap();
    compare("both read after the sum", &g, &[y], None, (0, 0));
    // a is an output and b read later: nothing either.
    let (mut g, a, b, s) = build();
    let y = g.binary("later", BinaryOp::Mul, s, b).unwrap();
    compare("an output operand", &g, &[y, a], None, (0, 0));
    // Neither read again: b's producer adds into a.
    let (g, _, _, s) = build();
    compare("dead operands", &g, &[s], None, (1, 0));
}

#[test]
fn convolution_outputs_summed_at_inference_add_into_each_other() {
    // No gradient reads the operands, so the second convolution (with its bias) adds into the
    // first's output in its epilogue: a convolution's (the forward shader) and a transposed
    // convolution's (the data-gradient shader).
    for transposed in [false, true] {
        let mut g = Graph::new();
        let x = g.input("x", &[2, 3, 5, 5]).unwrap();
        let kind = if transposed {
            ConvKind::T2(wgtrain::ops::conv::ConvTranspose2d::new(3, 4, (3, 3)))
        } else {
            ConvKind::D2(Conv2d::new(3, 4, (3, 3)))
        };
        let a = g.conv("a", x, kind).unwrap();
        let b = g.conv("b", x, kind).unwrap();
        let s = g.binary("s", BinaryOp::Add, a, b).unwrap();
        compare("convolutions summed", &g, &[s], None, (1, 0));
    }
}

/// The fan-out and shared-weight sums again with every 3×3 pass on Winograd (forced: `Auto`
/// leaves CPU adapters and few channels on the implicit GEMM): its forward, data gradient and
/// weight gradient add into a sum's buffer as the implicit GEMM's epilogues do.
#[test]
fn winograd_passes_accumulate_into_their_sums() {
    use wgtrain::ops::conv::winograd::{ConvAlgo, with_conv_algo};
    with_conv_algo(ConvAlgo::Winograd, || {
        a_value_read_by_two_to_four_convolutions_sums_into_one_buffer();
        a_shared_convolution_weight_accumulates_with_and_without_split_k();
    });
}
