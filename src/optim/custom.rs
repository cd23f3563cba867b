//! Custom optimizers: the user writes the per-element update in WGSL and the engine wraps it in
//! the arena kernel (`wgsl/optim/custom.wgsl`), with the same chunk table, gradient preprocessing,
//! groups, schedule and state layout as the built-in optimizers.
//!
//! The user's code must define
//!
//! ```wgsl
//! fn update(i: u32, p: f32, g: f32, step: u32, lr: f32) -> f32
//! ```
//!
//! returning the new value of element `i` (parameter `p`, preprocessed gradient `g` with the
//! group's weight decay added as L2, 1-based `step`, the group's scheduled `lr`). It may keep
//! per-element state in the slots it declares (`CustomUpdate::slots`), through the template's
//! `state_get(slot: u32, i: u32) -> f32` and `state_set(slot: u32, i: u32, v: f32)`. Names
//! starting with `opt_`, `cfg`, `state_get`, `state_set` and `custom_update` are the template's.
//!
//! Compilation goes through wgpu (naga underneath) inside an error scope, so invalid code is an
//! `Err` carrying naga's message. Each distinct source becomes a `Shader` kept for the life of the
//! process (a few KB), so its pipeline is compiled once per device like every other kernel.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::device::Device;
use crate::error::{Error, Result};
use crate::launch::Shader;

const COMMON: &str = include_str!("../../wgsl/optim/common.wgsl");
const TEMPLATE: &str = include_str!("../../wgsl/optim/custom.wgsl");

/// The example update (SGD with momentum 0.9) as a user would write it.
pub const EXAMPLE_SGD_MOMENTUM: &str = include_str!("../../wgsl/optim/custom_sgd.wgsl");

/// The template instantiated with the example, so the translation test validates the template.
pub(crate) static EXAMPLE_SHADER: Shader = Shader {
    name: "optim_custom_example",
    user_code: true,
    parts: &[
        include_str!("../../wgsl/optim/custom_sgd.wgsl"),
        COMMON,
        TEMPLATE,
    ],
};

/// At most this many state slots per custom optimizer.
pub const MAX_SLOTS: usize = 4;

/// A user-written update rule.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomUpdate {
    /// Recorded in checkpoints as `custom:<name>`.
    pub name: String,
    /// WGSL defining `fn update(i: u32, p: f32, g: f32, step: u32, lr: f32) -> f32`.
    pub source: String,
    /// Names of the state slots (checkpoint keys), at most `MAX_SLOTS`; slot `k` is `state_get(k, i)`.
    pub slots: Vec<String>,
}

impl CustomUpdate {
    /// An update rule named `name` with WGSL `source` and state `slots` (validated when the optimizer is built).
    pub fn new(name: &str, source: &str, slots: &[&str]) -> Self {
        CustomUpdate {
            name: name.to_string(),
            source: source.to_string(),
            slots: slots.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let ok_name = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !ok_name(&self.name)
            || self.slots.len() > MAX_SLOTS
            || !self.slots.iter().all(|s| ok_name(s))
        {
            return Err(Error::Invalid(format!(
                "custom optimizer {:?}: the name and slot names must be non-empty [A-Za-z0-9_-], at most {MAX_SLOTS} slots (got {:?})",
                self.name, self.slots
            )));
        }
        let mut seen = self.slots.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != self.slots.len() {
            return Err(Error::Invalid(format!(
                "custom optimizer {:?}: slot names repeat: {:?}",
                self.name, self.slots
            )));
        }
        Ok(())
    }
}

fn registry() -> &'static Mutex<HashMap<String, &'static Shader>> {
    static R: OnceLock<Mutex<HashMap<String, &'static Shader>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// The shader for `source`, made once per distinct source.
fn shader_for(source: &str) -> &'static Shader {
    let mut r = registry().lock().unwrap();
    let n = r.len();
    r.entry(source.to_string()).or_insert_with(|| {
        // The user's code first, so naga's line numbers are the user's own.
        let user: &'static str = Box::leak(format!("{source}\n").into_boxed_str());
        let name: &'static str = Box::leak(format!("optim_custom_{n}").into_boxed_str());
        let parts: &'static [&'static str] =
            Box::leak(vec![user, COMMON, TEMPLATE].into_boxed_slice());
        Box::leak(Box::new(Shader {
            name,
            parts,
            user_code: true,
        }))
    })
}

/// Compiles the custom update on `device`; invalid WGSL is an `Err` with naga's diagnostic.
pub(crate) fn compile(device: &Device, c: &CustomUpdate) -> Result<&'static Shader> {
    let shader = shader_for(&c.source);
    // The variant with the template's read-only bindings kept: the stricter one (code that
    // compiles there compiles read-write too), which the update's launches take where their
    // buffers allow.
    let strict = crate::dtype::Variant {
        read_write: 0,
        ..crate::dtype::Variant::F32
    };
    device
        .pipeline(
            shader.name,
            strict,
            || shader.source_of(strict),
            true,
            "custom_update",
            &[],
        )
        .and_then(|p| p.handle.get().map(drop))
        .map_err(|e| {
            let msg = match e {
                Error::Gpu(m) => m,
                other => other.to_string(),
            };
            Error::Invalid(format!(
                "custom optimizer {:?}: its WGSL does not compile: {msg}",
                c.name
            ))
        })?;
    Ok(shader)
}
