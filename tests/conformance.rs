//! Conformance tests generated from each op family's own samples (`src/ops/<family>/samples.rs`,
//! listed in `wgtrain::ops::FAMILIES`). For every sample:
//!
//! - the reference vjp against central finite differences of the reference forward (CPU);
//! - the compiled GPU forward against `Graph::eval_reference`, every element, any non-finite
//!   value the reference does not have failing;
//! - the same op run through the generic eager path (`ops::eager::run`), every output port;
//! - the gradients of `sum(y ⊙ dy)` (fixed random dy) with respect to every differentiable
//!   input on the GPU against the reference vjp;
//! - where the op can take a fused neuron, the graph `op → neuron` compiled with fusion against
//!   the unfused plan, and that fusion saved a dispatch.
//!
//! Failures are collected and reported by sample name. `WGTRAIN_SAMPLES=<substring>` runs only
//! the samples whose name contains it.

mod common;

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use common::each_device;
use wgtrain::compile::{Options, Precision};
use wgtrain::graph::{Graph, Value};
use wgtrain::ops::elementwise::{BinaryOp, UnaryOp};
use wgtrain::ops::{FAMILIES, Sample, all_samples, eager};
use wgtrain::reference::{Array, f16_acc_tol, f16_tol, finite_diff, max_rel_diff};
use wgtrain::{Accumulator, DType, Device, Tensor};

type Check = Result<(), String>;

/// The samples selected by `WGTRAIN_SAMPLES` (all by default).
fn samples() -> Vec<Sample> {
    let filter = std::env::var("WGTRAIN_SAMPLES").unwrap_or_default();
    all_samples()
        .into_iter()
        .filter(|s| s.name.contains(&filter))
        .collect()
}

/// Runs `check` on every sample, catching panics, and fails listing every failing sample.
fn for_each_sample(what: &str, check: impl Fn(&Sample) -> Check) {
    let t = std::time::Instant::now();
    let all = samples();
    let mut failures = Vec::new();
    for s in &all {
        let r = catch_unwind(AssertUnwindSafe(|| check(s))).unwrap_or_else(|p| {
            Err(p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into()))
        });
        if let Err(e) = r {
            failures.push(format!("{}: {e}", s.name));
        }
    }
    eprintln!(
        "[{what}] {} samples in {:.1} s, {} failing",
        all.len(),
        t.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "[{what}] {} of {} samples fail:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

/// |got - want| <= tol·(1 + |want|) at every element; a non-finite value on one side only fails.
fn close(what: &str, got: &[f32], want: &[f64], tol: f64) -> Check {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} elements vs {} in the reference",
            got.len(),
            want.len()
        ));
    }
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = g as f64;
        let ok = if g.is_finite() && w.is_finite() {
            (g - w).abs() <= tol * (1.0 + w.abs())
        } else {
            g == w || (g.is_nan() && w.is_nan())
        };
        if !ok {
            return Err(format!(
                "{what}: element {i} of {}: got {g} vs reference {w} (err {:e}, tol {tol:e})",
                got.len(),
                (g - w).abs()
            ));
        }
    }
    Ok(())
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A sample's graph extended to `p = y ⊙ dy`: the graph, p, the sources to differentiate and
/// the feeds (with `dy`).
struct Weighted {
    g: Graph,
    p: Value,
    wrt: Vec<Value>,
    feeds: HashMap<String, Array>,
}

/// The graph extended with a fixed random `dy` like `y` and `p = y ⊙ dy`; the sources to
/// differentiate, and the feeds with `dy`.
fn with_weighted_sum(s: &Sample) -> Result<Weighted, String> {
    let (mut g, y) = s.graph(1).map_err(err)?;
    let mut feeds = s.feeds(&g);
    let wrt = s.wrt(&g);
    let shape = g.shape(y).unwrap().to_vec();
    let dy = g.input("__dy", &shape).map_err(err)?;
    let p = g.binary("__p", BinaryOp::Mul, y, dy).map_err(err)?;
    let d = Array::seeded(&shape, 4242);
    feeds.insert("__dy".into(), Array::from_f32(&shape, &d.to_f32()));
    Ok(Weighted { g, p, wrt, feeds })
}

