//! Where weights come from and where they go: the parameter layout of the flat arena, the
//! `DataSource` trait through which initial values enter (as MPS's
//! `MPSCNNConvolutionDataSource`), seeded initialisers, and `checkpoint` (safetensors).
//!
//! Layouts follow PyTorch so a checkpoint reads like a `state_dict`: convolution weights OIHW,
//! dense weights `(out_features, in_features)`, names such as `conv1.weight`.

use std::path::PathBuf;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::error::{Error, Result};
use crate::tensor::Tensor;

pub mod checkpoint;

pub use crate::layout::{ParamEntry, ParamLayout};

/// `(fan_in, fan_out)` of a weight as PyTorch computes them: dense `(out, in)` gives `(in, out)`;
/// convolution OIHW (or OI, OIL, OIDHW) multiplies both by the receptive field.
pub fn fans(shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::Invalid(format!(
            "fan in and fan out need a weight of at least 2 dimensions, got {shape:?}"
        )));
    }
    let receptive: usize = shape[2..].iter().product();
    Ok((shape[1] * receptive, shape[0] * receptive))
}

/// Which fan Kaiming initialisation scales by.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FanMode {
    /// Preserves the variance of the forward pass (PyTorch's default).
    FanIn,
    /// Preserves the variance of the backward pass.
    FanOut,
}

/// The nonlinearity after the layer, for its gain (`torch.nn.init.calculate_gain`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nonlinearity {
    /// Gain 1.
    Linear,
    /// Gain 1.
    Sigmoid,
    /// Gain 5/3.
    Tanh,
    /// Gain √2.
    Relu,
    /// With its negative slope (PyTorch's Kaiming default is `LeakyRelu(0.0)`, the gain of ReLU).
    LeakyRelu(f64),
    /// Gain 3/4.
    Selu,
}

impl Nonlinearity {
    /// `torch.nn.init.calculate_gain`.
    pub fn gain(self) -> f64 {
        match self {
            Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
            Nonlinearity::Tanh => 5.0 / 3.0,
            Nonlinearity::Relu => 2f64.sqrt(),
            Nonlinearity::LeakyRelu(a) => (2.0 / (1.0 + a * a)).sqrt(),
            Nonlinearity::Selu => 0.75,
        }
    }
}

/// An initialiser, with `torch.nn.init`'s formulas.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// All zeros.
    Zeros,
    /// Every element this value.
    Constant(f64),
    /// U(low, high).
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// N(mean, std²).
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// N(0, (gain / √fan)²) — He.
    KaimingNormal {
        /// Which fan the variance is scaled by.
        mode: FanMode,
        /// The nonlinearity after the layer, for the gain.
        nonlinearity: Nonlinearity,
    },
    /// U(±gain · √(3 / fan)) — He.
    KaimingUniform {
        /// Which fan the variance is scaled by.
        mode: FanMode,
        /// The nonlinearity after the layer, for the gain.
        nonlinearity: Nonlinearity,
    },
    /// N(0, (gain · √(2 / (fan_in + fan_out)))²) — Glorot.
    XavierNormal {
        /// Scale of the standard deviation.
        gain: f64,
    },
    /// U(±gain · √(6 / (fan_in + fan_out))) — Glorot.
    XavierUniform {
        /// Scale of the bound.
        gain: f64,
    },
    /// The tensor `tensor` (default: the parameter's own name) of a safetensors file.
    Checkpoint {
        /// The safetensors file.
        path: PathBuf,
        /// Tensor name in the file (default: the parameter's name).
        tensor: Option<String>,
    },
}

/// SplitMix64 finaliser: spreads a seed over all bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 64-bit FNV-1a; also the checkpoint checksum.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The generator for parameter `name` under `seed`: independent per name, and independent of the
/// order in which parameters are initialised.
pub fn param_rng(seed: u64, name: &str) -> StdRng {
    StdRng::seed_from_u64(mix(seed ^ fnv1a(name.as_bytes())))
}

