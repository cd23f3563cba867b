//! Sample cases of the fully connected layer: with and without bias, on rows and on images.

use super::FullyConnected;
use crate::ops::sample::Sample;

pub fn samples() -> Vec<Sample> {
    vec![
        Sample::new("dense/bias", |g, s| {
            let x = g.input("x", &[3, 33 * s])?;
            g.dense("y", x, FullyConnected::new(33 * s, 7))
        }),
        Sample::new("dense/no_bias", |g, s| {
            let x = g.input("x", &[7 * s, 5])?;
            let mut d = FullyConnected::new(5, 9 * s);
            d.bias = false;
            g.dense("y", x, d)
        }),
        Sample::new("dense/image", |g, s| {
            let x = g.input("x", &[2, 3, 2 * s, 2])?;
            g.dense("y", x, FullyConnected::new(12 * s, 5))
        }),
    ]
}
