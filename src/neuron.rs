//! The neurons (unary ops) every family can apply, as one table: each neuron's variant and
//! parameters, its op code (the `case` the WGSL in `wgsl/neuron.wgsl` runs for it), its name, the
//! two parameters the shader reads, its f64 function, its derivative from the input, and what its
//! gradient reads ([`GradFrom`]: the input, the output — with the derivative as a function of the
//! output — or nothing, for a constant derivative). Elementwise kernels run neurons alone or
//! chained; GEMM and norm epilogues run one fused (`POST_OP`).
//!
//! Gradients at kinks are fixed by convention so GPU and CPU agree on the branch: ReLU at 0 → 0;
//! leaky ReLU at 0 → alpha; ReLU-n at 0 and at n → 0; hard sigmoid where `a·x + b` is exactly 0
//! or 1 → 0; abs at 0 → 0; ELU at 0 → alpha (the `x ≤ 0` branch).
//!
//! The f64 functions here are the CPU reference of every neuron (`ops::elementwise::reference`
//! applies them to arrays), with the one f64 [`erf`], [`sigmoid`] and [`softplus`] of the crate.

use crate::error::{Result, attr_err};
use std::f64::consts::{FRAC_2_SQRT_PI, PI, SQRT_2};

/// The GPU side of the table (`wgsl/neuron.wgsl`): each neuron's forward and derivatives by op
/// code, and the `POST_OP` constant that fixes a kernel's fused neuron.
/// `wgsl/finite.wgsl` comes first: the neurons propagate NaN as PyTorch's do.
pub const WGSL: &str = concat!(
    include_str!("../wgsl/finite.wgsl"),
    include_str!("../wgsl/neuron.wgsl")
);

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

/// Builds [`UnaryOp`] and its per-neuron methods from the table below. A row:
///
/// ```text
/// Variant { params } = op code, "name", (shader a, shader b),
///     f |x| f(x),
///     dx |x| f'(x),
///     grad: input | output(|y| f'(x) as a function of y) [if condition on the params]
///                 | constant(the unary op that scales dy);
/// ```
///
/// Parameters are f32 (what the GPU uniform holds) in the shader column, `grad`'s condition and
/// `constant`; f64 in `f`, `dx` and `output`.
macro_rules! neurons {
    ($(
        $(#[$doc:meta])*
        $V:ident $({ $($p:ident),+ })? = $code:literal, $name:literal, ($a:expr, $b:expr),
            f |$x:ident| $f:expr,
            dx |$xd:ident| $d:expr,
            grad: $kind:ident $(( $($g:tt)* ))? $(if $cond:expr)?;
    )*) => {
        /// A neuron (unary op). The discriminant order is the op code in `wgsl/neuron.wgsl`.
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum UnaryOp {
            $($(#[$doc])* $V $({ $(
                #[doc = concat!("`", stringify!($p), "` in the formula above.")]
                $p: f32
            ),+ })?,)*
        }

        #[allow(unused_variables)]
        impl UnaryOp {
            /// Short lowercase name, used in errors.
            pub fn name(self) -> &'static str {
                match self {
                    $(UnaryOp::$V $({ $($p),+ })? => $name,)*
                }
            }

            /// (op code, parameter a, parameter b) as the shader reads them.
            pub fn code(self) -> (u32, f32, f32) {
                match self {
                    $(UnaryOp::$V $({ $($p),+ })? => ($code, $a, $b),)*
                }
            }

            /// `f(x)` in f64: the CPU reference.
            pub fn f(self, x: f64) -> f64 {
                match self {
                    $(UnaryOp::$V $({ $($p),+ })? => {
                        $($(let $p = $p as f64;)+)?
                        let $x = x;
                        $f
                    })*
                }
            }

            /// `f'(x)` in f64 (kinks as in the module doc).
            pub fn df(self, x: f64) -> f64 {
                match self {
                    $(UnaryOp::$V $({ $($p),+ })? => {
                        $($(let $p = $p as f64;)+)?
                        let $xd = x;
                        $d
                    })*
                }
            }

            /// Which value the gradient reads (see [`UnaryOp::grad_from`]'s table rows).
            fn grad_kind(self) -> GradFrom {
                match self {
                    $(UnaryOp::$V $({ $($p),+ })? => {
                        neurons!(@from $kind $(( $($g)* ))? $(if $cond)?)
                    })*
                }
            }

            /// `f'(x)` from the output `y = f(x)`, in f64, for the neurons whose
            /// [`UnaryOp::grad_from`] is `Output` (`None` for the others). Kinks as
            /// [`UnaryOp::df`]: each test is x's rewritten in y.
            pub fn df_out(self, y: f64) -> Option<f64> {
                if self.grad_from() != GradFrom::Output {
                    return None;
                }
                match self {
                    $(UnaryOp::$V $({ $($p),+ })? => {
                        $($(let $p = $p as f64;)+)?
                        neurons!(@dy y; $kind $(( $($g)* ))?)
                    })*
                }
            }

            /// Every neuron's name, in op-code order.
            pub const NAMES: &'static [&'static str] = &[$($name),*];
        }
    };
    (@from input) => { GradFrom::Input };
    (@from output $g:tt) => { GradFrom::Output };
    (@from output $g:tt if $c:expr) => {
        if $c { GradFrom::Output } else { GradFrom::Input }
    };
    (@from constant ($k:expr)) => { GradFrom::Nothing($k) };
    (@dy $yv:ident; output (|$y:ident| $e:expr)) => { Some({ let $y = $yv; $e }) };
    (@dy $yv:ident; $($rest:tt)*) => { None };
}

