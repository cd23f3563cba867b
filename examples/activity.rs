//! Trains a human-activity classifier on the UCI HAPT smartphone recordings shipped with the crate
//! (accelerometer + gyroscope, 50 Hz, 12 activities): windows of the 6 channels → 1-D
//! convolutions that compress each window to about 20 time steps → an LSTM over them → fully
//! connected → softmax cross-entropy (Adam). Users 1–24 train, users 25–30 are held out, so the
//! score is on people the network never saw.
//!
//! ```text
//! cargo run --release --example activity [-- --epochs 8 --batch 32 --lr 0.003 --seed 1
//!                                           --out runs/activity --resume --conv-only
//!                                           --window 192 --hop 64 --no-stats
//!                                           --lstm-hidden 32 --lstm-layers 1 --bidirectional
//!                                           --no-align]
//! ```
//! Each user's recordings are first rotated so that their mean gravity direction (the phone's tilt
//! on the waist) matches the training users' mean (`Har::align_gravity`); `--no-align` skips it.
//! `--conv-only` trains the baseline without the LSTM (a fully connected head instead);
//! `--no-stats` leaves out the window statistics (each channel's mean and log-variance) that the
//! head reads beside the learned features.
//! Writes `runs/activity/metrics.jsonl`, `curves.svg`, `confusion.svg` and a checkpoint per epoch.

use std::path::PathBuf;

use wgtrain::Device;
use wgtrain::data::{Har, WindowLabel};
use wgtrain::optim::schedule::Schedule;
use wgtrain::optim::{Algorithm, OptimizerConfig};
use wgtrain::train::models::{ActivitySize, activity};
use wgtrain::train::{ConfusionMatrix, TrainConfig, Trainer};

/// Classes 0–5: WALKING, WALKING_UPSTAIRS, WALKING_DOWNSTAIRS, SITTING, STANDING, LAYING.
const BASIC: [usize; 6] = [0, 1, 2, 3, 4, 5];

