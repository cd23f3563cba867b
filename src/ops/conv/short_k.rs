//! Convolutions whose reduction is short (`wgsl/conv/short_k.wgsl`): K = C_in·kh·kw ≤
//! [`MAX_TAPS`] with one group and at most [`MAX_OUT_CHANNELS`] outputs, in f32 — a network's
//! first layer. Their forward and weight gradient loop over the taps directly (the weight
//! gradient summing the bias's from the same staged dy); on the implicit GEMM each K step of 8
//! waits for its gathers, and a 28×28 image's 25 taps take four of them.

use crate::error::Result;
use crate::launch::{
    Launch, PRELUDE, Prepared, SPLIT_PARTIALS_SLOT, Shader, grid_1d, shared_scratch,
};
use crate::ops::conv::ConvGeometry;
use crate::ops::conv::shaders::GEOMETRY;
use crate::ops::conv::uniform::params;
use crate::ops::conv::winograd::{self, ConvAlgo};
use crate::ops::elementwise::UnaryOp;
use crate::tensor::{DType, Tensor};

/// The most taps (C_in·kh·kw) a short-K convolution takes (the shader's staged tiles).
pub const MAX_TAPS: usize = 32;
/// The most output channels a short-K convolution takes (the shader's staged tiles).
pub const MAX_OUT_CHANNELS: usize = 64;
/// Output pixels a weight-gradient workgroup stages at once (`PB` in the shader).
const PIXEL_BLOCK: usize = 32;
/// Workgroups the weight gradient aims for: several per multiprocessor of a large GPU, so that
/// one's loads overlap another's sums, at few partial rows each.
const WGRAD_GROUPS: usize = 1024;

pub(crate) static SHADER: Shader = Shader {
    name: "conv_short_k",
    user_code: false,
    parts: &[
        PRELUDE,
        crate::neuron::WGSL,
        GEOMETRY,
        include_str!("../../../wgsl/conv/short_k.wgsl"),
    ],
};

/// Whether `g`'s convolution from `x` to `out` (not its adjoint) runs here, its weights (the
/// forward's) or their gradient (the weight gradient's) `weights`: one group, at most
/// [`MAX_TAPS`] taps and [`MAX_OUT_CHANNELS`] outputs, f32 tensors of the geometry's shapes whose
/// every index fits the shader's u32, f32 sums asked for; under `ConvAlgo::Auto` on a GPU (a CPU
/// adapter's direct GEMM loop is faster: the MNIST example at 410 against 690 samples/s on
/// lavapipe), under `ConvAlgo::ShortK` on any adapter (`winograd::with_conv_algo`).
pub fn fits(g: &ConvGeometry, x: &Tensor, out: &Tensor, weights: &Tensor) -> bool {
    let chosen = match winograd::algo() {
        ConvAlgo::Auto => !x.device.is_cpu(),
        ConvAlgo::ShortK => true,
        ConvAlgo::ImplicitGemm | ConvAlgo::Winograd => false,
    };
    if !chosen || crate::launch::accumulator() != crate::Accumulator::F32 {
        return false;
    }
    let taps = g.in_channels * g.kernel.0 * g.kernel.1;
    let shapes = x.shape == g.in_shape() && out.shape == g.out_shape();
    let small = g.groups == 1 && taps <= MAX_TAPS && g.out_channels <= MAX_OUT_CHANNELS;
    let f32s = [x, out, weights].iter().all(|t| t.dtype() == DType::F32);
    let indices = [x.numel(), out.numel()]
        .iter()
        .all(|&n| n <= u32::MAX as usize)
        && g.check_gpu_range("convolution").is_ok();
    shapes && small && f32s && indices && taps > 0 && g.out_channels > 0
}

