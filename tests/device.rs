//! The process keeps one device per adapter and feature set: `Device::new`, `Device::all` and
//! `Device::from_adapter` hand out clones of it (several devices used from parallel threads hung
//! in the NVIDIA driver), a different feature set is a different device, a lost device is
//! replaced, and threads sharing a device each hear only their own uncaptured errors.

use wgtrain::ops::elementwise::{BinaryOp, ElementwiseOp};
use wgtrain::{Device, Tensor};

/// The environment's device, or `None` (said on stderr) where there is no adapter, unless
/// `WGTRAIN_REQUIRE_GPU=1`, where that fails the test.
fn device(test: &str) -> Option<Device> {
    match Device::new() {
        Ok(d) => Some(d),
        Err(e) if std::env::var("WGTRAIN_REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("[{test}] no device, and WGTRAIN_REQUIRE_GPU=1: {e}")
        }
        Err(e) => {
            eprintln!("[{test}] SKIPPED: no device: {e}");
            None
        }
    }
}

/// The optional features `dev` was opened with that `Device::from_adapter_without` can leave out.
fn optional_features(dev: &Device) -> wgpu::Features {
    let c = dev.caps();
    let mut f = wgpu::Features::empty();
    for (has, feature) in [
        (c.shader_f16, wgpu::Features::SHADER_F16),
        (c.subgroup, wgpu::Features::SUBGROUP),
        (c.timestamp_query, wgpu::Features::TIMESTAMP_QUERY),
        (
            !c.cooperative_matrix.is_empty(),
            wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX,
        ),
    ] {
        if has {
            f |= feature;
        }
    }
    f
}

#[test]
fn every_way_of_opening_an_adapter_gives_the_same_device() {
    let Some(a) = device("same device") else {
        return;
    };
    let b = Device::new().unwrap();
    assert!(a.same_device(&b), "two Device::new()");
    let all: Vec<Device> = Device::all().into_iter().filter_map(Result::ok).collect();
    assert!(
        all.iter().any(|d| d.same_device(&a)),
        "Device::all() holds Device::new()'s device"
    );
    let again = Device::from_adapter(a.adapter().clone()).unwrap();
    assert!(again.same_device(&a), "from_adapter on its adapter");
    // Leaving out a feature the adapter lacks requests the same set: the same device.
    let lacking = wgpu::Features::all_webgpu_mask() & !a.adapter().features();
    if !lacking.is_empty() {
        let same = Device::from_adapter_without(a.adapter().clone(), lacking).unwrap();
        assert!(same.same_device(&a), "without {lacking:?}, which it lacks");
    }
}

#[test]
fn a_different_feature_set_is_a_different_device_shared_in_turn() {
    let Some(dev) = device("feature sets") else {
        return;
    };
    let Some(feature) = optional_features(&dev).iter().next() else {
        eprintln!("[feature sets] SKIPPED: the adapter offers no optional feature to leave out");
        return;
    };
    let without = Device::from_adapter_without(dev.adapter().clone(), feature).unwrap();
    assert!(!without.same_device(&dev), "without {feature:?}");
    let again = Device::from_adapter_without(dev.adapter().clone(), feature).unwrap();
    assert!(again.same_device(&without), "the same set twice");
    if feature == wgpu::Features::SHADER_F16 {
        assert!(dev.caps().shader_f16 && !without.caps().shader_f16);
    }
}

