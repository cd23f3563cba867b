//! Sample cases of the elementwise family: every unary op of `UnaryOp::all()` and every binary
//! op with broadcasting.

use super::{BinaryOp, UnaryOp};
use crate::ops::sample::{Fill, Sample};

/// The inputs a unary op is defined and smooth on.
fn domain(op: UnaryOp) -> Fill {
    match op {
        UnaryOp::Log | UnaryOp::Sqrt => Fill::Uniform(0.2, 2.0),
        UnaryOp::Recip => Fill::Uniform(0.5, 2.0),
        _ => Fill::Uniform(-2.0, 2.0),
    }
}

pub fn samples() -> Vec<Sample> {
    let mut v = Vec::new();
    for op in UnaryOp::all() {
        v.push(
            Sample::new(format!("elementwise/unary/{op:?}"), move |g, s| {
                let x = g.input("x", &[3, 7 * s])?;
                g.unary("y", op, x)
            })
            .fill("x", domain(op)),
        );
    }
    // Parameters away from `UnaryOp::all()`'s, so a kernel reading a fixed or swapped parameter
    // fails one of the two: a negative leaky slope (its gradient reads x), a steep one, ReLU6,
    // a small ELU alpha, a shifted hard sigmoid.
    let params = [
        UnaryOp::LeakyRelu { alpha: -0.3 },
        UnaryOp::LeakyRelu { alpha: 2.5 },
        UnaryOp::ReluN { n: 6.0 },
        UnaryOp::Elu { alpha: 0.4 },
        UnaryOp::HardSigmoid { a: 0.7, b: 0.2 },
        UnaryOp::Linear { a: -2.0, b: 0.75 },
    ];
    for op in params {
        let (_, a, b) = op.code();
        v.push(
            Sample::new(
                format!("elementwise/unary/{}/{a}/{b}", op.name()),
                move |g, s| {
                    let x = g.input("x", &[3, 7 * s])?;
                    g.unary("y", op, x)
                },
            )
            .fill("x", Fill::Uniform(-8.0, 8.0)),
        );
    }
    let binary = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
    ];
    for op in binary {
        // b broadcast over the leading and trailing axes of a.
        let mut sample = Sample::new(format!("elementwise/binary/{op:?}"), move |g, s| {
            let a = g.input("a", &[2, 3, 5 * s])?;
            let b = g.input("b", &[3, 1])?;
            g.binary("y", op, a, b)
        });
        if op == BinaryOp::Div {
            sample = sample.fill("b", Fill::Uniform(0.5, 2.0));
        }
        v.push(sample);
    }
    // Both operands broadcast.
    v.push(Sample::new("elementwise/binary/Mul/outer", |g, s| {
        let a = g.input("a", &[1, 5 * s])?;
        let b = g.input("b", &[4, 1])?;
        g.binary("y", BinaryOp::Mul, a, b)
    }));
    v
}
