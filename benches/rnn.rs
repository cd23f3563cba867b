//! ms per training step and sequences/s of a one-layer LSTM and a one-layer GRU at T = 20,
//! batch 64, input 256, hidden 256: the forward over the whole sequence, MSE against a fixed
//! random target on every output, backpropagation through time and Adam, replayed as one submit
//! per step with two steps in flight (as the Trainer runs). Also the compiled plan (dispatches
//! and submits per step). Timing: best of 3 runs of ~1 s. Twin: `benches/rnn_torch.py` (cuDNN,
//! eager and CUDA graph, same sizes).
//!
//! Before any timing the answer is checked: the loss and the gradients of x and of every
//! parameter of a small case (T = 3, N = 2, I = 5, H = 7) on random values against the f64
//! reference (`Graph::eval_reference`). A mismatch exits non-zero before a number is printed.
//!
//! Run: `cargo bench --bench rnn` (add `-- --quick` on a software adapter: batch 8, 32 units,
//! shorter runs). A built binary times only when given `--bench` (`.bin/rnn --bench`, as
//! `cargo bench` passes it): without it — `cargo test --all-targets` runs benches that way — it
//! checks the answer and takes one step at tiny sizes, so CI stays fast.

mod common;

use common::Mode;
use std::collections::HashMap;
use std::time::Instant;

use wgtrain::Device;
use wgtrain::compile::{Compiled, Options};
use wgtrain::graph::{Graph, Value};
use wgtrain::ops::loss::{Loss, LossKind, Reduction};
use wgtrain::ops::recurrent::{Cell, RecurrentLayers};
use wgtrain::optim::{Algorithm, Optimizer, OptimizerConfig, ParamGroup};
use wgtrain::reference::Array;
use wgtrain::weights::Init;

/// Sequence length, batch, input features, hidden units.
#[derive(Clone, Copy)]
struct Size {
    t: usize,
    n: usize,
    i: usize,
    h: usize,
}

/// The benchmark's size (the twin uses the same).
const FULL: Size = Size {
    t: 20,
    n: 64,
    i: 256,
    h: 256,
};
/// `--quick`: small enough for lavapipe on two cores.
const QUICK: Size = Size {
    t: 20,
    n: 8,
    i: 32,
    h: 32,
};
/// The answer check's size, and the size of the one step taken without `--bench`: odd sizes so
/// an indexing slip cannot hide behind a multiple of the tile.
const CHECK: Size = Size {
    t: 3,
    n: 2,
    i: 5,
    h: 7,
};

/// A one-layer `cell` over `x (T, N, I)` and its MSE (mean over every element, PyTorch's
/// `MSELoss()`) against `target (T, N, H)`: the graph, x and the loss.
fn build(cell: Cell, s: Size) -> wgtrain::Result<(Graph, Value, Value)> {
    let mut g = Graph::new();
    let x = g.input("x", &[s.t, s.n, s.i])?;
    let target = g.input("target", &[s.t, s.n, s.h])?;
    let y = g
        .recurrent(cell.name(), cell, x, RecurrentLayers::new(s.h))?
        .y;
    // The loss reads dimension 0 as the batch: T rows of N·H values, each row's mean then the
    // mean over rows, i.e. the mean over all of y, as PyTorch's `MSELoss()`.
    let mse = Loss::new(LossKind::MeanSquaredError, Reduction::Mean)?;
    let loss = g.loss("loss", y, target, None, mse)?;
    Ok((g, x, loss))
}

/// Compares the GPU's loss and gradients with the f64 reference on random values: the worst
/// error relative to the largest reference value of its output, or `Err(what)` naming the first
/// value out of tolerance.
fn check(dev: &Device, cell: Cell) -> wgtrain::Result<std::result::Result<f64, String>> {
    let (mut g, x, loss) = build(cell, CHECK)?;
    let wrt: Vec<Value> = std::iter::once(x).chain(g.params()).collect();
    let mut outs = vec![loss];
    outs.extend(g.gradients(loss, &wrt)?);
    let c = g.compile(dev, &outs, &Options::default())?;
    let mut feeds = HashMap::new();
    for (k, n) in g.nodes.iter().enumerate().filter(|(_, n)| n.op.is_source()) {
        let shape = &n.outputs[0].0;
        // Rounded to f32 first, so the reference sees exactly what the GPU sees.
        let a = Array::seeded(shape, 17 + k as u64).to_f32();
        c.set(&n.name, &a)?;
        feeds.insert(n.name.clone(), Array::from_f32(shape, &a));
    }
    c.step()?;
    let want = g.eval_reference(&feeds, &outs)?;
    let mut worst = 0f64;
    for (v, w) in outs.iter().zip(&want) {
        let got = c.read(*v)?;
        let name = &g.node(*v).unwrap().name;
        // Relative to the output's scale, not each element: the gradients of a mean are ~1e-3
        // and some elements cancel to near zero. f32 against f64 over a few dozen terms is off
        // by ~5e-7 of the scale (lavapipe and an H200); one of the 196 LSTM weights off by 0.01
        // already gives 6e-5, a wrong kernel far more.
        // (a NaN in the reference must not vanish from the scale: f64::max drops it)
        let scale = if w.data.iter().any(|v| v.is_nan()) {
            f64::NAN
        } else {
            w.data.iter().fold(1e-30f64, |m, v| m.max(v.abs()))
        };
        for (k, (&a, &b)) in got.iter().zip(&w.data).enumerate() {
            let err = (a as f64 - b).abs() / scale;
            if err.is_nan() || err > 2e-5 {
                return Ok(Err(format!(
                    "{name:?}[{k}]: gpu {a} vs reference {b} (error {err:.1e} of the largest \
                     value, {scale:.3e})"
                )));
            }
            worst = worst.max(err);
        }
    }
    Ok(Ok(worst))
}

