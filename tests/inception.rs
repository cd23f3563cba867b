//! Inception v3 (`train::models::inception_v3`): torchvision's state-dict names and shapes
//! exactly, the loss and gradients of a narrow one at 107×107 against the CPU reference, and a few
//! training steps lower its loss.

mod common;
#[path = "common/zoo.rs"]
mod zoo;

use common::each_device;
use wgtrain::optim::OptimizerConfig;
use wgtrain::reference::f32_tol;
use wgtrain::train::models::{InceptionSize, inception_v3};
use wgtrain::train::{TrainConfig, Trainer};

/// `name shape` lines of `torchvision.models.inception_v3(aux_logits=False,
/// init_weights=False).state_dict()`, from `scripts/zoo_state_dict.py` (first written from its
/// transcription of torchvision's source; with torchvision installed the script checks both).
const FIXTURE: &str = include_str!("fixtures/inception_v3_state_dict.txt");

/// A narrow Inception v3: every channel count divided by 16 (Mixed_7c ends with 128), no dropout
/// (the reference comparisons need a deterministic graph).
const NARROW: InceptionSize = InceptionSize {
    width_divisor: 16,
    classes: 3,
    dropout: None,
};

#[test]
fn inception_v3_has_torchvision_state_dict_names_and_shapes() {
    let net = inception_v3(1, (299, 299), InceptionSize::TORCHVISION).unwrap();
    // 94 BasicConv2d (a weight and four norm tensors each) and fc's two.
    assert_eq!(zoo::torchvision_keys(FIXTURE).len(), 94 * 5 + 2);
    let params = zoo::assert_state_dict(&net, FIXTURE);
    assert_eq!(
        params, 23_834_568,
        "torchvision's inception_v3 without AuxLogits"
    );
    assert_eq!(net.graph.shape(net.output).unwrap(), &[1, 1000]);
    let mixed_7c = net.graph.find("Mixed_7c").unwrap();
    assert_eq!(net.graph.shape(mixed_7c).unwrap(), &[1, 2048, 8, 8]);
    let mixed_6e = net.graph.find("Mixed_6e").unwrap();
    assert_eq!(net.graph.shape(mixed_6e).unwrap(), &[1, 768, 17, 17]);
}

