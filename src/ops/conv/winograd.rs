//! Winograd for the passes of 3×3 and 5×5 stride-1 convolutions — F(4×4, 3×3) and F(2×2, 5×5),
//! both on a 6×6 domain: the forward, the data gradient (the adjoint of a stride-1 convolution is
//! the correlation with the flipped filter; so both passes of a stride-1 conv-transpose) and the
//! weight gradient (the same identity transposed).
//!
//! Four dispatches a pass (`wgsl/conv/winograd.wgsl`, `wgsl/conv/winograd_gemm.wgsl`,
//! `wgsl/conv/winograd_wgrad_gemm.wgsl`): the filters and the input tiles are transformed into
//! the 6×6 domain, where the sum over input channels is one GEMM per point ξ (36, batched on the
//! GEMM core); the products are transformed back to output tiles with the epilogue (bias, neuron,
//! accumulate). For 3×3 the GEMMs do 36 multiply-adds per 16 outputs and input channel where the
//! implicit GEMM does 144. The transformed operands live in scratch shared by every Winograd pass
//! of a graph (`launch::shared_scratch`).
//!
//! f16 tensors (mixed precision) take it too: the transforms read and write them, the transformed
//! operands and the GEMMs stay f32 (f16 accumulation keeps the implicit GEMM).
//!
//! Rounding differs from the implicit GEMM's (the transforms scale operands by up to 10 per axis
//! and the inverse adds terms of either sign); measured on the test shapes each pass stays within
//! the implicit GEMM's tolerance rule, and errors compound through a step (`tests/conv_winograd.rs`).

use std::cell::Cell;

use crate::dtype::Accumulator;
use crate::error::Result;
use crate::launch::{PRELUDE, Prepared, Shader, grid_1d, shared_scratch};
use crate::ops::conv::ConvGeometry;
use crate::ops::elementwise::UnaryOp;
use crate::ops::matmul::gpu::gemm_grid;
use crate::tensor::Binding;
use crate::tensor::{DType, Tensor};

const COMMON: &str = include_str!("../../../wgsl/conv/winograd_common.wgsl");

/// The three transforms.
pub(crate) static TRANSFORMS: Shader = Shader {
    name: "conv_winograd",
    user_code: false,
    parts: &[
        PRELUDE,
        crate::neuron::WGSL,
        COMMON,
        include_str!("../../../wgsl/conv/winograd.wgsl"),
    ],
};

/// The 36 products, on the GEMM core, reading and writing one element at a time.
pub(crate) static GEMM: Shader = Shader {
    name: "conv_winograd_gemm",
    user_code: false,
    parts: &[
        COMMON,
        include_str!("../../../wgsl/conv/winograd_gemm.wgsl"),
        include_str!("../../../wgsl/conv/winograd_gemm_scalar.wgsl"),
        crate::ops::matmul::gpu::GEMM_CORE,
    ],
};

/// The same products four elements at a time, where [`gemm_shader`] allows.
pub(crate) static GEMM_VEC4: Shader = Shader {
    name: "conv_winograd_gemm_vec4",
    user_code: false,
    parts: &[
        COMMON,
        include_str!("../../../wgsl/conv/winograd_gemm.wgsl"),
        include_str!("../../../wgsl/conv/winograd_gemm_vec4.wgsl"),
        crate::ops::matmul::gpu::GEMM_CORE,
    ],
};

/// Whether every tensor's binding starts at a multiple of 16 bytes (four f32), as the 16-byte
/// modules index from it.
fn vec4_aligned(tensors: &[&Tensor]) -> bool {
    tensors.iter().all(|t| t.buffer().offset.is_multiple_of(16))
}

/// The products' module for a chunk of `tiles` tiles into `cout` channels: [`GEMM_VEC4`] where
/// both are multiples of 4 and the bindings `aligned` (every four consecutive tiles or channels
/// it reads or writes then lie whole and aligned in V, U and M), else [`GEMM`].
pub(crate) fn gemm_shader(tiles: usize, cout: usize, aligned: bool) -> &'static Shader {
    if aligned && tiles.is_multiple_of(4) && cout.is_multiple_of(4) {
        &GEMM_VEC4
    } else {
        &GEMM
    }
}

