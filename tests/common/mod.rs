//! Shared test harness: tests are written once as `fn(&Device)` and run on every adapter found.
#![allow(dead_code)]

pub mod graph_run;
pub mod update;

use wgtrain::Device;
use wgtrain::data::ImageSet;

/// Runs `f` on every adapter. With no adapter it says it skipped — unless `WGTRAIN_REQUIRE_GPU=1`
/// (set by `.ci/run`), where a missing adapter fails the test, and so does any adapter found that
/// failed to open (after `f` ran on the others). Each outcome is appended to the adapter log
/// (`adapter_log`), which `.ci/adapter_summary` turns into tests per adapter: libtest hides a
/// passing test's `[test] on <adapter>` line, so the log is what shows where the tests ran.
pub fn each_device(test: &str, f: impl Fn(&Device)) {
    let required = std::env::var("WGTRAIN_REQUIRE_GPU").as_deref() == Ok("1");
    let mut ran = 0;
    let mut failed = Vec::new();
    for d in devices() {
        match d {
            Ok(dev) => {
                eprintln!("[{test}] on {}", dev.name());
                f(&dev);
                log_adapter("ran", &dev.name(), test);
                ran += 1;
            }
            Err(e) => {
                eprintln!("[{test}] adapter failed to open: {e}");
                log_adapter("failed-to-open", &e.to_string(), test);
                failed.push(e.to_string());
            }
        }
    }
    if required && !failed.is_empty() {
        panic!(
            "[{test}] {} adapter(s) found failed to open, and WGTRAIN_REQUIRE_GPU=1: {}",
            failed.len(),
            failed.join("; ")
        );
    }
    if ran == 0 {
        log_adapter("skipped", "no adapter", test);
        if required {
            panic!("[{test}] no GPU adapter found, and WGTRAIN_REQUIRE_GPU=1");
        }
        eprintln!(
            "[{test}] SKIPPED: no GPU adapter found (install mesa-vulkan-drivers for lavapipe)"
        );
    }
}

/// Every adapter's device: the process's shared one (`Device::all`), so parallel tests use one
/// device per adapter. With a device per test, parallel tests hung in the NVIDIA driver (H200,
/// Vulkan: 20 of 58 runs of `optim`; 0 of 24 shared).
fn devices() -> Vec<wgtrain::Result<Device>> {
    Device::all()
}

/// Where `each_device` appends its `outcome<TAB>adapter<TAB>binary<TAB>test` lines:
/// `WGTRAIN_ADAPTER_LOG`, else `wgtrain-adapters.tsv` in cargo's scratch directory for tests
/// (`target/tmp`). `.ci/run` empties it before `cargo test` and summarises it after.
pub fn adapter_log() -> std::path::PathBuf {
    match std::env::var_os("WGTRAIN_ADAPTER_LOG") {
        Some(p) if !p.is_empty() => p.into(),
        _ => std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("wgtrain-adapters.tsv"),
    }
}

/// One line of the adapter log, written with one `write` on a file opened for appending (so
/// lines from parallel tests and test binaries do not interleave). A log that cannot be written
/// is said on stderr, not a failure: the test itself ran.
fn log_adapter(outcome: &str, adapter: &str, test: &str) {
    use std::io::Write as _;
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| {
            s.rsplit_once('-')
                .map_or(s.clone(), |(name, _hash)| name.to_string())
        })
        .unwrap_or_default();
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    let line = format!("{outcome}\t{}\t{binary}\t{}\n", clean(adapter), clean(test));
    let path = adapter_log();
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "[{test}] could not append to the adapter log {}: {e}",
            path.display()
        );
    }
}

/// Asserts |gpu - reference| <= atol + rtol·|reference| everywhere, naming the first offender.
/// A non-finite value passes only where the reference has the same one (NaN on both sides, the
/// same infinity): NaN compares false, so it never slips through the bound.
pub fn assert_close(what: &str, gpu: &[f32], reference: &[f64], atol: f64, rtol: f64) {
    assert_eq!(
        gpu.len(),
        reference.len(),
        "{what}: length {} vs reference {}",
        gpu.len(),
        reference.len()
    );
    for (i, (&g, &r)) in gpu.iter().zip(reference).enumerate() {
        let g = g as f64;
        let err = (g - r).abs();
        let ok = if g.is_finite() && r.is_finite() {
            err <= atol + rtol * r.abs()
        } else {
            g == r || (g.is_nan() && r.is_nan())
        };
        assert!(
            ok,
            "{what}: element {i}: gpu {g} vs reference {r} (err {err:e})"
        );
    }
}

/// [`assert_close`] under the tolerance rule (`wgtrain::reference::f32_tol`): atol = rtol = `tol`.
pub fn close_to(what: &str, gpu: &[f32], reference: &[f64], tol: f64) {
    assert_close(what, gpu, reference, tol, tol);
}

/// The first `n` images of `s` (small training runs on lavapipe).
pub fn subset(s: &ImageSet, n: usize) -> ImageSet {
    let per = s.rows * s.cols;
    ImageSet {
        images: s.images[..n * per].to_vec(),
        labels: s.labels[..n].to_vec(),
        n,
        rows: s.rows,
        cols: s.cols,
    }
}

/// Writes `feeds[name]` into every source node of `g` that `c` has (`set_u32` for u32 inputs:
/// class indices, `set` for the rest).
pub fn set_sources(
    c: &wgtrain::Compiled,
    g: &wgtrain::Graph,
    feeds: &std::collections::HashMap<String, wgtrain::reference::Array>,
) {
    for n in g.nodes.iter().filter(|n| n.op.is_source()) {
        let a = &feeds[&n.name];
        if n.outputs[0].1 == wgtrain::DType::U32 {
            let d: Vec<u32> = a.data.iter().map(|&v| v as u32).collect();
            c.set_u32(&n.name, &d).unwrap();
        } else {
            c.set(&n.name, &a.to_f32()).unwrap();
        }
    }
}

/// Mean and biased variance of consecutive chunks of `m` elements, means first: the state of
/// instance, group and layer norm, whose statistics groups are contiguous.
pub fn chunk_stats(x: &wgtrain::reference::Array, m: usize) -> Vec<f64> {
    let (mut mean, mut var) = (vec![], vec![]);
    for c in x.data.chunks(m) {
        let mu = c.iter().sum::<f64>() / m as f64;
        mean.push(mu);
        var.push(c.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / m as f64);
    }
    mean.extend(var);
    mean
}

/// Explicit convolution padding (top, bottom, left, right).
pub fn asym(top: usize, bottom: usize, left: usize, right: usize) -> wgtrain::ops::conv::Padding {
    wgtrain::ops::conv::Padding::Explicit {
        top,
        bottom,
        left,
        right,
    }
}
