//! Reference for the neurons (elementwise activations), forward and backward (dx from x and dy).
//! Kink conventions are documented on [`Neuron`].

use crate::error::{Result, shape_err};
use crate::ops::axis::fmt_shape;
use crate::ops::elementwise::neuron::Neuron;
use crate::reference::Array;
use std::f64::consts::{FRAC_2_SQRT_PI, PI, SQRT_2};

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

/// Stable `ln(1 + e^x)`.
pub fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Standard normal CDF via erfc, so the far left tail keeps its relative precision.
fn norm_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / SQRT_2)
}

const GELU_K: f64 = 0.797_884_560_802_865_4; // √(2/π)
const GELU_C: f64 = 0.044715;

/// `f(x)` for one element.
pub fn neuron_scalar(n: &Neuron, x: f64) -> f64 {
    match *n {
        Neuron::Relu => x.max(0.0),
        Neuron::LeakyRelu { alpha } => {
            if x > 0.0 {
                x
            } else {
                alpha as f64 * x
            }
        }
        Neuron::ReluN { n } => x.clamp(0.0, n as f64),
        Neuron::Elu { alpha } => {
            if x > 0.0 {
                x
            } else {
                alpha as f64 * x.exp_m1()
            }
        }
        Neuron::Sigmoid => sigmoid(x),
        Neuron::HardSigmoid { a, b } => (a as f64 * x + b as f64).clamp(0.0, 1.0),
        Neuron::Tanh => x.tanh(),
        Neuron::Softplus => softplus(x),
        Neuron::Softsign => x / (1.0 + x.abs()),
        Neuron::Gelu { tanh_approx: false } => x * norm_cdf(x),
        Neuron::Gelu { tanh_approx: true } => {
            0.5 * x * (1.0 + (GELU_K * (x + GELU_C * x * x * x)).tanh())
        }
        Neuron::Abs => x.abs(),
        Neuron::Exp => x.exp(),
        Neuron::Log => x.ln(),
        Neuron::Linear { a, b } => a as f64 * x + b as f64,
    }
}

/// `f'(x)` for one element (kinks as documented on [`Neuron`]).
pub fn neuron_scalar_grad(n: &Neuron, x: f64) -> f64 {
    match *n {
        Neuron::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Neuron::LeakyRelu { alpha } => {
            if x > 0.0 {
                1.0
            } else {
                alpha as f64
            }
        }
        Neuron::ReluN { n } => {
            if x > 0.0 && x < n as f64 {
                1.0
            } else {
                0.0
            }
        }
        Neuron::Elu { alpha } => {
            if x > 0.0 {
                1.0
            } else {
                alpha as f64 * x.exp()
            }
        }
        Neuron::Sigmoid => {
            let s = sigmoid(x);
            s * (1.0 - s)
        }
        Neuron::HardSigmoid { a, b } => {
            let z = a as f64 * x + b as f64;
            if z > 0.0 && z < 1.0 { a as f64 } else { 0.0 }
        }
        Neuron::Tanh => {
            let t = x.tanh();
            1.0 - t * t
        }
        Neuron::Softplus => sigmoid(x),
        Neuron::Softsign => {
            let d = 1.0 + x.abs();
            1.0 / (d * d)
        }
        Neuron::Gelu { tanh_approx: false } => {
            // d/dx x·Φ(x) = Φ(x) + x·φ(x)
            norm_cdf(x) + x * (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
        }
        Neuron::Gelu { tanh_approx: true } => {
            let t = (GELU_K * (x + GELU_C * x * x * x)).tanh();
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_C * x * x)
        }
        Neuron::Abs => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        Neuron::Exp => x.exp(),
        Neuron::Log => 1.0 / x,
        Neuron::Linear { a, .. } => a as f64,
    }
}

/// `y = f(x)` elementwise; any shape.
pub fn neuron_forward(n: &Neuron, x: &Array) -> Result<Array> {
    n.validate()?;
    Ok(Array::new(
        &x.shape,
        x.data.iter().map(|&v| neuron_scalar(n, v)).collect(),
    ))
}

