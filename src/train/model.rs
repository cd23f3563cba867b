//! The short path from a graph to training: `Graph::train` compiles the network with its loss for
//! training, initialises every parameter through its data source (seeded, PyTorch's defaults) and
//! attaches the optimizer, in one call. A step takes a batch of named inputs; `predict` runs the
//! inference twin (dropout off, batch norm on running statistics) on the trained weights.

use std::collections::BTreeMap;
use std::path::Path;

use super::inputs::{Column, Inputs};
use super::{NonFinitePolicy, default_init, default_init_in, resume};
use crate::compile::{Compiled, LossScale, Options, PlanStats, Precision, Residency};
use crate::device::Device;
use crate::dtype::Accumulator;
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, Value};
use crate::optim::{Optimizer, OptimizerConfig, ParamGroup};
use crate::weights::checkpoint::{self, TrainState};
use crate::weights::{self, DataSource, InitSource, ParamLayout, ParamStore};

/// How `Graph::train` compiles and initialises.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// Seed of the initialisation (and of dropout, through the step count).
    pub seed: u64,
    /// Weight decay of the weights (rank > 1); biases and norm scales get none.
    pub weight_decay: f64,
    /// Where the weights live while a step runs (`Residency::JustInTime` for networks whose
    /// weights and optimizer state do not fit on the GPU).
    pub residency: Residency,
    /// Scan every node's output for NaN and infinity, so errors name the first bad node.
    pub check_activations: bool,
    /// What `loss` does when the guards found a step with NaN or infinity (its update was
    /// skipped on the GPU either way).
    pub on_non_finite: NonFinitePolicy,
    /// More values to keep readable after each step (`Model::read`), besides the loss.
    pub keep: Vec<Value>,
    /// Mixed precision with `Precision::F16` (or `BestAvailable`): activations and their
    /// gradients in f16 where the ops have f16 kernels, f32 weights and optimizer state, with
    /// dynamic loss scaling (`loss_scale`). The inference twin (`predict`) runs in f32.
    pub precision: Precision,
    /// The loss scaler of mixed precision (PyTorch's `GradScaler` defaults unless set).
    pub loss_scale: LossScale,
    /// What the summing ops accumulate in (`compile::Options::accumulator`), in the training
    /// graph and its inference twin alike; `Accumulator::F16` needs SHADER_F16.
    pub accumulator: Accumulator,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            seed: 1,
            weight_decay: 0.0,
            residency: Residency::Resident,
            check_activations: false,
            on_non_finite: NonFinitePolicy::Stop,
            keep: Vec::new(),
            precision: Precision::F32,
            loss_scale: LossScale::default(),
            accumulator: Accumulator::F32,
        }
    }
}

/// A data source per parameter: `(name, shape, seed)` → its source.
pub type SourceFn<'a> = dyn Fn(&str, &[usize], u64) -> Box<dyn DataSource> + 'a;

/// A network compiled for training with its optimizer attached and its weights initialised.
pub struct Model {
    device: Device,
    /// The forward graph with its loss, at the training batch size.
    graph: Graph,
    loss: Value,
    /// The loss op's per-sample losses (port 1), when the loss is a loss op's reduced port.
    per_sample: Option<Value>,
    train: Compiled,
    opt: Optimizer,
    /// The inference twin and the outputs it was compiled for.
    eval: Option<(Vec<Value>, Compiled)>,
    sources: Vec<Box<dyn DataSource>>,
    cfg: ModelConfig,
    /// Optimizer steps taken (saved in checkpoints).
    pub(super) global_step: u64,
    /// Completed epochs (saved in checkpoints; the `Trainer` counts them).
    pub(super) epoch: usize,
    /// Steps skipped for non-finite values (`NonFinitePolicy::Skip`).
    pub(super) skipped_steps: u64,
    /// Mixed precision: steps whose f16 gradients overflowed (skipped, the scale halved).
    overflow_steps: u64,
}

