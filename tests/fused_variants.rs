//! Every fused variant the compiler can emit, run against its unfused twin on every adapter.
//!
//! The variants are generated, not listed: each GEMM / norm epilogue kernel (convolution,
//! transposed convolution, fully connected, batch norm in training and at inference, an affine and
//! a non-affine norm) followed by each neuron of `UnaryOp::all()` (one `POST_OP` pipeline each),
//! and elementwise chains of every length up to `MAX_CHAIN` + 1 after a unary and after a
//! broadcasting binary producer (every slot of the chain, and the split into a second dispatch).
//! Each graph is compiled with `Options { fuse: true }` and `fuse: false`: the fused plan must
//! save the dispatches fusion promises (so the fused kernel is what ran), and its outputs — and
//! the gradients of `sum(z ⊙ dy)` with respect to every input and parameter, where the graph
//! trains — must match the unfused plan's and the f64 reference within the tolerance rule
//! (`wgtrain::reference::f32_tol`).

mod common;

use std::collections::HashMap;

use common::{close_to, each_device};
use wgtrain::compile::Options;
use wgtrain::graph::{Graph, Op, Value};
use wgtrain::neuron::GradFrom;
use wgtrain::ops::Fill;
use wgtrain::ops::conv::{Conv2d, ConvKind, ConvTranspose2d, Padding};
use wgtrain::ops::dense::FullyConnected;
use wgtrain::ops::elementwise::gpu::MAX_CHAIN;
use wgtrain::ops::elementwise::{BinaryOp, UnaryOp};
use wgtrain::ops::norm::{BatchNorm, InstanceNorm, LayerNorm};
use wgtrain::reference::{Array, f32_tol};
use wgtrain::{Device, Result};

/// Whether neuron `u` needs positive inputs: its value or derivative is not finite, or steeper
/// than 10, somewhere on [-1, 1] (log, sqrt, recip). Decided from the f64 table, not a list.
fn needs_positive(u: UnaryOp) -> bool {
    (-100..=100).map(|i| i as f64 / 100.0).any(|x| {
        let (f, d) = (u.f(x), u.df(x));
        !f.is_finite() || !d.is_finite() || d.abs() > 10.0
    })
}

/// One kernel with a fused-neuron epilogue: how to build it, named `name`, on `x`, and how to
/// fill its sources so its output is positive (`None` where no fill can: a non-affine norm is
/// centred).
struct Producer {
    name: &'static str,
    x: &'static [usize],
    /// The longest sum behind an output or gradient value (the tolerance rule's `n`).
    terms: usize,
    build: fn(&mut Graph, &str, Value) -> Result<Value>,
    /// Compiled as `Graph::for_inference` (batch norm on its running statistics); no gradients.
    inference: bool,
    positive: Option<fn(&str) -> Fill>,
}

fn all_positive(_: &str) -> Fill {
    Fill::Uniform(0.2, 1.0)
}

/// β ≈ 3 and γ ≈ 0.3 put an affine norm's output (|x̂| ≤ √(n − 1)) above 0.
fn shifted_norm(name: &str) -> Fill {
    if name.ends_with(".bias") {
        Fill::Uniform(2.5, 3.5)
    } else if name.ends_with(".weight") {
        Fill::Uniform(0.2, 0.4)
    } else {
        source_fill(name)
    }
}

/// The default fill: uniform in [-1, 1), running variances positive.
fn source_fill(name: &str) -> Fill {
    if name.ends_with("running_var") {
        Fill::Uniform(0.5, 1.5)
    } else {
        Fill::Uniform(-1.0, 1.0)
    }
}

