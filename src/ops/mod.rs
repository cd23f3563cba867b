//! Op descriptors: plain data, validated against input shapes, shared by the GPU kernels, the
//! graph builder and the CPU reference.

pub mod conv;
pub mod dense;
pub mod pool;
