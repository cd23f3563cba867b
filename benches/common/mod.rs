//! What every bench shares: how much to run, read from the arguments, and the adapter.
//!
//! `cargo bench` passes `--bench` to a `harness = false` binary; `cargo test --all-targets` (or
//! `--benches`) runs the same binary without it. Timing there would take minutes on lavapipe,
//! so without `--bench` a bench takes one untimed pass at its smallest shape, still checking
//! its answer.
#![allow(dead_code)] // each bench includes this module and uses a part of it

use wgtrain::Device;

/// How much a bench binary runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No `--bench`: one iteration at the smallest shape, the answer checked, nothing timed.
    Smoke,
    /// `--bench --quick`: sizes and run lengths a software adapter can time.
    Quick,
    /// `--bench`: the benchmark's sizes.
    Full,
}

impl Mode {
    /// Reads `--bench` and `--quick` from the process arguments.
    pub fn from_args() -> Mode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Mode::from(&args)
    }

    /// Reads `--bench` and `--quick` from `args`; other arguments are the bench's own.
    pub fn from(args: &[String]) -> Mode {
        let has = |flag: &str| args.iter().any(|a| a == flag);
        match (has("--bench"), has("--quick")) {
            (false, _) => Mode::Smoke,
            (true, true) => Mode::Quick,
            (true, false) => Mode::Full,
        }
    }

    /// Whether timings are measured (and so worth printing as numbers).
    pub fn timed(self) -> bool {
        self != Mode::Smoke
    }

    /// `timed` repetitions per measurement when timing, one in a smoke run.
    pub fn reps(self, timed: usize) -> usize {
        if self.timed() { timed } else { 1 }
    }

    /// How many measurements to take the best of: three when timing, one in a smoke run.
    pub fn runs(self) -> usize {
        self.reps(3)
    }

    /// Says that the run is untimed, so its numbers are not read as a benchmark.
    pub fn announce(self, bench: &str) {
        if !self.timed() {
            println!(
                "{bench}: one untimed pass at the smallest size, answer checked \
                 (`cargo bench --bench {bench}` times it)"
            );
        }
    }
}

/// The best adapter, or `None` after saying the bench skipped. With `WGTRAIN_REQUIRE_GPU=1` (as
/// `.ci/run` sets) a missing adapter exits non-zero instead, as the tests fail.
pub fn device(bench: &str) -> Option<Device> {
    match Device::new() {
        Ok(d) => Some(d),
        Err(e) if std::env::var("WGTRAIN_REQUIRE_GPU").as_deref() == Ok("1") => {
            eprintln!("{bench} bench: no adapter, and WGTRAIN_REQUIRE_GPU=1: {e}");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("{bench} bench skipped: {e}");
            None
        }
    }
}

/// Seeded values in [-1, 1) as the f32 the GPU is given, and the `Array` of exactly those values
/// the f64 reference reads. Random, not constant: a constant input cannot show an indexing or
/// transpose bug.
pub fn random(shape: &[usize], seed: u64) -> (Vec<f32>, wgtrain::reference::Array) {
    let v = wgtrain::reference::Array::seeded(shape, seed).to_f32();
    let a = wgtrain::reference::Array::from_f32(shape, &v);
    (v, a)
}

/// Holds the GPU's values to the reference's, element by element:
/// `|gpu - want| <= tol·(|want| + max|want|)` (sums of f32 products cancel, so each element also
/// gets the tensor's scale); NaN fails. Panics naming the first offender, so a bench whose kernel
/// is wrong fails instead of printing a time.
pub fn assert_matches(what: &str, gpu: &[f64], want: &[f64], tol: f64) {
    if let Err(e) = matches(gpu, want, tol) {
        panic!("{what}: {e}");
    }
}

