//! Recurrent layers at the graph level: state carried between batches (truncated BPTT) equals one
//! long sequence, an LSTM learns, PyTorch-style initialisation, and every bad input the issue
//! names is an `Err` naming the node. (Per-op GPU-vs-reference checks are the conformance
//! samples in `src/ops/recurrent/samples.rs`.)

mod common;

use std::collections::HashMap;

use common::{assert_close, each_device};
use wgtrain::graph::{Graph, Value};
use wgtrain::ops::recurrent::{Cell, Recurrent, RecurrentLayers, RecurrentOp};
use wgtrain::reference::Array;
use wgtrain::train::{default_init, default_init_in};
use wgtrain::weights::Init;
use wgtrain::{Device, Options};

/// The feeds of every parameter of `g`, seeded.
fn params(g: &Graph) -> HashMap<String, Array> {
    g.params()
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let n = g.node(p).unwrap();
            let a = Array::seeded(&n.outputs[0].0, 77 + i as u64).map_scaled(0.5);
            (n.name.clone(), Array::from_f32(&a.shape, &a.to_f32()))
        })
        .collect()
}

/// An LSTM over T steps of (N, I), with initial states as inputs when `carried`.
fn lstm(t: usize, carried: bool) -> (Graph, wgtrain::ops::recurrent::RecurrentOutputs) {
    let mut g = Graph::new();
    let x = g.input("x", &[t, 3, 4]).unwrap();
    let mut layers = RecurrentLayers::new(5).layers(2);
    if carried {
        layers = layers.with_initial_state();
    }
    let o = g.lstm("lstm", x, layers).unwrap();
    (g, o)
}

#[test]
fn carried_state_continues_the_sequence() {
    each_device("carried_state_continues_the_sequence", |dev: &Device| {
        // The reference: one sequence of 6 steps from zero state.
        let (long, lo) = lstm(6, false);
        let weights = params(&long);
        let x = Array::seeded(&[6, 3, 4], 5);
        let x = Array::from_f32(&x.shape, &x.to_f32());
        let mut feeds = weights.clone();
        feeds.insert("x".into(), x.clone());
        let want = long.eval_reference(&feeds, &[lo.y]).unwrap().remove(0);

        // The same sequence as two batches of 3 steps, the state carried on the GPU.
        let (short, so) = lstm(3, true);
        let mut outs = vec![so.y];
        outs.extend(so.state.pairs.iter().map(|p| p.0));
        let mut c = short.compile(dev, &outs, &Options::default()).unwrap();
        c.carry(&so.state).unwrap();
        for (name, a) in &weights {
            c.set(name, &a.to_f32()).unwrap();
        }
        for &(_, input) in &so.state.pairs {
            let n = short.node(input).unwrap();
            c.set(
                &n.name,
                &vec![0.0; short.shape(input).unwrap().iter().product()],
            )
            .unwrap();
        }
        let half = x.len() / 2;
        c.set("x", &x.to_f32()[..half]).unwrap();
        c.step().unwrap();
        let first = c.read(so.y).unwrap();
        c.set("x", &x.to_f32()[half..]).unwrap();
        c.step().unwrap();
        let second = c.read(so.y).unwrap();
        let y_half = want.len() / 2;
        assert_close("first half", &first, &want.data[..y_half], 1e-5, 1e-4);
        assert_close("second half", &second, &want.data[y_half..], 1e-5, 1e-4);

        // A reset starts the sequences over: the first half again.
        c.reset_state().unwrap();
        c.set("x", &x.to_f32()[..half]).unwrap();
        c.step().unwrap();
        assert_close(
            "after reset",
            &c.read(so.y).unwrap(),
            &want.data[..y_half],
            1e-5,
            1e-4,
        );
    });
}

