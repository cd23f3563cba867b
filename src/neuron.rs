//! The neurons (unary ops) every family can apply: one enum, its op codes as the WGSL reads them
//! (`wgsl/neuron.wgsl`), and what its derivative reads. Elementwise kernels run them alone or
//! chained; GEMM and norm epilogues run one fused.

use crate::ops::elementwise::neuron::Neuron;

/// Unary ops. The discriminant order is the op code in `elementwise.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    Relu,
    /// x if x > 0 else alpha·x
    LeakyRelu {
        alpha: f32,
    },
    /// clamp(x, 0, n)
    ReluN {
        n: f32,
    },
    Elu {
        alpha: f32,
    },
    Sigmoid,
    /// clamp(a·x + b, 0, 1)
    HardSigmoid {
        a: f32,
        b: f32,
    },
    Tanh,
    Softplus,
    Softsign,
    /// Exact (erf) GELU.
    Gelu,
    Abs,
    Exp,
    Log,
    /// a·x + b
    Linear {
        a: f32,
        b: f32,
    },
    Neg,
    Sqrt,
    Square,
    Recip,
    /// GELU's tanh approximation `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (GPT-2).
    GeluTanh,
}

/// Pipeline constants that fix a kernel's fused neuron (`POST_OP` in `wgsl/neuron.wgsl`) so the
/// compiler drops the other neurons' branches: with the generic switch the GEMM epilogue cost
/// ~9 % of an MNIST training step on an H100 (BENCHMARKS.md). None without a post-op.
pub fn post_constants(post: Option<UnaryOp>) -> Vec<(&'static str, f64)> {
    post.map(|u| vec![("POST_OP", u.code().0 as f64)])
        .unwrap_or_default()
}

impl UnaryOp {
    /// (op code, parameter a, parameter b) as the shader reads them.
    pub fn code(self) -> (u32, f32, f32) {
        use UnaryOp::*;
        match self {
            Relu => (0, 0.0, 0.0),
            LeakyRelu { alpha } => (1, alpha, 0.0),
            ReluN { n } => (2, n, 0.0),
            Elu { alpha } => (3, alpha, 0.0),
            Sigmoid => (4, 0.0, 0.0),
            HardSigmoid { a, b } => (5, a, b),
            Tanh => (6, 0.0, 0.0),
            Softplus => (7, 0.0, 0.0),
            Softsign => (8, 0.0, 0.0),
            Gelu => (9, 0.0, 0.0),
            Abs => (10, 0.0, 0.0),
            Exp => (11, 0.0, 0.0),
            Log => (12, 0.0, 0.0),
            Linear { a, b } => (13, a, b),
            Neg => (14, 0.0, 0.0),
            Sqrt => (15, 0.0, 0.0),
            Square => (16, 0.0, 0.0),
            Recip => (17, 0.0, 0.0),
            GeluTanh => (18, 0.0, 0.0),
        }
    }

    /// Every variant with typical parameters, for tests.
    pub fn all() -> Vec<UnaryOp> {
        use UnaryOp::*;
        vec![
            Relu,
            LeakyRelu { alpha: 0.1 },
            ReluN { n: 0.5 },
            Elu { alpha: 1.3 },
            Sigmoid,
            HardSigmoid { a: 0.2, b: 0.5 },
            Tanh,
            Softplus,
            Softsign,
            Gelu,
            Abs,
            Exp,
            Log,
            Linear { a: 1.5, b: -0.25 },
            Neg,
            Sqrt,
            Square,
            Recip,
            GeluTanh,
        ]
    }
}

/// What the vjp rule of a unary op reads besides `dy` ([`UnaryOp::grad_from`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GradFrom {
    /// The derivative is a constant: `dx` is this unary op applied to `dy` (reads neither x nor y).
    Nothing(UnaryOp),
    /// The derivative is a function of the output y: `Op::UnaryGradOut` reads (y, dy), so the
    /// input x stays free to be fused into its producer (conv/FC + bias + ReLU in training).
    Output,
    /// The derivative needs the input x: `Op::UnaryGrad` reads (x, dy).
    Input,
}

