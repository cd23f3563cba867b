//! Accumulator precision per op (`Accumulator`, `Options::accumulator` and `accumulator_nodes`):
//! that f16 accumulation really runs in every kernel family that sums — inputs whose f16 sum is
//! off by far more than the f32 tolerance, while f32 accumulation stays within it — that the
//! per-node overrides pick the nodes they name, and the refusals.

mod common;

use std::collections::HashMap;

use common::each_device;
use wgtrain::compile::{Options, Precision};
use wgtrain::graph::{Graph, Value};
use wgtrain::ops::elementwise::UnaryOp;
use wgtrain::ops::loss::{Loss, LossKind};
use wgtrain::optim::OptimizerConfig;
use wgtrain::reference::{Array, f16_acc_tol, f32_tol};
use wgtrain::train::{Inputs, Model, ModelConfig};
use wgtrain::{Accumulator, Conv2d, Device, LayerNorm, Softmax, Tensor};

/// A sum of 64 terms that f16 cannot hold: 1024 first, then 63 of 0.25. At 1024 f16's spacing
/// is 1, so each 0.25 rounds away (1024 + 0.25 → 1024) and an f16 running sum ends at 1024
/// against 1039.75. As products: 32 · 32 first, then 0.5 · 0.5 (all exact in f16).
fn factors() -> Vec<f32> {
    let mut v = vec![0.5f32; 64];
    v[0] = 32.0;
    v
}

fn terms() -> Vec<f32> {
    factors().iter().map(|x| x * x).collect()
}

/// `g` compiled for `y` with `opts`, fed `feeds`, one step; y and the reference of y.
fn run(
    dev: &Device,
    g: &Graph,
    y: Value,
    opts: &Options,
    feeds: &[(&str, Vec<f32>)],
) -> (Vec<f32>, Vec<f64>) {
    let c = g.compile(dev, &[y], opts).unwrap();
    let mut arrays = HashMap::new();
    for (name, data) in feeds {
        c.set(name, data).unwrap();
        let shape = g.shape(g.find(name).unwrap()).unwrap().to_vec();
        let d: Vec<f64> = data.iter().map(|&v| v as f64).collect();
        arrays.insert(name.to_string(), Array::new(&shape, d));
    }
    c.step().unwrap();
    let want = g.eval_reference(&arrays, &[y]).unwrap().remove(0).data;
    (c.read(y).unwrap(), want)
}

fn with(acc: Accumulator) -> Options<'static> {
    Options {
        accumulator: acc,
        ..Options::default()
    }
}

/// Whether an f16 sum of `factors()`·`factors()` stalled where the f16 spacing (1 from 1024 on)
/// swallows the 0.25 terms: 1024 where each product is rounded before its add (lavapipe), 1032
/// where the f16 multiply-add rounds once (H200); the f32 sum is 1039.75.
fn stalled(v: f32) -> bool {
    (1024.0..=1032.0).contains(&v)
}

/// The largest |got − want| / (1 + |want|).
fn worst(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w).abs() / (1.0 + w.abs()))
        .fold(0.0, f64::max)
}

/// f32 accumulation within the f32 rule, f16 accumulation off by more than it but within the
/// f16 rule: f16 accumulation ran, and only where asked.
fn assert_f16_ran(
    what: &str,
    dev: &Device,
    g: &Graph,
    y: Value,
    feeds: &[(&str, Vec<f32>)],
    n: usize,
) {
    let (f32_got, want) = run(dev, g, y, &with(Accumulator::F32), feeds);
    let (f16_got, _) = run(dev, g, y, &with(Accumulator::F16), feeds);
    let (e32, e16) = (worst(&f32_got, &want), worst(&f16_got, &want));
    assert!(e32 <= f32_tol(n), "{what}: f32 accumulation off by {e32:e}");
    assert!(
        e16 > f32_tol(n) && e16 <= f16_acc_tol(n),
        "{what}: f16 accumulation off by {e16:e} (f32 rule {:e}, f16 rule {:e}): {f16_got:?}",
        f32_tol(n),
        f16_acc_tol(n)
    );
}

