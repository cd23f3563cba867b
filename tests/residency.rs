//! Just-in-time residency in training graphs: the same steps, optimizer by optimizer, give the
//! same weights and optimizer state as resident training (bit for bit: the same kernels run on the
//! same values, only where they live differs), with less GPU memory for weights, gradients and
//! optimizer state; and each misuse is an `Err` that says what to do.

mod common;

use common::each_device;
use wgtrain::autograd::Training;
use wgtrain::compile::{Compiled, Options, Residency};
use wgtrain::graph::{Graph, Value};
use wgtrain::ops::dense::FullyConnected;
use wgtrain::ops::dropout::Dropout;
use wgtrain::ops::elementwise::{BinaryOp, UnaryOp};
use wgtrain::ops::norm::BatchNorm;
use wgtrain::optim::custom::CustomUpdate;
use wgtrain::optim::{Algorithm, GradOptions, Optimizer, OptimizerConfig, ParamGroup};
use wgtrain::reference::Array;
use wgtrain::weights::{ParamLayout, ParamStore};

/// x (7, 33) → fc1 (33→40, bias) → tanh → batch norm + a parameter → ·tied (40×40) → relu →
/// dropout → ·tied again → fc2 (40→5) → a per-sample loss: the tied weight is read by four
/// launches and its gradient accumulated; batch norm's γ and β come with running statistics
/// (states), and the sum after it is written by the norm, which then reads the parameter.
fn net() -> (Graph, Training, Value) {
    let mut g = Graph::new();
    let x = g.input("x", &[7, 33]).unwrap();
    let tied = g.param("tied", &[40, 40]).unwrap();
    let shift = g.param("shift", &[7, 40]).unwrap();
    let h = g.dense("fc1", x, FullyConnected::new(33, 40)).unwrap();
    let h = g.unary("t1", UnaryOp::Tanh, h).unwrap();
    let h = g.batch_norm("bn", h, BatchNorm::default()).unwrap();
    let h = g.binary("bn_shift", BinaryOp::Add, h, shift).unwrap();
    let h = g.matmul("m1", h, tied).unwrap();
    let h = g.unary("r1", UnaryOp::Relu, h).unwrap();
    let h = g
        .dropout("drop", h, Dropout::new(0.25, 3).unwrap())
        .unwrap();
    let h = g.matmul("m2", h, tied).unwrap();
    let y = g.dense("fc2", h, FullyConnected::new(40, 5)).unwrap();
    let sq = g.unary("sq", UnaryOp::Square, y).unwrap();
    let loss = g.sum("loss", sq, 1).unwrap();
    let tr = g.training(loss).unwrap();
    (g, tr, loss)
}

fn feed(c: &Compiled, g: &Graph) {
    for (i, n) in g.nodes.iter().enumerate() {
        if matches!(
            n.op,
            wgtrain::graph::Op::Input | wgtrain::graph::Op::Param | wgtrain::graph::Op::State
        ) {
            let a = Array::seeded(&n.outputs[0].0, 40 + i as u64);
            let scale = if n.op == wgtrain::graph::Op::Param {
                0.3
            } else {
                1.0
            };
            let v: Vec<f32> = a.to_f32().iter().map(|x| x * scale).collect();
            c.set(&n.name, &v).unwrap();
        }
    }
}

/// Weight decay on matrices, none on biases, `fc2.bias` in no group (left alone, frozen).
fn groups(layout: &ParamLayout) -> Vec<ParamGroup> {
    vec![
        ParamGroup::new(layout.ranges(|e| e.shape.len() > 1)).weight_decay(0.01),
        ParamGroup::new(layout.ranges(|e| e.shape.len() == 1 && e.name != "fc2.bias"))
            .lr_scale(0.5),
    ]
}

struct Run {
    weights: Vec<Vec<f32>>,
    state: Vec<f32>,
    loss: Vec<f32>,
    /// Bytes of weights, gradients and optimizer state on the GPU.
    bytes: u64,
}

