//! The matmul family: batched matrix products on the shared GEMM core (`wgsl/matmul.wgsl`,
//! `wgsl/gemm_core.wgsl`), which convolutions and fully connected layers reuse; `coop` is the
//! tensor-core GEMM for f16 operands on adapters with cooperative matrices.

pub mod coop;
pub mod gpu;
mod op;
pub mod reference;
pub(crate) mod samples;

pub use op::MatMulOp;
