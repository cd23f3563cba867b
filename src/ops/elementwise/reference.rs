//! f64 reference of the elementwise ops: unary (every neuron, through the f64 functions of the
//! neuron table [`UnaryOp`]) and broadcasting binary ops, forward and backward.

use crate::error::{Error, Result, shape_err};
use crate::ops::axis::fmt_shape;
use crate::ops::elementwise::{BinaryOp, GradFrom, UnaryOp};
use crate::reference::Array;

/// `y = f(x)` elementwise ([`UnaryOp::f`]); any shape.
pub fn unary(op: UnaryOp, x: &Array) -> Array {
    Array::new(&x.shape, x.data.iter().map(|&v| op.f(v)).collect())
}

/// `dy` must have the shape of `v` (x or y).
fn check_dy(op: UnaryOp, v: &Array, dy: &Array) -> Result<()> {
    if v.shape != dy.shape {
        return shape_err(
            op.name(),
            format!(
                "dy {} does not match {}",
                fmt_shape(&dy.shape),
                fmt_shape(&v.shape)
            ),
        );
    }
    Ok(())
}

/// `dx = f'(x)·dy` ([`UnaryOp::df`]); `dy` must have the shape of `x`.
pub fn unary_backward(op: UnaryOp, x: &Array, dy: &Array) -> Result<Array> {
    check_dy(op, x, dy)?;
    Ok(Array::new(
        &x.shape,
        x.data
            .iter()
            .zip(&dy.data)
            .map(|(&v, &g)| op.df(v) * g)
            .collect(),
    ))
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

/// `dx = f'(x)·dy` from the output `y = f(x)`; an `Err` for an op whose derivative is not a
/// function of its output.
pub fn unary_backward_out(op: UnaryOp, y: &Array, dy: &Array) -> Result<Array> {
    if op.df_out(0.5).is_none() {
        return Err(Error::Invalid(format!(
            "the derivative of {op:?} is not a function of its output"
        )));
    }
    check_dy(op, y, dy)?;
    Ok(Array::new(
        &y.shape,
        y.data
            .iter()
            .zip(&dy.data)
            .map(|(&v, &g)| op.df_out(v).unwrap() * g)
            .collect(),
    ))
}

fn binary_f(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        // NaN if either is, as torch.maximum (Rust's max drops it).
        BinaryOp::Max => {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        }
        BinaryOp::Min => {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.min(b)
            }
        }
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
    fn unary_backward_matches_finite_differences() {
        // Inputs in (−4, 4) on awkward lengths, nudged off the kinks (0, ReLU-n's n, hard
        // sigmoid's corners); positive for log / sqrt / recip.
        for op in UnaryOp::all() {
            let kinks = match op {
                UnaryOp::ReluN { n } => vec![0.0, n as f64],
                UnaryOp::HardSigmoid { a, b } => {
                    vec![-b as f64 / a as f64, (1.0 - b as f64) / a as f64]
                }
                _ => vec![0.0],
            };
            for shape in [&[1usize][..], &[7], &[3, 33]] {
                let mut x = Array::seeded(shape, 5);
                for v in &mut x.data {
                    *v = if matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip) {
                        v.abs() * 3.0 + 0.1
                    } else {
                        *v * 4.0
                    };
                    for &k in &kinks {
                        if (*v - k).abs() < 1e-3 {
                            *v += 2e-3;
                        }
                    }
                }
                let dy = Array::seeded(&x.shape, 3);
                let g = unary_backward(op, &x, &dy).unwrap();
                let fd = finite_diff(&x, 1e-6, |x| dot(&unary(op, x), &dy));
                assert!(
                    max_rel_diff(&g.data, &fd.data) < 1e-6,
                    "{op:?} {shape:?}: {:?} vs {:?}",
                    g.data,
                    fd.data
                );
            }
        }
    }

    #[test]
    fn backward_rejects_mismatched_dy() {
        let (x, dy) = (Array::zeros(&[2, 3]), Array::zeros(&[3, 2]));
        let e = unary_backward(UnaryOp::Tanh, &x, &dy)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tanh") && e.contains("(3, 2)") && e.contains("(2, 3)"),
            "{e}"
        );
        assert!(unary_backward_out(UnaryOp::Tanh, &x, &dy).is_err());
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
                let gx = unary_backward(op, &x, &dy).unwrap();
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
                let (from_x, from_y) = (op.df(x), op.df_out(op.f(x)).unwrap());
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
