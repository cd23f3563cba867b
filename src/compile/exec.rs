//! Compile once, replay every step: dead nodes dropped, intermediates placed in one arena by the
//! memory plan, every op lowered to launches recorded once. A step is one command buffer and one
//! submit; `encode_step` returns at once and at most two steps are in flight (a semaphore of two
//! permits, released by the queue's completion callback — MPS's double-buffering pattern).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_intrusive::sync::Semaphore;

use super::program::{ParamArena, PlanStats, Program};
use super::residency::{self, Event};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, Value};
use crate::health::{self, Health};
use crate::launch::Launch;
use crate::ops::recurrent::CarriedState;
use crate::optim::{Optimizer, OptimizerConfig, ParamGroup};
use crate::tensor::{DType, Tensor};
use crate::weights::{ParamLayout, ParamStore};

/// Steps allowed in flight at once.
pub const IN_FLIGHT: usize = 2;

/// Computes, for step `n`, new parameter words for some of the update launches: `(index, words)`.
pub type StepParams = dyn Fn(u64) -> Vec<(usize, Vec<u32>)> + Send + Sync;

/// A step submitted to the GPU.
pub struct StepHandle {
    device: Device,
    index: wgpu::SubmissionIndex,
    done: Arc<AtomicBool>,
}

impl StepHandle {
    /// Whether the step's GPU work has completed (never blocks).
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Blocks until this step's work is complete.
    pub fn wait(&self) -> Result<()> {
        let (d, _) = self.device.wgpu();
        d.poll(wgpu::PollType::Wait {
            submission_index: Some(self.index.clone()),
            timeout: None,
        })
        .map_err(|e| Error::Device(format!("waiting for a step: {e}")))?;
        self.device.take_uncaptured()
    }
}

/// A graph compiled for one device and batch size: its `Program` and the replay state.
pub struct Compiled {
    device: Device,
    /// The compiled graph (after pruning and fusion).
    pub graph: Graph,
    pub(super) program: Program,
    /// Launches appended after the graph's (the optimizer update), re-parameterised every step
    /// by `update_params`.
    pub(super) update: Vec<Launch>,
    update_params: Option<Box<StepParams>>,
    /// Steps encoded so far: seeds dropout, part of what a checkpoint saves.
    step: AtomicU64,
    permits: Arc<Semaphore>,
    in_flight: Mutex<VecDeque<wgpu::SubmissionIndex>>,
    /// `(final state, initial-state input)` copied on the GPU at the end of every step
    /// (`carry`).
    pub(super) carried: Vec<(Tensor, Tensor, String)>,
    /// Which inputs and parameters have been written (`feeds.rs`): a step reading one never
    /// written is an `Err`, not a step on zeros.
    pub(super) feeds: super::feeds::Feeds,
    /// A training graph may step without an optimizer (`Options::gradients_only`).
    pub(super) gradients_only: bool,
    /// `attach_optimizer` has run.
    pub(super) optimizer_attached: bool,
    /// Compiled in mixed precision: the rewrite, mapping the caller's values onto `graph`.
    pub(super) autocast: Option<std::sync::Arc<crate::autocast::Autocast>>,
    /// Loss-scaled: the `[scale, clean steps]` state and the scaler's settings.
    pub(super) loss_scale: Option<(Tensor, super::LossScale)>,
}

impl Compiled {
    /// Readies `program`, compiled from `graph`, for replay on `device`.
    pub(crate) fn new(device: &Device, graph: Graph, program: Program) -> Compiled {
        let graph_len = graph.nodes.len();
        Compiled {
            device: device.clone(),
            graph,
            program,
            update: Vec::new(),
            update_params: None,
            step: AtomicU64::new(0),
            permits: Arc::new(Semaphore::new(false, IN_FLIGHT)),
            in_flight: Mutex::new(VecDeque::new()),
            carried: Vec::new(),
            feeds: super::feeds::Feeds::new(graph_len),
            gradients_only: false,
            optimizer_attached: false,
            autocast: None,
            loss_scale: None,
        }
    }

    /// The device the graph was compiled for.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// What the plan costs: nodes, dispatches, submits, bytes.
    pub fn stats(&self) -> &PlanStats {
        &self.program.stats
    }

    /// Every dispatch of a step in order: the node it belongs to (`"optimizer"` for the attached
    /// update) and its kernel — what `profile_step` times, listed without running anything.
    pub fn dispatches(&self) -> Vec<(String, &'static str)> {
        self.named_launches()
            .map(|(l, name)| (name, l.label))
            .collect()
    }