fn producers() -> Vec<Producer> {
    vec![
        Producer {
            name: "conv2d",
            x: &[2, 3, 5, 5],
            terms: 50,
            build: |g, n, x| {
                let c = Conv2d {
                    padding: Padding::symmetric(1),
                    ..Conv2d::new(3, 4, (3, 3))
                };
                g.conv2d(n, x, c)
            },
            inference: false,
            positive: Some(all_positive),
        },
        Producer {
            name: "conv_transpose2d",
            x: &[2, 3, 3, 3],
            terms: 72,
            build: |g, n, x| g.conv(n, x, ConvKind::T2(ConvTranspose2d::new(3, 4, (2, 2)))),
            inference: false,
            positive: Some(all_positive),
        },
        Producer {
            name: "dense",
            x: &[3, 7],
            terms: 7,
            build: |g, n, x| g.dense(n, x, FullyConnected::new(7, 5)),
            inference: false,
            positive: Some(all_positive),
        },
        Producer {
            name: "batch_norm/train",
            x: &[4, 3, 5],
            terms: 20,
            build: |g, n, x| g.batch_norm(n, x, BatchNorm::new(0.2, 0.3)?),
            inference: false,
            positive: Some(shifted_norm),
        },
        Producer {
            name: "batch_norm/inference",
            x: &[4, 3, 5],
            terms: 1,
            build: |g, n, x| g.batch_norm(n, x, BatchNorm::new(0.2, 0.3)?),
            inference: true,
            positive: Some(shifted_norm),
        },
        Producer {
            name: "layer_norm",
            x: &[3, 8],
            terms: 8,
            build: |g, n, x| g.layer_norm(n, x, LayerNorm { dims: 1, eps: 0.1 }),
            inference: false,
            positive: Some(shifted_norm),
        },
        Producer {
            name: "instance_norm/no_affine",
            x: &[2, 3, 6],
            terms: 6,
            build: |g, n, x| g.norm(n, x, InstanceNorm { eps: 0.05 }, false),
            inference: false,
            positive: None,
        },
    ]
}

/// Deterministic data for every source of `g`, filled by `fill(name)`, rounded to f32.
fn feeds(g: &Graph, fill: impl Fn(&str) -> Fill) -> HashMap<String, Array> {
    g.nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.op.is_source())
        .map(|(i, n)| {
            let a = fill(&n.name).array(&n.outputs[0].0, 500 + 31 * i as u64);
            (n.name.clone(), a)
        })
        .collect()
}

/// Compiles `g` for `outs` (fused or not), feeds it, runs one step: outputs and dispatches.
fn run(
    dev: &Device,
    g: &Graph,
    outs: &[Value],
    fuse: bool,
    f: &HashMap<String, Array>,
) -> (Vec<Vec<f32>>, usize) {
    let opts = Options {
        fuse,
        ..Default::default()
    };
    let c = g.compile(dev, outs, &opts).unwrap();
    for (name, a) in f {
        // A branch left out of a gradient graph is pruned: its sources take no data.
        if c.tensor(g.find(name).unwrap()).is_err() {
            continue;
        }
        c.set(name, &a.to_f32()).unwrap();
    }
    c.step().unwrap();
    let got = outs.iter().map(|v| c.read(*v).unwrap()).collect();
    (got, c.stats().dispatches_per_step)
}

/// Graphs of independent branches, one per variant: each output is checked under its branch's
/// name with its branch's tolerance.
struct Branches {
    g: Graph,
    /// Each branch's output, name and tolerance.
    outs: Vec<(Value, String, f64)>,
}

impl Branches {
    /// Fused vs unfused vs the f64 reference for every branch; the dispatches fusion saved.
    fn check(&self, dev: &Device, f: &HashMap<String, Array>) -> usize {
        let vals: Vec<Value> = self.outs.iter().map(|o| o.0).collect();
        let want = self.g.eval_reference(f, &vals).unwrap();
        let (fused, df) = run(dev, &self.g, &vals, true, f);
        let (plain, dp) = run(dev, &self.g, &vals, false, f);
        for (k, (_, what, tol)) in self.outs.iter().enumerate() {
            let w = &want[k].data;
            close_to(&format!("{what}: fused"), &fused[k], w, *tol);
            close_to(&format!("{what}: unfused"), &plain[k], w, *tol);
            let p64: Vec<f64> = plain[k].iter().map(|&v| v as f64).collect();
            close_to(&format!("{what}: fused vs unfused"), &fused[k], &p64, *tol);
        }
        dp.checked_sub(df).expect("fusion added dispatches")
    }

