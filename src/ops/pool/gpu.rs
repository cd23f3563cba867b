//! Pooling on the GPU: windowed max (with its u32 argmax state) and average (both padding count
//! modes), and global average, forward and backward. WGSL: `wgsl/pool.wgsl`.
//! CPU reference: `reference`.
//!
//! Max pooling's state is, per output, the flat row-major index into the whole input of the
//! winning element (the first in window order among equals), as the reference. Both backward
//! passes gather over the windows that cover each input element rather than scatter, so
//! overlapping windows add up without atomics and the result is deterministic.

use crate::error::{Error, Result};
use crate::launch::{Launch, PRELUDE, Shader, grid_1d};
use crate::neuron::UnaryOp;
use crate::ops::conv::ConvGeometry;
use crate::ops::conv::gpu::check;
use crate::ops::eager;
use crate::ops::pool::{GlobalAvgPool, Pool2d, PoolKind, PoolOp};
use crate::tensor::{DType, Tensor};

pub(crate) static SHADER: Shader = Shader {
    name: "pool",
    user_code: false,
    parts: &[
        PRELUDE,
        crate::neuron::WGSL,
        include_str!("../../../wgsl/pool.wgsl"),
    ],
};

/// The uniform of `wgsl/pool.wgsl`.
fn params(op: &str, g: &ConvGeometry, count_pad: bool) -> Result<Vec<u32>> {
    // The words are u32 and the kernel's coordinates i32: refuse what would wrap.
    g.check_gpu_range(op)?;
    Ok([
        g.batch * g.in_channels,
        g.in_size.0,
        g.in_size.1,
        g.out_size.0,
        g.out_size.1,
        g.kernel.0,
        g.kernel.1,
        g.stride.0,
        g.stride.1,
        g.dilation.0,
        g.dilation.1,
        g.padding.0,
        g.padding.2,
        count_pad as usize,
        0,
        0,
    ]
    .iter()
    .map(|&v| v as u32)
    .collect())
}

/// The pipeline constants of `wgsl/pool.wgsl`'s `*_tiled` max-pool entries where the windows
/// tile the input exactly (stride = window, no dilation or padding, `H = OH·sh`, `W = OW·sw`:
/// every input element in exactly one window), else `None` (the general entries).
fn tiled_constants(g: &ConvGeometry) -> Option<Vec<(&'static str, f64)>> {
    let tiles = g.stride == g.kernel
        && g.dilation == (1, 1)
        && g.padding == (0, 0, 0, 0)
        && g.out_size.0.checked_mul(g.stride.0) == Some(g.in_size.0)
        && g.out_size.1.checked_mul(g.stride.1) == Some(g.in_size.1);
    let ohw = g.out_size.0.checked_mul(g.out_size.1)?;
    let words = [g.kernel.0, g.kernel.1, g.out_size.1, ohw];
    // Constants are u32 in the shader; every index they make is below the input's element
    // count, which a binding's size (a u32 of bytes) bounds.
    if !tiles || words.iter().any(|&w| w == 0 || w > u32::MAX as usize) {
        return None;
    }
    Some(vec![
        ("TILE_KH", g.kernel.0 as f64),
        ("TILE_KW", g.kernel.1 as f64),
        ("TILE_OW", g.out_size.1 as f64),
        ("TILE_OHW", ohw as f64),
    ])
}

fn count_pad(op: &Pool2d) -> bool {
    op.kind
        == PoolKind::Avg {
            count_include_pad: true,
        }
}

