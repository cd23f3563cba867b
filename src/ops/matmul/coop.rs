//! The tensor-core GEMM: f16 operands, f32 accumulation in 16×16×16 cooperative matrices
//! (wgpu's `EXPERIMENTAL_COOPERATIVE_MATRIX`; the H100/H200 report the tile through Vulkan),
//! C in f32 or f16. The same problem description as the f32 core ([`Gemm`]: batch, either
//! operand transposed in memory, alpha, accumulate, a fused neuron, a bias): matmul and the fully
//! connected layer take it for f16 operands where it pays (`matmul::gpu::biased_gemm_launches`);
//! [`coop_gemm_launch`] says with an `Err` when the adapter has no such tiles.
//! Two cores, chosen by [`KERNEL`] (every [`CoopKernel`] in [`KERNELS`] is timed by
//! `benches/gemm.rs --f16 --variants` and checked by `tests/gemm_coop.rs`):
//! - `wgsl/gemm_coop.wgsl`: 128×128 blocks, 4 subgroups of 64×64, with its operand loaders
//!   (`gemm_coop_vec4.wgsl` for rows of a multiple of 4 halves, `gemm_coop_any.wgsl` otherwise);
//! - `wgsl/gemm_coop_wide.wgsl`: 128×256 blocks, 8 subgroups of 64×64, K steps of 16 with 1 or 2
//!   of them in flight in registers, loaders `gemm_coop_wide_ld16.wgsl` (16-byte loads, rows of a
//!   multiple of 8 halves) and `gemm_coop_wide_ld8.wgsl` (a multiple of 4); other shapes take
//!   `gemm_coop.wgsl` with `gemm_coop_any.wgsl`.
//!
//! Both include `gemm_coop_common.wgsl` (parameters, epilogue) and C's element type
//! (`gemm_coop_f32.wgsl`, `gemm_coop_f16.wgsl`).
//! CPU reference: `reference::matmul` on the operands rounded to f16; tolerance `reference::f16_tol`.

use crate::device::Device;
use crate::error::{Error, Result, Unit};
use crate::launch::{Launch, Shader, f};
use crate::ops::matmul::gpu::Gemm;
use crate::tensor::{DType, MAX_ELEMENTS, Tensor};

const COMMON: &str = include_str!("../../../wgsl/gemm_coop_common.wgsl");
const CORE: &str = include_str!("../../../wgsl/gemm_coop.wgsl");
const VEC4: &str = include_str!("../../../wgsl/gemm_coop_vec4.wgsl");
const ANY: &str = include_str!("../../../wgsl/gemm_coop_any.wgsl");
const CORE_WIDE: &str = include_str!("../../../wgsl/gemm_coop_wide.wgsl");
const LD16: &str = include_str!("../../../wgsl/gemm_coop_wide_ld16.wgsl");
const LD8: &str = include_str!("../../../wgsl/gemm_coop_wide_ld8.wgsl");
const C_F32: &str = include_str!("../../../wgsl/gemm_coop_f32.wgsl");
const C_F16: &str = include_str!("../../../wgsl/gemm_coop_f16.wgsl");

