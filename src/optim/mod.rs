//! Optimizers as fused GPU kernels over flat arenas.
//!
//! The compiled graph keeps every parameter in one flat f32 arena and every gradient in a second
//! arena of the same layout; an optimizer updates the whole arena in place with one dispatch (two
//! more for clipping by global norm), whatever the number of parameter tensors. Its state (moments,
//! momentum buffers) is one tensor `[slots, n]`: slot `s` has the arena's layout, so the state of
//! parameter `conv1.weight` is the same range of every slot.
//!
//! Parameter groups are sets of ranges of the arena with their own learning-rate multiplier,
//! weight decay and L1/L2 terms (e.g. no weight decay on biases and norms); elements in no group
//! are left alone. Formulas and operation order follow PyTorch's single-tensor `SGD`, `Adam`,
//! `AdamW` and `RMSprop`. `optim::reference` is the f64 oracle.
//!
//! **Step count.** The host owns it: `prepare_step` increments it, evaluates the schedule for each
//! group, computes the bias corrections in f64 (as PyTorch does in Python floats) and writes them
//! into a small uniform buffer the launches read. The launches are recorded once and replayed;
//! call `prepare_step` right before submitting each step (queue order makes a step see exactly the
//! values written before its submit, even with a step still in flight).
//!
//! **Determinism.** Every kernel is elementwise except the global-norm reduction, which sums in a
//! fixed order (per chunk, then over chunks; see `wgsl/optim/builtin.wgsl`), so the same inputs give the
//! same bits on the same device — what makes save/resume bit-identical.

mod algorithm;
pub mod custom;
pub mod reference;
pub mod schedule;
mod table;

use std::ops::Range;
use std::sync::{Arc, Mutex};

use crate::device::Device;
use crate::error::{Error, Result};
use crate::launch::{Launch, Shader, f, grid_1d};
use crate::layout::ParamLayout;
use crate::tensor::{Binding, DType, Tensor};
pub use algorithm::Algorithm;
pub use schedule::Schedule;
use table::build_table;

pub(crate) static SHADER: Shader = Shader {
    name: "optim",
    user_code: false,
    parts: &[
        include_str!("../../wgsl/optim/common.wgsl"),
        include_str!("../../wgsl/optim/builtin.wgsl"),
    ],
};

/// Elements one workgroup updates (its chunk of the arena).
pub const CHUNK: usize = 1024;
/// Most parameter groups one optimizer takes (the per-step uniform holds one vec4 per group).
pub const MAX_GROUPS: usize = 256;
const STEP_UNIFORM_BYTES: u64 = 32 + 16 * MAX_GROUPS as u64;

const F_CLIP_NORM: u32 = 1;
const F_CLIP_VALUE: u32 = 2;
const F_NESTEROV: u32 = 4;
const F_AMSGRAD: u32 = 8;
const F_CENTERED: u32 = 16;
const F_DECOUPLED: u32 = 32;

/// Gradient preprocessing applied to the whole arena before the update, in this order: rescale,
/// clip by global norm, clip by value; then each group's L1/L2 terms.
#[derive(Clone, Debug, PartialEq)]
pub struct GradOptions {
    /// Multiplies every gradient (e.g. 1/accumulation steps); 1 by default.
    pub rescale: f64,
    /// Clamp every gradient to `[-c, c]` (`clip_grad_value_`).
    pub clip_value: Option<f64>,
    /// Scale every gradient by `min(1, max_norm / (‖g‖₂ + 1e-6))`, the norm over all grouped
    /// elements of the arena (`clip_grad_norm_`).
    pub clip_norm: Option<f64>,
}

impl Default for GradOptions {
    fn default() -> Self {
        GradOptions {
            rescale: 1.0,
            clip_value: None,
            clip_norm: None,
        }
    }
}

/// Everything an optimizer is, except its groups and its arena length.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerConfig {
    /// The update rule and its hyperparameters.
    pub algorithm: Algorithm,
    /// Base learning rate; each group's is `lr · lr_scale`, then scheduled.
    pub lr: f64,
    /// Learning-rate schedule over steps.
    pub schedule: Schedule,
    /// Gradient preprocessing (rescale, clipping).
    pub grad: GradOptions,
}

