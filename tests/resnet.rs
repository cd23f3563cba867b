//! ResNet-50 (`train::models::resnet50`): torchvision's state-dict names and shapes exactly, the
//! loss and gradients of a narrow one against the CPU reference, and a few training steps lower
//! its loss.

mod common;
#[path = "common/zoo.rs"]
mod zoo;

use common::each_device;
use wgtrain::optim::OptimizerConfig;
use wgtrain::reference::f32_tol;
use wgtrain::train::models::{ResNetSize, resnet50};
use wgtrain::train::{TrainConfig, Trainer};

/// `name shape` lines written by `torchvision.models.resnet50().state_dict()`
/// (`scripts/zoo_state_dict.py`, torchvision on the device machine).
const FIXTURE: &str = include_str!("fixtures/resnet50_state_dict.txt");

#[test]
fn resnet50_has_torchvision_state_dict_names_and_shapes() {
    let net = resnet50(1, (224, 224), ResNetSize::TORCHVISION).unwrap();
    assert_eq!(zoo::torchvision_keys(FIXTURE).len(), 267);
    let params = zoo::assert_state_dict(&net, FIXTURE);
    assert_eq!(params, 25_557_032, "torchvision's resnet50 parameter count");
    assert_eq!(net.graph.shape(net.output).unwrap(), &[1, 1000]);
}

#[test]
fn a_narrow_resnet50_matches_the_reference() {
    let size = ResNetSize {
        base: 2,
        classes: 3,
    };
    // Its training plan puts the intermediates in two arenas (a node reads one and writes the
    // other), so the comparison below runs through both.
    let mut probe = resnet50(2, (32, 32), size).unwrap();
    let tr = probe.graph.training(probe.loss).unwrap();
    let opts = wgtrain::Options {
        training: Some(&tr),
        ..wgtrain::Options::default()
    };
    let plan = probe.graph.plan_arena(&[probe.loss], &opts, 256).unwrap();
    assert!(plan.largest_arena_bytes < plan.arena_bytes, "{plan:?}");
    let net = resnet50(2, (32, 32), size).unwrap();
    // The loss, and the gradients of the first and last layers and of a residual block's norm.
    let picked = [
        "conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer4.2.bn3.weight",
        "fc.weight",
    ];
    // Batch norm over 2×1×1 values in layer4 (statistics of two numbers) amplifies f32
    // rounding through 53 layers: conv1's gradient is off by 1.7e-3 of its size (lavapipe),
    // ten times the rule for sums of 4,096; a wrong kernel is off by far more.
    let tol = 10.0 * f32_tol(4096);
    zoo::assert_matches_reference("resnet50 narrow", net, size.classes, &picked, tol);
}

#[test]
fn a_narrow_resnet50_trains() {
    let data = zoo::bright_channel_images(16, (32, 32));
    each_device("resnet50 trains", |dev| {
        let size = ResNetSize {
            base: 4,
            classes: 3,
        };
        let net = resnet50(8, (32, 32), size).unwrap();
        let cfg = TrainConfig {
            epochs: 1,
            batch: 8,
            progress: false,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(dev, net, OptimizerConfig::adam(0.01), cfg).unwrap();
        let stats = t.compiled().stats().clone();
        eprintln!(
            "resnet50 base 4: {} dispatches ({} read-only), {} submit(s) per step; activations {:.2} MB planned, {:.2} MB naive",
            stats.dispatches_per_step,
            stats.read_only_dispatches,
            stats.submits_per_step,
            stats.arena_bytes as f64 / 1e6,
            stats.naive_bytes as f64 / 1e6
        );
        assert_eq!(stats.submits_per_step, 1);
        assert!(stats.arena_bytes < stats.naive_bytes);
        // Launches reading one arena and writing the other keep read-only bindings: more than
        // half of them with two arenas (268 of 399 on lavapipe), some (the weight gradients,
        // written outside the arenas) with one.
        let mut probe = resnet50(8, (32, 32), size).unwrap();
        let tr = probe.graph.training(probe.loss).unwrap();
        let opts = wgtrain::Options {
            training: Some(&tr),
            ..wgtrain::Options::default()
        };
        let align = dev.caps().storage_offset_alignment as u64;
        let plan = probe.graph.plan_arena(&[probe.loss], &opts, align).unwrap();
        let two = plan.largest_arena_bytes < plan.arena_bytes;
        eprintln!("two arenas: {two}");
        if two {
            assert!(
                2 * stats.read_only_dispatches > stats.dispatches_per_step,
                "{stats:?}"
            );
        } else {
            assert!(stats.read_only_dispatches > 0, "{stats:?}");
        }
        // Batch norm over 8 images makes single epochs noisy (a change in summation order moves
        // the trajectory): the best of the later epochs must be well below the first.
        let (first, _) = t.train_epoch(&data, None).unwrap();
        let later: Vec<f64> = (0..5)
            .map(|_| t.train_epoch(&data, None).unwrap().0)
            .collect();
        let best = later.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(best < 0.7 * first, "loss {first} -> {later:?}");
    });
}
