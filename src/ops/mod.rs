//! The op families. Each family is one folder: its descriptors (plain data, validated against
//! input shapes), its graph op (`op.rs`: one `Primitive` implementation — shape inference,
//! lowering to launches, f64 reference, vjp rule — and its `Graph` builder methods), its GPU
//! launches (`gpu.rs`, shaders in `wgsl/` named after the family) and its CPU f64 reference
//! (`reference.rs`) and its sample cases (`samples.rs`, see [`sample`]). A new family is a
//! folder, its shaders, one line in `FAMILIES` and one in `SAMPLES`.

pub(crate) mod axis;
pub mod cast;
pub(crate) mod checks;
pub mod conv;
pub mod dense;
pub mod dropout;
pub mod eager;
pub mod elementwise;
pub mod layers;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod prelu;
pub mod recurrent;
pub mod reduce;
pub mod sample;
pub mod shape;
pub mod softmax;

use crate::launch::Shader;
pub use sample::{Fill, Sample};

/// One op family as the crate knows it: its name, the shaders it compiles (validated by naga in
/// `tests/wgsl_translate.rs`) and its sample cases (checked by `tests/conformance.rs`, timed by
/// `benches/ops.rs`).
pub struct Family {
    /// Family name, also the folder under `src/ops/` and `wgsl/`.
    pub name: &'static str,
    /// The shaders it compiles.
    pub shaders: &'static [&'static Shader],
    /// Its sample cases.
    pub samples: fn() -> Vec<Sample>,
}

/// The registry: one line per family.
#[rustfmt::skip]
pub static FAMILIES: &[Family] = &[
    Family { name: "elementwise", shaders: &[&elementwise::gpu::SHADER], samples: elementwise::samples::samples },
    Family { name: "matmul", shaders: &[&matmul::gpu::SHADER, &matmul::gpu::SHADER_VEC4], samples: matmul::samples::samples },
    Family { name: "reduce", shaders: &[&reduce::gpu::SHADER], samples: reduce::samples::samples },
    Family { name: "shape", shaders: &[&shape::gpu::SHADER, &shape::permute::SHADER, &shape::row_copy::SHADER], samples: shape::samples::samples },
    Family { name: "conv", shaders: &[&conv::gpu::FORWARD, &conv::gpu::DGRAD, &conv::gpu::WGRAD, &conv::gpu::BIAS, &conv::winograd::TRANSFORMS, &conv::winograd::GEMM, &conv::winograd::GEMM_VEC4, &conv::winograd::WGRAD_GEMM, &conv::winograd::WGRAD_GEMM_VEC4, &conv::short_k::SHADER], samples: conv::samples::samples },
    Family { name: "dense", shaders: &[], samples: dense::samples::samples },
    Family { name: "pool", shaders: &[&pool::gpu::SHADER], samples: pool::samples::samples },
    Family { name: "norm", shaders: &[&norm::gpu::SHADER, &norm::gpu::SHADER_DY, &norm::gpu::SHADER_LANE4, &norm::gpu::SHADER_DY_LANE4], samples: norm::samples::samples },
    Family { name: "dropout", shaders: &[&dropout::gpu::SHADER], samples: dropout::samples::samples },
    Family { name: "softmax", shaders: &[&softmax::gpu::SHADER], samples: softmax::samples::samples },
    Family { name: "loss", shaders: &[&loss::gpu::SHADER], samples: loss::samples::samples },
    Family { name: "recurrent", shaders: &[&recurrent::gpu::FORWARD, &recurrent::gpu::PREP, &recurrent::gpu::BACKWARD, &recurrent::gpu::FINAL], samples: recurrent::samples::samples },
    Family { name: "cast", shaders: &[&cast::gpu::SHADER, &cast::gpu::COPY], samples: cast::samples::samples },
    Family { name: "prelu", shaders: &[&prelu::gpu::SHADER], samples: prelu::samples::samples },
];

/// Every sample of every family, in registry order.
pub fn all_samples() -> Vec<Sample> {
    FAMILIES.iter().flat_map(|f| (f.samples)()).collect()
}
