//! µs per op, forward and forward + backward, for every sample of every op family (the cases
//! `tests/conformance.rs` checks, `wgtrain::ops::FAMILIES`) at a larger size: each sample's
//! shapes grown by its size multiplier. Prints a markdown table.
//!
//! Run: `cargo bench --bench ops` (multiplier 8). On a software adapter add `-- --quick`
//! (multiplier 2, shorter timing). `-- --scale N` sets the multiplier; any other argument keeps
//! only the samples whose name contains it (`-- conv/ --quick`). Without `--bench` (`cargo test
//! --benches`): each sample once at multiplier 1, untimed, and a sample that fails is an error.
//!
//! Each graph is compiled once; a measurement encodes `reps` steps (one submit each) and waits
//! for the last, µs = elapsed / reps; the best of 3 is reported. Backward is the whole training
//! step of `sum(y ⊙ dy)`: the forward plus the gradients of every differentiable input.

mod common;

use common::Mode;
use std::collections::HashMap;
use std::time::Instant;

use wgtrain::compile::Compiled;
use wgtrain::graph::{Graph, Value};
use wgtrain::ops::Sample;
use wgtrain::ops::elementwise::BinaryOp;
use wgtrain::reference::Array;
use wgtrain::{DType, Device};

struct Timing {
    us: f64,
    dispatches: usize,
}

fn feed(c: &Compiled, g: &Graph, feeds: &HashMap<String, Array>) -> wgtrain::Result<()> {
    for n in g.nodes.iter().filter(|n| n.op.is_source()) {
        let a = &feeds[&n.name];
        if n.outputs[0].1 == DType::U32 {
            c.set_u32(
                &n.name,
                &a.data.iter().map(|&v| v as u32).collect::<Vec<_>>(),
            )?;
        } else {
            c.set(&n.name, &a.to_f32())?;
        }
    }
    Ok(())
}

/// Compiles `g` for `outs`, feeds it and times its step.
fn time(
    dev: &Device,
    g: &Graph,
    outs: &[Value],
    feeds: &HashMap<String, Array>,
    budget_s: f64,
    mode: Mode,
) -> wgtrain::Result<Timing> {
    let c = g.compile(dev, outs, &Default::default())?;
    feed(&c, g, feeds)?;
    let mut reps = 1;
    if mode.timed() {
        c.step()?; // warm-up: pipelines, first-touch allocations
        let t = Instant::now();
        c.step()?;
        let once = t.elapsed().as_secs_f64();
        reps = ((budget_s / once) as usize).clamp(1, 200);
    }
    let mut best = f64::MAX;
    for _ in 0..mode.runs() {
        let t = Instant::now();
        let mut last = None;
        for _ in 0..reps {
            last = Some(c.encode_step()?);
        }
        if let Some(h) = last {
            h.wait()?;
        }
        dev.wait()?;
        best = best.min(t.elapsed().as_secs_f64() / reps as f64);
    }
    Ok(Timing {
        us: best * 1e6,
        dispatches: c.stats().dispatches_per_step,
    })
}

/// (shape of y, forward timing, forward + backward timing or None without differentiable
/// inputs).
fn bench(
    dev: &Device,
    s: &Sample,
    scale: usize,
    budget_s: f64,
    mode: Mode,
) -> wgtrain::Result<(Vec<usize>, Timing, Option<Timing>)> {
    let (mut g, y) = s.graph(scale)?;
    let mut feeds = s.feeds(&g);
    let shape = g.shape(y).unwrap().to_vec();
    let fwd = time(dev, &g, &[y], &feeds, budget_s, mode)?;
    let wrt = s.wrt(&g);
    if wrt.is_empty() {
        return Ok((shape, fwd, None));
    }
    let dy = g.input("__dy", &shape)?;
    let p = g.binary("__p", BinaryOp::Mul, y, dy)?;
    feeds.insert("__dy".into(), Array::seeded(&shape, 4242));
    let mut outs = vec![y];
    outs.extend(g.gradients(p, &wrt)?);
    let bwd = time(dev, &g, &outs, &feeds, budget_s, mode)?;
    Ok((shape, fwd, Some(bwd)))
}

fn main() -> wgtrain::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = Mode::from(&args);
    let mut scale = match mode {
        Mode::Smoke => 1,
        Mode::Quick => 2,
        Mode::Full => 8,
    };
    let mut filters = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--scale" => {
                scale = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--scale takes a positive integer");
            }
            "--quick" | "--bench" => {}
            f => filters.push(f.to_string()),
        }
    }
    let Some(dev) = common::device("ops") else {
        return Ok(());
    };
    let budget_s = if mode == Mode::Full { 0.25 } else { 0.05 };
    println!("{}", dev.describe());
    mode.announce("ops");
    println!("size multiplier {scale}\n");
    // The GPU's clocks ramp up under load: time the first sample for a while before the table
    // so its first rows are not slower than the rest.
    if let (true, Some(first)) = (mode.timed(), wgtrain::ops::all_samples().first()) {
        for _ in 0..4 {
            bench(&dev, first, scale, budget_s, mode)?;
        }
    }
    let mut failed = 0;
    println!("| op | output | forward µs | dispatches | forward + backward µs | dispatches |");
    println!("|---|---|---|---|---|---|");
    for s in wgtrain::ops::all_samples() {
        if !filters.is_empty() && !filters.iter().any(|f| s.name.contains(f.as_str())) {
            continue;
        }
        match bench(&dev, &s, scale, budget_s, mode) {
            Ok((shape, f, b)) => {
                let (bus, bd) = b.map_or(("—".into(), "—".into()), |b| {
                    (format!("{:.1}", b.us), b.dispatches.to_string())
                });
                println!(
                    "| {} | {shape:?} | {:.1} | {} | {bus} | {bd} |",
                    s.name, f.us, f.dispatches
                );
            }
            Err(e) => {
                println!("| {} | error: {e} | | | | |", s.name);
                failed += 1;
            }
        }
    }
    // At a large multiplier a sample may exceed the adapter's limits; at multiplier 1 (the
    // conformance tests' size) every sample must run.
    if !mode.timed() && failed > 0 {
        eprintln!("ops bench: {failed} samples failed at multiplier 1");
        std::process::exit(1);
    }
    Ok(())
}