/// Compiles `g` for `outs` with `opts`, feeds it, runs one step; each output and the dispatches.
fn run_compiled(
    dev: &Device,
    g: &Graph,
    outs: &[Value],
    opts: &Options,
    feeds: &HashMap<String, Array>,
) -> Result<(Vec<Vec<f32>>, usize), String> {
    let c = g.compile(dev, outs, opts).map_err(err)?;
    for n in &g.nodes {
        if !n.op.is_source() {
            continue;
        }
        let a = &feeds[&n.name];
        let r = if n.outputs[0].1 == DType::U32 {
            c.set_u32(
                &n.name,
                &a.data.iter().map(|&v| v as u32).collect::<Vec<_>>(),
            )
        } else {
            c.set(&n.name, &a.to_f32())
        };
        r.map_err(|e| format!("set {:?}: {e}", n.name))?;
    }
    c.step().map_err(err)?;
    let got = outs
        .iter()
        .map(|v| c.read(*v).map_err(err))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((got, c.stats().dispatches_per_step))
}

/// Compiled forward vs the reference.
fn check_forward(dev: &Device, s: &Sample) -> Check {
    let (g, y) = s.graph(1).map_err(err)?;
    let feeds = s.feeds(&g);
    let want = g.eval_reference(&feeds, &[y]).map_err(err)?;
    let (got, _) = run_compiled(dev, &g, &[y], &Options::default(), &feeds)?;
    close("forward", &got[0], &want[0].data, s.tol)
}

/// The op under test through the generic eager path, every output port vs the reference.
fn check_eager(dev: &Device, s: &Sample) -> Check {
    let (g, y) = s.graph(1).map_err(err)?;
    let feeds = s.feeds(&g);
    let node = g.node(y).unwrap().clone();
    let ins_ref = g.eval_reference(&feeds, &node.inputs).map_err(err)?;
    let mut ins = Vec::new();
    for (v, a) in node.inputs.iter().zip(&ins_ref) {
        let t = if g.nodes[v.node].outputs[v.port].1 == DType::U32 {
            let d: Vec<u32> = a.data.iter().map(|&x| x as u32).collect();
            Tensor::from_u32(dev, &a.shape, &d)
        } else {
            Tensor::from_f32(dev, &a.shape, &a.to_f32())
        };
        ins.push(t.map_err(err)?);
    }
    let refs: Vec<&Tensor> = ins.iter().collect();
    let outs = eager::run(dev, node.op.clone(), &refs).map_err(err)?;
    let in_refs: Vec<&Array> = ins_ref.iter().collect();
    let want = node
        .op
        .eval_reference(&in_refs, &node.outputs, 0)
        .map_err(err)?;
    if outs.len() != want.len() {
        return Err(format!("eager: {} outputs vs {}", outs.len(), want.len()));
    }
    for (port, (t, w)) in outs.iter().zip(&want).enumerate().take(s.ports) {
        if t.shape() != w.shape.as_slice() {
            return Err(format!(
                "eager port {port}: shape {:?} vs {:?}",
                t.shape(),
                w.shape
            ));
        }
        if t.dtype() == DType::U32 {
            let got: Vec<f64> = t.to_u32().map_err(err)?.iter().map(|&v| v as f64).collect();
            if got != w.data {
                return Err(format!("eager port {port} (u32): {got:?} vs {:?}", w.data));
            }
        } else {
            close(
                &format!("eager port {port}"),
                &t.to_f32().map_err(err)?,
                &w.data,
                s.tol,
            )?;
        }
    }
    Ok(())
}

/// GPU gradients vs the reference vjp.
fn check_gradients(dev: &Device, s: &Sample) -> Check {
    let Weighted {
        mut g,
        p,
        wrt,
        feeds,
    } = with_weighted_sum(s)?;
    if wrt.is_empty() {
        return Ok(());
    }
    let grads = g.gradients(p, &wrt).map_err(err)?;
    let want = g.eval_reference(&feeds, &grads).map_err(err)?;
    let (got, _) = run_compiled(dev, &g, &grads, &Options::default(), &feeds)?;
    for ((v, got), w) in wrt.iter().zip(&got).zip(&want) {
        close(
            &format!("d/d{}", g.node(*v).unwrap().name),
            got,
            &w.data,
            s.tol,
        )?;
    }
    Ok(())
}

