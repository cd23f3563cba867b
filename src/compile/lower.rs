//! Pass 8, lower: every live node that launches (not fused away, not an elided concat or sum)
//! becomes its launches, recorded once against the allocated tensors and replayed every step; a
//! producer of an accumulated sum (`sums.rs`) adds into its output. A
//! lowering error keeps its kind and gains the node's name. The non-finite scans
//! (`crate::health`) follow the loss and, when asked, every node, but for an op checking its
//! outputs in its own launches (`Primitive::checks_outputs`: a reducing loss). The pipelines are built on
//! the device's threads while the nodes lower; the pass waits for them at its end.

use super::Plan;
use super::allocate::Bound;
use super::program::{HalfArenas, ParamArena};
use crate::device::Device;
use crate::dtype::Accumulator;
use crate::error::Result;
use crate::graph::{Graph, Op, Value};
use crate::health;
use crate::launch::Launch;
use crate::ops::cast::gpu;
use crate::tensor::{DType, Tensor};

/// Which outputs get a non-finite scan into `health`.
pub struct Checks<'a> {
    pub health: &'a Tensor,
    /// The training loss's node.
    pub loss: Option<usize>,
    /// Every node's outputs, and the inputs at the start of the step.
    pub activations: bool,
}

/// The recorded step, and where the host work of just-in-time residency goes in it.
#[derive(Default)]
pub struct Lowered {
    pub launches: Vec<Launch>,
    /// The node each launch belongs to (the profiler's names).
    pub owners: Vec<usize>,
    pub scratch: Vec<Tensor>,
    /// (launch index, node, elements) of launches re-parameterised every step (dropout).
    pub per_step: Vec<(usize, usize, usize)>,
    /// Just-in-time: (first launch of the node, its parameters) for every node reading weights.
    pub read_at: Vec<(usize, Vec<Value>)>,
    /// Just-in-time training: (launch after the node, layout entry, parameter) per update point.
    pub updates: Vec<(usize, usize, Value)>,
}

/// Lowers the live nodes of `plan` in order, node i accumulating in `accumulators[i]`, and waits
/// for their pipelines.
pub fn pass(
    g: &Graph,
    device: &Device,
    plan: &Plan,
    bound: &Bound,
    checks: &Checks,
    accumulators: &[Accumulator],
) -> Result<Lowered> {
    let mut out = Lowered::default();
    let lowered = lower_nodes(g, device, plan, bound, checks, accumulators, &mut out);
    // Waited for here so a failed pipeline is compile's `Err` and the first step does not
    // stall; checked before `lowered`, and in node order, so the error is the one building
    // each pipeline as its node lowered would have met first.
    for (l, &i) in out.launches.iter().zip(&out.owners) {
        (l.pipeline.get()).map_err(|e| e.context(format!("node {:?} (lower)", g.nodes[i].name)))?;
    }
    lowered?;
    Ok(out)
}

