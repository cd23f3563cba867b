//! The training loop: epochs of shuffled batches (seeded, so a resumed run sees the same order),
//! the next batch uploaded while the GPU runs the current one (two steps in flight), evaluation
//! with the inference twin sharing the trained weights after each epoch (test loss and metrics),
//! early stop at a target, a progress bar, a metrics file and plot, and a checkpoint per epoch to
//! resume from. Any network trains: `Network` (graph, output, loss) with data from a `Dataset`;
//! `Graph::train` (`model.rs`) is the loop-less short path it is built on.

pub mod confusion;
mod dataset;
mod inputs;
pub mod metrics;
mod model;
pub mod models;
mod resume;
pub mod score;
mod summary;

use std::path::PathBuf;
use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::compile::{Compiled, Residency};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, Value};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::tensor::DType;
use crate::weights::{DataSource, FanMode, Init, InitSource, Nonlinearity};
pub use confusion::ConfusionMatrix;
pub use dataset::{Dataset, InMemory};
pub use inputs::{Column, Inputs};
use metrics::{Metrics, Record};
pub use model::{Model, ModelConfig, SourceFn};
pub use score::{Accuracy, Confusion, MeanAbsoluteError, MeanSquaredError, Metric, Scored};

/// A network for the loop: the graph with its loss, and the output evaluation reads (logits
/// for a classifier, the prediction or reconstruction otherwise). A loss reading a per-sample
/// weights input that the dataset does not fill gets one from the loop: a partial last batch is
/// then padded with weight-0 samples and still gives the exact mean over its real samples
/// (`Reduction::SumByNonZeroWeights`); without one, the partial last batch of an epoch is left
/// out (the order is reshuffled each epoch, so every sample is still seen).
pub struct Network {
    /// The network with its loss.
    pub graph: Graph,
    /// What evaluation reads: (N, classes) logits, or (N, ...) predictions.
    pub output: Value,
    /// The loss.
    pub loss: Value,
}

/// How to train.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per step.
    pub batch: usize,
    /// Seed of initialisation, shuffling and dropout.
    pub seed: u64,
    /// Stop after the first epoch whose first metric reaches this (at or above it, or at or
    /// below it for a metric where lower is better, such as MSE).
    pub target: Option<f64>,
    /// Where metrics, the plot and checkpoints go (none: nothing written).
    pub out_dir: Option<PathBuf>,
    /// Continue from `out_dir/checkpoint.safetensors` if it exists.
    pub resume: bool,
    /// Steps between loss readbacks (each one waits for the GPU).
    pub log_every: usize,
    /// Show a progress bar and print a line per epoch (`false`: the loop prints nothing but
    /// warnings).
    pub progress: bool,
    /// Weight decay of the weights (rank > 1); biases and norm scales get none.
    pub weight_decay: f64,
    /// Keep weights, gradients and optimizer state just-in-time
    /// (`compile::Residency::JustInTime`): peak GPU memory for them is bounded by the largest
    /// layer, at the price of host traffic and one wait per parameter per step.
    pub just_in_time: bool,
    /// What to do with a step whose loss or gradients hold NaN or infinity (its update is skipped
    /// on the GPU either way; found at the next loss readback).
    pub on_non_finite: NonFinitePolicy,
    /// Scan every node's output for NaN and infinity too (`compile::Options::check_activations`),
    /// so the error names the first node that went non-finite; one small dispatch per node.
    pub check_activations: bool,
    /// Mixed precision (`ModelConfig::precision`), with PyTorch's default loss scaler.
    pub precision: crate::compile::Precision,
    /// What the summing ops accumulate in (`ModelConfig::accumulator`).
    pub accumulator: crate::dtype::Accumulator,
}

/// What the `Trainer` does when a step's loss or gradients are NaN or infinite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NonFinitePolicy {
    /// Stop with `Error::NonFinite` naming the step, the parameter of the first non-finite
    /// gradient and (with `check_activations`) the first non-finite node. No checkpoint is
    /// written after it.
    #[default]
    Stop,
    /// Skip the step's update, count it (`EpochReport::skipped_steps`), warn, and go on.
    Skip,
}