/// The neuron fused after sample `i`'s op (a few kinds, so fusion into each family sees more
/// than one).
fn neuron(i: usize) -> UnaryOp {
    let all = [
        UnaryOp::Tanh,
        UnaryOp::Relu,
        UnaryOp::Sigmoid,
        UnaryOp::LeakyRelu { alpha: 0.1 },
        UnaryOp::Linear { a: 1.5, b: -0.25 },
    ];
    all[i % all.len()]
}

/// `op → neuron` compiled fused vs unfused vs the reference, and one dispatch saved.
fn check_fused(dev: &Device, s: &Sample, i: usize) -> Check {
    let (mut g, y) = s.graph(1).map_err(err)?;
    let fusable = g
        .node(y)
        .map_err(err)?
        .op
        .primitive()
        .map_or(0, |p| p.fusable_neurons(y.port));
    if fusable == 0 {
        return Ok(());
    }
    let n = neuron(i);
    let z = g.unary("__neuron", n, y).map_err(err)?;
    let feeds = s.feeds(&g);
    let want = g.eval_reference(&feeds, &[z]).map_err(err)?;
    let fused_opts = Options::default();
    let plain_opts = Options {
        fuse: false,
        ..Default::default()
    };
    let (fused, df) = run_compiled(dev, &g, &[z], &fused_opts, &feeds)?;
    let (plain, dp) = run_compiled(dev, &g, &[z], &plain_opts, &feeds)?;
    close(&format!("fused {n:?}"), &fused[0], &want[0].data, s.tol)?;
    close(&format!("unfused {n:?}"), &plain[0], &want[0].data, s.tol)?;
    if df >= dp {
        return Err(format!(
            "{n:?} did not fuse: {df} dispatches fused vs {dp} unfused"
        ));
    }
    Ok(())
}

#[test]
fn every_family_has_samples() {
    for f in FAMILIES {
        assert!(
            !(f.samples)().is_empty(),
            "family {:?} lists no samples",
            f.name
        );
    }
    let all = all_samples();
    let mut names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    let n = names.len();
    names.dedup();
    assert_eq!(n, names.len(), "sample names must be unique");
    for op in UnaryOp::all() {
        let name = format!("elementwise/unary/{op:?}");
        assert!(names.contains(&name.as_str()), "no sample {name}");
    }
}

#[test]
fn reference_vjp_matches_finite_differences() {
    for_each_sample("reference vjp vs finite differences", |s| {
        let Weighted {
            mut g,
            p,
            wrt,
            feeds,
        } = with_weighted_sum(s)?;
        if wrt.is_empty() {
            return Ok(());
        }
        let grads = g.gradients(p, &wrt).map_err(err)?;
        let got = g.eval_reference(&feeds, &grads).map_err(err)?;
        for (v, grad) in wrt.iter().zip(&got) {
            let name = g.node(*v).unwrap().name.clone();
            let fd = finite_diff(&feeds[&name], 1e-6, |x| {
                let mut f = feeds.clone();
                f.insert(name.clone(), x.clone());
                g.eval_reference(&f, &[p]).unwrap()[0].data.iter().sum()
            });
            let d = max_rel_diff(&grad.data, &fd.data);
            if d.is_nan() || d >= 1e-5 {
                return Err(format!(
                    "d/d{name}: vjp {:?} vs finite differences {:?} (max rel diff {d:e})",
                    grad.data, fd.data
                ));
            }
        }
        Ok(())
    });
}

