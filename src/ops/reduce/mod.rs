//! The reduce family: sum, mean and max (with its argmax) over one axis. Shader: `wgsl/reduce.wgsl`.

pub mod gpu;
mod op;
pub mod reference;
pub(crate) mod samples;

pub use gpu::ReduceKind;
pub use op::ReduceOp;
