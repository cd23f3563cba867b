//! The training launches every norm shares: statistics of the batch forward, dx (and batch norm's
//! dγ, dβ) backward, chunked as `wgsl/norm/common.wgsl` describes. A group of at most
//! [`MAX_CHUNK`] elements takes one dispatch each way; a larger one a partial-sum dispatch over
//! (groups × chunks) workgroups first, its partials in a scratch tensor.

use super::*;

/// The (groups, chunks, 2) f32 partials of a split group, or None for single-chunk groups.
fn partials(lay: &Layout, x: &Tensor) -> Result<Option<Tensor>> {
    let (chunks, _) = lay.chunking();
    if chunks == 1 {
        return Ok(None);
    }
    Tensor::zeros(&x.device, &[lay.groups, chunks, 2], DType::F32).map(Some)
}

/// The grid of the chunked kernels: one workgroup per (group, chunk).
fn chunk_grid(lay: &Layout) -> [u32; 3] {
    grid_1d(lay.groups * lay.chunking().0, 1)
}

/// Training forward of any layout: statistics into `state` (2, groups...), y = γ·x̂ + β, plus
/// the epilogue's residual, then its neuron.
#[allow(clippy::too_many_arguments)]
pub(super) fn stats_forward_launch(
    op: &str,
    lay: &Layout,
    eps: f32,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    y: &Tensor,
    state: &Tensor,
    state_shape: &[usize],
    epilogue: Epilogue,
) -> Result<Prepared> {
    x.expect_dtype(op, DType::F32)?;
    too_big(op, x)?;
    expect(op, "y", y, &x.shape)?;
    expect(op, "state", state, state_shape)?;
    let (flags, g, b) = affine(x, gamma, beta);
    let (flags, res) = epilogue.residual_binding(op, x, flags)?;
    let params = lay.params_fused(flags, eps, epilogue.neuron);
    let part = partials(lay, x)?;
    let mut launches = Vec::with_capacity(2);
    if let Some(part) = &part {
        launches.push(x.device.launch(
            &SHADER,
            "norm_stats_partial",
            &[],
            &params,
            &[x.buffer(), part.buffer()],
            chunk_grid(lay),
        )?);
    }
    let part_binding = part
        .as_ref()
        .map_or_else(|| x.placeholder(), |t| t.buffer());
    launches.push(x.device.launch(
        &SHADER,
        "norm_forward",
        &[],
        &params,
        &[
            x.buffer(),
            g,
            b,
            part_binding,
            y.buffer(),
            state.buffer(),
            res,
        ],
        chunk_grid(lay),
    )?);
    Ok(Prepared {
        launches,
        scratch: part.into_iter().collect(),
    })
}

/// Training backward of any layout: dx through the statistics, then dγ, dβ if asked for — by
/// the dx kernel itself where parameter k is group k (batch norm), else by `norm_param_grads`.
/// With `neuron`, every kernel reading dy applies that neuron's derivative from its output as
/// it loads it.
#[allow(clippy::too_many_arguments)]
pub(super) fn stats_backward_launch(
    op: &str,
    lay: &Layout,
    eps: f32,
    pshape: &[usize],
    state_shape: &[usize],
    x: &Tensor,
    gamma: Option<&Tensor>,
    state: &Tensor,
    dy: &Tensor,
    neuron: DyNeuron,
    dx: &Tensor,
    dgamma: Option<&Tensor>,
    dbeta: Option<&Tensor>,
) -> Result<Prepared> {
    x.expect_dtype(op, DType::F32)?;
    too_big(op, x)?;
    expect(op, "dy", dy, &x.shape)?;
    expect(op, "dx", dx, &x.shape)?;
    expect(op, "state", state, state_shape)?;
    let (mut flags, g, _) = affine(x, gamma, None);
    let wants_params = dgamma.is_some() || dbeta.is_some();
    let fuse_params = wants_params && lay.param_is_group();
    // The dx kernel writes both of dγ, dβ when fused; an absent one goes to a scratch tensor.
    let spare = match (dgamma, dbeta) {
        (Some(_), Some(_)) => None,
        _ if fuse_params => Some(Tensor::zeros(&x.device, pshape, DType::F32)?),
        _ => None,
    };
    let (dg, db) = if fuse_params {
        flags |= 4;
        (dgamma.or(spare.as_ref()), dbeta.or(spare.as_ref()))
    } else {
        (None, None)
    };
    for (name, t) in [("dgamma", dg), ("dbeta", db)] {
        if let Some(t) = t {
            expect(op, name, t, pshape)?;
        }
    }
    let params = lay.params(flags, 0, eps, 0.0);
    let v = DyVariant::of(op, x, neuron)?;
    let part = partials(lay, x)?;
    let mut launches = Vec::with_capacity(2);
    if let Some(part) = &part {
        launches.push(x.device.launch(
            v.shader,
            "norm_backward_partial",
            &v.constants,
            &params,
            &v.bind(vec![
                x.buffer(),
                g,
                dy.buffer(),
                state.buffer(),
                part.buffer(),
            ]),
            chunk_grid(lay),
        )?);
    }
    let part_binding = part
        .as_ref()
        .map_or_else(|| x.placeholder(), |t| t.buffer());
    // Unwritten without flag bit 2: dx's range stands in (same buffer, same read-write use).
    let buffers = v.bind(vec![
        x.buffer(),
        g,
        dy.buffer(),
        state.buffer(),
        part_binding,
        dx.buffer(),
        dg.map_or_else(|| dx.placeholder(), |t| t.buffer()),
        db.map_or_else(|| dx.placeholder(), |t| t.buffer()),
    ]);
    launches.push(x.device.launch(
        v.shader,
        "norm_backward_dx",
        &v.constants,
        &params,
        &buffers,
        chunk_grid(lay),
    )?);
    let scratch: Vec<Tensor> = part.into_iter().chain(spare).collect();
    if !fuse_params {
        launches.extend(param_grads_launch(
            op, lay, eps, pshape, x, dy, neuron, state, state, lay.groups, dgamma, dbeta,
        )?);
    }
    Ok(Prepared { launches, scratch })
}
