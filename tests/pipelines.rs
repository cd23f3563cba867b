//! Compute pipelines built on worker threads (`WGTRAIN_PIPELINE_THREADS`) while a graph lowers:
//! a compile gives the same step, bit for bit, built on the calling thread or on several; many
//! pipelines asked for at once from several threads all resolve, each the one asked for; and a
//! pipeline that fails to build is an `Err` naming its shader and entry point either way, never
//! a panic or a hang.
//!
//! The thread count is read when the device opens, once per process, so each case runs this
//! binary again (`in_child`) with the setting under test: a fresh device and pipeline cache.

mod common;

use std::process::Command;

use wgtrain::launch::Shader;
use wgtrain::optim::custom::CustomUpdate;
use wgtrain::optim::{Algorithm, Optimizer, OptimizerConfig, ParamGroup};
use wgtrain::train::Inputs;
use wgtrain::train::models::{MnistSize, mnist};
use wgtrain::{DType, Device, Graph, Options, Tensor, UnaryOp};

/// Set in a child process: the name of the child test to run (the others return at once).
const CHILD: &str = "WGTRAIN_PIPELINES_CHILD";

/// Runs the test `test` of this binary in a fresh process with `WGTRAIN_PIPELINE_THREADS` =
/// `threads`; what it printed after each `RESULT ` (libtest's own line may come first).
fn in_child(test: &str, threads: impl std::fmt::Display) -> Vec<String> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .env("WGTRAIN_PIPELINE_THREADS", threads.to_string())
        .output()
        .expect("the test binary runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "{test} with {threads} pipeline threads failed:\n{stdout}\n{stderr}"
    );
    let results: Vec<String> = (stdout.lines())
        .filter_map(|l| l.split_once("RESULT "))
        .map(|(_, r)| r.to_string())
        .collect();
    assert!(!results.is_empty(), "{test} printed no result:\n{stdout}");
    results
}

const BAD_COUNT: &str = "child_bad_thread_count";

#[test]
fn a_thread_count_that_is_not_a_number_is_an_err_opening_the_device() {
    let result = in_child(BAD_COUNT, "many");
    assert!(
        result == ["refused"] || result[0].starts_with("skipped"),
        "{result:?}"
    );
}

/// Opens the device with `WGTRAIN_PIPELINE_THREADS=many`.
#[test]
fn child_bad_thread_count() {
    if !is_child(BAD_COUNT) {
        return;
    }
    match Device::new() {
        Ok(dev) => panic!("{} opened with WGTRAIN_PIPELINE_THREADS=many", dev.name()),
        Err(e) if e.to_string().contains("WGTRAIN_PIPELINE_THREADS=many") => {
            println!("RESULT refused")
        }
        Err(e) if std::env::var("WGTRAIN_REQUIRE_GPU").as_deref() != Ok("1") => {
            println!("RESULT skipped: {e}")
        }
        Err(e) => panic!("no device, and WGTRAIN_REQUIRE_GPU=1: {e}"),
    }
}

/// Whether this process is the child running `test`.
fn is_child(test: &str) -> bool {
    std::env::var(CHILD).as_deref() == Ok(test)
}

/// Runs `f` on every adapter in a child, printing `RESULT <adapter> <what f returns>`, after
/// checking the device took the thread count the parent set.
fn child_on_each_device(test: &str, f: impl Fn(&Device) -> String) {
    common::each_device(test, |dev| {
        let asked: usize = std::env::var("WGTRAIN_PIPELINE_THREADS")
            .ok()
            .and_then(|s| s.parse().ok())
            .expect("the parent sets the thread count");
        assert_eq!(dev.pipeline_threads(), asked, "{}", dev.name());
        println!("RESULT {} {}", dev.name(), f(dev));
    });
}

const MNIST_STEPS: &str = "child_mnist_steps";

#[test]
fn a_conv_net_trains_bit_identically_built_on_one_thread_or_several() {
    let one = in_child(MNIST_STEPS, 1);
    let four = in_child(MNIST_STEPS, 4);
    assert_eq!(one, four, "1 pipeline thread vs 4");
}

