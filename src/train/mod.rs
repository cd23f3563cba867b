//! The training loop: epochs of shuffled batches (seeded, so a resumed run sees the same order),
//! the next batch uploaded while the GPU runs the current one (two steps in flight), evaluation
//! with the inference twin sharing the trained weights after each epoch, early stop at a target
//! accuracy, a progress bar, a metrics file and plot, and a checkpoint per epoch to resume from.

pub mod confusion;
pub mod metrics;
pub mod models;
mod resume;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::batch::LossLabels;
use crate::compile::{Compiled, Options, Residency};
use crate::data::{HarWindows, ImageSet};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, Value};
use crate::optim::{Optimizer, OptimizerConfig, ParamGroup};
use crate::weights::checkpoint::{self, TrainState};
use crate::weights::{self, DataSource, FanMode, Init, InitSource, Nonlinearity};
pub use confusion::ConfusionMatrix;
use metrics::{Metrics, Record};

/// A labelled dataset the loop can draw batches from.
pub trait Dataset {
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Shape of one sample, e.g. `[1, 28, 28]`.
    fn sample_shape(&self) -> Vec<usize>;
    /// Appends the samples at `indices` (f32, sample after sample) and their class labels.
    fn fill(&self, indices: &[usize], x: &mut Vec<f32>, y: &mut Vec<u32>) -> Result<()>;
}

impl Dataset for ImageSet {
    fn len(&self) -> usize {
        self.n
    }
    fn sample_shape(&self) -> Vec<usize> {
        vec![1, self.rows, self.cols]
    }
    fn fill(&self, indices: &[usize], x: &mut Vec<f32>, y: &mut Vec<u32>) -> Result<()> {
        let (data, labels) = self.batch(indices)?;
        x.extend(data);
        y.extend(labels.iter().map(|&l| l as u32));
        Ok(())
    }
}

impl Dataset for HarWindows {
    // `HarWindows::len` is the window length; the dataset's length is its window count `n`.
    #[allow(clippy::misnamed_getters)]
    fn len(&self) -> usize {
        self.n
    }
    fn sample_shape(&self) -> Vec<usize> {
        vec![self.channels, self.len]
    }
    fn fill(&self, indices: &[usize], x: &mut Vec<f32>, y: &mut Vec<u32>) -> Result<()> {
        // The fields are public: windows built by hand may not hold what `n` says.
        let per = self.channels.saturating_mul(self.len);
        let need = self
            .channels
            .checked_mul(self.len)
            .and_then(|p| p.checked_mul(self.n));
        if need != Some(self.x.len()) || self.labels.len() != self.n {
            return Err(Error::Invalid(format!(
                "HarWindows: {} windows of {}×{} need {} values and {} labels; they hold {} and {}",
                self.n,
                self.channels,
                self.len,
                per.saturating_mul(self.n),
                self.n,
                self.x.len(),
                self.labels.len()
            )));
        }
        for &i in indices {
            if i >= self.n {
                return Err(Error::Invalid(format!("window {i} of {}", self.n)));
            }
            x.extend_from_slice(&self.x[i * per..(i + 1) * per]);
            y.push(self.labels[i] as u32);
        }
        Ok(())
    }
}