    /// Every launch of a step in order with the name of the node it belongs to (`"optimizer"`
    /// for the attached update).
    pub(super) fn named_launches(&self) -> impl Iterator<Item = (&Launch, String)> {
        let graph = self
            .program
            .launches
            .iter()
            .zip(&self.program.owners)
            .map(|(l, &n)| (l, self.graph.nodes[n].name.clone()));
        let update = self.update.iter().map(|l| (l, "optimizer".to_string()));
        graph.chain(update)
    }

    /// The values readable after a step, as values of `self.graph` (in mixed precision, the
    /// rewritten graph's).
    pub fn outputs(&self) -> &[Value] {
        &self.program.outputs
    }

    /// The tensor holding `v` (valid for inputs, parameters and requested outputs between steps).
    pub fn tensor(&self, v: Value) -> Result<&Tensor> {
        self.own_tensor(self.resolve(v)?)
    }

    /// The tensor of `v`, a value of `self.graph` (mixed precision: the rewritten graph).
    pub(crate) fn own_tensor(&self, v: Value) -> Result<&Tensor> {
        self.program
            .tensors
            .get(&v)
            .ok_or_else(|| Error::Invalid(format!("{v:?} is not part of this compiled graph")))
    }

    /// The parameter or state tensor named `name` (what `Options::share` shares).
    /// Just-in-time weights have none (their slot is shared): `None`.
    pub fn param(&self, name: &str) -> Option<&Tensor> {
        if self.is_jit_param(name) {
            return None;
        }
        let v = self.graph.find(name)?;
        matches!(self.graph.node(v).ok()?.op, Op::Param | Op::State)
            .then(|| self.program.tensors.get(&v))
            .flatten()
    }

    /// Whether `name` is a weight kept just-in-time (on the host, written into the slot per step).
    pub fn is_jit_param(&self, name: &str) -> bool {
        let Some(j) = &self.program.jit else {
            return false;
        };
        self.graph.find(name).is_some_and(|v| {
            self.graph.nodes[v.node].op == Op::Param && j.plan.offsets.contains_key(&v)
        })
    }

    /// Writes f32 data into the input or parameter named `name` (queue-ordered: a step already
    /// submitted still sees the old contents). An input a mixed-precision graph feeds as f16
    /// takes f32 values too, rounded to f16 (`Tensor::write_f32`); a finite value beyond f16's
    /// range (it would become infinity) is an `Err` naming the input, index and value.
    pub fn set(&self, name: &str, data: &[f32]) -> Result<()> {
        let v = self
            .graph
            .find(name)
            .ok_or_else(|| Error::Invalid(format!("no node named {name:?}")))?;
        if !matches!(self.graph.node(v)?.op, Op::Input | Op::Param | Op::State) {
            return Err(Error::Invalid(format!(
                "node {name:?} is computed, not fed"
            )));
        }
        self.check_fed_dtype(name, v, DType::F32)?;
        if let Some(j) = self
            .program
            .jit
            .as_ref()
            .filter(|_| self.graph.nodes[v.node].op == Op::Param)
        {
            // Just-in-time weights stay on the host until their layer runs.
            let want: usize = self.graph.shape(v)?.iter().product();
            if data.len() != want {
                return Err(Error::Shape {
                    op: format!("node {name:?}"),
                    msg: format!(
                        "{} values for a weight {:?}",
                        data.len(),
                        self.graph.shape(v)?
                    ),
                });
            }
            j.host.lock().unwrap().insert(v, data.to_vec());
            self.mark_fed(v);
            return Ok(());
        }
        self.own_tensor(v)?
            .write_f32(data)
            .map_err(|e| Error::Invalid(format!("node {name:?}: {e}")))?;
        self.mark_fed(v);
        Ok(())
    }