/// `dx = f'(x)·dy`; `dy` must have the shape of `x`.
pub fn neuron_backward(n: &Neuron, x: &Array, dy: &Array) -> Result<Array> {
    n.validate()?;
    if x.shape != dy.shape {
        return shape_err(
            n.name(),
            format!(
                "dy {} does not match x {}",
                fmt_shape(&dy.shape),
                fmt_shape(&x.shape)
            ),
        );
    }
    let data = x
        .data
        .iter()
        .zip(&dy.data)
        .map(|(&v, &g)| neuron_scalar_grad(n, v) * g)
        .collect();
    Ok(Array::new(&x.shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{finite_diff, max_rel_diff};

    fn all() -> Vec<Neuron> {
        vec![
            Neuron::Relu,
            Neuron::LeakyRelu { alpha: 0.1 },
            Neuron::ReluN { n: 1.5 },
            Neuron::Elu { alpha: 0.7 },
            Neuron::Sigmoid,
            Neuron::HARD_SIGMOID,
            Neuron::Tanh,
            Neuron::Softplus,
            Neuron::Softsign,
            Neuron::GELU,
            Neuron::Gelu { tanh_approx: true },
            Neuron::Abs,
            Neuron::Exp,
            Neuron::Log,
            Neuron::Linear { a: -1.5, b: 0.25 },
        ]
    }

    fn check_grad(n: &Neuron, x: &Array) {
        let dy = Array::seeded(&x.shape, 99);
        let f = |x: &Array| {
            let y = neuron_forward(n, x).unwrap();
            y.data.iter().zip(&dy.data).map(|(a, b)| a * b).sum::<f64>()
        };
        let num = finite_diff(x, 1e-6, f);
        let ana = neuron_backward(n, x, &dy).unwrap();
        let d = max_rel_diff(&ana.data, &num.data);
        assert!(d < 1e-6, "{}: rel diff {d}", n.name());
    }

    #[test]
    fn backward_matches_finite_differences() {
        for n in all() {
            for shape in [&[1usize][..], &[7], &[3, 33]] {
                let mut x = Array::seeded(shape, 5);
                for v in &mut x.data {
                    *v = if n == Neuron::Log {
                        v.abs() * 3.0 + 0.1
                    } else {
                        *v * 4.0
                    };
                }
                check_grad(&n, &x);
            }
        }
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
        // PyTorch: gelu(1) = 0.8413447460685429, gelu(-3) = -0.004049694094890287 (values from Python's math.erfc)
        let g = |x| neuron_scalar(&Neuron::GELU, x);
        assert!((g(1.0) - 0.8413447460685429).abs() < 1e-15);
        assert!((g(-3.0) - -0.004049694094890287).abs() < 1e-17);
        // Far left tail: tiny but finite and of the right sign (no 1 + erf cancellation).
        assert!(g(-20.0) < 0.0 && g(-20.0) > -1e-80);
        assert_eq!(g(50.0), 50.0);
        let x = Array::new(&[6], vec![-9.0, -6.0, -2.5, 2.5, 6.0, 9.0]);
        check_grad(&Neuron::GELU, &x);
        check_grad(&Neuron::Gelu { tanh_approx: true }, &x);
    }

    #[test]
    fn softplus_and_sigmoid_at_large_magnitude() {
        let sp = Neuron::Softplus;
        assert_eq!(neuron_scalar(&sp, 1000.0), 1000.0);
        assert!(neuron_scalar(&sp, -1000.0) >= 0.0 && neuron_scalar(&sp, -1000.0) < 1e-300);
        assert!((neuron_scalar(&sp, -40.0) - (-40.0f64).exp()).abs() < 1e-30);
        assert_eq!(neuron_scalar_grad(&sp, 1000.0), 1.0);
        assert_eq!(neuron_scalar_grad(&sp, -1000.0), 0.0);
        assert_eq!(neuron_scalar(&Neuron::Sigmoid, -1000.0), 0.0);
        let x = Array::new(&[4], vec![-35.0, -20.0, 20.0, 35.0]);
        check_grad(&sp, &x);
    }

    #[test]
    fn kink_conventions() {
        assert_eq!(neuron_scalar_grad(&Neuron::Relu, 0.0), 0.0);
        assert_eq!(neuron_scalar_grad(&Neuron::Abs, 0.0), 0.0);
        assert_eq!(neuron_scalar_grad(&Neuron::ReluN { n: 6.0 }, 6.0), 0.0);
        assert_eq!(
            neuron_scalar_grad(&Neuron::LeakyRelu { alpha: 0.1 }, 0.0),
            0.1f32 as f64
        );
        assert_eq!(neuron_scalar(&Neuron::HARD_SIGMOID, 0.0), 0.5);
        assert_eq!(neuron_scalar(&Neuron::HARD_SIGMOID, 10.0), 1.0);
    }

    #[test]
    fn backward_rejects_mismatched_dy() {
        let e = neuron_backward(
            &Neuron::Tanh,
            &Array::zeros(&[2, 3]),
            &Array::zeros(&[3, 2]),
        );
        let e = e.unwrap_err().to_string();
        assert!(
            e.contains("tanh") && e.contains("(3, 2)") && e.contains("(2, 3)"),
            "{e}"
        );
    }
}
