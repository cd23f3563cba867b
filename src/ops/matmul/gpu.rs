//! Batched matmul with either operand transposed (the backward needs both).
//! WGSL: `wgsl/matmul.wgsl`, its operand loaders (`matmul_scalar.wgsl`, or `matmul_vec4.wgsl`
//! where the operands allow 16-byte loads) and the shared main loop `wgsl/gemm_core.wgsl`.
//! CPU reference: `reference::matmul`.

use crate::device::Device;
use crate::error::{Error, Result, Unit};
use crate::launch::{Launch, Prepared, Shader, f};
use crate::ops::elementwise::UnaryOp;
use crate::tensor::{DType, Tensor};

/// The tiled GEMM main loop every GEMM module ends with (matmul, the implicit-GEMM
/// convolutions, Winograd's products).
pub(crate) const GEMM_CORE: &str = include_str!("../../../wgsl/gemm_core.wgsl");
/// The core's store contract for a row-major C: every GEMM module but Winograd's products.
pub(crate) const GEMM_C_ROWS: &str = include_str!("../../../wgsl/gemm_c_rows.wgsl");

pub(crate) static SHADER: Shader = Shader {
    name: "matmul",
    user_code: false,
    parts: &[
        crate::neuron::WGSL,
        include_str!("../../../wgsl/matmul.wgsl"),
        include_str!("../../../wgsl/matmul_scalar.wgsl"),
        GEMM_C_ROWS,
        GEMM_CORE,
    ],
};

/// The same product reading its operands four elements at a time (where [`vec4_loads`] allows).
pub(crate) static SHADER_VEC4: Shader = Shader {
    name: "matmul_vec4",
    user_code: false,
    parts: &[
        crate::neuron::WGSL,
        include_str!("../../../wgsl/matmul.wgsl"),
        include_str!("../../../wgsl/matmul_vec4.wgsl"),
        GEMM_C_ROWS,
        GEMM_CORE,
    ],
};

/// The shader for a GEMM's products: [`SHADER_VEC4`] where they load by four (`vec4`, as
/// [`vec4_loads`] decides), else [`SHADER`].
fn shader_for(vec4: bool) -> &'static Shader {
    if vec4 { &SHADER_VEC4 } else { &SHADER }
}

/// Whether `g`'s products over `a` and `b` split into `splits` chunks of `chunk` can load their
/// operands four elements at a time ([`SHADER_VEC4`]): on the tiled core where every four
/// contiguous elements they read lie whole inside an operand and aligned (each operand's
/// contiguous extent, its batch stride, the split chunk and its binding offset multiples of four
/// elements).
fn vec4_loads(g: &Gemm, a: &Tensor, b: &Tensor, splits: usize, chunk: usize) -> bool {
    let four = |x: usize| x.is_multiple_of(4);
    let aligned = |t: &Tensor| {
        t.buffer()
            .offset
            .is_multiple_of(4 * t.dtype().size() as u64)
    };
    let a_run = if g.trans_a { g.m } else { g.k };
    let b_run = if g.trans_b { g.k } else { g.n };
    !crate::launch::direct_gemm(&a.device)
        && g.m > 0
        && g.n > 0
        && a_run > 0
        && b_run > 0
        && four(a_run)
        && four(b_run)
        && four(g.a_stride)
        && four(g.b_stride)
        && (splits == 1 || four(chunk))
        && aligned(a)
        && aligned(b)
}

/// Whether every workgroup of tiled `entry` over `g` (unsplit) lies inside the problem with K a
/// multiple of the core's K step: `gemm_core.wgsl`'s `INTERIOR`, under which the vec4 loaders
/// drop their bounds and blocks run grouped for L2.
fn interior(entry: &str, g: &Gemm) -> bool {
    let Some((width, _)) = tiled_entry(entry) else {
        return false;
    };
    g.m > 0
        && g.k > 0
        && g.m.is_multiple_of(TILE_M)
        && g.n.is_multiple_of(width)
        && g.k.is_multiple_of(CORE_BK)
}

/// The K step of `gemm_core.wgsl`'s tiled loop (`BK`).
const CORE_BK: usize = 8;

