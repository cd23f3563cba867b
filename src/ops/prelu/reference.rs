//! Reference for PReLU, forward and backward: element `j` of x uses slope `a[(j / inner) % slots]`
//! of the layout `PRelu::layout`. At `x = 0` the gradient takes the `x <= 0` branch (`dx = a·dy`,
//! slope term 0), as PyTorch does.

use crate::error::{Result, shape_err};
use crate::ops::axis::fmt_shape;
use crate::ops::prelu::PRelu;
use crate::reference::Array;

/// The layout's `(slots, inner)` after checking x, the slopes and (when given) dy.
fn check(op: &PRelu, x: &Array, a: Option<&Array>, dy: Option<&Array>) -> Result<(usize, usize)> {
    let (_, slots, inner) = op.layout(&x.shape)?;
    if let Some(a) = a
        && a.shape != [slots]
    {
        return shape_err(
            PRelu::OP,
            format!("weight {} does not match ({slots})", fmt_shape(&a.shape)),
        );
    }
    if let Some(dy) = dy
        && dy.shape != x.shape
    {
        return shape_err(
            PRelu::OP,
            format!(
                "dy {} does not match x {}",
                fmt_shape(&dy.shape),
                fmt_shape(&x.shape)
            ),
        );
    }
    Ok((slots, inner))
}

/// `y = x > 0 ? x : a[c]·x`; y has x's shape.
pub fn prelu_forward(op: &PRelu, x: &Array, a: &Array) -> Result<Array> {
    let (slots, inner) = check(op, x, Some(a), None)?;
    let data = x
        .data
        .iter()
        .enumerate()
        .map(|(j, &v)| {
            if v > 0.0 {
                v
            } else {
                a.data[(j / inner) % slots] * v
            }
        })
        .collect();
    Ok(Array::new(&x.shape, data))
}

/// `dx = x > 0 ? dy : a[c]·dy` (x = 0 takes the `a` branch).
pub fn prelu_backward_input(op: &PRelu, x: &Array, a: &Array, dy: &Array) -> Result<Array> {
    let (slots, inner) = check(op, x, Some(a), Some(dy))?;
    let data = x
        .data
        .iter()
        .zip(&dy.data)
        .enumerate()
        .map(|(j, (&v, &g))| {
            if v > 0.0 {
                g
            } else {
                a.data[(j / inner) % slots] * g
            }
        })
        .collect();
    Ok(Array::new(&x.shape, data))
}

/// `da[c] = Σ (x > 0 ? 0 : x)·dy` over every element using slope `c`; shape `[num_parameters]`.
pub fn prelu_backward_weight(op: &PRelu, x: &Array, dy: &Array) -> Result<Array> {
    let (slots, inner) = check(op, x, None, Some(dy))?;
    let mut da = Array::zeros(&[slots]);
    for (j, (&v, &g)) in x.data.iter().zip(&dy.data).enumerate() {
        if v <= 0.0 {
            da.data[(j / inner) % slots] += v * g;
        }
    }
    Ok(da)
}

