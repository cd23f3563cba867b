//! The short path (`Graph::train`, `Model`) and the loop on networks that are not classifiers:
//! regression and an autoencoder train; the silent failures of the raw path (an input never
//! written, parameters never initialised, no optimizer) are errors; the layer builders infer
//! their input sizes.

mod common;

use common::{each_device, subset};
use wgtrain::compile::Options;
use wgtrain::data::Mnist;
use wgtrain::ops::conv::{Conv2d, ConvTranspose2d, Padding};
use wgtrain::ops::loss::{Loss, LossKind};
use wgtrain::ops::pool::{Pool1d, Pool2d};
use wgtrain::optim::OptimizerConfig;
use wgtrain::train::{
    Dataset, InMemory, Inputs, MeanSquaredError, Metric, ModelConfig, Network, TrainConfig, Trainer,
};
use wgtrain::{Graph, Model, UnaryOp, Value};

fn mse() -> Loss {
    Loss::mean(LossKind::MeanSquaredError)
}

/// y = sin(3x) on [-1, 1]: a small MLP, `batch` samples a step.
fn regression(batch: usize) -> (Graph, Value, Value) {
    let mut g = Graph::new();
    let x = g.input("x", &[batch, 1]).unwrap();
    let y = g.input("y", &[batch, 1]).unwrap();
    let h = g.linear("fc1", x, 32).unwrap();
    let h = g.unary("tanh", UnaryOp::Tanh, h).unwrap();
    let p = g.linear("fc2", h, 1).unwrap();
    let loss = g.loss("mse", p, y, None, mse()).unwrap();
    (g, p, loss)
}

/// `regression(batch)` as the Trainer takes it.
fn regression_net(batch: usize) -> Network {
    let (graph, output, loss) = regression(batch);
    Network {
        graph,
        output,
        loss,
    }
}

fn curve(n: usize) -> (Vec<f32>, Vec<f32>) {
    let xs: Vec<f32> = (0..n).map(|i| -1.0 + 2.0 * i as f32 / n as f32).collect();
    let ys = xs.iter().map(|x| (3.0 * x).sin()).collect();
    (xs, ys)
}

#[test]
fn graph_train_fits_a_regression_in_a_few_lines() {
    each_device("model regression", |dev| {
        let (g, _, loss) = regression(16);
        let mut model = g.train(dev, loss, OptimizerConfig::adam(0.01)).unwrap();
        let (xs, ys) = curve(16);
        let batch = Inputs::new().f32("x", &xs).f32("y", &ys);
        model.step(&batch).unwrap();
        let first = model.loss().unwrap();
        for _ in 0..300 {
            model.step(&batch).unwrap();
        }
        let last = model.loss().unwrap();
        assert_eq!(model.steps(), 301);
        assert!(last < 0.05 * first, "loss {first} -> {last}");
        // The summary names the layers, their shapes and parameter counts.
        let s = model.summary();
        assert!(
            s.contains("fc1") && s.contains("[16, 32]") && s.contains("64"),
            "{s}"
        );
        assert!(s.contains("parameters: 97 trainable"), "{s}");
    });
}

#[test]
fn a_step_refuses_inputs_the_graph_does_not_have_and_values_of_the_wrong_kind() {
    each_device("model inputs", |dev| {
        let (g, _, loss) = regression(4);
        let mut model = g.train(dev, loss, OptimizerConfig::sgd(0.1, 0.0)).unwrap();
        let e = model
            .step(&Inputs::new().f32("x", &[0.0; 4]).f32("target", &[0.0; 4]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"target\"") && e.contains("\"y\""), "{e}");
        let e = model
            .step(&Inputs::new().f32("x", &[0.0; 3]).f32("y", &[0.0; 4]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"x\""), "{e}");
        // A step that leaves an input out before it was ever written.
        let e = model
            .step(&Inputs::new().f32("x", &[0.0; 4]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"y\" was never written"), "{e}");
        assert_eq!(model.steps(), 0, "no step was taken");
    });
}