/// The 36 products of the weight gradient, split over the tiles, on the GEMM core, reading one
/// element at a time.
pub(crate) static WGRAD_GEMM: Shader = Shader {
    name: "conv_winograd_wgrad_gemm",
    user_code: false,
    parts: &[
        COMMON,
        include_str!("../../../wgsl/conv/winograd_wgrad_gemm.wgsl"),
        include_str!("../../../wgsl/conv/winograd_wgrad_gemm_scalar.wgsl"),
        crate::ops::matmul::gpu::GEMM_C_ROWS,
        crate::ops::matmul::gpu::GEMM_CORE,
    ],
};

/// The same products four tiles at a time, where [`wgrad_gemm_shader`] allows.
pub(crate) static WGRAD_GEMM_VEC4: Shader = Shader {
    name: "conv_winograd_wgrad_gemm_vec4",
    user_code: false,
    parts: &[
        COMMON,
        include_str!("../../../wgsl/conv/winograd_wgrad_gemm.wgsl"),
        include_str!("../../../wgsl/conv/winograd_wgrad_gemm_vec4.wgsl"),
        crate::ops::matmul::gpu::GEMM_C_ROWS,
        crate::ops::matmul::gpu::GEMM_CORE,
    ],
};

/// The weight gradient's products for a chunk of `tiles` tiles split into `k_chunk` each:
/// [`WGRAD_GEMM_VEC4`] on the tiled loop where both are multiples of 4 and the bindings `aligned`
/// (every line and split of V and D then starts at a multiple of 4 elements), else
/// [`WGRAD_GEMM`]. The direct loop (`launch::GemmLoop`) reads four lines at one k only, which
/// the 16-byte loaders (four k of one line) are not.
pub(crate) fn wgrad_gemm_shader(
    direct: bool,
    tiles: usize,
    k_chunk: usize,
    aligned: bool,
) -> &'static Shader {
    if !direct && aligned && tiles.is_multiple_of(4) && k_chunk.is_multiple_of(4) {
        &WGRAD_GEMM_VEC4
    } else {
        &WGRAD_GEMM
    }
}

/// Points of the transformed domain (6×6).
const XI: usize = 36;
/// Smallest channel count (of the correlation's input and output) `Auto` takes to Winograd: below
/// it the transforms' memory traffic outweighs the multiply-adds saved.
const MIN_CHANNELS: usize = 16;
/// The same for 5×5 filters, whose F(2×2, 5×5) saves less (36 multiply-adds per 4 outputs
/// against 100), as the correlation's input channels — the depth of its 36 GEMMs — with at least
/// `MIN_OUT_CHANNELS_5X5` out. On the H200, the MNIST MPS net's conv2 (32 → 64) slowed its step
/// on Winograd forward (1.404 → 1.444 ms at batch 256) and in the weight gradient (→ 1.666), where
/// the GEMMs are 32 deep, but sped it up in the data gradient (64 → 32: 0.681 → 0.635 ms at batch
/// 64, 1.404 → 1.358 at 256); Inception v3's 48 → 64 branches sped its step up (422.4 → 428.9
/// images/s).
const MIN_CHANNELS_5X5: usize = 48;
/// Output channels of a 5×5 correlation that `Auto` takes to Winograd at the least.
const MIN_OUT_CHANNELS_5X5: usize = 32;
/// Workgroups the weight gradient's split over the tiles aims for: 256 and 1,024 gave the zoo
/// no more (BENCHMARKS.md, eighth session), though the implicit GEMM's now aims for 256.
const WGRAD_TARGET_GROUPS: usize = 512;
/// Fewest tiles per split of the weight gradient, a multiple of the GEMM core's K step.
const WGRAD_MIN_TILES: usize = 64;

/// Which algorithm the data passes of eligible convolutions take ([`with_conv_algo`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvAlgo {
    /// On a GPU, Winograd for eligible passes with at least 16 channels in and out (48 for 5×5)
    /// and the loops over the taps for short reductions (`conv::short_k`); the implicit GEMM on
    /// a CPU adapter and for everything else.
    #[default]
    Auto,
    /// Always the implicit GEMM.
    ImplicitGemm,
    /// Winograd wherever the pass is eligible (3×3 or 5×5, stride 1, no dilation, one group, f32
    /// or f16 storage with f32 sums, padding below the filter's edge, the transformed operands
    /// within the binding limit); the implicit GEMM elsewhere.
    Winograd,
    /// The loops over the taps wherever the pass is eligible (`conv::short_k::fits`), on any
    /// adapter; the implicit GEMM elsewhere.
    ShortK,
}

