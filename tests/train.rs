//! The training loop on real MNIST digits: the loss falls and accuracy rises far above chance;
//! a run interrupted, checkpointed and resumed ends bit-identical to one run straight through.

mod common;

use common::{each_device, subset};
use wgtrain::data::Mnist;
use wgtrain::optim::{Algorithm, OptimizerConfig};
use wgtrain::train::models::{MnistSize, mnist};
use wgtrain::train::{TrainConfig, Trainer};
use wgtrain::weights::ParamStore;

const TINY: MnistSize = MnistSize {
    conv1: 4,
    conv2: 8,
    hidden: 32,
    kernel: 5,
};

fn config(batch: usize, epochs: usize, out: Option<std::path::PathBuf>) -> TrainConfig {
    TrainConfig {
        epochs,
        batch,
        seed: 7,
        target: None,
        out_dir: out,
        resume: false,
        log_every: 10,
        progress: false,
        weight_decay: 0.0,
        just_in_time: false,
        ..TrainConfig::default()
    }
}

#[test]
fn loss_falls_and_accuracy_rises_far_above_chance() {
    let data = Mnist::embedded().unwrap();
    let (train, test) = (subset(&data.train, 1600), subset(&data.test, 400));
    each_device("train mnist", |dev| {
        let cfg = config(16, 2, None);
        let opt = OptimizerConfig::new(Algorithm::adam(), 0.003);
        let mut t = Trainer::new(dev, mnist(16, TINY, 7).unwrap(), opt, cfg).unwrap();
        let before = t.accuracy(&test).unwrap();
        let (first_loss, _) = t.train_epoch(&train, None).unwrap();
        let (second_loss, _) = t.train_epoch(&train, None).unwrap();
        let after = t.accuracy(&test).unwrap();
        eprintln!(
            "accuracy {before:.3} -> {after:.3}, loss {first_loss:.3} -> {second_loss:.3} ({} steps)",
            t.global_step()
        );
        assert_eq!(t.global_step(), 200);
        assert!(
            second_loss < 0.7 * first_loss,
            "loss did not fall: {first_loss} -> {second_loss}"
        );
        assert!(
            after > 0.6 && after > before + 0.4,
            "accuracy {before} -> {after}"
        );
    });
}

