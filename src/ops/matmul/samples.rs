//! Sample cases of the matrix product: tile-awkward sizes, transposes, batches.

use super::MatMulOp;
use crate::ops::sample::Sample;

pub fn samples() -> Vec<Sample> {
    let mut v = Vec::new();
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        v.push(Sample::new(
            format!("matmul/ta={ta},tb={tb}"),
            move |g, s| {
                let (m, k, n) = (7 * s, 33 * s, 5 * s);
                let a = g.input("a", &if ta { [k, m] } else { [m, k] })?;
                let b = g.param("b", &if tb { [n, k] } else { [k, n] })?;
                g.add("y", MatMulOp { ta, tb }, &[a, b])
            },
        ));
    }
    // Every extent a multiple of four: the GPU reads the operands four elements at a time
    // (`matmul_vec4.wgsl`), A by k and B by n (NN), A by m and B by k (TT); partial tiles, K split
    // where the grid is small (NN), 132 rows over two tiles (TT).
    for (ta, tb, (m, k, n)) in [(false, false, (12, 136, 68)), (true, true, (132, 40, 20))] {
        v.push(Sample::new(
            format!("matmul/vec4/ta={ta},tb={tb}"),
            move |g, s| {
                let (m, k, n) = (m * s, k * s, n * s);
                let a = g.input("a", &if ta { [k, m] } else { [m, k] })?;
                let b = g.param("b", &if tb { [n, k] } else { [k, n] })?;
                g.add("y", MatMulOp { ta, tb }, &[a, b])
            },
        ));
    }
    // Blocks wholly inside the problem, K a multiple of 8 (`INTERIOR` in gemm_core.wgsl: the
    // vec4 loaders without bounds, the last fetches past the end, blocks grouped): each tile width, an
    // odd number of K steps, a single one (the deep tiles' first fetch ahead is past K), and
    // more block rows than a group of 8.
    for (ta, tb, (m, k, n)) in [
        (false, false, (128, 24, 128)),
        (false, true, (128, 40, 64)),
        (true, false, (128, 8, 64)),
        (true, true, (128, 16, 32)),
        (false, false, (1152, 8, 32)),
    ] {
        v.push(Sample::new(
            format!("matmul/interior/{m}x{k}x{n},ta={ta},tb={tb}"),
            move |g, s| {
                let (m, k, n) = (m * s, k * s, n * s);
                let a = g.input("a", &if ta { [k, m] } else { [m, k] })?;
                let b = g.param("b", &if tb { [n, k] } else { [k, n] })?;
                g.add("y", MatMulOp { ta, tb }, &[a, b])
            },
        ));
    }
    v.push(Sample::new("matmul/vec4/batched", |g, s| {
        let a = g.input("a", &[2, 8 * s, 12 * s])?;
        let b = g.input("b", &[2, 12 * s, 8 * s])?;
        g.matmul("y", a, b)
    }));
    v.push(Sample::new("matmul/batched", |g, s| {
        let a = g.input("a", &[2, 7 * s, 9 * s])?;
        let b = g.input("b", &[2, 9 * s, 5 * s])?;
        g.matmul("y", a, b)
    }));
    // One row per batch element, and a 2-D transposed operand shared by the batch.
    v.push(Sample::new("matmul/batched_shared_b", |g, s| {
        let a = g.input("a", &[3, s, 9 * s])?;
        let b = g.param("b", &[5 * s, 9 * s])?;
        g.add(
            "y",
            MatMulOp {
                ta: false,
                tb: true,
            },
            &[a, b],
        )
    }));
    v
}
