//! Reference pooling: `Pool2d` (max / average) and `GlobalAvgPool`, forward and backward.
//!
//! A pooling window is a depthwise convolution's taps ([`Pool2d::geometry`]), so this walks the
//! same [`for_each_tap`] as the convolutions; only what is done per tap differs.

use crate::error::{Error, Result, shape_err};
use crate::ops::conv::ConvGeometry;
use crate::ops::conv::reference::{check_shape, for_each_tap};
use crate::ops::pool::{GlobalAvgPool, Pool2d, PoolKind};
use crate::reference::Array;

/// `(N, C, H, W)` → `(N, C, OH, OW)`. For max pooling also the argmax: per output element, the
/// flat row-major index into the whole input `x.data` of the element that won (the first one in
/// window order — kernel rows, then columns — among equals). It is the state the backward pass
/// needs; average pooling has none.
pub fn forward(op: &Pool2d, x: &Array) -> Result<(Array, Option<Vec<usize>>)> {
    let g = op.geometry(&x.shape)?;
    let mut y = Array::zeros(&g.out_shape());
    match op.kind {
        PoolKind::Max => {
            let mut argmax = vec![usize::MAX; y.len()];
            for_each_tap(&g, |xi, _, yi| {
                // The first NaN wins and stays, as PyTorch's max pooling.
                let (v, best) = (x.data[xi], y.data[yi]);
                if argmax[yi] == usize::MAX || ((v > best || v.is_nan()) && !best.is_nan()) {
                    argmax[yi] = xi;
                    y.data[yi] = x.data[xi];
                }
            });
            // Geometry validation guarantees every window reaches the input.
            debug_assert!(!argmax.contains(&usize::MAX));
            Ok((y, Some(argmax)))
        }
        PoolKind::Avg { .. } => {
            let div = avg_divisors(op, &g);
            for_each_tap(&g, |xi, _, yi| y.data[yi] += x.data[xi]);
            y.data.iter_mut().zip(&div).for_each(|(v, d)| *v /= d);
            Ok((y, None))
        }
    }
}

/// The divisor of each average-pooling output: `kh·kw`, or with `count_include_pad: false` the
/// number of taps that land inside the input (never 0: the geometry rejects such windows).
fn avg_divisors(op: &Pool2d, g: &ConvGeometry) -> Vec<f64> {
    let n_out: usize = g.out_shape().iter().product();
    match op.kind {
        PoolKind::Avg {
            count_include_pad: false,
        } => {
            let mut count = vec![0.0; n_out];
            for_each_tap(g, |_, _, yi| count[yi] += 1.0);
            count
        }
        _ => vec![(g.kernel.0 * g.kernel.1) as f64; n_out],
    }
}

/// `dx` for an input of `x_shape`. Max pooling routes each `dy` to its argmax (from
/// [`forward`]; required), adding where windows overlap; average pooling spreads `dy / divisor`
/// over the window's taps inside the input.
pub fn backward(
    op: &Pool2d,
    x_shape: &[usize],
    dy: &Array,
    argmax: Option<&[usize]>,
) -> Result<Array> {
    let g = op.geometry(x_shape)?;
    check_shape(op.name(), "output gradient", &dy.shape, &g.out_shape())?;
    let mut dx = Array::zeros(x_shape);
    match op.kind {
        PoolKind::Max => {
            let argmax = argmax.ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: backward needs the argmax from forward",
                    op.name()
                ))
            })?;
            if argmax.len() != dy.len() || argmax.iter().any(|&i| i >= dx.len()) {
                return shape_err(
                    op.name(),
                    format!(
                        "argmax has {} entries (for {} outputs) or indexes past the input {x_shape:?}",
                        argmax.len(),
                        dy.len()
                    ),
                );
            }
            for (&i, d) in argmax.iter().zip(&dy.data) {
                dx.data[i] += d;
            }
        }
        PoolKind::Avg { .. } => {
            let div = avg_divisors(op, &g);
            for_each_tap(&g, |xi, _, yi| dx.data[xi] += dy.data[yi] / div[yi]);
        }
    }
    Ok(dx)
}