/// Rows of a multiple of 4 halves, C in f32.
pub static SHADER_VEC4_F32: Shader = Shader {
    name: "gemm_coop_vec4_f32",
    user_code: false,
    parts: &[COMMON, CORE, crate::neuron::WGSL, VEC4, C_F32],
};
/// Any shape, C in f32.
pub static SHADER_ANY_F32: Shader = Shader {
    name: "gemm_coop_any_f32",
    user_code: false,
    parts: &[COMMON, CORE, crate::neuron::WGSL, ANY, C_F32],
};
/// Rows of a multiple of 4 halves, C in f16.
pub static SHADER_VEC4_F16: Shader = Shader {
    name: "gemm_coop_vec4_f16",
    user_code: false,
    parts: &[COMMON, CORE, crate::neuron::WGSL, VEC4, C_F16],
};
/// Any shape, C in f16.
pub static SHADER_ANY_F16: Shader = Shader {
    name: "gemm_coop_any_f16",
    user_code: false,
    parts: &[COMMON, CORE, crate::neuron::WGSL, ANY, C_F16],
};
/// 128×256 blocks, rows of a multiple of 8 halves (16-byte loads), C in f32.
pub static SHADER_WIDE_LD16_F32: Shader = Shader {
    name: "gemm_coop_wide_ld16_f32",
    user_code: false,
    parts: &[COMMON, CORE_WIDE, crate::neuron::WGSL, LD16, C_F32],
};
/// 128×256 blocks, rows of a multiple of 4 halves (8-byte loads), C in f32.
pub static SHADER_WIDE_LD8_F32: Shader = Shader {
    name: "gemm_coop_wide_ld8_f32",
    user_code: false,
    parts: &[COMMON, CORE_WIDE, crate::neuron::WGSL, LD8, C_F32],
};
/// 128×256 blocks, rows of a multiple of 8 halves (16-byte loads), C in f16.
pub static SHADER_WIDE_LD16_F16: Shader = Shader {
    name: "gemm_coop_wide_ld16_f16",
    user_code: false,
    parts: &[COMMON, CORE_WIDE, crate::neuron::WGSL, LD16, C_F16],
};
/// 128×256 blocks, rows of a multiple of 4 halves (8-byte loads), C in f16.
pub static SHADER_WIDE_LD8_F16: Shader = Shader {
    name: "gemm_coop_wide_ld8_f16",
    user_code: false,
    parts: &[COMMON, CORE_WIDE, crate::neuron::WGSL, LD8, C_F16],
};

/// Every shader of every kernel (the naga translation test walks them; they are not in
/// `all_shaders()`, whose kernels must run on every adapter).
pub fn shaders() -> [&'static Shader; 8] {
    [
        &SHADER_VEC4_F32,
        &SHADER_ANY_F32,
        &SHADER_VEC4_F16,
        &SHADER_ANY_F16,
        &SHADER_WIDE_LD16_F32,
        &SHADER_WIDE_LD8_F32,
        &SHADER_WIDE_LD16_F16,
        &SHADER_WIDE_LD8_F16,
    ]
}

/// Which core [`coop_gemm_launch`] runs. Shapes a core has no loader for (rows not a multiple
/// of 4 halves for `Wide`) take `Quad`'s any-shape shaders whatever the choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoopKernel {
    /// `gemm_coop.wgsl`: 128×128 blocks, 128 invocations, 4 subgroups of 64×64, 8-byte operand
    /// loads, K steps of 32 with the next one in flight in registers.
    Quad,
    /// `gemm_coop_wide.wgsl`: 128×256 blocks, 256 invocations, 8 subgroups of 64×64, K steps
    /// of 16.
    Wide {
        /// 16-byte operand loads where every row and batch stride is a multiple of 8 halves
        /// (8-byte ones otherwise).
        ld16: bool,
        /// K steps in flight in registers, 1 to [`MAX_DEPTH`] (an `Err` otherwise).
        depth: u32,
    },
}

/// The most K steps `Wide` keeps in flight (its register sets).
pub const MAX_DEPTH: u32 = 2;

/// The kernel [`coop_gemm_launch`] uses where C has too few blocks for the wide one
/// ([`kernel_for`]).
pub const KERNEL: CoopKernel = CoopKernel::Quad;

/// Every kernel variant, for the benchmark and the tests (`Wide` with one step in flight, 20%
/// slower than two on the H200, left out).
pub const KERNELS: [CoopKernel; 3] = [
    CoopKernel::Quad,
    CoopKernel::Wide {
        ld16: false,
        depth: 2,
    },
    CoopKernel::Wide {
        ld16: true,
        depth: 2,
    },
];

impl CoopKernel {
    /// A short name for tables: `quad`, or `wide` with `_ld16` when set and `_d` + the depth.
    pub fn name(self) -> String {
        match self {
            CoopKernel::Quad => "quad".to_string(),
            CoopKernel::Wide { ld16, depth } => {
                format!("wide{}_d{depth}", if ld16 { "_ld16" } else { "" })
            }
        }
    }
}