    /// `set` writes f32 and `set_u32` u32: a mismatch with what the input holds says which call
    /// (or which input declaration) fits, where the tensor's own check would only say "expected".
    fn check_fed_dtype(&self, name: &str, v: Value, wrote: DType) -> Result<()> {
        let holds = self.graph.output(v)?.1;
        let lower = |d: DType| format!("{d:?}").to_lowercase();
        let hint = match (holds, wrote) {
            // An f16 input (mixed precision) takes f32 values, rounded on the way.
            (a, b) if a == b || (a, b) == (DType::F16, DType::F32) => return Ok(()),
            (DType::U32, _) => format!(
                "input {name:?} holds u32 values (declared with `input_u32`, e.g. class \
                 indices), but `set` wrote f32 values: write them with `set_u32`"
            ),
            (_, DType::U32) => format!(
                "input {name:?} holds {} values (declared with `input`), but `set_u32` \
                 wrote u32 values: write them with `set`, or declare the input with `input_u32` \
                 if it holds class indices",
                lower(holds)
            ),
            _ => format!(
                "input {name:?} holds {} values, but {} values were written",
                lower(holds),
                lower(wrote)
            ),
        };
        Err(Error::Invalid(hint))
    }

    /// Writes u32 data (class-index labels) into the input named `name`; a class index out of
    /// range for a loss that reads it is an `Err` naming the sample (the loss would read NaN).
    pub fn set_u32(&self, name: &str, data: &[u32]) -> Result<()> {
        let v = self
            .graph
            .find(name)
            .ok_or_else(|| Error::Invalid(format!("no node named {name:?}")))?;
        if self.graph.node(v)?.op != Op::Input {
            return Err(Error::Invalid(format!("node {name:?} is not an input")));
        }
        self.check_fed_dtype(name, v, DType::U32)?;
        // (runs every step: only the nodes reading `v` are looked at)
        for n in self.graph.nodes.iter().filter(|n| n.inputs.contains(&v)) {
            let Some(p) = n.op.primitive() else { continue };
            let shapes = n.inputs.iter().map(|u| self.graph.shape(*u));
            let shapes: Vec<&[usize]> = shapes.collect::<Result<_>>()?;
            for port in (0..n.inputs.len()).filter(|&k| n.inputs[k] == v) {
                let Some(bound) = p.index_bound(port, &shapes) else {
                    continue;
                };
                if let Some((i, l)) = data.iter().enumerate().find(|(_, l)| **l as usize >= bound) {
                    return Err(Error::Invalid(format!(
                        "input {name:?}: sample {i} is class {l}, but {:?} has {bound} classes \
                         (0..={})",
                        n.name,
                        bound.saturating_sub(1)
                    )));
                }
            }
        }
        self.own_tensor(v)?
            .write_u32(data)
            .map_err(|e| Error::Invalid(format!("node {name:?}: {e}")))?;
        self.mark_fed(v);
        Ok(())
    }

    /// Reads the input, parameter or state named `name` (waits for the steps in flight): also
    /// those a mixed-precision rewrite added, such as the loss scale.
    pub fn read_named(&self, name: &str) -> Result<Vec<f32>> {
        let v = self
            .graph
            .find(name)
            .ok_or_else(|| Error::Invalid(format!("no node {name:?} in the compiled graph")))?;
        self.read_own(v)
    }

    /// Reads a requested output (waits for the steps in flight).
    pub fn read(&self, v: Value) -> Result<Vec<f32>> {
        self.read_own(self.resolve(v)?)
    }

    /// `read` of a value of `self.graph`.
    fn read_own(&self, v: Value) -> Result<Vec<f32>> {
        let node = self.graph.node(v)?;
        if !self.program.outputs.contains(&v)
            && !matches!(node.op, Op::Input | Op::Param | Op::State)
        {
            return Err(Error::Invalid(format!(
                "{:?} was not requested as an output; its memory is reused within the step",
                node.name
            )));
        }
        self.wait_all()?;
        if let Some(j) = self.program.jit.as_ref().filter(|_| node.op == Op::Param) {
            return residency::host_weight(&j.host.lock().unwrap(), &self.graph, v)
                .map(<[f32]>::to_vec);
        }
        self.own_tensor(v)?.to_f32()
    }