neurons! {
    /// `max(x, 0)`; NaN stays NaN, as in PyTorch (Rust's `max` would drop it).
    Relu = 0, "relu", (0.0, 0.0),
        f |x| if x.is_nan() { x } else { x.max(0.0) },
        dx |x| step(x > 0.0),
        grad: output(|y| step(y > 0.0));
    /// `x` if `x > 0`, else `alpha·x`.
    LeakyRelu { alpha } = 1, "leaky_relu", (alpha, 0.0),
        f |x| if x > 0.0 { x } else { alpha * x },
        dx |x| if x > 0.0 { 1.0 } else { alpha },
        grad: output(|y| if y > 0.0 { 1.0 } else { alpha }) if alpha >= 0.0;
    /// `clamp(x, 0, n)` (ReLU6 is `n = 6`).
    ReluN { n } = 2, "relu_n", (n, 0.0),
        f |x| if x.is_nan() { x } else { x.max(0.0).min(n) },
        dx |x| step(x > 0.0 && x < n),
        grad: output(|y| step(y > 0.0 && y < n)) if n > 0.0;
    /// `x` if `x > 0`, else `alpha·(eˣ − 1)`.
    Elu { alpha } = 3, "elu", (alpha, 0.0),
        f |x| if x > 0.0 { x } else { alpha * x.exp_m1() },
        dx |x| if x > 0.0 { 1.0 } else { alpha * x.exp() },
        // alpha·eˣ = y + alpha on the x ≤ 0 branch (PyTorch's `is_result` form).
        grad: output(|y| if y > 0.0 { 1.0 } else { y + alpha }) if alpha >= 0.0;
    /// `1 / (1 + e⁻ˣ)`.
    Sigmoid = 4, "sigmoid", (0.0, 0.0),
        f |x| sigmoid(x),
        dx |x| sigmoid(x) * (1.0 - sigmoid(x)),
        grad: output(|y| y * (1.0 - y));
    /// `clamp(a·x + b, 0, 1)`; MPS's default is `a = 0.2, b = 0.5` ([`UnaryOp::HARD_SIGMOID`]).
    HardSigmoid { a, b } = 5, "hard_sigmoid", (a, b),
        f |x| (a * x + b).clamp(0.0, 1.0),
        dx |x| if a * x + b > 0.0 && a * x + b < 1.0 { a } else { 0.0 },
        grad: output(|y| if y > 0.0 && y < 1.0 { a } else { 0.0 });
    /// `tanh(x)`.
    Tanh = 6, "tanh", (0.0, 0.0),
        f |x| x.tanh(),
        dx |x| 1.0 - x.tanh() * x.tanh(),
        grad: output(|y| 1.0 - y * y);
    /// `ln(1 + eˣ)`, as `max(x, 0) + ln1p(e^−|x|)` so it never overflows.
    Softplus = 7, "softplus", (0.0, 0.0),
        f |x| softplus(x),
        dx |x| sigmoid(x),
        grad: input;
    /// `x / (1 + |x|)`.
    Softsign = 8, "softsign", (0.0, 0.0),
        f |x| x / (1.0 + x.abs()),
        dx |x| 1.0 / ((1.0 + x.abs()) * (1.0 + x.abs())),
        grad: input;
    /// Exact GELU `x·Φ(x)` (erf form, PyTorch's default).
    Gelu = 9, "gelu", (0.0, 0.0),
        f |x| x * norm_cdf(x),
        dx |x| norm_cdf(x) + x * (-0.5 * x * x).exp() / (2.0 * PI).sqrt(),
        grad: input;
    /// `|x|`.
    Abs = 10, "abs", (0.0, 0.0),
        f |x| x.abs(),
        dx |x| if x > 0.0 { 1.0 } else if x < 0.0 { -1.0 } else { 0.0 },
        grad: input;
    /// `eˣ`.
    Exp = 11, "exp", (0.0, 0.0),
        f |x| x.exp(),
        dx |x| x.exp(),
        grad: output(|y| y);
    /// `ln(x)`: NaN / −inf outside `x > 0`, as on the GPU.
    Log = 12, "log", (0.0, 0.0),
        f |x| x.ln(),
        dx |x| 1.0 / x,
        grad: input;
    /// `a·x + b`.
    Linear { a, b } = 13, "linear", (a, b),
        f |x| a * x + b,
        dx |x| a,
        grad: constant(UnaryOp::Linear { a, b: 0.0 });
    /// `−x`.
    Neg = 14, "neg", (0.0, 0.0),
        f |x| -x,
        dx |x| -1.0,
        grad: constant(UnaryOp::Neg);
    /// `√x`.
    Sqrt = 15, "sqrt", (0.0, 0.0),
        f |x| x.sqrt(),
        dx |x| 0.5 / x.sqrt(),
        grad: output(|y| 0.5 / y);
    /// `x²`.
    Square = 16, "square", (0.0, 0.0),
        f |x| x * x,
        dx |x| 2.0 * x,
        grad: input;
    /// `1 / x`.
    Recip = 17, "recip", (0.0, 0.0),
        f |x| 1.0 / x,
        dx |x| -1.0 / (x * x),
        grad: output(|y| -y * y);
    /// GELU's tanh approximation `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` (GPT-2).
    GeluTanh = 18, "gelu_tanh", (0.0, 0.0),
        f |x| 0.5 * x * (1.0 + gelu_tanh_arg(x).tanh()),
        dx |x| {
            let t = gelu_tanh_arg(x).tanh();
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_C * x * x)
        },
        grad: input;
    /// SiLU (swish) `x·σ(x)`.
    Silu = 19, "silu", (0.0, 0.0),
        f |x| x * sigmoid(x),
        dx |x| sigmoid(x) * (1.0 + x * (1.0 - sigmoid(x))),
        grad: input;
    /// Mish `x·tanh(softplus(x))`.
    Mish = 20, "mish", (0.0, 0.0),
        f |x| x * softplus(x).tanh(),
        dx |x| {
            let t = softplus(x).tanh();
            t + x * (1.0 - t * t) * sigmoid(x)
        },
        grad: input;
}

