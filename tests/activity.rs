//! The activity classifier (conv1d + LSTM) on real HAPT windows, very short: one epoch over a
//! few hundred windows lowers the loss, and the held-out confusion matrix accounts for every
//! test window.

mod common;

use common::each_device;
use wgtrain::data::{Har, HarWindows, WindowLabel};
use wgtrain::optim::{Algorithm, OptimizerConfig};
use wgtrain::train::metrics::Metrics;
use wgtrain::train::models::{ActivitySize, activity};
use wgtrain::train::{TrainConfig, Trainer};

const TINY: ActivitySize = ActivitySize {
    window: 64,
    inputs: 6,
    classes: 12,
    conv1_channels: 8,
    conv2_channels: 8,
    conv_kernel: 5,
    conv1_stride: 2,
    conv2_stride: 2,
    lstm_hidden: 8,
    lstm_layers: 1,
    bidirectional: false,
    dense_hidden: 16,
    dropout: 0.0,
    recurrent: true,
    channel_stats: true,
};

/// Every `step`-th window, up to `n`: a spread over users and activities, not one recording.
fn spread(w: &HarWindows, n: usize) -> HarWindows {
    let step = (w.n / n).max(1);
    let idx: Vec<usize> = (0..w.n).step_by(step).take(n).collect();
    w.subset(&idx).unwrap()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn short_activity_training_lowers_the_loss_and_counts_every_test_window() {
    let har = Har::embedded().unwrap();
    let (train_har, test_har) = har.split_default();
    let mut train = spread(
        &train_har.windows(64, 64, WindowLabel::Majority).unwrap(),
        320,
    );
    let mut test = spread(
        &test_har.windows(64, 64, WindowLabel::Majority).unwrap(),
        100,
    );
    let (m, s) = train.channel_stats().unwrap();
    train.normalize(&m, &s).unwrap();
    test.normalize(&m, &s).unwrap();
    each_device("train activity", |dev| {
        let dir = std::env::temp_dir().join(format!("wgtrain-activity-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = TrainConfig {
            epochs: 1,
            batch: 16,
            seed: 3,
            log_every: 1,
            progress: false,
            ..TrainConfig::default()
        };
        let opt = OptimizerConfig::new(Algorithm::adam(), 0.02);
        let mut t = Trainer::new(dev, activity(16, TINY, 3).unwrap(), opt, cfg).unwrap();
        let mut metrics = Metrics::open(&dir, false).unwrap();
        t.train_epoch(&train, Some(&mut metrics)).unwrap();
        assert_eq!(t.global_step(), 20);
        // The per-step losses, from the metrics file the loop wrote.
        let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
        let losses: Vec<f64> = text
            .lines()
            .map(|l| {
                let v = l.split("\"loss\":").nth(1).unwrap();
                v[..v.find(',').unwrap()].parse().unwrap()
            })
            .collect();
        assert_eq!(losses.len(), 20);
        let (first, last) = (mean(&losses[..4]), mean(&losses[16..]));
        eprintln!("loss {first:.3} -> {last:.3}");
        assert!(
            last < 0.8 * first,
            "loss did not fall: {first} -> {last}: {losses:?}"
        );

        let c = t.confusion(&test).unwrap();
        assert_eq!(c.classes(), 12);
        assert_eq!(c.total(), test.n as u64);
        let counts = test.class_counts();
        for (k, &n) in counts.iter().enumerate() {
            assert_eq!(c.support(k), n as u64, "class {k}");
        }
        let accuracy = t.accuracy(&test).unwrap();
        assert!((c.accuracy() - accuracy).abs() < 1e-12);
        eprintln!("{}", c.table(har.class_names()).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    });
}