#[test]
fn the_raw_path_refuses_unwritten_inputs_uninitialised_weights_and_no_optimizer() {
    each_device("silent failures", |dev| {
        let (mut g, _, loss) = regression(4);
        let tr = g.training(loss).unwrap();
        let opts = Options {
            training: Some(&tr),
            ..Options::default()
        };
        let mut c = g.compile(dev, &[loss], &opts).unwrap();
        let e = c.step().unwrap_err().to_string();
        assert!(e.contains("input \"x\" was never written"), "{e}");
        c.set("x", &[0.5; 4]).unwrap();
        let e = c.step().unwrap_err().to_string();
        assert!(e.contains("input \"y\" was never written"), "{e}");
        c.set("y", &[1.0; 4]).unwrap();
        let e = c.step().unwrap_err().to_string();
        assert!(
            e.contains("parameter \"fc1.weight\" was never initialised"),
            "{e}"
        );
        for (name, n) in [("fc1.weight", 32), ("fc1.bias", 32), ("fc2.weight", 32)] {
            c.set(name, &vec![0.1; n]).unwrap();
        }
        let e = c.step().unwrap_err().to_string();
        assert!(e.contains("\"fc2.bias\""), "{e}");
        c.set("fc2.bias", &[0.0]).unwrap();
        let e = c.step().unwrap_err().to_string();
        assert!(e.contains("no optimizer attached"), "{e}");
        let layout = c.param_layout().unwrap().clone();
        let mut opt = c
            .optimizer(
                OptimizerConfig::sgd(0.1, 0.0),
                vec![wgtrain::ParamGroup::range(0..layout.len())],
            )
            .unwrap();
        c.attach_optimizer(&opt).unwrap();
        opt.prepare_step().unwrap();
        c.step().unwrap();
        // Reading gradients without an update is a choice made at compile.
        let grads = Options {
            training: Some(&tr),
            gradients_only: true,
            ..Options::default()
        };
        let c = g.compile(dev, &[loss], &grads).unwrap();
        c.assume_written();
        c.step().unwrap();
    });
}

#[test]
fn an_inference_graph_refuses_weights_never_written_or_shared() {
    each_device("inference feeds", |dev| {
        let (g, p, loss) = regression(4);
        let mut model = g.train(dev, loss, OptimizerConfig::adam(0.01)).unwrap();
        let gi = g.for_inference();
        let alone = gi.compile(dev, &[p], &Options::default()).unwrap();
        alone.set("x", &[0.5; 4]).unwrap();
        let e = alone.step().unwrap_err().to_string();
        assert!(e.contains("never initialised"), "{e}");
        // Sharing the trained weights counts as written; predict feeds only what it reads.
        let out = model
            .predict(&Inputs::new().f32("x", &[0.5; 4]).f32("y", &[0.0; 4]), &[p])
            .unwrap();
        assert_eq!(out[0].len(), 4);
        assert!(out[0].iter().all(|v| v.is_finite() && *v == out[0][0]));
    });
}

