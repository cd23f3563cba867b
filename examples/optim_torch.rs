//! Cross-check of the fused GPU optimizers against real `torch.optim`, first half: runs a list of
//! optimizer configurations for a few steps over two parameter tensors (`[7, 5]` and `[33]`, one
//! flat arena) and writes one JSON file with, per configuration, the equivalent PyTorch optimizer,
//! parameter groups, gradient clipping and LR scheduler, the initial parameters, every step's
//! gradients, our parameters after every step, our learning rates and our final state (slots named
//! as PyTorch's `state_dict` names them). `scripts/optim_torch.py` replays them with `torch.optim`
//! on float32 CPU tensors and compares.
//!
//! Run: `cargo run --release --example optim_torch -- OUT.json`, then
//! `python3 scripts/optim_torch.py OUT.json` where PyTorch is installed.
//!
//! Every f32 (parameters, gradients, state) is written as its IEEE-754 bits (a u32), so Python
//! rebuilds exactly the values the GPU saw; hyperparameters and learning rates are f64 decimals
//! (shortest round-trip form).
//!
//! Left out, having no exact `torch.optim` equivalent: the per-group `l1` and `l2` terms (PyTorch
//! has no L1 term, and `l2` is added before the algorithm's own weight decay), `GradOptions::rescale`
//! alone (it is replayed as a plain multiplication of `.grad`, tested together with clipping), and
//! a cosine schedule past `t_max` (ours holds at `eta_min`, `CosineAnnealingLR` rises again).

use std::fmt::Write as _;
use std::ops::Range;

use wgtrain::optim::{Algorithm, GradOptions, Optimizer, OptimizerConfig, ParamGroup, Schedule};
use wgtrain::{DType, Device, Tensor};

/// Steps per configuration.
const STEPS: usize = 10;
/// The parameter tensors, laid out one after the other in the arena.
const SHAPES: [&[usize]; 2] = [&[7, 5], &[33]];

/// splitmix64: a tiny deterministic generator (the values go into the JSON, so Python needs no copy).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-scale, scale).
    fn uniform(&mut self, scale: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        (2.0 * u - 1.0) * scale
    }

    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(scale)).collect()
    }
}

/// The arena range of each parameter tensor.
fn tensor_ranges() -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut a = 0;
    for s in SHAPES {
        let n: usize = s.iter().product();
        out.push(a..a + n);
        a += n;
    }
    out
}

struct Case {
    name: &'static str,
    config: OptimizerConfig,
    groups: Vec<ParamGroup>,
}

fn case(name: &'static str, algorithm: Algorithm, lr: f64) -> Case {
    Case {
        name,
        config: OptimizerConfig::new(algorithm, lr),
        groups: vec![ParamGroup::new(tensor_ranges())],
    }
}

impl Case {
    fn weight_decay(mut self, wd: f64) -> Case {
        for g in &mut self.groups {
            g.weight_decay = wd;
        }
        self
    }
    fn grad(mut self, grad: GradOptions) -> Case {
        self.config.grad = grad;
        self
    }
    fn schedule(mut self, s: Schedule) -> Case {
        self.config.schedule = s;
        self
    }
}

