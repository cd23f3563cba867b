//! Weight residency: a graph with several large fully connected layers, run with every weight
//! resident and with just-in-time weights (one slot, loaded right before each layer) — forward
//! only, then training with Adam (just-in-time: gradients as intermediates, Adam's moments on the
//! host, one parameter updated at a time). Reports GPU bytes and ms per step for each.
//! Timing: best of three runs. PyTorch twin (resident only): `benches/residency_torch.py`.
//! Run: `cargo bench --bench residency [-- --quick]`. Without `--bench` (`cargo test --benches`):
//! one untimed step of each at 2 layers of 64×64, batch 4, both modes still compared.

mod common;

use common::Mode;
use std::time::Instant;

use wgtrain::compile::{Options, Residency};
use wgtrain::graph::Graph;
use wgtrain::ops::dense::FullyConnected;
use wgtrain::ops::elementwise::UnaryOp;
use wgtrain::optim::{Algorithm, Optimizer, OptimizerConfig, ParamGroup};
use wgtrain::{Device, Result};

fn main() -> Result<()> {
    let mode = Mode::from_args();
    let (width, layers, batch) = match mode {
        Mode::Smoke => (64, 2, 4),
        Mode::Quick => (512, 4, 16),
        Mode::Full => (4096, 6, 256),
    };
    let Some(dev) = common::device("residency") else {
        return Ok(());
    };
    mode.announce("residency");
    let mut g = Graph::new();
    let mut h = g.input("x", &[batch, width])?;
    for l in 0..layers {
        h = g.dense(&format!("fc{l}"), h, FullyConnected::new(width, width))?;
        h = g.unary(&format!("act{l}"), UnaryOp::Tanh, h)?;
    }
    println!(
        "adapter: {}; {layers} layers of {width}×{width}, batch {batch}",
        dev.name()
    );
    println!("| residency | weights on GPU | submits/step | ms/step |");
    println!("|---|---|---|---|");
    let mut outputs = Vec::new();
    for jit in [false, true] {
        let c = g.compile(
            &dev,
            &[h],
            &Options {
                residency: if jit {
                    Residency::JustInTime
                } else {
                    Residency::Resident
                },
                ..Options::default()
            },
        )?;
        feed(&c, layers, width, batch)?;
        c.step()?;
        let reps = mode.reps(if mode == Mode::Quick { 5 } else { 50 });
        let ms = best_ms(mode, reps, || c.encode_step().map(|_| ()), || c.wait_all())?;
        let s = c.stats();
        let name = if jit { "just-in-time" } else { "resident" };
        println!(
            "| {name} | {:.2} MB | {} | {ms:.3} |",
            s.weight_bytes as f64 / 1e6,
            s.submits_per_step
        );
        outputs.push(c.read(h)?);
    }
    assert_eq!(
        outputs[0], outputs[1],
        "both residency modes must compute the same outputs"
    );
    train(&dev, &g, h, mode, layers, width, batch)
}

/// The input and every layer's weights (the same in every mode).
fn feed(c: &wgtrain::compile::Compiled, layers: usize, width: usize, batch: usize) -> Result<()> {
    c.set("x", &vec![0.01; batch * width])?;
    let w: Vec<f32> = (0..width * width)
        .map(|i| ((i % 13) as f32 - 6.0) * 1e-3)
        .collect();
    for l in 0..layers {
        c.set(&format!("fc{l}.weight"), &w)?;
        c.set(&format!("fc{l}.bias"), &vec![0.001; width])?;
    }
    Ok(())
}

/// Best of three runs of `reps` steps (one run in a smoke run), in ms per step (`wait` ends each
/// run).
fn best_ms(
    mode: Mode,
    reps: usize,
    mut step: impl FnMut() -> Result<()>,
    wait: impl Fn() -> Result<()>,
) -> Result<f64> {
    let mut best = f64::MAX;
    for _ in 0..mode.runs() {
        let t = Instant::now();
        for _ in 0..reps {
            step()?;
        }
        wait()?;
        best = best.min(t.elapsed().as_secs_f64() * 1e3 / reps as f64);
    }
    Ok(best)
}

/// Training steps (Adam) in both modes: bytes of weights + gradients + optimizer state on the
/// GPU, everything on the GPU (adding activations, inputs), ms per step.
fn train(
    dev: &Device,
    g: &Graph,
    h: wgtrain::graph::Value,
    mode: Mode,
    layers: usize,
    width: usize,
    batch: usize,
) -> Result<()> {
    let mut g = g.clone();
    let sq = g.unary("sq", UnaryOp::Square, h)?;
    let loss = g.sum("loss", sq, 1)?;
    let tr = g.training(loss)?;
    println!();
    println!("training (Adam), {layers} layers of {width}×{width}, batch {batch}");
    println!(
        "| residency | weights + grads + Adam state on GPU | all GPU memory | submits/step | ms/step |"
    );
    println!("|---|---|---|---|---|");
    let mut weights = Vec::new();
    for jit in [false, true] {
        let mut c = g.compile(
            dev,
            &[loss],
            &Options {
                training: Some(&tr),
                residency: if jit {
                    Residency::JustInTime
                } else {
                    Residency::Resident
                },
                ..Options::default()
            },
        )?;
        feed(&c, layers, width, batch)?;
        let layout = c.param_layout().expect("training graph").clone();
        let groups = vec![ParamGroup::range(0..layout.len())];
        let config = OptimizerConfig::new(Algorithm::adam(), 1e-4);
        let mut opt = if jit {
            let opt = Optimizer::just_in_time(dev, config, groups, &layout)?;
            c.attach_optimizer(&opt)?;
            opt
        } else {
            let a = c.param_arena().expect("resident training graph").clone();
            let opt = Optimizer::new(dev, config, groups, layout.len())?;
            c.set_update(opt.launches(&a.params, &a.grads)?, None);
            opt
        };
        opt.prepare_step()?;
        c.step()?;
        // After one step both modes must hold the same weights (later runs differ in length).
        weights.push(wgtrain::weights::ParamStore::read_all(&c)?);
        let reps = match (mode, jit) {
            (Mode::Smoke, _) => 1,
            (Mode::Quick, _) => 3,
            (Mode::Full, true) => 5,
            (Mode::Full, false) => 20,
        };
        let opt = std::cell::RefCell::new(opt);
        let ms = best_ms(
            mode,
            reps,
            || {
                opt.borrow_mut().prepare_step()?;
                c.encode_step().map(|_| ())
            },
            || c.wait_all(),
        )?;
        let opt = opt.into_inner();
        let s = c.stats();
        let (params, all) = if jit {
            (
                s.weight_bytes,
                s.weight_bytes + s.arena_bytes + s.persistent_bytes,
            )
        } else {
            let p = s.persistent_bytes + opt.gpu_state_bytes();
            (
                2 * layout.len() as u64 * 4 + opt.gpu_state_bytes(),
                p + s.arena_bytes,
            )
        };
        let name = if jit { "just-in-time" } else { "resident" };
        println!(
            "| {name} | {:.2} MB | {:.2} MB | {} | {ms:.2} |",
            params as f64 / 1e6,
            all as f64 / 1e6,
            s.submits_per_step
        );
    }
    assert!(
        weights[0]
            .iter()
            .zip(&weights[1])
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "both residency modes must train one step to the same weights"
    );
    Ok(())
}
