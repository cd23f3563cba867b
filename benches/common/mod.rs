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
