//! Images/s of the model zoo's full training step — Inception v3 at 299×299 and ResNet-50 at
//! 224×224, batch 32, forward, softmax cross-entropy, backward and SGD with momentum 0.9, one
//! submit per step with two steps in flight — with each plan's numbers: compile time (the wall
//! time of `Trainer::new`, every pipeline built: compiling waits for the threads building them,
//! `WGTRAIN_PIPELINE_THREADS`), dispatches and submits per step, planned and naive activation
//! bytes. Twin:
//! `benches/models_torch.py` (torchvision's networks, eager fp32, TF32 off, `cudnn.benchmark`).
//! Run: `cargo bench --bench models [-- --quick] [-- --profile [--dispatches]] [-- --f16]
//! [-- --implicit-gemm] [-- --chunk-mib N]`
//! (`--quick`: batch 8 at 75×75 and 64×64, which a software adapter can time; `--profile`: each
//! network's step by kernel, `--dispatches` every dispatch with its node and grid; `--f16`: mixed precision with dynamic loss scaling, twin `models_torch.py --amp`; `--chunk-mib`: Winograd's scratch
//! budget a slot, `ops::conv::winograd::with_chunk_bytes`).
//! Without `--bench` (`cargo test --benches`): one untimed step of each at its smallest size
//! and a sixteenth of the width, its loss checked finite.
//!
//! A network whose larger activation arena exceeds the adapter's `max_buffer_size` is reported as not
//! fitting (planned without a device, `Graph::plan_arena`) and skipped, not an error.

mod common;

use common::Mode;
use std::time::Instant;

use wgtrain::compile::{Options, Precision};
use wgtrain::optim::OptimizerConfig;
use wgtrain::train::models::{InceptionSize, ResNetSize, inception_v3, resnet50};
use wgtrain::train::{Network, TrainConfig, Trainer};

/// A network of the zoo at its widths.
#[derive(Clone, Copy)]
enum Zoo {
    Inception(InceptionSize),
    ResNet(ResNetSize),
}

impl Zoo {
    fn name(self) -> &'static str {
        match self {
            Zoo::Inception(_) => "inception_v3",
            Zoo::ResNet(_) => "resnet50",
        }
    }

    fn build(self, batch: usize, image: (usize, usize)) -> wgtrain::Result<Network> {
        match self {
            Zoo::Inception(size) => inception_v3(batch, image, size),
            Zoo::ResNet(size) => resnet50(batch, image, size),
        }
    }
}