/// Lowers the live nodes into `out`, stopping at the first error.
fn lower_nodes(
    g: &Graph,
    device: &Device,
    plan: &Plan,
    bound: &Bound,
    checks: &Checks,
    accumulators: &[Accumulator],
    out: &mut Lowered,
) -> Result<()> {
    let lifetimes = &plan.lifetimes;
    let half = half_casts(plan, bound);
    for (i, node) in g.nodes.iter().enumerate() {
        if !plan.live[i] {
            continue;
        }
        if let Some(h) = &half
            && plan.mirrors.as_ref().is_some_and(|m| m.replaces(i))
        {
            // One launch stands for every cast of its kind, at the first weight cast (before
            // any f16 weight is read) and at the last gradient cast (after every f16 gradient
            // is written). The arenas' own scans cover the values cast here.
            let launch = if Some(i) == h.params_at {
                Some(gpu::cast_launch(&h.arena.params, &h.f16.params, None)?)
            } else if Some(i) == h.grads_at {
                let scale = node.inputs.get(1).map(|u| &bound.tensors[u]);
                let f = h.f16;
                Some(gpu::ranges_to_f32_launch(
                    &f.grad_ranges,
                    &f.grads,
                    &h.arena.grads,
                    scale,
                )?)
            } else {
                None
            };
            if let Some(l) = launch {
                out.launches.push(l);
                out.owners.push(i);
            }
            continue;
        }
        let scanned = if checks.loss == Some(i) {
            Some(health::LOSS)
        } else if checks.activations && node.op != Op::Param && node.op != Op::State {
            Some(health::ACTIVATION)
        } else {
            None
        };
        let aliases = &plan.aliases;
        // A constant was filled when it was allocated.
        let constant = super::alias::constant(&node.op).is_some();
        if !plan.fusion.absorbed[i]
            && !aliases.elided.contains(&i)
            && !aliases.sums_elided[i]
            && !constant
        {
            let ins: Vec<&Tensor> = node.inputs.iter().map(|u| &bound.tensors[u]).collect();
            let outs: Vec<&Tensor> = (0..node.outputs.len())
                .map(|p| &bound.tensors[&Value { node: i, port: p }])
                .collect();
            let fused = plan.fusion.fused.get(&i).map_or(&[][..], |c| &c[..]);
            if let Some(p) = node.op.primitive()
                && p.step_params(0, 0).is_some()
            {
                out.per_step.push((out.launches.len(), i, ins[0].numel()));
            }
            // A sum written in place (`sums.rs`) adds into its output, a folded neuron
            // gradient is applied as dx is written (`fusion.rs`); the launches take the node's
            // accumulator either way (`accumulate.rs`).
            let acc = accumulators[i];
            let code = u32::try_from(i).ok();
            // An op checking its own outputs (a reducing loss) in its plain lowering: no scans.
            let check = (scanned.zip(code))
                .filter(|_| node.op.primitive().is_some_and(|p| p.checks_outputs()))
                .map(|(flag, code)| health::output_check(checks.health, flag, code));
            let mut checked = false;
            let prepared = if aliases.accumulating[i] {
                node.op.lower_accumulate(&ins, &outs, acc)
            } else if let Some(&(u, y)) = plan.fusion.grad_neurons.get(&i) {
                let y = tensor(bound, y, "folded neuron")?;
                node.op.lower_grad_neuron(&ins, &outs, u, y, acc)
            } else if let Some(&(u, y)) = plan.fusion.input_grad_neurons.get(&i) {
                let y = tensor(bound, y, "folded neuron")?;
                node.op.lower_grad_neuron_input(&ins, &outs, u, y, acc)
            } else if let Some(&r) = plan.fusion.residuals.get(&i) {
                let r = tensor(bound, r, "residual")?;
                node.op.lower_residual(&ins, &outs, fused, r, acc)
            } else if let Some(c) = check.filter(|_| fused.is_empty()) {
                checked = true;
                node.op.lower_checked(&ins, &outs, &c, acc)
            } else {
                node.op.lower_accumulating(&ins, &outs, fused, 0, acc)
            }
            .map_err(|e| e.context(format!("node {:?} (lower)", node.name)))?;
            if let Some(r) = lifetimes.reads.get(&i) {
                out.read_at.push((out.launches.len(), r.clone()));
            }
            out.owners.extend(prepared.launches.iter().map(|_| i));
            out.launches.extend(prepared.launches);
            out.scratch.extend(prepared.scratch);
            if let Some(flag) = scanned.filter(|_| !checked) {
                for port in 0..node.outputs.len() {
                    let t = &bound.tensors[&Value { node: i, port }];
                    if t.dtype() != DType::U32 && t.numel() > 0 {
                        out.launches
                            .push(health::scan(device, checks.health, t, flag, code, 0)?);
                        out.owners.push(i);
                    }
                }
            }
        }
        let after = lifetimes.update_after.get(&i).map_or(&[][..], |u| &u[..]);
        let at = out.launches.len();
        out.updates.extend(after.iter().map(|&(k, p)| (at, k, p)));
    }
    Ok(())
}

/// The tensor bound to `v`, a value a fold added to a node's reads (`what`).
fn tensor<'a>(bound: &'a Bound, v: Value, what: &str) -> Result<&'a Tensor> {
    (bound.tensors.get(&v))
        .ok_or_else(|| crate::error::Error::Invalid(format!("lower: the {what}'s {v:?}")))
}

/// Where the f16 arenas' two casts go (`precision::Mirrors`).
struct HalfCasts<'a> {
    arena: &'a ParamArena,
    f16: &'a HalfArenas,
    /// The first live weight cast (node), where the weights' copies are refreshed.
    params_at: Option<usize>,
    /// The last live gradient cast (node), where every f16 gradient goes into the f32 arena.
    grads_at: Option<usize>,
}

fn half_casts<'a>(plan: &Plan, bound: &'a Bound) -> Option<HalfCasts<'a>> {
    let m = plan.mirrors.as_ref()?;
    let arena = bound.param_arena.as_ref()?;
    Some(HalfCasts {
        arena,
        f16: arena.f16.as_ref()?,
        params_at: m.param_casts.iter().flatten().min().copied(),
        grads_at: m.grad_casts.iter().flatten().max().copied(),
    })
}