/// Runs `f` on each device with SHADER_F16 (every test here needs it but the refusal's).
fn each_f16_device(test: &str, f: impl Fn(&Device)) {
    each_device(test, |dev| {
        if dev.caps().shader_f16 {
            f(dev)
        }
    });
}

#[test]
fn matmul_accumulates_in_f16_when_asked() {
    each_f16_device("f16 accumulation: matmul", |dev| {
        let mut g = Graph::new();
        let a = g.input("a", &[1, 64]).unwrap();
        let b = g.input("b", &[64, 1]).unwrap();
        let y = g.matmul("y", a, b).unwrap();
        let feeds = [("a", factors()), ("b", factors())];
        assert_f16_ran("matmul", dev, &g, y, &feeds, 64);
        // The tiled core sums k in order: the f16 sum stalls below 1039.75.
        let (got, _) = run(dev, &g, y, &with(Accumulator::F16), &feeds);
        assert!(stalled(got[0]), "{got:?}");
    });
}

#[test]
fn convolution_accumulates_in_f16_when_asked() {
    each_f16_device("f16 accumulation: conv", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[1, 64, 1, 1]).unwrap();
        let conv = Conv2d {
            bias: false,
            ..Conv2d::new(64, 1, (1, 1))
        };
        let y = g.conv2d("c", x, conv).unwrap();
        let feeds = [("x", factors()), ("c.weight", factors())];
        assert_f16_ran("conv", dev, &g, y, &feeds, 64);
    });
}

#[test]
fn sum_accumulates_in_f16_when_asked() {
    each_f16_device("f16 accumulation: sum", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[64, 1]).unwrap();
        let y = g.sum("s", x, 0).unwrap();
        assert_f16_ran("sum", dev, &g, y, &[("x", terms())], 64);
    });
}

/// A layer norm over 16384 elements, four chunks of 4096 (`MAX_CHUNK`): each invocation sums
/// 16 elements 256 apart, 8 first and then 15 of 3·2^-10, which f16 drops next to 8 (spacing
/// 2^-7). Every invocation loses 0.044, the mean 0.0027 (0.5027 against 0.5), which moves the
/// outputs of the small elements by 1.4e-3 of their σ ≈ 1.94: twice the f32 rule.
#[test]
fn layer_norm_accumulates_in_f16_when_asked() {
    each_f16_device("f16 accumulation: layer norm", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[1, 16384]).unwrap();
        let op = LayerNorm { dims: 1, eps: 1e-5 };
        let y = g.norm("ln", x, op, false).unwrap();
        let data: Vec<f32> = (0..16384)
            .map(|j| {
                if j % 4096 < 256 {
                    8.0
                } else {
                    3.0 * 2f32.powi(-10)
                }
            })
            .collect();
        assert_f16_ran("layer norm", dev, &g, y, &[("x", data)], 16384);
    });
}

/// Two matmuls of the same operands, one named: the override applies to it alone, either way.
#[test]
fn named_nodes_override_the_graph_accumulator() {
    each_f16_device("f16 accumulation: per node", |dev| {
        let mut g = Graph::new();
        let a = g.input("a", &[1, 64]).unwrap();
        let b = g.input("b", &[64, 1]).unwrap();
        let named = g.matmul("named", a, b).unwrap();
        let other = g.matmul("other", a, b).unwrap();
        let feeds = [("a", factors()), ("b", factors())];
        let exact = 1039.75f32;
        for (graph, node, want) in [
            (Accumulator::F32, Accumulator::F16, [1024.0, exact]),
            (Accumulator::F16, Accumulator::F32, [exact, 1024.0]),
        ] {
            let list = [("named", node)];
            let opts = Options {
                accumulator: graph,
                accumulator_nodes: &list,
                ..Options::default()
            };
            let c = g.compile(dev, &[named, other], &opts).unwrap();
            for (name, data) in &feeds {
                c.set(name, data).unwrap();
            }
            c.step().unwrap();
            let got = [c.read(named).unwrap()[0], c.read(other).unwrap()[0]];
            for (g, w) in got.iter().zip(want) {
                let ok = if w == exact { *g == exact } else { stalled(*g) };
                assert!(ok, "graph {graph:?}, node {node:?}: {got:?}");
            }
        }
    });
}

