//! Pass −1, precision: under `Precision::F16` the graph (forward and backward) is rewritten for
//! mixed precision (`crate::autocast`) and the rewrite compiled; the compiled graph maps the
//! caller's values onto it, and with a loss scale records the scale's update.

use std::sync::Arc;

use super::{Compiled, Options, Precision};
use crate::autocast;
use crate::autograd::Training;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::graph::{Graph, Value};
use crate::ops::elementwise::ElementwiseOp;

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
    let mut c = cast.graph.compile_as_given(device, &outs, &inner)?;
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
