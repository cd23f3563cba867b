//! Sample cases of dropout (training: the mask of step 0).

use super::Dropout;
use crate::ops::sample::Sample;

pub fn samples() -> Vec<Sample> {
    // Two rates: a kernel with the rate fixed (or 1 − rate for rate) fails one of them.
    vec![
        Sample::new("dropout/rate0.3", |g, s| {
            let x = g.input("x", &[3, 33 * s])?;
            g.dropout("y", x, Dropout::new(0.3, 7)?)
        }),
        Sample::new("dropout/rate0.8", |g, s| {
            let x = g.input("x", &[3, 33 * s])?;
            g.dropout("y", x, Dropout::new(0.8, 11)?)
        }),
    ]
}