#[path = "common/args.rs"]
mod args;
use args::arg;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    args::check(
        &args,
        0,
        &[
            "--epochs",
            "--batch",
            "--seed",
            "--out",
            "--weight-decay",
            "--lr",
            "--window",
            "--conv1",
            "--conv2",
            "--kernel",
            "--stride1",
            "--stride2",
            "--lstm-hidden",
            "--lstm-layers",
            "--hidden",
            "--dropout",
            "--hop",
        ],
        &[
            "--resume",
            "--conv-only",
            "--bidirectional",
            "--no-stats",
            "--no-align",
        ],
    )?;
    let cfg = TrainConfig {
        epochs: arg(&args, "--epochs", 8)?,
        batch: arg(&args, "--batch", 32)?,
        seed: arg(&args, "--seed", 1)?,
        target: None,
        out_dir: Some(PathBuf::from(arg(
            &args,
            "--out",
            "runs/activity".to_string(),
        )?)),
        resume: args.iter().any(|a| a == "--resume"),
        log_every: 25,
        progress: true,
        weight_decay: arg(&args, "--weight-decay", 0.0)?,
        just_in_time: false,
        ..TrainConfig::default()
    };
    let lr: f64 = arg(&args, "--lr", 0.003)?;
    let base = if args.iter().any(|a| a == "--conv-only") {
        ActivitySize::CONV
    } else {
        ActivitySize::LSTM
    };
    let size = ActivitySize {
        window: arg(&args, "--window", base.window)?,
        conv1_channels: arg(&args, "--conv1", base.conv1_channels)?,
        conv2_channels: arg(&args, "--conv2", base.conv2_channels)?,
        conv_kernel: arg(&args, "--kernel", base.conv_kernel)?,
        conv1_stride: arg(&args, "--stride1", base.conv1_stride)?,
        conv2_stride: arg(&args, "--stride2", base.conv2_stride)?,
        lstm_hidden: arg(&args, "--lstm-hidden", base.lstm_hidden)?,
        lstm_layers: arg(&args, "--lstm-layers", base.lstm_layers)?,
        bidirectional: base.bidirectional || args.iter().any(|a| a == "--bidirectional"),
        dense_hidden: arg(&args, "--hidden", base.dense_hidden)?,
        dropout: arg(&args, "--dropout", base.dropout)?,
        channel_stats: base.channel_stats && !args.iter().any(|a| a == "--no-stats"),
        ..base
    };
    // Windows start every 1.28 s: a third of a window, so each sample is seen three times.
    let hop: usize = arg(&args, "--hop", 64)?;

    // 1. The device: the best adapter found (WGTRAIN_BACKEND / WGTRAIN_ADAPTER choose another).
    let dev = Device::new()?;
    println!("adapter: {}", dev.name());

    // 2. The data: whole users held out, each user's phone tilt aligned; windows labelled by their
    //    majority activity; every channel normalised with the training windows' statistics.
    let har = Har::embedded()?;
    let (mut train_har, mut test_har) = har.split_default();
    if !args.iter().any(|a| a == "--no-align") {
        // Each user's phone tilt rotated onto the training users' mean (no labels needed): the
        // cue that tells sitting from standing is a tilt, and phones sit at different tilts.
        let target = train_har.mean_gravity()?;
        train_har.align_gravity(target)?;
        test_har.align_gravity(target)?;
    }
    let mut train = train_har.windows(size.window, hop, WindowLabel::Majority)?;
    let mut test = test_har.windows(size.window, hop, WindowLabel::Majority)?;
    let (mean, std) = train.channel_stats()?;
    train.normalize(&mean, &std)?;
    test.normalize(&mean, &std)?;
    println!(
        "data: {} training windows (users 1–24) and {} test windows (users 25–30), \
         {} samples ({:.2} s) every {hop}",
        train.n,
        test.n,
        size.window,
        size.window as f32 / har.sample_rate_hz
    );
    let model_name = if size.recurrent {
        format!(
            "conv1d {}→{} → LSTM {} over {} steps",
            size.conv1_channels,
            size.conv2_channels,
            size.lstm_hidden,
            size.steps()
        )
    } else {
        format!(
            "conv1d {}→{} over {} steps → fully connected {} (conv-only)",
            size.conv1_channels,
            size.conv2_channels,
            size.steps(),
            size.dense_hidden
        )
    };
    println!("model: {model_name}");

    // 3. The network; Adam with the learning rate decayed along a cosine over the whole run.
    let model = activity(cfg.batch, size, cfg.seed)?;
    let steps = (cfg.epochs * train.n.div_ceil(cfg.batch)) as u64;
    let algorithm = if cfg.weight_decay > 0.0 {
        Algorithm::adamw()
    } else {
        Algorithm::adam()
    };
    let mut opt = OptimizerConfig::new(algorithm, lr);
    opt.schedule = Schedule::Cosine {
        t_max: steps,
        eta_min: lr / 50.0,
    };
    let mut trainer = Trainer::new(&dev, model, opt, cfg.clone())?;
    let s = trainer.compiled().stats();
    println!(
        "plan: {} dispatches and {} submit per step; activations {:.2} MB planned (naive {:.2} MB)",
        s.dispatches_per_step,
        s.submits_per_step,
        s.arena_bytes as f64 / 1e6,
        s.naive_bytes as f64 / 1e6
    );

    // 4. Train an epoch at a time, evaluated on the held-out users, checkpointed.
    let t0 = std::time::Instant::now();
    trainer.fit(&train, &test)?;

    // 5. What it confuses: the held-out windows by true and predicted activity.
    let (truth, predicted) = trainer.predict(&test)?;
    let m = ConfusionMatrix::from_predictions(trainer.classes(), &truth, &predicted)?;
    println!(
        "final test accuracy: {:.2}% over all 12 classes, {:.2}% on the 6 basic activities \
         ({} epochs, {:.0} s)",
        100.0 * m.accuracy(),
        100.0 * m.accuracy_over(&BASIC)?,
        trainer.epoch(),
        t0.elapsed().as_secs_f64()
    );
    // People differ (how they wear the phone, how they sit): the score of each held-out user.
    let mut users = test.users.clone();
    users.dedup();
    let mut line = String::from("per user (12 classes / 6 basic):");
    for u in users {
        let of = |v: &[u32]| -> Vec<u32> {
            v.iter()
                .zip(&test.users)
                .filter(|(_, w)| **w == u)
                .map(|(c, _)| *c)
                .collect()
        };
        let mu = ConfusionMatrix::from_predictions(m.classes(), &of(&truth), &of(&predicted))?;
        line += &format!(
            " {u}: {:.1}%/{:.1}%",
            100.0 * mu.accuracy(),
            100.0 * mu.accuracy_over(&BASIC)?
        );
    }
    println!("{line}");
    let names = har.class_names();
    print!("{}", m.table(names)?);
    if let Some(dir) = &cfg.out_dir {
        let path = dir.join("confusion.svg");
        let title = format!("HAPT held-out users 25–30: {model_name}");
        std::fs::write(&path, m.svg(names, &title)?)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!(
            "metrics: {d}/metrics.jsonl, curves: {d}/curves.svg, confusion: {d}/confusion.svg",
            d = dir.display()
        );
    }
    Ok(())
}
