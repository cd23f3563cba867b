//! Weight residency: a forward graph with several large fully connected layers, run with every
//! weight resident and with just-in-time weights (one slot, loaded right before each layer).
//! Reports weight bytes on the GPU and ms per step for both.
//! Run: `cargo bench --bench residency [-- --quick]`.

use std::time::Instant;

use wgtrain::graph::{Graph, Options};
use wgtrain::kernels::elementwise::UnaryOp;
use wgtrain::ops::dense::FullyConnected;
use wgtrain::{Device, Result};

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let (width, layers, batch) = if quick { (512, 4, 16) } else { (4096, 6, 256) };
    let dev = match Device::new() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("residency bench skipped: {e}");
            return Ok(());
        }
    };
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
        let c = g.compile_with(
            &dev,
            &[h],
            &Options {
                just_in_time: jit,
                ..Options::default()
            },
        )?;
        c.set("x", &vec![0.01; batch * width])?;
        for l in 0..layers {
            let w: Vec<f32> = (0..width * width)
                .map(|i| ((i % 13) as f32 - 6.0) * 1e-3)
                .collect();
            c.set(&format!("fc{l}.weight"), &w)?;
            c.set(&format!("fc{l}.bias"), &vec![0.001; width])?;
        }
        c.step()?;
        let reps = if quick { 5 } else { 50 };
        let t = Instant::now();
        for _ in 0..reps {
            c.encode_step()?;
        }
        c.wait_all()?;
        let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
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
    Ok(())
}
