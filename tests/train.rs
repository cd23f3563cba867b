//! The training loop on real MNIST digits: the loss falls and accuracy rises far above chance;
//! a run interrupted, checkpointed and resumed ends bit-identical to one run straight through.

mod common;

use common::each_device;
use wgtrain::data::{ImageSet, Mnist};
use wgtrain::optim::{Algorithm, OptimizerConfig};
use wgtrain::train::models::{MnistSize, mnist};
use wgtrain::train::{TrainConfig, Trainer};

const TINY: MnistSize = MnistSize {
    conv1: 4,
    conv2: 8,
    hidden: 32,
    kernel: 5,
};

fn subset(s: &ImageSet, n: usize) -> ImageSet {
    let per = s.rows * s.cols;
    ImageSet {
        images: s.images[..n * per].to_vec(),
        labels: s.labels[..n].to_vec(),
        n,
        rows: s.rows,
        cols: s.cols,
    }
}

fn config(batch: usize, epochs: usize, out: Option<std::path::PathBuf>) -> TrainConfig {
    TrainConfig {
        epochs,
        batch,
        seed: 7,
        target_accuracy: None,
        out_dir: out,
        resume: false,
        log_every: 10,
        progress: false,
        weight_decay: 0.0,
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
        let before = t.evaluate(&test).unwrap();
        let (first_loss, _) = t.train_epoch(&train, None).unwrap();
        let (second_loss, _) = t.train_epoch(&train, None).unwrap();
        let after = t.evaluate(&test).unwrap();
        eprintln!(
            "accuracy {before:.3} -> {after:.3}, loss {first_loss:.3} -> {second_loss:.3} ({} steps)",
            t.global_step
        );
        assert_eq!(t.global_step, 200);
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
        assert_eq!((resumed.epoch, resumed.global_step), (1, 8));
        resumed.train_epoch(&train, None).unwrap();
        resumed.train_epoch(&train, None).unwrap();
        let (a, b) = (weights(&straight), weights(&resumed));
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
