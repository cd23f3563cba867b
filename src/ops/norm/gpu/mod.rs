//! Normalisation: batch norm (training with running-stat update, and inference), instance, group
//! and layer norm, forward and backward. WGSL: `wgsl/norm/` (`common.wgsl` describes the
//! layouts and the chunked training kernels). CPU reference:
//! `reference`. Descriptors and shape rules: `ops::norm`.
//!
//! Training forwards keep a **state** the backward reads: an f32 tensor `(2, groups...)` whose row
//! 0 is the mean and row 1 the biased variance of each statistics group (batch norm `(2, C)`,
//! instance norm `(2, N, C)`, group norm `(2, N, groups)`, layer norm `(2, leading dims...)`).
//!
//! γ and β are optional (`None` = 1 and 0). An absent one is not read: the kernel's slot is bound
//! to x, so every entry keeps one fixed binding layout.

use crate::error::{Error, Result, shape_err};
use crate::launch::{Launch, PRELUDE, Prepared, Shader, f, grid_1d};
use crate::ops::axis::fmt_shape;
use crate::ops::eager;
use crate::ops::elementwise::UnaryOp;
use crate::ops::norm::{BatchNorm, GroupNorm, InstanceNorm, LayerNorm, NormOp};
use crate::tensor::{Binding, DType, Tensor};

mod batch;
mod train;
pub use batch::*;
use train::*;

const COMMON: &str = include_str!("../../../../wgsl/norm/common.wgsl");
const LANE1: &str = include_str!("../../../../wgsl/norm/lane1.wgsl");
const LANE4: &str = include_str!("../../../../wgsl/norm/lane4.wgsl");
const TRAIN: &str = include_str!("../../../../wgsl/norm/train.wgsl");
const FIXED: &str = include_str!("../../../../wgsl/norm/fixed.wgsl");
const DY: &str = include_str!("../../../../wgsl/norm/dy.wgsl");
const DY_NEURON: &str = include_str!("../../../../wgsl/norm/dy_neuron.wgsl");

/// A norm shader: its chunked training kernels on `lane`'s lanes (`lane1.wgsl` or
/// `lane4.wgsl`), its backward loading dy through `dy` (`dy.wgsl` or `dy_neuron.wgsl`).
macro_rules! norm_shader {
    ($name:literal, $lane:expr, $dy:expr) => {
        Shader {
            name: $name,
            user_code: false,
            parts: &[
                PRELUDE,
                crate::neuron::WGSL,
                COMMON,
                $lane,
                TRAIN,
                FIXED,
                $dy,
            ],
        }
    };
}

pub(crate) static SHADER: Shader = norm_shader!("norm", LANE1, DY);

/// The same kernels with a neuron's gradient folded into every load of dy (`dy_neuron.wgsl`):
/// the backward launches take it when the compiler folds a ReLU's gradient into the norm's.
pub(crate) static SHADER_DY: Shader = norm_shader!("norm_dy", LANE1, DY_NEURON);

/// `SHADER` and `SHADER_DY` whose chunked training kernels load four elements at once
/// (`lane4.wgsl`), for the layouts `Layout::lanes4` allows.
pub(crate) static SHADER_LANE4: Shader = norm_shader!("norm_lane4", LANE4, DY);

pub(crate) static SHADER_DY_LANE4: Shader = norm_shader!("norm_dy_lane4", LANE4, DY_NEURON);

/// The storage buffers `norm_dy`'s dx kernel binds (the plain one binds 8): a device binding
/// fewer per stage gets the neuron's gradient as a dispatch of its own.
pub const DY_NEURON_BINDINGS: u32 = 9;

/// A neuron whose gradient the backward applies to dy as it loads it, and that neuron's output
/// y (x's shape and dtype): ReLU → norm backward without the masked gradient in memory.
pub type DyNeuron<'a> = Option<(UnaryOp, &'a Tensor)>;

/// The backward kernels' variant: its pipeline constants and the bindings after a kernel's own —
/// y, last, when a neuron is folded (`dy_neuron.wgsl` declares it there); its shader follows from
/// those (`DyVariant::shader`).
struct DyVariant<'a> {
    constants: Vec<(&'static str, f64)>,
    extra: Vec<Binding<'a>>,
}

