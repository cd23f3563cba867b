//! The recurrent layers against PyTorch's own: `tests/fixtures/recurrent_torch.safetensors`
//! (written by `scripts/torch_recurrent_fixture.py`) holds the state dicts of a 2-layer
//! bidirectional `nn.LSTM`, an `nn.GRU` with an initial state and a ReLU `nn.RNN`, their inputs,
//! outputs and the gradients of `sum(y · dy)`, computed by PyTorch in float64. The same layers,
//! built with `Graph::lstm/gru/rnn` and given PyTorch's parameters by name, must give the same
//! numbers on the GPU.
//!
//! Every comparison is made twice so that a failure says where the fault is: the f64 reference
//! (`Graph::eval_reference`) against PyTorch (the fixture, or our layer's semantics — gate order,
//! layouts, names — is wrong; no GPU involved, so this part runs everywhere) and the GPU against
//! the reference (a kernel is wrong). A missing fixture fails, it does not skip.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::each_device;
use wgtrain::Device;
use wgtrain::checkpoint::{self, TrainState};
use wgtrain::compile::Options;
use wgtrain::graph::{Graph, Op, Value};
use wgtrain::neuron::UnaryOp;
use wgtrain::ops::elementwise::BinaryOp;
use wgtrain::ops::recurrent::{Cell, Merge, RecurrentLayers};
use wgtrain::reference::Array;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/recurrent_torch.safetensors"
);

/// One F32 tensor of the fixture, checked against `shape`; panics (fails the test) when the file
/// or the tensor is missing.
fn fixture(name: &str, shape: &[usize]) -> Vec<f32> {
    checkpoint::read_tensor(Path::new(FIXTURE), name, shape).unwrap_or_else(|e| {
        panic!("{e}\n(the fixture is PyTorch's: python3 scripts/torch_recurrent_fixture.py)")
    })
}

/// A layer of the fixture: `name` is both our node name (so parameter names are PyTorch's
/// state-dict keys under `name.`) and the fixture's prefix.
struct Case {
    name: &'static str,
    cell: Cell,
    /// `(T, N, I)` of x.
    x: [usize; 3],
    layers: RecurrentLayers,
}

fn lstm() -> Case {
    Case {
        name: "lstm",
        cell: Cell::Lstm,
        x: [5, 2, 3],
        layers: RecurrentLayers::new(4)
            .layers(2)
            .bidirectional(Merge::Concat),
    }
}

fn gru() -> Case {
    Case {
        name: "gru",
        cell: Cell::Gru,
        x: [4, 3, 3],
        layers: RecurrentLayers::new(5).with_initial_state(),
    }
}

fn rnn() -> Case {
    Case {
        name: "rnn",
        cell: Cell::Rnn(UnaryOp::Relu),
        x: [6, 2, 3],
        layers: RecurrentLayers::new(4),
    }
}

/// A fixture tensor and the values of our graph that, concatenated in order, should equal it.
struct Compare {
    name: String,
    values: Vec<Value>,
    /// The values are `(N, H)` states, one per layer and direction, that PyTorch stacks as
    /// `(layers·directions, N, H)` (h_n, c_n, the gradient of h0), even when there is one.
    stacked: bool,
}

/// The layer's graph with `sum(y · dy)` differentiated, and what to compare.
struct Built {
    g: Graph,
    compare: Vec<Compare>,
    /// `y · dy`, the loss whose sum is differentiated.
    product: Value,
}

