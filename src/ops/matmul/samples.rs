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