/// Scratch one slot may take before a pass runs over the batch in chunks of images (three slots:
/// at most 1.5 GiB for a graph, where the implicit GEMM needs none). The zoo's largest pass at
/// batch 32 needs 404 MB (Inception v3's `Conv2d_2b_3x3`, 64 channels at 147×147), so its
/// measured steps run unchunked.
pub const DEFAULT_CHUNK_BYTES: usize = 512 << 20;

thread_local! {
    static ALGO: Cell<ConvAlgo> = const { Cell::new(ConvAlgo::Auto) };
    static CHUNK_BYTES: Cell<usize> = const { Cell::new(DEFAULT_CHUNK_BYTES) };
}

/// Runs `f` with the Winograd passes it prepares taking at most `bytes` of scratch a slot where
/// the batch allows: a pass whose transformed operands would be larger runs over the images in
/// chunks (one image at the least), each chunk's transforms and products reusing the slots.
/// Fewer bytes, more dispatches; the results are the same to rounding.
pub fn with_chunk_bytes<R>(bytes: usize, f: impl FnOnce() -> R) -> R {
    crate::launch::scoped(&CHUNK_BYTES, bytes, f)
}

/// Runs `f` (a graph's compile, an eager op) with the convolutions it prepares on algorithm `a`,
/// restoring the previous choice after: for comparing the algorithms, and for tests that cover
/// both on one adapter.
pub fn with_conv_algo<R>(a: ConvAlgo, f: impl FnOnce() -> R) -> R {
    crate::launch::scoped(&ALGO, a, f)
}

/// The correlation a pass of `g` computes: channels in and out, input and output sizes, top and
/// left padding, the filter's edge (3 or 5). The adjoint's padding is edge − 1 − the forward's
/// (`None` past it).
struct Correlation {
    cin: usize,
    cout: usize,
    input: (usize, usize),
    output: (usize, usize),
    pad: (usize, usize),
    kernel: usize,
}

impl Correlation {
    fn of(g: &ConvGeometry, adjoint: bool) -> Option<Correlation> {
        let (pt, pl) = (g.padding.0, g.padding.2);
        let kernel = g.kernel.0;
        if pt >= kernel || pl >= kernel {
            return None;
        }
        Some(if adjoint {
            Correlation {
                cin: g.out_channels,
                cout: g.in_channels,
                input: g.out_size,
                output: g.in_size,
                pad: (kernel - 1 - pt, kernel - 1 - pl),
                kernel,
            }
        } else {
            Correlation {
                cin: g.in_channels,
                cout: g.out_channels,
                input: g.in_size,
                output: g.out_size,
                pad: (pt, pl),
                kernel,
            }
        })
    }

    /// The output tile's edge: F(4×4, 3×3) or F(2×2, 5×5), both on the 6×6 domain.
    fn tile(&self) -> usize {
        7 - self.kernel
    }

    /// The transforms' pipeline constant choosing the filter size.
    fn constants(&self) -> Vec<(&'static str, f64)> {
        vec![("KERNEL", self.kernel as f64)]
    }

    /// Tiles per column and row, and in all (`None` on overflow).
    fn tiles(&self, batch: usize) -> Option<(usize, usize, usize)> {
        let th = self.output.0.div_ceil(self.tile());
        let tw = self.output.1.div_ceil(self.tile());
        Some((th, tw, batch.checked_mul(th)?.checked_mul(tw)?))
    }

    /// Images per chunk of a batch (`with_chunk_bytes`), and chunks.
    fn chunks(&self, batch: usize) -> (usize, usize) {
        let (th, tw, _) = self.tiles(1).unwrap_or((1, 1, 1));
        let per_image = XI
            .saturating_mul(self.cin.max(self.cout))
            .saturating_mul(th)
            .saturating_mul(tw)
            .saturating_mul(4);
        let images = (CHUNK_BYTES.with(|b| b.get()) / per_image.max(1)).clamp(1, batch.max(1));
        (images, batch.div_ceil(images))
    }

