//! The update rules and their hyperparameters, named and validated as PyTorch's optimizers.

use super::custom;
use crate::error::{Error, Result};

/// The update rule. Hyperparameters mean what they mean in PyTorch; weight decay is per group.
#[derive(Clone, Debug, PartialEq)]
pub enum Algorithm {
    /// `torch.optim.SGD`; group weight decay is added to the gradient.
    Sgd {
        /// Momentum factor (0 = plain SGD).
        momentum: f64,
        /// Dampening of the momentum.
        dampening: f64,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// `torch.optim.Adam`; group weight decay is added to the gradient (L2).
    Adam {
        /// Decay of the first moment.
        beta1: f64,
        /// Decay of the second moment.
        beta2: f64,
        /// Added to the denominator.
        eps: f64,
        /// Use the running maximum of the second moment.
        amsgrad: bool,
    },
    /// `torch.optim.AdamW`; group weight decay is decoupled (`p *= 1 - lr·wd`).
    AdamW {
        /// Decay of the first moment.
        beta1: f64,
        /// Decay of the second moment.
        beta2: f64,
        /// Added to the denominator.
        eps: f64,
        /// Use the running maximum of the second moment.
        amsgrad: bool,
    },
    /// `torch.optim.RMSprop`; group weight decay is added to the gradient.
    RmsProp {
        /// Smoothing constant of the squared-gradient average.
        alpha: f64,
        /// Added to the denominator.
        eps: f64,
        /// Momentum factor (0 = none).
        momentum: f64,
        /// Normalise by the centred second moment (an estimate of the variance).
        centered: bool,
    },
    /// A user-written WGSL update wrapped in the arena kernel (see `custom`).
    Custom(custom::CustomUpdate),
}

impl Algorithm {
    /// Plain SGD with momentum (0 for none), no dampening.
    pub fn sgd(momentum: f64) -> Algorithm {
        Algorithm::Sgd {
            momentum,
            dampening: 0.0,
            nesterov: false,
        }
    }

    /// Adam with PyTorch's defaults (betas 0.9, 0.999; eps 1e-8).
    pub fn adam() -> Algorithm {
        Algorithm::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            amsgrad: false,
        }
    }

    /// AdamW with PyTorch's defaults (set the groups' weight decay: PyTorch's default is 0.01).
    pub fn adamw() -> Algorithm {
        Algorithm::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            amsgrad: false,
        }
    }

    /// RMSprop with PyTorch's defaults (alpha 0.99, eps 1e-8).
    pub fn rmsprop() -> Algorithm {
        Algorithm::RmsProp {
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
            centered: false,
        }
    }

    /// Short name recorded in checkpoints (`sgd`, `adam`, `adamw`, `rmsprop`, `custom:<name>`).
    pub fn name(&self) -> String {
        match self {
            Algorithm::Sgd { .. } => "sgd".into(),
            Algorithm::Adam { .. } => "adam".into(),
            Algorithm::AdamW { .. } => "adamw".into(),
            Algorithm::RmsProp { .. } => "rmsprop".into(),
            Algorithm::Custom(c) => format!("custom:{}", c.name),
        }
    }

    /// Names of the state slots, as PyTorch's optimizer `state_dict` keys them.
    pub fn slot_names(&self) -> Vec<String> {
        let v: Vec<&str> = match self {
            Algorithm::Sgd { momentum, .. } if *momentum != 0.0 => vec!["momentum_buffer"],
            Algorithm::Sgd { .. } => vec![],
            Algorithm::Adam { amsgrad, .. } | Algorithm::AdamW { amsgrad, .. } => {
                let mut v = vec!["exp_avg", "exp_avg_sq"];
                if *amsgrad {
                    v.push("max_exp_avg_sq");
                }
                v
            }
            Algorithm::RmsProp {
                momentum, centered, ..
            } => {
                let mut v = vec!["square_avg"];
                if *momentum > 0.0 {
                    v.push("momentum_buffer");
                }
                if *centered {
                    v.push("grad_avg");
                }
                v
            }
            Algorithm::Custom(c) => return c.slots.clone(),
        };
        v.into_iter().map(String::from).collect()
    }

    pub(super) fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Invalid(format!("optimizer {}: {m}", self.name())));
        let beta = |b: f64| (0.0..1.0).contains(&b);
        match *self {
            Algorithm::Sgd {
                momentum,
                dampening,
                nesterov,
            } => {
                if momentum < 0.0 || !momentum.is_finite() || !dampening.is_finite() {
                    return bad("momentum must be >= 0 and dampening finite");
                }
                if nesterov && (momentum <= 0.0 || dampening != 0.0) {
                    return bad("Nesterov momentum requires a momentum and zero dampening");
                }
            }
            Algorithm::Adam {
                beta1, beta2, eps, ..
            }
            | Algorithm::AdamW {
                beta1, beta2, eps, ..
            } => {
                if !beta(beta1) || !beta(beta2) || eps.is_nan() || eps < 0.0 {
                    return bad("betas must be in [0, 1) and eps >= 0");
                }
            }
            Algorithm::RmsProp {
                alpha,
                eps,
                momentum,
                ..
            } => {
                if alpha.is_nan() || alpha < 0.0 || eps.is_nan() || eps < 0.0 || momentum < 0.0 {
                    return bad("alpha, eps and momentum must be >= 0");
                }
            }
            Algorithm::Custom(ref c) => c.validate()?,
        }
        Ok(())
    }
}
