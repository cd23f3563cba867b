//! Batch norm's launches and eager functions: statistics over the batch in training (the running
//! statistics updated in place), the running statistics at inference; the machinery is shared
//! with the per-sample norms in `mod.rs`.

use super::*;

// ---------------------------------------------------------------------------------------------
// Batch norm
// ---------------------------------------------------------------------------------------------

/// (C) for x (N, C, *), or an `Err` naming batch norm when x has rank < 2.
fn bn_channels(x: &Tensor) -> Result<usize> {
    if x.shape.len() < 2 {
        return shape_err(
            BatchNorm::OP,
            format!("x {} must have rank >= 2 (N, C, ...)", fmt_shape(&x.shape)),
        );
    }
    Ok(x.shape[1])
}

/// Shape of batch norm's state for x (N, C, *): (2, C) = batch mean, biased batch variance.
pub fn batch_norm_state_shape(x: &[usize]) -> Vec<usize> {
    vec![2, x.get(1).copied().unwrap_or(0)]
}

/// Validates a batch-norm call; returns the layout and the parameter shape (C).
fn bn_check(
    bn: &BatchNorm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
) -> Result<(Layout, Vec<usize>)> {
    let c = [bn_channels(x)?];
    bn.check(&x.shape, &shape_or(gamma, &c), &shape_or(beta, &c))?;
    for t in [Some(x), gamma, beta].into_iter().flatten() {
        t.expect_dtype(BatchNorm::OP, DType::F32)?;
    }
    Ok((Layout::per_channel(&x.shape), c.to_vec()))
}

fn bn_check_running(bn: &BatchNorm, x: &Tensor, mean: &Tensor, var: &Tensor) -> Result<()> {
    bn.check_running(&x.shape, &mean.shape, &var.shape)?;
    mean.expect_dtype(BatchNorm::OP, DType::F32)?;
    var.expect_dtype(BatchNorm::OP, DType::F32)
}

/// Prepares training-mode batch norm on x (N, C, *): y and `state` (2, C) from the batch
/// statistics, then `running_mean`/`running_var` (C) updated in place towards the batch mean and
/// unbiased variance. Two launches, to run in order, three where a channel holds more than
/// [`MAX_CHUNK`] elements (partials, their combine with the running update, the forward).
/// `fused`: a neuron fused onto y (not `state`).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_launch(
    bn: &BatchNorm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    running_mean: &Tensor,
    running_var: &Tensor,
    y: &Tensor,
    state: &Tensor,
    fused: Option<UnaryOp>,
) -> Result<Prepared> {
    let epilogue = Epilogue::neuron(fused);
    batch_norm_train_epilogue_launch(
        bn,
        x,
        gamma,
        beta,
        running_mean,
        running_var,
        y,
        state,
        epilogue,
    )
}

/// `batch_norm_train_launch` with a residual added before the neuron (the compiler's
/// batch norm → add → neuron fusion).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_epilogue_launch(
    bn: &BatchNorm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    running_mean: &Tensor,
    running_var: &Tensor,
    y: &Tensor,
    state: &Tensor,
    epilogue: Epilogue,
) -> Result<Prepared> {
    let (lay, _) = bn_check(bn, x, gamma, beta)?;
    bn_check_running(bn, x, running_mean, running_var)?;
    bn.check_training(&x.shape)?;
    let running = Running {
        mean: running_mean,
        var: running_var,
        momentum: bn.momentum,
    };
    let sshape = batch_norm_state_shape(&x.shape);
    stats_forward_launch(
        BatchNorm::OP,
        &lay,
        bn.eps,
        x,
        gamma,
        beta,
        y,
        (state, &sshape),
        Some(running),
        epilogue,
    )
}

/// Prepares the training-mode backward from the forward's `state` (2, C): dx through the batch
/// statistics, and dγ, dβ (C) into whichever of them is given, by the same kernel (their sums
/// are the ones dx needs). One launch, two where a channel holds more than [`MAX_CHUNK`] elements.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_backward_launch(
    bn: &BatchNorm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    state: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
    dgamma: Option<&Tensor>,
    dbeta: Option<&Tensor>,
) -> Result<Prepared> {
    batch_norm_train_backward_neuron_launch(bn, x, gamma, state, dy, None, dx, dgamma, dbeta)
}

/// `batch_norm_train_backward_launch` with `neuron`'s derivative applied to dy as it is read
/// (dy is then the gradient at that neuron's output y: the compiler's ReLU-gradient fold).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_backward_neuron_launch(
    bn: &BatchNorm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    state: &Tensor,
    dy: &Tensor,
    neuron: DyNeuron,
    dx: &Tensor,
    dgamma: Option<&Tensor>,
    dbeta: Option<&Tensor>,
) -> Result<Prepared> {
    let (lay, c) = bn_check(bn, x, gamma, gamma)?;
    bn.check_training(&x.shape)?;
    let sshape = batch_norm_state_shape(&x.shape);
    stats_backward_launch(
        BatchNorm::OP,
        &lay,
        bn.eps,
        &c,
        &sshape,
        x,
        gamma,
        state,
        dy,
        neuron,
        dx,
        dgamma,
        dbeta,
    )
}

/// Prepares inference-mode batch norm: y = γ·(x − running_mean)/√(running_var + eps) + β.
pub fn batch_norm_infer_launch(
    bn: &BatchNorm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    running_mean: &Tensor,
    running_var: &Tensor,
    y: &Tensor,
) -> Result<Launch> {
    batch_norm_infer_fused_launch(bn, x, gamma, beta, running_mean, running_var, y, None)
}