impl<'a> DyVariant<'a> {
    /// dy as it is.
    fn plain() -> Self {
        DyVariant {
            constants: vec![],
            extra: vec![],
        }
    }

    fn of(op: &str, x: &Tensor, neuron: DyNeuron<'a>) -> Result<Self> {
        let Some((u, y)) = neuron else {
            return Ok(Self::plain());
        };
        expect(op, "y", y, &x.shape)?;
        Ok(DyVariant {
            constants: crate::neuron::grad_constants(u)?,
            extra: vec![y.buffer()],
        })
    }

    /// This variant's shader for kernels over `lay`.
    fn shader(&self, lay: &Layout) -> &'static Shader {
        shader_for(lay, !self.extra.is_empty())
    }

    /// `buffers` followed by the variant's own.
    fn bind(&self, mut buffers: Vec<Binding<'a>>) -> Vec<Binding<'a>> {
        buffers.extend(self.extra.iter().copied());
        buffers
    }
}

/// The shader for kernels over `lay` (lanes of one or four elements: only the chunked training
/// kernels take four), with a neuron's gradient folded into dy's loads or not.
fn shader_for(lay: &Layout, folded_neuron: bool) -> &'static Shader {
    match (lay.lanes, folded_neuron) {
        (4, false) => &SHADER_LANE4,
        (4, true) => &SHADER_DY_LANE4,
        (_, false) => &SHADER,
        (_, true) => &SHADER_DY,
    }
}

/// What a norm's forward applies to γ·x̂ + β as it writes y: a residual of x's shape added
/// (the compiler's norm → add fusion), then a neuron.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// Added before the neuron: y = neuron(γ·x̂ + β + residual).
    pub residual: Option<&'a Tensor>,
    /// Applied last.
    pub neuron: Option<UnaryOp>,
}

impl<'a> Epilogue<'a> {
    /// A neuron alone (no residual).
    pub fn neuron(neuron: Option<UnaryOp>) -> Self {
        Epilogue {
            residual: None,
            neuron,
        }
    }

    /// The flags with bit 3 set when a residual is added, and its binding (x's range, unread,
    /// when none).
    fn residual_binding(&self, op: &str, x: &'a Tensor, flags: u32) -> Result<(u32, Binding<'a>)> {
        match self.residual {
            Some(r) => {
                expect(op, "residual", r, &x.shape)?;
                Ok((flags | 8, r.buffer()))
            }
            None => Ok((flags, x.placeholder())),
        }
    }
}

/// Invocations per workgroup of every norm kernel (`WG` in the shader).
const WG: usize = 256;

/// Elements each invocation of a training kernel holds in registers (`E` in the shader).
const CHUNK_PER_INVOCATION: usize = 16;

/// The largest chunk: a group of at most this many elements is one workgroup's and takes one
/// dispatch each way; a larger one is split into chunks, with a partial-sum dispatch before.
pub const MAX_CHUNK: usize = WG * CHUNK_PER_INVOCATION;

/// Which elements share statistics and which share an affine parameter (see
/// `wgsl/norm/common.wgsl`): `gdiv`, `pdiv`, `pmod` locate them by flat index (the elementwise
/// and per-parameter kernels), `run`, `run_stride` and `pgroups`, `pmul`, `pstep`, `sstep` by
/// walking a group (the chunked training kernels).
#[derive(Clone, Copy, Debug)]
struct Layout {
    groups: usize,
    m: usize,
    run: usize,
    run_stride: usize,
    gdiv: usize,
    pdiv: usize,
    pmod: usize,
    total: usize,
    pgroups: usize,
    pmul: usize,
    pstep: usize,
    sstep: usize,
    /// Elements a lane of the chunked kernels holds (1 or 4); `m`, `run`, `run_stride` and
    /// `gdiv` count lanes.
    lanes: usize,
}

/// (N, C, *) → (N, C, S) with S the product of the spatial dims.
fn ncs(x: &[usize]) -> (usize, usize, usize) {
    (x[0], x[1], x[2..].iter().product())
}

impl Layout {
    /// Batch norm: group c = all (n, c, s), N runs of S.
    fn per_channel(x: &[usize]) -> Layout {
        let (n, c, s) = ncs(x);
        Layout {
            groups: c,
            m: n * s,
            run: s,
            run_stride: c * s,
            gdiv: s,
            pdiv: s,
            pmod: c,
            total: n * c * s,
            pgroups: c.max(1),
            pmul: 1,
            pstep: 0,
            sstep: 0,
            lanes: 1,
        }
    }

