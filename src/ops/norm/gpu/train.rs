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

/// `lay` in lanes of four (16-byte loads) where the layout and every binding's offset allow it,
/// else `lay`.
fn widest(lay: &Layout, bindings: &[Binding]) -> Layout {
    match lay.lanes4() {
        Some(wide) if bindings.iter().all(|b| b.offset % 16 == 0) => wide,
        _ => *lay,
    }
}

/// The grid of the chunked kernels: one workgroup per (group, chunk).
fn chunk_grid(lay: &Layout) -> [u32; 3] {
    grid_1d(lay.groups * lay.chunking().0, 1)
}

/// Batch norm's running statistics (C each), moved in place towards each training batch's by
/// `momentum`.
#[derive(Clone, Copy)]
pub(super) struct Running<'a> {
    pub mean: &'a Tensor,
    pub var: &'a Tensor,
    pub momentum: f32,
}

/// Training forward of any layout: statistics into `state` (2, groups...) of `state.1`'s shape,
/// y = γ·x̂ + β, plus the epilogue's residual, then its neuron; the running statistics updated
/// when given. A group of more than [`MAX_CHUNK`] elements takes three dispatches (partials,
/// combine, forward), a smaller one one, and a second for the running statistics.
#[allow(clippy::too_many_arguments)]
pub(super) fn stats_forward_launch(
    op: &str,
    lay: &Layout,
    eps: f32,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    y: &Tensor,
    (state, state_shape): (&Tensor, &[usize]),
    running: Option<Running>,
    epilogue: Epilogue,
) -> Result<Prepared> {
    x.expect_dtype(op, DType::F32)?;
    too_big(op, x)?;
    expect(op, "y", y, &x.shape)?;
    expect(op, "state", state, state_shape)?;
    let (flags, g, b) = affine(x, gamma, beta);
    let (flags, res) = epilogue.residual_binding(op, x, flags)?;
    let elements = lay;
    let lay = &widest(lay, &[x.buffer(), y.buffer(), res]);
    let shader = shader_for(lay, false);
    let params = lay.params_fused(flags, eps, epilogue.neuron);
    let part = partials(lay, x)?;
    // Flags bit 4: the combine updates the running statistics.
    let (update, momentum) = running.map_or((0, 0.0), |r| (16, r.momentum));
    let mean = running.map_or_else(|| state.placeholder(), |r| r.mean.buffer());
    let var = running.map_or_else(|| state.placeholder(), |r| r.var.buffer());
    let mut launches = Vec::with_capacity(3);
    if let Some(part) = &part {
        launches.push(x.device.launch(
            shader,
            "norm_stats_partial",
            &[],
            &params,
            &[x.buffer(), part.buffer()],
            chunk_grid(lay),
        )?);
        launches.push(x.device.launch(
            shader,
            "norm_stats_combine",
            &[],
            &lay.params(update, 0, eps, momentum),
            &[part.buffer(), state.buffer(), mean, var],
            grid_1d(lay.groups, 1),
        )?);
    }
    launches.push(x.device.launch(
        shader,
        "norm_forward",
        &crate::neuron::fused_constants(epilogue.neuron),
        &params,
        &[x.buffer(), g, b, y.buffer(), state.buffer(), res],
        chunk_grid(lay),
    )?);
    if part.is_none() && running.is_some() {
        launches.push(x.device.launch(
            &SHADER,
            "norm_running",
            &[],
            &elements.params(0, 0, eps, momentum),
            &[state.buffer(), mean, var],
            grid_1d(elements.groups, WG),
        )?);
    }
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
    let v = DyVariant::of(op, x, neuron)?;
    let elements = lay;
    let lay = &widest(lay, &v.bind(vec![x.buffer(), dy.buffer(), dx.buffer()]));
    let shader = v.shader(lay);
    let params = lay.params(flags, 0, eps, 0.0);
    let part = partials(lay, x)?;
    let mut launches = Vec::with_capacity(2);
    if let Some(part) = &part {
        launches.push(x.device.launch(
            shader,
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
        shader,
        "norm_backward_dx",
        &v.constants,
        &params,
        &buffers,
        chunk_grid(lay),
    )?);
    let scratch: Vec<Tensor> = part.into_iter().chain(spare).collect();
    if !fuse_params {
        launches.extend(param_grads_launch(
            op, elements, eps, pshape, x, dy, neuron, state, state, lay.groups, dgamma, dbeta,
        )?);
    }
    Ok(Prepared { launches, scratch })
}