/// Every sample compiled in mixed precision (`Precision::F16`: the ops with f16 kernels on f16
/// values, casts at the seams, the rest in f32), forward and gradients, against the reference
/// fed the same f16-rounded values, within `f16_tol` of the longest sum the samples hold.
fn check_f16(dev: &Device, s: &Sample) -> Check {
    let opts = Options {
        precision: Precision::F16,
        ..Options::default()
    };
    let tol = f16_tol(F16_SUM) + s.tol;
    let (g, y) = s.graph(1).map_err(err)?;
    let mut feeds = s.feeds(&g);
    round_to_f16(&mut feeds);
    let want = g.eval_reference(&feeds, &[y]).map_err(err)?;
    let (got, _) = run_compiled(dev, &g, &[y], &opts, &feeds)?;
    close("f16 forward", &got[0], &want[0].data, tol)?;
    // An op with f16 kernels really ran in f16.
    let f16_op = g
        .node(y)
        .unwrap()
        .op
        .primitive()
        .is_some_and(|p| p.supports_f16() && !p.fixed_f32_output(y.port));
    let dtype = g
        .compile(dev, &[y], &opts)
        .map_err(err)?
        .tensor(y)
        .map_err(err)?
        .dtype();
    if f16_op != (dtype == DType::F16) {
        return Err(format!(
            "f16 kernels: {f16_op}, but the output is {dtype:?}"
        ));
    }
    let Weighted {
        mut g,
        p,
        wrt,
        mut feeds,
    } = with_weighted_sum(s)?;
    if wrt.is_empty() {
        return Ok(());
    }
    round_to_f16(&mut feeds);
    let grads = g.gradients(p, &wrt).map_err(err)?;
    let want = g.eval_reference(&feeds, &grads).map_err(err)?;
    let (got, _) = run_compiled(dev, &g, &grads, &opts, &feeds)?;
    for ((v, got), w) in wrt.iter().zip(&got).zip(&want) {
        close(
            &format!("f16 d/d{}", g.node(*v).unwrap().name),
            got,
            &w.data,
            tol,
        )?;
    }
    Ok(())
}

/// The `n` of `f16_tol` for the samples. Their sums accumulate in f32, so storage rounding
/// dominates: all pass at n = 1 on lavapipe; 4 leaves room for a driver whose f32 → f16
/// conversion truncates instead of rounding (Vulkan leaves the mode to the implementation).
const F16_SUM: usize = 4;

#[test]
fn gpu_f16_matches_reference() {
    each_device("conformance f16", |dev| {
        if !dev.caps().shader_f16 {
            // Explicitly refused, never silently run in f32.
            let (g, y) = all_samples()[0].graph(1).unwrap();
            let opts = Options {
                precision: Precision::F16,
                ..Options::default()
            };
            let e = g
                .compile(dev, &[y], &opts)
                .err()
                .expect("F16 without SHADER_F16");
            assert!(e.to_string().contains("SHADER_F16"), "{e}");
            eprintln!("{}: no SHADER_F16, f16 refused as it should be", dev.name());
            return;
        }
        for_each_sample(&format!("f16 on {}", dev.name()), |s| check_f16(dev, s));
    });
}