/// Prepares the forward into `y` `(N, C, OH, OW)`; max pooling needs `argmax` (u32, same shape).
pub fn forward_launch(
    op: &Pool2d,
    x: &Tensor,
    y: &Tensor,
    argmax: Option<&Tensor>,
) -> Result<Launch> {
    let name = op.name();
    let g = op.geometry(&x.shape)?;
    let out = g.out_shape();
    x.expect_dtype(name, DType::F32)?;
    check(name, "output", y, &out)?;
    let p = params(op.name(), &g, count_pad(op))?;
    let grid = grid_1d(y.numel(), 256);
    match op.kind {
        PoolKind::Max => {
            let arg = argmax_state(name, argmax, &out)?;
            let (entry, constants) = match tiled_constants(&g) {
                Some(c) => ("max_forward_tiled", c),
                None => ("max_forward", Vec::new()),
            };
            x.device.launch(
                &SHADER,
                entry,
                &constants,
                &p,
                &[x.buffer(), y.buffer(), arg.buffer()],
                grid,
            )
        }
        PoolKind::Avg { .. } => x.device.launch(
            &SHADER,
            "avg_forward",
            &[],
            &p,
            &[x.buffer(), y.buffer()],
            grid,
        ),
    }
}

/// The argmax state, which max pooling requires: u32 shaped like the output.
fn argmax_state<'a>(name: &str, arg: Option<&'a Tensor>, out: &[usize]) -> Result<&'a Tensor> {
    let arg = arg.ok_or_else(|| Error::Invalid(format!("{name}: needs the argmax state")))?;
    if arg.shape != out {
        return Err(Error::Shape {
            op: name.into(),
            msg: format!("argmax has shape {:?}, expected {out:?}", arg.shape),
        });
    }
    arg.expect_dtype(&format!("{name} argmax"), DType::U32)?;
    Ok(arg)
}

/// Prepares `dx` (shape `x_shape`) from `dy`; max pooling needs the forward's `argmax`.
pub fn backward_launch(
    op: &Pool2d,
    x_shape: &[usize],
    dy: &Tensor,
    argmax: Option<&Tensor>,
    dx: &Tensor,
) -> Result<Launch> {
    let name = op.name();
    let g = op.geometry(x_shape)?;
    let out = g.out_shape();
    check(name, "output gradient", dy, &out)?;
    check(name, "input gradient", dx, x_shape)?;
    let p = params(op.name(), &g, count_pad(op))?;
    let grid = grid_1d(dx.numel(), 256);
    match op.kind {
        PoolKind::Max => {
            let arg = argmax_state(&format!("{name} backward"), argmax, &out)?;
            // Tiling windows run one invocation per window (dy's elements), else per element.
            let (entry, constants, grid) = match tiled_constants(&g) {
                Some(c) => ("max_backward_tiled", c, grid_1d(dy.numel(), 256)),
                None => ("max_backward", Vec::new(), grid),
            };
            dy.device.launch(
                &SHADER,
                entry,
                &constants,
                &p,
                &[dy.buffer(), arg.buffer(), dx.buffer()],
                grid,
            )
        }
        PoolKind::Avg { .. } => dy.device.launch(
            &SHADER,
            "avg_backward",
            &[],
            &p,
            &[dy.buffer(), dx.buffer()],
            grid,
        ),
    }
}

/// Prepares max pooling's `dx` (shape `x_shape`) from `dy` and the forward's `argmax`, times
/// the derivative of `neuron`, whose output was the pool's input: the neuron's gradient folded
/// into the pool's, one dispatch. That output is read from `y`, the pool's output (`dy`'s shape
/// and dtype), at a window whose argmax is the element: the same value, and the pool's input
/// need not be kept for the backward pass.
pub fn max_backward_out_launch(
    op: &Pool2d,
    dy: &Tensor,
    argmax: &Tensor,
    neuron: UnaryOp,
    y: &Tensor,
    dx: &Tensor,
) -> Result<Launch> {
    let name = op.name();
    if op.kind != PoolKind::Max {
        return Err(Error::Invalid(format!(
            "{name}: only max pooling's backward applies a neuron's gradient"
        )));
    }
    let g = op.geometry(&dx.shape)?;
    let out = g.out_shape();
    check(name, "output gradient", dy, &out)?;
    check(name, "the pool's output (holding the neuron's)", y, &out)?;
    let arg = argmax_state(&format!("{name} backward"), Some(argmax), &out)?;
    let p = params(name, &g, false)?;
    let mut constants = crate::neuron::grad_constants(neuron)?;
    let (entry, grid) = match tiled_constants(&g) {
        Some(c) => {
            constants.extend(c);
            ("max_backward_out_tiled", grid_1d(dy.numel(), 256))
        }
        None => ("max_backward_out", grid_1d(dx.numel(), 256)),
    };
    dy.device.launch(
        &SHADER,
        entry,
        &constants,
        &p,
        &[dy.buffer(), arg.buffer(), dx.buffer(), y.buffer()],
        grid,
    )
}

