//! Shared test harness: tests are written once as `fn(&Device)` and run on every adapter found.
#![allow(dead_code)]

pub mod update;

use wgtrain::Device;
use wgtrain::data::ImageSet;

/// Runs `f` on every adapter. With no adapter it says it skipped — unless `WGTRAIN_REQUIRE_GPU=1`
/// (set by `.ci/run`), where a missing adapter fails the test.
pub fn each_device(test: &str, f: impl Fn(&Device)) {
    let devices = Device::all();
    let mut ran = 0;
    for d in devices {
        match d {
            Ok(dev) => {
                eprintln!("[{test}] on {}", dev.name());
                f(&dev);
                ran += 1;
            }
            Err(e) => eprintln!("[{test}] adapter failed to open: {e}"),
        }
    }
    if ran == 0 {
        if std::env::var("WGTRAIN_REQUIRE_GPU").as_deref() == Ok("1") {
            panic!("[{test}] no GPU adapter found, and WGTRAIN_REQUIRE_GPU=1");
        }
        eprintln!(
            "[{test}] SKIPPED: no GPU adapter found (install mesa-vulkan-drivers for lavapipe)"
        );
    }
}

/// Asserts |gpu - reference| <= atol + rtol·|reference| everywhere, naming the first offender.
pub fn assert_close(what: &str, gpu: &[f32], reference: &[f64], atol: f64, rtol: f64) {
    assert_eq!(
        gpu.len(),
        reference.len(),
        "{what}: length {} vs reference {}",
        gpu.len(),
        reference.len()
    );
    for (i, (&g, &r)) in gpu.iter().zip(reference).enumerate() {
        let err = (g as f64 - r).abs();
        assert!(
            err <= atol + rtol * r.abs() && g.is_finite() == r.is_finite(),
            "{what}: element {i}: gpu {g} vs reference {r} (err {err:e})"
        );
    }
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