/// The kernel's entry point.
pub const ENTRY: &str = "gemm_coop";
/// Rows and columns of C per workgroup (`Wide`: rows; its columns are [`BLOCK_WIDE`]).
pub const BLOCK: usize = 128;
/// Columns of C per workgroup of `Wide`.
pub const BLOCK_WIDE: usize = 256;
/// Workgroup memory either core declares: `gemm_coop.wgsl` two double-buffered 128×32 operand
/// blocks of f16 (rows padded) and a 16×16 f32 tile per subgroup (4) for the guarded epilogue,
/// `gemm_coop_wide.wgsl` double-buffered 128×16 and 256×16 blocks and 8 such tiles.
pub const WORKGROUP_BYTES: u32 = 45_056;

/// Whether `shader` (one of [`shaders`]) declares the pipeline constant `DEPTH` (the 128×256
/// core does).
pub fn declares_depth(shader: &Shader) -> bool {
    shader.parts.contains(&CORE_WIDE)
}

/// The one subgroup size the kernels are written for: 128 (256) invocations must be 4 (8)
/// subgroups, one per 64×64 piece of the block.
pub const SUBGROUP_SIZE: u32 = 32;

/// `Ok` when `dev` can run the kernel: a 16×16×16 f16 → f32 cooperative-matrix tile, f16 in
/// shaders, subgroups of exactly 32 and enough workgroup memory; else an `Err` naming what is
/// missing (the kernel has no fallback of its own: the caller keeps the f32 core). Every
/// [`CoopKernel`] needs the same.
pub fn coop_supported(dev: &Device) -> Result<()> {
    let caps = dev.caps();
    let tile = caps
        .cooperative_matrix
        .iter()
        .any(|t| t.m == 16 && t.n == 16 && t.k == 16 && t.ab == "F16" && t.acc == "F32");
    if !tile || !caps.shader_f16 {
        let offered: Vec<String> = caps
            .cooperative_matrix
            .iter()
            .map(|t| format!("{}×{}×{} {}→{}", t.m, t.n, t.k, t.ab, t.acc))
            .collect();
        return Err(Error::Device(format!(
            "{}: the adapter has no cooperative-matrix f16 tiles (16×16×16 f16 → f32 needed, \
             with SHADER_F16 {}; it offers: {})",
            dev.name(),
            caps.shader_f16,
            if offered.is_empty() {
                "none".to_string()
            } else {
                offered.join(", ")
            }
        )));
    }
    if !caps.subgroup || caps.subgroup_size != (SUBGROUP_SIZE, SUBGROUP_SIZE) {
        return Err(Error::Device(format!(
            "{}: the cooperative-matrix GEMM needs subgroups of exactly {SUBGROUP_SIZE} \
             (the adapter reports subgroups {}, sizes {}..{})",
            dev.name(),
            caps.subgroup,
            caps.subgroup_size.0,
            caps.subgroup_size.1
        )));
    }
    if caps.max_workgroup_storage < WORKGROUP_BYTES {
        return Err(Error::TooLarge {
            what: format!("{}: the cooperative-matrix GEMM", dev.name()),
            amount: WORKGROUP_BYTES as u64,
            limit: caps.max_workgroup_storage as u64,
            unit: Unit::WorkgroupBytes,
        });
    }
    Ok(())
}

/// Elements an operand of `rows`×`cols` per batch, `stride` apart, spans: `None` on overflow.
fn span(batch: usize, stride: usize, rows: usize, cols: usize) -> Option<usize> {
    (batch - 1)
        .checked_mul(stride)?
        .checked_add(rows.checked_mul(cols)?)
}