#[test]
fn carry_refuses_what_it_cannot_carry() {
    each_device("carry_refuses_what_it_cannot_carry", |dev: &Device| {
        let (g, o) = lstm(2, true);
        // Final states not requested as outputs are reused within the step.
        let mut c = g.compile(dev, &[o.y], &Options::default()).unwrap();
        let e = c.carry(&o.state).unwrap_err().to_string();
        assert!(e.contains("requested as an output"), "{e}");
        // Into something that is not an input.
        let mut outs = vec![o.y];
        outs.extend(o.state.pairs.iter().map(|p| p.0));
        let mut c = g.compile(dev, &outs, &Options::default()).unwrap();
        let mut bad = o.state.clone();
        bad.pairs[0].1 = o.y;
        let e = c.carry(&bad).unwrap_err().to_string();
        assert!(e.contains("not an input"), "{e}");
        // h_n into a c0 of another layer is fine shape-wise; a y (T, N, H) into h0 is not.
        let mut bad = o.state.clone();
        bad.pairs[0].0 = o.y;
        let e = c.carry(&bad).unwrap_err().to_string();
        assert!(e.contains("carry"), "{e}");
    });
}

/// A GRU regressor learns a function of the sequence (its loss falls by a factor).
#[test]
fn a_gru_learns() {
    each_device("a_gru_learns", |dev: &Device| {
        use wgtrain::optim::{Algorithm, OptimizerConfig, ParamGroup};
        let (t, n, i, h) = (5, 8, 3, 8);
        let mut g = Graph::new();
        let x = g.input("x", &[t, n, i]).unwrap();
        let target = g.input("target", &[n, 1]).unwrap();
        let o = g
            .gru(
                "gru",
                x,
                RecurrentLayers::new(h).bidirectional(wgtrain::ops::recurrent::Merge::Concat),
            )
            .unwrap();
        let fc = g
            .dense("fc", o.last_hidden, wgtrain::FullyConnected::new(2 * h, 1))
            .unwrap();
        let d = g
            .binary("diff", wgtrain::BinaryOp::Sub, fc, target)
            .unwrap();
        let sq = g.binary("sq", wgtrain::BinaryOp::Mul, d, d).unwrap();
        let loss = g.sum("loss", sq, 0).unwrap();
        let tr = g.training(loss).unwrap();
        let mut c = g
            .compile(
                dev,
                &[loss],
                &Options {
                    training: Some(&tr),
                    ..Options::default()
                },
            )
            .unwrap();
        for p in g.params() {
            let name = &g.node(p).unwrap().name;
            let shape = g.shape(p).unwrap().to_vec();
            let v = default_init_in(&g, name, &shape)
                .values(name, &shape, 3)
                .unwrap();
            c.set(name, &v).unwrap();
        }
        let layout = c.param_layout().unwrap().clone();
        let mut opt = c
            .optimizer(
                OptimizerConfig::new(Algorithm::adam(), 0.02),
                vec![ParamGroup::new(layout.ranges(|_| true))],
            )
            .unwrap();
        c.attach_optimizer(&opt).unwrap();
        // Target: the mean of the first feature over time (needs the whole sequence).
        let xs = Array::seeded(&[t, n, i], 9);
        let mut ys = vec![0f32; n];
        for s in 0..t {
            for (b, y) in ys.iter_mut().enumerate() {
                *y += xs.data[(s * n + b) * i] as f32 / t as f32;
            }
        }
        c.set("x", &xs.to_f32()).unwrap();
        c.set("target", &ys).unwrap();
        let mut losses = vec![];
        for _ in 0..60 {
            opt.prepare_step().unwrap();
            c.step().unwrap();
            losses.push(c.read(loss).unwrap()[0]);
        }
        let (first, last) = (losses[0], *losses.last().unwrap());
        assert!(
            last.is_finite() && last < first / 10.0,
            "loss {first} -> {last}"
        );
    });
}

