//! The fused optimizers (and the f64 reference) against real `torch.optim`, under `cargo test`:
//! `tests/fixtures/optim_torch.safetensors` (written by `scripts/optim_torch_fixture.py` with
//! PyTorch) holds, per configuration, the initial parameters, each step's gradients, PyTorch's
//! parameters after each step, its learning rates and its final state. SGD with momentum and
//! Nesterov, Adam and AdamW (with AMSGrad), RMSprop (centred, with momentum), all with weight
//! decay, under step, cosine and warm-up schedules and both kinds of clipping. Each step's update
//! and the final state are held to `common::update`'s rule. A missing fixture fails, it does not
//! skip. The wider cross-check (more configurations, two parameter groups) is
//! `examples/optim_torch.rs` with `scripts/optim_torch.py`.

mod common;

use std::collections::HashMap;

use common::each_device;
use common::update::{state_mismatch, update_mismatch};
use safetensors::SafeTensors;
use safetensors::tensor::Dtype;
use wgtrain::optim::reference::RefOptimizer;
use wgtrain::optim::{Algorithm, GradOptions, Optimizer, OptimizerConfig, ParamGroup, Schedule};
use wgtrain::{DType, Device, Tensor};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/optim_torch.safetensors"
);
const REGENERATE: &str = "(the fixture is PyTorch's: python3 scripts/optim_torch_fixture.py)";

/// One configuration of the fixture and PyTorch's run of it.
struct Case {
    name: String,
    config: OptimizerConfig,
    weight_decay: f64,
    init: Vec<f32>,
    /// `[step][element]`.
    grads: Vec<Vec<f32>>,
    /// PyTorch's parameters after each step, `[step][element]`.
    params: Vec<Vec<f32>>,
    /// The learning rate each step ran at.
    lr: Vec<f64>,
    /// PyTorch's final state by its `state_dict` names.
    state: HashMap<String, Vec<f32>>,
}

impl Case {
    fn groups(&self) -> Vec<ParamGroup> {
        vec![ParamGroup::range(0..self.init.len()).weight_decay(self.weight_decay)]
    }
}

fn num(fields: &HashMap<&str, &str>, key: &str) -> f64 {
    let v = fields
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"));
    v.parse()
        .unwrap_or_else(|e| panic!("{key}={v}: {e} {REGENERATE}"))
}

fn flag(fields: &HashMap<&str, &str>, key: &str) -> bool {
    match fields.get(key) {
        Some(&"true") => true,
        Some(&"false") => false,
        v => panic!("{key}: {v:?} is not true/false {REGENERATE}"),
    }
}

fn optional(fields: &HashMap<&str, &str>, key: &str) -> Option<f64> {
    match fields.get(key) {
        Some(&"") => None,
        Some(_) => Some(num(fields, key)),
        None => panic!("no {key} in {fields:?}"),
    }
}

/// `constant`, `step:SIZE:GAMMA`, `cosine:T_MAX:ETA_MIN`, `warmup:STEPS:START:<inner>`.
fn schedule(spec: &str) -> Schedule {
    let parts: Vec<&str> = spec.split(':').collect();
    let int = |s: &str| s.parse::<u64>().unwrap_or_else(|e| panic!("{spec}: {e}"));
    let float = |s: &str| s.parse::<f64>().unwrap_or_else(|e| panic!("{spec}: {e}"));
    match parts.as_slice() {
        ["constant"] => Schedule::Constant,
        ["step", size, gamma] => Schedule::Step {
            step_size: int(size),
            gamma: float(gamma),
        },
        ["cosine", t_max, eta_min] => Schedule::Cosine {
            t_max: int(t_max),
            eta_min: float(eta_min),
        },
        ["warmup", steps, start, ..] => {
            Schedule::warmup(int(steps), float(start), schedule(&parts[3..].join(":")))
        }
        _ => panic!("unknown schedule {spec:?} {REGENERATE}"),
    }
}