fn build(c: &Case) -> Built {
    let mut g = Graph::new();
    let x = g.input("x", &c.x).unwrap();
    let o = g.recurrent(c.name, c.cell, x, c.layers).unwrap();
    let y_shape = g.shape(o.y).unwrap().to_vec();
    let dy = g.input("dy", &y_shape).unwrap();
    let product = g.binary("y_dy", BinaryOp::Mul, o.y, dy).unwrap();
    let params = g.params();
    let h0: Vec<Value> = o.state.pairs.iter().map(|&(_, init)| init).collect();
    let wrt: Vec<Value> = std::iter::once(x)
        .chain(params.iter().copied())
        .chain(h0.iter().copied())
        .collect();
    let grads = g.gradients(product, &wrt).unwrap();
    let p = c.name;
    let one = |name: String, v: Value| Compare {
        name,
        values: vec![v],
        stacked: false,
    };
    let states = |name: String, values: &[Value]| Compare {
        name,
        values: values.to_vec(),
        stacked: true,
    };
    let mut compare = vec![
        one(format!("{p}_y"), o.y),
        states(format!("{p}_h_n"), &o.h_n),
    ];
    if !o.c_n.is_empty() {
        compare.push(states(format!("{p}_c_n"), &o.c_n));
    }
    compare.push(one(format!("{p}_grad.x"), grads[0]));
    for (k, v) in params.iter().enumerate() {
        let name = &g.node(*v).unwrap().name;
        let key = name
            .strip_prefix(&format!("{p}."))
            .unwrap_or_else(|| panic!("parameter {name:?} is not under {p:?}"));
        compare.push(one(format!("{p}_grad.{key}"), grads[1 + k]));
    }
    if !h0.is_empty() {
        compare.push(states(format!("{p}_grad.h0"), &grads[1 + params.len()..]));
    }
    Built {
        g,
        compare,
        product,
    }
}

/// The fixture tensor feeding each source node of the graph: x, dy, the parameters by their own
/// (PyTorch's) names, and the initial states as the slices of PyTorch's `h0`.
fn feeds(c: &Case, g: &Graph) -> HashMap<String, Array> {
    let p = c.name;
    let states: Vec<&str> = g
        .nodes
        .iter()
        .filter(|n| n.op == Op::Input && n.name.starts_with(&format!("{p}.h0_")))
        .map(|n| n.name.as_str())
        .collect();
    let mut h0 = Vec::new();
    if let Some(first) = states.first() {
        let s = g.shape(g.find(first).unwrap()).unwrap().to_vec();
        h0 = fixture(&format!("{p}_h0"), &[states.len(), s[0], s[1]]);
    }
    let mut out = HashMap::new();
    for n in g.nodes.iter().filter(|n| n.op.is_source()) {
        let shape = n.outputs[0].0.clone();
        let data = match n.name.as_str() {
            "x" => fixture(&format!("{p}_x"), &shape),
            "dy" => fixture(&format!("{p}_dy"), &shape),
            name => match states.iter().position(|s| *s == name) {
                Some(k) => {
                    let per = shape.iter().product::<usize>();
                    h0[k * per..(k + 1) * per].to_vec()
                }
                None => fixture(name, &shape),
            },
        };
        out.insert(n.name.clone(), Array::from_f32(&shape, &data));
    }
    out
}

/// Concatenates the arrays of `vs` from `all` (in the order of `outs`).
fn stacked(outs: &[Value], all: &[Array], vs: &[Value]) -> Vec<f64> {
    vs.iter()
        .flat_map(|v| {
            let k = outs.iter().position(|o| o == v).unwrap();
            all[k].data.iter().copied()
        })
        .collect()
}

/// Asserts |got − want| ≤ atol + rtol·|want| everywhere, naming both sides and the first
/// offender (`common::assert_close` calls its sides "gpu" and "reference"; here either side may
/// be the reference).
fn assert_near(
    what: &str,
    (got_is, got): (&str, &[f64]),
    (want_is, want): (&str, &[f64]),
    atol: f64,
    rtol: f64,
) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        assert!(
            err <= atol + rtol * w.abs(),
            "{what}: element {k}: {got_is} {g} vs {want_is} {w} (error {err:.2e})"
        );
    }
}

