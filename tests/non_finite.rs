//! Non-finite values are found and reported, never trained on silently (issue 16): a NaN pixel
//! stops the trainer with an error naming the step (or the step is skipped and counted), the
//! weights, optimizer state and batch-norm statistics stay finite, labels out of range and
//! exploding schedules are refused, NaN propagates through the neurons and maxima as in PyTorch,
//! and NaN logits are never turned into a prediction.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use common::{each_device, subset};
use wgtrain::Error;
use wgtrain::compile::Options;
use wgtrain::data::Mnist;
use wgtrain::graph::Graph;
use wgtrain::neuron::UnaryOp;
use wgtrain::ops::elementwise::BinaryOp;
use wgtrain::ops::pool::Pool2d;
use wgtrain::optim::schedule::Schedule;
use wgtrain::optim::{Algorithm, Optimizer, OptimizerConfig, ParamGroup};
use wgtrain::train::models::{ActivitySize, MnistSize, activity, mnist};
use wgtrain::train::{Dataset, Inputs, NonFinitePolicy, TrainConfig, Trainer};
use wgtrain::weights::ParamStore;

const TINY: MnistSize = MnistSize {
    conv1: 4,
    conv2: 8,
    hidden: 16,
    kernel: 5,
};

/// A dataset with `value` in the first element of the samples in `bad`; records the 1-based
/// step (fill call) of every batch that held one.
struct Poisoned<'a, D: Dataset> {
    inner: &'a D,
    bad: HashSet<usize>,
    value: f32,
    calls: Cell<u64>,
    poisoned_steps: RefCell<Vec<u64>>,
}

impl<'a, D: Dataset> Poisoned<'a, D> {
    fn new(inner: &'a D, bad: &[usize], value: f32) -> Self {
        Poisoned {
            inner,
            bad: bad.iter().copied().collect(),
            value,
            calls: Cell::new(0),
            poisoned_steps: RefCell::new(Vec::new()),
        }
    }
}

impl<D: Dataset> Dataset for Poisoned<'_, D> {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn fill(&self, indices: &[usize], batch: &mut Inputs) -> wgtrain::Result<()> {
        let start = batch.f32_mut("image")?.len();
        self.inner.fill(indices, batch)?;
        let x = batch.f32_mut("image")?;
        let per = (x.len() - start) / indices.len();
        self.calls.set(self.calls.get() + 1);
        let mut hit = false;
        for (k, i) in indices.iter().enumerate() {
            if self.bad.contains(i) {
                x[start + k * per] = self.value;
                hit = true;
            }
        }
        if hit {
            self.poisoned_steps.borrow_mut().push(self.calls.get());
        }
        Ok(())
    }
}

fn config(batch: usize, policy: NonFinitePolicy) -> TrainConfig {
    TrainConfig {
        epochs: 1,
        batch,
        seed: 3,
        log_every: 4,
        progress: false,
        on_non_finite: policy,
        ..TrainConfig::default()
    }
}

fn all_finite(v: &[f32]) -> bool {
    v.iter().all(|x| x.is_finite())
}