fn cases() -> Vec<Case> {
    let sgd = |momentum, dampening, nesterov| Algorithm::Sgd {
        momentum,
        dampening,
        nesterov,
    };
    let adam = |beta1, beta2, eps, amsgrad| Algorithm::Adam {
        beta1,
        beta2,
        eps,
        amsgrad,
    };
    let adamw = |beta1, beta2, eps, amsgrad| Algorithm::AdamW {
        beta1,
        beta2,
        eps,
        amsgrad,
    };
    let rmsprop = |alpha, eps, momentum, centered| Algorithm::RmsProp {
        alpha,
        eps,
        momentum,
        centered,
    };
    let r = tensor_ranges();
    vec![
        case("sgd", sgd(0.0, 0.0, false), 0.1),
        case("sgd momentum 0.9 dampening 0.1", sgd(0.9, 0.1, false), 0.05),
        case("sgd nesterov 0.9", sgd(0.9, 0.0, true), 0.05),
        case("sgd weight_decay 0.1", sgd(0.0, 0.0, false), 0.1).weight_decay(0.1),
        case(
            "sgd momentum 0.5 weight_decay 0.1",
            sgd(0.5, 0.0, false),
            0.1,
        )
        .weight_decay(0.1),
        case("adam", Algorithm::adam(), 0.01),
        case("adam amsgrad", adam(0.8, 0.95, 1e-6, true), 0.01),
        case("adam weight_decay 0.05", Algorithm::adam(), 0.01).weight_decay(0.05),
        case("adamw weight_decay 0.01", Algorithm::adamw(), 0.01).weight_decay(0.01),
        case(
            "adamw amsgrad weight_decay 0.1",
            adamw(0.8, 0.95, 1e-6, true),
            0.01,
        )
        .weight_decay(0.1),
        case("rmsprop", Algorithm::rmsprop(), 0.01),
        case(
            "rmsprop centered momentum 0.9",
            rmsprop(0.9, 1e-6, 0.9, true),
            0.01,
        ),
        case(
            "rmsprop momentum 0.5 weight_decay 0.01",
            rmsprop(0.99, 1e-8, 0.5, false),
            0.01,
        )
        .weight_decay(0.01),
        case("adam clip_norm 1.0", Algorithm::adam(), 0.01).grad(GradOptions {
            clip_norm: Some(1.0),
            ..Default::default()
        }),
        case(
            "sgd momentum 0.9 clip_value 0.05",
            sgd(0.9, 0.0, false),
            0.1,
        )
        .grad(GradOptions {
            clip_value: Some(0.05),
            ..Default::default()
        }),
        case(
            "sgd momentum 0.9 rescale 0.5 + clip_norm 1.5 + clip_value 0.1",
            sgd(0.9, 0.0, false),
            0.1,
        )
        .grad(GradOptions {
            rescale: 0.5,
            clip_norm: Some(1.5),
            clip_value: Some(0.1),
        }),
        case("adam StepLR(3, 0.5)", Algorithm::adam(), 0.01).schedule(Schedule::Step {
            step_size: 3,
            gamma: 0.5,
        }),
        // t_max = STEPS - 1: the last step runs at eta_min; never past t_max (see the module doc).
        case("adam CosineAnnealingLR(9, 1e-3)", Algorithm::adam(), 0.01).schedule(
            Schedule::Cosine {
                t_max: 9,
                eta_min: 1e-3,
            },
        ),
        case(
            "sgd momentum 0.9 warmup(LinearLR 3, 0.25) then StepLR(2, 0.5)",
            sgd(0.9, 0.0, false),
            0.1,
        )
        .schedule(Schedule::warmup(
            3,
            0.25,
            Schedule::Step {
                step_size: 2,
                gamma: 0.5,
            },
        )),
        Case {
            name: "adam two groups (wd 0.1 on [7,5]; lr x0.5 on [33])",
            config: OptimizerConfig::new(Algorithm::adam(), 0.01),
            groups: vec![
                ParamGroup::range(r[0].clone()).weight_decay(0.1),
                ParamGroup::range(r[1].clone()).lr_scale(0.5),
            ],
        },
        Case {
            name: "adamw two groups + cosine + clip_norm 2.0",
            config: OptimizerConfig {
                algorithm: Algorithm::adamw(),
                lr: 0.02,
                schedule: Schedule::Cosine {
                    t_max: 12,
                    eta_min: 0.0,
                },
                grad: GradOptions {
                    clip_norm: Some(2.0),
                    ..Default::default()
                },
            },
            groups: vec![
                ParamGroup::range(r[1].clone()).lr_scale(2.0),
                ParamGroup::range(r[0].clone()).weight_decay(0.05),
            ],
        },
    ]
}

/// A JSON number for an f64 (Rust's shortest round-trip form is valid JSON for finite values).
fn num(x: f64) -> String {
    assert!(x.is_finite(), "non-finite hyperparameter {x}");
    format!("{x:?}")
}

fn bits(v: &[f32]) -> String {
    let s: Vec<String> = v.iter().map(|x| x.to_bits().to_string()).collect();
    format!("[{}]", s.join(","))
}

