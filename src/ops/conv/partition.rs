//! How one convolution pass is cut into dispatches: the data gradient's stride phases, the K
//! splits of the forward and of the weight gradient, and the bias gradient's chunks. Pure host
//! arithmetic on the geometry; `gpu.rs` (data passes) and `param_grad.rs` (weight and bias
//! gradients) launch what it decides.

use crate::launch::Shader;
use crate::ops::conv::shaders::{DGRAD, FORWARD};
use crate::ops::conv::{ConvGeometry, coop};
use crate::ops::matmul::gpu::cheapest_split;
use crate::tensor::Tensor;

/// Workgroups the weight-gradient split-K aims for on the tensor-core core and a CPU adapter's
/// direct loop (a GPU's tiled core weighs its waves instead): enough to fill a large GPU twice.
/// 512 made the MNIST MPS step 1–3% slower on an H200 and 128 up to 16%, the zoo within 1% of
/// either (BENCHMARKS.md, eighth session); fewer splits also mean less scratch.
const WGRAD_TARGET_GROUPS: usize = 256;
/// Workgroups the bias gradient's chunks aim for.
const BIAS_TARGET_GROUPS: usize = 512;
/// Two K steps of `gemm_core.wgsl` (its loop's unit): the weight gradient's K chunks are a multiple.
pub(crate) const GEMM_K_UNIT: usize = 16;
/// Smallest K per split: below this the partial sums cost more than they save.
const WGRAD_MIN_CHUNK: usize = 64;
/// Most splits the tiled weight gradient's cost model weighs.
const WGRAD_MOST_SPLITS: usize = 256;

/// One stride phase of the data gradient (`wgsl/conv/grad_data.wgsl`): the input pixels
/// `(iy0 + i·sh, ix0 + j·sw)` for `i < h`, `j < w`, and the taps `(ky0 + a·sh, kx0 + b·sw)` for
/// `a < kh`, `b < kw` that reach them, dy's row being `i + off_y − a` (column likewise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StridePhase {
    /// First input row and column.
    pub first_pixel: (usize, usize),
    /// Input rows and columns of the phase.
    pub pixels: (usize, usize),
    /// First tap row and column.
    pub first_tap: (usize, usize),
    /// Tap rows and columns that reach the phase (0: its gradient is zero).
    pub taps: (usize, usize),
    /// dy's row and column offsets.
    pub offset: (usize, usize),
}

/// The stride phases the data gradient of `g` runs in, one dispatch each; empty where it runs as
/// one dispatch (stride 1, or dilated: then a phase's taps are not every sh-th one). Phases with
/// no input pixel (a stride beyond the input) are left out.
pub fn stride_phases(g: &ConvGeometry) -> Vec<StridePhase> {
    let (sh, sw) = g.stride;
    if (sh, sw) == (1, 1) || g.dilation != (1, 1) {
        return Vec::new();
    }
    // One axis: input positions ≡ q (mod s) are reached by taps ≡ q + pad (mod s) alone.
    let axis = |q: usize, s: usize, len: usize, k: usize, pad: usize| {
        let first_tap = (q + pad) % s;
        (
            len.saturating_sub(q).div_ceil(s),
            first_tap,
            k.saturating_sub(first_tap).div_ceil(s),
            (q + pad - first_tap) / s,
        )
    };
    let mut phases = Vec::new();
    for qy in 0..sh {
        for qx in 0..sw {
            let y = axis(qy, sh, g.in_size.0, g.kernel.0, g.padding.0);
            let x = axis(qx, sw, g.in_size.1, g.kernel.1, g.padding.2);
            if y.0 == 0 || x.0 == 0 {
                continue;
            }
            phases.push(StridePhase {
                first_pixel: (qy, qx),
                pixels: (y.0, x.0),
                first_tap: (y.1, x.1),
                taps: (y.2, x.2),
                offset: (y.3, x.3),
            });
        }
    }
    phases
}

/// `(splits, k_chunk)` for the weight gradient: enough workgroups to fill the GPU, chunks a
/// multiple of the GEMM's K step (`unit`); `tiles` are the workgroups of one split. On the tiled
/// core (`tiled`: the GEMM's M and N) the split whose waves cost least
/// (`matmul::gpu::cheapest_split`).
pub(crate) fn wgrad_split(
    g: &ConvGeometry,
    tiles: usize,
    unit: usize,
    tiled: Option<(usize, usize)>,
) -> (usize, usize) {
    let k = g.batch * g.out_size.0 * g.out_size.1;
    if let Some((m, n)) = tiled {
        let most = k
            .div_ceil(WGRAD_MIN_CHUNK)
            .min(65_535 / g.groups.max(1))
            .min(WGRAD_MOST_SPLITS);
        let outputs = m.saturating_mul(n).saturating_mul(g.groups);
        return cheapest_split((m, n, g.groups), k, unit, most, outputs);
    }
    let want = WGRAD_TARGET_GROUPS
        .div_ceil(tiles)
        .min(k.div_ceil(WGRAD_MIN_CHUNK))
        .min(65_535 / g.groups)
        .max(1);
    let chunk = k.div_ceil(want).div_ceil(unit) * unit;
    (k.div_ceil(chunk), chunk)
}