impl TrainConfig {
    /// Where the compiled graphs keep the weights (`just_in_time`).
    fn residency(&self) -> Residency {
        if self.just_in_time {
            Residency::JustInTime
        } else {
            Residency::Resident
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 5,
            batch: 64,
            seed: 1,
            target: None,
            out_dir: None,
            resume: false,
            log_every: 50,
            progress: true,
            weight_decay: 0.0,
            just_in_time: false,
            on_non_finite: NonFinitePolicy::Stop,
            check_activations: false,
            precision: crate::compile::Precision::F32,
            accumulator: crate::dtype::Accumulator::F32,
        }
    }
}

/// One epoch's outcome.
#[derive(Clone, Debug)]
pub struct EpochReport {
    /// Epochs completed, this one included.
    pub epoch: usize,
    /// Mean of the training losses read back during the epoch.
    pub loss: f64,
    /// Mean loss over the test set (inference twin), where the loss has per-sample values.
    pub test_loss: Option<f64>,
    /// Each metric's value over the test set, by name (`"accuracy"` in [0, 1], `"mse"`, ...).
    pub scores: Vec<(String, f64)>,
    /// Training throughput, in samples per second.
    pub images_per_s: f64,
    /// Wall time of the epoch (training and evaluation).
    pub seconds: f64,
    /// Steps whose update was skipped for non-finite values (`NonFinitePolicy::Skip`).
    pub skipped_steps: u64,
}

impl EpochReport {
    /// The metric `name`'s value, if measured.
    pub fn score(&self, name: &str) -> Option<f64> {
        self.scores.iter().find(|(n, _)| n == name).map(|s| s.1)
    }

    /// The test accuracy, for a classifier.
    pub fn accuracy(&self) -> Option<f64> {
        self.score("accuracy")
    }
}

/// What evaluation measured on a dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean loss over the samples (where the loss has per-sample values).
    pub loss: Option<f64>,
    /// Each metric's value, by name.
    pub scores: Vec<(String, f64)>,
}

impl Evaluation {
    /// The metric `name`'s value, if measured.
    pub fn score(&self, name: &str) -> Option<f64> {
        self.scores.iter().find(|(n, _)| n == name).map(|s| s.1)
    }
}

/// The default initialisation: He (Kaiming) uniform for weights of rank > 1, as PyTorch's
/// layers; ones for norm scales and running variances; zeros for biases and running means.
pub fn default_init(name: &str, shape: &[usize]) -> Init {
    if name.ends_with(".weight") && shape.len() > 1 {
        Init::KaimingUniform {
            mode: FanMode::FanIn,
            nonlinearity: Nonlinearity::Relu,
        }
    } else if name.ends_with(".weight") || name.ends_with("running_var") {
        Init::Constant(1.0)
    } else {
        Init::Zeros
    }
}

/// [`default_init`] for a parameter of `graph`, knowing its layer: recurrent weights and biases
/// (`<layer>.weight_ih_l0`, `bias_hh_l1_reverse`, ...) are uniform in ±1/√H as PyTorch's
/// `nn.RNN`/`nn.LSTM`/`nn.GRU`, H read from the layer's `weight_hh` (G·H, H).
pub fn default_init_in(graph: &Graph, name: &str, shape: &[usize]) -> Init {
    let recurrent = name.rsplit_once('.').and_then(|(layer, param)| {
        let key = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
            .iter()
            .find_map(|p| param.strip_prefix(p))
            .filter(|k| k.starts_with("_l"))?;
        let hh = graph.find(&format!("{layer}.weight_hh{key}"))?;
        let hidden = *graph.shape(hh).ok()?.get(1)?;
        Some(hidden)
    });
    match recurrent {
        Some(h) if h > 0 => {
            let k = 1.0 / (h as f64).sqrt();
            Init::Uniform { low: -k, high: k }
        }
        _ => default_init(name, shape),
    }
}

/// The training loop over a [`Model`]: epochs of a [`Dataset`], evaluation, checkpoints.
pub struct Trainer {
    model: Model,
    output: Value,
    cfg: TrainConfig,
    metrics: Vec<Box<dyn Metric>>,
    /// The loss's per-sample weights input, when the loop fills it (padding at weight 0).
    weights_input: Option<String>,
    /// The u32 input the loss reads (class indices), for classifiers.
    labels_input: Option<String>,
}

impl Trainer {
    /// Compiles `net` for training at `cfg.batch`, initialises the weights (seeded, PyTorch's
    /// defaults: `default_init_in`) and attaches the optimizer. A classifier (a loss reading
    /// u32 labels, (N, classes) output) is scored by accuracy; `with_metric` adds others.
    pub fn new(
        device: &Device,
        net: Network,
        opt: OptimizerConfig,
        cfg: TrainConfig,
    ) -> Result<Trainer> {
        let graph = net.graph.clone();
        Self::with_sources(device, net, opt, cfg, move |name, shape, seed| {
            Box::new(InitSource::new(
                name,
                shape,
                default_init_in(&graph, name, shape),
                seed,
            ))
        })
    }