fn wide(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// The f64 reference against PyTorch (no GPU: runs everywhere), then the GPU against both.
fn matches_pytorch(c: Case) {
    let b = build(&c);
    let outs: Vec<Value> = b.compare.iter().flat_map(|c| c.values.clone()).collect();
    let feeds = feeds(&c, &b.g);
    let reference = b.g.eval_reference(&feeds, &outs).unwrap();
    let mut torch = Vec::new();
    for Compare {
        name,
        values,
        stacked: states,
    } in &b.compare
    {
        let ours = stacked(&outs, &reference, values);
        let shape = b.g.shape(values[0]).unwrap();
        let shape = if *states {
            [&[values.len()][..], shape].concat()
        } else {
            shape.to_vec()
        };
        let want = fixture(name, &shape);
        // PyTorch computed in f64 on the same f32 inputs and rounded once to f32, so the two
        // agree to ~1e-7; a gate order, layout or semantics slip is off by far more.
        assert_near(
            &format!(
                "{name}: the f64 reference disagrees with PyTorch (not a GPU problem: our \
                 layer's semantics or the fixture)"
            ),
            ("reference", &ours),
            ("pytorch", &wide(&want)),
            1e-6,
            1e-5,
        );
        torch.push(want);
    }
    each_device(&format!("{} against PyTorch", c.name), |dev: &Device| {
        let compiled = b.g.compile(dev, &outs, &Options::default()).unwrap();
        for (name, a) in &feeds {
            compiled.set(name, &a.to_f32()).unwrap();
        }
        compiled.step().unwrap();
        for (Compare { name, values, .. }, want) in b.compare.iter().zip(&torch) {
            let gpu: Vec<f32> = values
                .iter()
                .flat_map(|v| compiled.read(*v).unwrap())
                .collect();
            let gpu = wide(&gpu);
            assert_near(
                &format!("{name}: the GPU disagrees with the f64 reference (a kernel problem)"),
                ("gpu", &gpu),
                ("reference", &stacked(&outs, &reference, values)),
                1e-5,
                1e-4,
            );
            assert_near(
                &format!("{name}: the GPU disagrees with PyTorch"),
                ("gpu", &gpu),
                ("pytorch", &wide(want)),
                2e-5,
                1e-4,
            );
        }
    });
}

#[test]
fn lstm_two_layers_bidirectional_matches_pytorch() {
    matches_pytorch(lstm());
}

#[test]
fn gru_with_initial_state_matches_pytorch() {
    matches_pytorch(gru());
}

#[test]
fn relu_rnn_matches_pytorch() {
    matches_pytorch(rnn());
}

/// Names, shapes and F32 data of every tensor of a safetensors file whose name starts with
/// `prefix`, sorted by name.
fn tensors(bytes: &[u8], prefix: &str) -> Vec<(String, Vec<usize>, Vec<u8>)> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let mut v: Vec<_> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(n, t)| {
            assert_eq!(t.dtype(), safetensors::tensor::Dtype::F32, "{n}");
            (n, t.shape().to_vec(), t.data().to_vec())
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// PyTorch's state dict loads into our layers by name (`load_weights`, the plain-safetensors
/// path), and our checkpoint of them holds exactly PyTorch's names, shapes and values — nothing
/// more — so `module.load_state_dict(safetensors.torch.load_file(path))` accepts it (strict).
#[test]
fn checkpoints_use_pytorch_state_dict_names() {
    let fixture_bytes = std::fs::read(FIXTURE).unwrap_or_else(|e| {
        panic!(
            "{FIXTURE}: {e}\n(the fixture is PyTorch's: python3 scripts/torch_recurrent_fixture.py)"
        )
    });
    each_device("checkpoint names", |dev| {
        for c in [lstm(), gru(), rnn()] {
            let mut b = build(&c);
            let training = b.g.training(b.product).unwrap();
            let opts = Options {
                training: Some(&training),
                ..Options::default()
            };
            let compiled = b.g.compile(dev, &[b.product], &opts).unwrap();
            let layout = compiled.param_layout().unwrap().clone();
            checkpoint::load_weights(Path::new(FIXTURE), &layout, &compiled).unwrap();
            let dir = std::env::temp_dir().join(format!(
                "wgtrain-recurrent-torch-{}-{}",
                std::process::id(),
                c.name
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("checkpoint.safetensors");
            checkpoint::save(&path, &layout, &compiled, None, &TrainState::default()).unwrap();
            let ours = std::fs::read(&path).unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
            let want = tensors(&fixture_bytes, &format!("{}.", c.name));
            assert!(!want.is_empty(), "{}: no state dict in the fixture", c.name);
            // Every tensor of our file, not just those under the prefix: nothing else may be in it.
            let got = tensors(&ours, "");
            let names = |v: &[(String, Vec<usize>, Vec<u8>)]| -> Vec<(String, Vec<usize>)> {
                v.iter().map(|(n, s, _)| (n.clone(), s.clone())).collect()
            };
            assert_eq!(names(&got), names(&want), "{}: names and shapes", c.name);
            for ((n, _, a), (_, _, b)) in got.iter().zip(&want) {
                assert!(
                    a == b,
                    "{n}: the values PyTorch gave did not come back bit for bit"
                );
            }
        }
    });
}
