//! Pass −1, precision: under `Precision::F16` the graph (forward and backward) is rewritten for
//! mixed precision (`crate::autocast`) and the rewrite compiled; the compiled graph maps the
//! caller's values onto it, and with a loss scale records the scale's update.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Compiled, Options, Precision};
use crate::autocast;
use crate::autograd::Training;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::graph::{Graph, Value};
use crate::ops::cast::CastOp;
use crate::ops::elementwise::{BinaryOp, ElementwiseOp};
use crate::tensor::DType;

pub use crate::autocast::LOSS_SCALE;

/// Whether to compile in f16: `F16` needs SHADER_F16 (an `Err` without), `BestAvailable` falls
/// back to f32 and says so.
pub(super) fn f16(device: &Device, opts: &Options) -> Result<bool> {
    let has = device.caps().shader_f16;
    match opts.precision {
        Precision::F32 => {
            if opts.loss_scale.is_some() {
                return Err(Error::Invalid(
                    "a loss scale is for mixed precision: compile with Precision::F16".into(),
                ));
            }
            Ok(false)
        }
        Precision::F16 if !has => Err(Error::Device(format!(
            "Precision::F16 needs SHADER_F16, which {} does not offer (Precision::BestAvailable \
             falls back to f32)",
            device.name()
        ))),
        Precision::F16 => Ok(true),
        Precision::BestAvailable => {
            if !has {
                eprintln!(
                    "warning: {} has no SHADER_F16: compiling in f32 (Precision::BestAvailable)",
                    device.name()
                );
            }
            Ok(has)
        }
    }
}

/// The graph rewritten for mixed precision, compiled, with the caller's values mapped.
pub(super) fn compile_mixed(
    g: &Graph,
    device: &Device,
    outputs: &[Value],
    opts: &Options,
) -> Result<Compiled> {
    super::check(g, outputs, opts.training)?;
    let tr = opts.training;
    if opts.loss_scale.is_some() && tr.is_none() {
        return Err(Error::Invalid(
            "a loss scale needs a training graph (Options::training)".into(),
        ));
    }
    if opts.loss_scale.is_some() && opts.residency != super::Residency::Resident {
        return Err(Error::Invalid(
            "loss scaling keeps its scale with resident weights: use Residency::Resident".into(),
        ));
    }
    let grads: &[Value] = tr.map_or(&[], |t| &t.grads[..]);
    let seed = match (opts.loss_scale, tr) {
        (Some(_), Some(t)) => Some((seed_node(g, t.loss)?, grads)),
        _ => None,
    };
    let cast = autocast::autocast(g, grads, opts.f32_nodes, seed)?;
    let map = |vs: &[Value]| -> Result<Vec<Value>> { vs.iter().map(|&v| cast.value(v)).collect() };
    let training = tr
        .map(|t| -> Result<Training> {
            Ok(Training {
                loss: cast.value(t.loss)?,
                params: map(&t.params)?,
                grads: map(&t.grads)?,
            })
        })
        .transpose()?;
    let outs = map(outputs)?;
    let inner = Options {
        training: training.as_ref(),
        precision: Precision::F32,
        loss_scale: None,
        ..*opts
    };
    let mirrors = match (&training, opts.residency) {
        (Some(t), super::Residency::Resident) => {
            Some(Mirrors::find(&cast.graph, t, cast.loss_scale))
        }
        _ => None,
    };
    let mut c = cast
        .graph
        .compile_as_given(device, &outs, &inner, mirrors.as_ref())?;
    if let (Some(ls), Some(_)) = (opts.loss_scale, cast.loss_scale) {
        let state = c
            .graph
            .find(LOSS_SCALE)
            .ok_or_else(|| Error::Invalid("the loss-scale state was pruned".into()))?;
        c.set(LOSS_SCALE, &[ls.init, 0.0])?;
        c.loss_scale = Some((c.own_tensor(state)?.clone(), ls));
    }
    c.autocast = Some(Arc::new(cast));
    Ok(c)
}

/// Mixed-precision training with resident weights keeps f16 mirrors of the parameter and
/// gradient arenas, in the same layout: one dispatch fills every weight's f16 compute copy at the
/// start of a step and one casts (and unscales) every f16 gradient into the f32 arena after the
/// backward pass, instead of a cast per parameter each way. The cast nodes stay in the graph
/// (reads, names and the profile see them); `lower` replaces their launches.
#[derive(Clone, Debug)]
pub(crate) struct Mirrors {
    /// Per training parameter: the node casting it to f16, whose output lives in the f16 mirror
    /// of the parameter arena.
    pub param_casts: Vec<Option<usize>>,
    /// Per training parameter: the node casting its f16 gradient (input 0, which lives in the
    /// f16 mirror of the gradient arena) into the f32 arena, or — an f32 gradient under a loss
    /// scale, e.g. a norm's γ/β — the node dividing it by the scale (input 0 then lives in the
    /// f32 arena itself and is divided there, in place).
    pub grad_casts: Vec<Option<usize>>,
}