    /// The branches `keep` (outputs of one shape) extended with `p_k = z_k ⊙ dy_k` (dy_k fixed
    /// random inputs) summed,
    /// and the gradients of `sum(p)` with respect to each branch's f32 inputs and parameters
    /// (every source but the dy_k and states): the branches of the gradient graph, and its feeds.
    fn gradients(
        &self,
        keep: &[bool],
        f: &HashMap<String, Array>,
    ) -> (Branches, HashMap<String, Array>) {
        let mut g = self.g.clone();
        let mut f = f.clone();
        let mut total = None;
        for (k, (z, _, _)) in self.outs.iter().enumerate() {
            if !keep[k] {
                continue;
            }
            let shape = g.shape(*z).unwrap().to_vec();
            let dy = g.input(&format!("dy{k}"), &shape).unwrap();
            f.insert(
                format!("dy{k}"),
                Fill::Uniform(-1.0, 1.0).array(&shape, 77 + k as u64),
            );
            let p = g.binary(&format!("w{k}"), BinaryOp::Mul, *z, dy).unwrap();
            total = Some(match total {
                None => p,
                Some(t) => g.binary(&format!("a{k}"), BinaryOp::Add, t, p).unwrap(),
            });
        }
        let total = total.expect("no branch to differentiate");
        let wrt: Vec<Value> = (0..g.nodes.len())
            .filter(|&i| {
                let n = &g.nodes[i];
                matches!(n.op, Op::Input | Op::Param) && !n.name.starts_with("dy")
            })
            .filter(|&i| self.branch_of(&g.nodes[i].name).is_some_and(|k| keep[k]))
            .map(|node| Value { node, port: 0 })
            .collect();
        let grads = g.gradients(total, &wrt).unwrap();
        let outs = wrt
            .iter()
            .zip(grads)
            .map(|(v, d)| {
                let name = g.node(*v).unwrap().name.clone();
                let (_, what, tol) = &self.outs[self.branch_of(&name).unwrap()];
                (d, format!("{what}: d/d{name}"), *tol)
            })
            .collect();
        (Branches { g, outs }, f)
    }

    /// The branch a source belongs to: its name starts with `b<k>.`.
    fn branch_of(&self, name: &str) -> Option<usize> {
        name.strip_prefix('b')?.split('.').next()?.parse().ok()
    }
}

/// What ran fused: variants emitted and executed, and those executed in training graphs.
#[derive(Default)]
struct Count {
    emitted: usize,
    forward: usize,
    training: usize,
}

/// Every epilogue kernel with every neuron: per kernel one graph with one branch per neuron,
/// `b<k>.x → kernel → neuron k`.
fn epilogue_variants(dev: &Device, count: &mut Count) {
    let neurons = UnaryOp::all();
    for pr in producers() {
        let mut g = Graph::new();
        let mut outs = Vec::new();
        for (k, &u) in neurons.iter().enumerate() {
            let x = g.input(&format!("b{k}.x"), pr.x).unwrap();
            let y = (pr.build)(&mut g, &format!("b{k}.p"), x).unwrap();
            let z = g.unary(&format!("b{k}.neuron"), u, y).unwrap();
            let what = format!("{} → {u:?}", pr.name);
            outs.push((z, what, f32_tol(pr.terms)));
        }
        if pr.inference {
            g = g.for_inference();
        }
        let b = Branches { g, outs };
        // log / sqrt / recip get positive inputs where the kernel can produce them; on a
        // centred output the forward compares their NaNs in place.
        let positive = |k: usize| needs_positive(neurons[k]) && pr.positive.is_some();
        let fill = |name: &str| match b.branch_of(name) {
            Some(k) if positive(k) => pr.positive.unwrap()(name),
            _ => source_fill(name),
        };
        let f = feeds(&b.g, fill);
        let saved = b.check(dev, &f);
        assert_eq!(saved, neurons.len(), "{}: each neuron fused", pr.name);
        count.emitted += neurons.len();
        count.forward += neurons.len();
        if pr.inference {
            continue;
        }
        // A gradient through NaNs would be NaN everywhere: those branches only run forward.
        let keep: Vec<bool> = (0..neurons.len())
            .map(|k| !needs_positive(neurons[k]) || positive(k))
            .collect();
        let (gb, gf) = b.gradients(&keep, &f);
        let saved = gb.check(dev, &gf);
        // A neuron whose gradient reads its input keeps the input materialised: no fusion.
        let expect = (0..neurons.len())
            .filter(|&k| keep[k] && neurons[k].grad_from() != GradFrom::Input)
            .count();
        // After a norm, a gradient from the neuron's output folds into the norm's backward too.
        let folded = (0..neurons.len())
            .filter(|&k| keep[k] && neurons[k].grad_from() == GradFrom::Output)
            .count();
        let folded = if pr.name.contains("norm") { folded } else { 0 };
        assert_eq!(
            saved,
            expect + folded,
            "{}: neurons fused in training",
            pr.name
        );
        count.training += expect;
    }
}

