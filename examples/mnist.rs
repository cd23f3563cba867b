//! Trains the MPS sample's MNIST network (conv, pool, conv, pool, fully connected, dropout, fully
//! connected, softmax cross-entropy; Adam) on the 10,000 real MNIST digits shipped with the crate
//! (8,000 to train, 2,000 held out), or on the full set with `--data DIR` (the four IDX files).
//!
//! ```text
//! cargo run --release --example mnist [-- --epochs 5 --batch 32 --lr 0.002 --target 0.98
//!                                        --out runs/mnist --resume --data DIR --mps-size
//!                                        --just-in-time --skip-non-finite --check-activations
//!                                        --f16 --f16-accumulate]
//! ```
//! `--f16` trains in mixed precision (f16 activations and gradients, f32 weights, dynamic loss
//! scaling; needs SHADER_F16). `--f16-accumulate` sums in f16 in the convolutions, fully
//! connected layers and reductions (`Accumulator::F16`; needs SHADER_F16).
//! `--just-in-time` keeps weights, gradients and Adam's moments on the host, one layer at a time
//! on the GPU (peak memory bounded by the largest layer; slower). A step whose loss or gradients
//! go NaN or infinite stops the run with an error naming it; `--skip-non-finite` skips such steps
//! instead, `--check-activations` names the first node that went non-finite.
//! Writes `runs/mnist/metrics.jsonl`, `runs/mnist/curves.svg` and a checkpoint per epoch.

use std::path::PathBuf;

use wgtrain::compile::Precision;
use wgtrain::data::Mnist;
use wgtrain::optim::schedule::Schedule;
use wgtrain::optim::{Algorithm, OptimizerConfig};
use wgtrain::train::models::{MnistSize, mnist};
use wgtrain::train::{NonFinitePolicy, TrainConfig, Trainer};
use wgtrain::{Accumulator, Device};

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
            "--target",
            "--out",
            "--weight-decay",
            "--lr",
            "--conv1",
            "--conv2",
            "--hidden",
            "--kernel",
            "--data",
        ],
        &[
            "--resume",
            "--just-in-time",
            "--skip-non-finite",
            "--check-activations",
            "--f16",
            "--f16-accumulate",
            "--mps-size",
        ],
    )?;
    let cfg = TrainConfig {
        epochs: arg(&args, "--epochs", 5)?,
        batch: arg(&args, "--batch", 32)?,
        seed: arg(&args, "--seed", 1)?,
        target: Some(arg(&args, "--target", 0.985)?),
        out_dir: Some(PathBuf::from(arg(
            &args,
            "--out",
            "runs/mnist".to_string(),
        )?)),
        resume: args.iter().any(|a| a == "--resume"),
        log_every: 25,
        progress: true,
        weight_decay: arg(&args, "--weight-decay", 0.0)?,
        just_in_time: args.iter().any(|a| a == "--just-in-time"),
        on_non_finite: if args.iter().any(|a| a == "--skip-non-finite") {
            NonFinitePolicy::Skip
        } else {
            NonFinitePolicy::Stop
        },
        check_activations: args.iter().any(|a| a == "--check-activations"),
        precision: if args.iter().any(|a| a == "--f16") {
            Precision::F16
        } else {
            Precision::F32
        },
        accumulator: if args.iter().any(|a| a == "--f16-accumulate") {
            Accumulator::F16
        } else {
            Accumulator::F32
        },
    };
    let lr: f64 = arg(&args, "--lr", 0.002)?;
    let base = if args.iter().any(|a| a == "--mps-size") {
        MnistSize::MPS
    } else {
        MnistSize::SMALL
    };
    let size = MnistSize {
        conv1: arg(&args, "--conv1", base.conv1)?,
        conv2: arg(&args, "--conv2", base.conv2)?,
        hidden: arg(&args, "--hidden", base.hidden)?,
        kernel: arg(&args, "--kernel", base.kernel)?,
    };

    // 1. The device: the best adapter found (WGTRAIN_BACKEND / WGTRAIN_ADAPTER choose another).
    let dev = Device::new()?;
    println!("adapter: {}", dev.name());

    // 2. The data: embedded (8,000 + 2,000 real digits) unless --data points at the full set.
    let data = match args.iter().position(|a| a == "--data") {
        Some(i) => Mnist::from_dir(args.get(i + 1).ok_or("--data needs a directory")?)?,
        None => Mnist::embedded()?,
    };
    println!(
        "data: {} training and {} test images",
        data.train.n, data.test.n
    );

    // 3. The network as a graph; the trainer derives its gradient graph, plans memory, puts the
    //    weights in one arena, records Adam into the step, and replays it with two steps in flight.
    let model = mnist(cfg.batch, size, cfg.seed)?;
    // Adam with the learning rate decayed along a cosine over the whole run.
    let steps = (cfg.epochs * data.train.n.div_ceil(cfg.batch)) as u64;
    // --weight-decay switches to AdamW (decoupled decay on the weights, none on biases).
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

    // 4. Train: an epoch at a time, evaluated on the held-out digits, checkpointed.
    let reports = trainer.fit(&data.train, &data.test)?;
    if let Some(last) = reports.last() {
        println!(
            "final test accuracy: {:.2}% after {} epochs",
            100.0 * last.accuracy().unwrap_or(0.0),
            last.epoch
        );
    }
    if let Some(dir) = &cfg.out_dir {
        println!(
            "metrics: {}/metrics.jsonl, curves: {}/curves.svg",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}
