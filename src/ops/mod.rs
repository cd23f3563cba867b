//! Op descriptors: the attributes of each op, validated once, with shape inference.
//! The CPU reference (`crate::reference`) and the GPU kernels both take these.

pub mod axis;
pub mod dropout;
pub mod loss;
pub mod neuron;
pub mod norm;
pub mod shape_ops;
pub mod softmax;