/// The rows of the table: (network, batch, image).
fn cases(mode: Mode) -> Vec<(Zoo, usize, (usize, usize))> {
    let (narrow, batch, sizes) = match mode {
        Mode::Smoke => (16, 2, [(75, 75), (32, 32)]),
        Mode::Quick => (1, 8, [(75, 75), (64, 64)]),
        Mode::Full => (1, 32, [(299, 299), (224, 224)]),
    };
    let inception = InceptionSize {
        width_divisor: narrow,
        ..InceptionSize::TORCHVISION
    };
    let resnet = ResNetSize {
        base: 64 / narrow,
        ..ResNetSize::TORCHVISION
    };
    vec![
        (Zoo::Inception(inception), batch, sizes[0]),
        (Zoo::ResNet(resnet), batch, sizes[1]),
    ]
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn main() -> wgtrain::Result<()> {
    use wgtrain::ops::conv::winograd::{DEFAULT_CHUNK_BYTES, with_chunk_bytes, with_conv_algo};
    // `--chunk-mib N`: Winograd's scratch budget a slot (`with_chunk_bytes`).
    let chunk = match common::flag_value("--chunk-mib") {
        Some(v) => match v
            .parse::<usize>()
            .ok()
            .and_then(|mib| mib.checked_mul(1 << 20))
        {
            Some(bytes) => bytes,
            None => {
                eprintln!("--chunk-mib takes a number of MiB");
                std::process::exit(2);
            }
        },
        None => DEFAULT_CHUNK_BYTES,
    };
    with_chunk_bytes(chunk, || with_conv_algo(common::conv_algo(), run))
}

fn run() -> wgtrain::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let mode = Mode::from(&args[1..]);
    let profile = args.iter().any(|a| a == "--profile");
    let f16 = args.iter().any(|a| a == "--f16");
    let Some(dev) = common::device("models") else {
        return Ok(());
    };
    mode.announce("models");
    if f16 && !dev.caps().shader_f16 {
        println!("{} has no SHADER_F16: nothing to time in f16", dev.name());
        return Ok(());
    }
    let (precision, what) = match f16 {
        true => (Precision::F16, "mixed precision (f16, loss scale 2^16)"),
        false => (Precision::F32, "fp32"),
    };
    println!(
        "adapter: {}; SGD lr 0.01 momentum 0.9, {what}; pipelines built on {} thread(s) \
         (WGTRAIN_PIPELINE_THREADS)",
        dev.name(),
        dev.pipeline_threads().max(1)
    );
    println!(
        "| network | batch | image | ms/step | images/s | dispatches/step | submits/step | compile s | activations planned | naive | persistent | of it scratch |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut profiles = Vec::new();
    for (zoo, batch, image) in cases(mode) {
        let (h, w) = image;
        let lead = format!("| {} | {batch} | {h}×{w} |", zoo.name());
        let mut net = zoo.build(batch, image)?;
        // Plan the arena first: past the adapter's buffer limit compiling would only fail (the
        // f32 plan: mixed precision's is smaller).
        let tr = net.graph.training(net.loss)?;
        let opts = Options {
            training: Some(&tr),
            ..Options::default()
        };
        let align = dev.caps().storage_offset_alignment as u64;
        let arena = net.graph.plan_arena(&[net.loss], &opts, align)?;
        let limit = dev.caps().max_buffer_size;
        if arena.largest_arena_bytes > limit {
            println!(
                "{lead} does not fit: arena {} > max_buffer_size {} | | | | | {} | {} | | |",
                mb(arena.largest_arena_bytes),
                mb(limit),
                mb(arena.arena_bytes),
                mb(arena.naive_bytes)
            );
            continue;
        }
        let net = zoo.build(batch, image)?;
        let cfg = TrainConfig {
            batch,
            progress: false,
            precision,
            ..TrainConfig::default()
        };
        let compile = Instant::now();
        let mut t = Trainer::new(&dev, net, OptimizerConfig::sgd(0.01, 0.9), cfg)?;
        let compile_s = compile.elapsed().as_secs_f64();
        let c = t.compiled();
        let x: Vec<f32> = (0..batch * 3 * h * w)
            .map(|i| (i % 251) as f32 / 251.0 - 0.5)
            .collect();
        let y: Vec<u32> = (0..batch as u32).map(|i| (i * 7) % 1000).collect();
        c.set("image", &x)?;
        c.set_u32("labels", &y)?;
        c.set("weights", &vec![1.0; batch])?;
        let stats = c.stats().clone();
        let best = common::time_steps(&mut t, mode, 2.0, 200)?;
        let loss = t.compiled().read(t.loss_value())?[0];
        assert!(
            loss.is_finite(),
            "{}: training diverged: loss {loss}",
            zoo.name()
        );
        println!(
            "{lead} {:.2} | {:.1} | {} ({} read-only) | {} | {compile_s:.2} | {} | {} | {} | {} |",
            best * 1e3,
            batch as f64 / best,
            stats.dispatches_per_step,
            stats.read_only_dispatches,
            stats.submits_per_step,
            mb(stats.arena_bytes),
            mb(stats.naive_bytes),
            mb(stats.persistent_bytes),
            mb(stats.scratch_bytes)
        );
        if profile {
            profiles.push((zoo.name(), t.profile_step()?));
        }
    }
    for (name, p) in profiles {
        println!(
            "\n{name}, GPU time by kernel (each dispatch timed alone):\n{}",
            p.table()
        );
        if args.iter().any(|a| a == "--dispatches") {
            println!("\n{name}, every dispatch:\n{}", p.dispatch_table());
        }
    }
    Ok(())
}
