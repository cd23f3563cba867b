//! f64 reference of the elementwise ops: unary (every neuron) and broadcasting binary ops,
//! forward and backward.

use crate::error::{Error, Result};
use crate::ops::elementwise::{BinaryOp, GradFrom, UnaryOp};
use crate::reference::Array;

fn erf(x: f64) -> f64 {
    // Maclaurin series for |x| < 3, continued fraction (Lentz) of erfc beyond: both to ~1e-15.
    if x.abs() < 3.0 {
        let mut sum = x;
        let mut term = x;
        let x2 = x * x;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x2 / n;
            let t = term / (2.0 * n + 1.0);
            sum += t;
            if t.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let ax = x.abs();
        // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (ax + f);
        }
        let erfc = (-ax * ax).exp() / std::f64::consts::PI.sqrt() / (ax + f);
        x.signum() * (1.0 - erfc)
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

const GELU_K: f64 = 0.797_884_560_802_865_4; // √(2/π)
const GELU_C: f64 = 0.044715;

/// Forward of a unary op at one point.
pub fn unary_f(op: UnaryOp, x: f64) -> f64 {
    use UnaryOp::*;
    match op {
        Relu => x.max(0.0),
        LeakyRelu { alpha } => {
            if x > 0.0 {
                x
            } else {
                alpha as f64 * x
            }
        }
        ReluN { n } => x.clamp(0.0, n as f64),
        Elu { alpha } => {
            if x > 0.0 {
                x
            } else {
                alpha as f64 * (x.exp() - 1.0)
            }
        }
        Sigmoid => sigmoid(x),
        HardSigmoid { a, b } => (a as f64 * x + b as f64).clamp(0.0, 1.0),
        Tanh => x.tanh(),
        Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
        Softsign => x / (1.0 + x.abs()),
        Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        Abs => x.abs(),
        Exp => x.exp(),
        Log => x.ln(),
        Linear { a, b } => a as f64 * x + b as f64,
        Neg => -x,
        Sqrt => x.sqrt(),
        Square => x * x,
        Recip => 1.0 / x,
        GeluTanh => 0.5 * x * (1.0 + (GELU_K * (x + GELU_C * x * x * x)).tanh()),
    }
}

/// Derivative of a unary op at one point (kinks take the one-sided value the GPU uses: 0 at relu(0)).
pub fn unary_d(op: UnaryOp, x: f64) -> f64 {
    use UnaryOp::*;
    match op {
        Relu => (x > 0.0) as u8 as f64,
        LeakyRelu { alpha } => {
            if x > 0.0 {
                1.0
            } else {
                alpha as f64
            }
        }
        ReluN { n } => (x > 0.0 && x < n as f64) as u8 as f64,
        Elu { alpha } => {
            if x > 0.0 {
                1.0
            } else {
                alpha as f64 * x.exp()
            }
        }
        Sigmoid => sigmoid(x) * (1.0 - sigmoid(x)),
        HardSigmoid { a, b } => {
            let y = a as f64 * x + b as f64;
            if y > 0.0 && y < 1.0 { a as f64 } else { 0.0 }
        }
        Tanh => 1.0 - x.tanh().powi(2),
        Softplus => sigmoid(x),
        Softsign => 1.0 / (1.0 + x.abs()).powi(2),
        Gelu => {
            let cdf = 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            cdf + x * pdf
        }
        Abs => x.signum() * (x != 0.0) as u8 as f64,
        Exp => x.exp(),
        Log => 1.0 / x,
        Linear { a, .. } => a as f64,
        Neg => -1.0,
        Sqrt => 0.5 / x.sqrt(),
        Square => 2.0 * x,
        Recip => -1.0 / (x * x),
        GeluTanh => {
            let t = (GELU_K * (x + GELU_C * x * x * x)).tanh();
            0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_C * x * x)
        }
    }
}

pub fn unary(op: UnaryOp, x: &Array) -> Array {
    Array::new(&x.shape, x.data.iter().map(|&v| unary_f(op, v)).collect())
}

pub fn unary_backward(op: UnaryOp, x: &Array, dy: &Array) -> Array {
    Array::new(
        &x.shape,
        x.data
            .iter()
            .zip(&dy.data)
            .map(|(&v, &g)| unary_d(op, v) * g)
            .collect(),
    )
}

/// Every unary op whose gradient reads its output (`UnaryOp::grad_from`), plus the edge
/// parameters that still qualify (slope / alpha 0): what the output-based gradient is tested on.
pub fn output_based_ops() -> Vec<UnaryOp> {
    let mut ops: Vec<UnaryOp> = UnaryOp::all()
        .into_iter()
        .filter(|op| op.grad_from() == GradFrom::Output)
        .collect();
    ops.extend([
        UnaryOp::LeakyRelu { alpha: 0.0 },
        UnaryOp::Elu { alpha: 0.0 },
    ]);
    ops
}