fn step(c: bool) -> f64 {
    if c { 1.0 } else { 0.0 }
}

/// Pipeline constants that fix a kernel's fused neuron (`POST_OP` in `wgsl/neuron.wgsl`) so the
/// compiler drops the other neurons' branches: with the generic switch the GEMM epilogue cost
/// ~9 % of an MNIST training step on an H100 (BENCHMARKS.md). None without a post-op.
pub fn fused_constants(fused: Option<UnaryOp>) -> Vec<(&'static str, f64)> {
    fused
        .map(|u| vec![("POST_OP", u.code().0 as f64)])
        .unwrap_or_default()
}

/// The four parameter words of a fused neuron as the kernels' uniforms hold them (`post_op`'s
/// `len`, `op`, `a`, `b` in `wgsl/neuron.wgsl`); without one, zeros.
pub(crate) fn post_op_words(fused: Option<UnaryOp>) -> [u32; 4] {
    let (code, a, b) = fused.map_or((0, 0.0, 0.0), |u| u.code());
    [
        fused.is_some() as u32,
        code,
        crate::launch::f(a),
        crate::launch::f(b),
    ]
}

/// Pipeline constants that make a backward kernel apply `u`'s derivative from its output
/// (`GRAD_OP`, `GRAD_A`, `GRAD_B` in `wgsl/neuron.wgsl`); an `Err` for a neuron whose
/// derivative is not a function of its output.
pub fn grad_constants(u: UnaryOp) -> Result<Vec<(&'static str, f64)>> {
    u.validate()?;
    if u.grad_from() != GradFrom::Output {
        return attr_err(
            "neuron gradient",
            format!("the derivative of {u:?} is not a function of its output"),
        );
    }
    let (code, a, b) = u.code();
    Ok(vec![
        ("GRAD_OP", code as f64),
        ("GRAD_A", a as f64),
        ("GRAD_B", b as f64),
    ])
}