#[test]
fn a_lost_device_is_replaced_by_a_fresh_one() {
    let Some(dev) = device("lost device") else {
        return;
    };
    // A device of its own (every optional feature left out), so that destroying it cannot
    // break the other tests of this binary, which share the full one.
    let optional = optional_features(&dev);
    if optional.is_empty() {
        eprintln!("[lost device] SKIPPED: no feature set of its own to destroy");
        return;
    }
    let doomed = Device::from_adapter_without(dev.adapter().clone(), optional).unwrap();
    assert!(!doomed.is_lost());
    doomed.wgpu().0.destroy();
    // wgpu reports the loss once the destroyed device's queue is found empty, on a poll.
    let _ = doomed.wgpu().0.poll(wgpu::PollType::wait_indefinitely());
    assert!(doomed.is_lost(), "destroy is a loss");
    let fresh = Device::from_adapter_without(dev.adapter().clone(), optional).unwrap();
    assert!(
        !fresh.same_device(&doomed),
        "a lost device is not handed out"
    );
    assert!(!fresh.is_lost());
    let t = Tensor::from_f32(&fresh, &[3], &[1.0, 2.0, 3.0]).unwrap();
    assert_eq!(
        t.to_f32().unwrap(),
        vec![1.0, 2.0, 3.0],
        "the fresh one works"
    );
    assert!(!dev.is_lost(), "the full device was not touched");
}

#[test]
fn parallel_threads_opening_devices_share_one_and_compute_correctly() {
    let Some(first) = device("parallel opens") else {
        return;
    };
    let results: Vec<(Device, Vec<f32>)> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                s.spawn(move || {
                    let dev = Device::new().unwrap();
                    let xs: Vec<f32> = (0..64).map(|i| (i * (t + 1)) as f32).collect();
                    let x = Tensor::from_f32(&dev, &[64], &xs).unwrap();
                    let add = ElementwiseOp::Binary(BinaryOp::Add);
                    let y = wgtrain::ops::eager::run(&dev, add, &[&x, &x]).unwrap();
                    (dev, y[0].to_f32().unwrap())
                })
            })
            .collect();
        threads.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (t, (dev, y)) in results.iter().enumerate() {
        assert!(dev.same_device(&first), "thread {t} got another device");
        let want: Vec<f32> = (0..64).map(|i| (2 * i * (t + 1)) as f32).collect();
        assert_eq!(*y, want, "thread {t}");
    }
}

#[test]
fn threads_sharing_a_device_each_hear_only_their_own_uncaptured_errors() {
    let Some(dev) = device("uncaptured errors") else {
        return;
    };
    // A buffer both mappable for reading and bound as storage is invalid; made outside any
    // error scope, the error goes to the uncaptured handler, on this thread.
    let provoke = |dev: &Device| {
        dev.wgpu().0.create_buffer(&wgpu::BufferDescriptor {
            label: Some("invalid on purpose"),
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };
    dev.take_uncaptured().unwrap();
    std::thread::scope(|s| {
        let (bad, good) = (dev.clone(), dev.clone());
        let (raised_tx, raised_rx) = std::sync::mpsc::channel();
        let (checked_tx, checked_rx) = std::sync::mpsc::channel();
        s.spawn(move || {
            let _buffer = provoke(&bad);
            raised_tx.send(()).unwrap();
            // Held until the other thread has looked, so this thread has not ended (which
            // would orphan its errors to whoever takes next).
            checked_rx.recv().unwrap();
            let e = bad.take_uncaptured().expect_err("its own error");
            assert!(e.to_string().contains("invalid on purpose"), "{e}");
            bad.take_uncaptured().expect("taken once");
        });
        s.spawn(move || {
            raised_rx.recv().unwrap();
            let seen = good.take_uncaptured();
            checked_tx.send(()).unwrap();
            seen.expect("another thread's error is not this thread's");
        });
    });
}

#[test]
fn user_code_keeps_every_runtime_check_and_the_crates_kernels_drop_the_costly_ones() {
    let Some(dev) = device("runtime_checks") else {
        return;
    };
    let user = dev.runtime_checks(true);
    assert!(user.bounds_checks && user.force_loop_bounding && user.int_div_checks);
    let kernel = dev.runtime_checks(false);
    assert!(!kernel.force_loop_bounding && !kernel.int_div_checks);
    // Index clamps go only where the backend bounds every buffer access itself.
    let vulkan = dev.info().backend == wgpu::Backend::Vulkan;
    assert_eq!(kernel.bounds_checks, !vulkan, "{}", dev.name());
}
