//! The cast family: f32 ↔ f16 storage, the seams of mixed precision (`crate::autocast` inserts
//! them: f16 compute copies of the f32 weights, f32 gradients of f16 values into the gradient
//! arena). Optionally divides by a loss scale on the way. Shader: `wgsl/cast.wgsl`.

pub mod gpu;
mod op;
pub(crate) mod samples;

pub use op::CastOp;