/// A classifier graph built to the loop's conventions: inputs `image` (N, ...), `labels` u32
/// (N) and `weights` f32 (N), `logits` (N, classes), and a loss reduced with
/// `SumByNonZeroWeights` — so a partial last batch is padded with weight-0 samples and still
/// gives the exact mean over its real samples.
pub struct Classifier {
    /// The network with its loss.
    pub graph: Graph,
    /// The class scores (N, classes).
    pub logits: Value,
    /// The loss (reduced with `SumByNonZeroWeights`).
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
    /// Stop after the first epoch whose test accuracy reaches this.
    pub target_accuracy: Option<f64>,
    /// Where metrics, the plot and checkpoints go (none: nothing written).
    pub out_dir: Option<PathBuf>,
    /// Continue from `out_dir/checkpoint.safetensors` if it exists.
    pub resume: bool,
    /// Steps between loss readbacks (each one waits for the GPU).
    pub log_every: usize,
    /// Show a progress bar.
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
            target_accuracy: None,
            out_dir: None,
            resume: false,
            log_every: 50,
            progress: true,
            weight_decay: 0.0,
            just_in_time: false,
            on_non_finite: NonFinitePolicy::Stop,
            check_activations: false,
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
    /// Test accuracy, in [0, 1].
    pub accuracy: f64,
    /// Training throughput, in images per second.
    pub images_per_s: f64,
    /// Wall time of the epoch (training and evaluation).
    pub seconds: f64,
    /// Steps whose update was skipped for non-finite values (`NonFinitePolicy::Skip`).
    pub skipped_steps: u64,
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

/// The training loop: a classifier compiled for training, its optimizer, data sources and counters.
pub struct Trainer {
    device: Device,
    model: Classifier,
    train: Compiled,
    eval: Option<(usize, Compiled)>,
    opt: Optimizer,
    cfg: TrainConfig,
    /// Completed epochs.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub global_step: u64,
    /// Steps skipped for non-finite values so far (`NonFinitePolicy::Skip`).
    pub skipped_steps: u64,
    sources: Vec<Box<dyn DataSource>>,
}

impl Trainer {
    /// Compiles the training graph at `cfg.batch` (parameters and gradients in flat arenas),
    /// initialises the weights (seeded), and records the optimizer update into every step.
    pub fn new(
        device: &Device,
        model: Classifier,
        opt: OptimizerConfig,
        cfg: TrainConfig,
    ) -> Result<Trainer> {
        let graph = model.graph.clone();
        Self::with_sources(device, model, opt, cfg, move |name, shape, seed| {
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
        model: Classifier,
        opt: OptimizerConfig,
        cfg: TrainConfig,
        source: impl Fn(&str, &[usize], u64) -> Box<dyn DataSource>,
    ) -> Result<Trainer> {
        if cfg.batch == 0 || cfg.log_every == 0 {
            return Err(Error::Invalid(
                "batch size and log interval must be at least 1".into(),
            ));
        }
        let g = model.graph.with_batch(cfg.batch)?;
        let mut gt = g.clone();
        let tr = gt.training(model.loss)?;
        let mut train = gt.compile(
            device,
            &[model.loss, per_sample(model.loss)],
            &Options {
                training: Some(&tr),
                residency: cfg.residency(),
                check_activations: cfg.check_activations,
                ..Options::default()
            },
        )?;
        let layout = train
            .param_layout()
            .expect("a training compile has a layout")
            .clone();
        // Weights enter only through their data sources.
        let mut sources: Vec<Box<dyn DataSource>> = layout
            .entries()
            .iter()
            .map(|e| source(&e.name, &e.shape, cfg.seed))
            .collect();
        weights::upload(&layout, &mut sources, &train)?;
        for n in &gt.nodes {
            if n.op == Op::State {
                let v = default_init(&n.name, &n.outputs[0].0).values(
                    &n.name,
                    &n.outputs[0].0,
                    cfg.seed,
                )?;
                train.set(&n.name, &v)?;
            }
        }
        // No weight decay on biases and norm scales (rank-1 parameters).
        let groups = vec![
            ParamGroup::new(layout.ranges(|e| e.shape.len() > 1)).weight_decay(cfg.weight_decay),
            ParamGroup::new(layout.ranges(|e| e.shape.len() <= 1)).weight_decay(0.0),
        ];
        let opt = train.optimizer(opt, groups)?;
        train.attach_optimizer(&opt)?;
        Ok(Trainer {
            device: device.clone(),
            model,
            train,
            eval: None,
            opt,
            cfg,
            epoch: 0,
            global_step: 0,
            skipped_steps: 0,
            sources,
        })
    }

    /// The compiled training graph.
    pub fn compiled(&self) -> &Compiled {
        &self.train
    }

    /// Hands the trained weights back to their data sources (`DataSource::update`).
    pub fn sync_sources(&mut self) -> Result<()> {
        let layout = self.layout().clone();
        weights::sync_sources(&layout, &mut self.sources, &self.train)
    }

    /// Where each parameter lives in the arena (and in checkpoints).
    pub fn layout(&self) -> &crate::weights::ParamLayout {
        self.train
            .param_layout()
            .expect("a training compile has a layout")
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &Optimizer {
        &self.opt
    }

    /// The loss node (port 0: reduced loss; port 1: per-sample loss).
    pub fn loss_value(&self) -> Value {
        self.model.loss
    }

    /// One training step on whatever batch the inputs hold (benchmarks; the loop uses
    /// `train_epoch`): the optimizer's per-step values, then the step, returning at once.
    pub fn step_once(&mut self) -> Result<()> {
        self.opt.prepare_step()?;
        self.train.encode_step()?;
        self.global_step += 1;
        Ok(())
    }

    /// One training step (on the inputs already written) with every dispatch timed on the GPU:
    /// where a step's time goes (`Compiled::profile_step`).
    pub fn profile_step(&mut self) -> Result<crate::compile::Profile> {
        self.opt.prepare_step()?;
        let p = self.train.profile_step()?;
        self.global_step += 1;
        Ok(p)
    }

    fn checkpoint_path(&self) -> Option<PathBuf> {
        self.cfg
            .out_dir
            .as_ref()
            .map(|d| d.join("checkpoint.safetensors"))
    }

    /// Writes the weights, optimizer state, step counters, data order seed and the graph's
    /// persistent states (batch-norm running statistics, bit-exact) atomically.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        self.check_finite_weights()?;
        let mut metadata = BTreeMap::new();
        metadata.insert("epoch".to_string(), self.epoch.to_string());
        for (name, _) in self.persistent_states() {
            let v = self
                .train
                .read(self.train.graph.find(&name).ok_or_else(|| {
                    Error::Invalid(format!("state {name:?} is not a node of the graph"))
                })?)?;
            metadata.insert(resume::state_key(&name), resume::encode_state(&v));
        }
        let ts = TrainState {
            global_step: self.global_step,
            rng: resume::rng_streams(self.cfg.seed, self.epoch as u64, self.train.step_count()),
            metadata,
        };
        checkpoint::save(path, self.layout(), &self.train, Some(&self.opt), &ts)
    }

    /// An `Err` naming the first parameter holding NaN or infinity: such weights are never
    /// saved (the guards skip poisoned updates; this catches weights set by hand).
    fn check_finite_weights(&self) -> Result<()> {
        let all = crate::weights::ParamStore::read_all(&self.train)?;
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

    /// Reads what the non-finite guards found since the last look: `Err` under
    /// `NonFinitePolicy::Stop`, else the number of steps skipped (with a warning).
    fn check_health(&mut self) -> Result<u64> {
        let h = self.train.health()?;
        if h.skipped_steps == 0 {
            return Ok(0);
        }
        self.train.reset_health()?;
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
                     of range; TrainConfig::check_activations names the first node, \
                     NonFinitePolicy::Skip goes on without such steps",
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

    /// The graph's persistent states (batch-norm running statistics): name and element count.
    fn persistent_states(&self) -> Vec<(String, usize)> {
        let nodes = self.train.graph.nodes.iter();
        nodes
            .filter(|n| n.op == Op::State)
            .map(|n| (n.name.clone(), n.outputs[0].0.iter().product()))
            .collect()
    }

    /// Restores everything `save` wrote; the run continues exactly where it stopped. The file
    /// is read and every entry checked (weights, optimizer, counters, this run's seed, each
    /// state's length) before anything changes: a bad checkpoint is an `Err` naming the file
    /// and the entry, and leaves the trainer as it was.
    pub fn load(&mut self, path: &std::path::Path) -> Result<()> {
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

    /// One epoch over `data` in a seeded order; returns the mean training loss of the logged steps.
    pub fn train_epoch(
        &mut self,
        data: &dyn Dataset,
        metrics: Option<&mut Metrics>,
    ) -> Result<(f64, f64)> {
        let b = self.cfg.batch;
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            self.cfg.seed ^ (self.epoch as u64 + 1).wrapping_mul(0x9E37_79B9),
        );
        order.shuffle(&mut rng);
        let steps = data.len().div_ceil(b);
        let bar = self
            .cfg
            .progress
            .then(|| progress_bar(steps as u64, self.epoch + 1));
        let (mut losses, t0) = (Vec::new(), Instant::now());
        let mut metrics = metrics;
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for s in 0..steps {
            // Pad a partial last batch with samples from the start, at weight 0.
            let mut idx: Vec<usize> = order[s * b..((s + 1) * b).min(order.len())].to_vec();
            let real = idx.len();
            // (cycling through the data: the batch may be more than twice the data set)
            while idx.len() < b {
                idx.push(order[(idx.len() - real) % order.len()]);
            }
            x.clear();
            y.clear();
            data.fill(&idx, &mut x, &mut y)?;
            let mut w = vec![1f32; b];
            w[real..].iter_mut().for_each(|v| *v = 0.0);
            // Queue-ordered writes: the step in flight still reads the previous batch.
            self.train.set("image", &x)?;
            self.train.set_u32("labels", &y)?;
            self.train.set("weights", &w)?;
            self.opt.prepare_step()?;
            self.train.encode_step()?;
            self.global_step += 1;
            if (s + 1) % self.cfg.log_every == 0 || s + 1 == steps {
                let mut labels = LossLabels::from_indices(&y, usize::MAX)?;
                labels.weights = w;
                labels.set_loss(self.train.read(per_sample(self.model.loss))?)?;
                let loss = labels.mean_loss().unwrap_or(0.0) as f64;
                self.check_health()?;
                // (a skipped step's loss is not part of the epoch's mean)
                if loss.is_finite() {
                    losses.push(loss);
                }
                let ips = ((s + 1) * b) as f64 / t0.elapsed().as_secs_f64();
                if let Some(bar) = &bar {
                    bar.set_position(s as u64 + 1);
                    bar.set_message(format!("loss {loss:.4}  {ips:.0} img/s"));
                }
                if let Some(m) = metrics.as_deref_mut() {
                    m.log(&Record {
                        epoch: self.epoch + 1,
                        step: self.global_step,
                        loss,
                        accuracy: None,
                        images_per_s: ips,
                    })?;
                }
            }
        }
        self.train.wait_all()?;
        self.check_health()?;
        if let Some(bar) = bar {
            bar.finish();
        }
        let secs = t0.elapsed().as_secs_f64();
        self.epoch += 1;
        Ok((
            losses.iter().sum::<f64>() / losses.len().max(1) as f64,
            data.len() as f64 / secs,
        ))
    }

    /// Accuracy on `data` with the inference twin (dropout off, batch norm on running statistics)
    /// sharing the trained weights; batches of `cfg.batch`, the last one padded and trimmed.
    pub fn evaluate(&mut self, data: &dyn Dataset) -> Result<f64> {
        let (truth, predicted) = self.predict(data)?;
        let correct = truth.iter().zip(&predicted).filter(|(t, p)| t == p).count();
        Ok(correct as f64 / data.len().max(1) as f64)
    }

    /// The confusion matrix of the inference twin's predictions on `data` (as `evaluate`); `Err`
    /// if a label is not one of the classifier's classes.
    pub fn confusion(&mut self, data: &dyn Dataset) -> Result<ConfusionMatrix> {
        let (truth, predicted) = self.predict(data)?;
        ConfusionMatrix::from_predictions(self.classes(), &truth, &predicted)
    }

    /// Number of classes: the last axis of the logits.
    pub fn classes(&self) -> usize {
        self.model
            .graph
            .shape(self.model.logits)
            .ok()
            .and_then(|s| s.last())
            .copied()
            .unwrap_or(0)
    }

    /// The inference twin's predicted class (argmax of the logits, ties to the smaller class)
    /// for every sample of `data`, in order, as `(true labels, predictions)`.
    pub fn predict(&mut self, data: &dyn Dataset) -> Result<(Vec<u32>, Vec<u32>)> {
        let b = self.cfg.batch;
        if self.eval.as_ref().is_none_or(|(n, _)| *n != b) {
            let gi = self.model.graph.with_batch(b)?.for_inference();
            let opts = Options {
                share: Some(&self.train),
                residency: self.cfg.residency(),
                ..Options::default()
            };
            self.eval = Some((b, gi.compile(&self.device, &[self.model.logits], &opts)?));
        }
        let c = &self.eval.as_ref().unwrap().1;
        if c.is_just_in_time() {
            // Just-in-time weights are host copies: hand the twin the trained ones.
            let host = crate::weights::ParamStore::read_all(&self.train)?;
            for e in self.layout().entries() {
                c.set(&e.name, &host[e.range()])?;
            }
        }
        let classes = c
            .graph
            .shape(self.model.logits)?
            .last()
            .copied()
            .unwrap_or(0);
        let (mut truth, mut predicted) = (Vec::new(), Vec::new());
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for start in (0..data.len()).step_by(b) {
            let real = (data.len() - start).min(b);
            let idx: Vec<usize> = (0..b).map(|i| start + i % real).collect();
            x.clear();
            y.clear();
            data.fill(&idx, &mut x, &mut y)?;
            c.set("image", &x)?;
            c.step()?;
            let logits = c.read(self.model.logits)?;
            for i in 0..real {
                let row = &logits[i * classes..(i + 1) * classes];
                if let Some(k) = row.iter().position(|v| !v.is_finite()) {
                    return Err(Error::NonFinite {
                        step: self.global_step,
                        msg: format!(
                            "the logits of sample {} hold {} (class {k}): no prediction; the \
                             weights or the input are not finite",
                            start + i,
                            row[k]
                        ),
                    });
                }
                let best = (0..classes).fold(0, |m, k| if row[k] > row[m] { k } else { m });
                predicted.push(best as u32);
            }
            truth.extend_from_slice(&y[..real]);
        }
        Ok((truth, predicted))
    }

    /// Trains for the configured epochs (continuing from a checkpoint when `resume`), evaluating
    /// after each, logging metrics, checkpointing, and stopping early at the target accuracy.
    pub fn fit(&mut self, train: &dyn Dataset, test: &dyn Dataset) -> Result<Vec<EpochReport>> {
        let mut metrics = match &self.cfg.out_dir {
            Some(d) => Some(Metrics::open(d)?),
            None => None,
        };
        if let (true, Some(p)) = (self.cfg.resume, self.checkpoint_path())
            && p.exists()
        {
            self.load(&p)?;
            eprintln!("resumed from {} at epoch {}", p.display(), self.epoch);
        }
        let mut reports = Vec::new();
        while self.epoch < self.cfg.epochs {
            let (t, skipped_before) = (Instant::now(), self.skipped_steps);
            let (loss, ips) = self.train_epoch(train, metrics.as_mut())?;
            let accuracy = self.evaluate(test)?;
            let r = EpochReport {
                epoch: self.epoch,
                loss,
                accuracy,
                images_per_s: ips,
                seconds: t.elapsed().as_secs_f64(),
                skipped_steps: self.skipped_steps - skipped_before,
            };
            println!(
                "epoch {}: loss {:.4}, test accuracy {:.2}%, {:.0} images/s, {:.1} s",
                r.epoch,
                r.loss,
                100.0 * r.accuracy,
                r.images_per_s,
                r.seconds
            );
            if let Some(m) = metrics.as_mut() {
                m.log(&Record {
                    epoch: r.epoch,
                    step: self.global_step,
                    loss,
                    accuracy: Some(accuracy),
                    images_per_s: ips,
                })?;
            }
            if let Some(p) = self.checkpoint_path() {
                self.save(&p)?;
            }
            reports.push(r);
            if self.cfg.target_accuracy.is_some_and(|t| accuracy >= t) {
                println!(
                    "reached the target accuracy of {:.2}%",
                    100.0 * self.cfg.target_accuracy.unwrap()
                );
                break;
            }
        }
        Ok(reports)
    }
}

fn per_sample(loss: Value) -> Value {
    Value {
        node: loss.node,
        port: 1,
    }
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
