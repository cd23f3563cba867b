//! Sample cases of pooling: max and average (with and without padded taps counted) with
//! overlapping windows and padding, windows that tile the input exactly, and global average
//! pooling.

use super::Pool2d;
use crate::ops::conv::Padding;
use crate::ops::sample::Sample;

pub fn samples() -> Vec<Sample> {
    vec![
        Sample::new("pool/max/overlap", |g, s| {
            let x = g.input("x", &[2, 3, 9 * s, 7])?;
            g.pool("y", x, Pool2d::max((3, 3), (2, 2)))
        }),
        Sample::new("pool/max/padded", |g, s| {
            let x = g.input("x", &[1, 2, 7 * s, 5 * s])?;
            let mut p = Pool2d::max((2, 3), (2, 2));
            p.padding = Padding::Same;
            g.pool("y", x, p)
        }),
        // Windows that tile the input exactly take the per-window kernels.
        Sample::new("pool/max/tiled", |g, s| {
            let x = g.input("x", &[2, 3, 6 * s, 9])?;
            g.pool("y", x, Pool2d::max((2, 3), (2, 3)))
        }),
        Sample::new("pool/max/tiled_2x2", |g, s| {
            let x = g.input("x", &[1, 5, 2 * s, 14])?;
            g.pool("y", x, Pool2d::max((2, 2), (2, 2)))
        }),
        Sample::new("pool/avg/count_pad", |g, s| {
            let x = g.input("x", &[2, 3, 7 * s, 7])?;
            let mut p = Pool2d::avg((3, 3), (2, 2), true);
            p.padding = Padding::Explicit {
                top: 1,
                bottom: 1,
                left: 1,
                right: 0,
            };
            g.pool("y", x, p)
        }),
        Sample::new("pool/avg/exclude_pad", |g, s| {
            let x = g.input("x", &[2, 2, 5 * s, 6])?;
            let mut p = Pool2d::avg((2, 2), (1, 2), false);
            p.padding = Padding::Same;
            g.pool("y", x, p)
        }),
        Sample::new("pool/global_avg", |g, s| {
            let x = g.input("x", &[2, 3, 5 * s, 7])?;
            g.global_avg_pool("y", x)
        }),
    ]
}