/// `[[bits of tensor 0], [bits of tensor 1]]` for one arena-sized vector.
fn per_tensor(v: &[f32]) -> String {
    let s: Vec<String> = tensor_ranges().into_iter().map(|r| bits(&v[r])).collect();
    format!("[{}]", s.join(","))
}

/// The PyTorch optimizer class and its constructor keywords (lr and weight decay go per group).
fn torch_optimizer(c: &OptimizerConfig) -> (&'static str, String) {
    match c.algorithm {
        Algorithm::Sgd {
            momentum,
            dampening,
            nesterov,
        } => (
            "SGD",
            format!(
                "{{\"momentum\": {}, \"dampening\": {}, \"nesterov\": {nesterov}}}",
                num(momentum),
                num(dampening)
            ),
        ),
        Algorithm::Adam {
            beta1,
            beta2,
            eps,
            amsgrad,
        }
        | Algorithm::AdamW {
            beta1,
            beta2,
            eps,
            amsgrad,
        } => (
            if matches!(c.algorithm, Algorithm::Adam { .. }) {
                "Adam"
            } else {
                "AdamW"
            },
            format!(
                "{{\"betas\": [{}, {}], \"eps\": {}, \"amsgrad\": {amsgrad}}}",
                num(beta1),
                num(beta2),
                num(eps)
            ),
        ),
        Algorithm::RmsProp {
            alpha,
            eps,
            momentum,
            centered,
        } => (
            "RMSprop",
            format!(
                "{{\"alpha\": {}, \"eps\": {}, \"momentum\": {}, \"centered\": {centered}}}",
                num(alpha),
                num(eps),
                num(momentum)
            ),
        ),
        Algorithm::Custom(_) => panic!("custom optimizers have no torch.optim equivalent"),
    }
}

/// The parameter groups as PyTorch param_groups: tensor indices, lr and weight decay.
fn torch_groups(c: &OptimizerConfig, groups: &[ParamGroup]) -> String {
    let tensors = tensor_ranges();
    let s: Vec<String> = groups
        .iter()
        .map(|g| {
            assert!(
                g.l1 == 0.0 && g.l2 == 0.0,
                "l1/l2 have no torch.optim equivalent"
            );
            let idx: Vec<String> = g
                .ranges
                .iter()
                .map(|r| {
                    tensors
                        .iter()
                        .position(|t| t == r)
                        .unwrap_or_else(|| panic!("group range {r:?} is not one whole tensor"))
                        .to_string()
                })
                .collect();
            format!(
                "{{\"params\": [{}], \"lr\": {}, \"weight_decay\": {}}}",
                idx.join(", "),
                num(c.lr * g.lr_scale),
                num(g.weight_decay)
            )
        })
        .collect();
    format!("[{}]", s.join(", "))
}

/// The torch.optim.lr_scheduler equivalent of `s` used for `positions` schedule positions (0..),
/// or `null`. Panics where the semantics differ.
fn torch_scheduler(s: &Schedule, positions: u64) -> String {
    match s {
        Schedule::Constant => "null".into(),
        Schedule::Step { step_size, gamma } => format!(
            "{{\"type\": \"StepLR\", \"step_size\": {step_size}, \"gamma\": {}}}",
            num(*gamma)
        ),
        Schedule::Cosine { t_max, eta_min } => {
            assert!(
                positions == 0 || positions - 1 <= *t_max,
                "CosineAnnealingLR rises again past T_max; ours holds at eta_min"
            );
            format!(
                "{{\"type\": \"CosineAnnealingLR\", \"T_max\": {t_max}, \"eta_min\": {}}}",
                num(*eta_min)
            )
        }
        Schedule::Warmup {
            steps,
            start_factor,
            then,
        } => {
            assert!(*start_factor > 0.0, "LinearLR needs start_factor > 0");
            assert!(
                !matches!(**then, Schedule::Constant | Schedule::Warmup { .. }),
                "warm-up into {then:?}: no single torch scheduler to hand over to"
            );
            let inner = torch_scheduler(then, positions.saturating_sub(*steps));
            format!(
                "{{\"type\": \"SequentialLR\", \"milestones\": [{steps}], \"schedulers\": [\
                 {{\"type\": \"LinearLR\", \"start_factor\": {}, \"end_factor\": 1.0, \
                 \"total_iters\": {steps}}}, {inner}]}}",
                num(*start_factor)
            )
        }
    }
}