impl UnaryOp {
    /// MPS's default hard sigmoid.
    pub const HARD_SIGMOID: UnaryOp = UnaryOp::HardSigmoid { a: 0.2, b: 0.5 };

    /// Every variant with typical parameters, for tests.
    pub fn all() -> Vec<UnaryOp> {
        use UnaryOp::*;
        vec![
            Relu,
            LeakyRelu { alpha: 0.1 },
            ReluN { n: 0.5 },
            Elu { alpha: 1.3 },
            Sigmoid,
            UnaryOp::HARD_SIGMOID,
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
            Silu,
            Mish,
        ]
    }

    /// Parameters must be finite; ReLU-n needs `n > 0` (else it is a constant 0).
    pub fn validate(self) -> Result<()> {
        let (_, a, b) = self.code();
        let params: &[(&str, f32)] = match self {
            UnaryOp::LeakyRelu { .. } | UnaryOp::Elu { .. } => &[("alpha", a)],
            UnaryOp::ReluN { .. } => &[("n", a)],
            UnaryOp::HardSigmoid { .. } | UnaryOp::Linear { .. } => &[("a", a), ("b", b)],
            _ => &[],
        };
        for (name, v) in params {
            if !v.is_finite() {
                return attr_err(self.name(), format!("{name} = {v} is not finite"));
            }
        }
        if let UnaryOp::ReluN { n } = self
            && n <= 0.0
        {
            return attr_err(self.name(), format!("n = {n} must be > 0"));
        }
        Ok(())
    }

    /// Which value the gradient reads (the `grad` column of the table). Output-based only where
    /// `f'(x)` is an exact function of `y = f(x)` with the same kink conventions as the x-based
    /// gradient and no f32 precision loss beyond what the x-based kernel already has:
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
    /// (`e^(−y)`) amplifies y's rounding by |y|; GELU (both), SiLU, Mish, abs and square are not
    /// injective, so y does not determine the derivative. Linear and neg have constant
    /// derivatives.
    pub fn grad_from(self) -> GradFrom {
        self.grad_kind()
    }
}

/// Error function, accurate to a few ulp: a positive-term series below |x| = 2 (no
/// cancellation), a continued fraction for erfc above. std has no erf.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let a = x.abs();
    let r = if a < 2.0 {
        erf_series(a)
    } else {
        1.0 - erfc_cf(a)
    };
    if x < 0.0 { -r } else { r }
}

/// Complementary error function `1 − erf(x)`, without the cancellation for large x.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        2.0 - erfc(-x)
    } else if x < 2.0 {
        1.0 - erf_series(x)
    } else {
        erfc_cf(x)
    }
}

