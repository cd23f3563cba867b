//! The fused optimizer kernels against the f64 reference (`optim::reference`): several steps on an
//! arena with awkward ranges (1, 7, 33, 257 and one spanning two chunks), three parameter groups
//! and untouched gaps, launches recorded once and replayed as the compiled graph will.

mod common;

use common::update::{state_mismatch, update_mismatch};
use common::{assert_close, each_device};
use wgtrain::optim::custom::{CustomUpdate, EXAMPLE_SGD_MOMENTUM};
use wgtrain::optim::reference::RefOptimizer;
use wgtrain::optim::{Algorithm, GradOptions, Optimizer, OptimizerConfig, ParamGroup, Schedule};
use wgtrain::reference::Array;
use wgtrain::{DType, Device, Tensor};

const N: usize = 1700;
const STEPS: usize = 4;

fn groups() -> Vec<ParamGroup> {
    vec![
        ParamGroup::new(vec![0..1, 128..161]).weight_decay(0.05),
        ParamGroup::new(vec![64..71, 192..449]).lr_scale(0.5),
        ParamGroup::range(512..1700)
            .lr_scale(2.0)
            .weight_decay(0.01),
    ]
}

fn grouped(groups: &[ParamGroup], i: usize) -> bool {
    groups
        .iter()
        .any(|g| g.ranges.iter().any(|r| r.contains(&i)))
}

fn init_params() -> Vec<f32> {
    Array::seeded(&[N], 1).to_f32()
}

fn grads_at(step: usize) -> Vec<f32> {
    Array::seeded(&[N], 100 + step as u64).to_f32()
}

/// Runs `cfg` on the GPU and `reference` (the same, or a deliberately wrong twin) in the f64
/// reference for STEPS steps; the first disagreement in an update, the state or (when clipping
/// by norm) the measured gradient norm. Elements outside every group must stay bit for bit.
fn compare(
    dev: &Device,
    what: &str,
    cfg: OptimizerConfig,
    reference: OptimizerConfig,
    groups: Vec<ParamGroup>,
) -> Option<String> {
    let p0 = init_params();
    let params = Tensor::from_f32(dev, &[N], &p0).unwrap();
    let grads = Tensor::zeros(dev, &[N], DType::F32).unwrap();
    let mut opt = Optimizer::new(dev, cfg, groups.clone(), N).unwrap();
    let launches = opt.launches(&params, &grads).unwrap();
    let mut r = RefOptimizer::new(reference, groups.clone(), N);
    let mut rp: Vec<f64> = p0.iter().map(|&x| x as f64).collect();
    let mut got = p0.clone();
    let mut worst = 0.0f64;
    for s in 0..STEPS {
        let g = grads_at(s);
        grads.write_f32(&g).unwrap();
        let info = opt.prepare_step().unwrap();
        assert_eq!(info.step, s as u64 + 1);
        dev.run(&launches).unwrap();
        let before = std::mem::replace(&mut got, params.to_f32().unwrap());
        let ref_before = rp.clone();
        r.step(&mut rp, &g.iter().map(|&x| x as f64).collect::<Vec<_>>());
        let at = format!("{what}: step {}", s + 1);
        let (e, w) = update_mismatch(&at, &before, &got, &ref_before, &rp, 1);
        if e.is_some() {
            return e;
        }
        worst = worst.max(w);
    }
    for i in 0..N {
        if !grouped(&groups, i) {
            assert_eq!(
                got[i].to_bits(),
                p0[i].to_bits(),
                "{what}: element {i} is in no group but changed"
            );
        }
    }
    let state = opt.read_state().unwrap();
    let (e, w) = state_mismatch(what, &r.slots, &state, &r.state_flat(), N);
    if e.is_some() {
        return e;
    }
    eprintln!("{what}: worst update {worst:.3} and state {w:.3} of the tolerance");
    match (opt.grad_norm().unwrap(), r.last_norm) {
        (Some(norm), Some(want)) if !is_within(norm as f64, want, 1e-5 * want) => {
            Some(format!("{what}: grad norm {norm} vs {want}"))
        }
        (None, Some(_)) | (Some(_), None) => {
            Some(format!("{what}: grad norm measured by one side only"))
        }
        _ => None,
    }
}

/// `|got - want| <= tol`, false for NaN.
fn is_within(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol
}

/// Runs `cfg` for STEPS steps on the GPU and in the reference and holds them to the tolerance rule.
fn check(dev: &Device, what: &str, cfg: OptimizerConfig, groups: Vec<ParamGroup>) {
    if let Some(e) = compare(dev, what, cfg.clone(), cfg, groups) {
        panic!("{e}");
    }
}