    /// Elements of U, and of V and M for one chunk of the batch (`None` past u32, the kernels'
    /// index type).
    fn sizes(&self, batch: usize) -> Option<[usize; 3]> {
        let (_, _, tiles) = self.tiles(self.chunks(batch).0)?;
        let s = [
            XI.checked_mul(self.cin)?.checked_mul(self.cout)?,
            XI.checked_mul(self.cin)?.checked_mul(tiles)?,
            XI.checked_mul(self.cout)?.checked_mul(tiles)?,
        ];
        s.iter().all(|&n| u32::try_from(n).is_ok()).then_some(s)
    }
}

/// The error of a launch on a pass `chosen` / `chosen_wgrad` refuse (padding past the filter,
/// sizes past u32): callers ask them first, so this is a caller's mistake, not the input's.
fn not_chosen(what: &str) -> crate::error::Error {
    crate::error::Error::Invalid(format!(
        "Winograd {what}: the pass is not eligible (not chosen)"
    ))
}

/// The algorithm chosen ([`with_conv_algo`]).
pub(crate) fn algo() -> ConvAlgo {
    ALGO.with(|a| a.get())
}

/// Whether the data pass of `g` (`adjoint`: its data gradient) on `input` runs on Winograd.
pub(crate) fn chosen(g: &ConvGeometry, adjoint: bool, input: &Tensor) -> bool {
    eligible(g, adjoint, input).is_some_and(|c| takes(&c, input, c.sizes(g.batch)))
}

/// Whether the weight gradient of `g` from `x` runs on Winograd.
pub(crate) fn chosen_wgrad(g: &ConvGeometry, x: &Tensor) -> bool {
    eligible(g, false, x).is_some_and(|c| {
        let sizes = wgrad_sizes(g, &c, &x.device).map(|(s, _)| s);
        takes(&c, x, sizes)
    })
}

/// The pass's correlation when its geometry, dtype and accumulator allow Winograd and the
/// algorithm chosen is neither the implicit GEMM nor the tap loops.
fn eligible(g: &ConvGeometry, adjoint: bool, input: &Tensor) -> Option<Correlation> {
    if matches!(algo(), ConvAlgo::ImplicitGemm | ConvAlgo::ShortK)
        || !(g.kernel == (3, 3) || g.kernel == (5, 5))
        || g.stride != (1, 1)
        || g.dilation != (1, 1)
        || g.groups != 1
        || !matches!(input.dtype(), DType::F32 | DType::F16)
        || crate::launch::accumulator() != Accumulator::F32
    {
        return None;
    }
    Correlation::of(g, adjoint)
}

/// Whether an eligible pass with scratch of `sizes` elements (`None`: past u32) takes Winograd:
/// always when forced, under `Auto` on a GPU with enough channels; never past the binding limit.
fn takes(c: &Correlation, input: &Tensor, sizes: Option<[usize; 3]>) -> bool {
    let dev = &input.device;
    let fits = sizes.is_some_and(|s| {
        s.iter().all(|&n| {
            n.checked_mul(4)
                .is_some_and(|b| dev.check_binding("winograd", b as u64).is_ok())
        })
    });
    match algo() {
        ConvAlgo::Auto => {
            let budget = CHUNK_BYTES.with(|b| b.get());
            fits && !dev.is_cpu() && auto_takes(c.kernel, c.cin, c.cout, sizes, budget)
        }
        _ => fits,
    }
}

/// `Auto`'s rule on a GPU for a pass with a `kernel`-wide filter, `cin` → `cout` channels and
/// scratch slots of `sizes` f32 elements for one chunk: enough channels for the transforms to pay,
/// and scratch within `budget` bytes a slot (a single image past it keeps the implicit GEMM).
fn auto_takes(
    kernel: usize,
    cin: usize,
    cout: usize,
    sizes: Option<[usize; 3]>,
    budget: usize,
) -> bool {
    let enough = if kernel == 5 {
        cin >= MIN_CHANNELS_5X5 && cout >= MIN_OUT_CHANNELS_5X5
    } else {
        cin.min(cout) >= MIN_CHANNELS
    };
    let small = sizes.is_some_and(|s| s.iter().all(|&n| n <= budget / 4));
    enough && small
}

