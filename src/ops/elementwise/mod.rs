//! The elementwise family: neurons (unary ops) alone or chained, broadcasting binary ops, their
//! gradients. The neurons themselves — op codes, f64 functions and derivatives — are one table,
//! [`crate::neuron::UnaryOp`]. Shaders: `wgsl/elementwise.wgsl` with the neuron table of
//! `wgsl/neuron.wgsl`.

pub mod gpu;
mod op;
pub mod reference;
pub(crate) mod samples;

pub(crate) use crate::neuron::GradFrom;
pub use crate::neuron::UnaryOp;
pub use gpu::BinaryOp;
pub use op::ElementwiseOp;