/// Steps `n` times (optimizer values prepared, one submit each, two in flight) and waits;
/// seconds per step.
fn run(c: &Compiled, opt: &mut Optimizer, n: usize) -> wgtrain::Result<f64> {
    let start = Instant::now();
    for _ in 0..n {
        opt.prepare_step()?;
        c.encode_step()?;
    }
    c.wait_all()?;
    Ok(start.elapsed().as_secs_f64() / n as f64)
}

/// Times the training step of `cell` at `s` (`budget_s` of steps per run, best of 3; one step
/// when `budget_s` is 0) and prints its table row.
fn bench(
    dev: &Device,
    cell: Cell,
    s: Size,
    budget_s: f64,
    profile: bool,
) -> wgtrain::Result<Option<wgtrain::compile::Profile>> {
    let (mut g, _, loss) = build(cell, s)?;
    let training = g.training(loss)?;
    let opts = Options {
        training: Some(&training),
        ..Options::default()
    };
    let mut c = g.compile(dev, &[loss], &opts)?;
    let layout = c
        .param_layout()
        .expect("a training compile has a layout")
        .clone();
    // PyTorch initialises every recurrent weight and bias U(±1/√H) (`default_init` knows only
    // `.weight` names and would leave these at zero).
    let k = 1.0 / (s.h as f64).sqrt();
    let init = Init::Uniform { low: -k, high: k };
    for e in layout.entries() {
        c.set(&e.name, &init.values(&e.name, &e.shape, 0)?)?;
    }
    c.set("x", &Array::seeded(&[s.t, s.n, s.i], 1).to_f32())?;
    c.set("target", &Array::seeded(&[s.t, s.n, s.h], 2).to_f32())?;
    let config = OptimizerConfig::new(Algorithm::adam(), 1e-3);
    let mut opt = c.optimizer(config, vec![ParamGroup::range(0..layout.len())])?;
    c.attach_optimizer(&opt)?;
    let stats = c.stats().clone();
    // The loss a step reads is computed before that step's update: the initial weights' loss.
    let once = run(&c, &mut opt, 1)?;
    let first = c.read(loss)?[0];
    let best = if budget_s == 0.0 {
        once
    } else {
        run(&c, &mut opt, 3)?; // pipelines and clocks warm
        let once = run(&c, &mut opt, 2)?;
        let reps = ((budget_s / once) as usize).clamp(3, 5000);
        let mut best = f64::MAX;
        for _ in 0..3 {
            best = best.min(run(&c, &mut opt, reps)?);
        }
        best
    };
    let last = c.read(loss)?[0];
    if !first.is_finite() || !last.is_finite() {
        return Err(wgtrain::Error::Invalid(format!(
            "{}: training diverged, loss {first} -> {last}",
            cell.name()
        )));
    }
    println!(
        "| {} | {} | {} | {} | {} | {:.3} | {:.0} | {} | {} | {first:.4} → {last:.4} |",
        cell.name(),
        s.t,
        s.n,
        s.i,
        s.h,
        best * 1e3,
        s.n as f64 / best,
        stats.dispatches_per_step,
        stats.submits_per_step,
    );
    if profile {
        opt.prepare_step()?;
        return Ok(Some(c.profile_step()?));
    }
    Ok(None)
}

fn main() -> wgtrain::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = Mode::from(&args);
    // --profile: after the table, where each cell's step spends its GPU time, by kernel.
    let profile = args.iter().any(|a| a == "--profile");
    let Some(dev) = common::device("rnn") else {
        return Ok(());
    };
    println!("adapter: {}", dev.describe());
    let cells = [Cell::Lstm, Cell::Gru];
    for cell in cells {
        match check(&dev, cell)? {
            Ok(worst) => println!(
                "{}: loss and gradients of x and of every parameter match the f64 reference \
                 (T {}, N {}, I {}, H {}; worst error {worst:.1e} of the largest value)",
                cell.name(),
                CHECK.t,
                CHECK.n,
                CHECK.i,
                CHECK.h
            ),
            Err(what) => {
                eprintln!(
                    "rnn bench: the {} step does not match the f64 reference: {what}",
                    cell.name()
                );
                std::process::exit(1);
            }
        }
    }
    mode.announce("rnn");
    let (size, budget_s) = match mode {
        Mode::Smoke => (CHECK, 0.0),
        Mode::Quick => (QUICK, 0.3),
        Mode::Full => (FULL, 1.0),
    };
    println!(
        "| cell | T | batch | input | hidden | ms/step | sequences/s | dispatches/step | submits/step | loss first → last |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut profiles = vec![];
    for cell in cells {
        if let Some(p) = bench(&dev, cell, size, budget_s, profile)? {
            profiles.push((cell, p));
        }
    }
    for (cell, p) in profiles {
        println!(
            "\n{} step, GPU time by kernel (each dispatch timed alone):\n{}",
            cell.name(),
            p.table()
        );
    }
    Ok(())
}