    /// Submits one step and returns at once, unless two are already in flight, in which case it
    /// first waits for the older one. `on_done` runs when the GPU has finished this step.
    pub fn encode_step_with(&self, on_done: impl FnOnce() + Send + 'static) -> Result<StepHandle> {
        self.check_fed()?;
        self.check_prepared()?;
        // Built by now (compile and `attach_optimizer` wait); checked before a permit is taken
        // or anything submitted, so a failed pipeline of `set_update`'s launches stops nothing
        // half-way.
        crate::launch::built(self.program.launches.iter().chain(&self.update))?;
        loop {
            if let Some(mut permit) = self.permits.try_acquire(1) {
                permit.disarm();
                break;
            }
            let oldest = self.in_flight.lock().unwrap().pop_front();
            let (d, _) = self.device.wgpu();
            d.poll(wgpu::PollType::Wait {
                submission_index: oldest,
                timeout: Some(Duration::from_secs(60)),
            })
            .map_err(|e| Error::Device(format!("waiting for a step in flight: {e}")))?;
        }
        self.begin_step()?;
        let (_, q) = self.device.wgpu();
        let all: Vec<&Launch> = self.program.launches.iter().chain(&self.update).collect();
        // One submit, or, just-in-time, one per stretch between host events: weights written
        // into the slot (queue-ordered between submits) and per-parameter updates.
        let mut cursor = 0;
        for (at, event) in self.program.jit.iter().flat_map(|j| &j.events) {
            let j = self
                .program
                .jit
                .as_ref()
                .expect("events come from the plan");
            if *at > cursor {
                self.submit(&all[cursor..*at])?;
                cursor = *at;
            }
            match event {
                Event::Upload(params) => {
                    let host = j.host.lock().unwrap();
                    for p in params {
                        let data = residency::host_weight(&host, &self.graph, *p)?;
                        let at = j.plan.offsets[p];
                        self.device.scoped(|_| {
                            q.write_buffer(&j.plan.slot, at, bytemuck::cast_slice(data))
                        })?;
                    }
                }
                Event::Update(k) => {
                    let tr = j.training.as_ref().expect("updates only when training");
                    tr.update(&self.device, &j.host, *k, &self.graph)?;
                }
            }
        }
        let index = self.submit_last(&all[cursor..])?;
        let done = Arc::new(AtomicBool::new(false));
        let (flag, permits) = (done.clone(), self.permits.clone());
        q.on_submitted_work_done(move || {
            flag.store(true, Ordering::Release);
            permits.release(1);
            on_done();
        });
        self.in_flight.lock().unwrap().push_back(index.clone());
        self.device.take_uncaptured()?;
        Ok(StepHandle {
            device: self.device.clone(),
            index,
            done,
        })
    }

    /// Counts the step and rewrites the per-step parameters it reads (dropout seeds, optimizer
    /// step and learning rate); returns the step index.
    pub(crate) fn begin_step(&self) -> Result<u64> {
        let step = self.step.fetch_add(1, Ordering::SeqCst);
        for &(l, node, n) in &self.program.per_step {
            if let Some(p) = self.graph.nodes[node].op.primitive()
                && let Some(p) = p.step_params(step, n)
            {
                self.device.rewrite_params(&self.program.launches[l], &p)?;
            }
        }
        if let Some(f) = &self.update_params {
            for (k, p) in f(step) {
                let l = self
                    .update
                    .get(k)
                    .ok_or_else(|| Error::Invalid(format!("update launch {k} does not exist")))?;
                self.device.rewrite_params(l, &p)?;
            }
        }
        Ok(step)
    }

    /// Refuses a step whose optimizer update was not prepared (`Optimizer::prepare_step` writes
    /// the step count and bias corrections; replaying without it would, e.g., divide Adam's update
    /// by 1 - beta1^0 = 0), and consumes each preparation.
    pub(super) fn check_prepared(&self) -> Result<()> {
        let jit = self
            .program
            .jit
            .iter()
            .flat_map(|j| j.training.iter().flat_map(|t| t.launches()));
        let mut flags: Vec<&Arc<AtomicBool>> = Vec::new();
        for f in self
            .update
            .iter()
            .chain(jit)
            .filter_map(|l| l.ready.as_ref())
        {
            if !flags.iter().any(|g| Arc::ptr_eq(g, f)) {
                flags.push(f);
            }
        }
        if flags.iter().any(|f| !f.load(Ordering::SeqCst)) {
            return Err(Error::Invalid(
                "optimizer: call prepare_step() before every step (it writes the step count, bias \
                 corrections and learning rates the update reads); this step was not prepared"
                    .into(),
            ));
        }
        flags.iter().for_each(|f| f.store(false, Ordering::SeqCst));
        Ok(())
    }

    /// Encodes `launches` into one compute pass and submits it.
    fn submit(&self, launches: &[&Launch]) -> Result<wgpu::SubmissionIndex> {
        let (d, q) = self.device.wgpu();
        let enc = crate::launch::encode(d, "step", launches.iter().copied())?;
        Ok(q.submit([enc.finish()]))
    }