/// The weight gradient's scratch — S (every chunk's splits), V and D (one chunk's) elements — and
/// its split of one chunk `(splits, tiles per split)` (`None` past u32).
fn wgrad_sizes(
    g: &ConvGeometry,
    c: &Correlation,
    dev: &crate::device::Device,
) -> Option<([usize; 3], (usize, usize))> {
    let (images, chunks) = c.chunks(g.batch);
    let (_, _, tiles) = c.tiles(images)?;
    let (_, grid) = gemm_grid(dev, c.cin, c.cout, XI);
    let groups: usize = grid.iter().map(|&n| n as usize).product();
    // At most one split per 64 tiles, and a grid z within 65,535.
    let most = tiles.div_ceil(WGRAD_MIN_TILES).clamp(1, 65_535 / XI);
    let want = WGRAD_TARGET_GROUPS.div_ceil(groups.max(1)).clamp(1, most);
    let chunk = tiles.div_ceil(want).div_ceil(16) * 16;
    let splits = tiles.div_ceil(chunk);
    let [_, v, d] = c.sizes(g.batch)?;
    let s = XI
        .checked_mul(splits)?
        .checked_mul(chunks)?
        .checked_mul(c.cin)?
        .checked_mul(c.cout)?;
    u32::try_from(s).ok()?;
    Some(([s, v, d], (splits, chunk)))
}

/// Which images one launch covers and, for the weight gradient, where its splits go in S.
#[derive(Clone, Copy)]
struct Part {
    /// First image and images.
    n0: usize,
    images: usize,
    /// Splits of the chunk and tiles per split (`(1, 0)` for the data passes).
    splits: usize,
    k_chunk: usize,
    /// The chunk's first split in S, and the splits of all chunks.
    split0: usize,
    splits_all: usize,
}

impl Part {
    /// Chunk `q` of `images` images of a batch of `batch`, with `splits` splits of `k_chunk`
    /// tiles each of `chunks` chunks.
    fn chunk(
        q: usize,
        images: usize,
        batch: usize,
        (splits, k_chunk): (usize, usize),
        chunks: usize,
    ) -> Part {
        let n0 = q * images;
        Part {
            n0,
            images: images.min(batch - n0),
            splits,
            k_chunk,
            split0: q * splits,
            splits_all: chunks * splits,
        }
    }
}

/// The parameter words of `Params` in `wgsl/conv/winograd_common.wgsl` for `part` of the pass.
fn params(
    g: &ConvGeometry,
    c: &Correlation,
    adjoint: bool,
    (has_bias, accumulate): (bool, bool),
    fused: Option<UnaryOp>,
    part: Part,
) -> Result<Vec<u32>> {
    g.check_gpu_range("convolution")?;
    let too_large = || not_chosen("convolution");
    let (th, tw, tiles) = c.tiles(part.images).ok_or_else(too_large)?;
    let words = [
        part.images,
        c.cin,
        c.cout,
        c.input.0,
        c.input.1,
        c.output.0,
        c.output.1,
        th,
        tw,
        tiles,
        c.pad.0,
        c.pad.1,
    ];
    let tail = [
        part.splits,
        part.k_chunk,
        part.n0,
        part.split0,
        part.splits_all,
    ];
    let word = |v: &usize| u32::try_from(*v).map_err(|_| too_large());
    let mut w = words.iter().map(word).collect::<Result<Vec<u32>>>()?;
    w.extend([adjoint as u32, has_bias as u32, accumulate as u32]);
    w.extend(crate::neuron::post_op_words(fused));
    w.extend(tail.iter().map(word).collect::<Result<Vec<u32>>>()?);
    Ok(w)
}