impl OptimizerConfig {
    /// `algorithm` at a constant learning rate `lr`, no clipping.
    pub fn new(algorithm: Algorithm, lr: f64) -> Self {
        OptimizerConfig {
            algorithm,
            lr,
            schedule: Schedule::Constant,
            grad: GradOptions::default(),
        }
    }

    /// Adam (β 0.9, 0.999, ε 1e-8) at learning rate `lr`, as `torch.optim.Adam(lr=lr)`.
    pub fn adam(lr: f64) -> Self {
        Self::new(Algorithm::adam(), lr)
    }

    /// AdamW (decoupled weight decay set per group) at learning rate `lr`.
    pub fn adamw(lr: f64) -> Self {
        Self::new(Algorithm::adamw(), lr)
    }

    /// SGD with `momentum` (0 for plain SGD) at learning rate `lr`.
    pub fn sgd(lr: f64, momentum: f64) -> Self {
        Self::new(Algorithm::sgd(momentum), lr)
    }

    /// RMSprop (α 0.99, ε 1e-8) at learning rate `lr`.
    pub fn rmsprop(lr: f64) -> Self {
        Self::new(Algorithm::rmsprop(), lr)
    }
}

/// A parameter group: ranges (in elements) of the flat arena sharing these settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGroup {
    /// Half-open ranges of the arena, in elements.
    pub ranges: Vec<Range<usize>>,
    /// Multiplies the base learning rate.
    pub lr_scale: f64,
    /// The algorithm's weight decay (coupled, or decoupled for AdamW).
    pub weight_decay: f64,
    /// `l1 · sign(p)` added to the gradient.
    pub l1: f64,
    /// `l2 · p` added to the gradient.
    pub l2: f64,
}

impl ParamGroup {
    /// A group of `ranges` with the defaults: lr scale 1, no weight decay, no L1/L2.
    pub fn new(ranges: impl IntoIterator<Item = Range<usize>>) -> Self {
        ParamGroup {
            ranges: ranges.into_iter().collect(),
            lr_scale: 1.0,
            weight_decay: 0.0,
            l1: 0.0,
            l2: 0.0,
        }
    }
    /// A group of one range.
    pub fn range(r: Range<usize>) -> Self {
        Self::new([r])
    }
    /// Sets the multiplier of the base learning rate.
    pub fn lr_scale(mut self, s: f64) -> Self {
        self.lr_scale = s;
        self
    }
    /// Sets the weight decay (coupled or decoupled, as the algorithm has it).
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
    /// Sets the L1 penalty added to the gradient (`l1 · sign(p)`).
    pub fn l1(mut self, l1: f64) -> Self {
        self.l1 = l1;
        self
    }
    /// Sets the L2 penalty added to the gradient (`l2 · p`).
    pub fn l2(mut self, l2: f64) -> Self {
        self.l2 = l2;
        self
    }
}

/// What `prepare_step` set up: the 1-based step and each group's learning rate.
#[derive(Clone, Debug, PartialEq)]
pub struct StepInfo {
    /// The step about to run, 1-based.
    pub step: u64,
    /// Each group's learning rate for this step, in group order.
    pub lr: Vec<f64>,
}

/// `params` and `grads` must be f32 with `n` elements (`of`: what those `n` are).
fn check_operands(params: &Tensor, grads: &Tensor, n: usize, of: &str) -> Result<()> {
    for (what, t) in [("params", params), ("grads", grads)] {
        t.expect_dtype(&format!("optimizer {what}"), DType::F32)?;
        if t.numel() != n {
            return Err(Error::Shape {
                op: format!("optimizer {what}"),
                msg: format!("{:?} holds {} elements, {of} {n}", t.shape(), t.numel()),
            });
        }
    }
    Ok(())
}

/// Where an optimizer's state lives.
enum State {
    /// `[slots, n]` on the GPU, next to the resident parameter arena.
    Gpu(Tensor),
    /// `[slots, n]` on the host: just-in-time residency moves one parameter's rows at a time
    /// through a GPU slot (`graph::residency`).
    Host(Arc<Mutex<Vec<f32>>>),
}

/// One optimizer over one arena: its state, chunk table and per-step uniform.
pub struct Optimizer {
    device: Device,
    config: OptimizerConfig,
    groups: Vec<ParamGroup>,
    n: usize,
    slots: Vec<String>,
    state: State,
    table: Tensor,
    chunks: Vec<Range<usize>>,
    chunk_base: usize,
    norm: Tensor,
    /// The non-finite guard the update reads when none is given (`launches`): never set.
    health: Tensor,
    step_uniform: Arc<wgpu::Buffer>,
    /// Whether `prepare_step` ran since the last step used the launches (see `Launch::ready`).
    prepared: Arc<std::sync::atomic::AtomicBool>,
    step: u64,
    schedule_pos: u64,
    custom: Option<&'static Shader>,
}