fn train(dev: &wgtrain::Device, config: &OptimizerConfig, jit: bool, steps: usize) -> Run {
    let (g, tr, loss) = net();
    let opts = Options {
        training: Some(&tr),
        residency: if jit {
            Residency::JustInTime
        } else {
            Residency::Resident
        },
        ..Options::default()
    };
    let mut c = g.compile(dev, &[loss], &opts).unwrap();
    assert_eq!(c.is_just_in_time(), jit);
    feed(&c, &g);
    let layout = c.param_layout().unwrap().clone();
    // One way to attach an optimizer, whatever the residency.
    let mut opt = c.optimizer(config.clone(), groups(&layout)).unwrap();
    c.attach_optimizer(&opt).unwrap();
    let mut weights = Vec::new();
    for _ in 0..steps {
        opt.prepare_step().unwrap();
        c.step().unwrap();
        weights.push(c.read_all().unwrap());
    }
    let bytes = if jit {
        c.stats().weight_bytes
    } else {
        2 * c.param_arena().unwrap().params.bytes() + opt.gpu_state_bytes()
    };
    Run {
        weights,
        state: opt.read_state().unwrap(),
        loss: c.read(loss).unwrap(),
        bytes,
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn just_in_time_training_matches_resident_training_bit_for_bit() {
    let b = (0.9, 0.999, 1e-8);
    let algorithms = [
        Algorithm::Sgd {
            momentum: 0.9,
            dampening: 0.0,
            nesterov: true,
        },
        Algorithm::Adam {
            beta1: b.0,
            beta2: b.1,
            eps: b.2,
            amsgrad: true,
        },
        Algorithm::AdamW {
            beta1: b.0,
            beta2: b.1,
            eps: b.2,
            amsgrad: false,
        },
        Algorithm::RmsProp {
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.5,
            centered: true,
        },
        Algorithm::Custom(CustomUpdate::new(
            "halving",
            "fn update(i: u32, p: f32, g: f32, step: u32, lr: f32) -> f32 {\n\
             let m = 0.5 * state_get(0u, i) + g;\n\
             state_set(0u, i, m);\n\
             return p - lr * m;\n}",
            &["m"],
        )),
    ];
    each_device("jit training", |dev| {
        for alg in &algorithms {
            let mut config = OptimizerConfig::new(alg.clone(), 0.01);
            config.grad = GradOptions {
                rescale: 0.5,
                clip_value: Some(0.2),
                clip_norm: None,
            };
            let (resident, jit) = (train(dev, &config, false, 3), train(dev, &config, true, 3));
            let name = alg.name();
            for (k, (r, j)) in resident.weights.iter().zip(&jit.weights).enumerate() {
                assert_eq!(bits(r), bits(j), "{name}: weights after step {}", k + 1);
            }
            assert_ne!(
                resident.weights[0], resident.weights[2],
                "{name}: weights moved"
            );
            assert_eq!(
                bits(&resident.state),
                bits(&jit.state),
                "{name}: optimizer state"
            );
            assert_eq!(bits(&resident.loss), bits(&jit.loss), "{name}: loss");
            assert!(
                jit.bytes < resident.bytes,
                "{name}: just-in-time {} B, resident {} B",
                jit.bytes,
                resident.bytes
            );
            eprintln!(
                "{name}: weights + gradients + state on the GPU: resident {} B, just-in-time {} B",
                resident.bytes, jit.bytes
            );
        }
    });
}

#[test]
fn just_in_time_misuse_is_an_error_that_says_what_to_do() {
    each_device("jit errors", |dev| {
        let (g, tr, loss) = net();
        let jit = Options {
            training: Some(&tr),
            residency: Residency::JustInTime,
            ..Options::default()
        };
        let mut c = g.compile(dev, &[loss], &jit).unwrap();
        feed(&c, &g);
        let layout = c.param_layout().unwrap().clone();
        let adam = OptimizerConfig::new(Algorithm::adam(), 0.01);
        // Stepping before an optimizer is attached.
        let e = c.step().unwrap_err().to_string();
        assert!(e.contains("attach an optimizer"), "{e}");
        // Clipping by global norm needs all gradients at once.
        let mut clip = adam.clone();
        clip.grad.clip_norm = Some(1.0);
        let e = Optimizer::just_in_time(dev, clip, groups(&layout), &layout)
            .unwrap_err()
            .to_string();
        assert!(e.contains("global norm"), "{e}");
        // A resident optimizer on a just-in-time graph, and the other way round.
        let resident = Optimizer::new(dev, adam.clone(), groups(&layout), layout.len()).unwrap();
        let e = c.attach_optimizer(&resident).unwrap_err().to_string();
        assert!(e.contains("Optimizer::just_in_time"), "{e}");
        let opt = Optimizer::just_in_time(dev, adam.clone(), groups(&layout), &layout).unwrap();
        let a = wgtrain::Tensor::zeros(dev, &[layout.len()], wgtrain::DType::F32).unwrap();
        let e = opt.launches(&a, &a).unwrap_err().to_string();
        assert!(e.contains("per parameter"), "{e}");
        // A resident graph cannot share weights that live on the host.
        let e = g
            .compile(
                dev,
                &[loss],
                &Options {
                    share: Some(&c),
                    ..Options::default()
                },
            )
            .err()
            .expect("sharing just-in-time weights")
            .to_string();
        assert!(e.contains("Residency::JustInTime"), "{e}");
        // Gradients are intermediates just-in-time: not readable after the step.
        c.attach_optimizer(&opt).unwrap();
        let e = c.step().unwrap_err().to_string();
        assert!(e.contains("prepare_step"), "{e}");
        let mut opt = opt;
        opt.prepare_step().unwrap();
        c.step().unwrap();
        let e = c.read(tr.grads[0]).unwrap_err().to_string();
        assert!(e.contains("not requested"), "{e}");
        // A weight with the wrong number of values.
        let e = c.set("tied", &[0.0; 3]).unwrap_err().to_string();
        assert!(e.contains("tied") && e.contains("3 values"), "{e}");
        // A resident graph takes a resident optimizer (attach_optimizer, either residency).
        let (g2, tr2, loss2) = net();
        let mut r = g2
            .compile(
                dev,
                &[loss2],
                &Options {
                    training: Some(&tr2),
                    ..Options::default()
                },
            )
            .unwrap();
        let e = r.attach_optimizer(&opt).unwrap_err().to_string();
        assert!(e.contains("Optimizer::new"), "{e}");
        // Either way, a step whose optimizer was not prepared is refused (Adam at step 0 would
        // divide by 1 - beta1^0 = 0), and each preparation serves one step.
        feed(&r, &g2);
        let mut resident = resident;
        r.attach_optimizer(&resident).unwrap();
        assert!(r.step().unwrap_err().to_string().contains("prepare_step"));
        resident.prepare_step().unwrap();
        r.step().unwrap();
        assert!(r.step().unwrap_err().to_string().contains("prepare_step"));
        assert!(
            ParamStore::read_all(&r)
                .unwrap()
                .iter()
                .all(|v| v.is_finite()),
            "no NaN from an unprepared step"
        );
    });
}
