//! Graph-builder fuzzing (issue 16, "keep it that way"): seeded random programs — sequences of
//! builder calls over every op family with small and hostile shapes and attributes, wrong input
//! counts through `Graph::add`, values of another graph or out of range — go through building,
//! validation, `training`, `gradients`, `with_batch`, `for_inference`, the CPU reference and, for
//! a fraction of small programs, `compile` and one step on the GPU. Each program runs in its own
//! thread under `catch_unwind` and a time limit: a panic or a hang fails the test and prints the
//! program. Every graph built through the API must also pass `Graph::validate`.
//!
//! `WGTRAIN_FUZZ_ITERS` sets the number of random programs (default 3000), `WGTRAIN_FUZZ_SEED`
//! the first seed (decimal or 0x-hex; default fixed, so CI is reproducible). The seeds in
//! `tests/fuzz/corpus/graph/seeds.txt` (programs that once panicked) run first, every time.

mod fuzz;

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fuzz::Prog;
use wgtrain::compile::Options;
use wgtrain::graph::{Op, Value};
use wgtrain::reference::Array;
use wgtrain::{Algorithm, DType, Device, OptimizerConfig, ParamGroup, Residency};

/// Time one program may take: building is milliseconds, a compile and step on lavapipe seconds.
const BUILD_LIMIT: Duration = Duration::from_secs(30);
const GPU_LIMIT: Duration = Duration::from_secs(180);
/// Compile and step one in this many of the programs that are small enough.
const COMPILE_EVERY: u64 = 8;
/// The largest value (elements) a program may have to be evaluated or compiled.
const SMALL: u128 = 4096;

#[derive(Default, Debug)]
struct Stats {
    programs: usize,
    calls: usize,
    ok_calls: usize,
    trained: usize,
    referenced: usize,
    compiled: usize,
    compile_errs: usize,
    stepped: usize,
    /// The slowest program: seconds and seed.
    slowest: (f64, u64),
}