    /// Like `new`, with the weights entering through data sources of the caller's making (MPS's
    /// data source provider): `source(name, shape, seed)` is asked for one per parameter.
    pub fn with_sources(
        device: &Device,
        net: Network,
        opt: OptimizerConfig,
        cfg: TrainConfig,
        source: impl Fn(&str, &[usize], u64) -> Box<dyn DataSource>,
    ) -> Result<Trainer> {
        if cfg.batch == 0 || cfg.log_every == 0 {
            return Err(Error::Invalid(
                "batch size and log interval must be at least 1".into(),
            ));
        }
        net.graph
            .output(net.output)
            .map_err(|e| e.context("Network::output"))?;
        let g = net.graph.with_batch(cfg.batch)?;
        let mc = ModelConfig {
            seed: cfg.seed,
            weight_decay: cfg.weight_decay,
            residency: cfg.residency(),
            check_activations: cfg.check_activations,
            on_non_finite: cfg.on_non_finite,
            keep: Vec::new(),
            precision: cfg.precision,
            accumulator: cfg.accumulator,
            ..ModelConfig::default()
        };
        let model = Model::with_sources(device, &g, net.loss, opt, mc, &source)?;
        let loss_node = g.node(net.loss)?;
        let input_of = |port: usize| {
            let v = *loss_node.inputs.get(port)?;
            let n = g.node(v).ok()?;
            (n.op == Op::Input).then(|| (n.name.clone(), n.outputs[0].1))
        };
        // Per-sample weights count only where the loop reads per-sample losses.
        let is_loss_op = model.per_sample_value().is_some();
        let labels_input = input_of(1)
            .filter(|(_, t)| *t == DType::U32)
            .map(|(n, _)| n);
        let weights_input = input_of(2)
            .filter(|(_, t)| is_loss_op && *t == DType::F32)
            .map(|(n, _)| n);
        let mut metrics: Vec<Box<dyn Metric>> = Vec::new();
        if let Some(l) = &labels_input
            && g.shape(net.output)?.len() == 2
        {
            metrics.push(Box::new(Accuracy::new(l)));
        }
        Ok(Trainer {
            model,
            output: net.output,
            cfg,
            metrics,
            weights_input,
            labels_input,
        })
    }

    /// Adds a metric measured after every epoch (the first one decides `TrainConfig::target`).
    pub fn with_metric(mut self, m: Box<dyn Metric>) -> Trainer {
        self.metrics.push(m);
        self
    }

    /// Replaces the metrics.
    pub fn set_metrics(&mut self, metrics: Vec<Box<dyn Metric>>) {
        self.metrics = metrics;
    }

    /// The model being trained (its optimizer, layout, summary, checkpoints).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model, mutably.
    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    /// The compiled training graph.
    pub fn compiled(&self) -> &Compiled {
        self.model.compiled()
    }

    /// Where each parameter lives in the arena (and in checkpoints).
    pub fn layout(&self) -> &crate::weights::ParamLayout {
        self.model.layout()
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &Optimizer {
        self.model.optimizer()
    }

    /// The loss node (port 0: reduced loss; port 1: per-sample loss).
    pub fn loss_value(&self) -> Value {
        self.model.loss_value()
    }

    /// Completed epochs.
    pub fn epoch(&self) -> usize {
        self.model.epoch
    }

    /// Optimizer steps taken.
    pub fn global_step(&self) -> u64 {
        self.model.global_step
    }

    /// Steps skipped so far for non-finite values (`NonFinitePolicy::Skip`).
    pub fn skipped_steps(&self) -> u64 {
        self.model.skipped_steps
    }

    /// Hands the trained weights back to their data sources (`DataSource::update`).
    pub fn sync_sources(&mut self) -> Result<()> {
        self.model.sync_sources()
    }

    /// One training step on whatever batch the inputs hold (benchmarks; the loop uses
    /// `train_epoch`): the optimizer's per-step values, then the step, returning at once.
    pub fn step_once(&mut self) -> Result<()> {
        self.model.step(&Inputs::new())
    }

    /// One training step (on the inputs already written) with every dispatch timed on the GPU.
    pub fn profile_step(&mut self) -> Result<crate::compile::Profile> {
        self.model.profile_step()
    }

    fn checkpoint_path(&self) -> Option<PathBuf> {
        self.cfg
            .out_dir
            .as_ref()
            .map(|d| d.join("checkpoint.safetensors"))
    }

    /// Writes the weights, optimizer state, counters, random streams and persistent states
    /// atomically (`Model::save`).
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        self.model.save(path)
    }