impl Init {
    /// The values of parameter `name` of `shape`, deterministic in `(seed, name)` (for a given
    /// version of `rand`: `StdRng` is not promised stable across its releases).
    pub fn values(&self, name: &str, shape: &[usize], seed: u64) -> Result<Vec<f32>> {
        let n: usize = shape.iter().product();
        let named = |e: Error| Error::Invalid(format!("initialising {name:?} {shape:?}: {e}"));
        let fan = |mode: FanMode| -> Result<f64> {
            let (i, o) = fans(shape).map_err(named)?;
            Ok(match mode {
                FanMode::FanIn => i,
                FanMode::FanOut => o,
            } as f64)
        };
        let mut rng = param_rng(seed, name);
        let uniform = |rng: &mut StdRng, lo: f64, hi: f64| -> Vec<f32> {
            (0..n)
                .map(|_| (lo + (hi - lo) * rng.random::<f64>()) as f32)
                .collect()
        };
        let normal = |rng: &mut StdRng, mean: f64, std: f64| -> Vec<f32> {
            // Box–Muller, both values of each pair used.
            let mut out = Vec::with_capacity(n + 1);
            while out.len() < n {
                let u1 = 1.0 - rng.random::<f64>();
                let u2 = rng.random::<f64>();
                let r = (-2.0 * u1.ln()).sqrt();
                let th = 2.0 * std::f64::consts::PI * u2;
                out.push((mean + std * r * th.cos()) as f32);
                out.push((mean + std * r * th.sin()) as f32);
            }
            out.truncate(n);
            out
        };
        Ok(match self {
            Init::Zeros => vec![0.0; n],
            Init::Constant(c) => vec![*c as f32; n],
            Init::Uniform { low, high } => uniform(&mut rng, *low, *high),
            Init::Normal { mean, std } => normal(&mut rng, *mean, *std),
            Init::KaimingNormal { mode, nonlinearity } => {
                normal(&mut rng, 0.0, nonlinearity.gain() / fan(*mode)?.sqrt())
            }
            Init::KaimingUniform { mode, nonlinearity } => {
                let b = nonlinearity.gain() * (3.0 / fan(*mode)?).sqrt();
                uniform(&mut rng, -b, b)
            }
            Init::XavierNormal { gain } => {
                let (i, o) = fans(shape).map_err(named)?;
                normal(&mut rng, 0.0, gain * (2.0 / (i + o) as f64).sqrt())
            }
            Init::XavierUniform { gain } => {
                let (i, o) = fans(shape).map_err(named)?;
                let b = gain * (6.0 / (i + o) as f64).sqrt();
                uniform(&mut rng, -b, b)
            }
            Init::Checkpoint { path, tensor } => {
                checkpoint::read_tensor(path, tensor.as_deref().unwrap_or(name), shape)?
            }
        })
    }
}

/// Where a parameter's values come from (MPS's data source protocol). The engine calls `load`,
/// then `init` with the parameter's slice of the arena's staging copy, then `purge`; after
/// training, `sync_sources` hands the trained values to `update`.
pub trait DataSource {
    /// The parameter's name, as in the layout and in checkpoints (e.g. `conv1.weight`).
    fn label(&self) -> &str;
    /// Its shape (OIHW for convolutions, `(out, in)` for dense, like PyTorch).
    fn shape(&self) -> &[usize];
    /// Makes the values available (generate them, read a file); called again after `purge`.
    fn load(&mut self) -> Result<()>;
    /// Writes the values into `out` (as many elements as the shape holds).
    fn init(&mut self, out: &mut [f32]) -> Result<()>;
    /// Releases what `load` acquired; the values are on the GPU now.
    fn purge(&mut self);
    /// Receives the trained values, to keep or persist; a later `load` + `init` must give them.
    fn update(&mut self, trained: &[f32]) -> Result<()>;
}

/// The standard data source: an initialiser and a seed. Trained values given to `update` replace
/// the initial ones and survive `purge` (they cannot be regenerated).
#[derive(Clone, Debug)]
pub struct InitSource {
    label: String,
    shape: Vec<usize>,
    init: Init,
    seed: u64,
    data: Option<Vec<f32>>,
    trained: Option<Vec<f32>>,
}

impl InitSource {
    /// A data source initialising `label` of `shape` with `init`, seeded by `seed` and the label.
    pub fn new(label: &str, shape: &[usize], init: Init, seed: u64) -> Self {
        InitSource {
            label: label.to_string(),
            shape: shape.to_vec(),
            init,
            seed,
            data: None,
            trained: None,
        }
    }
}