/// The configuration from the fixture's `;`-separated `key=value` description (PyTorch's
/// names and defaults, written out in full by the script).
fn config(desc: &str) -> (String, OptimizerConfig, f64) {
    let fields: HashMap<&str, &str> = desc
        .split(';')
        .map(|kv| {
            kv.split_once('=')
                .unwrap_or_else(|| panic!("{kv:?} in {desc:?}"))
        })
        .collect();
    let algorithm = match fields["optimizer"] {
        "SGD" => Algorithm::Sgd {
            momentum: num(&fields, "momentum"),
            dampening: num(&fields, "dampening"),
            nesterov: flag(&fields, "nesterov"),
        },
        "Adam" | "AdamW" => {
            let (b1, b2) = fields["betas"]
                .split_once(',')
                .unwrap_or_else(|| panic!("betas {:?}", fields["betas"]));
            let (beta1, beta2) = (b1.parse().unwrap(), b2.parse().unwrap());
            let (eps, amsgrad) = (num(&fields, "eps"), flag(&fields, "amsgrad"));
            if fields["optimizer"] == "Adam" {
                Algorithm::Adam {
                    beta1,
                    beta2,
                    eps,
                    amsgrad,
                }
            } else {
                Algorithm::AdamW {
                    beta1,
                    beta2,
                    eps,
                    amsgrad,
                }
            }
        }
        "RMSprop" => Algorithm::RmsProp {
            alpha: num(&fields, "alpha"),
            eps: num(&fields, "eps"),
            momentum: num(&fields, "momentum"),
            centered: flag(&fields, "centered"),
        },
        other => panic!("unknown optimizer {other:?} {REGENERATE}"),
    };
    let config = OptimizerConfig {
        algorithm,
        lr: num(&fields, "lr"),
        schedule: schedule(fields["schedule"]),
        grad: GradOptions {
            rescale: 1.0,
            clip_norm: optional(&fields, "clip_norm"),
            clip_value: optional(&fields, "clip_value"),
        },
    };
    (
        fields["name"].to_string(),
        config,
        num(&fields, "weight_decay"),
    )
}

