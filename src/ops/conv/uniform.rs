//! What a launch of a convolution kernel is told: the parameter words of their uniform (`Params`
//! in `wgsl/conv/geometry.wgsl`) and the pipeline constants that fix the divisors of the
//! implicit-GEMM modules' K index.

use crate::error::Result;
use crate::ops::conv::ConvGeometry;
use crate::ops::conv::partition::StridePhase;
use crate::ops::elementwise::UnaryOp;

/// The uniform of the convolution kernels (`Params` in `wgsl/conv/geometry.wgsl`), with a neuron
/// fused onto the output of a forward-type module; `accumulate` adds the result to what the
/// output holds (a gradient sum written in place); `phase` one stride phase of the data gradient
/// (`None`: unphased).
pub(crate) fn params(
    g: &ConvGeometry,
    has_bias: bool,
    splits: usize,
    k_chunk: usize,
    fused: Option<UnaryOp>,
    accumulate: bool,
    phase: Option<&StridePhase>,
) -> Result<Vec<u32>> {
    // The words are u32 and the kernels' coordinates i32: refuse what would wrap.
    g.check_gpu_range("convolution")?;
    let p = [
        g.batch,
        g.in_channels,
        g.in_size.0,
        g.in_size.1,
        g.out_channels,
        g.out_size.0,
        g.out_size.1,
        g.groups,
        g.kernel.0,
        g.kernel.1,
        g.stride.0,
        g.stride.1,
        g.dilation.0,
        g.dilation.1,
        g.padding.0,
        g.padding.2,
        g.in_channels / g.groups,
        g.out_channels / g.groups,
        has_bias as usize,
        splits,
        k_chunk,
    ];
    let mut w: Vec<u32> = p.iter().map(|&v| v as u32).collect();
    w.extend(crate::neuron::post_op_words(fused));
    w.push(accumulate as u32);
    // Every value below is at most an input or kernel extent or a padding, which
    // check_gpu_range bounds by i32.
    let ph = match phase {
        Some(ph) => [
            1,
            ph.pixels.0,
            ph.pixels.1,
            ph.taps.0,
            ph.taps.1,
            ph.first_pixel.0,
            ph.first_pixel.1,
            ph.first_tap.0,
            ph.first_tap.1,
            ph.offset.0,
            ph.offset.1,
            1,
            1,
        ],
        None => [
            0,
            g.in_size.0,
            g.in_size.1,
            g.kernel.0,
            g.kernel.1,
            0,
            0,
            0,
            0,
            g.padding.0,
            g.padding.2,
            g.dilation.0,
            g.dilation.1,
        ],
    };
    w.extend(ph.iter().map(|&v| v as u32));
    Ok(w)
}

/// The pipeline constants fixing the divisors the main loop decomposes its K index by
/// (`K_OUTER`, `K_INNER` in `wgsl/conv/common.wgsl`), where both fit in u32; none on a CPU
/// adapter, where each distinct pair costs a pipeline compiled by LLVM for a few percent of the
/// step (the kernels divide by the uniform's values then).
pub(crate) fn k_divisors(
    dev: &crate::device::Device,
    outer: usize,
    inner: usize,
) -> Vec<(&'static str, f64)> {
    if dev.is_cpu() {
        return Vec::new();
    }
    match (u32::try_from(outer), u32::try_from(inner)) {
        (Ok(o), Ok(i)) if o > 0 && i > 0 => {
            vec![("K_OUTER", f64::from(o)), ("K_INNER", f64::from(i))]
        }
        _ => Vec::new(),
    }
}
