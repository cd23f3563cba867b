//! A ResNet-style 3×3 convolution — batch 64, 64 → 64 channels, 56×56, stride 1, padding 1, with
//! bias — forward and backward (data + weights + bias), in ms and GFLOP/s, timed around whole
//! submits of many passes (best of 3 after a warm-up), as `benches/gemm.rs`.
//! Run: `cargo bench --bench conv` (add `-- --quick` on a software adapter: batch 2). Without
//! `--bench` (`cargo test --benches`): one untimed pass of each at batch 1, 16 channels, 14×14.
//! Its PyTorch twin is `benches/conv_torch.py`; run both on the same card (BENCHMARKS.md).

mod common;

use common::Mode;
use std::time::Instant;
use wgtrain::launch::Launch;
use wgtrain::ops::conv::gpu::{self as conv, Grads};
use wgtrain::ops::conv::{Conv2d, Padding};
use wgtrain::{DType, Device, Tensor};

/// Seconds per replay of `launches`: best of 3 batches of ~0.5 s after a warm-up (one replay,
/// untimed, in a smoke run).
fn time(dev: &Device, launches: &[Launch], mode: Mode) -> wgtrain::Result<f64> {
    let mut reps = 1;
    if mode.timed() {
        dev.run(launches)?;
        dev.wait()?;
        let t0 = Instant::now();
        dev.run(launches)?;
        dev.wait()?;
        let once = t0.elapsed().as_secs_f64();
        reps = ((0.5 / once) as usize).clamp(1, 200);
    }
    let mut best = f64::MAX;
    for _ in 0..mode.runs() {
        let t = Instant::now();
        dev.run_repeated(launches, reps)?;
        dev.wait()?;
        best = best.min(t.elapsed().as_secs_f64() / reps as f64);
    }
    Ok(best)
}

fn main() -> wgtrain::Result<()> {
    let mode = Mode::from_args();
    let Some(dev) = common::device("conv") else {
        return Ok(());
    };
    println!("{}", dev.describe());
    mode.announce("conv");
    let (n, c, hw) = match mode {
        Mode::Smoke => (1, 16, 14),
        Mode::Quick => (2, 64, 56),
        Mode::Full => (64, 64, 56),
    };
    let op = Conv2d {
        padding: Padding::symmetric(1),
        ..Conv2d::new(c, c, (3, 3))
    };
    let xs = [n, c, hw, hw];
    let x = Tensor::from_f32(&dev, &xs, &vec![0.5; n * c * hw * hw])?;
    let w = Tensor::from_f32(&dev, &op.weight_shape(), &vec![0.25; c * c * 9])?;
    let b = Tensor::from_f32(&dev, &[c], &vec![1.0; c])?;
    let y = Tensor::zeros(&dev, &op.out_shape(&xs)?, DType::F32)?;
    let dy = Tensor::from_f32(&dev, &op.out_shape(&xs)?, &vec![0.125; n * c * hw * hw])?;
    let grads = Grads {
        dx: Tensor::zeros(&dev, &xs, DType::F32)?,
        dw: Tensor::zeros(&dev, &op.weight_shape(), DType::F32)?,
        db: Some(Tensor::zeros(&dev, &[c], DType::F32)?),
    };
    let fwd = conv::forward_launches(&op, &x, &w, Some(&b), &y)?;
    let bwd = conv::backward_launches(&op, &x, &w, &dy, &grads)?;
    let t_fwd = time(&dev, &fwd.launches, mode)?;
    let t_bwd = time(&dev, &bwd.launches, mode)?;
    // Each backward dispatch alone (in order: data gradient, weight gradient [, split-K sum], bias).
    let mut parts = Vec::new();
    for i in 0..bwd.launches.len() {
        let l = &bwd.launches[i..i + 1];
        parts.push(format!("{:?} {:.3} ms", l[0], time(&dev, l, mode)? * 1e3));
    }

    // Check the answers so a fast wrong kernel cannot pass. Interior pixels see all 9 taps.
    let at = |t: &Tensor, i: usize| t.to_f32().map(|v| v[i]);
    let centre = (hw / 2) * hw + hw / 2; // an interior pixel of plane 0
    let taps = (c * 9) as f32;
    let checks = [
        ("y", at(&y, centre)?, taps * 0.5 * 0.25 + 1.0),
        ("dx", at(&grads.dx, centre)?, taps * 0.125 * 0.25),
        // the centre tap of dw sees every output pixel
        ("dw", at(&grads.dw, 4)?, (n * hw * hw) as f32 * 0.125 * 0.5),
        (
            "db",
            at(grads.db.as_ref().unwrap(), 0)?,
            (n * hw * hw) as f32 * 0.125,
        ),
    ];
    for (what, got, want) in checks {
        assert!(
            (got - want).abs() <= 1e-3 * want.abs(),
            "conv bench {what}: {got} vs {want}"
        );
    }

    // 2·N·OH·OW·C_out·C_in·9 per pass; backward does two such passes (dx, dw).
    let flop = 2.0 * (n * hw * hw * c * c * 9) as f64;
    println!("\nconv 3x3, N={n}, {c}->{c} ch, {hw}x{hw}, stride 1, pad 1, bias");
    println!("| pass | ms | GFLOP/s |");
    println!("|---|---|---|");
    println!(
        "| forward | {:.3} | {:.1} |",
        t_fwd * 1e3,
        flop / t_fwd / 1e9
    );
    println!(
        "| backward (data + weights + bias) | {:.3} | {:.1} |",
        t_bwd * 1e3,
        2.0 * flop / t_bwd / 1e9
    );
    println!("\nbackward dispatches: {}", parts.join(", "));
    Ok(())
}