#[test]
fn resumed_run_is_bit_identical_to_a_straight_run() {
    let data = Mnist::embedded().unwrap();
    let train = subset(&data.train, 60); // 60 = 7 full batches of 8 and a padded one
    each_device("resume", |dev| {
        let dir = std::env::temp_dir().join(format!("wgtrain-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let opt = || OptimizerConfig::new(Algorithm::adam(), 0.003);
        let weights = |t: &Trainer| t.compiled().param_arena().unwrap().params.to_f32().unwrap();
        let mut straight =
            Trainer::new(dev, mnist(8, TINY, 3).unwrap(), opt(), config(8, 3, None)).unwrap();
        for _ in 0..3 {
            straight.train_epoch(&train, None).unwrap();
        }
        let mut first =
            Trainer::new(dev, mnist(8, TINY, 3).unwrap(), opt(), config(8, 3, None)).unwrap();
        first.train_epoch(&train, None).unwrap();
        let ckpt = dir.join("checkpoint.safetensors");
        first.save(&ckpt).unwrap();
        drop(first);
        let mut resumed =
            Trainer::new(dev, mnist(8, TINY, 3).unwrap(), opt(), config(8, 3, None)).unwrap();
        resumed.load(&ckpt).unwrap();
        assert_eq!((resumed.epoch(), resumed.global_step()), (1, 8));
        resumed.train_epoch(&train, None).unwrap();
        resumed.train_epoch(&train, None).unwrap();
        let (a, b) = (weights(&straight), weights(&resumed));
        assert_eq!(a.len(), b.len(), "resumed weights have another length");
        assert!(!a.is_empty(), "no weights to compare");
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "resumed weights differ"
        );
        assert_eq!(
            resumed.optimizer().step_count(),
            straight.optimizer().step_count()
        );
        // A checkpoint of another network is an error naming the file, not a silent partial load.
        let mut other = Trainer::new(
            dev,
            mnist(8, MnistSize { conv1: 5, ..TINY }, 3).unwrap(),
            opt(),
            config(8, 1, None),
        )
        .unwrap();
        let e = other.load(&ckpt).unwrap_err().to_string();
        assert!(e.contains("checkpoint.safetensors"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

/// What the engine handed back to each source: (name, trained values).
type Log = std::rc::Rc<std::cell::RefCell<Vec<(String, Vec<f32>)>>>;

/// A data source that remembers what the engine handed back.
struct Recorder {
    label: String,
    shape: Vec<usize>,
    trained: Log,
}

impl wgtrain::weights::DataSource for Recorder {
    fn label(&self) -> &str {
        &self.label
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn load(&mut self) -> wgtrain::Result<()> {
        Ok(())
    }
    fn init(&mut self, out: &mut [f32]) -> wgtrain::Result<()> {
        // A recognisable, small pattern: 0.01 · (i mod 7 − 3).
        out.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = 0.01 * ((i % 7) as f32 - 3.0));
        Ok(())
    }
    fn purge(&mut self) {}
    fn update(&mut self, trained: &[f32]) -> wgtrain::Result<()> {
        self.trained
            .borrow_mut()
            .push((self.label.clone(), trained.to_vec()));
        Ok(())
    }
}

#[test]
fn weights_enter_and_leave_through_data_sources() {
    let data = Mnist::embedded().unwrap();
    let train = subset(&data.train, 16);
    each_device("data sources", |dev| {
        // Resident and just-in-time weights come from and go back to their sources alike.
        for just_in_time in [false, true] {
            let log: Log = Default::default();
            let opt = OptimizerConfig::new(Algorithm::adam(), 0.003);
            let l = log.clone();
            let mut t = Trainer::with_sources(
                dev,
                mnist(8, TINY, 3).unwrap(),
                opt,
                TrainConfig {
                    just_in_time,
                    ..config(8, 1, None)
                },
                move |name, shape, _| {
                    Box::new(Recorder {
                        label: name.into(),
                        shape: shape.to_vec(),
                        trained: l.clone(),
                    })
                },
            )
            .unwrap();
            let layout = t.layout().clone();
            let before = ParamStore::read_all(t.compiled()).unwrap();
            let e = &layout.entries()[0];
            assert_eq!(
                before[e.offset + 8],
                0.01 * (8 % 7) as f32 - 0.03,
                "{} came from its data source",
                e.name
            );
            t.train_epoch(&train, None).unwrap();
            t.sync_sources().unwrap();
            let after = ParamStore::read_all(t.compiled()).unwrap();
            let got = log.borrow();
            assert_eq!(got.len(), layout.entries().len());
            for (name, v) in got.iter() {
                let e = layout.get(name).unwrap();
                assert_eq!(
                    &after[e.range()],
                    &v[..],
                    "{name}: the source got the trained values (just-in-time: {just_in_time})"
                );
            }
            assert_ne!(before, after, "training changed nothing");
        }
    });
}

#[test]
fn just_in_time_trainer_matches_resident_and_checkpoints_cross() {
    let data = Mnist::embedded().unwrap();
    let (train, test) = (subset(&data.train, 40), subset(&data.test, 24));
    each_device("jit trainer", |dev| {
        let dir = std::env::temp_dir().join(format!("wgtrain-jit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let opt = || OptimizerConfig::new(Algorithm::adamw(), 0.003);
        let make = |jit: bool| {
            let cfg = TrainConfig {
                just_in_time: jit,
                weight_decay: 0.01,
                ..config(8, 2, None)
            };
            Trainer::new(dev, mnist(8, TINY, 3).unwrap(), opt(), cfg).unwrap()
        };
        let weights = |t: &Trainer| ParamStore::read_all(t.compiled()).unwrap();
        let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
        let (mut resident, mut jit) = (make(false), make(true));
        assert!(jit.compiled().is_just_in_time() && !resident.compiled().is_just_in_time());
        assert_eq!(
            bits(weights(&resident)),
            bits(weights(&jit)),
            "initial weights"
        );
        resident.train_epoch(&train, None).unwrap();
        jit.train_epoch(&train, None).unwrap();
        assert_eq!(
            bits(weights(&resident)),
            bits(weights(&jit)),
            "weights after an epoch (dropout, Adam, weight decay)"
        );
        assert_eq!(
            resident.accuracy(&test).unwrap(),
            jit.accuracy(&test).unwrap()
        );
        // A just-in-time checkpoint resumes a resident run, and the other way round.
        let (pj, pr) = (
            dir.join("jit.safetensors"),
            dir.join("resident.safetensors"),
        );
        jit.save(&pj).unwrap();
        resident.save(&pr).unwrap();
        let (mut r2, mut j2) = (make(false), make(true));
        r2.load(&pj).unwrap();
        j2.load(&pr).unwrap();
        for t in [&mut resident, &mut jit, &mut r2, &mut j2] {
            t.train_epoch(&train, None).unwrap();
        }
        let want = bits(weights(&resident));
        for (what, t) in [
            ("jit", &jit),
            ("resident from jit", &r2),
            ("jit from resident", &j2),
        ] {
            assert_eq!(bits(weights(t)), want, "{what}: weights after resuming");
            assert_eq!(
                bits(t.optimizer().read_state().unwrap()),
                bits(resident.optimizer().read_state().unwrap()),
                "{what}: optimizer state"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

/// A batch more than twice the data set: the padding cycles through the data (it used to index
/// past the shuffled order and panic), and evaluation counts each sample once.
#[test]
fn a_batch_larger_than_twice_the_data_trains() {
    let data = Mnist::embedded().unwrap();
    let (train, test) = (subset(&data.train, 5), subset(&data.test, 3));
    each_device("batch larger than the data", |dev| {
        let opt = OptimizerConfig::new(Algorithm::adam(), 0.003);
        let mut t =
            Trainer::new(dev, mnist(16, TINY, 7).unwrap(), opt, config(16, 1, None)).unwrap();
        let (loss, _) = t.train_epoch(&train, None).unwrap();
        assert!(loss.is_finite(), "loss {loss}");
        assert_eq!(t.global_step(), 1);
        let accuracy = t.accuracy(&test).unwrap();
        assert!((0.0..=1.0).contains(&accuracy), "accuracy {accuracy}");
    });
}