/// Compiles a small MNIST network for training (convolutions, pooling, dense layers, dropout:
/// a few dozen pipelines, several differing only in their constants) and prints the bits of
/// two steps' losses and of the weights after them.
#[test]
fn child_mnist_steps() {
    if !is_child(MNIST_STEPS) {
        return;
    }
    child_on_each_device(MNIST_STEPS, |dev| {
        let size = MnistSize {
            conv1: 4,
            conv2: 8,
            hidden: 16,
            kernel: 3,
        };
        let batch = 4;
        let net = mnist(batch, size, 7).unwrap();
        let start = std::time::Instant::now();
        let mut model = (net.graph)
            .train(dev, net.loss, OptimizerConfig::sgd(0.05, 0.9))
            .unwrap();
        eprintln!(
            "compiled in {:.2} s on {} pipeline threads",
            start.elapsed().as_secs_f64(),
            dev.pipeline_threads()
        );
        let image: Vec<f32> = (0..batch * 28 * 28)
            .map(|i| ((i * 37) % 101) as f32 / 101.0 - 0.5)
            .collect();
        let batch_in = Inputs::new()
            .f32("image", &image)
            .u32("labels", &[3, 1, 4, 1])
            .f32("weights", &[1.0; 4]);
        let mut bits = Vec::new();
        for _ in 0..2 {
            model.step(&batch_in).unwrap();
            bits.push(model.loss().unwrap().to_bits() as u64);
        }
        assert_ne!(
            bits[0], bits[1],
            "the second step trained on the first's update"
        );
        for name in ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.bias"] {
            let w = model.param(name).unwrap();
            // FNV-1a over the weights' bits: one line per network, yet any flipped bit shows.
            let hash = (w.iter()).fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
                (h ^ v.to_bits() as u64).wrapping_mul(0x100_0000_01b3)
            });
            bits.push(hash);
        }
        format!("{bits:x?}")
    });
}