    /// Restores everything `save` wrote, all or nothing (`Model::load`).
    pub fn load(&mut self, path: &std::path::Path) -> Result<()> {
        self.model.load(path)
    }

    /// Fills `batch` with the samples at `idx` (the first `real` are real), and the per-sample
    /// weights (1, then 0 for the padding) when the loop owns them.
    fn fill(
        &self,
        data: &dyn Dataset,
        idx: &[usize],
        real: usize,
        batch: &mut Inputs,
    ) -> Result<()> {
        batch.clear();
        data.fill(idx, batch)?;
        if let Some(w) = &self.weights_input {
            let col = batch.f32_mut(w)?;
            if col.is_empty() {
                col.resize(idx.len(), 1.0);
            }
            // Padding never counts, whoever filled the weights.
            col.iter_mut().skip(real).for_each(|v| *v = 0.0);
        }
        Ok(())
    }

    /// The mean loss of the step just written, over its real samples (exact with per-sample
    /// weights; else the loss's own reduction). Waits for the GPU and checks the guards.
    fn step_loss(&mut self, batch: &Inputs) -> Result<f64> {
        let w = self.weights_input.as_ref().and_then(|w| batch.get_f32(w));
        let loss = match w {
            Some(w) => {
                let per = self.model.per_sample_loss()?;
                self.model.check_health()?;
                let total: f64 = w.iter().map(|&x| x as f64).sum();
                let s: f64 = per.iter().map(|&x| x as f64).sum();
                if total > 0.0 { s / total } else { 0.0 }
            }
            None => self.model.loss()? as f64,
        };
        Ok(loss)
    }

