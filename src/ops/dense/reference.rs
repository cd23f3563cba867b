//! Reference fully connected layer: `y = x · Wᵀ + b`, forward and backward, as plain matrix
//! loops over the `(N, K)` view of the input (an image input is the same data flattened).

use crate::error::Result;
use crate::ops::conv::reference::{Grads, add_channel_bias, channel_sums, check_bias, check_shape};
use crate::ops::dense::FullyConnected;
use crate::reference::Array;

const OP: &str = "fully_connected";

/// `(N, K)` → `(N, out)`, or `(N, C, H, W)` → `(N, out, 1, 1)`; `w` is `(out, K)`.
pub fn forward(op: &FullyConnected, x: &Array, w: &Array, b: Option<&Array>) -> Result<Array> {
    let (n, k) = op.matrix_shape(&x.shape)?;
    check_shape(OP, "weight", &w.shape, &op.weight_shape())?;
    check_bias(OP, op.bias, b, op.out_features)?;
    let o = op.out_features;
    let mut y = Array::zeros(&op.out_shape(&x.shape)?);
    for ni in 0..n {
        for oi in 0..o {
            y.data[ni * o + oi] = (0..k)
                .map(|ki| x.data[ni * k + ki] * w.data[oi * k + ki])
                .sum();
        }
    }
    if let Some(b) = b {
        add_channel_bias(&mut y, &b.data);
    }
    Ok(y)
}

/// `dx = dy · W`, shaped like the input.
pub fn backward_data(
    op: &FullyConnected,
    x_shape: &[usize],
    w: &Array,
    dy: &Array,
) -> Result<Array> {
    let (n, k) = op.matrix_shape(x_shape)?;
    check_shape(OP, "weight", &w.shape, &op.weight_shape())?;
    check_shape(OP, "output gradient", &dy.shape, &op.out_shape(x_shape)?)?;
    let o = op.out_features;
    let mut dx = Array::zeros(x_shape);
    for ni in 0..n {
        for ki in 0..k {
            dx.data[ni * k + ki] = (0..o)
                .map(|oi| dy.data[ni * o + oi] * w.data[oi * k + ki])
                .sum();
        }
    }
    Ok(dx)
}

/// `dW = dyᵀ · x`, `(out, K)`.
pub fn backward_weights(op: &FullyConnected, x: &Array, dy: &Array) -> Result<Array> {
    let (n, k) = op.matrix_shape(&x.shape)?;
    check_shape(OP, "output gradient", &dy.shape, &op.out_shape(&x.shape)?)?;
    let o = op.out_features;
    let mut dw = Array::zeros(&op.weight_shape());
    for oi in 0..o {
        for ki in 0..k {
            dw.data[oi * k + ki] = (0..n)
                .map(|ni| dy.data[ni * o + oi] * x.data[ni * k + ki])
                .sum();
        }
    }
    Ok(dw)
}

/// `db = Σ_n dy`, `(out,)`.
pub fn backward_bias(op: &FullyConnected, x_shape: &[usize], dy: &Array) -> Result<Array> {
    check_shape(OP, "output gradient", &dy.shape, &op.out_shape(x_shape)?)?;
    Ok(channel_sums(dy))
}

/// All gradients; `db` is `Some` exactly when the layer has a bias.
pub fn backward(op: &FullyConnected, x: &Array, w: &Array, dy: &Array) -> Result<Grads> {
    Ok(Grads {
        dx: backward_data(op, &x.shape, w, dy)?,
        dw: backward_weights(op, x, dy)?,
        db: if op.bias {
            Some(backward_bias(op, &x.shape, dy)?)
        } else {
            None
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv::Conv2d;
    use crate::ops::conv::reference::testing::{assert_close, assert_fd, dot};

    fn check_grads(op: &FullyConnected, x_shape: &[usize], seed: u64) {
        let x = Array::seeded(x_shape, seed);
        let w = Array::seeded(&op.weight_shape(), seed + 1);
        let b = op.bias.then(|| Array::seeded(&[op.out_features], seed + 2));
        let y = forward(op, &x, &w, b.as_ref()).unwrap();
        let dy = Array::seeded(&y.shape, seed + 3);
        let g = backward(op, &x, &w, &dy).unwrap();
        let loss =
            |x: &Array, w: &Array, b: Option<&Array>| dot(&dy, &forward(op, x, w, b).unwrap());
        assert_fd("fc dx", &x, &g.dx, |x| loss(x, &w, b.as_ref()));
        assert_fd("fc dw", &w, &g.dw, |w| loss(&x, w, b.as_ref()));
        if let (Some(b), Some(db)) = (&b, &g.db) {
            assert_fd("fc db", b, db, |b| loss(&x, &w, Some(b)));
        }
        assert_eq!(b.is_some(), g.db.is_some());
    }

    #[test]
    fn grads() {
        check_grads(&FullyConnected::new(7, 3), &[5, 7], 1);
        check_grads(&FullyConnected::new(1, 1), &[1, 1], 2);
        check_grads(
            &FullyConnected {
                bias: false,
                ..FullyConnected::new(30, 4)
            },
            &[2, 3, 2, 5],
            3,
        );
    }

    #[test]
    fn by_hand() {
        let op = FullyConnected::new(3, 2);
        let x = Array::new(&[1, 3], vec![1.0, 2.0, 3.0]);
        let w = Array::new(&[2, 3], vec![1.0, 0.0, -1.0, 0.5, 0.5, 0.5]);
        let y = forward(&op, &x, &w, Some(&Array::new(&[2], vec![10.0, 20.0]))).unwrap();
        assert_eq!(y, Array::new(&[1, 2], vec![8.0, 23.0]));
    }

    #[test]
    fn image_input_is_a_whole_image_conv() {
        // An image FC is a conv whose kernel covers the image; the weights are the same data.
        let (n, c, h, w_, o) = (2, 3, 2, 4, 5);
        let fc = FullyConnected::new(c * h * w_, o);
        let conv = Conv2d::new(c, o, (h, w_));
        let x = Array::seeded(&[n, c, h, w_], 10);
        let w = Array::seeded(&fc.weight_shape(), 11);
        let b = Array::seeded(&[o], 12);
        let y = forward(&fc, &x, &w, Some(&b)).unwrap();
        assert_eq!(y.shape, vec![n, o, 1, 1]);
        let w4 = Array::new(&conv.weight_shape(), w.data.clone());
        let yc = crate::ops::conv::reference::forward(&conv, &x, &w4, Some(&b)).unwrap();
        assert_close("fc as conv", &y.data, &yc.data);
    }

    #[test]
    fn shape_errors() {
        let op = FullyConnected::new(3, 2);
        let x = Array::zeros(&[4, 3]);
        let m = forward(&op, &x, &Array::zeros(&[3, 2]), Some(&Array::zeros(&[2])))
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("fully_connected") && m.contains("[3, 2]") && m.contains("[2, 3]"),
            "{m}"
        );
        let m = forward(&op, &x, &Array::zeros(&[2, 3]), None)
            .unwrap_err()
            .to_string();
        assert!(m.contains("fully_connected") && m.contains("bias"), "{m}");
        let m = backward(
            &op,
            &x,
            &Array::zeros(&[2, 3]),
            &Array::zeros(&[4, 2, 1, 1]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            m.contains("fully_connected") && m.contains("[4, 2, 1, 1]"),
            "{m}"
        );
    }
}