/// The error text of a build that must fail (`Network` has no `Debug` for `unwrap_err`).
fn refused(built: wgtrain::Result<wgtrain::train::Network>) -> String {
    match built {
        Ok(_) => panic!("built a network that should be refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn inception_v3_refuses_what_it_cannot_build() {
    let zero = InceptionSize {
        width_divisor: 0,
        ..NARROW
    };
    let e = refused(inception_v3(2, (75, 75), zero));
    assert!(e.contains("width_divisor"), "{e}");
    // Below 75×75 the grid of Mixed_6 (17×17 at 299×299) is 2×2, too small for Mixed_7a's
    // strided 3×3.
    let e = refused(inception_v3(2, (74, 74), NARROW));
    assert!(e.contains("Mixed_7a.branch3x3_2.conv"), "{e}");
    // At 75×75 the last blocks are 1×1: one image leaves batch norm a single value per channel
    // to take statistics of (PyTorch refuses it too).
    let e = refused(inception_v3(1, (75, 75), NARROW));
    assert!(e.contains("more than 1 value per channel"), "{e}");
    let e = refused(inception_v3(0, (75, 75), NARROW));
    assert!(e.contains("image"), "{e}");
    let no_classes = InceptionSize {
        classes: 0,
        ..NARROW
    };
    let e = refused(inception_v3(2, (75, 75), no_classes));
    assert!(e.contains("fc"), "{e}");
}

#[test]
fn a_narrow_inception_v3_matches_the_reference() {
    // 107×107 leaves Mixed_7's grid 2×2: at 75×75 it is 1×1 and batch norm there normalises two
    // numbers per channel, which turns f32 rounding into percent errors in the stem's gradient.
    let net = inception_v3(2, (107, 107), NARROW).unwrap();
    // The loss; the stem's first convolution, a 1×7 after an average-pooled branch's block, the
    // pooling branch itself, a norm of the last block's 3×1 half, and the head.
    let picked = [
        "Conv2d_1a_3x3.conv.weight",
        "Mixed_5b.branch_pool.conv.weight",
        "Mixed_6b.branch7x7_2.conv.weight",
        "Mixed_7c.branch3x3_2b.bn.weight",
        "fc.weight",
    ];
    // As for ResNet-50: deep batch-normalised chains amplify f32 rounding (the stem's gradient is
    // off by ~7e-3 of its size); ten times the rule for sums of 4,096, far below a wrong kernel.
    let tol = 10.0 * f32_tol(4096);
    zoo::assert_matches_reference("inception_v3 narrow", net, NARROW.classes, &picked, tol);
}

#[test]
fn a_narrow_inception_v3_trains() {
    // One batch of all 16 images per step: at 75×75 the last blocks are 1×1, so batch norm there
    // normalises one value per image, and a loss over changing batches of 8 jumps about.
    let data = zoo::bright_channel_images(16, (75, 75));
    each_device("inception_v3 trains", |dev| {
        let net = inception_v3(16, (75, 75), NARROW).unwrap();
        let cfg = TrainConfig {
            epochs: 1,
            batch: 16,
            progress: false,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(dev, net, OptimizerConfig::adam(0.003), cfg).unwrap();
        assert_eq!(t.compiled().stats().submits_per_step, 1);
        let (first, _) = t.train_epoch(&data, None).unwrap();
        let mut losses = Vec::new();
        for _ in 0..9 {
            losses.push(t.train_epoch(&data, None).unwrap().0);
        }
        // The H200 fell to 0.74× in 6 steps where lavapipe fell below 0.7× (rounding differs);
        // 10 steps leave room on both.
        let last = *losses.last().unwrap();
        assert!(last < 0.7 * first, "loss {first} -> {losses:?}");
    });
}

/// The pool branch convolves, then averages (`inception.rs`); torchvision averages 3×3 (stride 1,
/// padding 1, the padding counted), then convolves 1×1 without a bias. Both orders are the same
/// function: on the CPU reference, in f64, at the borders too, with channels in and out that
/// differ.
#[test]
fn the_pool_branch_is_torchvisions_in_the_other_order() {
    use wgtrain::graph::Graph;
    use wgtrain::ops::conv::{Conv2d, Padding};
    use wgtrain::ops::pool::Pool2d;
    use wgtrain::reference::Array;
    let avg = Pool2d::avg((3, 3), (1, 1), true).padding(Padding::symmetric(1));
    let conv = Conv2d::out(3, (1, 1)).no_bias();
    let mut g = Graph::new();
    let x = g.input("x", &[2, 5, 6, 7]).unwrap();
    let p = g.pool("torchvision.pool", x, avg).unwrap();
    let torchvision = g.conv2d("torchvision.conv", p, conv).unwrap();
    let c = g.conv2d("ours.conv", x, conv).unwrap();
    let ours = g.pool("ours.pool", c, avg).unwrap();
    let w = Array::seeded(&[3, 5, 1, 1], 7);
    let feeds = [
        ("x".to_string(), Array::seeded(&[2, 5, 6, 7], 6)),
        ("torchvision.conv.weight".to_string(), w.clone()),
        ("ours.conv.weight".to_string(), w),
    ]
    .into_iter()
    .collect();
    let out = g.eval_reference(&feeds, &[torchvision, ours]).unwrap();
    assert_eq!(out[0].shape, [2, 3, 6, 7]);
    let worst = (out[0].data.iter().zip(&out[1].data))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-12, "{worst}");
    assert!(out[0].data.iter().any(|v| v.abs() > 0.1));
}
