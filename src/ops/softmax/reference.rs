//! Reference for softmax and log-softmax along any axis, forward and backward (from the output).

use crate::error::{Result, shape_err};
use crate::ops::axis::fmt_shape;
use crate::ops::softmax::Softmax;
use crate::reference::Array;

/// Splits `shape` at `axis` into (outer, len, inner): element (o, k, i) is at
/// `(o·len + k)·inner + i`.
fn split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

/// Forward; `y` has the shape of `x`.
pub fn softmax_forward(op: &Softmax, x: &Array) -> Result<Array> {
    let axis = op.check(&x.shape)?;
    let (outer, len, inner) = split(&x.shape, axis);
    let mut y = Array::zeros(&x.shape);
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * len + k) * inner + i;
            let max = (0..len)
                .map(|k| x.data[at(k)])
                .fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..len).map(|k| (x.data[at(k)] - max).exp()).sum();
            let lse = max + sum.ln();
            for k in 0..len {
                let z = x.data[at(k)];
                y.data[at(k)] = if op.log {
                    z - lse
                } else {
                    (z - max).exp() / sum
                };
            }
        }
    }
    Ok(y)
}

/// Backward from the forward output `y` (what the GPU keeps): softmax
/// `dx = y·(dy − Σ dy·y)`; log-softmax `dx = dy − exp(y)·Σ dy`; sums along the axis.
pub fn softmax_backward(op: &Softmax, y: &Array, dy: &Array) -> Result<Array> {
    let axis = op.check(&y.shape)?;
    if y.shape != dy.shape {
        return shape_err(
            op.name(),
            format!(
                "dy {} does not match y {}",
                fmt_shape(&dy.shape),
                fmt_shape(&y.shape)
            ),
        );
    }
    let (outer, len, inner) = split(&y.shape, axis);
    let mut dx = Array::zeros(&y.shape);
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * len + k) * inner + i;
            if op.log {
                let s: f64 = (0..len).map(|k| dy.data[at(k)]).sum();
                for k in 0..len {
                    dx.data[at(k)] = dy.data[at(k)] - y.data[at(k)].exp() * s;
                }
            } else {
                let s: f64 = (0..len).map(|k| dy.data[at(k)] * y.data[at(k)]).sum();
                for k in 0..len {
                    dx.data[at(k)] = y.data[at(k)] * (dy.data[at(k)] - s);
                }
            }
        }
    }
    Ok(dx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{finite_diff, max_rel_diff};

    #[test]
    fn backward_matches_finite_differences_on_every_axis() {
        for shape in [&[7usize][..], &[1, 7], &[3, 33], &[2, 5, 1, 3]] {
            for axis in -(shape.len() as isize)..shape.len() as isize {
                for log in [false, true] {
                    let op = Softmax { axis, log };
                    let mut x = Array::seeded(shape, 1);
                    x.data.iter_mut().for_each(|v| *v *= 5.0);
                    let dy = Array::seeded(shape, 2);
                    let f = |x: &Array| {
                        let y = softmax_forward(&op, x).unwrap();
                        y.data.iter().zip(&dy.data).map(|(a, b)| a * b).sum::<f64>()
                    };
                    let num = finite_diff(&x, 1e-6, f);
                    let y = softmax_forward(&op, &x).unwrap();
                    let ana = softmax_backward(&op, &y, &dy).unwrap();
                    let d = max_rel_diff(&ana.data, &num.data);
                    assert!(d < 1e-7, "{shape:?} axis {axis} log {log}: {d}");
                }
            }
        }
    }

    #[test]
    fn hand_values_and_stability() {
        // Equal logits → uniform.
        let y = softmax_forward(&Softmax::CHANNELS, &Array::new(&[1, 4], vec![3.0; 4])).unwrap();
        assert!(y.data.iter().all(|&v| (v - 0.25).abs() < 1e-16));
        // Huge logits neither overflow nor underflow the log form.
        let x = Array::new(&[1, 3], vec![1000.0, 0.0, -1000.0]);
        let y = softmax_forward(&Softmax::CHANNELS, &x).unwrap();
        assert_eq!(y.data, vec![1.0, 0.0, 0.0]);
        let l = softmax_forward(&Softmax::LOG_CHANNELS, &x).unwrap();
        assert_eq!(l.data, vec![0.0, -1000.0, -2000.0]);
        // Axis 1 of (2, 3, 2): each (n, ·, w) column sums to 1.
        let y = softmax_forward(&Softmax::CHANNELS, &Array::seeded(&[2, 3, 2], 3)).unwrap();
        for n in 0..2 {
            for w in 0..2 {
                let s: f64 = (0..3).map(|c| y.data[(n * 3 + c) * 2 + w]).sum();
                assert!((s - 1.0).abs() < 1e-15);
            }
        }
    }

    #[test]
    fn bad_axis_and_shapes_are_errors() {
        let x = Array::zeros(&[2, 3]);
        let e = softmax_forward(
            &Softmax {
                axis: 2,
                log: false,
            },
            &x,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("softmax") && e.contains("axis 2") && e.contains("rank 2"),
            "{e}"
        );
        let e = softmax_forward(
            &Softmax {
                axis: -3,
                log: true,
            },
            &x,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("log_softmax") && e.contains("axis -3"), "{e}");
        let e = softmax_forward(&Softmax::CHANNELS, &Array::zeros(&[5]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("softmax") && e.contains("axis 1") && e.contains("rank 1"),
            "{e}"
        );
        let e = softmax_backward(&Softmax::CHANNELS, &x, &Array::zeros(&[3, 2]));
        let e = e.unwrap_err().to_string();
        assert!(e.contains("dy (3, 2)") && e.contains("y (2, 3)"), "{e}");
    }
}