/// Output rows per workgroup of `gemm_core.wgsl`'s tiled entries.
pub const TILE_M: usize = 128;
/// Output columns per workgroup of the `gemm` entry; `gemm_wide` does twice as many.
pub const TILE_N: usize = 64;
/// Output columns per workgroup of the `gemm_thin` entry, which an N up to this many takes: a
/// 64-wide tile would leave half its columns idle (32 channels, say).
pub const THIN_N: usize = 32;
/// Workgroups the tile choice plans its waves for: what a large GPU runs at once (an H200's 132
/// multiprocessors, two of these 256-invocation workgroups each). On a smaller GPU every grid
/// takes many waves, and the choice comes down to the work each tile pads out and its speed.
const WAVE_GROUPS: usize = 264;
/// The wide tile's work per column relative to the 128×64 tile's: its 8×8 register tile reads
/// shared memory half as often per multiply-add (fitted to the H200, BENCHMARKS.md).
const WIDE_SPEED: f64 = 1.2;
/// The thin tile's work per column relative to the 128×64 tile's (4×4 outputs per invocation).
const THIN_SPEED: f64 = 0.64;
/// A split-K sum's dispatch in [`launch_cost`]'s units: about one wave of 128×64 tiles over
/// K = 64.
const SPLIT_SUM_COST: f64 = 4096.0;
/// And per value it reads or writes (4 bytes at the H200's ~3 TB/s).
const SUM_PER_VALUE: f64 = 5.6e-4;
/// Invocations per workgroup of `gemm_direct`, each an 8×8 block of the output.
const DIRECT_GROUP: usize = 64;
/// Rows and columns of `gemm_direct`'s blocks.
const DIRECT_BLOCK: usize = 8;

/// Entry point and grid of `gemm_core.wgsl` for an `m`×`n` output over `batch` (workgroup z) on
/// `dev`: the direct loop where `launch::with_gemm_loop` (by default: a CPU adapter) asks for
/// it, the thin tile for an `n` up to [`THIN_N`], else the 128×64 or the 128×128 tile, whichever
/// `tile_cost` finds faster.
pub fn gemm_grid(dev: &Device, m: usize, n: usize, batch: usize) -> (&'static str, [u32; 3]) {
    if crate::launch::direct_gemm(dev) {
        let [x, y, _] = crate::launch::grid_1d(
            m.div_ceil(DIRECT_BLOCK) * n.div_ceil(DIRECT_BLOCK),
            DIRECT_GROUP,
        );
        return ("gemm_direct", [x, y, batch as u32]);
    }
    tiled_grid(m, n, batch)
}

/// [`gemm_grid`]'s choice among the tiled entries.
fn tiled_grid(m: usize, n: usize, batch: usize) -> (&'static str, [u32; 3]) {
    let rows = m.div_ceil(TILE_M);
    let (narrow, wide) = (n.div_ceil(TILE_N), n.div_ceil(2 * TILE_N));
    let grid = |x: usize| [x as u32, rows as u32, batch as u32];
    let groups = |x: usize| x.saturating_mul(rows).saturating_mul(batch);
    if n <= THIN_N {
        ("gemm_thin", grid(1))
    } else if tile_cost(groups(wide), 2 * TILE_N, WIDE_SPEED)
        < tile_cost(groups(narrow), TILE_N, 1.0)
    {
        ("gemm_wide", grid(wide))
    } else {
        ("gemm", grid(narrow))
    }
}

/// Output columns per workgroup and relative speed (`tile_cost`'s) of tiled `entry`; `None` for
/// `gemm_direct`.
fn tiled_entry(entry: &str) -> Option<(usize, f64)> {
    match entry {
        "gemm_thin" => Some((THIN_N, THIN_SPEED)),
        "gemm" => Some((TILE_N, 1.0)),
        "gemm_wide" => Some((2 * TILE_N, WIDE_SPEED)),
        _ => None,
    }
}

/// The time of a tiled launch of `grid` on `entry` (`gemm_thin`, `gemm` or `gemm_wide`), each
/// workgroup walking `k`, plus a split's sum when `split`: [`tile_cost`] × K, what the
/// convolutions weigh one way of running a pass against another with.
pub(crate) fn launch_cost(entry: &str, grid: [u32; 3], k: usize, split: bool) -> f64 {
    let (width, speed) = tiled_entry(entry).unwrap_or((2 * TILE_N, WIDE_SPEED));
    let groups = grid
        .iter()
        .fold(1usize, |a, &d| a.saturating_mul(d as usize));
    let sum = if split { SPLIT_SUM_COST } else { 0.0 };
    tile_cost(groups, width, speed) * k as f64 + sum
}