impl DataSource for InitSource {
    fn label(&self) -> &str {
        &self.label
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn load(&mut self) -> Result<()> {
        if self.data.is_none() && self.trained.is_none() {
            self.data = Some(self.init.values(&self.label, &self.shape, self.seed)?);
        }
        Ok(())
    }
    fn init(&mut self, out: &mut [f32]) -> Result<()> {
        let src = self
            .trained
            .as_ref()
            .or(self.data.as_ref())
            .ok_or_else(|| Error::Invalid(format!("{:?}: init before load", self.label)))?;
        if src.len() != out.len() {
            return Err(Error::Shape {
                op: format!("data source {:?}", self.label),
                msg: format!("{} values for {} elements", src.len(), out.len()),
            });
        }
        out.copy_from_slice(src);
        Ok(())
    }
    fn purge(&mut self) {
        self.data = None;
    }
    fn update(&mut self, trained: &[f32]) -> Result<()> {
        self.trained = Some(trained.to_vec());
        Ok(())
    }
}

/// Matches sources to layout entries by label, checking that each entry has exactly one source of
/// its shape.
fn match_sources<'a>(
    layout: &'a ParamLayout,
    sources: &[Box<dyn DataSource + 'a>],
) -> Result<Vec<(&'a ParamEntry, usize)>> {
    let mut out = Vec::new();
    for e in layout.entries() {
        let hits: Vec<usize> = (0..sources.len())
            .filter(|&k| sources[k].label() == e.name)
            .collect();
        let k = match hits.as_slice() {
            [k] => *k,
            [] => {
                return Err(Error::Invalid(format!(
                    "parameter {:?} has no data source",
                    e.name
                )));
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "parameter {:?} has {} data sources",
                    e.name,
                    hits.len()
                )));
            }
        };
        if sources[k].shape() != e.shape.as_slice() {
            return Err(Error::Shape {
                op: format!("data source {:?}", e.name),
                msg: format!(
                    "source shape {:?}, layout shape {:?}",
                    sources[k].shape(),
                    e.shape
                ),
            });
        }
        out.push((e, k));
    }
    if let Some(s) = sources.iter().find(|s| layout.get(s.label()).is_none()) {
        return Err(Error::Invalid(format!(
            "data source {:?} matches no parameter of the layout",
            s.label()
        )));
    }
    Ok(out)
}

/// Where the values of a layout's arena live: a resident arena tensor on the GPU, or a compiled
/// graph (whose just-in-time weights stay on the host). Data sources and checkpoints go through it.
pub trait ParamStore {
    /// Elements of the arena (the layout's `len`).
    fn elements(&self) -> Result<usize>;
    /// The whole arena, layout order (waits for the GPU where it lives there).
    fn read_all(&self) -> Result<Vec<f32>>;
    /// Overwrites the whole arena (queue-ordered on the GPU).
    fn write_all(&self, values: &[f32]) -> Result<()>;
}

impl ParamStore for Tensor {
    fn elements(&self) -> Result<usize> {
        self.expect_dtype("parameter arena", crate::tensor::DType::F32)?;
        Ok(self.numel())
    }
    fn read_all(&self) -> Result<Vec<f32>> {
        self.to_f32()
    }
    fn write_all(&self, values: &[f32]) -> Result<()> {
        self.write_f32(values)
    }
}

pub(crate) fn check_arena(layout: &ParamLayout, params: &dyn ParamStore) -> Result<()> {
    let n = params.elements()?;
    if n != layout.len() {
        return Err(Error::Shape {
            op: "parameter arena".into(),
            msg: format!("{n} elements, the layout needs {}", layout.len()),
        });
    }
    Ok(())
}

/// Fills the parameter arena from the data sources (load, init, purge each) in one upload; the
/// gaps between parameters are zero.
pub fn upload(
    layout: &ParamLayout,
    sources: &mut [Box<dyn DataSource + '_>],
    params: &dyn ParamStore,
) -> Result<()> {
    check_arena(layout, params)?;
    let pairs = match_sources(layout, sources)?;
    let mut host = vec![0f32; layout.len()];
    for (e, k) in pairs {
        let s = &mut sources[k];
        s.load()?;
        let r = s.init(&mut host[e.range()]);
        s.purge();
        r?;
    }
    params.write_all(&host)
}

/// Reads the arena back and hands each source its trained values (`DataSource::update`).
pub fn sync_sources(
    layout: &ParamLayout,
    sources: &mut [Box<dyn DataSource + '_>],
    params: &dyn ParamStore,
) -> Result<()> {
    check_arena(layout, params)?;
    let pairs = match_sources(layout, sources)?;
    let host = params.read_all()?;
    for (e, k) in pairs {
        sources[k].update(&host[e.range()])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