    /// `submit` for a step's last launches, followed in the same command buffer by the copies of
    /// the carried states (so the next step, queue-ordered, starts from them).
    fn submit_last(&self, launches: &[&Launch]) -> Result<wgpu::SubmissionIndex> {
        let (d, q) = self.device.wgpu();
        let mut enc = crate::launch::encode(d, "step", launches.iter().copied())?;
        self.encode_carried(&mut enc);
        Ok(q.submit([enc.finish()]))
    }

    /// Appends the copies of the carried states (final state into initial-state input) to `enc`.
    pub(super) fn encode_carried(&self, enc: &mut wgpu::CommandEncoder) {
        for (from, to, _) in &self.carried {
            enc.copy_buffer_to_buffer(
                &from.buffer,
                from.offset,
                &to.buffer,
                to.offset,
                from.bytes(),
            );
        }
    }

    /// Carries recurrent state from step to step (truncated backpropagation through time): after
    /// every step, each final state of `state` is copied on the GPU into its initial-state input,
    /// with no readback. Each final state must be a requested output (its memory is otherwise
    /// reused within the step) of the same shape as its input. Replaces any earlier carry.
    pub fn carry(&mut self, state: &CarriedState) -> Result<()> {
        let mut carried = Vec::with_capacity(state.pairs.len());
        for &(from, to) in &state.pairs {
            let (from, to) = (self.resolve(from)?, self.resolve(to)?);
            let name = |v: Value| {
                self.graph
                    .nodes
                    .get(v.node)
                    .map_or_else(|| format!("{v:?}"), |n| n.name.clone())
            };
            if !self.program.outputs.contains(&from) {
                return Err(Error::Invalid(format!(
                    "carry: the final state {:?} (port {}) must be requested as an output of the compile",
                    name(from),
                    from.port
                )));
            }
            if self.graph.nodes.get(to.node).map(|n| &n.op) != Some(&Op::Input) {
                return Err(Error::Invalid(format!(
                    "carry: {:?} is not an input of this graph",
                    name(to)
                )));
            }
            let (a, b) = (self.own_tensor(from)?, self.own_tensor(to)?);
            if a.shape() != b.shape() || a.dtype() != b.dtype() {
                return Err(Error::Shape {
                    op: format!("carry {:?} -> {:?}", name(from), name(to)),
                    msg: format!("{:?} vs {:?}", a.shape(), b.shape()),
                });
            }
            carried.push((a.clone(), b.clone(), name(to)));
            self.mark_fed(to);
        }
        self.carried = carried;
        Ok(())
    }

    /// The carried initial-state inputs by name (what `batch::StateBatch` lists).
    pub fn carried_inputs(&self) -> Vec<(String, Tensor)> {
        self.carried
            .iter()
            .map(|(_, to, name)| (name.clone(), to.clone()))
            .collect()
    }

    /// Zeroes the carried initial states (a new batch of sequences starts), queue-ordered: steps
    /// already submitted keep theirs.
    pub fn reset_state(&self) -> Result<()> {
        for (_, to, _) in &self.carried {
            to.write_f32(&vec![0.0; to.numel()])?;
        }
        Ok(())
    }

    /// Steps encoded so far (the next step's dropout seed).
    pub fn step_count(&self) -> u64 {
        self.step.load(Ordering::SeqCst)
    }

    /// Continues counting from `step` (resuming from a checkpoint reproduces the same masks).
    pub fn set_step_count(&self, step: u64) {
        self.step.store(step, Ordering::SeqCst)
    }

    /// The flat parameter and gradient arenas (graphs compiled with `Options::training`).
    pub fn param_arena(&self) -> Option<&ParamArena> {
        self.program.param_arena.as_ref()
    }

    /// The parameter layout of a training graph, resident or just-in-time (the same for both).
    pub fn param_layout(&self) -> Option<&ParamLayout> {
        match (&self.program.param_arena, &self.program.jit) {
            (Some(a), _) => Some(&a.layout),
            (None, Some(j)) => j.training.as_ref().map(|t| &t.layout),
            _ => None,
        }
    }

    /// Whether the weights are kept just-in-time (`Residency::JustInTime`).
    pub fn is_just_in_time(&self) -> bool {
        self.program.jit.is_some()
    }