/// The split of K, from one to `most` chunks (each a multiple of `unit`), whose tiled launch and
/// sum cost least ([`launch_cost`], the sum reading each split's slab of `outputs` values): an
/// `m`×`n` GEMM over `batch` with K = `k`. Returns `(splits, chunk)`.
pub(crate) fn cheapest_split(
    (m, n, batch): (usize, usize, usize),
    k: usize,
    unit: usize,
    most: usize,
    outputs: usize,
) -> (usize, usize) {
    let unit = unit.max(1);
    let mut best = (f64::INFINITY, (1, k));
    for want in 1..=most.max(1) {
        let chunk = k.div_ceil(want).div_ceil(unit).saturating_mul(unit);
        let splits = k.div_ceil(chunk.max(1)).max(1);
        let (entry, grid) = tiled_grid(m, n, batch.saturating_mul(splits));
        let sum = match splits {
            1 => 0.0,
            s => SUM_PER_VALUE * outputs as f64 * (s + 1) as f64,
        };
        let cost = launch_cost(entry, grid, chunk.min(k), splits > 1) + sum;
        if cost < best.0 {
            best = (cost, if splits == 1 { (1, k) } else { (splits, chunk) });
        }
    }
    best.1
}

/// The time of `groups` workgroups of a tile `width` columns wide, in units of one 128×64
/// workgroup's: the waves of [`WAVE_GROUPS`] they take, each as long as one workgroup's work
/// (its width over its `speed` per column). Columns past `n` cost as much as real ones.
fn tile_cost(groups: usize, width: usize, speed: f64) -> f64 {
    groups.div_ceil(WAVE_GROUPS) as f64 * width as f64 / speed
}

/// Problem description: `C = alpha · op(A) · op(B) (+ C)`, batched.
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
    /// Rows of op(A) and C.
    pub m: usize,
    /// Columns of op(B) and C.
    pub n: usize,
    /// Columns of op(A), rows of op(B).
    pub k: usize,
    /// Number of matrices.
    pub batch: usize,
    /// op(A) = Aᵀ (A stored k × m).
    pub trans_a: bool,
    /// op(B) = Bᵀ (B stored n × k).
    pub trans_b: bool,
    /// Add to C instead of overwriting it.
    pub accumulate: bool,
    /// Scale of the product.
    pub alpha: f32,
    /// Batch strides in elements (0 shares one matrix across the batch).
    pub a_stride: usize,
    /// Batch stride of B, in elements.
    pub b_stride: usize,
    /// Batch stride of C, in elements.
    pub c_stride: usize,
    /// A neuron fused onto every output (`y = fused(alpha·op(A)·op(B) (+ C))`).
    pub fused: Option<UnaryOp>,
}

impl Gemm {
    /// One `m`×`n`×`k` product, unscaled, no batch, no neuron.
    pub fn plain(
        m: usize,
        n: usize,
        k: usize,
        trans_a: bool,
        trans_b: bool,
        accumulate: bool,
    ) -> Gemm {
        Gemm {
            m,
            n,
            k,
            batch: 1,
            trans_a,
            trans_b,
            accumulate,
            alpha: 1.0,
            a_stride: 0,
            b_stride: 0,
            c_stride: 0,
            fused: None,
        }
    }
}

/// Prepares one GEMM over raw buffers; the caller has checked sizes.
pub fn gemm_launch(g: &Gemm, a: &Tensor, b: &Tensor, c: &Tensor) -> Result<Launch> {
    biased_gemm_launch(g, a, b, None, c)
}