/// Under mixed precision (f16 storage) the accumulator is still the one asked for: the f16
/// operands take the tiled core with f16 sums.
#[test]
fn f16_accumulation_combines_with_f16_storage() {
    each_f16_device("f16 accumulation: mixed precision", |dev| {
        let mut g = Graph::new();
        let a = g.input("a", &[1, 64]).unwrap();
        let b = g.input("b", &[64, 1]).unwrap();
        let y = g.matmul("y", a, b).unwrap();
        // f32 sums: 1039.75, stored as f16 (spacing 1 at 1024): 1040. f16 sums: stuck at 1024.
        for (acc, want) in [(Accumulator::F32, 1040.0), (Accumulator::F16, 1024.0)] {
            let opts = Options {
                precision: Precision::F16,
                accumulator: acc,
                ..Options::default()
            };
            let c = g.compile(dev, &[y], &opts).unwrap();
            c.set("a", &factors()).unwrap();
            c.set("b", &factors()).unwrap();
            c.step().unwrap();
            let got = c.read(y).unwrap()[0];
            let ok = if want == 1040.0 {
                got == want
            } else {
                stalled(got)
            };
            assert!(ok, "{acc:?}: {got}");
        }
    });
}

/// A graph of a softmax and a sum: the graph-wide f16 accumulator passes the softmax by.
fn softmax_then_sum() -> (Graph, Value) {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 5]).unwrap();
    let op = Softmax {
        axis: -1,
        log: false,
    };
    let s = g.softmax("sm", x, op).unwrap();
    let y = g.sum("total", s, 1).unwrap();
    (g, y)
}

#[test]
fn the_graph_accumulator_passes_ops_that_do_not_sum_by() {
    each_f16_device("f16 accumulation: ops that do not sum", |dev| {
        let (g, y) = softmax_then_sum();
        let x: Vec<f32> = (0..10).map(|i| i as f32 / 7.0 - 0.5).collect();
        let (got, want) = run(dev, &g, y, &with(Accumulator::F16), &[("x", x)]);
        assert!(worst(&got, &want) <= f16_acc_tol(5), "{got:?} vs {want:?}");
    });
}

/// Every refusal names what it refuses: a node named for f16 whose op cannot, a name no node
/// has, a name listed twice, and the lowering of such an op asked directly.
#[test]
fn bad_accumulator_requests_are_refused() {
    each_f16_device("f16 accumulation: refusals", |dev| {
        let (g, y) = softmax_then_sum();
        let refused = |list: &[(&str, Accumulator)]| {
            let opts = Options {
                accumulator_nodes: list,
                ..Options::default()
            };
            g.compile(dev, &[y], &opts)
                .err()
                .expect("refused")
                .to_string()
        };
        let e = refused(&[("sm", Accumulator::F16)]);
        assert!(
            e.contains("\"sm\"") && e.contains("cannot accumulate in f16"),
            "{e}"
        );
        // Naming it for f32 is no request for f16: accepted.
        let opts = Options {
            accumulator_nodes: &[("sm", Accumulator::F32)],
            ..Options::default()
        };
        g.compile(dev, &[y], &opts).unwrap();
        let e = refused(&[("nope", Accumulator::F32)]);
        assert!(e.contains("\"nope\"") && e.contains("no node"), "{e}");
        let e = refused(&[("total", Accumulator::F16), ("total", Accumulator::F32)]);
        assert!(e.contains("\"total\" twice"), "{e}");
        // The op asked directly (what the compiler does per node).
        let node = g.node(g.find("sm").unwrap()).unwrap().clone();
        let x = Tensor::from_f32(dev, &[2, 5], &[0.0; 10]).unwrap();
        let out = Tensor::from_f32(dev, &[2, 5], &[0.0; 10]).unwrap();
        let e = node
            .op
            .lower_accumulating(&[&x], &[&out], &[], 0, Accumulator::F16)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("cannot accumulate in f16"), "{e}");
    });
}