impl Mirrors {
    /// The casts `autocast` put at the parameters and gradients of `t` in `g`; `scale`: the loss
    /// scale's value.
    fn find(g: &Graph, t: &Training, scale: Option<Value>) -> Mirrors {
        let is_cast = |i: usize, to: DType| {
            g.nodes[i]
                .op
                .downcast::<CastOp>()
                .is_some_and(|c| c.to == to)
        };
        // Each parameter's first f16 cast (`autocast` makes one per value and dtype).
        let mut f16_casts: HashMap<Value, usize> = HashMap::new();
        for i in (0..g.nodes.len()).filter(|&i| is_cast(i, DType::F16)) {
            f16_casts.entry(g.nodes[i].inputs[0]).or_insert(i);
        }
        let param_casts = t.params.iter().map(|p| f16_casts.get(p).copied()).collect();
        let grad_casts = t
            .grads
            .iter()
            .map(|&gr| {
                let n = &g.nodes[gr.node];
                let from = n.inputs.first()?;
                let f16 = g.nodes[from.node].outputs[from.port].1 == DType::F16;
                let cast = f16 && is_cast(gr.node, DType::F32);
                let div = ElementwiseOp::Binary(BinaryOp::Div);
                let unscale = !f16
                    && scale.is_some()
                    && n.inputs.get(1).copied() == scale
                    && n.op.downcast::<ElementwiseOp>() == Some(&div);
                (gr.port == 0 && (cast || unscale)).then_some(gr.node)
            })
            .collect();
        Mirrors {
            param_casts,
            grad_casts,
        }
    }

    /// Whether gradient node `i` casts from the f16 mirror (else it unscales in place).
    pub fn from_f16(g: &Graph, i: usize) -> bool {
        g.nodes[i].op.downcast::<CastOp>().is_some()
    }

    /// The values that live in the arenas: the f16 weight copies, the f16 gradients and the f32
    /// gradients unscaled in place.
    pub fn values(&self, g: &Graph) -> Vec<Value> {
        let params = self
            .param_casts
            .iter()
            .flatten()
            .map(|&i| Value { node: i, port: 0 });
        let grads = self
            .grad_casts
            .iter()
            .flatten()
            .map(|&i| g.nodes[i].inputs[0]);
        params.chain(grads).collect()
    }

    /// Whether node `i` is a cast whose launch the mirrors replace.
    pub fn replaces(&self, i: usize) -> bool {
        self.param_casts.contains(&Some(i)) || self.grad_casts.contains(&Some(i))
    }

    /// Drops the entries the plan cannot place in a mirror: casts that are not live, f16
    /// gradients owned by another value of a different size, or shared by two entries.
    pub fn keep_placeable(
        &mut self,
        g: &Graph,
        live: &[bool],
        owner: &dyn Fn(Value) -> Value,
    ) -> bool {
        for c in self.param_casts.iter_mut() {
            if c.is_some_and(|i| !live[i]) {
                *c = None;
            }
        }
        let numel = |v: Value| g.nodes[v.node].outputs[v.port].0.iter().product::<usize>();
        // One launch casts them all: the same scale (or none) for every one.
        let scale_of = |i: usize| g.nodes[i].inputs.get(1).copied();
        let scale = self
            .grad_casts
            .iter()
            .flatten()
            .next()
            .map(|&i| scale_of(i));
        let mut seen = std::collections::HashSet::new();
        for c in self.grad_casts.iter_mut() {
            let Some(i) = *c else { continue };
            let x = g.nodes[i].inputs[0];
            let o = owner(x);
            let computed = matches!(g.nodes[o.node].op, crate::graph::Op::Compute(_));
            if !live[i]
                || !computed
                || numel(o) != numel(x)
                || Some(scale_of(i)) != scale
                || !seen.insert(o)
            {
                *c = None;
            }
        }
        self.param_casts
            .iter()
            .chain(&self.grad_casts)
            .any(Option::is_some)
    }
}

/// The backward pass's seed: the `OnesLike` of the loss that `Graph::training` added.
fn seed_node(g: &Graph, loss: Value) -> Result<usize> {
    g.nodes
        .iter()
        .position(|n| {
            n.inputs == [loss]
                && n.op
                    .downcast::<ElementwiseOp>()
                    .is_some_and(|op| *op == ElementwiseOp::OnesLike)
        })
        .ok_or_else(|| {
            Error::Invalid(
                "loss scaling scales the backward pass's seed, and this graph has none (its \
                 gradients came from Graph::training?)"
                    .into(),
            )
        })
}

impl Compiled {
    /// Whether the step is loss-scaled (mixed precision with a `LossScale`).
    pub fn loss_scaled(&self) -> bool {
        self.loss_scale.is_some()
    }

    /// The value of this compiled graph that the caller's `v` became (itself unless compiled in
    /// mixed precision).
    pub(crate) fn resolve(&self, v: Value) -> Result<Value> {
        match &self.autocast {
            Some(a) => a.value(v),
            None => Ok(v),
        }
    }
}