fn cfg(algorithm: Algorithm, lr: f64) -> OptimizerConfig {
    OptimizerConfig::new(algorithm, lr)
}

#[test]
fn sgd_matches_reference() {
    each_device("sgd_matches_reference", |dev| {
        check(dev, "sgd", cfg(Algorithm::sgd(0.0), 0.1), groups());
        let damp = Algorithm::Sgd {
            momentum: 0.9,
            dampening: 0.25,
            nesterov: false,
        };
        let mut c = cfg(damp, 0.05);
        c.schedule = Schedule::Step {
            step_size: 2,
            gamma: 0.5,
        };
        check(dev, "sgd momentum + dampening, step schedule", c, groups());
        let nesterov = Algorithm::Sgd {
            momentum: 0.8,
            dampening: 0.0,
            nesterov: true,
        };
        check(dev, "sgd nesterov", cfg(nesterov, 0.05), groups());
    });
}

fn adam(amsgrad: bool, decoupled: bool) -> Algorithm {
    let (beta1, beta2, eps) = (0.8, 0.95, 1e-6);
    if decoupled {
        Algorithm::AdamW {
            beta1,
            beta2,
            eps,
            amsgrad,
        }
    } else {
        Algorithm::Adam {
            beta1,
            beta2,
            eps,
            amsgrad,
        }
    }
}

#[test]
fn adam_and_adamw_match_reference() {
    each_device("adam_and_adamw_match_reference", |dev| {
        check(dev, "adam", cfg(Algorithm::adam(), 0.01), groups());
        check(dev, "adam amsgrad", cfg(adam(true, false), 0.01), groups());
        let mut wd = groups();
        wd[0].weight_decay = 0.1;
        check(dev, "adamw", cfg(adam(false, true), 0.01), wd.clone());
        check(dev, "adamw amsgrad", cfg(adam(true, true), 0.01), wd);
    });
}

#[test]
fn rmsprop_matches_reference() {
    each_device("rmsprop_matches_reference", |dev| {
        for (momentum, centered) in [(0.0, false), (0.5, false), (0.0, true), (0.7, true)] {
            let alg = Algorithm::RmsProp {
                alpha: 0.9,
                eps: 1e-6,
                momentum,
                centered,
            };
            check(
                dev,
                &format!("rmsprop momentum {momentum} centered {centered}"),
                cfg(alg, 0.01),
                groups(),
            );
        }
    });
}

#[test]
fn preprocessing_and_schedules_match_reference() {
    each_device("preprocessing_and_schedules_match_reference", |dev| {
        // Rescale, clip by value, L1 and L2 per group, with SGD momentum.
        let mut g = groups();
        g[0] = g[0].clone().l1(0.01).l2(0.02);
        g[2] = g[2].clone().l2(0.1);
        let mut c = cfg(Algorithm::sgd(0.9), 0.1);
        c.grad = GradOptions {
            rescale: 0.5,
            clip_value: Some(0.3),
            clip_norm: None,
        };
        check(dev, "sgd rescale + clip value + L1/L2", c, g.clone());
        // Clipping by global norm (active: the norm is ~12) under warm-up then cosine, with Adam.
        let mut c = cfg(adam(true, false), 0.01);
        c.grad = GradOptions {
            rescale: 0.5,
            clip_value: None,
            clip_norm: Some(1.0),
        };
        c.schedule = Schedule::warmup(
            2,
            0.1,
            Schedule::Cosine {
                t_max: 3,
                eta_min: 1e-4,
            },
        );
        check(dev, "adam clip norm + warm-up cosine", c.clone(), g.clone());
        // Not active: a threshold above the norm leaves the gradient as is.
        c.grad.clip_norm = Some(1e3);
        check(dev, "adam clip norm inactive", c, g.clone());
        // Everything at once, with RMSProp.
        let mut c = cfg(
            Algorithm::RmsProp {
                alpha: 0.9,
                eps: 1e-6,
                momentum: 0.5,
                centered: true,
            },
            0.01,
        );
        c.grad = GradOptions {
            rescale: 2.0,
            clip_value: Some(0.5),
            clip_norm: Some(5.0),
        };
        check(dev, "rmsprop everything", c, g);
    });
}

