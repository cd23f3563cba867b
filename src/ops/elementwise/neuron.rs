//! Neuron (elementwise activation) descriptors, named after MPS's `MPSCNNNeuron*` family.
//!
//! Gradients at kinks are fixed by convention so GPU and CPU agree bit-for-bit on the branch:
//! `Relu` at 0 → 0; `LeakyRelu` at 0 → `alpha`; `ReluN` at 0 and at `n` → 0; `HardSigmoid` where
//! `a·x+b` is exactly 0 or 1 → 0; `Abs` at 0 → 0; `Elu` at 0 → `alpha` (the `x <= 0` branch).

use crate::error::{Result, attr_err};

/// An elementwise activation `y = f(x)`. Parameters are f32 because that is what the GPU uniform
/// holds; the reference widens them to f64.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Neuron {
    /// `max(x, 0)`.
    Relu,
    /// `x` for `x > 0`, else `alpha·x`.
    LeakyRelu { alpha: f32 },
    /// `clamp(x, 0, n)` (ReLU6 is `n = 6`).
    ReluN { n: f32 },
    /// `x` for `x > 0`, else `alpha·(exp(x) − 1)`.
    Elu { alpha: f32 },
    /// `1 / (1 + exp(−x))`.
    Sigmoid,
    /// `clamp(a·x + b, 0, 1)`; MPS's default is `a = 0.2, b = 0.5` ([`Neuron::HARD_SIGMOID`]).
    HardSigmoid { a: f32, b: f32 },
    /// `tanh(x)`.
    Tanh,
    /// `ln(1 + exp(x))`, computed as `max(x, 0) + ln1p(exp(−|x|))` so it never overflows.
    Softplus,
    /// `x / (1 + |x|)`.
    Softsign,
    /// `x·Φ(x)` with the exact erf form, or with `tanh_approx` the GPT-2 approximation
    /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
    Gelu { tanh_approx: bool },
    /// `|x|`.
    Abs,
    /// `exp(x)`.
    Exp,
    /// `ln(x)`: NaN / −inf outside `x > 0`, as on the GPU.
    Log,
    /// `a·x + b`.
    Linear { a: f32, b: f32 },
}

impl Neuron {
    /// MPS's default hard sigmoid.
    pub const HARD_SIGMOID: Neuron = Neuron::HardSigmoid { a: 0.2, b: 0.5 };
    /// Exact (erf) GELU, PyTorch's default.
    pub const GELU: Neuron = Neuron::Gelu { tanh_approx: false };

    /// Short lowercase name, used in errors and kernel names.
    pub fn name(&self) -> &'static str {
        match self {
            Neuron::Relu => "relu",
            Neuron::LeakyRelu { .. } => "leaky_relu",
            Neuron::ReluN { .. } => "relu_n",
            Neuron::Elu { .. } => "elu",
            Neuron::Sigmoid => "sigmoid",
            Neuron::HardSigmoid { .. } => "hard_sigmoid",
            Neuron::Tanh => "tanh",
            Neuron::Softplus => "softplus",
            Neuron::Softsign => "softsign",
            Neuron::Gelu { .. } => "gelu",
            Neuron::Abs => "abs",
            Neuron::Exp => "exp",
            Neuron::Log => "log",
            Neuron::Linear { .. } => "linear",
        }
    }

    /// Parameters must be finite; `ReluN` needs `n > 0` (else it is a constant 0).
    pub fn validate(&self) -> Result<()> {
        let params: &[(&str, f32)] = match self {
            Neuron::LeakyRelu { alpha } | Neuron::Elu { alpha } => &[("alpha", *alpha)],
            Neuron::ReluN { n } => &[("n", *n)],
            Neuron::HardSigmoid { a, b } | Neuron::Linear { a, b } => &[("a", *a), ("b", *b)],
            _ => &[],
        };
        for (name, v) in params {
            if !v.is_finite() {
                return attr_err(self.name(), format!("{name} = {v} is not finite"));
            }
        }
        if let Neuron::ReluN { n } = self
            && *n <= 0.0
        {
            return attr_err(self.name(), format!("n = {n} must be > 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_bad_params() {
        let e = Neuron::ReluN { n: 0.0 }.validate().unwrap_err().to_string();
        assert!(e.contains("relu_n") && e.contains("n = 0"), "{e}");
        let e = Neuron::LeakyRelu { alpha: f32::NAN }
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("leaky_relu") && e.contains("alpha = NaN"), "{e}");
        assert!(Neuron::HARD_SIGMOID.validate().is_ok());
    }
}