    /// Instance (`groups` = C) and group norm: group (n, g) = (C/groups) contiguous runs of S,
    /// run r using parameter (g · C/groups + r).
    fn per_sample_group(x: &[usize], groups: usize) -> Layout {
        let (n, c, s) = ncs(x);
        let per = c / groups.max(1);
        Layout {
            groups: n * groups,
            m: per * s,
            run: s,
            run_stride: s,
            gdiv: per * s,
            pdiv: s,
            pmod: c,
            total: n * c * s,
            pgroups: groups.max(1),
            pmul: per,
            pstep: 1,
            sstep: 0,
            lanes: 1,
        }
    }

    /// Layer norm: group r = one run of the `inner` trailing elements, elementwise parameters.
    fn trailing(x: &[usize], dims: usize) -> Layout {
        let inner: usize = x[x.len() - dims..].iter().product();
        let total: usize = x.iter().product();
        Layout {
            groups: total / inner.max(1),
            m: inner,
            run: inner,
            run_stride: inner,
            gdiv: inner,
            pdiv: 1,
            pmod: inner,
            total,
            pgroups: 1,
            pmul: 0,
            pstep: 0,
            sstep: 1,
            lanes: 1,
        }
    }

    /// Whether affine parameter k is exactly group k's (batch norm; instance norm of one
    /// sample): the backward's group sums are then dγ and dβ.
    fn param_is_group(&self) -> bool {
        self.pstep == 0 && self.sstep == 0 && self.pmul == 1 && self.pgroups == self.groups
    }

    /// This layout in lanes of four elements (`wgsl/norm/lane4.wgsl`), when every run is a whole
    /// number of them and the affine parameter is one per run: None otherwise, and for a layout
    /// already in lanes.
    fn lanes4(&self) -> Option<Layout> {
        let whole = [self.run, self.run_stride, self.gdiv]
            .iter()
            .all(|&v| v % 4 == 0);
        (self.lanes == 1 && whole && self.run > 0 && self.sstep == 0).then_some(Layout {
            m: self.m / 4,
            run: self.run / 4,
            run_stride: self.run_stride / 4,
            gdiv: self.gdiv / 4,
            lanes: 4,
            ..*self
        })
    }

    /// (chunks per group, lanes per chunk) of the training kernels: the fewest chunks of at
    /// most `MAX_CHUNK` elements, evened out and rounded to whole workgroup strides.
    fn chunking(&self) -> (usize, usize) {
        let chunks = self.m.div_ceil(MAX_CHUNK / self.lanes).max(1);
        let clen = self.m.div_ceil(chunks).div_ceil(WG).max(1) * WG;
        // Rounding clen up can leave the last chunk empty: count again.
        (self.m.div_ceil(clen).max(1), clen)
    }

    /// The uniform: the layout, then flags, var_off, eps, momentum, 1 − momentum, M/(M − 1), the
    /// fused neuron (none), the chunking and the walk (the shader's `Params`).
    fn params(&self, flags: u32, var_off: usize, eps: f32, momentum: f32) -> Vec<u32> {
        let elements = self.m.saturating_mul(self.lanes);
        let m = elements as f64;
        let unbias = if elements > 1 { m / (m - 1.0) } else { 0.0 };
        let mut w: Vec<u32> = [
            self.groups,
            self.m,
            self.run,
            self.run_stride,
            self.gdiv,
            self.pdiv,
            self.pmod,
            self.total,
        ]
        .iter()
        .map(|&v| v as u32)
        .collect();
        w.extend([
            flags,
            var_off as u32,
            f(eps),
            f(momentum),
            f((1.0 - momentum as f64) as f32),
            f(unbias as f32),
            0,
            0,
            0,
            0,
        ]);
        let (chunks, clen) = self.chunking();
        let run = self.run.max(1);
        w.extend(
            [
                chunks,
                clen,
                WG / run,
                WG % run,
                self.pgroups,
                self.pmul,
                self.pstep,
                self.sstep,
            ]
            .iter()
            .map(|&v| v as u32),
        );
        w
    }