/// A tensor of the fixture as f64 values, with its shape; panics (fails the test) when missing.
fn tensor(st: &SafeTensors, name: &str) -> (Vec<usize>, Vec<f64>) {
    let t = st
        .tensor(name)
        .unwrap_or_else(|e| panic!("{FIXTURE}: {name}: {e} {REGENERATE}"));
    let data = match t.dtype() {
        Dtype::F32 => (t.data().chunks_exact(4))
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        Dtype::F64 => (t.data().chunks_exact(8))
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        d => panic!("{name}: dtype {d:?}"),
    };
    (t.shape().to_vec(), data)
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// `[rows, n]` into rows.
fn rows(st: &SafeTensors, name: &str, want: &[usize]) -> Vec<Vec<f32>> {
    let (shape, data) = tensor(st, name);
    assert_eq!(shape, want, "{name}: shape");
    data.chunks_exact(want[1]).map(f32s).collect()
}

fn load() -> Vec<Case> {
    let bytes = std::fs::read(FIXTURE).unwrap_or_else(|e| panic!("{FIXTURE}: {e} {REGENERATE}"));
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().expect("fixture metadata");
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let steps: usize = meta["steps"].parse().unwrap();
    let count: usize = meta["cases"].parse().unwrap();
    let names = st.names();
    (0..count)
        .map(|k| {
            let (name, config, weight_decay) = config(&meta[&k.to_string()]);
            let (shape, init) = tensor(&st, &format!("{k}.init"));
            let n = shape[0];
            let prefix = format!("{k}.state.");
            let state = (names.iter())
                .filter_map(|s| s.strip_prefix(&prefix))
                .map(|slot| {
                    (
                        slot.to_string(),
                        f32s(&tensor(&st, &format!("{prefix}{slot}")).1),
                    )
                })
                .collect();
            let (lr_shape, lr) = tensor(&st, &format!("{k}.lr"));
            assert_eq!(lr_shape, [steps], "{k}.lr");
            Case {
                name,
                config,
                weight_decay,
                init: f32s(&init),
                grads: rows(&st, &format!("{k}.grads"), &[steps, n]),
                params: rows(&st, &format!("{k}.params"), &[steps, n]),
                lr,
                state,
            }
        })
        .collect()
}

/// The state slots we keep are exactly PyTorch's (no slot missing or extra), in our order.
fn torch_state(c: &Case, slots: &[String]) -> Vec<f64> {
    let mut ours: Vec<&String> = slots.iter().collect();
    let mut theirs: Vec<&String> = c.state.keys().collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "{}: state slots", c.name);
    (slots.iter())
        .flat_map(|s| c.state[s].iter().map(|&x| x as f64))
        .collect()
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Every update rule and schedule the fixture is meant to cover is in it (a regenerated fixture
/// cannot quietly drop one).
#[test]
fn fixture_covers_every_optimizer_with_weight_decay_and_schedules() {
    let cases = load();
    let has = |f: &dyn Fn(&Case) -> bool| cases.iter().any(f);
    let decayed = |c: &Case| c.weight_decay > 0.0;
    assert!(has(
        &|c| matches!(c.config.algorithm, Algorithm::Sgd { momentum, nesterov: false, .. } if momentum > 0.0)
            && decayed(c)
    ));
    assert!(has(&|c| matches!(
        c.config.algorithm,
        Algorithm::Sgd { nesterov: true, .. }
    ) && decayed(c)));
    assert!(has(&|c| matches!(
        c.config.algorithm,
        Algorithm::Adam { .. }
    ) && decayed(c)));
    assert!(has(&|c| matches!(
        c.config.algorithm,
        Algorithm::AdamW { .. }
    ) && decayed(c)));
    assert!(has(&|c| matches!(
        c.config.algorithm,
        Algorithm::RmsProp { .. }
    ) && decayed(c)));
    for kind in ["Step", "Cosine", "Warmup"] {
        assert!(
            has(&|c| format!("{:?}", c.config.schedule).starts_with(kind)),
            "no {kind} schedule"
        );
    }
    assert!(has(&|c| c.config.grad.clip_norm.is_some()));
    assert!(has(&|c| c.config.grad.clip_value.is_some()));
}

/// The f64 reference optimizer is PyTorch's (so the GPU tests against it mean what they say).
#[test]
fn reference_matches_torch_optim() {
    for c in load() {
        let n = c.init.len();
        let mut r = RefOptimizer::new(c.config.clone(), c.groups(), n);
        let mut p = f64s(&c.init);
        let mut torch_before = c.init.clone();
        for (t, g) in c.grads.iter().enumerate() {
            let before = p.clone();
            r.step(&mut p, &f64s(g));
            let torch_after = &c.params[t];
            // The reference's step, rounded once, against PyTorch's.
            let (e, _) = update_mismatch(
                &format!("reference, {}: step {}", c.name, t + 1),
                &torch_before,
                torch_after,
                &before,
                &p,
                2,
            );
            assert!(e.is_none(), "{}", e.unwrap());
            torch_before = torch_after.clone();
        }
        let want = torch_state(&c, &r.slots);
        let got: Vec<f32> = r.state_flat().iter().map(|&x| x as f32).collect();
        let (e, _) = state_mismatch(&format!("reference, {}", c.name), &r.slots, &got, &want, n);
        assert!(e.is_none(), "{}", e.unwrap());
    }
}

fn run_case(dev: &Device, c: &Case) {
    let n = c.init.len();
    let params = Tensor::from_f32(dev, &[n], &c.init).unwrap();
    let grads = Tensor::zeros(dev, &[n], DType::F32).unwrap();
    let mut opt = Optimizer::new(dev, c.config.clone(), c.groups(), n).unwrap();
    let (mut ours, mut theirs) = (c.init.clone(), c.init.clone());
    let mut worst = 0.0f64;
    for (t, g) in c.grads.iter().enumerate() {
        grads.write_f32(g).unwrap();
        let info = opt.step(&params, &grads).unwrap();
        let lr = info.lr[0];
        assert!(
            (lr - c.lr[t]).abs() <= 1e-9 * c.lr[t].abs(),
            "{}: step {}: lr {lr} vs torch {}",
            c.name,
            t + 1,
            c.lr[t]
        );
        let after = params.to_f32().unwrap();
        let at = format!("{}: step {}", c.name, t + 1);
        let (e, w) = update_mismatch(&at, &ours, &after, &f64s(&theirs), &f64s(&c.params[t]), 2);
        assert!(e.is_none(), "{}", e.unwrap());
        worst = worst.max(w);
        ours = after;
        theirs = c.params[t].clone();
    }
    let want = torch_state(c, opt.slot_names());
    let got = opt.read_state().unwrap();
    let (e, w) = state_mismatch(&c.name, opt.slot_names(), &got, &want, n);
    assert!(e.is_none(), "{}", e.unwrap());
    eprintln!(
        "{}: worst update {worst:.3} and state {w:.3} of the tolerance",
        c.name
    );
}

#[test]
fn optimizers_match_torch_optim() {
    let cases = load();
    each_device("optimizers_match_torch_optim", |dev| {
        for c in &cases {
            run_case(dev, c);
        }
    });
}