/// `gemm_launch` adding `bias[n]` to every row of C (before the fused neuron).
fn biased_gemm_launch(
    g: &Gemm,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
) -> Result<Launch> {
    let (entry, groups) = gemm_grid(&a.device, g.m, g.n, g.batch);
    let vec4 = vec4_loads(g, a, b, 1, g.k);
    let interior = vec4 && interior(entry, g);
    a.device.launch(
        shader_for(vec4),
        entry,
        &product_constants(g, interior),
        &gemm_params(g, 1, g.k, bias.is_some()),
        // Without a bias the slot is still bound (the entry reads it under a flag): reuse a.
        &[
            a.buffer(),
            b.buffer(),
            c.buffer(),
            bias.unwrap_or(a).buffer(),
        ],
        groups,
    )
}

/// The pipeline constants of `g`'s products: the fused neuron, the operands' layouts
/// (`TRANS_A`, `TRANS_B`) and, where every block lies inside the problem, `INTERIOR`.
fn product_constants(g: &Gemm, interior: bool) -> Vec<(&'static str, f64)> {
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let mut constants = crate::neuron::fused_constants(g.fused);
    constants.push(("TRANS_A", flag(g.trans_a)));
    constants.push(("TRANS_B", flag(g.trans_b)));
    if interior {
        constants.push(("INTERIOR", 1.0));
    }
    constants
}

/// The shader's parameter words for `g` split into `splits` K ranges of `chunk`; `bias`: the
/// epilogue adds a bias per column.
fn gemm_params(g: &Gemm, splits: usize, chunk: usize, bias: bool) -> Vec<u32> {
    let (code, pa, pb) = g.fused.map_or((0, 0.0, 0.0), |u| u.code());
    vec![
        g.m as u32,
        g.n as u32,
        g.k as u32,
        g.accumulate as u32,
        f(g.alpha),
        g.fused.is_some() as u32,
        g.a_stride as u32,
        g.b_stride as u32,
        g.c_stride as u32,
        code,
        f(pa),
        f(pb),
        splits as u32,
        chunk as u32,
        g.batch as u32,
        bias as u32,
        0,
        0,
        0,
        0,
    ]
}

/// K values per split at the least (8 steps of the main loop).
const SPLIT_MIN_CHUNK: usize = 64;
/// Workgroups below which the direct loop splits K: a CPU's few cores fill with fewer.
const DIRECT_SPLIT_BELOW: usize = 64;
/// Workgroups a split on the direct loop aims for.
const DIRECT_SPLIT_TARGET: usize = 256;

/// `(splits, chunk)` of `g`: on a GPU's tiled core the split whose waves and sum cost least
/// (`cheapest_split`: a fully connected layer's forward at batch 256, 32 tiles of 128×128 over
/// K = 3136, takes 16 splits), chunks at least `SPLIT_MIN_CHUNK` long. The direct loop of a CPU
/// adapter splits below `DIRECT_SPLIT_BELOW` workgroups, towards `DIRECT_SPLIT_TARGET`. Chunks are
/// a multiple of 16.
pub fn gemm_split(dev: &Device, g: &Gemm) -> (usize, usize) {
    let most_splits = (g.k / SPLIT_MIN_CHUNK).min(65_535 / g.batch.max(1)).max(1);
    let (splits, chunk) = if crate::launch::direct_gemm(dev) {
        let grid = gemm_grid(dev, g.m, g.n, g.batch).1;
        let tiles: usize = grid.iter().map(|&d| d as usize).product();
        if tiles == 0 || tiles >= DIRECT_SPLIT_BELOW || g.k < 2 * SPLIT_MIN_CHUNK {
            return (1, g.k);
        }
        let want = DIRECT_SPLIT_TARGET.div_ceil(tiles).min(most_splits);
        let chunk = g.k.div_ceil(want.max(1)).div_ceil(16) * 16;
        (g.k.div_ceil(chunk), chunk)
    } else {
        let outputs = g.m.saturating_mul(g.n).saturating_mul(g.batch);
        cheapest_split((g.m, g.n, g.batch), g.k, 16, most_splits, outputs)
    };
    // The partial products are indexed in u32.
    let partials = [g.batch, splits, g.m, g.n]
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d));
    if splits <= 1 || partials.is_none_or(|n| n > u32::MAX as usize) {
        return (1, g.k);
    }
    (splits, chunk)
}

/// The shortest K the tensor-core GEMM takes.
const COOP_MIN_K: usize = 128;