/// `erf(x) = 2/√π · e^{−x²} · Σ 2ⁿ x^{2n+1} / (1·3·…·(2n+1))`, x ≥ 0: all terms positive.
fn erf_series(x: f64) -> f64 {
    let x2 = x * x;
    let (mut term, mut sum) = (x, x);
    let mut n = 0.0;
    while term > sum * 1e-17 {
        n += 1.0;
        term *= 2.0 * x2 / (2.0 * n + 1.0);
        sum += term;
    }
    FRAC_2_SQRT_PI * (-x2).exp() * sum
}

/// `erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))`, x ≥ 2, by Lentz's method.
fn erfc_cf(x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (mut f, mut c, mut d) = (x, x, 0.0f64);
    for n in 1..1000 {
        let a = n as f64 * 0.5;
        d = x + a * d;
        if d == 0.0 {
            d = TINY;
        }
        d = 1.0 / d;
        c = x + a / c;
        if c == 0.0 {
            c = TINY;
        }
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / (PI.sqrt() * f)
}

/// Stable logistic: never evaluates `exp` of a large positive number.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Stable `ln(1 + eˣ)`: `max(x, 0) + ln1p(e^−|x|)`.
pub fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Standard normal CDF via erfc, so the far left tail keeps its relative precision.
fn norm_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / SQRT_2)
}

const GELU_K: f64 = 0.797_884_560_802_865_4; // √(2/π)
const GELU_C: f64 = 0.044715;