/// The neurons a chain cycles through: those defined on all of [-1, 1] whose values stay
/// roughly there (no exp or square, which a long chain would blow up).
fn chain_neurons() -> Vec<UnaryOp> {
    UnaryOp::all()
        .into_iter()
        .filter(|&u| !needs_positive(u) && !matches!(u, UnaryOp::Exp | UnaryOp::Square))
        .collect()
}

/// Chains of every length up to one past `MAX_CHAIN`, after a unary (tanh) and after a
/// broadcasting binary (x + b) producer, each slot a different neuron as the length grows.
fn chain_variants(dev: &Device, count: &mut Count) {
    let pool = chain_neurons();
    let mut g = Graph::new();
    let mut outs = Vec::new();
    let mut expect = 0;
    for binary in [false, true] {
        for len in 1..=MAX_CHAIN + 1 {
            let k = outs.len();
            let ops: Vec<UnaryOp> = (0..len).map(|i| pool[(i + 3 * len) % pool.len()]).collect();
            let x = g.input(&format!("b{k}.x"), &[3, 37]).unwrap();
            let mut v = if binary {
                let b = g.param(&format!("b{k}.b"), &[37]).unwrap();
                g.binary(&format!("b{k}.add"), BinaryOp::Add, x, b).unwrap()
            } else {
                g.unary(&format!("b{k}.tanh"), UnaryOp::Tanh, x).unwrap()
            };
            for (i, &u) in ops.iter().enumerate() {
                v = g.unary(&format!("b{k}.n{i}"), u, v).unwrap();
            }
            let producer = if binary { "x + b" } else { "tanh x" };
            outs.push((v, format!("{producer} then {ops:?}"), f32_tol(len + 1)));
            // One dispatch holds the producer and MAX_CHAIN neurons; the rest start a second.
            expect += len.min(MAX_CHAIN);
            if len <= MAX_CHAIN {
                count.emitted += 1;
                count.forward += 1;
            }
        }
    }
    let b = Branches { g, outs };
    let f = feeds(&b.g, source_fill);
    assert_eq!(b.check(dev, &f), expect, "chain dispatches saved");
    let (gb, gf) = b.gradients(&vec![true; b.outs.len()], &f);
    // In training a chain stops at a neuron whose output its gradient reads: fewer fuse, but
    // some must.
    let saved = gb.check(dev, &gf);
    assert!(saved > 0, "no chain fused in the training graph");
    count.training += saved;
}

/// Runs `variants` on every adapter and reports how many fused variants it executed of those
/// the compiler emits.
fn count_variants(what: &str, variants: fn(&Device, &mut Count)) {
    each_device(what, |dev| {
        let t = std::time::Instant::now();
        let mut count = Count::default();
        variants(dev, &mut count);
        eprintln!(
            "[{what}] on {}: {} of {} fused variants executed against their unfused twins \
             ({} fused in training graphs too), {:.1} s",
            dev.name(),
            count.forward,
            count.emitted,
            count.training,
            t.elapsed().as_secs_f64()
        );
        assert_eq!(count.forward, count.emitted);
    });
}

#[test]
fn every_epilogue_neuron_matches_its_unfused_twin() {
    count_variants("fused epilogues", epilogue_variants);
}

#[test]
fn every_chain_length_matches_its_unfused_twin() {
    count_variants("fused chains", chain_variants);
}

#[test]
fn positive_domain_is_read_from_the_table() {
    let need: Vec<&str> = UnaryOp::all()
        .into_iter()
        .filter(|&u| needs_positive(u))
        .map(|u| u.name())
        .collect();
    assert_eq!(need, ["log", "sqrt", "recip"]);
}