/// Every sample whose graph sums (a node with `Primitive::accumulation_len`, in the forward or in
/// the gradients) compiled with `Accumulator::F16`, with f32 storage and in mixed precision,
/// forward and gradients, against the reference within `f16_acc_tol` of the chain of sums
/// behind each checked value (plus `f16_tol` for f16 storage, the reference fed f16-rounded
/// values as in `check_f16`).
#[test]
fn gpu_f16_accumulation_matches_reference() {
    each_device("conformance f16 accumulation", |dev| {
        if !dev.caps().shader_f16 {
            let (g, y) = all_samples()[0].graph(1).unwrap();
            let opts = Options {
                accumulator: Accumulator::F16,
                ..Options::default()
            };
            let e = g.compile(dev, &[y], &opts).err().expect("F16 accumulation");
            assert!(e.to_string().contains("SHADER_F16"), "{e}");
            return;
        }
        for precision in [Precision::F32, Precision::F16] {
            let checked = std::sync::atomic::AtomicUsize::new(0);
            let what = format!("f16 accumulation, {precision:?} storage, on {}", dev.name());
            for_each_sample(&what, |s| {
                let ran = check_f16_accumulation(dev, s, precision)?;
                checked.fetch_add(ran as usize, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            });
            // Every family that sums was reached (a filter may narrow the run to fewer).
            if std::env::var("WGTRAIN_SAMPLES").is_err() {
                assert!(checked.into_inner() >= 20, "too few samples sum");
            }
        }
    });
}

/// The longest chain of sums behind each node's outputs (`f16_acc_tol`'s n): its own sum's
/// length plus the longest chain behind its inputs; 0 where nothing behind it sums.
fn sum_chains(g: &Graph) -> Vec<usize> {
    let mut chain: Vec<usize> = Vec::with_capacity(g.nodes.len());
    for n in &g.nodes {
        let ins: Vec<&[usize]> = n
            .inputs
            .iter()
            .map(|u| g.nodes[u.node].outputs[u.port].0.as_slice())
            .collect();
        let own =
            n.op.primitive()
                .and_then(|p| p.accumulation_len(&ins))
                .unwrap_or(0);
        let behind = n.inputs.iter().map(|u| chain[u.node]).max().unwrap_or(0);
        chain.push(own + behind);
    }
    chain
}

/// The tolerance of `v` in a graph accumulating in f16 with storage `storage` (`f16_tol`'s part
/// for f16 storage): the sample's own where no sum is behind it.
fn acc_tol(chains: &[usize], v: Value, s: &Sample, storage: f64) -> f64 {
    match chains[v.node] {
        0 => s.tol + storage,
        n => f16_acc_tol(n) + s.tol + storage,
    }
}

/// Rounds every feed to f16 (what mixed precision casts them to).
fn round_to_f16(feeds: &mut HashMap<String, Array>) {
    for a in feeds.values_mut() {
        a.data
            .iter_mut()
            .for_each(|v| *v = half::f16::from_f64(*v).to_f64());
    }
}

/// One sample under `Accumulator::F16` and storage `precision`; whether anything behind its
/// checked values sums.
fn check_f16_accumulation(dev: &Device, s: &Sample, precision: Precision) -> Result<bool, String> {
    let opts = Options {
        accumulator: Accumulator::F16,
        precision,
        ..Options::default()
    };
    let mixed = precision == Precision::F16;
    let storage = if mixed { f16_tol(F16_SUM) } else { 0.0 };
    let (g, y) = s.graph(1).map_err(err)?;
    let chains = sum_chains(&g);
    let mut ran = false;
    if chains[y.node] > 0 {
        let mut feeds = s.feeds(&g);
        if mixed {
            round_to_f16(&mut feeds);
        }
        let want = g.eval_reference(&feeds, &[y]).map_err(err)?;
        let (got, _) = run_compiled(dev, &g, &[y], &opts, &feeds)?;
        close(
            "f16-accumulated forward",
            &got[0],
            &want[0].data,
            acc_tol(&chains, y, s, storage),
        )?;
        ran = true;
    }
    let Weighted {
        mut g,
        p,
        wrt,
        mut feeds,
    } = with_weighted_sum(s)?;
    if wrt.is_empty() {
        return Ok(ran);
    }
    if mixed {
        round_to_f16(&mut feeds);
    }
    let grads = g.gradients(p, &wrt).map_err(err)?;
    let chains = sum_chains(&g);
    if grads.iter().all(|v| chains[v.node] == 0) {
        return Ok(ran);
    }
    let want = g.eval_reference(&feeds, &grads).map_err(err)?;
    let (got, _) = run_compiled(dev, &g, &grads, &opts, &feeds)?;
    for ((v, got), (w, d)) in wrt.iter().zip(&got).zip(want.iter().zip(&grads)) {
        close(
            &format!("f16-accumulated d/d{}", g.node(*v).unwrap().name),
            got,
            &w.data,
            acc_tol(&chains, *d, s, storage),
        )?;
    }
    Ok(true)
}

#[test]
fn gpu_matches_reference() {
    each_device("conformance", |dev| {
        let index: HashMap<String, usize> = all_samples()
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        for_each_sample(&format!("conformance on {}", dev.name()), |s| {
            check_forward(dev, s)?;
            check_eager(dev, s)?;
            check_gradients(dev, s)?;
            check_fused(dev, s, index[&s.name])
        });
    });
}

/// The families whose launches run on `gemm_core.wgsl`.
const GEMM_FAMILIES: [&str; 4] = ["matmul/", "conv/", "dense/", "recurrent/"];

/// Forward and gradients in f32, and in mixed precision where the adapter has SHADER_F16: the
/// checks the alternative kernel paths below run on each sample.
fn check_f32_and_f16(dev: &Device, s: &Sample) -> Check {
    check_forward(dev, s)?;
    check_gradients(dev, s)?;
    if dev.caps().shader_f16 {
        check_f16(dev, s)?;
    }
    Ok(())
}

/// The GEMM families' samples again on the main loop the adapter does not take by default (the
/// tiled one on a CPU adapter, the direct one on a GPU), in f32 and in mixed precision: both loops
/// are covered on every adapter.
#[test]
fn gpu_matches_reference_on_the_other_gemm_loop() {
    use wgtrain::launch::{GemmLoop, with_gemm_loop};
    each_device("conformance, other gemm loop", |dev| {
        let other = if dev.is_cpu() {
            GemmLoop::Tiled
        } else {
            GemmLoop::Direct
        };
        with_gemm_loop(other, || {
            for_each_sample(&format!("{other:?} loop on {}", dev.name()), |s| {
                if !GEMM_FAMILIES.iter().any(|f| s.name.starts_with(f)) {
                    return Ok(());
                }
                check_f32_and_f16(dev, s)
            });
        });
    });
}

/// The convolution samples again with every eligible pass (3×3 or 5×5, stride 1, one group) on
/// Winograd, which `Auto` leaves to the implicit GEMM on CPU adapters and for few channels; in
/// f32 and in mixed precision.
#[test]
fn gpu_matches_reference_on_winograd() {
    use wgtrain::ops::conv::winograd::{ConvAlgo, with_conv_algo};
    each_device("conformance, winograd", |dev| {
        with_conv_algo(ConvAlgo::Winograd, || {
            for_each_sample(&format!("winograd on {}", dev.name()), |s| {
                if !s.name.starts_with("conv/") {
                    return Ok(());
                }
                check_f32_and_f16(dev, s)
            });
        });
    });
}

/// The convolution samples again on the implicit GEMM alone, and on the loops over the taps
/// wherever the reduction is short (`conv::short_k`: most samples' sizes), which `Auto` takes on
/// GPUs only.
#[test]
fn gpu_matches_reference_on_the_implicit_gemm_and_the_tap_loops() {
    use wgtrain::ops::conv::winograd::{ConvAlgo, with_conv_algo};
    each_device("conformance, implicit gemm and tap loops", |dev| {
        for algo in [ConvAlgo::ImplicitGemm, ConvAlgo::ShortK] {
            with_conv_algo(algo, || {
                for_each_sample(&format!("{algo:?} on {}", dev.name()), |s| {
                    if !s.name.starts_with("conv/") {
                        return Ok(());
                    }
                    check_f32_and_f16(dev, s)
                });
            });
        }
    });
}

#[test]
fn max_rel_diff_sees_nan() {
    assert!(max_rel_diff(&[1.0, f64::NAN], &[1.0, 2.0]).is_nan());
    assert!(max_rel_diff(&[f64::NAN, 1.0], &[1.0, 1.0]).is_nan());
    assert!(max_rel_diff(&[1.0, 2.0], &[1.0, f64::NAN]).is_nan());
    assert_eq!(max_rel_diff(&[f64::NAN, 1.0], &[f64::NAN, 1.0]), 0.0);
    assert!(max_rel_diff(&[f64::INFINITY], &[1.0]) > 1.0);
}

/// Every comparison the tests use fails on a non-finite value the reference does not have, and
/// passes one the reference has too.
#[test]
fn comparisons_fail_on_non_finite_values() {
    let fails = |g: f32, r: f64| {
        std::panic::catch_unwind(|| common::assert_close("probe", &[g], &[r], 1.0, 1.0)).is_err()
    };
    for (g, r) in [
        (f32::NAN, 1.0),
        (f32::INFINITY, 1.0),
        (1.0, f64::NAN),
        (f32::NEG_INFINITY, f64::INFINITY),
    ] {
        assert!(fails(g, r), "assert_close passed {g} vs {r}");
        assert!(
            close("probe", &[g], &[r], 1.0).is_err(),
            "close passed {g} vs {r}"
        );
    }
    for (g, r) in [(f32::NAN, f64::NAN), (f32::INFINITY, f64::INFINITY)] {
        assert!(!fails(g, r), "assert_close refused {g} vs {r}");
        assert!(
            close("probe", &[g], &[r], 1.0).is_ok(),
            "close refused {g} vs {r}"
        );
    }
}