/// Mean over H·W: `(N, C, H, W)` → `(N, C, 1, 1)`.
pub fn global_avg_forward(op: &GlobalAvgPool, x: &Array) -> Result<Array> {
    let out = op.out_shape(&x.shape)?;
    let hw = x.shape[2] * x.shape[3];
    let data = x
        .data
        .chunks(hw)
        .map(|plane| plane.iter().sum::<f64>() / hw as f64)
        .collect();
    Ok(Array::new(&out, data))
}

/// `dx = dy / (H·W)` broadcast over each plane.
pub fn global_avg_backward(op: &GlobalAvgPool, x_shape: &[usize], dy: &Array) -> Result<Array> {
    check_shape(
        "global_avg_pool",
        "output gradient",
        &dy.shape,
        &op.out_shape(x_shape)?,
    )?;
    let hw = x_shape[2] * x_shape[3];
    let data = dy
        .data
        .iter()
        .flat_map(|&d| std::iter::repeat_n(d / hw as f64, hw))
        .collect();
    Ok(Array::new(x_shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv::Padding;
    use crate::ops::conv::reference::testing::{assert_close, assert_fd, dot};

    /// Backward against central differences of `Σ dy · forward(x)`. Max pooling is piecewise
    /// linear; random data keeps every window's maximum clear of ties by far more than eps.
    fn check_grads(op: &Pool2d, x_shape: &[usize], seed: u64) {
        let x = Array::seeded(x_shape, seed);
        let (y, argmax) = forward(op, &x).unwrap();
        assert_eq!(y.shape, op.out_shape(x_shape).unwrap());
        let dy = Array::seeded(&y.shape, seed + 1);
        let dx = backward(op, x_shape, &dy, argmax.as_deref()).unwrap();
        assert_fd(op.name(), &x, &dx, |x| dot(&dy, &forward(op, x).unwrap().0));
    }

    fn kinds() -> [PoolKind; 3] {
        [
            PoolKind::Max,
            PoolKind::Avg {
                count_include_pad: true,
            },
            PoolKind::Avg {
                count_include_pad: false,
            },
        ]
    }

    #[test]
    fn grads_kernel_not_stride() {
        for (i, kind) in kinds().into_iter().enumerate() {
            let s = i as u64 * 10;
            // overlapping windows (k > s) and gaps (k < s)
            check_grads(
                &Pool2d {
                    kind,
                    ..Pool2d::max((3, 3), (2, 2))
                },
                &[2, 2, 7, 6],
                s + 1,
            );
            check_grads(
                &Pool2d {
                    kind,
                    ..Pool2d::max((2, 1), (3, 2))
                },
                &[1, 3, 7, 5],
                s + 2,
            );
            check_grads(
                &Pool2d {
                    kind,
                    ..Pool2d::max((1, 1), (1, 1))
                },
                &[1, 1, 1, 1],
                s + 3,
            );
        }
    }

    #[test]
    fn grads_padding_and_dilation() {
        for (i, kind) in kinds().into_iter().enumerate() {
            let s = 100 + i as u64 * 10;
            let same = Pool2d {
                kind,
                padding: Padding::Same,
                ..Pool2d::max((3, 2), (2, 3))
            };
            check_grads(&same, &[1, 2, 7, 5], s + 1);
            let asym = Padding::Explicit {
                top: 1,
                bottom: 0,
                left: 2,
                right: 1,
            };
            check_grads(
                &Pool2d {
                    kind,
                    padding: asym,
                    ..Pool2d::max((3, 3), (1, 2))
                },
                &[2, 1, 4, 5],
                s + 2,
            );
            let dil = Pool2d {
                kind,
                dilation: (2, 2),
                padding: Padding::symmetric(1),
                ..Pool2d::max((2, 3), (2, 1))
            };
            check_grads(&dil, &[1, 2, 6, 7], s + 3);
        }
    }

    #[test]
    fn max_by_hand() {
        #[rustfmt::skip]
        let x = Array::new(&[1, 1, 4, 4], vec![
            1.0, 5.0, 2.0, 0.0,
            3.0, 4.0, 7.0, 7.0,
            0.0, 9.0, 1.0, 1.0,
            2.0, 2.0, 3.0, 8.0,
        ]);
        let (y, argmax) = forward(&Pool2d::max((2, 2), (2, 2)), &x).unwrap();
        assert_eq!(y.data, vec![5.0, 7.0, 9.0, 8.0]);
        // flat indices into x; the tie 7 / 7 goes to the first in window order
        assert_eq!(argmax.unwrap(), vec![1, 6, 9, 15]);
        // Overlapping windows add their gradients at a shared argmax.
        let op = Pool2d::max((2, 2), (1, 1));
        let (y, argmax) = forward(&op, &x).unwrap();
        assert_eq!(y.data, vec![5.0, 7.0, 7.0, 9.0, 9.0, 7.0, 9.0, 9.0, 8.0]);
        let dx = backward(
            &op,
            &x.shape,
            &Array::new(&y.shape, vec![1.0; 9]),
            argmax.as_deref(),
        )
        .unwrap();
        assert_eq!(dx.data[9], 4.0);
        assert_eq!(dx.data[6], 3.0);
        // Padding never wins, even against negative inputs.
        let neg = Array::new(&[1, 1, 1, 1], vec![-3.0]);
        let (y, _) = forward(
            &Pool2d {
                padding: Padding::symmetric(1),
                ..Pool2d::max((3, 3), (1, 1))
            },
            &neg,
        )
        .unwrap();
        assert_eq!(y.data, vec![-3.0]);
    }

    #[test]
    fn avg_by_hand() {
        let x = Array::new(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let op = |count_include_pad| Pool2d {
            padding: Padding::symmetric(1),
            ..Pool2d::avg((2, 2), (2, 2), count_include_pad)
        };
        // Each 2x2 window holds one input and three zeros of padding.
        assert_eq!(
            forward(&op(true), &x).unwrap().0.data,
            vec![0.25, 0.5, 0.75, 1.0]
        );
        assert_eq!(
            forward(&op(false), &x).unwrap().0.data,
            vec![1.0, 2.0, 3.0, 4.0]
        );
        let (y, argmax) = forward(&Pool2d::avg((2, 2), (1, 1), true), &x).unwrap();
        assert_eq!((y.data, argmax), (vec![2.5], None));
    }

    #[test]
    fn global_avg() {
        let op = GlobalAvgPool;
        let x = Array::seeded(&[2, 3, 5, 1], 7);
        let y = global_avg_forward(&op, &x).unwrap();
        assert_eq!(y.shape, vec![2, 3, 1, 1]);
        assert_close(
            "mean",
            &y.data[..1],
            &[x.data[..5].iter().sum::<f64>() / 5.0],
        );
        // the same as an average pool whose window is the whole image
        let full = forward(&Pool2d::avg((5, 1), (1, 1), true), &x).unwrap().0;
        assert_close("as avg pool", &y.data, &full.data);
        let dy = Array::seeded(&y.shape, 8);
        let dx = global_avg_backward(&op, &x.shape, &dy).unwrap();
        assert_fd("global_avg_pool", &x, &dx, |x| {
            dot(&dy, &global_avg_forward(&op, x).unwrap())
        });
        let m = global_avg_backward(&op, &x.shape, &Array::zeros(&[2, 3]))
            .unwrap_err()
            .to_string();
        assert!(m.contains("global_avg_pool") && m.contains("[2, 3]"), "{m}");
    }

    #[test]
    fn backward_errors() {
        let op = Pool2d::max((2, 2), (2, 2));
        let dy = Array::zeros(&[1, 1, 2, 2]);
        let m = backward(&op, &[1, 1, 4, 4], &dy, None)
            .unwrap_err()
            .to_string();
        assert!(m.contains("max_pool2d") && m.contains("argmax"), "{m}");
        let m = backward(&op, &[1, 1, 4, 4], &dy, Some(&[0, 1, 2, 16][..]))
            .unwrap_err()
            .to_string();
        assert!(m.contains("max_pool2d") && m.contains("argmax"), "{m}");
        let m = backward(
            &op,
            &[1, 1, 4, 4],
            &Array::zeros(&[1, 1, 2, 3]),
            Some(&[0; 6][..]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            m.contains("max_pool2d") && m.contains("[1, 1, 2, 3]") && m.contains("[1, 1, 2, 2]"),
            "{m}"
        );
    }
}
