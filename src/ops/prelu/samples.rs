//! Sample cases of PReLU: a slope per channel and one shared slope, on images and on (N, C).
//! Inputs are ±(0.2..1) so finite differences never straddle the kink at 0; slopes of both
//! signs.

use super::PRelu;
use crate::ops::sample::{Fill, Sample};

pub fn samples() -> Vec<Sample> {
    vec![
        Sample::new("prelu/per_channel", |g, s| {
            let x = g.input("x", &[2, 7, 3 * s, 5])?;
            g.prelu("y", x, PRelu { num_parameters: 7 })
        })
        .fill("x", Fill::AwayFromZero(0.2, 1.0)),
        Sample::new("prelu/shared", |g, s| {
            let x = g.input("x", &[3, 33 * s])?;
            g.prelu("y", x, PRelu { num_parameters: 1 })
        })
        .fill("x", Fill::AwayFromZero(0.2, 1.0)),
        Sample::new("prelu/one_channel", |g, s| {
            let x = g.input("x", &[1, 1, s, 1])?;
            g.prelu("y", x, PRelu { num_parameters: 1 })
        })
        .fill("x", Fill::AwayFromZero(0.2, 1.0)),
    ]
}
