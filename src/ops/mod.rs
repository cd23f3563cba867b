//! The op families. Each family is one folder: its descriptors (plain data, validated against
//! input shapes), its graph op (`op.rs`: one `Primitive` implementation — shape inference,
//! lowering to launches, f64 reference, vjp rule — and its `Graph` builder methods), its GPU
//! launches (`gpu.rs`, shaders in `wgsl/` named after the family) and its CPU f64 reference
//! (`reference.rs`) and its sample cases (`samples.rs`, see [`sample`]). A new family is a
//! folder, its shaders, one line in `FAMILIES` and one in `SAMPLES`.

pub mod axis;
pub mod conv;
pub mod dense;
pub mod dropout;
pub mod eager;
pub mod elementwise;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod prelu;
pub mod reduce;
pub mod sample;
pub mod shape;
pub mod softmax;

use crate::launch::Shader;
pub use sample::{Fill, Sample};

/// The registry: every family by name with the shaders it compiles.
pub static FAMILIES: &[(&str, &[&Shader])] = &[
    ("elementwise", &[&elementwise::gpu::SHADER]),
    ("matmul", &[&matmul::gpu::SHADER]),
    ("reduce", &[&reduce::gpu::SHADER]),
    ("shape", &[&shape::gpu::SHADER, &shape::permute::SHADER]),
    (
        "conv",
        &[
            &conv::gpu::FORWARD,
            &conv::gpu::DGRAD,
            &conv::gpu::WGRAD,
            &conv::gpu::BIAS,
        ],
    ),
    ("dense", &[]),
    ("pool", &[&pool::gpu::SHADER]),
    ("norm", &[&norm::gpu::SHADER]),
    ("dropout", &[&dropout::gpu::SHADER]),
    ("softmax", &[&softmax::gpu::SHADER]),
    ("loss", &[&loss::gpu::SHADER]),
    ("prelu", &[&prelu::gpu::SHADER]),
];

/// A family's list of sample cases.
pub type SamplesFn = fn() -> Vec<Sample>;

/// The sample cases of every family, by family name (the names of `FAMILIES`): what
/// `tests/conformance.rs` checks and `benches/ops.rs` times.
pub static SAMPLES: &[(&str, SamplesFn)] = &[
    ("elementwise", elementwise::samples::samples),
    ("matmul", matmul::samples::samples),
    ("reduce", reduce::samples::samples),
    ("shape", shape::samples::samples),
    ("conv", conv::samples::samples),
    ("dense", dense::samples::samples),
    ("pool", pool::samples::samples),
    ("norm", norm::samples::samples),
    ("dropout", dropout::samples::samples),
    ("softmax", softmax::samples::samples),
    ("loss", loss::samples::samples),
];

/// Every sample of every family, in registry order.
pub fn all_samples() -> Vec<Sample> {
    SAMPLES.iter().flat_map(|(_, f)| f()).collect()
}