impl Graph {
    /// Compiles this graph for training on `loss` (its gradient graph, planned and fused),
    /// initialises every parameter (He uniform for weights, zeros for biases, ones for norm
    /// scales, PyTorch's ±1/√H for recurrent layers; seed 1) and attaches `optimizer`.
    ///
    /// ```
    /// use wgtrain::{Device, Graph, UnaryOp};
    /// use wgtrain::ops::loss::{Loss, LossKind};
    /// use wgtrain::optim::OptimizerConfig;
    /// use wgtrain::train::Inputs;
    /// # fn main() -> wgtrain::Result<()> {
    /// let dev = Device::new()?;
    /// // y = 2x - 1 from 8 samples
    /// let mut g = Graph::new();
    /// let x = g.input("x", &[8, 1])?;
    /// let y = g.input("y", &[8, 1])?;
    /// let h = g.linear("fc1", x, 16)?;
    /// let h = g.unary("tanh", UnaryOp::Tanh, h)?;
    /// let p = g.linear("fc2", h, 1)?;
    /// let loss = g.loss("mse", p, y, None, Loss::mean(LossKind::MeanSquaredError))?;
    /// let mut model = g.train(&dev, loss, OptimizerConfig::adam(0.02))?;
    /// let xs: Vec<f32> = (0..8).map(|i| i as f32 / 8.0).collect();
    /// let ys: Vec<f32> = xs.iter().map(|x| 2.0 * x - 1.0).collect();
    /// let batch = Inputs::new().f32("x", &xs).f32("y", &ys);
    /// model.step(&batch)?;
    /// let first = model.loss()?;
    /// for _ in 0..200 {
    ///     model.step(&batch)?;
    /// }
    /// assert!(model.loss()? < first / 10.0);
    /// # Ok(()) }
    /// ```
    pub fn train(&self, device: &Device, loss: Value, optimizer: OptimizerConfig) -> Result<Model> {
        Model::new(device, self, loss, optimizer, ModelConfig::default())
    }
}

impl Model {
    /// `Graph::train` with a configuration.
    pub fn new(
        device: &Device,
        graph: &Graph,
        loss: Value,
        optimizer: OptimizerConfig,
        cfg: ModelConfig,
    ) -> Result<Model> {
        let g = graph.clone();
        Self::with_sources(
            device,
            graph,
            loss,
            optimizer,
            cfg,
            &move |name, shape, seed| {
                Box::new(InitSource::new(
                    name,
                    shape,
                    default_init_in(&g, name, shape),
                    seed,
                ))
            },
        )
    }

    /// Like `new`, with the weights entering through data sources of the caller's making (MPS's
    /// data source provider): `source(name, shape, seed)` is asked for one per parameter.
    pub fn with_sources(
        device: &Device,
        graph: &Graph,
        loss: Value,
        optimizer: OptimizerConfig,
        cfg: ModelConfig,
        source: &SourceFn,
    ) -> Result<Model> {
        graph.validate()?;
        let node = graph.node(loss).map_err(|e| e.context("the loss"))?;
        // A loss op's second port holds the per-sample losses (the Trainer's exact means); another
        // op's second port is something else (max's argmax).
        let is_loss_op = node.op.downcast::<crate::ops::loss::LossOp>().is_some();
        let per_sample = (loss.port == 0 && is_loss_op).then_some(Value {
            node: loss.node,
            port: 1,
        });
        let mut outputs: Vec<Value> = std::iter::once(loss).chain(per_sample).collect();
        for &v in &cfg.keep {
            graph
                .output(v)
                .map_err(|e| e.context("ModelConfig::keep"))?;
            if !outputs.contains(&v) {
                outputs.push(v);
            }
        }
        let mut gt = graph.clone();
        let tr = gt.training(loss)?;
        let mut train = gt.compile(
            device,
            &outputs,
            &Options {
                training: Some(&tr),
                residency: cfg.residency,
                check_activations: cfg.check_activations,
                precision: cfg.precision,
                loss_scale: (cfg.precision != Precision::F32).then_some(cfg.loss_scale),
                accumulator: cfg.accumulator,
                ..Options::default()
            },
        )?;
        let layout = train
            .param_layout()
            .ok_or_else(|| {
                Error::Invalid("the loss depends on no parameter: nothing to train".into())
            })?
            .clone();
        // Weights enter only through their data sources.
        let mut sources: Vec<Box<dyn DataSource>> = layout
            .entries()
            .iter()
            .map(|e| source(&e.name, &e.shape, cfg.seed))
            .collect();
        weights::upload(&layout, &mut sources, &train)?;
        for n in gt.nodes.iter().filter(|n| n.op == Op::State) {
            let shape = &n.outputs[0].0;
            let v = default_init(&n.name, shape).values(&n.name, shape, cfg.seed)?;
            train.set(&n.name, &v)?;
        }
        // No weight decay on biases and norm scales (rank-1 parameters).
        let groups = vec![
            ParamGroup::new(layout.ranges(|e| e.shape.len() > 1)).weight_decay(cfg.weight_decay),
            ParamGroup::new(layout.ranges(|e| e.shape.len() <= 1)).weight_decay(0.0),
        ];
        let opt = train.optimizer(optimizer, groups)?;
        train.attach_optimizer(&opt)?;
        Ok(Model {
            device: device.clone(),
            graph: graph.clone(),
            loss,
            per_sample,
            train,
            opt,
            eval: None,
            sources,
            cfg,
            global_step: 0,
            epoch: 0,
            skipped_steps: 0,
            overflow_steps: 0,
        })
    }