fn grad_json(g: &GradOptions) -> String {
    let opt = |x: Option<f64>| x.map_or("null".into(), num);
    format!(
        "{{\"rescale\": {}, \"clip_norm\": {}, \"clip_value\": {}}}",
        num(g.rescale),
        opt(g.clip_norm),
        opt(g.clip_value)
    )
}

/// Runs one case on the GPU; returns its JSON object.
fn run_case(dev: &Device, c: &Case, seed: u64) -> wgtrain::Result<String> {
    let n: usize = tensor_ranges().last().unwrap().end;
    let mut rng = Rng(seed);
    let p0 = rng.vec(n, 1.0);
    let params = Tensor::from_f32(dev, &[n], &p0)?;
    let grads = Tensor::zeros(dev, &[n], DType::F32)?;
    let mut opt = Optimizer::new(dev, c.config.clone(), c.groups.clone(), n)?;
    let (mut gs, mut ps, mut lrs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..STEPS {
        let g = rng.vec(n, 1.0);
        grads.write_f32(&g)?;
        let info = opt.step(&params, &grads)?;
        gs.push(per_tensor(&g));
        ps.push(per_tensor(&params.to_f32()?));
        let lr: Vec<String> = info.lr.iter().map(|&x| num(x)).collect();
        lrs.push(format!("[{}]", lr.join(", ")));
    }
    let state = opt.read_state()?;
    let slots: Vec<String> = opt
        .slot_names()
        .iter()
        .enumerate()
        .map(|(k, name)| format!("\"{name}\": {}", per_tensor(&state[k * n..(k + 1) * n])))
        .collect();
    let (class, kwargs) = torch_optimizer(&c.config);
    let mut o = String::new();
    writeln!(o, "    {{").unwrap();
    writeln!(o, "      \"name\": \"{}\",", c.name).unwrap();
    writeln!(o, "      \"optimizer\": \"{class}\",").unwrap();
    writeln!(o, "      \"lr\": {},", num(c.config.lr)).unwrap();
    writeln!(o, "      \"kwargs\": {kwargs},").unwrap();
    let groups = torch_groups(&c.config, &c.groups);
    writeln!(o, "      \"param_groups\": {groups},").unwrap();
    writeln!(o, "      \"grad\": {},", grad_json(&c.config.grad)).unwrap();
    let sched = torch_scheduler(&c.config.schedule, STEPS as u64);
    writeln!(o, "      \"scheduler\": {sched},").unwrap();
    writeln!(o, "      \"init\": {},", per_tensor(&p0)).unwrap();
    writeln!(o, "      \"grads\": [{}],", gs.join(",\n        ")).unwrap();
    writeln!(o, "      \"params\": [{}],", ps.join(",\n        ")).unwrap();
    writeln!(o, "      \"lrs\": [{}],", lrs.join(", ")).unwrap();
    writeln!(o, "      \"state\": {{{}}}", slots.join(",\n        ")).unwrap();
    write!(o, "    }}").unwrap();
    Ok(o)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: cargo run --release --example optim_torch -- OUT.json");
        std::process::exit(2);
    };
    let dev = Device::new()?;
    eprintln!("device: {}", dev.name());
    let mut objs = Vec::new();
    for (k, c) in cases().iter().enumerate() {
        objs.push(run_case(&dev, c, 1000 + k as u64)?);
        eprintln!("ran {}", c.name);
    }
    let shapes: Vec<String> = SHAPES.iter().map(|s| format!("{s:?}")).collect();
    let json = format!(
        "{{\n  \"device\": \"{}\",\n  \"steps\": {STEPS},\n  \"shapes\": [{}],\n  \"configs\": [\n{}\n  ]\n}}\n",
        dev.name().replace('\\', "\\\\").replace('"', "\\\""),
        shapes.join(", "),
        objs.join(",\n")
    );
    std::fs::write(&out, json)?;
    eprintln!("wrote {} configurations to {out}", objs.len());
    Ok(())
}