/// `out = conv(input)` (`adjoint`: `convᵀ`) of `g` with the epilogue: `b` added per output
/// channel, then what `out` holds when `accumulate`, then the neuron `fused`. Only for passes
/// [`chosen`] accepts.
#[allow(clippy::too_many_arguments)]
pub(crate) fn launches(
    g: &ConvGeometry,
    adjoint: bool,
    input: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    out: &Tensor,
    fused: Option<UnaryOp>,
    accumulate: bool,
) -> Result<Prepared> {
    let dev = &input.device;
    let c = Correlation::of(g, adjoint).ok_or_else(|| not_chosen("convolution"))?;
    let [nu, nv, nm] = c.sizes(g.batch).ok_or_else(|| not_chosen("convolution"))?;
    let u = shared_scratch(dev, 0, &[nu], DType::F32)?;
    let v = shared_scratch(dev, 1, &[nv], DType::F32)?;
    let m = shared_scratch(dev, 2, &[nm], DType::F32)?;
    let mut constants = c.constants();
    constants.extend(crate::neuron::fused_constants(fused));
    let flags = (b.is_some(), accumulate);
    let transform = |entry: &'static str, words: &[u32], bufs: &[Binding<'_>], n: usize| {
        dev.launch(&TRANSFORMS, entry, &constants, words, bufs, grid_1d(n, 256))
    };
    let (images, chunks) = c.chunks(g.batch);
    let whole = params(
        g,
        &c,
        adjoint,
        flags,
        fused,
        Part::chunk(0, images, g.batch, (1, 0), 1),
    )?;
    let mut launches = vec![transform(
        "filter_transform",
        &whole,
        &[w.buffer(), u.buffer()],
        c.cin * c.cout,
    )?];
    for q in 0..chunks {
        let part = Part::chunk(q, images, g.batch, (1, 0), 1);
        let words = params(g, &c, adjoint, flags, fused, part)?;
        let (_, _, tiles) = c.tiles(part.images).unwrap_or_default();
        launches.push(transform(
            "input_transform",
            &words,
            &[input.buffer(), v.buffer()],
            c.cin * tiles,
        )?);
        let (entry, grid) = gemm_grid(dev, tiles, c.cout, XI);
        launches.push(dev.launch(
            gemm_shader(tiles, c.cout, vec4_aligned(&[&v, &u, &m])),
            entry,
            &[],
            &words,
            &[v.buffer(), u.buffer(), m.buffer()],
            grid,
        )?);
        // Without a bias the slot is still bound (the entry reads it under a flag): reuse w.
        launches.push(transform(
            "output_transform",
            &words,
            &[m.buffer(), b.unwrap_or(w).buffer(), out.buffer()],
            c.cout * tiles,
        )?);
    }
    Ok(Prepared {
        launches,
        scratch: vec![u, v, m],
    })
}