/// The tolerance rule is tight enough to matter: a reference with a slightly wrong
/// hyperparameter (what a kernel reading the wrong uniform or decaying once too often would
/// compute) is caught. The old rule (2e-5 + 2e-4·|p| on the parameter) let the first two pass.
#[test]
fn the_update_tolerance_sees_small_mistakes() {
    each_device("the_update_tolerance_sees_small_mistakes", |dev| {
        let wrong_beta2 = Algorithm::Adam {
            beta1: 0.8,
            beta2: 0.96,
            eps: 1e-6,
            amsgrad: false,
        };
        let rms = |alpha| Algorithm::RmsProp {
            alpha,
            eps: 1e-6,
            momentum: 0.0,
            centered: false,
        };
        let cases = [
            (
                "adam lr 0.1% high",
                cfg(Algorithm::adam(), 0.01),
                cfg(Algorithm::adam(), 0.01001),
            ),
            (
                "adam beta2 0.95 read as 0.96",
                cfg(adam(false, false), 0.01),
                cfg(wrong_beta2, 0.01),
            ),
            (
                "rmsprop alpha 0.9 read as 0.91",
                cfg(rms(0.9), 0.01),
                cfg(rms(0.91), 0.01),
            ),
            (
                "sgd momentum 0.9 read as 0.901",
                cfg(Algorithm::sgd(0.9), 0.1),
                cfg(Algorithm::sgd(0.901), 0.1),
            ),
        ];
        for (what, gpu, wrong) in cases {
            let e = compare(dev, what, gpu, wrong, groups());
            assert!(e.is_some(), "{what}: the comparison did not see it");
            eprintln!("caught: {}", e.unwrap());
        }
    });
}

/// Runs `cfg` for STEPS steps; returns the parameters and state bits.
fn run_gpu(dev: &Device, cfg: OptimizerConfig, groups: Vec<ParamGroup>) -> (Vec<u32>, Vec<u32>) {
    let params = Tensor::from_f32(dev, &[N], &init_params()).unwrap();
    let grads = Tensor::zeros(dev, &[N], DType::F32).unwrap();
    let mut opt = Optimizer::new(dev, cfg, groups, N).unwrap();
    for s in 0..STEPS {
        grads.write_f32(&grads_at(s)).unwrap();
        opt.step(&params, &grads).unwrap();
    }
    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect();
    (
        bits(params.to_f32().unwrap()),
        bits(opt.read_state().unwrap()),
    )
}

#[test]
fn custom_update_equals_builtin_sgd() {
    each_device("custom_update_equals_builtin_sgd", |dev| {
        let mut grad = GradOptions {
            clip_value: Some(0.4),
            ..Default::default()
        };
        grad.rescale = 0.75;
        let with = |algorithm| OptimizerConfig {
            algorithm,
            lr: 0.1,
            schedule: Schedule::Step {
                step_size: 2,
                gamma: 0.5,
            },
            grad: grad.clone(),
        };
        // With state: the example (momentum 0.9 in slot 0) vs the built-in, bit for bit.
        let user = CustomUpdate::new("sgd-momentum", EXAMPLE_SGD_MOMENTUM, &["momentum_buffer"]);
        let a = run_gpu(dev, with(Algorithm::Custom(user)), groups());
        let b = run_gpu(dev, with(Algorithm::sgd(0.9)), groups());
        assert!(a == b, "custom SGD with momentum differs from the built-in");
        // Without state.
        let src =
            "fn update(i: u32, p: f32, g: f32, step: u32, lr: f32) -> f32 { return p - lr * g; }";
        let user = CustomUpdate::new("plain", src, &[]);
        let a = run_gpu(dev, with(Algorithm::Custom(user)), groups());
        let b = run_gpu(dev, with(Algorithm::sgd(0.0)), groups());
        assert!(a == b, "custom plain SGD differs from the built-in");
    });
}

#[test]
fn invalid_custom_wgsl_is_an_error_with_nagas_message() {
    each_device(
        "invalid_custom_wgsl_is_an_error_with_nagas_message",
        |dev| {
            let new = |src: &str| {
                let c = cfg(Algorithm::Custom(CustomUpdate::new("bad", src, &[])), 0.1);
                Optimizer::new(dev, c, groups(), N).unwrap_err().to_string()
            };
            let e = new(
                "fn update(i: u32, p: f32, g: f32, step: u32, lr: f32) -> f32 { return p - lr * undefined_thing; }",
            );
            eprintln!("{e}");
            assert!(
                e.contains("\"bad\"") && e.contains("undefined_thing"),
                "{e}"
            );
            // Wrong signature: the template's call does not type-check.
            let e = new("fn update(p: f32) -> f32 { return p; }");
            eprintln!("{e}");
            assert!(e.contains("does not compile"), "{e}");
            let e = new("this is not WGSL");
            assert!(e.contains("does not compile"), "{e}");
            // Writing the gradients, which the template binds read-only: refused at compile,
            // not when a launch whose buffers allow read-only bindings takes that variant.
            let e = new(
                "fn update(i: u32, p: f32, g: f32, step: u32, lr: f32) -> f32 { opt_grads[i] = 0.0; return p - lr * g; }",
            );
            assert!(e.contains("does not compile"), "{e}");
            // A valid one still compiles after the failures, and its update is the one run.
            let ok = "fn update(i: u32, p: f32, g: f32, step: u32, lr: f32) -> f32 { return p - 2.0 * lr * g; }";
            let c = cfg(Algorithm::Custom(CustomUpdate::new("twice", ok, &[])), 0.25);
            let mut opt = Optimizer::new(dev, c, vec![ParamGroup::range(0..N)], N).unwrap();
            let p0 = init_params();
            let g = grads_at(0);
            let params = Tensor::from_f32(dev, &[N], &p0).unwrap();
            let grads = Tensor::from_f32(dev, &[N], &g).unwrap();
            opt.step(&params, &grads).unwrap();
            let want: Vec<f64> = (p0.iter().zip(&g))
                .map(|(&p, &g)| p as f64 - 0.5 * g as f64)
                .collect();
            assert_close(
                "custom update",
                &params.to_f32().unwrap(),
                &want,
                1e-6,
                1e-6,
            );
        },
    );
}