/// `C = alpha · op(A) · op(B) (+ C)`, split over K when the grid is small and K long
/// (`gemm_split`): the splits' partial products go to a scratch tensor and `gemm_sum` adds them,
/// then accumulates and applies the fused neuron.
pub fn gemm_launches(g: &Gemm, a: &Tensor, b: &Tensor, c: &Tensor) -> Result<Prepared> {
    biased_gemm_launches(g, a, b, None, c)
}

/// `gemm_launches` adding `bias[n]` (a vector of N) to every row of C before the fused neuron:
/// in the GEMM's epilogue, or in the split-K sum's, so a fully connected layer's bias costs no
/// dispatch of its own. Checked by the caller: `bias` holds N values.
pub fn biased_gemm_launches(
    g: &Gemm,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
) -> Result<Prepared> {
    // f16 operands on an adapter with f16 cooperative-matrix tiles: the tensor-core GEMM, when
    // the output fills at least a few of its 128×128 blocks and K is more than a few of its
    // 32-deep steps (the weight gradient of a dense layer at batch 64, K = 64, ran slower there
    // than on the tiled core). Its tiles accumulate in f32 only, so f16 accumulation, when asked
    // for, takes the tiled core.
    if a.dtype() == DType::F16
        && b.dtype() == DType::F16
        && crate::launch::accumulator() == crate::dtype::Accumulator::F32
        && g.m.saturating_mul(g.n).saturating_mul(g.batch)
            >= 4 * super::coop::BLOCK * super::coop::BLOCK
        && g.k >= COOP_MIN_K
        && bias.is_none_or(|b| b.dtype() == DType::F16)
        && super::coop::coop_supported(&a.device).is_ok()
    {
        let kernel = super::coop::kernel_for(g);
        return Ok(Prepared::one(super::coop::coop_biased_gemm_launch_with(
            kernel, g, a, b, bias, c,
        )?));
    }
    let (splits, chunk) = gemm_split(&a.device, g);
    if splits == 1 {
        return Ok(Prepared::one(biased_gemm_launch(g, a, b, bias, c)?));
    }
    let dev = &a.device;
    let part = crate::launch::shared_scratch(
        dev,
        crate::launch::SPLIT_PARTIALS_SLOT,
        &[g.batch * splits, g.m, g.n],
        c.dtype(),
    )?;
    let (entry, groups) = gemm_grid(dev, g.m, g.n, g.batch * splits);
    let words = gemm_params(g, splits, chunk, bias.is_some());
    let products = dev.launch(
        shader_for(vec4_loads(g, a, b, splits, chunk)),
        entry,
        &product_constants(g, false),
        &words,
        &[a.buffer(), b.buffer(), part.buffer(), a.buffer()],
        groups,
    )?;
    let sum = dev.launch(
        &SHADER,
        "gemm_sum",
        &crate::neuron::fused_constants(g.fused),
        &words,
        &[part.buffer(), c.buffer(), bias.unwrap_or(&part).buffer()],
        crate::launch::grid_1d(g.batch * g.m * g.n, 256),
    )?;
    Ok(Prepared {
        launches: vec![products, sum],
        scratch: vec![part],
    })
}

/// `c = neuron(Σ_s part[s] (+ c))` over `splits` slabs of `c`'s size, added in order, one
/// invocation per output: the epilogue of a GEMM split over K elsewhere (a convolution's data
/// passes, the few splits of its weight gradient), on `gemm_sum`.
pub(crate) fn sum_splits_launch(
    part: &Tensor,
    c: &Tensor,
    splits: usize,
    accumulate: bool,
    fused: Option<UnaryOp>,
) -> Result<Launch> {
    let n = c.numel();
    let g = Gemm {
        c_stride: n,
        accumulate,
        fused,
        ..Gemm::plain(1, n, 0, false, false, false)
    };
    c.device.launch(
        &SHADER,
        "gemm_sum",
        &crate::neuron::fused_constants(fused),
        &gemm_params(&g, splits, 0, false),
        &[part.buffer(), c.buffer(), part.buffer()],
        crate::launch::grid_1d(n, 256),
    )
}