/// The shader's pipeline constants for `g`: its taps and output plane. [`fits`] bounds them
/// (at most [`MAX_TAPS`] taps, an output whose indices fit u32).
fn constants(g: &ConvGeometry) -> Vec<(&'static str, f64)> {
    vec![
        ("SK_CIN", g.in_channels as f64),
        ("SK_KH", g.kernel.0 as f64),
        ("SK_KW", g.kernel.1 as f64),
        ("SK_OW", g.out_size.1.max(1) as f64),
        ("SK_OHW", (g.out_size.0 * g.out_size.1).max(1) as f64),
    ]
}

/// `y = neuron(conv(x, w) + b)` (`+ y` before the neuron when `accumulate`, which takes none).
/// Call where [`fits`] holds.
pub(crate) fn forward_launch(
    g: &ConvGeometry,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    y: &Tensor,
    fused: Option<UnaryOp>,
    accumulate: bool,
) -> Result<Launch> {
    let pixels = g.batch * g.out_size.0 * g.out_size.1;
    let [gx, gy, _] = grid_1d(pixels, 256);
    x.device.launch(
        &SHADER,
        "short_k_forward",
        &[constants(g), crate::neuron::fused_constants(fused)].concat(),
        &params(g, b.is_some(), 1, 0, fused, accumulate, None)?,
        &[
            x.buffer(),
            w.buffer(),
            b.map_or_else(|| w.placeholder(), |b| b.buffer()),
            y.buffer(),
        ],
        [gx, gy, g.out_channels.div_ceil(16) as u32],
    )
}

/// `dw (C_out, C_in, kh, kw) = Σ_pixels dy ⊗ x-taps` (`+=` when `accumulate`), and with `db`
/// `db (C_out) = Σ_pixels dy` (always written: a graph adds only into its first output) from the
/// same staged dy: a partial sum per chunk of output pixels, then the chunks summed — by `sum`
/// without a bias, else by `short_k_grad_sum` into both; one chunk writes dw and db itself. Call
/// where [`fits`] holds for `g`, `x`, `dy` and `dw`, and `db` is f32 (C_out).
pub(crate) fn weight_grad_launches(
    g: &ConvGeometry,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
    db: Option<&Tensor>,
    accumulate: bool,
    sum: impl FnOnce(&Tensor, &Tensor, bool) -> Result<Prepared>,
) -> Result<Prepared> {
    let dev = &x.device;
    let pixels = g.batch * g.out_size.0 * g.out_size.1;
    let chunk = pixels
        .div_ceil(WGRAD_GROUPS)
        .div_ceil(PIXEL_BLOCK)
        .max(1)
        .saturating_mul(PIXEL_BLOCK);
    let chunks = pixels.div_ceil(chunk).max(1);
    // A partial row: dw's sums, then db's.
    let row = dw.numel() + db.map_or(0, |b| b.numel());
    // One chunk writes (or adds into) dw itself.
    let direct = chunks == 1;
    let part = if direct {
        dw.clone()
    } else {
        shared_scratch(dev, SPLIT_PARTIALS_SLOT, &[chunks, row], DType::F32)?
    };
    let l = dev.launch(
        &SHADER,
        "short_k_weight_grad",
        &constants(g),
        &params(
            g,
            db.is_some(),
            chunks,
            chunk,
            None,
            direct && accumulate,
            None,
        )?,
        &[
            x.buffer(),
            dy.buffer(),
            part.buffer(),
            db.map_or_else(|| part.placeholder(), |b| b.buffer()),
        ],
        grid_1d(chunks, 1),
    )?;
    let mut prep = Prepared::one(l);
    match db {
        _ if direct => {}
        None => prep.extend(sum(&part, dw, accumulate)?),
        Some(db) => {
            let l = dev.launch(
                &SHADER,
                "short_k_grad_sum",
                &constants(g),
                &params(g, true, chunks, chunk, None, accumulate, None)?,
                &[part.buffer(), dw.buffer(), db.buffer()],
                grid_1d(row, 8),
            )?;
            prep.extend(Prepared {
                launches: vec![l],
                scratch: vec![part],
            });
        }
    }
    Ok(prep)
}
