//! # wgtrain
//!
//! Train neural networks on any GPU that wgpu reaches — Metal on Apple silicon first, Vulkan and
//! DX12 elsewhere, lavapipe (software Vulkan) in CI — in the spirit of Apple's Metal Performance
//! Shaders training graph.

// Modules in dependency order: each uses only those above it.
pub mod error;
pub mod device;
pub mod tensor;
pub mod launch;
pub mod reference;
pub mod neuron;
pub mod layout;
pub mod graph;
pub mod ops;
pub mod autograd;
pub mod optim;
pub mod weights;
pub mod compile;
pub mod data;
pub mod batch;
pub mod train;

pub use error::{Error, Result, Unit};

pub use device::Device;
pub use tensor::{DType, Tensor};

/// The README's Rust snippets, compiled and run as doctests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Every shader the crate compiles (each op family's and the optimizers'); the naga translation
/// test walks this list.
pub fn all_shaders() -> Vec<&'static launch::Shader> {
    let mut all: Vec<&'static launch::Shader> = ops::FAMILIES
        .iter()
        .flat_map(|(_, shaders)| shaders.iter().copied())
        .collect();
    all.extend([&optim::SHADER, &optim::custom::EXAMPLE_SHADER]);
    all
}
