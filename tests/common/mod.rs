//! Shared test harness: tests are written once as `fn(&Device)` and run on every adapter found.
#![allow(dead_code)]

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