    /// One epoch over `data` in a seeded order; returns the mean training loss of the logged
    /// steps and the samples per second.
    pub fn train_epoch(
        &mut self,
        data: &dyn Dataset,
        metrics: Option<&mut Metrics>,
    ) -> Result<(f64, f64)> {
        let b = self.cfg.batch;
        if data.is_empty() {
            return Err(Error::Invalid("the training set is empty".into()));
        }
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            self.cfg.seed ^ (self.model.epoch as u64 + 1).wrapping_mul(0x9E37_79B9),
        );
        order.shuffle(&mut rng);
        // Without per-sample weights a padded batch would count its padding: full batches only
        // (at least one, cycling through a set smaller than a batch).
        let steps = if self.weights_input.is_some() {
            data.len().div_ceil(b)
        } else {
            (data.len() / b).max(1)
        };
        let bar = self
            .cfg
            .progress
            .then(|| progress_bar(steps as u64, self.model.epoch + 1));
        let (mut losses, t0) = (Vec::new(), Instant::now());
        let mut metrics = metrics;
        let mut batch = Inputs::new();
        for s in 0..steps {
            let mut idx: Vec<usize> = order[s * b..((s + 1) * b).min(order.len())].to_vec();
            let real = idx.len();
            // (cycling through the data: the batch may be more than twice the data set)
            while idx.len() < b {
                idx.push(order[(idx.len() - real) % order.len()]);
            }
            // Queue-ordered writes: the step in flight still reads the previous batch.
            self.fill(data, &idx, real, &mut batch)?;
            self.model.step_with(&batch, false)?;
            if (s + 1) % self.cfg.log_every == 0 || s + 1 == steps {
                let loss = self.step_loss(&batch)?;
                // (a skipped step's loss is not part of the epoch's mean)
                if loss.is_finite() {
                    losses.push(loss);
                }
                let ips = ((s + 1) * b) as f64 / t0.elapsed().as_secs_f64();
                if let Some(bar) = &bar {
                    bar.set_position(s as u64 + 1);
                    bar.set_message(format!("loss {loss:.4}  {ips:.0} samples/s"));
                }
                if let Some(m) = metrics.as_deref_mut() {
                    m.log(&Record {
                        epoch: self.model.epoch + 1,
                        step: self.model.global_step,
                        loss,
                        accuracy: None,
                        images_per_s: ips,
                    })?;
                }
            }
        }
        self.model.compiled().wait_all()?;
        self.model.check_health()?;
        if let Some(bar) = bar {
            bar.finish();
        }
        let secs = t0.elapsed().as_secs_f64();
        self.model.epoch += 1;
        Ok((
            losses.iter().sum::<f64>() / losses.len().max(1) as f64,
            (steps * b) as f64 / secs,
        ))
    }

    /// Runs the inference twin over `data` in batches of `cfg.batch` (the last one padded and
    /// trimmed) and hands every batch's output to `visit(output, width, first sample, real
    /// samples, batch)`; returns
    /// the mean per-sample loss where the loss has one.
    fn each_batch(
        &mut self,
        data: &dyn Dataset,
        mut visit: impl FnMut(&[f32], usize, usize, usize, &Inputs) -> Result<()>,
    ) -> Result<Option<f64>> {
        let b = self.cfg.batch;
        let outs: Vec<Value> = std::iter::once(self.output)
            .chain(self.model.per_sample_value())
            .collect();
        let width: usize = self.model.graph().shape(self.output)?[1..].iter().product();
        let (mut batch, mut total, mut count) = (Inputs::new(), 0f64, 0usize);
        for start in (0..data.len()).step_by(b) {
            let real = (data.len() - start).min(b);
            let idx: Vec<usize> = (0..b).map(|i| start + i % real).collect();
            self.fill(data, &idx, real, &mut batch)?;
            let got = self.model.predict(&batch, &outs)?;
            let out = got[0].get(..real * width).ok_or_else(|| {
                Error::Invalid("the output holds fewer values than the batch".into())
            })?;
            // (a non-finite output found by the visitor happened after this many steps)
            let step = self.model.global_step;
            visit(out, width, start, real, &batch).map_err(|e| match e {
                Error::NonFinite { msg, .. } => Error::NonFinite { step, msg },
                e => e,
            })?;
            if let Some(per) = got.get(1) {
                total += per[..real].iter().map(|&x| x as f64).sum::<f64>();
                count += real;
            }
        }
        if count > 0 && !total.is_finite() {
            return Err(Error::NonFinite {
                step: self.model.global_step,
                msg: "the test loss is not finite: the weights or the inputs are not finite".into(),
            });
        }
        Ok((count > 0).then(|| total / count as f64))
    }

    /// The test loss and every metric on `data`, with the inference twin (dropout off, batch
    /// norm on running statistics) sharing the trained weights.
    pub fn evaluate(&mut self, data: &dyn Dataset) -> Result<Evaluation> {
        let mut metrics = std::mem::take(&mut self.metrics);
        metrics.iter_mut().for_each(|m| m.reset());
        let batch = self.cfg.batch;
        let r = self.each_batch(data, |output, width, first, rows, inputs| {
            let scored = Scored {
                output,
                width,
                first,
                rows,
                batch,
                inputs,
            };
            metrics.iter_mut().try_for_each(|m| m.update(&scored))
        });
        let scores = metrics.iter().map(|m| (m.name(), m.value())).collect();
        self.metrics = metrics;
        Ok(Evaluation { loss: r?, scores })
    }

    /// The share of `data` classified right (a classifier: a loss reading u32 labels).
    pub fn accuracy(&mut self, data: &dyn Dataset) -> Result<f64> {
        let (truth, predicted) = self.predict(data)?;
        let correct = truth.iter().zip(&predicted).filter(|(t, p)| t == p).count();
        Ok(correct as f64 / data.len().max(1) as f64)
    }

    /// The confusion matrix of the inference twin's predictions on `data`; `Err` if a label is
    /// not one of the classifier's classes.
    pub fn confusion(&mut self, data: &dyn Dataset) -> Result<ConfusionMatrix> {
        let (truth, predicted) = self.predict(data)?;
        ConfusionMatrix::from_predictions(self.classes(), &truth, &predicted)
    }

    /// Number of classes: the last axis of the output.
    pub fn classes(&self) -> usize {
        let s = self.model.graph().shape(self.output).ok();
        s.and_then(|s| s.last()).copied().unwrap_or(0)
    }

    /// The output of the inference twin for every sample of `data`, in order, sample after
    /// sample (`classes` or the prediction's size per sample).
    pub fn outputs(&mut self, data: &dyn Dataset) -> Result<Vec<f32>> {
        let mut all = Vec::new();
        self.each_batch(data, |out, _, _, _, _| {
            all.extend_from_slice(out);
            Ok(())
        })?;
        Ok(all)
    }

    /// A classifier's predicted class (argmax of the output, ties to the smaller class) for
    /// every sample of `data`, in order, as `(true labels, predictions)`.
    pub fn predict(&mut self, data: &dyn Dataset) -> Result<(Vec<u32>, Vec<u32>)> {
        let labels = self.labels_input.clone().ok_or_else(|| {
            Error::Invalid(
                "predict: the loss reads no class-index (u32) input; use outputs() for a \
                 network that is not a classifier"
                    .into(),
            )
        })?;
        let (mut truth, mut predicted) = (Vec::new(), Vec::new());
        self.each_batch(data, |out, width, first, rows, batch| {
            let y = batch.get_u32(&labels).ok_or_else(|| {
                Error::Invalid(format!("the dataset filled no labels input {labels:?}"))
            })?;
            predicted.extend(score::argmax_rows(out, width, first, rows)?);
            truth.extend_from_slice(&y[..rows]);
            Ok(())
        })?;
        Ok((truth, predicted))
    }

    /// Trains for the configured epochs (continuing from a checkpoint when `resume`), evaluating
    /// after each, logging metrics, checkpointing, and stopping early at the target.
    pub fn fit(&mut self, train: &dyn Dataset, test: &dyn Dataset) -> Result<Vec<EpochReport>> {
        let resume_from = self
            .checkpoint_path()
            .filter(|p| self.cfg.resume && p.exists());
        let mut metrics = match &self.cfg.out_dir {
            // A fresh run starts a fresh metrics file; a resumed one continues it.
            Some(d) => Some(Metrics::open(d, resume_from.is_some())?),
            None => None,
        };
        if let Some(p) = resume_from {
            self.load(&p)?;
            if self.cfg.progress {
                eprintln!("resumed from {} at epoch {}", p.display(), self.model.epoch);
            }
        }
        let mut reports = Vec::new();
        while self.model.epoch < self.cfg.epochs {
            let (t, skipped_before) = (Instant::now(), self.model.skipped_steps);
            let (loss, ips) = self.train_epoch(train, metrics.as_mut())?;
            let ev = self.evaluate(test)?;
            let r = EpochReport {
                epoch: self.model.epoch,
                loss,
                test_loss: ev.loss,
                scores: ev.scores,
                images_per_s: ips,
                seconds: t.elapsed().as_secs_f64(),
                skipped_steps: self.model.skipped_steps - skipped_before,
            };
            if self.cfg.progress {
                println!("{}", epoch_line(&r));
            }
            if let Some(m) = metrics.as_mut() {
                m.log(&Record {
                    epoch: r.epoch,
                    step: self.model.global_step,
                    loss,
                    accuracy: r.scores.first().map(|s| s.1).or(r.test_loss),
                    images_per_s: ips,
                })?;
            }
            if let Some(p) = self.checkpoint_path() {
                self.save(&p)?;
            }
            let reached = match (self.cfg.target, self.metrics.first(), r.scores.first()) {
                (Some(t), Some(m), Some((_, v))) if m.higher_is_better() => *v >= t,
                (Some(t), Some(_), Some((_, v))) => *v <= t,
                (Some(t), None, _) => r.test_loss.is_some_and(|l| l <= t),
                _ => false,
            };
            reports.push(r);
            if reached {
                if self.cfg.progress {
                    println!("reached the target of {}", self.cfg.target.unwrap_or(0.0));
                }
                break;
            }
        }
        Ok(reports)
    }
}

/// "epoch 3: loss 0.0825, test loss 0.0912, accuracy 97.25%, 103 samples/s, 82.9 s"
fn epoch_line(r: &EpochReport) -> String {
    let mut s = format!("epoch {}: loss {:.4}", r.epoch, r.loss);
    if let Some(l) = r.test_loss {
        s += &format!(", test loss {l:.4}");
    }
    for (name, v) in &r.scores {
        if name.contains("accuracy") {
            s += &format!(", test {name} {:.2}%", 100.0 * v);
        } else {
            s += &format!(", test {name} {v:.4}");
        }
    }
    s + &format!(", {:.0} samples/s, {:.1} s", r.images_per_s, r.seconds)
}

fn progress_bar(steps: u64, epoch: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(steps);
    let style = indicatif::ProgressStyle::with_template(&format!(
        "epoch {epoch} [{{bar:30}}] {{pos}}/{{len}} {{msg}}"
    ))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar
}