/// Both gradients: `(dx, da)`.
pub fn prelu_backward(op: &PRelu, x: &Array, a: &Array, dy: &Array) -> Result<(Array, Array)> {
    Ok((
        prelu_backward_input(op, x, a, dy)?,
        prelu_backward_weight(op, x, dy)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{finite_diff, max_rel_diff};

    /// Seeded values pushed at least 0.1 away from the kink at 0, so a finite-difference step
    /// never crosses it.
    fn off_kink(shape: &[usize], seed: u64) -> Array {
        let a = Array::seeded(shape, seed);
        let data = a
            .data
            .iter()
            .map(|v| v.signum() * (0.1 + v.abs()))
            .collect();
        Array::new(shape, data)
    }

    fn dot(a: &Array, b: &Array) -> f64 {
        a.data.iter().zip(&b.data).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn backward_matches_finite_differences() {
        let shapes: [&[usize]; 6] = [
            &[1, 1],
            &[1, 7],
            &[3, 7],
            &[1, 33, 1, 1],
            &[2, 3, 5, 7],
            &[2, 4, 3],
        ];
        for shape in shapes {
            for shared in [false, true] {
                let op = PRelu::new(if shared { 1 } else { shape[1] }).unwrap();
                let x = off_kink(shape, 1);
                // Slopes of both signs and above 1: nothing special about 0.25.
                let a = Array::seeded(&[op.num_parameters], 2).map_scaled(1.5);
                let dy = Array::seeded(shape, 3);
                let (dx, da) = prelu_backward(&op, &x, &a, &dy).unwrap();
                let fx = finite_diff(&x, 1e-6, |x| dot(&prelu_forward(&op, x, &a).unwrap(), &dy));
                let fa = finite_diff(&a, 1e-6, |a| dot(&prelu_forward(&op, &x, a).unwrap(), &dy));
                let (ex, ea) = (
                    max_rel_diff(&dx.data, &fx.data),
                    max_rel_diff(&da.data, &fa.data),
                );
                assert!(
                    ex < 1e-8 && ea < 1e-8,
                    "{shape:?} shared {shared}: dx {ex}, da {ea}"
                );
            }
        }
    }

    #[test]
    fn hand_values_and_the_convention_at_zero() {
        // (N, C) = (2, 2), one slope per channel: a = [0.25, -2].
        let op = PRelu::new(2).unwrap();
        let x = Array::new(&[2, 2], vec![3.0, -1.0, 0.0, -4.0]);
        let a = Array::new(&[2], vec![0.25, -2.0]);
        let y = prelu_forward(&op, &x, &a).unwrap();
        assert_eq!(y.data, vec![3.0, 2.0, 0.0, 8.0]);
        let dy = Array::new(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let (dx, da) = prelu_backward(&op, &x, &a, &dy).unwrap();
        // x = 0 (element 2, channel 0) takes the slope branch: dx = 0.25·3.
        assert_eq!(dx.data, vec![1.0, -4.0, 0.75, -8.0]);
        // Channel 0: 3 > 0 adds nothing, 0·3 = 0; channel 1: −1·2 + −4·4.
        assert_eq!(da.data, vec![0.0, -18.0]);
        // Shared slope: every element uses a[0]; da sums over all of them.
        let op = PRelu::new(1).unwrap();
        let a = Array::new(&[1], vec![0.5]);
        assert_eq!(
            prelu_forward(&op, &x, &a).unwrap().data,
            vec![3.0, -0.5, 0.0, -2.0]
        );
        let (dx, da) = prelu_backward(&op, &x, &a, &dy).unwrap();
        assert_eq!(dx.data, vec![1.0, 1.0, 1.5, 2.0]);
        assert_eq!(da.data, vec![-18.0]);
        // Channels are axis 1 of (N, C, H, W): slope c covers the whole (h, w) plane.
        let op = PRelu::new(3).unwrap();
        let x = Array::new(&[1, 3, 2, 1], vec![-1.0; 6]);
        let a = Array::new(&[3], vec![1.0, 2.0, 3.0]);
        let y = prelu_forward(&op, &x, &a).unwrap();
        assert_eq!(y.data, vec![-1.0, -1.0, -2.0, -2.0, -3.0, -3.0]);
    }

    #[test]
    fn bad_shapes_are_errors_naming_the_op() {
        let op = PRelu::new(3).unwrap();
        let x = Array::zeros(&[2, 3, 4]);
        let e = prelu_forward(&op, &x, &Array::zeros(&[2]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("prelu") && e.contains("weight (2)"), "{e}");
        let e = prelu_backward_input(&op, &x, &Array::zeros(&[3]), &Array::zeros(&[2, 3]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("prelu") && e.contains("dy (2, 3)"), "{e}");
        let e = prelu_backward_weight(&op, &x, &Array::zeros(&[2, 3, 5]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("prelu") && e.contains("dy (2, 3, 5)"), "{e}");
        let e = prelu_forward(&op, &Array::zeros(&[3]), &Array::zeros(&[3]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("prelu") && e.contains("rank 1"), "{e}");
        let e = prelu_forward(&op, &Array::zeros(&[2, 7]), &Array::zeros(&[3]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("prelu") && e.contains("num_parameters = 3"),
            "{e}"
        );
    }
}
