//! f64 reference of the reductions (sum, mean, max with its argmax) and their gradients.

use super::ReduceKind;
use crate::reference::Array;

/// Reduction over `axis` (kept with size 1); for Max also the argmax along the axis.
pub fn reduce(op: ReduceKind, x: &Array, axis: usize) -> (Array, Vec<usize>) {
    let outer: usize = x.shape[..axis].iter().product();
    let len = x.shape[axis];
    let inner: usize = x.shape[axis + 1..].iter().product();
    let mut shape = x.shape.clone();
    shape[axis] = 1;
    let mut y = Array::zeros(&shape);
    let mut arg = vec![0; outer * inner];
    for o in 0..outer {
        for k in 0..inner {
            let at = |l: usize| x.data[(o * len + l) * inner + k];
            let j = o * inner + k;
            y.data[j] = match op {
                ReduceKind::Sum => (0..len).map(at).sum(),
                ReduceKind::Mean => (0..len).map(at).sum::<f64>() / len as f64,
                ReduceKind::Max => {
                    let mut best = 0;
                    for l in 1..len {
                        // The first NaN wins and stays, as torch.max.
                        if (at(l) > at(best) || at(l).is_nan()) && !at(best).is_nan() {
                            best = l;
                        }
                    }
                    arg[j] = best;
                    at(best)
                }
            };
        }
    }
    (y, arg)
}

/// Gradient of `reduce` given dy (shape with the axis kept as 1) and, for Max, the argmax.
pub fn reduce_backward(
    op: ReduceKind,
    x_shape: &[usize],
    axis: usize,
    dy: &Array,
    arg: &[usize],
) -> Array {
    let outer: usize = x_shape[..axis].iter().product();
    let len = x_shape[axis];
    let inner: usize = x_shape[axis + 1..].iter().product();
    let mut dx = Array::zeros(x_shape);
    for o in 0..outer {
        for l in 0..len {
            for k in 0..inner {
                let j = o * inner + k;
                dx.data[(o * len + l) * inner + k] = match op {
                    ReduceKind::Sum => dy.data[j],
                    ReduceKind::Mean => dy.data[j] / len as f64,
                    ReduceKind::Max => {
                        if arg[j] == l {
                            dy.data[j]
                        } else {
                            0.0
                        }
                    }
                };
            }
        }
    }
    dx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{finite_diff, max_rel_diff};

    fn dot(a: &Array, b: &Array) -> f64 {
        a.data.iter().zip(&b.data).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn reduce_backward_matches_finite_differences() {
        let x = Array::seeded(&[2, 7, 3], 4);
        for op in [ReduceKind::Sum, ReduceKind::Mean, ReduceKind::Max] {
            for axis in 0..3 {
                let (y, arg) = reduce(op, &x, axis);
                let dy = Array::seeded(&y.shape, 5);
                let g = reduce_backward(op, &x.shape, axis, &dy, &arg);
                let fd = finite_diff(&x, 1e-6, |x| dot(&reduce(op, x, axis).0, &dy));
                assert!(max_rel_diff(&g.data, &fd.data) < 1e-6, "{op:?} axis {axis}");
            }
        }
    }
}