#[test]
fn recurrent_weights_start_as_pytorch() {
    let (g, _) = lstm(2, false);
    for name in [
        "lstm.weight_ih_l0",
        "lstm.weight_hh_l1",
        "lstm.bias_ih_l0",
        "lstm.bias_hh_l1",
    ] {
        let v = g.find(name).unwrap();
        match default_init_in(&g, name, g.shape(v).unwrap()) {
            Init::Uniform { low, high } => {
                let k = 1.0 / 5f64.sqrt();
                assert!(
                    (high - k).abs() < 1e-12 && (low + k).abs() < 1e-12,
                    "{name}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // Other layers keep the name-based default.
    assert_eq!(
        default_init_in(&g, "fc.bias", &[3]),
        default_init("fc.bias", &[3])
    );
}

fn shape_err(r: wgtrain::Result<impl std::fmt::Debug>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn bad_inputs_are_errors_naming_the_node() {
    let mut g = Graph::new();
    let x = g.input("x", &[4, 2, 3]).unwrap();
    // Hidden size 0.
    let e = shape_err(g.lstm("zero", x, RecurrentLayers::new(0)));
    assert!(e.contains("zero") && e.contains("hidden_size"), "{e}");
    // No layers.
    let e = shape_err(g.gru("none", x, RecurrentLayers::new(3).layers(0)));
    assert!(e.contains("none") && e.contains("num_layers"), "{e}");
    // Not a sequence.
    let flat = g.input("flat", &[4, 6]).unwrap();
    let e = shape_err(g.lstm("flat_lstm", flat, RecurrentLayers::new(3)));
    assert!(e.contains("flat_lstm") && e.contains("(T, N, I)"), "{e}");
    // An empty sequence cannot even be an input.
    assert!(g.input("empty", &[0, 2, 3]).is_err());
    // A state of the wrong shape, and a weight of the wrong shape, through `Graph::add`.
    let op = Recurrent {
        initial_state: true,
        ..Recurrent::new(Cell::Gru, 3, 4)
    };
    let w_ih = g.param("w_ih", &[12, 3]).unwrap();
    let w_hh = g.param("w_hh", &[12, 4]).unwrap();
    let b = g.param("b", &[12]).unwrap();
    let h0_bad = g.input("h0_bad", &[2, 5]).unwrap();
    let e = shape_err(g.add(
        "bad_state",
        RecurrentOp::Forward(op),
        &[x, w_ih, w_hh, b, b, h0_bad],
    ));
    assert!(e.contains("bad_state") && e.contains("h0"), "{e}");
    let w_bad = g.param("w_bad", &[9, 4]).unwrap();
    let h0 = g.input("h0", &[2, 4]).unwrap();
    let e = shape_err(g.add(
        "bad_weight",
        RecurrentOp::Forward(op),
        &[x, w_ih, w_bad, b, b, h0],
    ));
    assert!(e.contains("bad_weight") && e.contains("weight_hh"), "{e}");
    // Too few inputs.
    let e = shape_err(g.add("few", RecurrentOp::Forward(op), &[x, w_ih]));
    assert!(e.contains("few"), "{e}");
    // A gradient reaching the reserve (port 1) is refused, not dropped.
    let o = g.lstm("ok", x, RecurrentLayers::new(2)).unwrap();
    let reserve = Value {
        node: o.y.node,
        port: 1,
    };
    let loss = g.sum("loss_of_reserve", reserve, 0).unwrap();
    let w = g.find("ok.weight_hh_l0").unwrap();
    let e = shape_err(g.gradients(loss, &[w]));
    assert!(e.contains("not differentiable"), "{e}");
}

#[test]
fn a_checkpoint_with_wrong_gate_matrices_is_refused() {
    each_device(
        "a_checkpoint_with_wrong_gate_matrices_is_refused",
        |dev: &Device| {
            use wgtrain::weights::checkpoint::{TrainState, load_weights, save};
            let build = |h: usize| {
                let mut g = Graph::new();
                let x = g.input("x", &[3, 2, 4]).unwrap();
                let o = g.lstm("lstm", x, RecurrentLayers::new(h)).unwrap();
                let loss = g.sum("loss", o.y, 0).unwrap();
                let tr = g.training(loss).unwrap();
                g.compile(
                    dev,
                    &[loss],
                    &Options {
                        training: Some(&tr),
                        ..Options::default()
                    },
                )
                .unwrap()
            };
            let dir = std::env::temp_dir().join(format!("wgtrain-rnn-ckpt-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("lstm4.safetensors");
            let four = build(4);
            save(
                &path,
                four.param_layout().unwrap(),
                &four,
                None,
                &TrainState::default(),
            )
            .unwrap();
            // Same names, hidden 5: every gate matrix has the wrong shape.
            let five = build(5);
            let e = load_weights(&path, five.param_layout().unwrap(), &five)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("lstm.weight_ih_l0") || e.contains("lstm.bias_ih_l0"),
                "{e}"
            );
            // The right shapes load.
            let again = build(4);
            load_weights(&path, again.param_layout().unwrap(), &again).unwrap();
            std::fs::remove_dir_all(&dir).ok();
        },
    );
}