/// Chunks each channel's bias-gradient sum is split into: enough workgroups to fill a large GPU,
/// each summing at least `BIAS_MIN_CHUNK` values.
pub fn bias_chunks(total: usize, channels: usize) -> usize {
    const BIAS_MIN_CHUNK: usize = 4096;
    BIAS_TARGET_GROUPS
        .div_ceil(channels.max(1))
        .min(total.div_ceil(BIAS_MIN_CHUNK))
        .max(1)
}

/// Below this many workgroups a data pass with a long K is split over K on the tensor-core core
/// and a CPU adapter's direct loop (a GPU's tiled core weighs its waves instead): a small image
/// at many channels (ResNet-50's last stage, 7×7 at batch 32) fills too little of a large GPU
/// (one that holds two of these 256-invocation workgroups on each of 132 multiprocessors, say).
const DATA_SPLIT_BELOW_GROUPS: usize = 256;
/// Workgroups a split data pass aims for.
const DATA_SPLIT_TARGET_GROUPS: usize = 512;
/// K values per split at the least, a multiple of both cores' K steps (16 and 32): shorter chunks
/// made the MNIST step's conv2 slower (BENCHMARKS.md, fourth session).
const DATA_MIN_CHUNK: usize = 512;

/// The tiled and tensor-core modules of a data pass of `g` — the forward (M = N·OH·OW output
/// pixels, N = C_out/g, K = (C_in/g)·kh·kw) or with `adjoint` the data gradient (M = N·H·W
/// input pixels, N = C_in/g, K = (C_out/g)·kh·kw) — and its GEMM's `(M, N, K)`, whole.
pub(crate) fn data_gemm(
    g: &ConvGeometry,
    adjoint: bool,
) -> ((&'static Shader, &'static Shader), (usize, usize, usize)) {
    let (cin_g, cout_g) = (g.in_channels / g.groups, g.out_channels / g.groups);
    let taps = g.kernel.0 * g.kernel.1;
    if adjoint {
        let (h, w) = g.in_size;
        (
            (&DGRAD, &coop::DGRAD),
            (g.batch * h * w, cin_g, cout_g * taps),
        )
    } else {
        let (h, w) = g.out_size;
        (
            (&FORWARD, &coop::FORWARD),
            (g.batch * h * w, cout_g, cin_g * taps),
        )
    }
}

/// `(splits, chunk)` of a data pass of `g` on `input`'s device and dtype — the forward, or with
/// `adjoint` the unphased data gradient: `(1, K)` unless its grid is small and its K long.
pub fn data_split(g: &ConvGeometry, adjoint: bool, input: &Tensor) -> (usize, usize) {
    let (shaders, (m, n, k)) = data_gemm(g, adjoint);
    let c = coop::pick(
        shaders,
        &input.device,
        input.dtype(),
        (m, n, k),
        g.groups,
        Vec::new(),
    );
    let tiles: usize = c.groups.iter().map(|&n| n as usize).product();
    if k < 2 * DATA_MIN_CHUNK {
        return (1, k);
    }
    let most = (k / DATA_MIN_CHUNK).min(65_535 / g.groups.max(1));
    // On the tiled core of a GPU, the split whose waves cost least; else enough workgroups.
    let tiled = std::ptr::eq(c.shader, shaders.0) && !crate::launch::direct_gemm(&input.device);
    let (splits, chunk) = if tiled {
        let outputs = m.saturating_mul(n).saturating_mul(g.groups);
        cheapest_split((m, n, g.groups), k, 32, most, outputs)
    } else {
        if tiles >= DATA_SPLIT_BELOW_GROUPS {
            return (1, k);
        }
        let want = DATA_SPLIT_TARGET_GROUPS.div_ceil(tiles).min(most);
        let chunk = k.div_ceil(want.max(1)).div_ceil(32) * 32;
        (k.div_ceil(chunk), chunk)
    };
    // The partial products (the output, m × n per group, per split) are indexed in u32.
    let slabs = [n, g.groups, splits]
        .iter()
        .try_fold(m, |a, &d| a.checked_mul(d));
    if splits <= 1 || slabs.is_none_or(|n| n > u32::MAX as usize) {
        return (1, k);
    }
    (splits, chunk)
}
