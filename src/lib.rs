//! # wgtrain
//!
//! Train neural networks on any GPU that wgpu reaches — Metal on Apple silicon first, Vulkan and
//! DX12 elsewhere, lavapipe (software Vulkan) in CI — in the spirit of Apple's Metal Performance
//! Shaders training graph.

pub mod batch;
pub mod data;
pub mod error;
pub mod graph;
pub mod ops;
pub mod optim;
pub mod reference;

pub use error::{Error, Result};
pub mod device;
pub mod kernels;
pub mod tensor;
pub mod train;
pub mod weights;

pub use device::Device;
pub use tensor::{DType, Tensor};

/// The README's Rust snippets, compiled and run as doctests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