impl Optimizer {
    /// An optimizer for an arena of `n` f32 elements; state starts at zero, step at 0. A custom
    /// algorithm's WGSL is compiled here, so invalid code is an `Err` now, not at the first step.
    pub fn new(
        device: &Device,
        config: OptimizerConfig,
        groups: Vec<ParamGroup>,
        n: usize,
    ) -> Result<Optimizer> {
        Self::build(device, config, groups, n, &[], false)
    }

    /// An optimizer for just-in-time residency (`compile::Residency::JustInTime`): its state stays
    /// on the host and each parameter of `layout` is updated on its own, right after its gradient
    /// is complete. Clipping by global norm is refused (it needs every gradient first).
    pub fn just_in_time(
        device: &Device,
        config: OptimizerConfig,
        groups: Vec<ParamGroup>,
        layout: &ParamLayout,
    ) -> Result<Optimizer> {
        if config.grad.clip_norm.is_some() {
            return Err(Error::Invalid(
                "optimizer: clipping by global norm needs every gradient before the first update; \
                 just-in-time residency updates one parameter at a time (clip by value instead, \
                 or keep the weights resident)"
                    .into(),
            ));
        }
        let cuts: Vec<usize> = layout
            .entries()
            .iter()
            .flat_map(|e| [e.range().start, e.range().end])
            .collect();
        Self::build(device, config, groups, layout.len(), &cuts, true)
    }