/// A kernel with two pipeline constants: `K`, written (times 1000, plus the first parameter
/// word) into the output, and `WG`, its workgroup size.
static OVERRIDES: Shader = Shader {
    name: "test_overrides",
    parts: &["override K: u32 = 0u;
override WG: u32 = 1u;
@group(0) @binding(0) var<uniform> p: array<vec4<u32>, 16>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(WG) fn write_k(@builtin(local_invocation_index) i: u32) {
    if i == 0u { out[0] = K * 1000u + p[0].x; }
}
"],
    user_code: false,
};

/// A launch of `OVERRIDES` with `K` = `k`, writing into `out`: its `Err` where the pipeline
/// failed at once, else the `Err` of running it.
fn run_overrides(dev: &Device, k: f64, word: u32, out: &Tensor) -> wgtrain::Result<()> {
    let constants = [("K", k), ("WG", 1.0)];
    let l = dev.launch(
        &OVERRIDES,
        "write_k",
        &constants,
        &[word],
        &[out.buffer()],
        [1, 1, 1],
    )?;
    dev.run(&[l])
}

const MANY: &str = "child_many_pipelines";

#[test]
fn many_pipelines_asked_for_from_several_threads_all_resolve() {
    for threads in [1, 4] {
        for line in in_child(MANY, threads) {
            assert!(line.ends_with(" ok"), "{threads} threads: {line}");
        }
    }
}

/// Four threads each prepare 48 launches of distinct constants, overlapping the others' (so
/// some keys are asked for by two threads at once and share one build), run them and check
/// every output holds its own `K`.
#[test]
fn child_many_pipelines() {
    if !is_child(MANY) {
        return;
    }
    child_on_each_device(MANY, |dev| {
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..4u32)
                .map(|t| {
                    s.spawn(move || {
                        let ks: Vec<u32> = (0..48).map(|i| (t * 16 + i) % 96).collect();
                        let outs: Vec<Tensor> = (ks.iter())
                            .map(|_| Tensor::zeros(dev, &[1], DType::U32).unwrap())
                            .collect();
                        let launches: Vec<_> = (ks.iter().zip(&outs))
                            .map(|(&k, out)| {
                                let constants = [("K", k as f64), ("WG", 1.0)];
                                let b = [out.buffer()];
                                (dev.launch(&OVERRIDES, "write_k", &constants, &[t], &b, [1, 1, 1]))
                                    .unwrap()
                            })
                            .collect();
                        dev.run(&launches).unwrap();
                        for (&k, out) in ks.iter().zip(&outs) {
                            assert_eq!(out.to_u32().unwrap(), vec![k * 1000 + t], "thread {t}");
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().expect("a thread asking for pipelines panicked");
            }
        });
        "ok".to_string()
    });
}

const FAILING: &str = "child_failing_pipelines";

#[test]
fn a_pipeline_that_fails_to_build_is_the_same_err_on_one_thread_or_several() {
    let one = in_child(FAILING, 1);
    let four = in_child(FAILING, 4);
    assert_eq!(one, four, "1 pipeline thread vs 4");
}

/// Pipelines whose modules pass naga's validation but fail when built: a constant out of its
/// type's range (a u32 of -1), and a custom optimizer whose WGSL declares a pipeline constant
/// nothing gives a value. Each is an `Err` naming its shader and entry point (the launch's, or
/// else running it: a compiled step refuses it every time, without hanging on the permits of
/// steps never submitted), a retry fails again (a failed build is not kept as a success), and a
/// good pipeline of the same shader still runs after. Prints the messages, which the parent
/// compares across thread counts.
#[test]
fn child_failing_pipelines() {
    if !is_child(FAILING) {
        return;
    }
    child_on_each_device(FAILING, |dev| {
        let mut seen = Vec::new();
        let out = Tensor::zeros(dev, &[1], DType::U32).unwrap();
        for _ in 0..2 {
            let e = run_overrides(dev, -1.0, 0, &out).unwrap_err().to_string();
            assert!(e.contains("pipeline test_overrides::write_k"), "{e}");
            seen.push(e);
        }
        run_overrides(dev, 2.0, 5, &out).unwrap();
        assert_eq!(out.to_u32().unwrap(), vec![2005]);

        let mut g = Graph::new();
        let x = g.input("x", &[4]).unwrap();
        let y = g.unary("relu", UnaryOp::Relu, x).unwrap();
        let mut c = g.compile(dev, &[y], &Options::default()).unwrap();
        c.set("x", &[-1.0, 2.0, -3.0, 4.0]).unwrap();
        let constants = [("K", -2.0), ("WG", 1.0)];
        let bad = dev.launch(
            &OVERRIDES,
            "write_k",
            &constants,
            &[0],
            &[out.buffer()],
            [1; 3],
        );
        // Built on a worker, the pipeline's failure is the waiter's, never the launch's.
        assert_eq!(bad.is_ok(), dev.pipeline_threads() > 1);
        match bad {
            Err(e) => seen.push(e.to_string()),
            Ok(l) => {
                c.set_update(vec![l], None);
                // More steps than the two that may be in flight: a refused one holds no permit.
                let errs: Vec<String> = (0..3).map(|_| c.step().unwrap_err().to_string()).collect();
                assert!(errs.iter().all(|e| *e == errs[0]), "{errs:?}");
                seen.push(errs[0].clone());
            }
        }
        c.set_update(Vec::new(), None);
        c.step().unwrap();
        assert_eq!(c.read(y).unwrap(), vec![0.0, 2.0, 0.0, 4.0]);

        let src = "override scale: f32;
fn update(i: u32, p: f32, g: f32, step: u32, lr: f32) -> f32 { return p - scale * lr * g; }";
        let update = CustomUpdate::new("unset", src, &[]);
        let cfg = OptimizerConfig::new(Algorithm::Custom(update), 0.1);
        let e = match Optimizer::new(dev, cfg, vec![ParamGroup::range(0..8)], 8) {
            Ok(_) => panic!("a custom update with an unset constant was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("\"unset\"") && e.contains("custom_update"),
            "{e}"
        );
        seen.push(e);
        for e in &seen {
            eprintln!("{e}");
        }
        seen.join(" | ").replace('\n', " ")
    });
}

/// A kernel that reads one binding and writes another.
static DOUBLE: Shader = Shader {
    name: "test_double",
    parts: &["@group(0) @binding(0) var<uniform> p: array<vec4<u32>, 16>;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(64) fn double(@builtin(global_invocation_id) i: vec3<u32>) {
    if i.x < p[0].x { dst[i.x] = src[i.x] * 2.0; }
}
"],
    user_code: false,
};

/// A buffer of two 5-float ranges, `head` at 0 and zeros from `gap` (the adapter's offset
/// alignment, in floats), and `gap`.
fn two_ranges(dev: &wgtrain::Device, head: &[f32; 5]) -> (Tensor, usize) {
    let gap = (dev.caps().storage_offset_alignment as usize / 4).max(5);
    let mut both = vec![0.0; gap + 5];
    both[..5].copy_from_slice(head);
    (Tensor::from_f32(dev, &[gap + 5], &both).unwrap(), gap)
}

/// The 5 floats of `whole` from float `start`.
fn range_of(whole: wgtrain::tensor::Binding<'_>, start: usize) -> wgtrain::tensor::Binding<'_> {
    wgtrain::tensor::Binding {
        offset: whole.offset + 4 * start as u64,
        size: 20,
        ..whole
    }
}

/// A kernel that reads two bindings and writes a third.
static ADD: Shader = Shader {
    name: "test_add",
    parts: &["@group(0) @binding(0) var<uniform> p: array<vec4<u32>, 16>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> sum: array<f32>;
@compute @workgroup_size(64) fn add(@builtin(global_invocation_id) i: vec3<u32>) {
    if i.x < p[0].x { sum[i.x] = a[i.x] + b[i.x]; }
}
"],
    user_code: false,
};

/// Read-only is decided per binding: a launch reading one buffer it does not write and another
/// it writes (a second range of its output's buffer, as a gradient summed into an arena) keeps
/// the first binding read-only and declares only the second read-write.
#[test]
fn read_only_is_kept_per_binding() {
    let second = wgtrain::dtype::Variant {
        read_write: 1 << 2,
        ..wgtrain::dtype::Variant::F32
    };
    let source = ADD.source_of(second);
    assert!(source.contains("var<storage, read> a"), "{source}");
    assert!(source.contains("var<storage, read_write> b"), "{source}");
    common::each_device("per-binding read-only", |dev| {
        let a = Tensor::from_f32(dev, &[5], &[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        // b and the sum in one buffer.
        let b = [10.0, 20.0, 30.0, 40.0, 50.0];
        let (one, gap) = two_ranges(dev, &b);
        let whole = one.buffer();
        let add = |b, sum| dev.launch(&ADD, "add", &[], &[5], &[a.buffer(), b, sum], [1, 1, 1]);
        let l = add(range_of(whole, 0), range_of(whole, gap)).unwrap();
        assert_eq!(l.read_write(), 1 << 2);
        assert!(!l.read_only());
        dev.run(&[l]).unwrap();
        assert_eq!(one.to_f32().unwrap()[gap..], [11.0, 22.0, 33.0, 44.0, 55.0]);
        // Apart, every read binding stays read-only.
        let b = Tensor::from_f32(dev, &[5], &b).unwrap();
        let sum = Tensor::zeros(dev, &[5], DType::F32).unwrap();
        let l = add(b.buffer(), sum.buffer()).unwrap();
        assert!(l.read_only());
        dev.run(&[l]).unwrap();
        assert_eq!(sum.to_f32().unwrap(), [11.0, 22.0, 33.0, 44.0, 55.0]);
    });
}

/// A launch whose read-only binding is a buffer it does not write takes the variant that keeps
/// the binding read-only; one that reads and writes two ranges of one buffer (a graph's arena)
/// takes the read-write variant, which wgpu accepts: both compute the same.
#[test]
fn read_only_bindings_are_kept_where_the_buffers_allow() {
    assert!(!DOUBLE.source().contains("var<storage, read>"));
    let kept = wgtrain::dtype::Variant {
        read_write: 0,
        ..wgtrain::dtype::Variant::F32
    };
    assert!(DOUBLE.source_of(kept).contains("var<storage, read> src"));
    common::each_device("read-only bindings", |dev| {
        let data = [1.0, 2.0, 3.0, 4.0, 5.0];
        let want = [2.0, 4.0, 6.0, 8.0, 10.0];
        let src = Tensor::from_f32(dev, &[5], &data).unwrap();
        let dst = Tensor::zeros(dev, &[5], DType::F32).unwrap();
        let double = |src: wgtrain::tensor::Binding<'_>, dst: wgtrain::tensor::Binding<'_>| {
            let l = dev.launch(&DOUBLE, "double", &[], &[5], &[src, dst], [1, 1, 1]);
            dev.run(&[l.unwrap()]).unwrap();
        };
        double(src.buffer(), dst.buffer());
        assert_eq!(dst.to_f32().unwrap(), want);
        // Both ranges in one buffer.
        let (one, gap) = two_ranges(dev, &data);
        let whole = one.buffer();
        let range = |start: usize| range_of(whole, start);
        double(range(0), range(gap));
        assert_eq!(one.to_f32().unwrap()[gap..], want);
    });
}
