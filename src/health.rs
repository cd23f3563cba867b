//! Non-finite guards, found on the GPU without a readback stall: scans after the loss (a reducing
//! loss checks itself in its reduction, `output_check`; and, when asked, after every node) and
//! over the gradient arena set flags in one small buffer (`wgsl/health.wgsl`); the optimizer's
//! kernels skip the update of a flagged step, `finish` counts it and keeps the first one's
//! details, and the host reads the buffer whenever it already waits (`Compiled::health`).

use crate::device::Device;
use crate::error::Result;
use crate::graph::{Graph, OutputCheck};
use crate::launch::{FINITE, Launch, PRELUDE, Shader, grid_1d};
use crate::tensor::Tensor;

/// The guards' kernels (`wgsl/health.wgsl`).
pub static SHADER: Shader = Shader {
    name: "health",
    user_code: false,
    parts: &[PRELUDE, FINITE, include_str!("../wgsl/health.wgsl")],
};

/// Words of the health buffer (layout in `wgsl/health.wgsl`).
pub(crate) const WORDS: usize = 16;
const NONE: u32 = u32::MAX;
/// The loss was non-finite.
pub(crate) const LOSS: u32 = 1;
/// A gradient was non-finite.
pub(crate) const GRAD: u32 = 2;
/// A node's output was non-finite (`Options::check_activations`).
pub(crate) const ACTIVATION: u32 = 4;
/// Word 0 of the buffer: the flags of the step running.
pub(crate) const SLOT_GRAD: u32 = 1;
pub(crate) const SLOT_NODE: u32 = 2;
const SLOT_SCRATCH: u32 = 3;

/// The words of a fresh health buffer: no flags, no step skipped.
pub(crate) fn fresh() -> [u32; WORDS] {
    let mut words = [0u32; WORDS];
    words[1..4].fill(NONE);
    words
}

/// A fresh health buffer.
pub(crate) fn buffer(device: &Device) -> Result<Tensor> {
    Tensor::from_u32(device, &[WORDS], &fresh())
}

/// A scan of `x` (f32) setting `flag` if any element is non-finite. `code`: the node recorded
/// (`None`: the element's index plus `base`, i.e. its place in the gradient arena).
pub(crate) fn scan(
    device: &Device,
    health: &Tensor,
    x: &Tensor,
    flag: u32,
    code: Option<u32>,
    base: u32,
) -> Result<Launch> {
    let slot = slot_of(flag, code);
    let n = u32::try_from(x.numel()).map_err(|_| {
        crate::error::Error::Invalid(format!(
            "non-finite scan of {} elements: more than a u32 counts",
            x.numel()
        ))
    })?;
    device.launch(
        &SHADER,
        "scan",
        &[],
        &[n, flag, slot, code.unwrap_or(NONE), base, 0],
        &[x.buffer(), health.buffer()],
        grid_1d(x.numel(), 1024),
    )
}

/// The word a scan setting `flag` lowers to its code (`None`: the element's arena index).
fn slot_of(flag: u32, code: Option<u32>) -> u32 {
    match (flag, code) {
        (ACTIVATION, _) => SLOT_NODE,
        (GRAD, None) => SLOT_GRAD,
        _ => SLOT_SCRATCH,
    }
}

/// What `scan` of each output of node `code` with `flag` would record, for an op that checks
/// its outputs in its own launches (`Primitive::lower_checked`).
pub(crate) fn output_check(health: &Tensor, flag: u32, code: u32) -> OutputCheck<'_> {
    OutputCheck {
        health,
        flag,
        slot: slot_of(flag, Some(code)),
        code,
    }
}

/// Counts a flagged step, keeps the first one's details and clears the flags for the next step;
/// its parameters take the step number (`finish_params`).
pub(crate) fn finish(device: &Device, health: &Tensor) -> Result<Launch> {
    device.launch(
        &SHADER,
        "finish",
        &[],
        &finish_params(0),
        &[health.buffer()],
        [1, 1, 1],
    )
}

/// Dynamic loss scaling's update of `state` (`[scale, clean steps]`) from this step's flags,
/// recorded just before `finish`.
pub(crate) fn scale_update(
    device: &Device,
    health: &Tensor,
    state: &Tensor,
    growth_interval: u32,
) -> Result<Launch> {
    device.launch(
        &SHADER,
        "scale_update",
        &[],
        &[growth_interval.max(1), 0, 0, 0, 0, 0],
        &[health.buffer(), state.buffer()],
        [1, 1, 1],
    )
}

/// The parameter words of `finish` for the step with 0-based index `step`.
pub(crate) fn finish_params(step: u64) -> Vec<u32> {
    let step = u32::try_from(step.saturating_add(1)).unwrap_or(u32::MAX);
    vec![0, 0, 0, 0, 0, step]
}

/// Where non-finite values were found in one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonFiniteStep {
    /// The step (1-based count of the steps this compiled graph ran); its update was skipped.
    pub step: u64,
    /// The loss was NaN or infinite.
    pub loss: bool,
    /// A gradient was NaN or infinite.
    pub gradients: bool,
    /// The parameter of the first non-finite gradient (layout order).
    pub parameter: Option<String>,
    /// The first node (graph order) whose output was non-finite, when activations are checked
    /// (`Options::check_activations`).
    pub node: Option<String>,
}

impl std::fmt::Display for NonFiniteStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut what = Vec::new();
        if self.loss {
            what.push("the loss".to_string());
        }
        if self.gradients {
            what.push(match &self.parameter {
                Some(p) => format!("the gradient of {p:?}"),
                None => "a gradient".to_string(),
            });
        }
        if let Some(n) = &self.node {
            what.push(format!(
                "the output of node {n:?} (the first in graph order)"
            ));
        }
        if what.is_empty() {
            what.push("a value".into());
        }
        write!(
            f,
            "step {}: non-finite values (NaN or infinity) in {}; its update was skipped",
            self.step,
            what.join(", ")
        )
    }
}

/// What the guards found since the last `Compiled::reset_health`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Steps whose update was skipped because something was non-finite.
    pub skipped_steps: u64,
    /// The first of them.
    pub first: Option<NonFiniteStep>,
    /// Every skipped step had a finite loss and non-finite gradients only: under dynamic loss
    /// scaling, overflows the scaler handles (it halved the scale), not a failure.
    pub only_gradients: bool,
}

impl Health {
    /// Decodes the buffer's words; names come from the graph and the parameter layout.
    pub(crate) fn decode(
        words: &[u32],
        graph: &Graph,
        param_at: impl Fn(usize) -> Option<String>,
    ) -> Health {
        let word = |i: usize| words.get(i).copied().unwrap_or(0);
        let first = (word(5) != 0).then(|| NonFiniteStep {
            step: word(5) as u64,
            loss: word(6) & LOSS != 0,
            gradients: word(6) & GRAD != 0,
            parameter: (word(7) != NONE)
                .then(|| param_at(word(7) as usize))
                .flatten(),
            node: (word(8) != NONE)
                .then(|| graph.nodes.get(word(8) as usize).map(|n| n.name.clone()))
                .flatten(),
        });
        Health {
            skipped_steps: word(4) as u64,
            first,
            only_gradients: word(4) > 0 && word(9) == GRAD,
        }
    }
}