/// [`assert_matches`] as a `Result`: the largest `|gpu - want| / (|want| + max|want|)` when every
/// value is within `tol` of it, else the first offender.
pub fn matches(gpu: &[f64], want: &[f64], tol: f64) -> Result<f64, String> {
    if gpu.len() != want.len() {
        return Err(format!("{} values vs {}", gpu.len(), want.len()));
    }
    if want.is_empty() {
        return Err("nothing to check".to_string());
    }
    let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    let mut worst = 0.0f64;
    for (i, (&g, &w)) in gpu.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        if err.is_nan() || err > tol * (w.abs() + scale) {
            return Err(format!(
                "value {i}: gpu {g} vs reference {w} (err {err:.2e}, scale {scale:.2e})"
            ));
        }
        worst = worst.max(err / (w.abs() + scale).max(f64::MIN_POSITIVE));
    }
    Ok(worst)
}

/// `count` indices spread over `0..n` (all of them when `n <= count`), the same every run.
pub fn sample(n: usize, count: usize) -> Vec<usize> {
    if n <= count {
        return (0..n).collect();
    }
    // A stride coprime with n walks every residue; offsets avoid always sampling row 0.
    let mut step = n / count + 1;
    while gcd(step, n) != 1 {
        step += 1;
    }
    (0..count).map(|i| (7 + i * step) % n).collect()
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Seconds per replay of `launches`: best of 3 batches of ~0.5 s after a warm-up (one replay,
/// untimed, in a smoke run).
pub fn time(
    dev: &wgtrain::Device,
    launches: &[wgtrain::launch::Launch],
    mode: Mode,
) -> wgtrain::Result<f64> {
    let mut reps = 1;
    if mode.timed() {
        dev.run(launches)?;
        dev.wait()?;
        let t0 = std::time::Instant::now();
        dev.run(launches)?;
        dev.wait()?;
        let once = t0.elapsed().as_secs_f64();
        reps = ((0.5 / once) as usize).clamp(1, 200);
    }
    let mut best = f64::MAX;
    for _ in 0..mode.runs() {
        let t = std::time::Instant::now();
        dev.run_repeated(launches, reps)?;
        dev.wait()?;
        best = best.min(t.elapsed().as_secs_f64() / reps as f64);
    }
    Ok(best)
}

/// Seconds per training step: after 3 warm-up steps, the best of 3 runs of about `seconds`
/// each (3 to `max_reps` steps, waiting for the GPU at the end of each); one untimed step in a
/// smoke run.
pub fn time_steps(
    t: &mut wgtrain::train::Trainer,
    mode: Mode,
    seconds: f64,
    max_reps: usize,
) -> wgtrain::Result<f64> {
    let run = |t: &mut wgtrain::train::Trainer, n: usize| -> wgtrain::Result<f64> {
        let start = std::time::Instant::now();
        for _ in 0..n {
            t.step_once()?;
        }
        t.compiled().wait_all()?;
        Ok(start.elapsed().as_secs_f64() / n as f64)
    };
    if !mode.timed() {
        return run(t, 1);
    }
    run(t, 3)?;
    let once = run(t, 2)?;
    let reps = ((seconds / once) as usize).clamp(3, max_reps);
    let mut best = f64::MAX;
    for _ in 0..3 {
        best = best.min(run(t, reps)?);
    }
    Ok(best)
}

/// The argument after `flag` on the command line, if `flag` is there (empty when nothing follows
/// it, which a caller's parse then refuses).
pub fn flag_value(flag: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == flag)?;
    Some(args.get(i + 1).cloned().unwrap_or_default())
}

/// The convolutions' algorithm for this run: `--implicit-gemm` keeps every data pass off
/// Winograd (`ops::conv::winograd`), for comparing the two in one command.
pub fn conv_algo() -> wgtrain::ops::conv::winograd::ConvAlgo {
    use wgtrain::ops::conv::winograd::ConvAlgo;
    if std::env::args().any(|a| a == "--implicit-gemm") {
        ConvAlgo::ImplicitGemm
    } else {
        ConvAlgo::Auto
    }
}
