//! The tiled implicit-GEMM convolution modules (`wgsl/conv/`, on `wgsl/gemm_core.wgsl`) and the
//! bias kernels; their tensor-core twins are in `coop.rs`.

use crate::launch::{PRELUDE, Shader};
use crate::ops::matmul::gpu::{GEMM_C_ROWS, GEMM_CORE};

/// Every convolution kernel's uniform and index rule.
pub(crate) const GEOMETRY: &str = include_str!("../../../wgsl/conv/geometry.wgsl");
/// The implicit-GEMM modules' shared helpers, after `GEOMETRY`.
pub(crate) const CONV_COMMON: &str = include_str!("../../../wgsl/conv/common.wgsl");

/// Neuron functions for the fused post-op of the forward-type modules.
const NEURON: &str = crate::neuron::WGSL;

/// Convolution forward (and conv-transpose backward-data).
pub(crate) static FORWARD: Shader = Shader {
    name: "conv_fwd",
    user_code: false,
    parts: &[
        NEURON,
        GEOMETRY,
        CONV_COMMON,
        include_str!("../../../wgsl/conv/forward.wgsl"),
        GEMM_C_ROWS,
        GEMM_CORE,
    ],
};

/// Convolution backward-data (and conv-transpose forward).
pub(crate) static DGRAD: Shader = Shader {
    name: "conv_dgrad",
    user_code: false,
    parts: &[
        NEURON,
        GEOMETRY,
        CONV_COMMON,
        include_str!("../../../wgsl/conv/grad_data.wgsl"),
        GEMM_C_ROWS,
        GEMM_CORE,
    ],
};

/// Convolution weight gradient (both kinds).
pub(crate) static WGRAD: Shader = Shader {
    name: "conv_wgrad",
    user_code: false,
    parts: &[
        GEOMETRY,
        CONV_COMMON,
        include_str!("../../../wgsl/conv/grad_weight.wgsl"),
        GEMM_C_ROWS,
        GEMM_CORE,
    ],
};

/// Bias gradient and bias broadcast (also used by the fully connected layer).
pub(crate) static BIAS: Shader = Shader {
    name: "conv_bias",
    user_code: false,
    parts: &[PRELUDE, include_str!("../../../wgsl/conv/grad_bias.wgsl")],
};
