//! Model-zoo test helpers shared by `tests/resnet.rs` and `tests/inception.rs` (included with
//! `#[path]`): the torchvision state-dict fixtures, a narrow network's loss and gradients against
//! the CPU reference, and a small synthetic image set that a few epochs can learn.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use crate::common::{close_to, each_device, set_sources};
use wgtrain::compile::Options;
use wgtrain::graph::Op;
use wgtrain::ops::Fill;
use wgtrain::train::{InMemory, Network};

/// The `name shape` lines of a fixture written by `scripts/zoo_state_dict.py` (torchvision's
/// `state_dict()`), without `num_batches_tracked`, which has no counterpart here.
pub fn torchvision_keys(text: &str) -> BTreeMap<String, Vec<usize>> {
    text.lines()
        .filter(|l| !l.contains("num_batches_tracked"))
        .map(|l| {
            let (name, shape) = l.split_once(' ').unwrap();
            let dims = shape.split('x').map(|d| d.parse().unwrap()).collect();
            (name.to_string(), dims)
        })
        .collect()
}

/// Asserts that `net`'s parameters and states are exactly the fixture's names and shapes, and
/// returns the number of trainable parameters.
pub fn assert_state_dict(net: &Network, fixture: &str) -> usize {
    let ours: BTreeMap<String, Vec<usize>> = net
        .graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Param | Op::State))
        .map(|n| (n.name.clone(), n.outputs[0].0.clone()))
        .collect();
    let theirs = torchvision_keys(fixture);
    let missing: Vec<_> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    let extra: Vec<_> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    for (k, shape) in &theirs {
        assert_eq!(&ours[k], shape, "{k}");
    }
    net.graph
        .params()
        .iter()
        .map(|v| net.graph.shape(*v).unwrap().iter().product::<usize>())
        .sum()
}

/// Compiles `net`'s training graph (gradients only) on every adapter and holds its loss and the
/// gradients of the `picked` parameters to the f64 reference, within `tol`. Inputs and weights
/// are seeded uniform in ±0.5, running variances 1, labels below `classes`.
pub fn assert_matches_reference(
    test: &str,
    net: Network,
    classes: usize,
    picked: &[&str],
    tol: f64,
) {
    let mut g = net.graph;
    let tr = g.training(net.loss).unwrap();
    let mut feeds = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let shape = &n.outputs[0].0;
        let a = match n.op {
            Op::Input if n.name == "labels" => Fill::Classes(classes).array(shape, 1),
            Op::Input if n.name == "weights" => Fill::Uniform(1.0, 1.0).array(shape, 2),
            Op::State if n.name.ends_with("running_var") => Fill::Uniform(1.0, 1.0).array(shape, 3),
            Op::Input | Op::Param | Op::State => Fill::Uniform(-0.5, 0.5).array(shape, i as u64),
            _ => continue,
        };
        feeds.insert(n.name.clone(), a);
    }
    let grads: Vec<_> = picked
        .iter()
        .map(|p| {
            let k = tr
                .params
                .iter()
                .position(|v| g.node(*v).unwrap().name == *p)
                .unwrap_or_else(|| panic!("no parameter {p}"));
            tr.grads[k]
        })
        .collect();
    let mut outs = vec![net.loss];
    outs.extend(&grads);
    let want = g.eval_reference(&feeds, &outs).unwrap();
    each_device(test, |dev| {
        let opts = Options {
            training: Some(&tr),
            gradients_only: true,
            ..Options::default()
        };
        let c = g.compile(dev, &outs, &opts).unwrap();
        set_sources(&c, &g, &feeds);
        c.step().unwrap();
        for (k, (v, w)) in outs.iter().zip(&want).enumerate() {
            let what = if k == 0 { "loss" } else { picked[k - 1] };
            close_to(what, &c.read(*v).unwrap(), &w.data, tol);
        }
    });
}

/// `n` images (3, h, w) of 3 classes: the class's colour channel bright, the others dark, with
/// a little texture so no two images are equal.
pub fn bright_channel_images(n: usize, (h, w): (usize, usize)) -> InMemory {
    let labels: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
    let plane = h * w;
    let mut images = vec![0f32; n * 3 * plane];
    for (i, &l) in labels.iter().enumerate() {
        for c in 0..3 {
            let v = if c == l as usize { 1.0 } else { -0.5 };
            let at = (i * 3 + c) * plane;
            images[at..at + plane]
                .iter_mut()
                .enumerate()
                .for_each(|(k, x)| {
                    *x = v + 0.1 * ((k * 7 + i) % 5) as f32;
                });
        }
    }
    InMemory::new(n)
        .f32("image", &images)
        .u32("labels", &labels)
}