/// Derivative of a unary op from its output `y = f(x)`, for the ops whose
/// [`UnaryOp::grad_from`] is `Output` (`None` for the others). Kinks as [`unary_d`]: every test
/// below is `x`'s test rewritten in `y` (`y > 0 ⇔ x > 0` for ReLU, leaky ReLU and ELU with
/// alpha ≥ 0; `0 < y < n ⇔ 0 < x < n`; hard sigmoid's `0 < y < 1` is its `0 < a·x + b < 1`).
pub fn unary_d_out(op: UnaryOp, y: f64) -> Option<f64> {
    use UnaryOp::*;
    if op.grad_from() != GradFrom::Output {
        return None;
    }
    Some(match op {
        Relu => (y > 0.0) as u8 as f64,
        LeakyRelu { alpha } => {
            if y > 0.0 {
                1.0
            } else {
                alpha as f64
            }
        }
        ReluN { n } => (y > 0.0 && y < n as f64) as u8 as f64,
        // alpha·eˣ = y + alpha on the x ≤ 0 branch.
        Elu { alpha } => {
            if y > 0.0 {
                1.0
            } else {
                y + alpha as f64
            }
        }
        Sigmoid => y * (1.0 - y),
        HardSigmoid { a, .. } => {
            if y > 0.0 && y < 1.0 {
                a as f64
            } else {
                0.0
            }
        }
        Tanh => 1.0 - y * y,
        Exp => y,
        Sqrt => 0.5 / y,
        Recip => -y * y,
        _ => unreachable!("grad_from said {op:?} is output-based"),
    })
}

/// `dx = f'(x)·dy` from the output `y = f(x)`; an `Err` for an op whose derivative is not a
/// function of its output.
pub fn unary_backward_out(op: UnaryOp, y: &Array, dy: &Array) -> Result<Array> {
    if unary_d_out(op, 0.5).is_none() {
        return Err(Error::Invalid(format!(
            "the derivative of {op:?} is not a function of its output"
        )));
    }
    Ok(Array::new(
        &y.shape,
        y.data
            .iter()
            .zip(&dy.data)
            .map(|(&v, &g)| unary_d_out(op, v).unwrap() * g)
            .collect(),
    ))
}

fn binary_f(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
    }
}

fn binary_d(op: BinaryOp, a: f64, b: f64) -> (f64, f64) {
    match op {
        BinaryOp::Add => (1.0, 1.0),
        BinaryOp::Sub => (1.0, -1.0),
        BinaryOp::Mul => (b, a),
        BinaryOp::Div => (1.0 / b, -a / (b * b)),
        BinaryOp::Max => {
            if a >= b {
                (1.0, 0.0)
            } else {
                (0.0, 1.0)
            }
        }
        BinaryOp::Min => {
            if a <= b {
                (1.0, 0.0)
            } else {
                (0.0, 1.0)
            }
        }
    }
}

/// Calls `f(out_index, a_index, b_index)` for every element of the broadcast output.
fn for_broadcast(a: &[usize], b: &[usize], out: &[usize], mut f: impl FnMut(usize, usize, usize)) {
    let sa = crate::ops::elementwise::gpu::broadcast_strides(a, out);
    let sb = crate::ops::elementwise::gpu::broadcast_strides(b, out);
    let n: usize = out.iter().product();
    for i in 0..n {
        let (mut rem, mut ia, mut ib) = (i, 0, 0);
        for d in (0..out.len()).rev() {
            let c = rem % out[d];
            rem /= out[d];
            ia += c * sa[d];
            ib += c * sb[d];
        }
        f(i, ia, ib);
    }
}

/// `a (op) b` with numpy broadcasting; `out` is the broadcast shape.
pub fn binary(op: BinaryOp, a: &Array, b: &Array, out: &[usize]) -> Array {
    let mut y = Array::zeros(out);
    for_broadcast(&a.shape, &b.shape, out, |i, ia, ib| {
        y.data[i] = binary_f(op, a.data[ia], b.data[ib])
    });
    y
}

