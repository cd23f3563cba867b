//! The matmul family: batched matrix products on the shared GEMM core (`wgsl/matmul.wgsl`,
//! `wgsl/gemm_core.wgsl`), which convolutions and fully connected layers reuse.

pub mod gpu;
mod op;
pub mod reference;
pub(crate) mod samples;

pub use op::MatMulOp;
