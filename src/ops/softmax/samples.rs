//! Sample cases of softmax and log-softmax, logits spread over [-3, 3] (no probability
//! underflows) along the last and a middle axis.

use super::Softmax;
use crate::ops::sample::{Fill, Sample};

pub fn samples() -> Vec<Sample> {
    vec![
        Sample::new("softmax/last", |g, s| {
            let x = g.input("x", &[3, 7 * s])?;
            g.softmax(
                "y",
                x,
                Softmax {
                    axis: -1,
                    log: false,
                },
            )
        })
        .fill("x", Fill::Uniform(-3.0, 3.0)),
        Sample::new("softmax/middle", |g, s| {
            let x = g.input("x", &[2, 33 * s, 3])?;
            g.softmax(
                "y",
                x,
                Softmax {
                    axis: 1,
                    log: false,
                },
            )
        })
        .fill("x", Fill::Uniform(-3.0, 3.0)),
        Sample::new("softmax/log/last", |g, s| {
            let x = g.input("x", &[5, 9 * s])?;
            g.softmax(
                "y",
                x,
                Softmax {
                    axis: -1,
                    log: true,
                },
            )
        })
        .fill("x", Fill::Uniform(-3.0, 3.0)),
        Sample::new("softmax/log/middle", |g, s| {
            let x = g.input("x", &[2, 5, 4 * s])?;
            g.softmax("y", x, Softmax { axis: 1, log: true })
        })
        .fill("x", Fill::Uniform(-3.0, 3.0)),
    ]
}