/// `batch_norm_infer_launch` with a neuron fused onto the output (batch norm + ReLU at inference).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_infer_fused_launch(
    bn: &BatchNorm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    running_mean: &Tensor,
    running_var: &Tensor,
    y: &Tensor,
    fused: Option<UnaryOp>,
) -> Result<Launch> {
    let epilogue = Epilogue::neuron(fused);
    batch_norm_infer_epilogue_launch(bn, x, gamma, beta, running_mean, running_var, y, epilogue)
}

/// `batch_norm_infer_launch` with a residual added before the neuron (batch norm → add → ReLU
/// at inference).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_infer_epilogue_launch(
    bn: &BatchNorm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    running_mean: &Tensor,
    running_var: &Tensor,
    y: &Tensor,
    epilogue: Epilogue,
) -> Result<Launch> {
    let op = BatchNorm::OP;
    let (lay, _) = bn_check(bn, x, gamma, beta)?;
    bn_check_running(bn, x, running_mean, running_var)?;
    too_big(op, x)?;
    expect(op, "y", y, &x.shape)?;
    let (flags, g, b) = affine(x, gamma, beta);
    let (flags, res) = epilogue.residual_binding(op, x, flags)?;
    x.device.launch(
        &SHADER,
        "norm_apply",
        &crate::neuron::fused_constants(epilogue.neuron),
        &lay.params_fused(flags, bn.eps, epilogue.neuron),
        &[
            x.buffer(),
            g,
            b,
            running_mean.buffer(),
            running_var.buffer(),
            y.buffer(),
            res,
        ],
        grid_1d(lay.total, WG),
    )
}

/// Prepares the inference-mode backward: the running stats are constants, so
/// dx = dy·γ/√(rv + eps); dγ, dβ (C) into whichever of them is given.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_infer_backward_launch(
    bn: &BatchNorm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    running_mean: &Tensor,
    running_var: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
    dgamma: Option<&Tensor>,
    dbeta: Option<&Tensor>,
) -> Result<Vec<Launch>> {
    let op = BatchNorm::OP;
    let (lay, c) = bn_check(bn, x, gamma, gamma)?;
    bn_check_running(bn, x, running_mean, running_var)?;
    too_big(op, x)?;
    expect(op, "dy", dy, &x.shape)?;
    expect(op, "dx", dx, &x.shape)?;
    let (flags, g, _) = affine(x, gamma, None);
    let mut l = vec![x.device.launch(
        &SHADER,
        "norm_backward_dx_const",
        &[],
        &lay.params(flags, 0, bn.eps, 0.0),
        &[dy.buffer(), g, running_var.buffer(), dx.buffer()],
        grid_1d(lay.total, WG),
    )?];
    l.extend(param_grads_launch(
        op,
        &lay,
        bn.eps,
        &c,
        x,
        dy,
        None,
        running_mean,
        running_var,
        0,
        dgamma,
        dbeta,
    )?);
    Ok(l)
}

/// Training-mode batch norm: returns (y, state (2, C)); updates the running stats in place.
pub fn batch_norm_train(
    bn: &BatchNorm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    running_mean: &Tensor,
    running_var: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let c = [bn_channels(x)?];
    let (g, b) = (param_or(x, &c, gamma, 1.0)?, param_or(x, &c, beta, 0.0)?);
    let op = NormOp::BatchNorm {
        op: *bn,
        training: true,
    };
    let ins = [x, &g, &b, running_mean, running_var];
    pair(eager::run(&x.device, op, &ins)?)
}

/// Gradients of [`batch_norm_train`] from its state.
pub fn batch_norm_train_backward(
    bn: &BatchNorm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    state: &Tensor,
    dy: &Tensor,
) -> Result<NormGrads> {
    let g = param_or(x, &[bn_channels(x)?], gamma, 1.0)?;
    expect(BatchNorm::OP, "dy", dy, &x.shape)?;
    let op = NormOp::BatchNormGrad {
        op: *bn,
        training: true,
    };
    grads(eager::run(&x.device, op, &[x, &g, state, dy])?)
}

/// Inference-mode batch norm.
pub fn batch_norm_infer(
    bn: &BatchNorm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    running_mean: &Tensor,
    running_var: &Tensor,
) -> Result<Tensor> {
    let c = [bn_channels(x)?];
    let (g, b) = (param_or(x, &c, gamma, 1.0)?, param_or(x, &c, beta, 0.0)?);
    let op = NormOp::BatchNorm {
        op: *bn,
        training: false,
    };
    let ins = [x, &g, &b, running_mean, running_var];
    eager::run_first(&x.device, op, &ins)
}

/// Gradients of [`batch_norm_infer`].
pub fn batch_norm_infer_backward(
    bn: &BatchNorm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    running_mean: &Tensor,
    running_var: &Tensor,
    dy: &Tensor,
) -> Result<NormGrads> {
    let g = param_or(x, &[bn_channels(x)?], gamma, 1.0)?;
    expect(BatchNorm::OP, "dy", dy, &x.shape)?;
    let op = NormOp::BatchNormGrad {
        op: *bn,
        training: false,
    };
    let ins = [x, &g, running_mean, running_var, dy];
    grads(eager::run(&x.device, op, &ins)?)
}