/// What one program did, for the totals.
#[derive(Default)]
struct Outcome {
    trained: bool,
    referenced: bool,
    compiled: Option<bool>,
    stepped: bool,
    /// Why a compiled step failed (a few are expected, e.g. weights never set).
    step_err: Option<String>,
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// The corpus: one seed per line, `#` comments.
fn corpus() -> Vec<u64> {
    include_str!("fuzz/corpus/graph/seeds.txt")
        .lines()
        .filter_map(|l| {
            let l = l.split('#').next()?.trim();
            (!l.is_empty()).then(|| {
                let h = l.strip_prefix("0x").expect("corpus seeds are 0x-hex");
                u64::from_str_radix(h, 16).expect("a corpus seed")
            })
        })
        .collect()
}

/// Feeds for every source of `p.g`: small values; u32 inputs get class indices, sometimes out of
/// range in hostile programs.
fn feeds(p: &mut Prog) -> HashMap<String, Array> {
    let mut f = HashMap::new();
    for n in &p.g.nodes {
        if !n.op.is_source() {
            continue;
        }
        let Some((s, dt)) = n.outputs.first() else {
            continue; // a hand-edited source
        };
        let len: usize = s.iter().product();
        let data = (0..len)
            .map(|_| match dt {
                DType::U32 if p.hostile && p.rng.percent(10) => 1e9,
                DType::U32 => p.rng.below(3) as f64,
                _ => p.rng.below(2001) as f64 / 1000.0 - 1.0,
            })
            .collect();
        f.insert(n.name.clone(), Array::new(s, data));
    }
    f
}

/// Builds, checks and (when `gpu`) compiles and steps the program of `seed`.
fn run(seed: u64, log: Arc<Mutex<Vec<String>>>, gpu: Option<Device>) -> Outcome {
    let mut out = Outcome::default();
    let mut p = Prog::new(seed, log);
    p.say(format!("seed {seed:#x}, hostile {}", p.hostile));
    // An image batch and a feature batch to start from (the steps add more sources).
    let image: Vec<usize> = (0..4)
        .map(|k| {
            if k < 2 {
                1 + p.rng.below(3)
            } else {
                2 + p.rng.below(5)
            }
        })
        .collect();
    p.source(&image, false);
    let features = [1 + p.rng.below(3), 1 + p.rng.below(6)];
    p.source(&features, false);
    for _ in 0..3 + p.rng.below(12) {
        p.step();
    }
    // Whatever the calls did, the graph they left is well formed.
    if let Err(e) = p.g.validate() {
        panic!("a graph built through the API fails Graph::validate: {e}");
    }
    for (i, n) in p.g.nodes.iter().enumerate() {
        for port in 0..n.outputs.len() {
            p.g.shape(Value { node: i, port })
                .expect("every output has a shape");
        }
    }
    // Training from a random value (sometimes summed to one number first).
    let mut loss = p.value();
    if p.rng.bool() {
        let name = p.name();
        if let Ok(v) = p.g.sum(&name, loss, 0) {
            loss = v;
        }
    }
    let training = p.g.training(loss);
    p.say(format!(
        "training({loss:?}) -> {:?}",
        training
            .as_ref()
            .map(|t| t.grads.len())
            .map_err(|e| e.to_string())
    ));
    out.trained = training.is_ok();
    if p.hostile && p.rng.percent(5) {
        // A hand-edited graph: everything below must refuse it (or not need what was edited).
        p.tamper();
    }
    let (a, b, c) = (p.value(), p.value(), p.value());
    let r = p.g.gradients(a, &[b, c]);
    p.say(format!("gradients({a:?}, [{b:?}, ..]) -> ok {}", r.is_ok()));
    let (a, b) = (p.value(), p.value());
    let r = p.g.gradient_of(a, b);
    p.say(format!("gradient_of({a:?}, {b:?}) -> ok {}", r.is_ok()));
    let tampered = p
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("tamper"));
    if !tampered {
        p.g.validate()
            .expect("still well formed after differentiating");
    }
    let batch = p.rng.pick(&[1, 2, 3, 0, 1 << 40, usize::MAX]);
    match p.g.with_batch(batch) {
        Ok(g2) => g2.validate().expect("a re-batched graph is well formed"),
        Err(e) => p.say(format!("with_batch({batch}) -> Err({e})")),
    }
    let twin = p.g.for_inference();
    let _ = twin.validate();
    let small = p.largest() <= SMALL && p.g.nodes.len() < 80;
    if small {
        let f = feeds(&mut p);
        let outs: Vec<Value> = (0..1 + p.rng.below(2)).map(|_| p.value()).collect();
        let r = p.g.eval_reference(&f, &outs);
        p.say(format!("eval_reference({outs:?}) -> ok {}", r.is_ok()));
        out.referenced = r.is_ok();
    }
    // Compile when nothing live can be allocated big: small programs, or values past the u32
    // limit (refused before anything is allocated) mixed only with small ones.
    let huge_only = (p.g.nodes.iter().flat_map(|n| &n.outputs))
        .map(|(s, _)| {
            s.iter()
                .map(|&d| d as u128)
                .fold(1u128, u128::saturating_mul)
        })
        .all(|n| n <= SMALL || n > u32::MAX as u128);
    let Some(dev) = gpu.filter(|_| (small || huge_only) && p.g.nodes.len() < 2000) else {
        return out;
    };
    let mut outputs: Vec<Value> = (0..1 + p.rng.below(2)).map(|_| p.value()).collect();
    outputs.dedup();
    let mut training = training.ok().filter(|_| p.rng.percent(70));
    if p.hostile && p.rng.percent(10) {
        training = training.map(|t| fuzz::tamper::tamper_training(&mut p, &t));
    }
    if p.hostile && p.rng.percent(10) {
        p.tamper();
    }
    if let Some(t) = &training {
        outputs.push(t.loss);
    }
    let opts = Options {
        fuse: p.rng.percent(80),
        training: training.as_ref(),
        residency: if p.rng.percent(20) {
            Residency::JustInTime
        } else {
            Residency::Resident
        },
        ..Options::default()
    };
    p.say(format!(
        "compile({outputs:?}, training {}, fuse {}, {:?})",
        training.is_some(),
        opts.fuse,
        opts.residency
    ));
    let mut c = match p.g.compile(&dev, &outputs, &opts) {
        Ok(c) => c,
        Err(e) => {
            p.say(format!("compile -> Err({e})"));
            out.compiled = Some(false);
            return out;
        }
    };
    out.compiled = Some(true);
    // Weights just-in-time live on the host until set.
    for n in p.g.nodes.iter().filter(|n| n.op == Op::Param) {
        let len = n.outputs[0].0.iter().product::<usize>();
        if len as u128 <= SMALL {
            let _ = c.set(&n.name, &vec![0.5; len]);
        }
    }
    // A training graph runs with an optimizer attached (just-in-time needs one) mostly.
    let mut opt = None;
    if let (Some(layout), true) = (c.param_layout().cloned(), p.rng.percent(80)) {
        let algorithm = p.rng.pick(&[Algorithm::sgd(0.9), Algorithm::adam()]);
        let groups = vec![ParamGroup::new(layout.ranges(|_| true))];
        let o = c.optimizer(OptimizerConfig::new(algorithm, 0.01), groups);
        let attached = o.and_then(|o| c.attach_optimizer(&o).map(|_| o));
        p.say(format!("attach_optimizer -> ok {}", attached.is_ok()));
        opt = attached.ok();
    }
    if let Some(o) = opt.as_mut() {
        let _ = o.prepare_step();
    }
    let r = c.step().and_then(|_| c.wait_all());
    p.say(format!(
        "step -> {:?}",
        r.as_ref().map_err(|e| e.to_string())
    ));
    out.stepped = r.is_ok();
    out.step_err = r.err().map(|e| e.to_string());
    for &v in &outputs {
        let _ = c.read(v);
    }
    let _ = c.read(Value {
        node: usize::MAX,
        port: 0,
    });
    out
}