    /// The optimizer this training graph's residency takes, over its `param_layout`:
    /// `Optimizer::new` for resident weights, `Optimizer::just_in_time` for just-in-time ones.
    /// Hand it to `attach_optimizer`.
    pub fn optimizer(&self, config: OptimizerConfig, groups: Vec<ParamGroup>) -> Result<Optimizer> {
        let layout = self.param_layout().ok_or_else(not_training)?;
        if self.is_just_in_time() {
            Optimizer::just_in_time(&self.device, config, groups, layout)
        } else {
            Optimizer::new(&self.device, config, groups, layout.len())
        }
    }

    /// Records `opt`'s update into every step of this training graph, whatever its residency:
    /// resident, one fused update over the parameter arena after the graph's launches;
    /// just-in-time, one parameter at its update point. `opt` is made by `optimizer` (or
    /// `Optimizer::new` / `Optimizer::just_in_time` for this graph's `param_layout`). Call
    /// `opt.prepare_step()` before each step.
    ///
    /// ```
    /// use wgtrain::compile::{Options, Residency};
    /// use wgtrain::graph::Graph;
    /// use wgtrain::ops::dense::FullyConnected;
    /// use wgtrain::optim::{Algorithm, OptimizerConfig, ParamGroup};
    /// # fn main() -> wgtrain::Result<()> {
    /// let mut g = Graph::new();
    /// let x = g.input("x", &[4, 8])?; // (N, features)
    /// let y = g.dense("fc", x, FullyConnected::new(8, 2))?;
    /// let loss = g.sum("loss", y, 1)?;
    /// let training = g.training(loss)?;
    /// let dev = wgtrain::Device::new()?;
    /// let opts = Options {
    ///     training: Some(&training),
    ///     residency: Residency::JustInTime,
    ///     ..Options::default()
    /// };
    /// let mut step = g.compile(&dev, &[loss], &opts)?;
    /// let layout = step.param_layout().expect("a training graph").clone();
    /// let config = OptimizerConfig::new(Algorithm::adam(), 1e-3);
    /// let groups = vec![ParamGroup::range(0..layout.len())];
    /// let mut opt = step.optimizer(config, groups)?;
    /// step.attach_optimizer(&opt)?;
    /// step.set("x", &[0.5; 32])?;
    /// step.set("fc.weight", &[0.1; 16])?; // kept on the host, written into the slot per step
    /// step.set("fc.bias", &[0.0; 2])?;
    /// opt.prepare_step()?;
    /// step.step()?; // forward, backward and Adam, one layer at a time on the GPU
    /// let w = step.read(g.find("fc.weight").expect("a param"))?;
    /// assert!(w.iter().all(|&v| v < 0.1)); // d(sum y)/dw > 0: Adam moved every weight down
    /// # Ok(()) }
    /// ```
    pub fn attach_optimizer(&mut self, opt: &Optimizer) -> Result<()> {
        let (d, h) = (&self.device, &self.program.health);
        // The update skips a step whose loss or gradients hold NaN or infinity (`health`).
        let mut launches = Vec::new();
        if let Some(a) = &self.program.param_arena {
            if opt.host_state().is_some() {
                return Err(Error::Invalid(
                    "this training graph keeps its weights resident: make its optimizer with \
                     Optimizer::new (or Compiled::optimizer)"
                        .into(),
                ));
            }
            launches.push(health::scan(d, h, &a.grads, health::GRAD, None, 0)?);
            launches.extend(opt.guarded_launches(&a.params, &a.grads, h)?);
        } else {
            let j = self.program.jit.as_mut().ok_or_else(not_training)?;
            let tr = j.training.as_mut().ok_or_else(not_training)?;
            tr.attach(d, opt, h)?;
            let bytes = tr.optimizer.as_ref().map_or(0, |o| o.bytes);
            self.program.stats.weight_bytes = j.plan.slot_bytes + bytes;
        }
        self.optimizer_attached = true;
        if let Some((state, ls)) = &self.loss_scale {
            launches.push(health::scale_update(d, h, state, ls.growth_interval)?);
        }
        let finish = launches.len();
        launches.push(health::finish(d, h)?);
        // Built before the first step needs them, so a failed one is this call's `Err`.
        crate::launch::built(&launches)?;
        self.set_update(
            launches,
            Some(Box::new(move |step| {
                vec![(finish, health::finish_params(step))]
            })),
        );
        Ok(())
    }