/// Without SHADER_F16 (the adapter opened without it) f16 accumulation is an `Err` naming the
/// feature and the adapter, asked for the graph or for one node.
#[test]
fn f16_accumulation_without_shader_f16_is_refused() {
    each_device("f16 accumulation: no SHADER_F16", |dev| {
        let bare = Device::from_adapter_without(dev.adapter().clone(), wgpu::Features::SHADER_F16)
            .unwrap();
        assert!(!bare.caps().shader_f16);
        let (g, y) = softmax_then_sum();
        let graph_wide = with(Accumulator::F16);
        let one_node = Options {
            accumulator_nodes: &[("total", Accumulator::F16)],
            ..Options::default()
        };
        for opts in [graph_wide, one_node] {
            let e = g
                .compile(&bare, &[y], &opts)
                .err()
                .expect("refused")
                .to_string();
            assert!(e.contains("SHADER_F16") && e.contains(&bare.name()), "{e}");
        }
        // f32 accumulation still compiles there.
        g.compile(&bare, &[y], &Options::default()).unwrap();
    });
}

/// `ModelConfig::accumulator` reaches the compiled step: a device without SHADER_F16 refuses
/// it, and a regression trains with f16 sums as with f32 ones.
#[test]
fn a_model_trains_with_f16_accumulation() {
    each_device("f16 accumulation: model", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[16, 1]).unwrap();
        let t = g.input("t", &[16, 1]).unwrap();
        let h = g.linear("fc1", x, 32).unwrap();
        let h = g.unary("tanh", UnaryOp::Tanh, h).unwrap();
        let p = g.linear("fc2", h, 1).unwrap();
        let loss = g
            .loss("mse", p, t, None, Loss::mean(LossKind::MeanSquaredError))
            .unwrap();
        let xs: Vec<f32> = (0..16).map(|i| -1.0 + i as f32 / 8.0).collect();
        let ts: Vec<f32> = xs.iter().map(|x| (3.0 * x).sin()).collect();
        let batch = Inputs::new().f32("x", &xs).f32("t", &ts);
        let cfg = |accumulator| ModelConfig {
            seed: 3,
            accumulator,
            ..ModelConfig::default()
        };
        let adam = OptimizerConfig::adam(0.01);
        let bare = Device::from_adapter_without(dev.adapter().clone(), wgpu::Features::SHADER_F16)
            .unwrap();
        let e = Model::new(&bare, &g, loss, adam.clone(), cfg(Accumulator::F16)).err();
        assert!(e.expect("refused").to_string().contains("SHADER_F16"));
        if !dev.caps().shader_f16 {
            return;
        }
        let mut m16 = Model::new(dev, &g, loss, adam.clone(), cfg(Accumulator::F16)).unwrap();
        let mut m32 = Model::new(dev, &g, loss, adam, cfg(Accumulator::F32)).unwrap();
        m16.step(&batch).unwrap();
        let first = m16.loss().unwrap();
        for _ in 0..200 {
            m16.step(&batch).unwrap();
            m32.step(&batch).unwrap();
        }
        let (l16, l32) = (m16.loss().unwrap(), m32.loss().unwrap());
        assert!(l16 < 0.1 * first, "f16 sums: loss {first} -> {l16}");
        assert!(l16 < 2.0 * l32 + 1e-3, "f16 sums {l16} vs f32 {l32}");
    });
}