/// Gradients of `a (op) b`, each summed over the dims it was broadcast along.
pub fn binary_backward(op: BinaryOp, a: &Array, b: &Array, dy: &Array) -> (Array, Array) {
    let mut ga = Array::zeros(&a.shape);
    let mut gb = Array::zeros(&b.shape);
    for_broadcast(&a.shape, &b.shape, &dy.shape, |i, ia, ib| {
        let (da, db) = binary_d(op, a.data[ia], b.data[ib]);
        ga.data[ia] += da * dy.data[i];
        gb.data[ib] += db * dy.data[i];
    });
    (ga, gb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{finite_diff, max_rel_diff};

    fn dot(a: &Array, b: &Array) -> f64 {
        a.data.iter().zip(&b.data).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn erf_matches_known_values() {
        assert!((erf(0.5) - 0.5204998778130465).abs() < 1e-14);
        assert!((erf(-1.0) + 0.8427007929497149).abs() < 1e-14);
        assert!((erf(3.5) - 0.9999992569016276).abs() < 1e-14);
    }

    #[test]
    fn unary_backward_matches_finite_differences() {
        // Points away from kinks (0, relu-n's n, hard sigmoid's corners); positive for log/sqrt/recip.
        let x = Array::new(&[7], vec![-2.3, -0.7, -0.2, 0.3, 0.45, 1.1, 2.9]);
        let xp = Array::new(&[7], x.data.iter().map(|v| v.abs() + 0.1).collect());
        for op in UnaryOp::all() {
            let x = if matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip) {
                &xp
            } else {
                &x
            };
            let dy = Array::seeded(&x.shape, 3);
            let g = unary_backward(op, x, &dy);
            let fd = finite_diff(x, 1e-6, |x| dot(&unary(op, x), &dy));
            assert!(
                max_rel_diff(&g.data, &fd.data) < 1e-6,
                "{op:?}: {:?} vs {:?}",
                g.data,
                fd.data
            );
        }
    }

    #[test]
    fn which_unary_ops_differentiate_from_their_output() {
        use UnaryOp::*;
        let out = output_based_ops();
        for op in [Relu, Sigmoid, Tanh, Exp, Sqrt, Recip] {
            assert!(out.contains(&op), "{op:?}");
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
            Abs,
            Log,
            Square,
        ] {
            assert_eq!(op.grad_from(), GradFrom::Input, "{op:?}");
            assert!(unary_backward_out(op, &Array::zeros(&[2]), &Array::zeros(&[2])).is_err());
        }
        let l = Linear { a: 1.5, b: -0.25 };
        assert_eq!(l.grad_from(), GradFrom::Nothing(Linear { a: 1.5, b: 0.0 }));
        assert_eq!(Neg.grad_from(), GradFrom::Nothing(Neg));
    }

    #[test]
    fn output_based_backward_matches_finite_differences_and_the_input_based_one() {
        // Away from kinks for the finite differences; positive for sqrt / recip.
        for op in output_based_ops() {
            for len in [1usize, 7, 33] {
                let mut x = Array::seeded(&[len], 40 + len as u64);
                for v in &mut x.data {
                    *v = if matches!(op, UnaryOp::Sqrt | UnaryOp::Recip) {
                        v.abs() * 3.0 + 0.1
                    } else {
                        *v * 4.0
                    };
                    if matches!(op, UnaryOp::ReluN { .. }) && (*v - 0.5).abs() < 0.01 {
                        *v += 0.05;
                    }
                }
                let dy = Array::seeded(&x.shape, 3);
                let g = unary_backward_out(op, &unary(op, &x), &dy).unwrap();
                let fd = finite_diff(&x, 1e-6, |x| dot(&unary(op, x), &dy));
                assert!(
                    max_rel_diff(&g.data, &fd.data) < 1e-6,
                    "{op:?} len {len}: {:?} vs {:?}",
                    g.data,
                    fd.data
                );
                let gx = unary_backward(op, &x, &dy);
                assert!(max_rel_diff(&g.data, &gx.data) < 1e-12, "{op:?} len {len}");
            }
        }
    }

    #[test]
    fn output_based_kinks_match_the_input_based_convention() {
        // At every kink (and at ±0, ±inf) both forms take the same branch.
        let xs = [0.0, -0.0, 0.5, -2.5, 2.5, f64::INFINITY, f64::NEG_INFINITY];
        for op in output_based_ops() {
            for &x in &xs {
                if matches!(op, UnaryOp::Sqrt | UnaryOp::Recip) && x <= 0.0 {
                    continue; // 0: ±inf either way; < 0: NaN
                }
                let (from_x, from_y) = (unary_d(op, x), unary_d_out(op, unary_f(op, x)).unwrap());
                // Equal at the kinks; off them to rounding (ELU's y + alpha vs alpha·eˣ).
                let close = (from_x - from_y).abs() <= 1e-12 * from_x.abs().max(1.0);
                assert!(
                    from_x == from_y || close,
                    "{op:?} at {x}: from x {from_x}, from y {from_y}"
                );
            }
        }
    }

    #[test]
    fn binary_backward_matches_finite_differences_with_broadcast() {
        let a = Array::seeded(&[3, 1, 5], 1);
        let b = Array::new(
            &[4, 1],
            Array::seeded(&[4, 1], 2)
                .data
                .iter()
                .map(|v| v + 2.0)
                .collect(),
        );
        let out = [3, 4, 5];
        let dy = Array::seeded(&out, 9);
        for op in [
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Div,
            BinaryOp::Max,
            BinaryOp::Min,
        ] {
            let (ga, gb) = binary_backward(op, &a, &b, &dy);
            let fa = finite_diff(&a, 1e-6, |a| dot(&binary(op, a, &b, &out), &dy));
            let fb = finite_diff(&b, 1e-6, |b| dot(&binary(op, &a, b, &out), &dy));
            assert!(max_rel_diff(&ga.data, &fa.data) < 1e-6, "{op:?} da");
            assert!(max_rel_diff(&gb.data, &fb.data) < 1e-6, "{op:?} db");
        }
    }
}
