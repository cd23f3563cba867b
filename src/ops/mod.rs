//! Op descriptors: plain data, validated against input shapes, shared by the GPU kernels, the
//! graph builder and the CPU reference.

pub mod axis;
pub mod conv;
pub mod dense;
pub mod dropout;
pub mod loss;
pub mod neuron;
pub mod norm;
pub mod pool;
pub mod shape_ops;
pub mod softmax;