impl UnaryOp {
    /// Which value the gradient reads. Output-based only where `f'(x)` is an exact function of
    /// `y = f(x)` with the same kink conventions as the x-based gradient (ReLU at 0 → 0, leaky
    /// ReLU at 0 → alpha, ReLU-n at 0 and n → 0, hard sigmoid at its corners → 0, ELU at 0 →
    /// alpha) and no f32 precision loss beyond what the x-based kernel already has:
    /// - ReLU `y > 0`; leaky ReLU (alpha ≥ 0) `y > 0 ? 1 : alpha`; ReLU-n (n > 0) `0 < y < n`;
    ///   hard sigmoid `0 < y < 1 ? a : 0` (its `0 < a·x + b < 1`). `y > 0 ⇔ x > 0` needs
    ///   alpha ≥ 0: with alpha < 0 (or NaN) the negative side maps to y > 0, so those stay x-based;
    ///   so does ReLU-n with n ≤ 0;
    /// - ELU (alpha ≥ 0) `y > 0 ? 1 : y + alpha` (PyTorch's `is_result` form; absolute error at
    ///   most one ulp of alpha where `alpha·eˣ` is tiny);
    /// - sigmoid `y(1 − y)`, tanh `1 − y²` (what the x-based kernel computes from y anyway),
    ///   exp `y`, sqrt `0.5 / y`, reciprocal `−y²`.
    ///
    /// Not output-based: softplus (`1 − e^(−y)`) and softsign (`(1 − |y|)²`) are exact in exact
    /// arithmetic but cancel in f32 in the tails where the x-based forms are accurate; log
    /// (`e^(−y)`) amplifies y's rounding by |y|; GELU (both), abs and square are not injective,
    /// so y does not determine the derivative. Linear and neg have constant derivatives.
    pub fn grad_from(self) -> GradFrom {
        use UnaryOp::*;
        match self {
            Linear { a, .. } => GradFrom::Nothing(Linear { a, b: 0.0 }),
            Neg => GradFrom::Nothing(Neg),
            Relu | Sigmoid | HardSigmoid { .. } | Tanh | Exp | Sqrt | Recip => GradFrom::Output,
            LeakyRelu { alpha } | Elu { alpha } if alpha >= 0.0 => GradFrom::Output,
            ReluN { n } if n > 0.0 => GradFrom::Output,
            _ => GradFrom::Input,
        }
    }
}

/// Every MPS neuron is one of the unary kernels, so the graph needs no neuron shader of its own.
impl From<&Neuron> for UnaryOp {
    fn from(n: &Neuron) -> UnaryOp {
        match *n {
            Neuron::Relu => UnaryOp::Relu,
            Neuron::LeakyRelu { alpha } => UnaryOp::LeakyRelu { alpha },
            Neuron::ReluN { n } => UnaryOp::ReluN { n },
            Neuron::Elu { alpha } => UnaryOp::Elu { alpha },
            Neuron::Sigmoid => UnaryOp::Sigmoid,
            Neuron::HardSigmoid { a, b } => UnaryOp::HardSigmoid { a, b },
            Neuron::Tanh => UnaryOp::Tanh,
            Neuron::Softplus => UnaryOp::Softplus,
            Neuron::Softsign => UnaryOp::Softsign,
            Neuron::Gelu { tanh_approx: false } => UnaryOp::Gelu,
            Neuron::Gelu { tanh_approx: true } => UnaryOp::GeluTanh,
            Neuron::Abs => UnaryOp::Abs,
            Neuron::Exp => UnaryOp::Exp,
            Neuron::Log => UnaryOp::Log,
            Neuron::Linear { a, b } => UnaryOp::Linear { a, b },
        }
    }
}