#[test]
fn a_model_saved_and_loaded_continues_exactly() {
    each_device("model resume", |dev| {
        let (g, _, loss) = regression(8);
        let (xs, ys) = curve(8);
        let batch = Inputs::new().f32("x", &xs).f32("y", &ys);
        let cfg = ModelConfig {
            seed: 3,
            ..ModelConfig::default()
        };
        let adam = OptimizerConfig::adam(0.01);
        let mut a = Model::new(dev, &g, loss, adam.clone(), cfg.clone()).unwrap();
        for _ in 0..5 {
            a.step(&batch).unwrap();
        }
        let dir = std::env::temp_dir().join(format!("wgtrain-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.safetensors");
        a.save(&path).unwrap();
        let mut b = Model::new(dev, &g, loss, adam, cfg).unwrap();
        b.load(&path).unwrap();
        assert_eq!(b.steps(), 5);
        for _ in 0..5 {
            a.step(&batch).unwrap();
            b.step(&batch).unwrap();
        }
        assert_eq!(a.loss().unwrap().to_bits(), b.loss().unwrap().to_bits());
        assert_eq!(
            a.param("fc1.weight").unwrap(),
            b.param("fc1.weight").unwrap()
        );
        std::fs::remove_dir_all(&dir).ok();
    });
}

#[test]
fn the_trainer_fits_a_regression_scored_by_mse_and_stops_at_its_target() {
    let (xs, ys) = curve(40);
    let (tx, ty) = curve(12);
    let train = InMemory::new(40).f32("x", &xs).f32("y", &ys);
    let test = InMemory::new(12).f32("x", &tx).f32("y", &ty);
    each_device("trainer regression", |dev| {
        let net = regression_net(8);
        let cfg = TrainConfig {
            epochs: 200,
            batch: 8,
            progress: false,
            target: Some(0.02),
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(dev, net, OptimizerConfig::adam(0.01), cfg)
            .unwrap()
            .with_metric(Box::new(MeanSquaredError::new("y")));
        let before = t.evaluate(&test).unwrap();
        let reports = t.fit(&train, &test).unwrap();
        let last = reports.last().unwrap();
        let mse = last.score("mse").unwrap();
        assert!(mse <= 0.02, "mse {mse} after {} epochs", last.epoch);
        assert!(last.epoch < 200, "stopped at the target");
        // Five full batches of 8 per epoch (40 samples, none left over).
        assert_eq!(t.global_step(), 5 * last.epoch as u64);
        // The test loss is the loss op's per-sample mean: the MSE of one output each.
        let tl = last.test_loss.unwrap();
        assert!((tl - mse).abs() < 1e-5, "{tl} vs {mse}");
        assert!(before.score("mse").unwrap() > 5.0 * mse);
        assert!(t.predict(&test).is_err(), "not a classifier");
        assert_eq!(t.outputs(&test).unwrap().len(), 12);
    });
}

#[test]
fn an_autoencoder_trains_on_mnist_through_the_trainer() {
    let data = Mnist::embedded().unwrap();
    let (train, test) = (subset(&data.train, 256), subset(&data.test, 64));
    each_device("autoencoder", |dev| {
        let b = 16;
        let mut g = Graph::new();
        let x = g.input("image", &[b, 1, 28, 28]).unwrap();
        let h = g
            .conv2d(
                "enc1",
                x,
                Conv2d::out(4, 3).stride(2).padding(Padding::symmetric(1)),
            )
            .unwrap(); // (N, 4, 14, 14)
        let h = g.unary("relu", UnaryOp::Relu, h).unwrap();
        let d = ConvTranspose2d::out(1, 2).stride(2);
        let y = g.conv_transpose2d("dec1", h, d).unwrap(); // (N, 1, 28, 28)
        let y = g.unary("sigmoid", UnaryOp::Sigmoid, y).unwrap();
        let loss = g.loss("mse", y, x, None, mse()).unwrap();
        assert_eq!(g.shape(y).unwrap(), &[b, 1, 28, 28]);
        let net = Network {
            graph: g,
            output: y,
            loss,
        };
        let cfg = TrainConfig {
            epochs: 3,
            batch: b,
            progress: false,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(dev, net, OptimizerConfig::adam(0.01), cfg)
            .unwrap()
            .with_metric(Box::new(MeanSquaredError::new("image")));
        let before = t.evaluate(&test).unwrap().score("mse").unwrap();
        let r = t.fit(&train, &test).unwrap();
        let after = r.last().unwrap().score("mse").unwrap();
        assert!(
            after < 0.7 * before,
            "reconstruction mse {before} -> {after}"
        );
    });
}

#[test]
fn layer_builders_take_sizes_from_the_input() {
    let mut g = Graph::new();
    let x = g.input("image", &[2, 3, 9, 9]).unwrap();
    let h = g
        .conv2d(
            "c",
            x,
            Conv2d::out(5, (3, 1)).padding(Padding::Same).no_bias(),
        )
        .unwrap();
    assert_eq!(g.shape(h).unwrap(), &[2, 5, 9, 9]);
    assert_eq!(g.shape(g.find("c.weight").unwrap()).unwrap(), &[5, 3, 3, 1]);
    assert!(g.find("c.bias").is_none());
    let d = g
        .conv2d("dw", h, Conv2d::out(5, 3).groups(5).dilation(2))
        .unwrap();
    assert_eq!(g.shape(d).unwrap(), &[2, 5, 5, 5]);
    let t = g
        .conv_transpose2d("t", d, ConvTranspose2d::out(2, 2).stride(2))
        .unwrap();
    assert_eq!(g.shape(t).unwrap(), &[2, 2, 10, 10]);
    let p = g
        .pool("p", t, Pool2d::max((2, 2), (2, 2)).padding(Padding::Valid))
        .unwrap();
    let f = g.linear("fc", p, 7).unwrap();
    assert_eq!(g.shape(f).unwrap(), &[2, 7]);
    assert_eq!(g.shape(g.find("fc.weight").unwrap()).unwrap(), &[7, 50]);
    // 1-D pooling and the global pools on (N, C, L).
    let s = g.input("signal", &[2, 4, 11]).unwrap();
    let mp = g.pool1d("mp", s, Pool1d::max(3, 2)).unwrap();
    let ga = g.global_avg_pool1d("ga", s).unwrap();
    let gm = g.global_max_pool1d("gm", s).unwrap();
    assert_eq!(g.shape(mp).unwrap(), &[2, 4, 5]);
    assert_eq!(g.shape(ga).unwrap(), &[2, 4, 1]);
    assert_eq!(g.shape(gm).unwrap(), &[2, 4, 1]);
    // A window longer than the signal fails after the view was added: nothing stays behind.
    let before = g.nodes.len();
    assert!(g.pool1d("long", s, Pool1d::max(20, 1)).is_err());
    assert!(g.linear("zero", s, 0).is_err());
    assert_eq!(g.nodes.len(), before);
    // A rank the builder cannot read is an Err, not a panic.
    let e = g
        .pool1d("bad", x, Pool1d::avg(2, 2))
        .unwrap_err()
        .to_string();
    assert!(e.contains("(N, C, L)"), "{e}");
    let v = g.input("v", &[3]).unwrap();
    assert!(g.linear("l", v, 2).is_err());
    assert!(g.conv2d("c2", v, Conv2d::out(2, 1)).is_err());
}

#[test]
fn pool1d_runs_on_the_gpu_as_the_reference_says() {
    let mut g = Graph::new();
    let s = g.input("signal", &[2, 3, 13]).unwrap();
    let a = g
        .pool1d(
            "avg",
            s,
            Pool1d::avg(3, 2).padding(wgtrain::Padding1d::Same),
        )
        .unwrap();
    let m = g.pool1d("max", s, Pool1d::max(4, 3).dilation(2)).unwrap();
    let ga = g.global_avg_pool1d("ga", s).unwrap();
    let gm = g.global_max_pool1d("gm", s).unwrap();
    let xs: Vec<f32> = (0..78)
        .map(|i| ((i * 37 % 29) as f32 - 14.0) / 7.0)
        .collect();
    let outs = [a, m, ga, gm];
    let feeds = std::collections::HashMap::from([(
        "signal".to_string(),
        wgtrain::reference::Array::from_f32(&[2, 3, 13], &xs),
    )]);
    let want = g.eval_reference(&feeds, &outs).unwrap();
    each_device("pool1d", |dev| {
        let c = g.compile(dev, &outs, &Options::default()).unwrap();
        c.set("signal", &xs).unwrap();
        c.step().unwrap();
        for (v, r) in outs.iter().zip(&want) {
            common::assert_close("pool1d", &c.read(*v).unwrap(), &r.data, 1e-6, 1e-6);
        }
    });
}

/// The metric trait is open: a user's own metric sees every real sample once.
#[test]
fn a_user_metric_sees_each_test_sample_once() {
    struct Count(usize);
    impl Metric for Count {
        fn name(&self) -> String {
            "count".into()
        }
        fn reset(&mut self) {
            self.0 = 0;
        }
        fn update(&mut self, b: &wgtrain::train::Scored) -> wgtrain::Result<()> {
            self.0 += b.rows;
            Ok(())
        }
        fn value(&self) -> f64 {
            self.0 as f64
        }
    }
    let (xs, ys) = curve(11);
    let test = InMemory::new(11).f32("x", &xs).f32("y", &ys);
    assert_eq!(test.len(), 11);
    each_device("user metric", |dev| {
        let net = regression_net(4);
        let cfg = TrainConfig {
            batch: 4,
            progress: false,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(dev, net, OptimizerConfig::adam(0.01), cfg)
            .unwrap()
            .with_metric(Box::new(Count(0)));
        assert_eq!(t.evaluate(&test).unwrap().score("count"), Some(11.0));
    });
}

/// A fresh run in the same directory starts a fresh metrics file; a resumed run continues it.
#[test]
fn metrics_restart_with_a_fresh_run_and_continue_a_resumed_one() {
    let (xs, ys) = curve(16);
    let data = InMemory::new(16).f32("x", &xs).f32("y", &ys);
    let dir = std::env::temp_dir().join(format!("wgtrain-metrics-{}", std::process::id()));
    each_device("metrics file", |dev| {
        std::fs::remove_dir_all(&dir).ok();
        let run = |epochs: usize, resume: bool| {
            let net = regression_net(8);
            let cfg = TrainConfig {
                epochs,
                batch: 8,
                progress: false,
                log_every: 100,
                out_dir: Some(dir.clone()),
                resume,
                ..TrainConfig::default()
            };
            let mut t = Trainer::new(dev, net, OptimizerConfig::adam(0.01), cfg).unwrap();
            t.fit(&data, &data).unwrap();
            let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
            text.lines().count()
        };
        // Two steps a epoch: one step record (the last step) and one epoch record each.
        assert_eq!(run(2, false), 4);
        assert_eq!(run(2, false), 4, "a fresh run starts a fresh file");
        assert_eq!(run(3, true), 6, "a resumed run appends its third epoch");
    });
    std::fs::remove_dir_all(&dir).ok();
}

/// A non-finite output is an error naming its sample by its index in the dataset, whichever
/// batch it falls in.
#[test]
fn a_nan_output_names_its_sample_in_the_dataset() {
    let mut xs: Vec<f32> = (0..10).map(|i| i as f32 / 10.0).collect();
    xs[5] = f32::NAN;
    let labels: Vec<u32> = (0..10).map(|i| i % 2).collect();
    let data = InMemory::new(10).f32("x", &xs).u32("labels", &labels);
    each_device("nan sample", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[4, 1]).unwrap();
        let y = g.input_u32("labels", &[4]).unwrap();
        let logits = g.linear("fc", x, 2).unwrap();
        let ce = Loss::softmax_cross_entropy(wgtrain::Reduction::Mean);
        let loss = g.loss("loss", logits, y, None, ce).unwrap();
        let net = Network {
            graph: g,
            output: logits,
            loss,
        };
        let cfg = TrainConfig {
            batch: 4,
            progress: false,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(dev, net, OptimizerConfig::adam(0.01), cfg).unwrap();
        for e in [
            t.predict(&data).unwrap_err().to_string(),
            t.evaluate(&data).unwrap_err().to_string(),
        ] {
            assert!(e.contains("sample 5 "), "{e}");
        }
    });
}
