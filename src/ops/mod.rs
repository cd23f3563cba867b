//! The op families. Each family is one folder: its descriptors (plain data, validated against
//! input shapes), its graph op (`op.rs`: one `Primitive` implementation — shape inference,
//! lowering to launches, f64 reference, vjp rule — and its `Graph` builder methods), its GPU
//! launches (`gpu.rs`, shaders in `wgsl/` named after the family) and its CPU f64 reference
//! (`reference.rs`). A new family is a folder, its shaders and one line in `FAMILIES`.

pub mod axis;
pub mod conv;
pub mod dense;
pub mod dropout;
pub mod elementwise;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod prelu;
pub mod reduce;
pub mod shape;
pub mod softmax;

use crate::launch::Shader;

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
