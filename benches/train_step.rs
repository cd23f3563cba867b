//! Images/s of the MNIST network's full training step (forward, softmax cross-entropy, backward,
//! Adam) at batch 64 and 256, replayed as one submit per step with two steps in flight; also the
//! compiled plan's numbers (planned vs naive activation bytes, dispatches and submits per step,
//! CPU time to encode a step). Twin: `benches/train_step_torch.py` (same network, same sizes).
//! Run: `cargo bench --bench train_step [-- --mps-size] [-- --quick] [-- --profile]`
//! (`--profile`: after the table, each batch's step split by kernel, `Compiled::profile_step`;
//! `--dispatches` too: every dispatch with its node).
//! Without `--bench` (`cargo test --benches`): one untimed step at batch 8, its loss checked finite.
//! `--f16`: mixed precision (`Precision::F16`, dynamic loss scaling), as the twin's `--amp`.
//! `--implicit-gemm`: every convolution pass on the implicit GEMM (no Winograd).

mod common;

use common::Mode;
use std::time::Instant;

use wgtrain::compile::Precision;
use wgtrain::optim::{Algorithm, OptimizerConfig};
use wgtrain::train::models::{MnistSize, mnist};
use wgtrain::train::{TrainConfig, Trainer};

fn main() -> wgtrain::Result<()> {
    wgtrain::ops::conv::winograd::with_conv_algo(common::conv_algo(), run)
}

fn run() -> wgtrain::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let mode = Mode::from(&args[1..]);
    let profile = args.iter().any(|a| a == "--profile");
    let mut profiles = Vec::new();
    let size = if args.iter().any(|a| a == "--mps-size") {
        MnistSize::MPS
    } else {
        MnistSize::SMALL
    };
    let Some(dev) = common::device("train_step") else {
        return Ok(());
    };
    mode.announce("train_step");
    println!(
        "adapter: {}; network conv {}, conv {}, fc {}; {}",
        dev.name(),
        size.conv1,
        size.conv2,
        size.hidden,
        if args.iter().any(|a| a == "--f16") {
            "mixed precision (f16)"
        } else {
            "f32"
        }
    );
    println!(
        "| batch | ms/step | images/s | dispatches/step | submits/step | encode µs | activations planned | naive |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let batches = match mode {
        Mode::Smoke => vec![8],
        Mode::Quick => vec![32],
        Mode::Full => vec![64, 256],
    };
    for batch in batches {
        let cfg = TrainConfig {
            batch,
            progress: false,
            precision: if args.iter().any(|a| a == "--f16") {
                Precision::F16
            } else {
                Precision::F32
            },
            ..TrainConfig::default()
        };
        let opt = OptimizerConfig::new(Algorithm::adam(), 1e-3);
        let mut t = Trainer::new(&dev, mnist(batch, size, 1)?, opt, cfg)?;
        let c = t.compiled();
        let x: Vec<f32> = (0..batch * 784).map(|i| (i % 255) as f32 / 255.0).collect();
        let y: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
        c.set("image", &x)?;
        c.set_u32("labels", &y)?;
        c.set("weights", &vec![1.0; batch])?;
        let stats = c.stats().clone();
        // CPU time to encode and submit one step (optimizer uniforms included), GPU idle before.
        let mut encode = f64::MAX;
        for _ in 0..mode.reps(5) {
            t.compiled().wait_all()?;
            let s = Instant::now();
            t.step_once()?;
            encode = encode.min(s.elapsed().as_secs_f64());
        }
        let best = common::time_steps(&mut t, mode, 1.0, 500)?;
        let loss = t.compiled().read(t.loss_value())?[0];
        assert!(loss.is_finite(), "training diverged: loss {loss}");
        println!(
            "| {batch} | {:.3} | {:.0} | {} ({} read-only) | {} | {:.0} | {:.2} MB | {:.2} MB |",
            best * 1e3,
            batch as f64 / best,
            stats.dispatches_per_step,
            stats.read_only_dispatches,
            stats.submits_per_step,
            encode * 1e6,
            stats.arena_bytes as f64 / 1e6,
            stats.naive_bytes as f64 / 1e6
        );
        if profile {
            profiles.push((batch, t.profile_step()?));
        }
    }
    for (batch, p) in profiles {
        println!(
            "\nbatch {batch}, GPU time by kernel (each dispatch timed alone):\n{}",
            p.table()
        );
        if args.iter().any(|a| a == "--dispatches") {
            println!("\nbatch {batch}, every dispatch:\n{}", p.dispatch_table());
        }
    }
    Ok(())
}
