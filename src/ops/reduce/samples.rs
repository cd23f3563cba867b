//! Sample cases of the reductions: each kind over a leading, middle and last axis.

use crate::ops::sample::Sample;

pub fn samples() -> Vec<Sample> {
    vec![
        Sample::new("reduce/sum/axis1", |g, s| {
            let x = g.input("x", &[3, 7 * s, 5])?;
            g.sum("y", x, 1)
        }),
        Sample::new("reduce/mean/axis2", |g, s| {
            let x = g.input("x", &[3, 7, 33 * s])?;
            g.mean("y", x, 2)
        }),
        Sample::new("reduce/max/axis0", |g, s| {
            let x = g.input("x", &[5, 7 * s])?;
            g.max("y", x, 0)
        }),
        Sample::new("reduce/max/axis1", |g, s| {
            let x = g.input("x", &[2, 33 * s, 3])?;
            g.max("y", x, 1)
        }),
    ]
}