/// `(N, C, H, W)` → `(N, C, OH, OW)`, plus for max pooling the u32 argmax state.
pub fn forward(op: &Pool2d, x: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
    eager::result_and_state(eager::run(&x.device, PoolOp::Pool(*op), &[x])?)
}

/// `dx` for an input of `x_shape`; `argmax` is required for max pooling.
pub fn backward(
    op: &Pool2d,
    x_shape: &[usize],
    dy: &Tensor,
    argmax: Option<&Tensor>,
) -> Result<Tensor> {
    let x = eager::shape_only(dy, x_shape);
    let mut ins = vec![dy, &x];
    ins.extend(argmax);
    eager::run_first(&dy.device, PoolOp::PoolGrad(*op), &ins)
}

/// Planes and plane size of a global-average input, after checking it.
fn global_params(op: &GlobalAvgPool, x_shape: &[usize]) -> Result<Vec<u32>> {
    op.out_shape(x_shape)?;
    let planes = x_shape[0] * x_shape[1];
    let mut p = vec![0u32; 16];
    p[0] = planes as u32;
    p[1] = x_shape[2] as u32;
    p[2] = x_shape[3] as u32;
    Ok(p)
}

/// Prepares `y (N, C, 1, 1)` = the mean of each plane of `x (N, C, H, W)`.
pub fn global_avg_forward_launch(op: &GlobalAvgPool, x: &Tensor, y: &Tensor) -> Result<Launch> {
    let p = global_params(op, &x.shape)?;
    x.expect_dtype("global_avg_pool", DType::F32)?;
    check("global_avg_pool", "output", y, &op.out_shape(&x.shape)?)?;
    x.device.launch(
        &SHADER,
        "global_avg_forward",
        &[],
        &p,
        &[x.buffer(), y.buffer()],
        grid_1d(y.numel(), 1),
    )
}

/// Prepares `dx = dy / (H·W)` broadcast over each plane.
pub fn global_avg_backward_launch(
    op: &GlobalAvgPool,
    x_shape: &[usize],
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Launch> {
    let p = global_params(op, x_shape)?;
    check(
        "global_avg_pool",
        "output gradient",
        dy,
        &op.out_shape(x_shape)?,
    )?;
    check("global_avg_pool", "input gradient", dx, x_shape)?;
    dy.device.launch(
        &SHADER,
        "global_avg_backward",
        &[],
        &p,
        &[dy.buffer(), dx.buffer()],
        grid_1d(dx.numel(), 256),
    )
}

/// `(N, C, H, W)` → `(N, C, 1, 1)`.
pub fn global_avg_forward(_op: &GlobalAvgPool, x: &Tensor) -> Result<Tensor> {
    eager::run_first(&x.device, PoolOp::GlobalAvg, &[x])
}

/// `dx` for an input of `x_shape`.
pub fn global_avg_backward(_op: &GlobalAvgPool, x_shape: &[usize], dy: &Tensor) -> Result<Tensor> {
    let x = eager::shape_only(dy, x_shape);
    eager::run_first(&dy.device, PoolOp::GlobalAvgGrad, &[dy, &x])
}