/// Checks `g` against the tensors: dimensions of at least 1, each operand's span inside its
/// tensor, indices within u32, C's batches not overlapping.
fn check(g: &Gemm, a: &Tensor, b: &Tensor, c: &Tensor) -> Result<()> {
    let op = "coop_gemm";
    if g.m == 0 || g.n == 0 || g.k == 0 || g.batch == 0 {
        return Err(Error::Shape {
            op: op.into(),
            msg: format!(
                "M, N, K and the batch must be at least 1, got {}×{}×{} over {}",
                g.m, g.n, g.k, g.batch
            ),
        });
    }
    if g.batch > 1 && g.m.checked_mul(g.n).is_none_or(|mn| g.c_stride < mn) {
        return Err(Error::Shape {
            op: op.into(),
            msg: format!(
                "C's batch stride {} is less than its {}×{} matrix (batches would overlap)",
                g.c_stride, g.m, g.n
            ),
        });
    }
    let (ar, ac) = if g.trans_a { (g.k, g.m) } else { (g.m, g.k) };
    let (br, bc) = if g.trans_b { (g.n, g.k) } else { (g.k, g.n) };
    for (name, t, stride, rows, cols) in [
        ("A", a, g.a_stride, ar, ac),
        ("B", b, g.b_stride, br, bc),
        ("C", c, g.c_stride, g.m, g.n),
    ] {
        if t.numel() as u64 > MAX_ELEMENTS {
            return Err(Error::TooLarge {
                what: format!("{op}: {name} {:?}", t.shape),
                amount: t.numel() as u64,
                limit: MAX_ELEMENTS,
                unit: Unit::Elements,
            });
        }
        let need = span(g.batch, stride, rows, cols);
        if need.is_none_or(|n| n > t.numel()) {
            return Err(Error::Shape {
                op: op.into(),
                msg: format!(
                    "{name} {:?} does not hold {} matrices of {rows}×{cols}, {stride} elements apart",
                    t.shape, g.batch
                ),
            });
        }
    }
    Ok(())
}

/// Prepares `C = fused(alpha · op(A) · op(B) (+ C))` on the tensor cores: A and B in f16, C in f32
/// or f16 (accumulated in f32 either way, rounded once when stored). Any M, N, K ≥ 1 (edges are
/// staged as zeros), batch strides as in [`Gemm`] (0 shares an operand). `Err` when the adapter
/// cannot run it ([`coop_supported`], checked after the arguments), on a dtype other than those,
/// or when `g` does not fit the tensors; `g.fused` and `accumulate` take the guarded epilogue.
/// Runs [`kernel_for`]`(g)`.
pub fn coop_gemm_launch(g: &Gemm, a: &Tensor, b: &Tensor, c: &Tensor) -> Result<Launch> {
    coop_gemm_launch_with(kernel_for(g), g, a, b, c)
}

/// Wide blocks from this many workgroups up (a 2048² C): below it they leave multiprocessors
/// idle and the 128×128 blocks win.
const WIDE_MIN_GROUPS: usize = 128;

/// The variant for `g`: 128×256 blocks with 16-byte loads and two K steps in flight when C has
/// enough of them to fill the GPU (1.07–1.39× the 128×128 kernel from 2048² on the H200,
/// BENCHMARKS.md), else [`KERNEL`].
pub fn kernel_for(g: &Gemm) -> CoopKernel {
    let groups =
        g.m.div_ceil(BLOCK)
            .saturating_mul(g.n.div_ceil(BLOCK_WIDE))
            .saturating_mul(g.batch);
    if groups >= WIDE_MIN_GROUPS {
        CoopKernel::Wide {
            ld16: true,
            depth: 2,
        }
    } else {
        KERNEL
    }
}

/// [`coop_gemm_launch`] with the variant `kernel` (the benchmark and the tests run each).
pub fn coop_gemm_launch_with(
    kernel: CoopKernel,
    g: &Gemm,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
) -> Result<Launch> {
    coop_biased_gemm_launch_with(kernel, g, a, b, None, c)
}