#[test]
fn one_nan_pixel_stops_training_naming_the_step_and_nothing_is_poisoned() {
    let data = Mnist::embedded().unwrap();
    let train = subset(&data.train, 96);
    each_device("nan pixel stops", |dev| {
        for just_in_time in [false, true] {
            let poisoned = Poisoned::new(&train, &[37], f32::NAN);
            let dir = std::env::temp_dir().join(format!("wgtrain-nan-stop-{just_in_time}"));
            let _ = std::fs::remove_dir_all(&dir);
            let cfg = TrainConfig {
                just_in_time,
                out_dir: Some(dir.clone()),
                ..config(16, NonFinitePolicy::Stop)
            };
            let opt = OptimizerConfig::new(Algorithm::adam(), 0.003);
            let mut t = Trainer::new(dev, mnist(16, TINY, 1).unwrap(), opt, cfg).unwrap();
            let err = t.fit(&poisoned, &train).unwrap_err();
            let want = poisoned.poisoned_steps.borrow()[0];
            let Error::NonFinite { step, msg } = &err else {
                panic!("expected a non-finite error, got {err}");
            };
            assert_eq!(*step, want, "{msg}");
            assert!(msg.contains("the loss"), "{msg}");
            assert!(msg.contains("gradient of \""), "names a parameter: {msg}");
            let w = ParamStore::read_all(t.compiled()).unwrap();
            assert!(all_finite(&w), "weights stay finite (jit {just_in_time})");
            let state = t.optimizer().read_state().unwrap();
            assert!(all_finite(&state), "Adam's moments stay finite");
            assert!(
                !dir.join("checkpoint.safetensors").exists(),
                "no checkpoint after a non-finite step"
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    });
}

#[test]
fn skip_policy_skips_and_counts_the_poisoned_steps_and_training_goes_on() {
    let data = Mnist::embedded().unwrap();
    let train = subset(&data.train, 96);
    each_device("nan pixel skipped", |dev| {
        let poisoned = Poisoned::new(&train, &[5, 60], f32::INFINITY);
        let opt = OptimizerConfig::new(Algorithm::adam(), 0.003);
        let cfg = config(16, NonFinitePolicy::Skip);
        let mut t = Trainer::new(dev, mnist(16, TINY, 1).unwrap(), opt, cfg).unwrap();
        let before = ParamStore::read_all(t.compiled()).unwrap();
        let (loss, _) = t.train_epoch(&poisoned, None).unwrap();
        let steps: HashSet<u64> = poisoned.poisoned_steps.borrow().iter().copied().collect();
        assert_eq!(t.skipped_steps(), steps.len() as u64, "steps {steps:?}");
        assert!(
            loss.is_finite(),
            "the epoch's loss leaves skipped steps out"
        );
        let after = ParamStore::read_all(t.compiled()).unwrap();
        assert!(all_finite(&after));
        assert!(before != after, "the clean steps trained");
    });
}

#[test]
fn check_activations_names_the_first_node_that_went_non_finite() {
    let data = Mnist::embedded().unwrap();
    let train = subset(&data.train, 32);
    each_device("first non-finite node", |dev| {
        let poisoned = Poisoned::new(&train, &[3], f32::NAN);
        let cfg = TrainConfig {
            check_activations: true,
            ..config(16, NonFinitePolicy::Stop)
        };
        let opt = OptimizerConfig::new(Algorithm::adam(), 0.003);
        let mut t = Trainer::new(dev, mnist(16, TINY, 1).unwrap(), opt, cfg).unwrap();
        let err = t.train_epoch(&poisoned, None).unwrap_err().to_string();
        assert!(err.contains("node \"image\""), "{err}");
    });
}

#[test]
fn batch_norm_running_statistics_survive_a_non_finite_batch() {
    let size = ActivitySize {
        window: 16,
        conv1_channels: 4,
        conv2_channels: 4,
        conv1_stride: 2,
        conv2_stride: 2,
        dense_hidden: 8,
        channel_stats: false,
        ..ActivitySize::CONV
    };
    struct Windows(usize);
    impl Dataset for Windows {
        fn len(&self) -> usize {
            self.0
        }
        fn fill(&self, idx: &[usize], batch: &mut Inputs) -> wgtrain::Result<()> {
            for &i in idx {
                let x = batch.f32_mut("image")?;
                x.extend((0..96).map(|k| ((i * 31 + k * 7) % 13) as f32 * 0.1 - 0.6));
                batch.u32_mut("labels")?.push((i % 12) as u32);
            }
            Ok(())
        }
    }
    let data = Windows(32);
    each_device("batch norm stats", |dev| {
        let poisoned = Poisoned::new(&data, &[9], f32::NAN);
        let opt = OptimizerConfig::new(Algorithm::adam(), 0.003);
        let cfg = config(8, NonFinitePolicy::Skip);
        let mut t = Trainer::new(dev, activity(8, size, 1).unwrap(), opt, cfg).unwrap();
        t.train_epoch(&poisoned, None).unwrap();
        assert_eq!(t.skipped_steps(), 1);
        let c = t.compiled();
        for name in ["bn1.running_mean", "bn1.running_var"] {
            let v = c.read(c.graph.find(name).unwrap()).unwrap();
            assert!(all_finite(&v), "{name}: {v:?}");
        }
        assert!(all_finite(&ParamStore::read_all(c).unwrap()));
    });
}

#[test]
fn labels_out_of_range_are_refused_on_the_host_and_flagged_on_the_gpu() {
    each_device("labels out of range", |dev| {
        let model = mnist(4, TINY, 1).unwrap();
        let opt = OptimizerConfig::new(Algorithm::adam(), 0.003);
        let mut t = Trainer::new(dev, model, opt, config(4, NonFinitePolicy::Stop)).unwrap();
        let c = t.compiled();
        let err = c.set_u32("labels", &[1, 2, 10, 3]).unwrap_err().to_string();
        assert!(
            err.contains("sample 2 is class 10") && err.contains("10 classes"),
            "{err}"
        );
        // Written past the check (straight into the tensor), the loss kernel poisons the sample
        // and the guard skips the update.
        c.set("image", &vec![0.5; 4 * 28 * 28]).unwrap();
        c.set("weights", &[1.0; 4]).unwrap();
        let labels = c.graph.find("labels").unwrap();
        c.tensor(labels).unwrap().write_u32(&[1, 2, 10, 3]).unwrap();
        c.assume_written(); // (written past `set_u32`, which would refuse class 10)
        let before = ParamStore::read_all(c).unwrap();
        t.step_once().unwrap();
        let c = t.compiled();
        let h = c.health().unwrap();
        assert_eq!(h.skipped_steps, 1);
        assert!(h.first.as_ref().unwrap().loss, "{h:?}");
        let after = ParamStore::read_all(c).unwrap();
        assert!(after == before, "the update was skipped");
        c.reset_health().unwrap();
        assert_eq!(c.health().unwrap().skipped_steps, 0);
        // A clean step after it trains.
        c.set_u32("labels", &[1, 2, 9, 3]).unwrap();
        t.step_once().unwrap();
        let c = t.compiled();
        assert_eq!(c.health().unwrap().skipped_steps, 0);
        assert!(
            ParamStore::read_all(c).unwrap() != before,
            "a clean step trains"
        );
    });
}

#[test]
fn schedules_that_explode_or_go_negative_are_refused() {
    each_device("schedules", |dev| {
        let mut cfg = OptimizerConfig::new(Algorithm::adam(), 1e-3);
        cfg.schedule = Schedule::Step {
            step_size: 1,
            gamma: 1e300,
        };
        let mut opt = Optimizer::new(dev, cfg.clone(), vec![ParamGroup::range(0..4)], 4).unwrap();
        opt.prepare_step().unwrap();
        let err = opt.prepare_step().unwrap_err().to_string();
        assert!(
            err.contains("step 2") && err.contains("learning rate"),
            "{err}"
        );
        assert_eq!(opt.step_count(), 1, "a refused step does not advance");
        cfg.schedule = Schedule::Step {
            step_size: 1,
            gamma: -0.5,
        };
        assert!(Optimizer::new(dev, cfg.clone(), vec![ParamGroup::range(0..4)], 4).is_err());
        cfg.schedule = Schedule::Cosine {
            t_max: 10,
            eta_min: -1.0,
        };
        assert!(Optimizer::new(dev, cfg, vec![ParamGroup::range(0..4)], 4).is_err());
    });
}

#[test]
fn nan_propagates_through_neurons_and_maxima_as_in_pytorch() {
    let nan = f32::NAN;
    let x = [nan, -1.0, 2.0, f32::INFINITY, -3.0, 0.5, nan, 4.0];
    each_device("nan propagation", |dev| {
        let mut g = Graph::new();
        let v = g.input("x", &[1, 1, 2, 4]).unwrap();
        let relu = g.unary("relu", UnaryOp::Relu, v).unwrap();
        let relu6 = g.unary("relu6", UnaryOp::ReluN { n: 6.0 }, v).unwrap();
        let hs = g.unary("hs", UnaryOp::HARD_SIGMOID, v).unwrap();
        let pool = g.pool("pool", v, Pool2d::max((2, 2), (2, 2))).unwrap();
        let max = g.max("max", v, 3).unwrap();
        let ones = g.input("ones", &[1, 1, 2, 4]).unwrap();
        let maximum = g.binary("maximum", BinaryOp::Max, ones, v).unwrap();
        let minimum = g.binary("minimum", BinaryOp::Min, ones, v).unwrap();
        let outs = [relu, relu6, hs, pool, max, maximum, minimum];
        let c = g.compile(dev, &outs, &Options::default()).unwrap();
        c.set("x", &x).unwrap();
        c.set("ones", &[1.0; 8]).unwrap();
        c.step().unwrap();
        let read = |v| c.read(v).unwrap();
        let nan_at =
            |v: Vec<f32>| -> Vec<usize> { (0..v.len()).filter(|&i| v[i].is_nan()).collect() };
        assert_eq!(nan_at(read(relu)), [0, 6]);
        assert_eq!(read(relu)[1..6], [0.0, 2.0, f32::INFINITY, 0.0, 0.5]);
        assert_eq!(nan_at(read(relu6)), [0, 6]);
        assert_eq!(nan_at(read(hs)), [0, 6]);
        // windows {0,1,4,5} and {2,3,6,7}: both hold a NaN
        assert_eq!(nan_at(read(pool)), [0, 1]);
        assert_eq!(nan_at(read(max)), [0, 1]);
        assert_eq!(nan_at(read(maximum)), [0, 6]);
        assert_eq!(read(maximum)[1..6], [1.0, 2.0, f32::INFINITY, 1.0, 1.0]);
        assert_eq!(nan_at(read(minimum)), [0, 6]);
    });
}

#[test]
fn nan_weights_are_never_predicted_with_nor_saved() {
    let data = Mnist::embedded().unwrap();
    let test = subset(&data.test, 8);
    each_device("nan weights", |dev| {
        let opt = OptimizerConfig::new(Algorithm::adam(), 0.003);
        let mut t = Trainer::new(
            dev,
            mnist(8, TINY, 1).unwrap(),
            opt,
            config(8, NonFinitePolicy::Stop),
        )
        .unwrap();
        let e = t.layout().entries().last().unwrap().clone();
        t.compiled()
            .set(&e.name, &vec![f32::NAN; e.numel()])
            .unwrap();
        let err = t.accuracy(&test).unwrap_err();
        assert!(matches!(err, Error::NonFinite { .. }), "{err}");
        let path = std::env::temp_dir().join("wgtrain-nan-weights.safetensors");
        let err = t.save(&path).unwrap_err().to_string();
        assert!(err.contains(&format!("{:?}", e.name)), "{err}");
        assert!(!path.exists());
    });
}

#[test]
fn counters_at_the_u64_limit_are_an_error_not_an_overflow() {
    each_device("counters at the limit", |dev| {
        let cfg = OptimizerConfig::new(Algorithm::adam(), 1e-3);
        let mut opt = Optimizer::new(dev, cfg, vec![ParamGroup::range(0..4)], 4).unwrap();
        opt.set_counters(u64::MAX, 0);
        let err = opt.prepare_step().unwrap_err().to_string();
        assert!(err.contains("u64::MAX"), "{err}");
        assert_eq!(opt.step_count(), u64::MAX, "nothing advanced");
    });
}

/// A reducing loss checks both its outputs in its reduction's one workgroup
/// (`loss_reduce_checked`) instead of a scan dispatch each: a per-sample loss that is not finite
/// under a finite reduced one (every weight 0: the sum by non-zero weights is 0), and a reduced
/// loss overflowing from finite per-sample ones (2·10³⁸ each), each flag the loss and skip the
/// step; finite ones do not.
#[test]
fn a_reducing_loss_checks_both_outputs_in_its_reduction() {
    use wgtrain::ops::loss::{Loss, LossKind, Reduction};
    use wgtrain::train::Inputs;
    each_device("loss checks", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[4, 1]).unwrap();
        let t = g.input("t", &[4, 1]).unwrap();
        let w = g.input("w", &[4]).unwrap();
        let p = g.linear("fc", x, 1).unwrap();
        let kind = LossKind::MeanSquaredError;
        let reduction = Reduction::SumByNonZeroWeights;
        let l = g
            .loss("l", p, t, Some(w), Loss { kind, reduction })
            .unwrap();
        let opt = OptimizerConfig::sgd(1e-9, 0.0);
        let mut model = g.train(dev, l, opt).unwrap();
        let c = model.compiled();
        let loss_kernels: Vec<&str> = (c.dispatches().into_iter())
            .filter(|(n, _)| n == "l")
            .map(|(_, k)| k)
            .collect();
        assert_eq!(loss_kernels, ["loss_forward", "loss_reduce_checked"]);
        c.set("fc.weight", &[1.0]).unwrap();
        c.set("fc.bias", &[0.0]).unwrap();
        let big = 2e38f32.sqrt();
        for (what, xs, ws, flagged) in [
            ("finite", [1.0, 2.0, 3.0, 4.0], [1.0; 4], false),
            ("weighted out", [f32::NAN, 1.0, 2.0, 3.0], [0.0; 4], true),
            ("overflowing sum", [big; 4], [1.0; 4], true),
        ] {
            model.compiled().reset_health().unwrap();
            let batch = Inputs::new()
                .f32("x", &xs)
                .f32("t", &[0.0; 4])
                .f32("w", &ws);
            model.step(&batch).unwrap();
            let h = model.compiled().health().unwrap();
            assert_eq!(h.skipped_steps, flagged as u64, "{what}: {h:?}");
            if flagged {
                assert!(h.first.as_ref().is_some_and(|f| f.loss), "{what}: {h:?}");
            }
        }
    });
}