    /// The forward graph (with the loss) this model was compiled from.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The loss value.
    pub fn loss_value(&self) -> Value {
        self.loss
    }

    /// The per-sample losses, when the loss is a loss op's reduced output (`graph.loss`).
    pub fn per_sample_value(&self) -> Option<Value> {
        self.per_sample
    }

    /// The compiled training graph.
    pub fn compiled(&self) -> &Compiled {
        &self.train
    }

    /// The optimizer (learning rates, state, counters).
    pub fn optimizer(&self) -> &Optimizer {
        &self.opt
    }

    /// Where each parameter lives in the arena (and in checkpoints).
    pub fn layout(&self) -> &ParamLayout {
        self.train
            .param_layout()
            .expect("a training compile has a layout")
    }

    /// What the compiled plan costs (dispatches, submits, bytes).
    pub fn stats(&self) -> &PlanStats {
        self.train.stats()
    }

    /// Optimizer steps taken.
    pub fn steps(&self) -> u64 {
        self.global_step
    }

    /// Mixed precision: steps skipped so far because their gradients overflowed f16 (each
    /// halved the loss scale, as PyTorch's `GradScaler` does); counted at `check_health`.
    pub fn overflow_steps(&self) -> u64 {
        self.overflow_steps
    }

    /// Mixed precision: the current loss scale (waits for the steps in flight); `None` in f32.
    pub fn loss_scale(&self) -> Result<Option<f32>> {
        if !self.train.loss_scaled() {
            return Ok(None);
        }
        Ok(Some(self.train.read_named(crate::compile::LOSS_SCALE)?[0]))
    }

    /// Steps skipped so far for non-finite values (`NonFinitePolicy::Skip`).
    pub fn skipped_steps(&self) -> u64 {
        self.skipped_steps
    }

    /// Writes `inputs` into the training graph (without stepping): `Err` for a name that is not
    /// an input, values of the wrong type or count.
    pub fn set_inputs(&self, inputs: &Inputs) -> Result<()> {
        write_inputs(&self.train, inputs, true)
    }

    /// One training step on `inputs` (every input the loss reads, by name; an input left out
    /// keeps what an earlier step wrote): forward, backward and the optimizer update, submitted
    /// at once (the next step's inputs are written while this one runs).
    pub fn step(&mut self, inputs: &Inputs) -> Result<()> {
        self.step_with(inputs, true)
    }

    /// `step`; without `strict`, columns naming no input of the graph are skipped (a dataset
    /// may fill more than a network reads: an autoencoder on a labelled set).
    pub(super) fn step_with(&mut self, inputs: &Inputs, strict: bool) -> Result<()> {
        write_inputs(&self.train, inputs, strict)?;
        self.opt.prepare_step()?;
        self.train.encode_step()?;
        self.global_step += 1;
        Ok(())
    }

