//! The convolutions on the tensor cores: the three implicit-GEMM modules (forward, data gradient,
//! weight gradient) with their loaders unchanged and `wgsl/gemm_core_coop.wgsl` as the main loop
//! instead of `gemm_core.wgsl` — f16 operands, f32 sums in 16×16×16 cooperative matrices.
//! Chosen by `core_for` for f16 tensors on adapters with the tiles (the same test as
//! `ops::matmul::coop::coop_supported`), f32 accumulation, and GEMMs large enough to fill the
//! 128-row blocks; everything else keeps the tiled core. Same results up to f16 rounding of the
//! operands, which f16 storage already implies (tolerance `reference::f16_tol`).

use crate::device::Device;
use crate::dtype::Accumulator;
use crate::launch::Shader;
use crate::ops::matmul::coop::coop_supported;
use crate::ops::matmul::gpu::gemm_grid;
use crate::tensor::DType;

const CORE: &str = include_str!("../../../wgsl/gemm_core_coop.wgsl");
use crate::ops::conv::shaders::{CONV_COMMON as COMMON, GEOMETRY};

/// Convolution forward (and conv-transpose backward-data) on the tensor cores.
pub static FORWARD: Shader = Shader {
    name: "conv_fwd_coop",
    user_code: false,
    parts: &[
        crate::neuron::WGSL,
        GEOMETRY,
        COMMON,
        include_str!("../../../wgsl/conv/forward.wgsl"),
        CORE,
    ],
};

/// Convolution backward-data (and conv-transpose forward) on the tensor cores.
pub static DGRAD: Shader = Shader {
    name: "conv_dgrad_coop",
    user_code: false,
    parts: &[
        crate::neuron::WGSL,
        GEOMETRY,
        COMMON,
        include_str!("../../../wgsl/conv/grad_data.wgsl"),
        CORE,
    ],
};

/// Convolution weight gradient on the tensor cores.
pub static WGRAD: Shader = Shader {
    name: "conv_wgrad_coop",
    user_code: false,
    parts: &[
        GEOMETRY,
        COMMON,
        include_str!("../../../wgsl/conv/grad_weight.wgsl"),
        CORE,
    ],
};

/// The three modules (the naga translation test walks them; like the matmul's coop kernels
/// they are not in `all_shaders()`, whose kernels run on every adapter).
pub fn shaders() -> [&'static Shader; 3] {
    [&FORWARD, &DGRAD, &WGRAD]
}

/// The entry point; the pipeline constant `WIDE` chooses 128×128 (1) or 128×64 (0) output blocks.
pub const ENTRY: &str = "gemm_coop";
/// Rows of C per workgroup.
const BLOCK_M: usize = 128;
/// K per step of the coop main loop (the weight gradient's K chunks are a multiple).
pub(crate) const K_STEP: usize = 32;
/// Smallest N (output channels of a group, or its input channels for the data gradient) taken to
/// the tensor cores: below it most of a 64-column block would multiply zeros.
pub const MIN_N: usize = 32;
/// Smallest K: below it the block's staging outweighs its two K steps.
pub const MIN_K: usize = 64;

/// A GEMM on the tensor-core core, with 128×128 blocks (`wide`, the pipeline constant `WIDE`)
/// or 128×64 ones.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Coop {
    pub wide: bool,
}

impl Coop {
    /// Columns of C per workgroup.
    fn block_n(self) -> usize {
        if self.wide { 128 } else { 64 }
    }
}

/// Whether a convolution's GEMM with `n` columns and depth `k` runs on the tensor-core core: when
/// `dtype` is f16, the launch sums in f32, the adapter has the tiles and the GEMM is large
/// enough; else `None` (the tiled core, `gemm_grid`).
pub(crate) fn core_for(dev: &Device, dtype: DType, n: usize, k: usize) -> Option<Coop> {
    let wanted = dtype == DType::F16
        && crate::launch::accumulator() == Accumulator::F32
        && n >= MIN_N
        && k >= MIN_K;
    if !wanted || coop_supported(dev).is_err() {
        return None;
    }
    Some(Coop { wide: n > 64 })
}

/// A launch's core: the shader, entry point, pipeline constants and grid.
pub(crate) struct Core {
    pub shader: &'static Shader,
    pub entry: &'static str,
    pub constants: Vec<(&'static str, f64)>,
    pub groups: [u32; 3],
}

/// The core for a convolution GEMM of `m`×`n`×`k` over `batch`: the tensor cores' with the coop
/// module (`core_for`), else the tiled core's with the tiled module; `constants` are the
/// module's own (a fused neuron's).
pub(crate) fn pick(
    (tiled, coop): (&'static Shader, &'static Shader),
    dev: &Device,
    dtype: DType,
    (m, n, k): (usize, usize, usize),
    batch: usize,
    constants: Vec<(&'static str, f64)>,
) -> Core {
    core(
        (tiled, coop),
        dev,
        core_for(dev, dtype, n, k),
        (m, n, batch),
        constants,
    )
}

/// `pick` with the choice made: `on_coop` from [`core_for`], `(m, n, batch)` the grid's.
pub(crate) fn core(
    (tiled, coop): (&'static Shader, &'static Shader),
    dev: &Device,
    on_coop: Option<Coop>,
    (m, n, batch): (usize, usize, usize),
    mut constants: Vec<(&'static str, f64)>,
) -> Core {
    match on_coop {
        Some(c) => {
            constants.push(("WIDE", c.wide as u32 as f64));
            Core {
                shader: coop,
                entry: ENTRY,
                constants,
                groups: [
                    n.div_ceil(c.block_n()) as u32,
                    m.div_ceil(BLOCK_M) as u32,
                    u32::try_from(batch).unwrap_or(u32::MAX),
                ],
            }
        }
        None => {
            let (entry, groups) = gemm_grid(dev, m, n, batch);
            Core {
                shader: tiled,
                entry,
                constants,
                groups,
            }
        }
    }
}