    fn build(
        device: &Device,
        config: OptimizerConfig,
        groups: Vec<ParamGroup>,
        n: usize,
        cuts: &[usize],
        host: bool,
    ) -> Result<Optimizer> {
        config.algorithm.validate()?;
        config.schedule.validate()?;
        let g = &config.grad;
        let finite_pos = |x: f64| x.is_finite() && x >= 0.0;
        if !config.lr.is_finite()
            || config.lr < 0.0
            || !g.rescale.is_finite()
            || !g.clip_value.is_none_or(finite_pos)
            || !g.clip_norm.is_none_or(finite_pos)
        {
            return Err(Error::Invalid(format!(
                "optimizer: lr {} and clipping thresholds must be finite and >= 0 ({g:?})",
                config.lr
            )));
        }
        let table = build_table(&groups, n, cuts)?;
        let slots = config.algorithm.slot_names();
        let state = if host {
            State::Host(Arc::new(Mutex::new(vec![0.0; slots.len() * n])))
        } else {
            State::Gpu(Tensor::zeros(device, &[slots.len(), n], DType::F32)?)
        };
        let table_t = Tensor::from_u32(device, &[table.words.len()], &table.words)?;
        let norm = Tensor::zeros(device, &[table.chunks.len() + 2], DType::F32)?;
        let health = crate::health::buffer(device)?;
        let step_uniform = Arc::new(device.scoped(|d| {
            d.create_buffer(&wgpu::BufferDescriptor {
                label: Some("optimizer step"),
                size: STEP_UNIFORM_BYTES,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?);
        let custom = match &config.algorithm {
            Algorithm::Custom(c) => Some(custom::compile(device, c)?),
            _ => None,
        };
        Ok(Optimizer {
            device: device.clone(),
            config,
            groups,
            n,
            slots,
            state,
            table: table_t,
            chunks: table.chunks,
            chunk_base: table.chunk_base,
            norm,
            health,
            step_uniform,
            prepared: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            step: 0,
            schedule_pos: 0,
            custom,
        })
    }

    /// The algorithm, base learning rate, schedule and gradient options.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// The parameter groups.
    pub fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    /// Elements in the arena this optimizer updates.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the arena has no elements.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Names of the state slots, as in checkpoints (`momentum_buffer`, `exp_avg`, …).
    pub fn slot_names(&self) -> &[String] {
        &self.slots
    }

    /// Reads the state, `[slots, n]` slot-major (waits for the GPU when it lives there).
    pub fn read_state(&self) -> Result<Vec<f32>> {
        match &self.state {
            State::Gpu(t) => t.to_f32(),
            State::Host(h) => Ok(h.lock().unwrap().clone()),
        }
    }

    /// Bytes of state on the GPU (none just-in-time: there it lives on the host).
    pub fn gpu_state_bytes(&self) -> u64 {
        match &self.state {
            State::Gpu(t) => t.bytes(),
            State::Host(_) => 0,
        }
    }

    /// The host state of a just-in-time optimizer (what `graph::residency` moves through its slot).
    pub(crate) fn host_state(&self) -> Option<Arc<Mutex<Vec<f32>>>> {
        match &self.state {
            State::Gpu(_) => None,
            State::Host(h) => Some(h.clone()),
        }
    }

    /// Steps taken (the `t` of the last prepared step).
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Position of the learning-rate schedule (the next step uses position `schedule_position()`).
    pub fn schedule_position(&self) -> u64 {
        self.schedule_pos
    }

    /// Sets the step count and schedule position (resuming, or a schedule stepped per epoch).
    pub fn set_counters(&mut self, step: u64, schedule_position: u64) {
        self.step = step;
        self.schedule_pos = schedule_position;
    }

    /// Each group's learning rate at schedule position `t`.
    pub fn lr_at(&self, t: u64) -> Vec<f64> {
        self.groups
            .iter()
            .map(|g| self.config.schedule.lr(self.config.lr * g.lr_scale, t))
            .collect()
    }

    /// Overwrites the state (`slots · n` values, slot-major).
    pub fn write_state(&self, data: &[f32]) -> Result<()> {
        match &self.state {
            State::Gpu(t) => t.write_f32(data),
            State::Host(h) => {
                let mut h = h.lock().unwrap();
                if data.len() != h.len() {
                    return Err(Error::Shape {
                        op: "optimizer state".into(),
                        msg: format!(
                            "{} values for [{}, {}]",
                            data.len(),
                            self.slots.len(),
                            self.n
                        ),
                    });
                }
                h.copy_from_slice(data);
                Ok(())
            }
        }
    }

    /// The ℓ2 norm of the (rescaled) gradient measured by the last step; `None` unless clipping by
    /// global norm is on. Reads back, so it waits for the GPU.
    pub fn grad_norm(&self) -> Result<Option<f32>> {
        if self.config.grad.clip_norm.is_none() {
            return Ok(None);
        }
        Ok(Some(self.norm.to_f32()?[self.chunks.len() + 1]))
    }

    /// Advances the step count and schedule and writes the per-step uniform the launches read.
    /// Call once right before submitting each step. A schedule whose rate at this step is not a
    /// finite, non-negative f32 (e.g. a step schedule with gamma 1e300) is an `Err` naming the
    /// step, and nothing advances.
    pub fn prepare_step(&mut self) -> Result<StepInfo> {
        let (Some(t), Some(next_pos)) =
            (self.step.checked_add(1), self.schedule_pos.checked_add(1))
        else {
            return Err(Error::Invalid(format!(
                "optimizer: step {} / schedule position {} cannot advance past u64::MAX",
                self.step, self.schedule_pos
            )));
        };
        let lrs = self.lr_at(self.schedule_pos);
        let (beta1, beta2) = match self.config.algorithm {
            Algorithm::Adam { beta1, beta2, .. } | Algorithm::AdamW { beta1, beta2, .. } => {
                (beta1, beta2)
            }
            _ => (0.0, 0.0),
        };
        // As PyTorch: Python-float arithmetic, rounded to f32 when it meets the tensors.
        let bc1 = 1.0 - beta1.powf(t as f64);
        let bc2_sqrt = (1.0 - beta2.powf(t as f64)).sqrt();
        let mut words: Vec<u32> = vec![t.min(u32::MAX as u64) as u32, 0, 0, 0];
        words.extend([f(bc2_sqrt as f32), 0, 0, 0]);
        for (k, (g, &lr)) in self.groups.iter().zip(&lrs).enumerate() {
            let values = [
                lr as f32,
                (lr / bc1) as f32,
                (1.0 - lr * g.weight_decay) as f32,
            ];
            if lr < 0.0 || values.iter().any(|v| !v.is_finite()) {
                return Err(Error::Invalid(format!(
                    "optimizer step {t}: the schedule {:?} gives parameter group {k} the learning \
                     rate {lr:e}, not a finite non-negative f32 (lr / bias correction {:e}, decay \
                     factor {:e})",
                    self.config.schedule, values[1], values[2]
                )));
            }
            words.extend(values.map(f));
            words.push(0);
        }
        let (_, q) = self.device.wgpu();
        self.device
            .scoped(|_| q.write_buffer(&self.step_uniform, 0, bytemuck::cast_slice(&words)))?;
        self.step = t;
        self.schedule_pos = next_pos;
        self.prepared
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(StepInfo { step: t, lr: lrs })
    }

    /// The launch parameters: `stride` elements between state slots, chunks `chunks` of the
    /// table, arena element `base` at index 0 of the bound params, grads and state rows.
    fn params_words(&self, stride: usize, chunks: Range<usize>, base: usize) -> Vec<u32> {
        let g = &self.config.grad;
        let mut flags = 0;
        if g.clip_norm.is_some() {
            flags |= F_CLIP_NORM;
        }
        if g.clip_value.is_some() {
            flags |= F_CLIP_VALUE;
        }
        let slot = |name: &str| self.slots.iter().position(|s| s == name).unwrap_or(0) as u32;
        let (mut momentum, mut dampening_w, mut beta1_w, mut beta2, mut beta2_w) =
            (0.0, 1.0, 0.0, 0.0, 0.0);
        let (mut eps, mut alpha, mut alpha_w) = (0.0, 0.0, 0.0);
        let (mut sa, mut sb, mut sc) = (0, 0, 0);
        match self.config.algorithm {
            Algorithm::Sgd {
                momentum: m,
                dampening,
                nesterov,
            } => {
                momentum = m;
                dampening_w = 1.0 - dampening;
                if nesterov {
                    flags |= F_NESTEROV;
                }
            }
            Algorithm::Adam {
                beta1,
                beta2: b2,
                eps: e,
                amsgrad,
            }
            | Algorithm::AdamW {
                beta1,
                beta2: b2,
                eps: e,
                amsgrad,
            } => {
                beta1_w = 1.0 - beta1;
                beta2 = b2;
                beta2_w = 1.0 - b2;
                eps = e;
                if amsgrad {
                    flags |= F_AMSGRAD;
                }
                if matches!(self.config.algorithm, Algorithm::AdamW { .. }) {
                    flags |= F_DECOUPLED;
                }
                (sa, sb, sc) = (slot("exp_avg"), slot("exp_avg_sq"), slot("max_exp_avg_sq"));
            }
            Algorithm::RmsProp {
                alpha: a,
                eps: e,
                momentum: m,
                centered,
            } => {
                alpha = a;
                alpha_w = 1.0 - a;
                eps = e;
                momentum = m;
                if centered {
                    flags |= F_CENTERED;
                }
                (sa, sb, sc) = (
                    slot("square_avg"),
                    slot("momentum_buffer"),
                    slot("grad_avg"),
                );
            }
            Algorithm::Custom(_) => {}
        }
        vec![
            stride as u32,
            chunks.len() as u32,
            (self.chunk_base + 4 * chunks.start) as u32,
            flags,
            f(g.rescale as f32),
            f(g.clip_value.unwrap_or(0.0) as f32),
            f(g.clip_norm.unwrap_or(0.0) as f32),
            base as u32,
            f(momentum as f32),
            f(dampening_w as f32),
            f(beta1_w as f32),
            f(beta2 as f32),
            f(beta2_w as f32),
            f(eps as f32),
            f(alpha as f32),
            f(alpha_w as f32),
            sa,
            sb,
            sc,
            0,
        ]
    }

    /// Prepares one optimizer step over `params` (updated in place) from `grads` (read only):
    /// with clipping by global norm, the two reduction passes, then the fused update. Record once
    /// and replay; call `prepare_step` before each replay.
    pub fn launches(&self, params: &Tensor, grads: &Tensor) -> Result<Vec<Launch>> {
        self.guarded_launches(params, grads, &self.health)
    }

    /// `launches`, skipping the update of any step whose non-finite guard `health` is set
    /// (`crate::health`; `Compiled::attach_optimizer` adds the scans that set it).
    pub(crate) fn guarded_launches(
        &self,
        params: &Tensor,
        grads: &Tensor,
        health: &Tensor,
    ) -> Result<Vec<Launch>> {
        let State::Gpu(state) = &self.state else {
            return Err(Error::Invalid(
                "optimizer: made for just-in-time residency; its launches come per parameter \
                 (Compiled::attach_optimizer)"
                    .into(),
            ));
        };
        check_operands(params, grads, self.n, "the optimizer's arena")?;
        let p = self.params_words(self.n, 0..self.chunks.len(), 0);
        let d = &self.device;
        let mut out = Vec::new();
        if self.config.grad.clip_norm.is_some() {
            out.push(d.launch(
                &SHADER,
                "norm_partial",
                &[],
                &p,
                &[self.table.buffer(), grads.buffer(), self.norm.buffer()],
                grid_1d(self.chunks.len(), 1),
            )?);
            out.push(d.launch(
                &SHADER,
                "norm_finish",
                &[],
                &p,
                &[self.norm.buffer()],
                [1, 1, 1],
            )?);
        }
        out.push(self.update_launch(&p, self.chunks.len(), params, grads, state, health)?);
        Ok(out)
    }

    /// The update of one parameter of a just-in-time optimizer: arena elements `range` (one
    /// layout entry), read from `params` and `grads` (exactly that many elements) and `state`
    /// (rows of `stride` elements). The update is skipped while `health` (`crate::health`)
    /// flags the step.
    pub(crate) fn launches_for(
        &self,
        range: Range<usize>,
        params: &Tensor,
        grads: &Tensor,
        state: &Tensor,
        stride: usize,
        health: &Tensor,
    ) -> Result<Vec<Launch>> {
        check_operands(params, grads, range.len(), &format!("the range {range:?}"))?;
        if self.config.grad.clip_norm.is_some() {
            return Err(Error::Invalid(
                "optimizer: clipping by global norm cannot run one parameter at a time".into(),
            ));
        }
        let first = self.chunks.partition_point(|c| c.start < range.start);
        let count = self.chunks[first..].partition_point(|c| c.start < range.end);
        if let Some(c) = self.chunks[first..first + count]
            .iter()
            .find(|c| c.end > range.end)
        {
            return Err(Error::Invalid(format!(
                "optimizer: chunk {c:?} crosses the end of {range:?}; make the optimizer with \
                 Optimizer::just_in_time"
            )));
        }
        if state.numel() < self.slots.len() * stride || stride < range.len() {
            return Err(Error::Shape {
                op: "optimizer state".into(),
                msg: format!(
                    "{} elements for {} slots of stride {stride} ({} elements)",
                    state.numel(),
                    self.slots.len(),
                    range.len()
                ),
            });
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        let p = self.params_words(stride, first..first + count, range.start);
        Ok(vec![
            self.update_launch(&p, count, params, grads, state, health)?,
        ])
    }

    fn update_launch(
        &self,
        p: &[u32],
        n_chunks: usize,
        params: &Tensor,
        grads: &Tensor,
        state: &Tensor,
        health: &Tensor,
    ) -> Result<Launch> {
        let (shader, entry) = match (&self.config.algorithm, self.custom) {
            (Algorithm::Sgd { .. }, _) => (&SHADER, "sgd"),
            (Algorithm::Adam { .. } | Algorithm::AdamW { .. }, _) => (&SHADER, "adam"),
            (Algorithm::RmsProp { .. }, _) => (&SHADER, "rmsprop"),
            (Algorithm::Custom(_), Some(s)) => (s, "custom_update"),
            (Algorithm::Custom(_), None) => unreachable!("compiled in Optimizer::new"),
        };
        let mut launch = self.device.launch(
            shader,
            entry,
            &[],
            p,
            &[
                self.table.buffer(),
                grads.buffer(),
                self.norm.buffer(),
                Binding::whole(&self.step_uniform),
                params.buffer(),
                state.buffer(),
                health.buffer(),
            ],
            grid_1d(n_chunks, 1),
        )?;
        launch.ready = Some(self.prepared.clone());
        Ok(launch)
    }

    /// One step, eagerly: `prepare_step`, then the launches, submitted and waited for.
    pub fn step(&mut self, params: &Tensor, grads: &Tensor) -> Result<StepInfo> {
        let launches = self.launches(params, grads)?;
        let info = self.prepare_step()?;
        self.device.run(&launches)?;
        self.device.wait()?;
        Ok(info)
    }
}

impl std::fmt::Debug for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Optimizer({}, {} elements, {} groups, step {})",
            self.config.algorithm.name(),
            self.n,
            self.groups.len(),
            self.step
        )
    }
}