    /// What the non-finite guards found since the last `reset_health` (waits for the steps in
    /// flight): how many steps were skipped, and where the first one went wrong.
    pub fn health(&self) -> Result<Health> {
        let words = self.program.health.to_u32()?;
        let layout = self.param_layout();
        Ok(Health::decode(&words, &self.graph, |i| {
            let e = layout?.entries().iter().find(|e| e.range().contains(&i))?;
            Some(e.name.clone())
        }))
    }

    /// Forgets what the non-finite guards found (queue-ordered: steps in flight may still add).
    pub fn reset_health(&self) -> Result<()> {
        self.program.health.write_u32(&health::fresh())
    }

    /// Appends launches to every step after the graph's own (the optimizer update over the
    /// arena); `params` rewrites their parameters before each step (step count, learning rate).
    pub fn set_update(&mut self, launches: Vec<Launch>, params: Option<Box<StepParams>>) {
        // An update of the caller's making counts as the optimizer (`feeds.rs`).
        self.optimizer_attached |= !launches.is_empty();
        self.program.stats.dispatches_per_step = self.program.launches.len() + launches.len();
        self.update = launches;
        self.update_params = params;
    }

    /// Encodes and submits one step; returns once submitted (at most two steps in flight).
    pub fn encode_step(&self) -> Result<StepHandle> {
        self.encode_step_with(|| {})
    }

    /// One step, waited for.
    pub fn step(&self) -> Result<()> {
        self.encode_step()?.wait()
    }

    /// Waits for every step in flight.
    pub fn wait_all(&self) -> Result<()> {
        self.in_flight.lock().unwrap().clear();
        self.device.wait()
    }
}

fn not_training() -> Error {
    Error::Invalid("not a training graph: compile it with Options::training".into())
}

/// A training graph's parameters in layout order, wherever they live: the resident arena, or the
/// host copies of just-in-time weights (what data sources and checkpoints read and write).
impl ParamStore for Compiled {
    fn elements(&self) -> Result<usize> {
        self.param_layout().map(|l| l.len()).ok_or_else(|| {
            Error::Invalid("not a training graph: it has no parameter layout".into())
        })
    }

    fn read_all(&self) -> Result<Vec<f32>> {
        if let Some(a) = &self.program.param_arena {
            return a.params.to_f32();
        }
        let mut out = vec![0f32; self.elements()?];
        let j = self
            .program
            .jit
            .as_ref()
            .expect("a layout without an arena is just-in-time");
        let tr = j
            .training
            .as_ref()
            .expect("a just-in-time layout comes from training");
        // Each update reads its parameter back before `encode_step` returns: the host copies
        // are current without waiting for the GPU.
        let host = j.host.lock().unwrap();
        for (e, p) in tr.layout.entries().iter().zip(&tr.params) {
            out[e.range()].copy_from_slice(residency::host_weight(&host, &self.graph, *p)?);
        }
        Ok(out)
    }

    fn write_all(&self, values: &[f32]) -> Result<()> {
        if let Some(a) = &self.program.param_arena {
            a.params.write_f32(values)?;
            a.layout
                .entries()
                .iter()
                .for_each(|e| self.mark_fed_name(&e.name));
            return Ok(());
        }
        let n = self.elements()?;
        if values.len() != n {
            return Err(Error::Shape {
                op: "parameter arena".into(),
                msg: format!("{} values for {n} elements", values.len()),
            });
        }
        for e in self.param_layout().expect("checked by elements").entries() {
            self.set(&e.name, &values[e.range()])?;
        }
        Ok(())
    }
}

/// Every parameter and persistent state by name, for `checkpoint::load_into`: resident,
/// just-in-time or in the training arena alike (`set` writes each where it lives).
impl crate::weights::checkpoint::LoadTarget for Compiled {
    fn entries(&self) -> Vec<crate::weights::checkpoint::TargetEntry> {
        let g = &self.graph;
        g.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.op, Op::Param | Op::State))
            .map(|(i, n)| {
                let v = Value { node: i, port: 0 };
                crate::weights::checkpoint::TargetEntry {
                    name: n.name.clone(),
                    shape: n.outputs[0].0.clone(),
                    state: n.op == Op::State,
                    held: self.program.tensors.contains_key(&v) || self.is_jit_param(&n.name),
                }
            })
            .collect()
    }

    fn write(&self, name: &str, data: &[f32]) -> Result<()> {
        self.set(name, data)
    }
}
