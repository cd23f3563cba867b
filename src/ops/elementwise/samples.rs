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
    // ResNet-50's residual add, (32, 256, 56, 56) at the full bench multiplier 8 (channels grow
    // as s², so at 1, (4, 4, 7, 7), finite differences stay cheap): both operands in the
    // output's layout. Per channel, (1, C, 1, 1): one run of the output's dims. A
    // broadcast between kept dims: the per-dim loop.
    v.push(Sample::new("elementwise/binary/add/resnet", |g, s| {
        let shape = [4 * s, 4 * s * s, 7 * s, 7 * s];
        let a = g.input("a", &shape)?;
        let b = g.input("b", &shape)?;
        g.binary("y", BinaryOp::Add, a, b)
    }));
    v.push(Sample::new("elementwise/binary/Mul/channel", |g, s| {
        let a = g.input("a", &[2, 3 * s, 4, 5])?;
        let b = g.input("b", &[1, 3 * s, 1, 1])?;
        g.binary("y", BinaryOp::Mul, a, b)
    }));
    v.push(Sample::new("elementwise/binary/Sub/strided", |g, s| {
        let a = g.input("a", &[2, 3, 5 * s])?;
        let b = g.input("b", &[2, 1, 5 * s])?;
        g.binary("y", BinaryOp::Sub, a, b)
    }));
    // Both operands broadcast.
    v.push(Sample::new("elementwise/binary/Mul/outer", |g, s| {
        let a = g.input("a", &[1, 5 * s])?;
        let b = g.input("b", &[4, 1])?;
        g.binary("y", BinaryOp::Mul, a, b)
    }));
    v
}
