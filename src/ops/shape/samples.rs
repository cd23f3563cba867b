//! Sample cases of the shape ops: permute, reshape, flatten, concat, slice, pad, upsample.

use super::{Concat, Pad, PadMode, Slice, SliceRange, Upsample, UpsampleMode, UpsampleSize};
use crate::ops::sample::Sample;

fn range(start: usize, end: usize, step: usize) -> SliceRange {
    SliceRange { start, end, step }
}

pub fn samples() -> Vec<Sample> {
    vec![
        Sample::new("shape/permute", |g, s| {
            let x = g.input("x", &[2, 3, 5 * s, 7])?;
            g.permute("y", x, &[2, 0, 3, 1])
        }),
        Sample::new("shape/reshape", |g, s| {
            let x = g.input("x", &[3, 4, 5 * s])?;
            g.reshape("y", x, &[2, 10 * s])
        }),
        Sample::new("shape/flatten", |g, s| {
            let x = g.input("x", &[2, 3, 7 * s])?;
            g.flatten("y", x)
        }),
        Sample::new("shape/concat", |g, s| {
            let a = g.input("a", &[2, 3, 5 * s])?;
            let b = g.input("b", &[2, 1, 5 * s])?;
            let c = g.param("c", &[2, 4, 5 * s])?;
            g.concat("y", &[a, b, c], Concat { axis: 1 })
        }),
        Sample::new("shape/concat/last_axis", |g, s| {
            let a = g.input("a", &[3, 7 * s])?;
            let b = g.input("b", &[3, 1])?;
            g.concat("y", &[a, b], Concat { axis: -1 })
        }),
        // Inception v3's mixed_5b branch concat, (32, 64|64|96|32, 35, 35) -> (32, 256, 35, 35),
        // at the full bench multiplier 8; at 1, (4, 8|8|12|4, 5, 5): rows of 200, 300, 100
        // elements, so both the row kernel and the strided copy it leaves short rows to run.
        Sample::new("shape/concat/inception", |g, s| {
            let hw = (35 * s).div_ceil(8);
            let mut xs = Vec::new();
            for (name, c) in [("b1", 8), ("b5", 8), ("b3", 12), ("pool", 4)] {
                xs.push(g.input(name, &[4 * s, c * s, hw, hw])?);
            }
            g.concat("y", &xs, Concat { axis: 1 })
        }),
        Sample::new("shape/slice", |g, s| {
            let x = g.input("x", &[3, 7, 9 * s])?;
            let op = Slice {
                ranges: vec![range(0, 3, 1), range(1, 6, 2), range(2, 9 * s, 3)],
            };
            g.slice("y", x, op)
        }),
        Sample::new("shape/pad/zero", |g, s| {
            let x = g.input("x", &[2, 3, 5 * s])?;
            let op = Pad {
                before: vec![0, 1, 2],
                after: vec![0, 2, 1],
                mode: PadMode::Zero,
            };
            g.pad("y", x, op)
        }),
        Sample::new("shape/pad/edge", |g, s| {
            let x = g.input("x", &[2, 3, 4, 5 * s])?;
            let op = Pad {
                before: vec![0, 0, 2, 1],
                after: vec![0, 0, 1, 3],
                mode: PadMode::Edge,
            };
            g.pad("y", x, op)
        }),
        Sample::new("shape/upsample/nearest", |g, s| {
            let x = g.input("x", &[2, 3, 3, 5 * s])?;
            let op = Upsample {
                mode: UpsampleMode::Nearest,
                size: UpsampleSize::Scale(2, 3),
            };
            g.upsample("y", x, op)
        }),
        Sample::new("shape/upsample/bilinear", |g, s| {
            let x = g.input("x", &[2, 3, 3, 4 * s])?;
            let op = Upsample {
                mode: UpsampleMode::Bilinear,
                size: UpsampleSize::Size(7, 9 * s),
            };
            g.upsample("y", x, op)
        }),
    ]
}