    /// The loss of the last step (the mean of its values, for a loss with `Reduction::None`).
    /// Waits for the GPU, then reads what the non-finite guards found: under
    /// `NonFinitePolicy::Stop` a skipped step is an `Err` naming it.
    pub fn loss(&mut self) -> Result<f32> {
        let v = self.train.read(self.loss)?;
        self.check_health()?;
        Ok(v.iter().map(|&x| x as f64).sum::<f64>() as f32 / v.len().max(1) as f32)
    }

    /// The per-sample losses of the last step (port 1 of a loss op).
    pub fn per_sample_loss(&self) -> Result<Vec<f32>> {
        let v = self.per_sample.ok_or_else(|| {
            Error::Invalid("the loss is not a loss op's output: it has no per-sample losses".into())
        })?;
        self.train.read(v)
    }

    /// Reads a value of the last step: the loss, a parameter, or one of `ModelConfig::keep`.
    pub fn read(&self, v: Value) -> Result<Vec<f32>> {
        self.train.read(v)
    }

    /// The weights of parameter `name` (waits for the GPU).
    pub fn param(&self, name: &str) -> Result<Vec<f32>> {
        let v = self
            .graph
            .find(name)
            .ok_or_else(|| Error::Invalid(format!("no parameter named {name:?} in the model")))?;
        self.train.read(v)
    }

    /// Runs the inference twin (dropout off, batch norm on running statistics, sharing the
    /// trained weights) on `inputs` and returns each of `outputs` (values of the graph, e.g. the
    /// logits). Inputs the outputs do not need (labels) may be left out or are ignored.
    pub fn predict(&mut self, inputs: &Inputs, outputs: &[Value]) -> Result<Vec<Vec<f32>>> {
        let c = self.inference(outputs)?;
        write_inputs(c, inputs, false)?;
        c.step()?;
        outputs.iter().map(|&v| c.read(v)).collect()
    }

    /// The inference twin compiled for `outputs` (compiled once per set of outputs), with the
    /// trained weights.
    pub fn inference(&mut self, outputs: &[Value]) -> Result<&Compiled> {
        if self.eval.as_ref().is_none_or(|(o, _)| o != outputs) {
            let gi = self.graph.for_inference();
            let opts = Options {
                share: Some(&self.train),
                residency: self.cfg.residency,
                accumulator: self.cfg.accumulator,
                ..Options::default()
            };
            self.eval = Some((outputs.to_vec(), gi.compile(&self.device, outputs, &opts)?));
        }
        let c = &self.eval.as_ref().expect("compiled above").1;
        if c.is_just_in_time() {
            // Just-in-time weights are host copies: hand the twin the trained ones.
            let host = ParamStore::read_all(&self.train)?;
            for e in self.layout().entries() {
                c.set(&e.name, &host[e.range()])?;
            }
        }
        Ok(c)
    }

    /// Hands the trained weights back to their data sources (`DataSource::update`).
    pub fn sync_sources(&mut self) -> Result<()> {
        let layout = self.layout().clone();
        weights::sync_sources(&layout, &mut self.sources, &self.train)
    }

    /// Reads what the non-finite guards found since the last look: `Err` under
    /// `NonFinitePolicy::Stop`, else the number of steps skipped (with a warning on stderr).
    pub fn check_health(&mut self) -> Result<u64> {
        let h = self.train.health()?;
        if h.skipped_steps == 0 {
            return Ok(0);
        }
        self.train.reset_health()?;
        if self.train.loss_scaled() && h.only_gradients {
            self.overflow_steps += h.skipped_steps;
            return Ok(h.skipped_steps);
        }
        let (step, what) = match &h.first {
            Some(f) => (f.step, f.to_string()),
            None => (self.global_step, "a step had non-finite values".to_string()),
        };
        match self.cfg.on_non_finite {
            NonFinitePolicy::Stop => Err(Error::NonFinite {
                step,
                msg: format!(
                    "{what}. Training stopped ({} step(s) flagged since the last check). Look \
                     for NaN or infinity in the inputs, a learning rate too high, or labels out \
                     of range; check_activations names the first node, NonFinitePolicy::Skip \
                     goes on without such steps",
                    h.skipped_steps
                ),
            }),
            NonFinitePolicy::Skip => {
                eprintln!(
                    "warning: {} step(s) skipped for non-finite values; the first: {what}",
                    h.skipped_steps
                );
                self.skipped_steps += h.skipped_steps;
                Ok(h.skipped_steps)
            }
        }
    }