    /// `params` with a fused post-op neuron applied to the forward output.
    fn params_fused(&self, flags: u32, eps: f32, fused: Option<UnaryOp>) -> Vec<u32> {
        let mut w = self.params(flags, 0, eps, 0.0);
        if let Some(op) = fused {
            let (code, a, b) = op.code();
            w[14..18].copy_from_slice(&[1, code, f(a), f(b)]);
        }
        w
    }
}

/// Checks that `t` is an f32 tensor of exactly shape `want`, naming `op` and the tensor.
fn expect(op: &str, name: &str, t: &Tensor, want: &[usize]) -> Result<()> {
    t.expect_dtype(&format!("{op} {name}"), DType::F32)?;
    if t.shape != want {
        return shape_err(
            op,
            format!(
                "{name} {} does not match {} expected",
                fmt_shape(&t.shape),
                fmt_shape(want)
            ),
        );
    }
    Ok(())
}

fn too_big(op: &str, x: &Tensor) -> Result<()> {
    if x.numel() > u32::MAX as usize {
        return Err(Error::Invalid(format!(
            "{op}: x {} has more than 2^32 elements",
            fmt_shape(&x.shape)
        )));
    }
    Ok(())
}

/// The shape of an optional parameter: its own, or `want` when absent.
fn shape_or(t: Option<&Tensor>, want: &[usize]) -> Vec<usize> {
    t.map_or_else(|| want.to_vec(), |t| t.shape.clone())
}

/// Affine flags (bit 0 γ, bit 1 β) and the bindings, with x standing in for an absent one.
fn affine<'a>(
    x: &'a Tensor,
    gamma: Option<&'a Tensor>,
    beta: Option<&'a Tensor>,
) -> (u32, Binding<'a>, Binding<'a>) {
    let flags = gamma.is_some() as u32 | (beta.is_some() as u32) << 1;
    (
        flags,
        gamma.map_or_else(|| x.placeholder(), |t| t.buffer()),
        beta.map_or_else(|| x.placeholder(), |t| t.buffer()),
    )
}

/// dγ, dβ of any layout from statistics `mean` (G) and variances at `var[var_off..]`, dy through
/// `neuron`'s derivative when one is folded. An absent output gets a scratch tensor (the kernel
/// writes both).
#[allow(clippy::too_many_arguments)]
fn param_grads_launch(
    op: &str,
    lay: &Layout,
    eps: f32,
    pshape: &[usize],
    x: &Tensor,
    dy: &Tensor,
    neuron: DyNeuron,
    mean: &Tensor,
    var: &Tensor,
    var_off: usize,
    dgamma: Option<&Tensor>,
    dbeta: Option<&Tensor>,
) -> Result<Option<Launch>> {
    if dgamma.is_none() && dbeta.is_none() {
        return Ok(None);
    }
    // The kernel writes both; an absent output goes to a scratch tensor.
    let scratch;
    let (dg, db) = match (dgamma, dbeta) {
        (Some(dg), Some(db)) => (dg, db),
        (dg, db) => {
            scratch = Tensor::zeros(&x.device, pshape, DType::F32)?;
            (dg.unwrap_or(&scratch), db.unwrap_or(&scratch))
        }
    };
    expect(op, "dgamma", dg, pshape)?;
    expect(op, "dbeta", db, pshape)?;
    let v = DyVariant::of(op, x, neuron)?;
    let buffers = v.bind(vec![
        x.buffer(),
        dy.buffer(),
        mean.buffer(),
        var.buffer(),
        dg.buffer(),
        db.buffer(),
    ]);
    let l = x.device.launch(
        v.shader(lay),
        "norm_param_grads",
        &v.constants,
        &lay.params(0, var_off, eps, 0.0),
        &buffers,
        grid_1d(lay.pmod, 1),
    )?;
    Ok(Some(l))
}

/// Gradients of a normalisation: dx (x's shape), dγ and dβ (the affine parameters' shape).
#[derive(Clone, Debug)]
pub struct NormGrads {
    /// Gradient of x.
    pub dx: Tensor,
    /// Gradient of γ (scale).
    pub dgamma: Tensor,
    /// Gradient of β (shift).
    pub dbeta: Tensor,
}