#[test]
fn bad_configurations_are_errors() {
    each_device("bad_configurations_are_errors", |dev| {
        let sgd = || cfg(Algorithm::sgd(0.0), 0.1);
        let err = |c: OptimizerConfig, g: Vec<ParamGroup>| {
            Optimizer::new(dev, c, g, N).unwrap_err().to_string()
        };
        let e = err(
            sgd(),
            vec![ParamGroup::range(0..10), ParamGroup::range(5..20)],
        );
        assert!(e.contains("overlaps"), "{e}");
        let e = err(sgd(), vec![ParamGroup::range(0..N + 1)]);
        assert!(e.contains("not inside"), "{e}");
        let nesterov = Algorithm::Sgd {
            momentum: 0.0,
            dampening: 0.0,
            nesterov: true,
        };
        let e = err(cfg(nesterov, 0.1), groups());
        assert!(e.contains("Nesterov"), "{e}");
        let e = err(cfg(adam(false, false), -1.0), groups());
        assert!(e.contains("lr"), "{e}");
        let five = CustomUpdate::new("x", EXAMPLE_SGD_MOMENTUM, &["a", "b", "c", "d", "e"]);
        let e = err(cfg(Algorithm::Custom(five), 0.1), groups());
        assert!(e.contains("at most"), "{e}");
        // Arenas of the wrong size.
        let opt = Optimizer::new(dev, sgd(), groups(), N).unwrap();
        let small = Tensor::zeros(dev, &[N - 1], DType::F32).unwrap();
        let full = Tensor::zeros(dev, &[N], DType::F32).unwrap();
        let e = opt.launches(&small, &full).unwrap_err().to_string();
        assert!(e.contains("params"), "{e}");
    });
}

/// The global norm over more chunks than the finishing workgroup has invocations (each sums
/// several partials): right, and the same bits every time (fixed reduction order).
#[test]
fn global_norm_over_many_chunks_is_deterministic() {
    each_device("global_norm_over_many_chunks_is_deterministic", |dev| {
        let n = 300 * 1024 + 7;
        let groups = vec![
            ParamGroup::range(0..1000),
            ParamGroup::range(1000..n).lr_scale(0.5),
        ];
        let mut c = cfg(Algorithm::sgd(0.0), 0.1);
        c.grad.clip_norm = Some(1.0);
        let p0 = Array::seeded(&[n], 3).to_f32();
        let g = Array::seeded(&[n], 4).to_f32();
        let run = || {
            let params = Tensor::from_f32(dev, &[n], &p0).unwrap();
            let grads = Tensor::from_f32(dev, &[n], &g).unwrap();
            let mut opt = Optimizer::new(dev, c.clone(), groups.clone(), n).unwrap();
            opt.step(&params, &grads).unwrap();
            let bits: Vec<u32> = params
                .to_f32()
                .unwrap()
                .iter()
                .map(|x| x.to_bits())
                .collect();
            (opt.grad_norm().unwrap().unwrap(), bits)
        };
        let (norm, bits) = run();
        let mut r = RefOptimizer::new(c.clone(), groups.clone(), n);
        let mut rp: Vec<f64> = p0.iter().map(|&x| x as f64).collect();
        r.step(&mut rp, &g.iter().map(|&x| x as f64).collect::<Vec<_>>());
        let want = r.last_norm.unwrap();
        assert!(
            (norm as f64 - want).abs() <= 1e-5 * want,
            "norm {norm} vs {want}"
        );
        let got: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b)).collect();
        assert_close("params", &got, &rp, 1e-6, 1e-5);
        for _ in 0..2 {
            assert!(
                run() == (norm, bits.clone()),
                "the norm reduction is not reproducible"
            );
        }
    });
}