    /// One training step on the inputs already written, with every dispatch timed on the GPU.
    pub fn profile_step(&mut self) -> Result<crate::compile::Profile> {
        self.opt.prepare_step()?;
        let p = self.train.profile_step()?;
        self.global_step += 1;
        Ok(p)
    }

    /// The graph's persistent states (batch-norm running statistics): name and element count.
    fn persistent_states(&self) -> Vec<(String, usize)> {
        let nodes = self.train.graph.nodes.iter();
        nodes
            .filter(|n| n.op == Op::State)
            .map(|n| (n.name.clone(), n.outputs[0].0.iter().product()))
            .collect()
    }

    /// An `Err` naming the first parameter holding NaN or infinity: such weights are never
    /// saved (the guards skip poisoned updates; this catches weights set by hand).
    fn check_finite_weights(&self) -> Result<()> {
        let all = ParamStore::read_all(&self.train)?;
        for e in self.layout().entries() {
            if let Some(i) = all[e.range()].iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    step: self.global_step,
                    msg: format!(
                        "parameter {:?} holds {} at element {i}; not writing a checkpoint",
                        e.name,
                        all[e.offset + i]
                    ),
                });
            }
        }
        Ok(())
    }

    /// Writes the weights, optimizer state, step and epoch counters, the seed's random streams
    /// and the persistent states (batch-norm running statistics, bit-exact) atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.check_finite_weights()?;
        let mut metadata = BTreeMap::new();
        metadata.insert("epoch".to_string(), self.epoch.to_string());
        for (name, _) in self.persistent_states() {
            let v = self.train.read_named(&name)?;
            metadata.insert(resume::state_key(&name), resume::encode_state(&v));
        }
        let ts = TrainState {
            global_step: self.global_step,
            rng: resume::rng_streams(self.cfg.seed, self.epoch as u64, self.train.step_count()),
            metadata,
        };
        checkpoint::save(path, self.layout(), &self.train, Some(&self.opt), &ts)
    }

    /// Restores everything `save` wrote; training continues exactly where it stopped. The file
    /// is read and every entry checked before anything changes: a bad checkpoint is an `Err`
    /// naming the file and the entry, and leaves the model as it was.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let layout = self.layout().clone();
        let ck = checkpoint::read(path, &layout, Some(&self.opt))?;
        let states = self.persistent_states();
        let at = resume::ResumePoint::parse(path, ck.train_state(), self.cfg.seed, &states)?;
        ck.apply(&self.train, Some(&mut self.opt))?;
        self.epoch = at.epoch;
        self.global_step = at.global_step;
        self.train.set_step_count(at.dropout_steps);
        for (name, v) in &at.states {
            self.train
                .set(name, v)
                .map_err(|e| e.context(format!("{}: restoring state {name:?}", path.display())))?;
        }
        Ok(())
    }

    /// A table of the network: each layer's op, output shape and parameter count, then the
    /// totals and the planned memory.
    pub fn summary(&self) -> String {
        super::summary::summary(&self.graph, Some(self.train.stats()))
    }
}

/// Writes each column of `inputs` into the input of that name; with `strict`, a name that is
/// no input of the graph is an `Err` (in the inference twin, inputs it does not read are skipped).
/// Runs every step: the names of the inputs are gathered only for the error.
pub(super) fn write_inputs(c: &Compiled, inputs: &Inputs, strict: bool) -> Result<()> {
    for (name, col) in inputs.iter() {
        let input = c
            .graph
            .find(name)
            .filter(|&v| c.graph.node(v).is_ok_and(|n| n.op == Op::Input));
        let Some(v) = input else {
            if strict {
                return Err(Error::Invalid(format!(
                    "{name:?} is not an input of the graph; its inputs are {:?}",
                    c.input_names()
                )));
            }
            continue;
        };
        if !strict && !c.reads(v) {
            // (an input the compiled step does not read)
            continue;
        }
        match col {
            Column::F32(v) => c.set(name, v)?,
            Column::U32(v) => c.set_u32(name, v)?,
        }
    }
    Ok(())
}
