//! Trains ResNet-50 or Inception v3 (the model zoo, torchvision's architectures and state-dict
//! names) for a few epochs on synthetic images, with the progress bar, after printing the
//! network's summary: every layer, the parameter count and what the compiled plan costs
//! (dispatches and submits per step, activation memory planned against the naive sum).
//!
//! ```text
//! cargo run --release --example zoo [-- resnet50|inception_v3 --batch 16 --image 75
//!                                       --width-divisor 16 --images 32 --epochs 4 --lr 0.003
//!                                       --full]
//! ```
//! The defaults (a sixteenth of the widths, 75×75 Inception or 64×64 ResNet, batch 16) train on
//! a software adapter (lavapipe) in about 30 s, even as a debug build; the loss is noisy at
//! that size (batch norm over the last blocks' 1×1 or 2×2 maps sees few values). `--full` is torchvision's network at
//! its size: all widths, 299×299 (Inception) or 224×224 (ResNet), batch 32 — a GPU's job.
//! The synthetic images are 3 classes, each with its colour channel bright, so the loss falls.

use wgtrain::Device;
use wgtrain::optim::OptimizerConfig;
use wgtrain::train::models::{InceptionSize, ResNetSize, inception_v3, resnet50};
use wgtrain::train::{InMemory, TrainConfig, Trainer};

#[path = "common/args.rs"]
mod args;
use args::arg;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// `n` images (3, side, side) of 3 classes: the class's colour channel bright, a little texture.
fn synthetic(n: usize, side: usize) -> InMemory {
    let labels: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
    let plane = side * side;
    let mut images = vec![0f32; n * 3 * plane];
    for (i, &l) in labels.iter().enumerate() {
        for c in 0..3 {
            let v = if c == l as usize { 1.0 } else { -0.5 };
            let at = (i * 3 + c) * plane;
            for (k, x) in images[at..at + plane].iter_mut().enumerate() {
                *x = v + 0.1 * ((k * 7 + i) % 5) as f32;
            }
        }
    }
    InMemory::new(n)
        .f32("image", &images)
        .u32("labels", &labels)
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    args::check(
        &args,
        1,
        &[
            "--batch",
            "--image",
            "--width-divisor",
            "--images",
            "--epochs",
            "--lr",
        ],
        &["--full"],
    )?;
    let network = match args.first().map(String::as_str) {
        None | Some("resnet50") => "resnet50",
        Some("inception_v3") => "inception_v3",
        Some(a) if a.starts_with("--") => "resnet50",
        Some(other) => {
            return Err(format!("unknown network {other:?}: resnet50 or inception_v3").into());
        }
    };
    let full = args.iter().any(|a| a == "--full");
    let inception = network == "inception_v3";
    let (default_side, default_divisor, default_batch) = match (full, inception) {
        (true, true) => (299, 1, 32),
        (true, false) => (224, 1, 32),
        (false, true) => (75, 16, 16),
        (false, false) => (64, 16, 16),
    };
    let side: usize = arg(&args, "--image", default_side)?;
    let divisor: usize = arg(&args, "--width-divisor", default_divisor)?;
    let batch: usize = arg(&args, "--batch", default_batch)?;
    let images: usize = arg(&args, "--images", 2 * batch)?;
    let cfg = TrainConfig {
        epochs: arg(&args, "--epochs", 4)?,
        batch,
        progress: true,
        log_every: 1,
        ..TrainConfig::default()
    };
    let lr: f64 = arg(&args, "--lr", 0.003)?;

    let dev = Device::new()?;
    println!("adapter: {}", dev.name());
    // Three classes: the synthetic images have three.
    let net = if inception {
        let size = InceptionSize {
            width_divisor: divisor,
            classes: 3,
            ..InceptionSize::TORCHVISION
        };
        inception_v3(batch, (side, side), size)?
    } else {
        if divisor == 0 || 64 % divisor != 0 {
            return Err(
                format!("--width-divisor {divisor}: ResNet-50 needs a divisor of 64").into(),
            );
        }
        let size = ResNetSize {
            base: 64 / divisor,
            classes: 3,
        };
        resnet50(batch, (side, side), size)?
    };
    let compile = std::time::Instant::now();
    let mut trainer = Trainer::new(&dev, net, OptimizerConfig::adam(lr), cfg.clone())?;
    println!("{}", trainer.model().summary());
    println!(
        "{network} at {side}×{side}, widths / {divisor}, batch {batch}: compiled in {:.2} s",
        compile.elapsed().as_secs_f64()
    );
    let data = synthetic(images, side);
    for _ in 0..cfg.epochs {
        let (loss, rate) = trainer.train_epoch(&data, None)?;
        println!(
            "epoch {}: loss {loss:.4}, {rate:.1} images/s",
            trainer.epoch()
        );
    }
    Ok(())
}