/// [`coop_gemm_launch_with`] adding `bias[n]` (`(N,)`, f16) in the epilogue, before the fused
/// neuron: a fully connected layer's forward in one dispatch.
pub fn coop_biased_gemm_launch_with(
    kernel: CoopKernel,
    g: &Gemm,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
) -> Result<Launch> {
    let dev = &a.device;
    a.expect_dtype("coop_gemm A", DType::F16)?;
    b.expect_dtype("coop_gemm B", DType::F16)?;
    if c.dtype == DType::U32 {
        return Err(Error::Invalid(format!(
            "coop_gemm C: expected an F32 or F16 tensor, got U32 {:?}",
            c.shape
        )));
    }
    check(g, a, b, c)?;
    if let Some(bias) = bias
        && (bias.dtype != DType::F16 || bias.shape != [g.n])
    {
        return Err(Error::Shape {
            op: "coop_gemm".into(),
            msg: format!(
                "the bias must be ({},) F16, got {:?} {:?}",
                g.n, bias.dtype, bias.shape
            ),
        });
    }
    if let CoopKernel::Wide { depth, .. } = kernel
        && !(1..=MAX_DEPTH).contains(&depth)
    {
        return Err(Error::Invalid(format!(
            "coop_gemm: {} keeps 1 to {MAX_DEPTH} K steps in flight, got {depth}",
            kernel.name()
        )));
    }
    // After the argument checks, so that they are testable on any adapter.
    coop_supported(dev)?;
    // Wide loads need every row and batch of both operands to start on their width in halves.
    let a_cols = if g.trans_a { g.m } else { g.k };
    let b_cols = if g.trans_b { g.k } else { g.n };
    let aligned = |halves: usize| {
        [a_cols, b_cols, g.a_stride, g.b_stride]
            .iter()
            .all(|d| d.is_multiple_of(halves))
    };
    let f32_c = c.dtype == DType::F32;
    let pick = |f32_shader: &'static Shader, f16_shader: &'static Shader| {
        if f32_c { f32_shader } else { f16_shader }
    };
    // The shader, its block's columns, and DEPTH where the core has it.
    let (shader, block_n, depth) = match kernel {
        CoopKernel::Wide { ld16, depth } if aligned(4) => {
            let shader = if ld16 && aligned(8) {
                pick(&SHADER_WIDE_LD16_F32, &SHADER_WIDE_LD16_F16)
            } else {
                pick(&SHADER_WIDE_LD8_F32, &SHADER_WIDE_LD8_F16)
            };
            (shader, BLOCK_WIDE, Some(depth))
        }
        _ if aligned(4) => (pick(&SHADER_VEC4_F32, &SHADER_VEC4_F16), BLOCK, None),
        _ => (pick(&SHADER_ANY_F32, &SHADER_ANY_F16), BLOCK, None),
    };
    // Nothing to apply (no bias either), and 16-byte aligned rows: whole tiles go straight from
    // the accumulators.
    let direct = f32_c
        && !g.accumulate
        && g.alpha == 1.0
        && g.fused.is_none()
        && bias.is_none()
        && g.n.is_multiple_of(4)
        && g.c_stride.is_multiple_of(4);
    let [fused, code, pa, pb] = crate::neuron::post_op_words(g.fused);
    // `check` bounded every span by a u32 element count.
    let words = [
        g.m as u32,
        g.n as u32,
        g.k as u32,
        g.a_stride as u32,
        g.b_stride as u32,
        g.c_stride as u32,
        g.accumulate as u32,
        f(g.alpha),
        fused,
        code,
        pa,
        pb,
        direct as u32,
        bias.is_some() as u32,
    ];
    let mut constants = crate::neuron::fused_constants(g.fused);
    constants.push(("TA", g.trans_a as u32 as f64));
    constants.push(("TB", g.trans_b as u32 as f64));
    // Only gemm_coop_wide.wgsl declares it (an unknown constant is a pipeline error).
    if let Some(depth) = depth {
        constants.push(("DEPTH", depth as f64));
    }
    let groups = [
        g.n.div_ceil(block_n) as u32,
        g.m.div_ceil(BLOCK) as u32,
        u32::try_from(g.batch).unwrap_or(u32::MAX),
    ];
    dev.launch(
        shader,
        ENTRY,
        &constants,
        &words,
        // Without a bias the slot is still bound (the epilogue reads it under a flag): reuse a.
        &[
            a.buffer(),
            b.buffer(),
            c.buffer(),
            bias.unwrap_or(a).buffer(),
        ],
        groups,
    )
}
