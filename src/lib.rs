//! # wgtrain
//!
//! Train neural networks on any GPU that wgpu reaches — Metal on Apple silicon first, Vulkan and
//! DX12 elsewhere, lavapipe (software Vulkan) in CI — in the spirit of Apple's Metal Performance
//! Shaders training graph.

#![warn(missing_docs)]

// Modules in dependency order: each uses only those above it (`scripts/module_deps.py`).
pub mod error;
pub mod dtype;
pub mod device;
pub mod tensor;
pub mod launch;
pub mod reference;
pub mod neuron;
pub mod layout;
pub mod graph;
pub mod ops;
pub mod autograd;
pub mod autocast;
pub mod health;
pub mod optim;
pub mod weights;
pub mod compile;
pub mod data;
pub mod batch;
pub mod train;

// What a user needs, at the crate root: the device and tensors, the graph and its compiled
// step, the op descriptors, optimizers, the training loop, data sets and checkpoints.
pub use autograd::Training;
pub use batch::{ImageBatch, LossLabels, StateBatch};
pub use compile::{Compiled, Options, Residency, StepHandle};
pub use data::{Har, Mnist};
pub use device::Device;
pub use dtype::Accumulator;
pub use error::{Error, Result, Unit};
pub use graph::{Graph, Value};
pub use layout::ParamLayout;
pub use neuron::UnaryOp;
pub use ops::conv::Padding1d;
pub use ops::conv::{Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, Padding};
pub use ops::dense::FullyConnected;
pub use ops::dropout::Dropout;
pub use ops::elementwise::BinaryOp;
pub use ops::loss::{Loss, LossKind, Reduction};
pub use ops::norm::{BatchNorm, GroupNorm, InstanceNorm, LayerNorm};
pub use ops::pool::{Pool1d, Pool2d, PoolKind};
pub use ops::recurrent::{CarriedState, Cell, Merge, RecurrentLayers, RecurrentOutputs};
pub use ops::shape::{Concat, Pad, Slice, Upsample};
pub use ops::softmax::Softmax;
pub use optim::{Algorithm, Optimizer, OptimizerConfig, ParamGroup, Schedule};
pub use tensor::{DType, Tensor};
pub use train::{Dataset, Inputs, Model, ModelConfig, Network, TrainConfig, Trainer};
pub use weights::checkpoint;

/// The README's Rust snippets, compiled and run as doctests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Every shader the crate compiles (each op family's and the optimizers'); the naga translation
/// test walks this list.
pub fn all_shaders() -> Vec<&'static launch::Shader> {
    let mut all: Vec<&'static launch::Shader> = ops::FAMILIES
        .iter()
        .flat_map(|f| f.shaders.iter().copied())
        .collect();
    all.extend([
        &optim::SHADER,
        &optim::custom::EXAMPLE_SHADER,
        &health::SHADER,
    ]);
    all
}