/// `dw (+)= Σ_t Gᵀ·(Bᵀ·x_t·B ⊙ A·dy_t·Aᵀ)·G` of `g` (`accumulate`: added to what `dw` holds):
/// the input and output-gradient tiles transformed, the 36 products split over the tiles, then
/// the splits summed and transformed back to 3×3 in one dispatch. Only for passes
/// [`chosen_wgrad`] accepts.
pub(crate) fn weight_grad_launches(
    g: &ConvGeometry,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
    accumulate: bool,
) -> Result<Prepared> {
    let dev = &x.device;
    let c = Correlation::of(g, false).ok_or_else(|| not_chosen("weight gradient"))?;
    let ([ns, nv, nd], split) =
        wgrad_sizes(g, &c, dev).ok_or_else(|| not_chosen("weight gradient"))?;
    // Slots 1 and 2 as the data passes' V and M; the partial sums in slot 3.
    let v = shared_scratch(dev, 1, &[nv], DType::F32)?;
    let d = shared_scratch(dev, 2, &[nd], DType::F32)?;
    let s = shared_scratch(dev, 3, &[ns], DType::F32)?;
    let constants = c.constants();
    let transform = |entry: &'static str, words: &[u32], bufs: &[Binding<'_>], n: usize| {
        dev.launch(&TRANSFORMS, entry, &constants, words, bufs, grid_1d(n, 256))
    };
    let (images, chunks) = c.chunks(g.batch);
    let flags = (false, accumulate);
    // Every chunk's products on the same grid: its splits of each ξ.
    let (entry, grid) = gemm_grid(dev, c.cin, c.cout, XI * split.0);
    let mut launches = Vec::new();
    for q in 0..chunks {
        let part = Part::chunk(q, images, g.batch, split, chunks);
        let words = params(g, &c, false, flags, None, part)?;
        let (_, _, tiles) = c.tiles(part.images).unwrap_or_default();
        launches.push(transform(
            "input_transform",
            &words,
            &[x.buffer(), v.buffer()],
            c.cin * tiles,
        )?);
        launches.push(transform(
            "grad_transform",
            &words,
            &[dy.buffer(), d.buffer()],
            c.cout * tiles,
        )?);
        launches.push(dev.launch(
            wgrad_gemm_shader(
                crate::launch::direct_gemm(dev),
                tiles,
                part.k_chunk,
                vec4_aligned(&[&v, &d]),
            ),
            entry,
            &[],
            &words,
            &[v.buffer(), d.buffer(), s.buffer()],
            grid,
        )?);
    }
    // Every chunk's splits summed and transformed back, added to dw when accumulating.
    let last = Part::chunk(0, images, g.batch, split, chunks);
    let words = params(g, &c, false, flags, None, last)?;
    launches.push(transform(
        "filter_grad_transform",
        &words,
        &[s.buffer(), dw.buffer()],
        c.cin * c.cout,
    )?);
    Ok(Prepared {
        launches,
        scratch: vec![v, d, s],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_wants_channels_and_bounded_scratch() {
        let budget = DEFAULT_CHUNK_BYTES;
        let fits = Some([1 << 20; 3]);
        assert!(auto_takes(3, 16, 16, fits, budget));
        assert!(!auto_takes(3, 15, 64, fits, budget));
        // 5×5: the MPS net's conv2 (32 → 64) forward and weight gradient stay off, its data
        // gradient (64 → 32) and Inception's 48 → 64 take it; fewer than 32 out never.
        assert!(!auto_takes(5, 32, 64, fits, budget));
        assert!(auto_takes(5, 64, 32, fits, budget));
        assert!(auto_takes(5, 48, 64, fits, budget));
        assert!(!auto_takes(5, 64, 31, fits, budget));
        // A chunk (one image at the least) past the budget a slot, or sizes past u32, and the
        // pass keeps the implicit GEMM.
        let big = budget / 4 + 1;
        assert!(auto_takes(3, 64, 64, Some([1, budget / 4, 1]), budget));
        assert!(!auto_takes(3, 64, 64, Some([1, big, 1]), budget));
        assert!(!auto_takes(3, 64, 64, None, budget));
    }

    #[test]
    fn products_take_vec4_only_where_tiles_and_channels_align() {
        assert_eq!(gemm_shader(12_544, 32, true).name, GEMM_VEC4.name);
        assert_eq!(gemm_shader(4, 4, true).name, GEMM_VEC4.name);
        assert_eq!(gemm_shader(12_544, 32, false).name, GEMM.name);
        for (tiles, cout) in [(12_546, 32), (12_544, 30), (1, 1), (6, 7)] {
            assert_eq!(
                gemm_shader(tiles, cout, true).name,
                GEMM.name,
                "{tiles} {cout}"
            );
        }
    }

    #[test]
    fn weight_gradient_products_take_vec4_only_where_tiles_align() {
        let vec4 = WGRAD_GEMM_VEC4.name;
        assert_eq!(wgrad_gemm_shader(false, 12_544, 800, true).name, vec4);
        for (direct, tiles, chunk, aligned) in [
            (true, 12_544, 800, true),
            (false, 12_546, 800, true),
            (false, 12_544, 802, true),
            (false, 12_544, 800, false),
        ] {
            let s = wgrad_gemm_shader(direct, tiles, chunk, aligned);
            assert_eq!(
                s.name, WGRAD_GEMM.name,
                "{direct} {tiles} {chunk} {aligned}"
            );
        }
    }

    #[test]
    fn the_adjoint_pads_by_the_rest_of_the_filter() {
        let g = ConvGeometry {
            batch: 2,
            in_channels: 3,
            out_channels: 5,
            groups: 1,
            in_size: (9, 8),
            out_size: (9, 6),
            kernel: (5, 5),
            stride: (1, 1),
            dilation: (1, 1),
            padding: (2, 2, 1, 1),
        };
        let c = Correlation::of(&g, true).unwrap();
        assert_eq!((c.cin, c.cout, c.pad, c.tile()), (5, 3, (2, 3), 2));
        assert_eq!(c.tiles(2), Some((5, 4, 40)));
        let past = ConvGeometry {
            padding: (5, 0, 0, 0),
            ..g
        };
        assert!(Correlation::of(&past, false).is_none());
    }
}