/// `√(2/π)·(x + 0.044715·x³)`: GELU-tanh's tanh argument.
fn gelu_tanh_arg(x: f64) -> f64 {
    GELU_K * (x + GELU_C * x * x * x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points for finite differences: away from every kink, positive where the domain needs it.
    fn points(op: UnaryOp) -> Vec<f64> {
        let xs = [-3.7, -2.3, -0.7, -0.2, 0.3, 0.45, 1.1, 2.9, 3.9];
        match op {
            UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip => {
                xs.iter().map(|v: &f64| v.abs() + 0.1).collect()
            }
            _ => xs.to_vec(),
        }
    }

    fn check_df(op: UnaryOp, xs: &[f64], tol: f64) {
        for &x in xs {
            let h = 1e-6 * x.abs().max(1.0);
            let fd = (op.f(x + h) - op.f(x - h)) / (2.0 * h);
            let d = op.df(x);
            assert!(
                (d - fd).abs() <= tol * d.abs().max(1.0),
                "{} at {x}: df {d} vs finite differences {fd}",
                op.name()
            );
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for op in UnaryOp::all() {
            check_df(op, &points(op), 1e-7);
        }
        // The far tails, where the stable forms matter.
        let tails = [-30.0, -9.0, -6.0, -2.5, 2.5, 6.0, 9.0, 30.0];
        for op in [
            UnaryOp::Gelu,
            UnaryOp::GeluTanh,
            UnaryOp::Softplus,
            UnaryOp::Silu,
            UnaryOp::Mish,
        ] {
            check_df(op, &tails, 1e-7);
        }
    }

    #[test]
    fn a_wrong_derivative_fails_the_check() {
        // The finite-difference check can fail: SiLU's derivative without its x·σ'(x) term.
        let x = 0.8;
        let wrong = sigmoid(x);
        let h = 1e-6;
        let fd = (UnaryOp::Silu.f(x + h) - UnaryOp::Silu.f(x - h)) / (2.0 * h);
        assert!((wrong - fd).abs() > 1e-2);
        assert!((UnaryOp::Silu.df(x) - fd).abs() < 1e-8);
    }

    #[test]
    fn silu_and_mish_values_and_tails() {
        // 40-digit values (Python decimal): silu(1) = 0.7310585786300049, mish(1) = 0.8650983882673103,
        // silu(-2) = -0.2384058440442351, mish(-2) = -0.2525014826957089.
        let close = |a: f64, b: f64| (a - b).abs() < 1e-15;
        assert!(close(UnaryOp::Silu.f(1.0), 0.7310585786300049));
        assert!(close(UnaryOp::Silu.f(-2.0), -0.2384058440442351));
        assert!(close(UnaryOp::Mish.f(1.0), 0.8650983882673103));
        assert!(close(UnaryOp::Mish.f(-2.0), -0.2525014826957089));
        for op in [UnaryOp::Silu, UnaryOp::Mish] {
            assert_eq!(op.f(1000.0), 1000.0);
            assert_eq!(op.df(1000.0), 1.0);
            // Far left: tiny, negative, finite (no exp overflow, no inf·0).
            let (y, d) = (op.f(-1000.0), op.df(-1000.0));
            assert!(y <= 0.0 && y > -1e-300, "{} {y}", op.name());
            assert!(d.is_finite() && d.abs() < 1e-300, "{} {d}", op.name());
            assert_eq!(op.grad_from(), GradFrom::Input);
        }
        // Mish's minimum ≈ −0.30884 at x ≈ −1.19243; SiLU's ≈ −0.27846 at x ≈ −1.27846.
        assert!(UnaryOp::Mish.df(-1.19243).abs() < 1e-5);
        assert!(UnaryOp::Silu.df(-1.27846).abs() < 1e-5);
    }

    #[test]
    fn erf_matches_known_values() {
        let cases = [
            (0.0, 0.0),
            (0.1, 0.1124629160182849),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (1.999, 0.9953015566513705),
            (2.0, 0.9953222650189527),
            (3.0, 0.9999779095030014),
            (3.5, 0.9999992569016276),
            (-1.0, -0.8427007929497149),
        ];
        for (x, want) in cases {
            assert!(
                (erf(x) - want).abs() < 1e-15 * want.abs().max(1.0),
                "erf({x}) = {}",
                erf(x)
            );
        }
        let tails = [
            (3.0, 2.2090496998585438e-05),
            (5.0, 1.5374597944280351e-12),
            (10.0, 2.088487583762545e-45),
        ];
        for (x, want) in tails {
            assert!(
                ((erfc(x) - want) / want).abs() < 1e-14,
                "erfc({x}) = {}",
                erfc(x)
            );
        }
        assert!((erfc(-1.0) - 1.842700792949715).abs() < 1e-15);
    }

    #[test]
    fn gelu_values_and_far_tails() {
        // PyTorch: gelu(1) = 0.8413447460685429, gelu(-3) = -0.004049694094890287.
        let g = |x| UnaryOp::Gelu.f(x);
        assert!((g(1.0) - 0.8413447460685429).abs() < 1e-15);
        assert!((g(-3.0) - -0.004049694094890287).abs() < 1e-17);
        // Far left tail: tiny but finite and of the right sign (no 1 + erf cancellation).
        assert!(g(-20.0) < 0.0 && g(-20.0) > -1e-80);
        assert_eq!(g(50.0), 50.0);
    }

    #[test]
    fn softplus_and_sigmoid_at_large_magnitude() {
        let sp = UnaryOp::Softplus;
        assert_eq!(sp.f(1000.0), 1000.0);
        assert!(sp.f(-1000.0) >= 0.0 && sp.f(-1000.0) < 1e-300);
        assert!((sp.f(-40.0) - (-40.0f64).exp()).abs() < 1e-30);
        assert_eq!(sp.df(1000.0), 1.0);
        assert_eq!(sp.df(-1000.0), 0.0);
        assert_eq!(UnaryOp::Sigmoid.f(-1000.0), 0.0);
        check_df(sp, &[-35.0, -20.0, 20.0, 35.0], 1e-7);
    }

    #[test]
    fn kink_conventions() {
        assert_eq!(UnaryOp::Relu.df(0.0), 0.0);
        assert_eq!(UnaryOp::Abs.df(0.0), 0.0);
        assert_eq!(UnaryOp::ReluN { n: 6.0 }.df(6.0), 0.0);
        assert_eq!(UnaryOp::LeakyRelu { alpha: 0.1 }.df(0.0), 0.1f32 as f64);
        assert_eq!(UnaryOp::Elu { alpha: 0.7 }.df(0.0), 0.7f32 as f64);
        assert_eq!(UnaryOp::HARD_SIGMOID.f(0.0), 0.5);
        assert_eq!(UnaryOp::HARD_SIGMOID.f(10.0), 1.0);
        assert_eq!(UnaryOp::HARD_SIGMOID.df(-2.5), 0.0);
    }

    #[test]
    fn validate_rejects_bad_params() {
        let e = UnaryOp::ReluN { n: 0.0 }
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("relu_n") && e.contains("n = 0"), "{e}");
        let e = UnaryOp::LeakyRelu { alpha: f32::NAN }
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("leaky_relu") && e.contains("alpha = NaN"), "{e}");
        let e = UnaryOp::Linear {
            a: 1.0,
            b: f32::INFINITY,
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("linear") && e.contains("b = inf"), "{e}");
        for op in UnaryOp::all() {
            assert!(op.validate().is_ok(), "{op:?}");
        }
    }

    #[test]
    fn all_lists_every_neuron_once_in_code_order() {
        let all = UnaryOp::all();
        let names: Vec<&str> = all.iter().map(|op| op.name()).collect();
        assert_eq!(names, UnaryOp::NAMES);
        for (k, op) in all.iter().enumerate() {
            assert_eq!(op.code().0 as usize, k, "{op:?}");
        }
    }

    /// The `case` lines of the WGSL function `func` in `wgsl/neuron.wgsl`: (op code, line).
    fn wgsl_cases(func: &str) -> Vec<(u32, String)> {
        let src = WGSL;
        let start = src
            .find(&format!("fn {func}("))
            .unwrap_or_else(|| panic!("no fn {func} in neuron.wgsl"));
        let body = &src[start..];
        let body = &body[..body.find("\n}\n").unwrap()];
        body.lines()
            .filter_map(|l| {
                let l = l.trim();
                let rest = l.strip_prefix("case ")?;
                let code = rest[..rest.find('u')?].parse().ok()?;
                Some((code, l.to_string()))
            })
            .collect()
    }

    #[test]
    fn the_wgsl_table_has_a_case_for_every_neuron() {
        let forward = wgsl_cases("unary_f");
        let backward = wgsl_cases("unary_b");
        let from_y = wgsl_cases("unary_b_out");
        for op in UnaryOp::all() {
            let code = op.code().0;
            let line = forward.iter().find(|(c, _)| *c == code);
            let (_, line) = line.unwrap_or_else(|| panic!("unary_f has no case for {op:?}"));
            assert!(
                line.ends_with(&format!("// {}", op.name())),
                "unary_f case {code} is not commented `// {}`: {line}",
                op.name()
            );
            assert!(
                backward.iter().any(|(c, _)| *c == code),
                "unary_b has no case for {op:?}"
            );
            // all()'s parameters make every neuron that can read its output do so.
            let out = from_y.iter().any(|(c, _)| *c == code);
            let output_based = op.grad_from() == GradFrom::Output;
            assert_eq!(out, output_based, "unary_b_out's case for {op:?}");
        }
        assert_eq!(forward.len(), UnaryOp::NAMES.len());
        assert_eq!(backward.len(), UnaryOp::NAMES.len());
    }

    #[test]
    fn gradient_reads() {
        use UnaryOp::*;
        for op in [Relu, Sigmoid, Tanh, Exp, Sqrt, Recip, UnaryOp::HARD_SIGMOID] {
            assert_eq!(op.grad_from(), GradFrom::Output, "{op:?}");
        }
        for op in [
            LeakyRelu { alpha: -0.1 },
            Elu { alpha: -1.0 },
            ReluN { n: 0.0 },
            LeakyRelu { alpha: f32::NAN },
            Softplus,
            Softsign,
            Gelu,
            GeluTanh,
            Silu,
            Mish,
            Abs,
            Log,
            Square,
        ] {
            assert_eq!(op.grad_from(), GradFrom::Input, "{op:?}");
            assert_eq!(op.df_out(0.5), None, "{op:?}");
        }
        let l = Linear { a: 1.5, b: -0.25 };
        assert_eq!(l.grad_from(), GradFrom::Nothing(Linear { a: 1.5, b: 0.0 }));
        assert_eq!(Neg.grad_from(), GradFrom::Nothing(Neg));
    }
}