/// γ or β as the graph op takes it (always given): `fill` of `pshape` when absent.
fn param_or(x: &Tensor, pshape: &[usize], p: Option<&Tensor>, fill: f32) -> Result<Tensor> {
    match p {
        Some(p) => Ok(p.clone()),
        None => Tensor::from_f32(&x.device, pshape, &vec![fill; pshape.iter().product()]),
    }
}

/// The three gradients of a norm's gradient op.
fn grads(outs: Vec<Tensor>) -> Result<NormGrads> {
    let [dx, dgamma, dbeta]: [Tensor; 3] = outs.try_into().map_err(|o: Vec<Tensor>| {
        Error::Invalid(format!("a norm gradient gave {} outputs, not 3", o.len()))
    })?;
    Ok(NormGrads { dx, dgamma, dbeta })
}

/// The first two outputs (y, state).
fn pair(outs: Vec<Tensor>) -> Result<(Tensor, Tensor)> {
    match eager::result_and_state(outs)? {
        (y, Some(state)) => Ok((y, state)),
        (_, None) => Err(Error::Invalid("a norm gave no state".into())),
    }
}

// ---------------------------------------------------------------------------------------------
// Instance, group and layer norm: statistics per sample, the same in training and inference.
// ---------------------------------------------------------------------------------------------

/// A per-sample normalisation (always normalises with the statistics of its own input).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Norm {
    /// An [`InstanceNorm`].
    Instance(InstanceNorm),
    /// A [`GroupNorm`].
    Group(GroupNorm),
    /// A [`LayerNorm`].
    Layer(LayerNorm),
}

impl From<InstanceNorm> for Norm {
    fn from(n: InstanceNorm) -> Self {
        Norm::Instance(n)
    }
}

impl From<GroupNorm> for Norm {
    fn from(n: GroupNorm) -> Self {
        Norm::Group(n)
    }
}

impl From<LayerNorm> for Norm {
    fn from(n: LayerNorm) -> Self {
        Norm::Layer(n)
    }
}

impl Norm {
    /// The op's name, as in errors.
    pub fn name(&self) -> &'static str {
        match self {
            Norm::Instance(_) => InstanceNorm::OP,
            Norm::Group(_) => GroupNorm::OP,
            Norm::Layer(_) => LayerNorm::OP,
        }
    }

    fn eps(&self) -> f32 {
        match self {
            Norm::Instance(n) => n.eps,
            Norm::Group(n) => n.eps,
            Norm::Layer(n) => n.eps,
        }
    }

    /// The γ/β shape x calls for (best effort on bad x; `check` reports those).
    pub(crate) fn param_shape(&self, x: &[usize]) -> Vec<usize> {
        match self {
            Norm::Layer(n) if n.dims <= x.len() => x[x.len() - n.dims..].to_vec(),
            Norm::Layer(_) => vec![],
            _ => x.get(1).map_or_else(Vec::new, |&c| vec![c]),
        }
    }

    /// Validates through the descriptor; returns the layout and the γ/β shape.
    fn check(&self, x: &[usize], gamma: &[usize], beta: &[usize]) -> Result<(Layout, Vec<usize>)> {
        Ok(match self {
            Norm::Instance(n) => {
                let c = n.check(x, gamma, beta)?;
                (Layout::per_sample_group(x, c), vec![c])
            }
            Norm::Group(n) => {
                let c = n.check(x, gamma, beta)?;
                (Layout::per_sample_group(x, n.groups), vec![c])
            }
            Norm::Layer(n) => {
                let inner = n.check(x, gamma, beta)?;
                (Layout::trailing(x, n.dims), inner)
            }
        })
    }

    /// Checks x, gamma and beta through the descriptor (what the graph op's inference needs).
    pub(crate) fn check_params(&self, x: &[usize], gamma: &[usize], beta: &[usize]) -> Result<()> {
        self.check(x, gamma, beta).map(|_| ())
    }

    /// Shape of the state for input shape x: (2, N, C) instance, (2, N, groups) group,
    /// (2, leading dims...) layer norm; row 0 the means, row 1 the biased variances.
    pub fn state_shape(&self, x: &[usize]) -> Result<Vec<usize>> {
        let p = self.param_shape(x);
        self.check(x, &p, &p)?;
        let mut s = vec![2];
        match self {
            Norm::Instance(_) => s.extend(&x[..2]),
            Norm::Group(n) => s.extend([x[0], n.groups]),
            Norm::Layer(n) => s.extend(&x[..x.len() - n.dims]),
        }
        Ok(s)
    }

    fn check_tensors(
        &self,
        x: &Tensor,
        gamma: Option<&Tensor>,
        beta: Option<&Tensor>,
    ) -> Result<(Layout, Vec<usize>, Vec<usize>)> {
        let want = self.param_shape(&x.shape);
        let (lay, p) = self.check(&x.shape, &shape_or(gamma, &want), &shape_or(beta, &want))?;
        for t in [Some(x), gamma, beta].into_iter().flatten() {
            t.expect_dtype(self.name(), DType::F32)?;
        }
        Ok((lay, p, self.state_shape(&x.shape)?))
    }
}