/// `op(a) · op(b)` for a of shape `[batch..] (M, K)` (or `(K, M)` when `trans_a`) and b likewise;
/// a 2-D operand is shared across the other's batch. Output `[batch..] (M, N)`.
pub fn matmul(a: &Tensor, b: &Tensor, trans_a: bool, trans_b: bool) -> Result<Tensor> {
    let op = crate::ops::matmul::MatMulOp {
        ta: trans_a,
        tb: trans_b,
    };
    crate::ops::eager::run_first(&a.device, op, &[a, b])
}

/// Prepares `c = op(a) · op(b)` as planned by `plan` (which checked the shapes).
pub fn matmul_launches(g: &Gemm, a: &Tensor, b: &Tensor, c: &Tensor) -> Result<Prepared> {
    a.expect_dtype("matmul", DType::F32)?;
    b.expect_dtype("matmul", DType::F32)?;
    if c.numel() != g.batch * g.m * g.n {
        return Err(Error::Shape {
            op: "matmul".into(),
            msg: format!(
                "output {:?} does not hold {}×{}×{}",
                c.shape, g.batch, g.m, g.n
            ),
        });
    }
    gemm_launches(g, a, b, c)
}

/// The GEMM and output shape of `op(a) · op(b)`, or an `Err` naming both shapes.
pub fn plan(
    a_shape: &[usize],
    b_shape: &[usize],
    trans_a: bool,
    trans_b: bool,
) -> Result<(Gemm, Vec<usize>)> {
    let op = "matmul";
    let (ra, rb) = (a_shape.len(), b_shape.len());
    if ra < 2 || rb < 2 {
        return Err(Error::Shape {
            op: op.into(),
            msg: format!(
                "operands must be at least 2-D, got {:?} and {:?}",
                a_shape, b_shape
            ),
        });
    }
    let (am, ak) = if trans_a {
        (a_shape[ra - 1], a_shape[ra - 2])
    } else {
        (a_shape[ra - 2], a_shape[ra - 1])
    };
    let (bk, bn) = if trans_b {
        (b_shape[rb - 1], b_shape[rb - 2])
    } else {
        (b_shape[rb - 2], b_shape[rb - 1])
    };
    if ak != bk {
        return Err(Error::Shape {
            op: op.into(),
            msg: format!(
                "inner dimensions differ: {:?}{} · {:?}{} ({ak} vs {bk})",
                a_shape,
                if trans_a { "ᵀ" } else { "" },
                b_shape,
                if trans_b { "ᵀ" } else { "" }
            ),
        });
    }
    let ba: usize = a_shape[..ra - 2].iter().product();
    let bb: usize = b_shape[..rb - 2].iter().product();
    let batch_shape = match (ra, rb) {
        (2, _) => b_shape[..rb - 2].to_vec(),
        (_, 2) => a_shape[..ra - 2].to_vec(),
        _ if a_shape[..ra - 2] == b_shape[..rb - 2] => a_shape[..ra - 2].to_vec(),
        _ => {
            return Err(Error::Shape {
                op: op.into(),
                msg: format!("batch dimensions differ: {:?} vs {:?}", a_shape, b_shape),
            });
        }
    };
    let batch = ba.max(bb);
    if batch > 65_535 {
        return Err(Error::TooLarge {
            what: format!("matmul batch of {:?}", batch_shape),
            amount: batch as u64,
            limit: 65_535,
            unit: Unit::Workgroups,
        });
    }
    let mut out_shape = batch_shape;
    out_shape.extend_from_slice(&[am, bn]);
    // The output's size mixes a's and b's dimensions: checked, as no input's size bounds it.
    let c_stride = am.checked_mul(bn).ok_or_else(|| Error::Shape {
        op: op.into(),
        msg: format!("the output {out_shape:?} has more elements than a usize counts"),
    })?;
    let g = Gemm {
        m: am,
        n: bn,
        k: ak,
        batch,
        trans_a,
        trans_b,
        accumulate: false,
        alpha: 1.0,
        a_stride: if ra == 2 { 0 } else { am * ak },
        b_stride: if rb == 2 { 0 } else { ak * bn },
        c_stride,
        fused: None,
    };
    Ok((g, out_shape))
}