#[test]
fn random_graph_programs_never_panic_or_hang() {
    let iters = env_u64("WGTRAIN_FUZZ_ITERS").unwrap_or(3000);
    let base = env_u64("WGTRAIN_FUZZ_SEED").unwrap_or(0x5EED_2016);
    let gpu = Device::all().into_iter().find_map(Result::ok);
    if gpu.is_none() && std::env::var("WGTRAIN_REQUIRE_GPU").as_deref() == Ok("1") {
        panic!("no GPU adapter found, and WGTRAIN_REQUIRE_GPU=1");
    }
    eprintln!(
        "fuzz_graph: {iters} programs from seed {base:#x}, GPU: {}",
        gpu.as_ref().map_or("none".into(), |d| d.name().to_string())
    );
    // WGTRAIN_FUZZ_ONLY=0x..,0x.. replays given programs alone (what a failure prints).
    let only: Option<Vec<u64>> = std::env::var("WGTRAIN_FUZZ_ONLY").ok().map(|v| {
        v.split(',')
            .map(|s| u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).expect("hex seeds"))
            .collect()
    });
    // Given and corpus programs always compile and step; random ones one in COMPILE_EVERY.
    let fixed = only.as_ref().map_or(corpus().len(), Vec::len);
    let seeds: Vec<u64> = only.unwrap_or_else(|| {
        corpus()
            .into_iter()
            .chain({
                let mut r = fuzz::Rng(base);
                (0..iters).map(move |_| r.next())
            })
            .collect()
    });
    let (mut stats, mut failures) = (Stats::default(), Vec::new());
    let started = Instant::now();
    for (i, &seed) in seeds.iter().enumerate() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let dev = gpu
            .clone()
            .filter(|_| i < fixed || ((i - fixed) as u64).is_multiple_of(COMPILE_EVERY));
        let limit = if dev.is_some() {
            GPU_LIMIT
        } else {
            BUILD_LIMIT
        };
        let (tx, rx) = mpsc::channel();
        let thread_log = log.clone();
        std::thread::spawn(move || {
            let r = catch_unwind(AssertUnwindSafe(|| run(seed, thread_log, dev)));
            let _ = tx.send(r.map_err(|e| {
                e.downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| e.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into())
            }));
        });
        let program = || log.lock().unwrap().join("\n    ");
        stats.programs += 1;
        let t0 = Instant::now();
        let got = rx.recv_timeout(limit);
        let secs = t0.elapsed().as_secs_f64();
        if secs > stats.slowest.0 {
            stats.slowest = (secs, seed);
        }
        match got {
            Ok(Ok(o)) => {
                stats.trained += o.trained as usize;
                stats.referenced += o.referenced as usize;
                stats.compiled += (o.compiled == Some(true)) as usize;
                stats.compile_errs += (o.compiled == Some(false)) as usize;
                stats.stepped += o.stepped as usize;
                if let Some(e) = o.step_err {
                    eprintln!("fuzz_graph: seed {seed:#x}: the compiled step failed: {e}");
                }
            }
            Ok(Err(msg)) => {
                failures.push(format!("seed {seed:#x} PANICKED: {msg}\n    {}", program()))
            }
            Err(_) => {
                failures.push(format!(
                    "seed {seed:#x} HUNG (over {limit:?})\n    {}",
                    program()
                ));
                break; // its thread still runs; the rest would share its device
            }
        }
        let lines = log.lock().unwrap();
        stats.calls += lines.iter().filter(|l| l.contains(" = ")).count();
        stats.ok_calls += lines
            .iter()
            .filter(|l| l.contains(" = ") && !l.contains("-> Err("))
            .count();
    }
    eprintln!(
        "fuzz_graph: {stats:?} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    eprintln!(
        "fuzz_graph: slowest program {:.2} s, seed {:#x}",
        stats.slowest.0, stats.slowest.1
    );
    assert!(
        failures.is_empty(),
        "{} of {} programs failed:\n{}",
        failures.len(),
        stats.programs,
        failures.join("\n\n")
    );
}