/// Prepares y = γ·(x − μ)/√(σ² + eps) + β with per-sample statistics, saved into `state`
/// (see [`Norm::state_shape`]). One launch, two where a group holds more than [`MAX_CHUNK`]
/// elements (partial moments first, in a scratch tensor).
pub fn norm_launch(
    op: &Norm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    y: &Tensor,
    state: &Tensor,
) -> Result<Prepared> {
    norm_fused_launch(op, x, gamma, beta, y, state, None)
}

/// `norm_launch` with a neuron fused onto the output (the graph's norm + neuron fusion).
pub fn norm_fused_launch(
    op: &Norm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    y: &Tensor,
    state: &Tensor,
    fused: Option<UnaryOp>,
) -> Result<Prepared> {
    norm_epilogue_launch(op, x, gamma, beta, y, state, Epilogue::neuron(fused))
}

/// `norm_launch` with a residual added and a neuron applied as y is written (the graph's
/// norm → add → neuron fusion).
pub fn norm_epilogue_launch(
    op: &Norm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    y: &Tensor,
    state: &Tensor,
    epilogue: Epilogue,
) -> Result<Prepared> {
    let (lay, _, sshape) = op.check_tensors(x, gamma, beta)?;
    stats_forward_launch(
        op.name(),
        &lay,
        op.eps(),
        x,
        gamma,
        beta,
        y,
        (state, &sshape),
        None,
        epilogue,
    )
}

/// Prepares the backward from the forward's `state`: dx through the statistics, and dγ, dβ
/// (γ's shape) into whichever of them is given.
#[allow(clippy::too_many_arguments)]
pub fn norm_backward_launch(
    op: &Norm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    state: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
    dgamma: Option<&Tensor>,
    dbeta: Option<&Tensor>,
) -> Result<Prepared> {
    norm_backward_neuron_launch(op, x, gamma, state, dy, None, dx, dgamma, dbeta)
}

/// `norm_backward_launch` with `neuron`'s derivative applied to dy as it is read (dy is then
/// the gradient at that neuron's output y: the compiler's ReLU-gradient fold).
#[allow(clippy::too_many_arguments)]
pub fn norm_backward_neuron_launch(
    op: &Norm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    state: &Tensor,
    dy: &Tensor,
    neuron: DyNeuron,
    dx: &Tensor,
    dgamma: Option<&Tensor>,
    dbeta: Option<&Tensor>,
) -> Result<Prepared> {
    let (lay, p, sshape) = op.check_tensors(x, gamma, gamma)?;
    stats_backward_launch(
        op.name(),
        &lay,
        op.eps(),
        &p,
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

/// Instance, group or layer norm: returns (y, state).
pub fn norm(
    op: &Norm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    op.state_shape(&x.shape)?;
    let p = op.param_shape(&x.shape);
    let (g, b) = (param_or(x, &p, gamma, 1.0)?, param_or(x, &p, beta, 0.0)?);
    pair(eager::run(&x.device, NormOp::Norm(*op), &[x, &g, &b])?)
}

/// Gradients of [`norm`] from its state.
pub fn norm_backward(
    op: &Norm,
    x: &Tensor,
    gamma: Option<&Tensor>,
    state: &Tensor,
    dy: &Tensor,
) -> Result<NormGrads> {
    op.state_shape(&x.shape)?;
    let g = param_or(x, &op.param_shape(&x.shape), gamma, 1.0)?;
    expect(op.name(), "dy", dy, &x.shape)?;
    let ins = [x, &g, state, dy];
    grads(eager::run(&x.device, NormOp::NormGrad(*op), &ins)?)
}