/// Gradients of `c = a · b` (no transposes, 2-D or equal batch): `da = dc · bᵀ`, `db = aᵀ · dc`.
/// A 2-D operand shared over a batch gets its gradient summed over the batch.
pub fn matmul_backward(a: &Tensor, b: &Tensor, dc: &Tensor) -> Result<(Tensor, Tensor)> {
    let da = matmul(dc, b, false, true)?;
    let db = matmul(a, dc, true, false)?;
    let fold = |g: Tensor, want: &[usize]| -> Result<Tensor> {
        if g.shape == want {
            return Ok(g);
        }
        // Shared 2-D operand: sum its per-batch gradients.
        let r = g.shape.len();
        let rows: usize = g.shape[..r - 2].iter().product();
        let flat = g.reshape(&[rows, want.iter().product()])?;
        let (s, _) =
            crate::ops::reduce::gpu::reduce(crate::ops::reduce::ReduceKind::Sum, &flat, 0)?;
        s.reshape(want)
    };
    Ok((fold(da, &a.shape)?, fold(db, &b.shape)?))
}

#[cfg(test)]
mod tests {
    use super::{cheapest_split, tiled_grid};

    /// K splits by their waves (BENCHMARKS.md, eleventh session): Inception v3's 1×7 weight
    /// gradient (M = 160·7, N = 160, K = 32·17·17) in 29 splits of 128×64 tiles, three waves,
    /// where ten splits of wide tiles padded 160 columns to 256; its forward (K = 1,120) no
    /// longer split, the two splits costing a wave each; its 8×8 maps' 1×3 forward (M = 32·64,
    /// N = 192, K = 2,048) in four.
    #[test]
    fn k_splits_follow_the_wave_cost() {
        for ((m, n, batch), k, unit, most, want) in [
            ((1_120, 160, 1), 9_248, 16, 145, (29, 320)),
            ((9_248, 160, 1), 1_120, 32, 2, (1, 1_120)),
            ((2_048, 192, 1), 2_048, 32, 4, (4, 512)),
        ] {
            let got = cheapest_split((m, n, batch), k, unit, most, m * n * batch);
            assert_eq!(got, want, "{m}×{n}×{k}");
            let (splits, chunk) = got;
            assert!(splits == 1 || chunk % unit == 0);
            assert!(splits * chunk >= k && (splits - 1) * chunk < k, "{got:?}");
        }
        // Sizes at the integer limits are costed without overflowing (saturating).
        let huge = usize::MAX;
        let (splits, chunk) = cheapest_split((huge, huge, huge), huge, 16, 256, huge);
        assert!(splits >= 1 && chunk >= 1);
        assert_eq!(cheapest_split((0, 0, 0), 0, 0, 0, 0), (1, 0));
    }

    /// The tile choices the H200 measurements behind `tile_cost` found faster (BENCHMARKS.md,
    /// eleventh session), each with its shape in Inception v3 or ResNet-50 at batch 32.
    #[test]
    fn tiles_follow_the_wave_cost() {
        for (m, n, batch, want) in [
            // Inception's 1×7 convolutions, 160 channels on 17×17, K split in two: the wide
            // tile pads 160 columns to 256, the narrow one to 192.
            (9_248, 160, 2, "gemm"),
            // Its stride-2 3×3 to 384 channels: one wave of wide tiles against two narrow.
            (9_248, 384, 1, "gemm_wide"),
            // ResNet's 1×1 512 → 128 on 28×28, per image: the same.
            (128, 784, 32, "gemm_wide"),
            // Its 1×1 stride-2 512 → 1,024: two waves either way, the narrow ones half as long.
            (6_272, 1_024, 1, "gemm"),
            // Up to 64 columns the wide tile only pads.
            (50_176, 64, 1, "gemm"),
            (50_176, 32, 1, "gemm_thin"),
            // A large square product: many waves, the wide tile's speed decides.
            (4_096, 4_096, 1, "gemm_wide"),
        ] {
            let (entry, grid) = tiled_grid(m, n, batch);
            assert_eq!(entry, want, "{m}×{n} over {batch}: {grid:?}");
            let width = match entry {
                "gemm_thin" => 32,
                "gemm" => 64,
                _ => 128,
            };
            assert_eq!(
                grid,
                [
                    n.div_ceil(width) as u32,
                    m.div_ceil(128) as u32,
                    batch as u32
                ]
            );
        }
    }
}
