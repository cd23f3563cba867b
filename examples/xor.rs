//! The smallest narrated example: a 2-8-1 MLP learns XOR on the GPU, with every forward and
//! backward kernel called by hand — the pieces a compiled graph (`examples/mnist.rs`) strings together.
//!
//! Run: `cargo run --release --example xor`

use wgtrain::ops::elementwise::gpu::{binary, binary_backward, unary, unary_backward};
use wgtrain::ops::elementwise::{BinaryOp, UnaryOp};
use wgtrain::ops::matmul::gpu::{matmul, matmul_backward};
use wgtrain::ops::reduce::ReduceKind;
use wgtrain::ops::reduce::gpu::reduce;
use wgtrain::reference::Array;
use wgtrain::{Device, Tensor};

fn main() -> wgtrain::Result<()> {
    // 1. Pick the GPU: the best adapter found (WGTRAIN_BACKEND / WGTRAIN_ADAPTER override it).
    let dev = Device::new()?;
    println!("adapter: {}", dev.describe());

    // 2. The four XOR cases, (N=4, 2) inputs and (4, 1) targets.
    let x = Tensor::from_f32(&dev, &[4, 2], &[0., 0., 0., 1., 1., 0., 1., 1.])?;
    let t = Tensor::from_f32(&dev, &[4, 1], &[0., 1., 1., 0.])?;

    // 3. Weights, seeded: W1 (2, 8), b1 (8), W2 (8, 1), b2 (1).
    let init = |shape: &[usize], seed, scale: f64| {
        Tensor::from_f32(
            &dev,
            shape,
            &Array::seeded(shape, seed).map_scaled(scale).to_f32(),
        )
    };
    let mut params = [
        init(&[2, 8], 1, 1.0)?,
        init(&[8], 2, 0.1)?,
        init(&[8, 1], 3, 1.0)?,
        init(&[1], 4, 0.1)?,
    ];
    let lr = Tensor::from_f32(&dev, &[1], &[0.5])?;

    for step in 0..=1500 {
        let [w1, b1, w2, b2] = &params;
        // 4. Forward: h = tanh(x·W1 + b1), y = sigmoid(h·W2 + b2). Each call is one GPU dispatch.
        let z1 = binary(BinaryOp::Add, &matmul(&x, w1, false, false)?, b1)?;
        let h = unary(UnaryOp::Tanh, &z1)?;
        let z2 = binary(BinaryOp::Add, &matmul(&h, w2, false, false)?, b2)?;
        let y = unary(UnaryOp::Sigmoid, &z2)?;
        // 5. Loss: mean squared error; its gradient is 2(y - t)/N.
        let diff = binary(BinaryOp::Sub, &y, &t)?;
        let loss = reduce(
            ReduceKind::Mean,
            &unary(UnaryOp::Square, &diff)?.reshape(&[4])?,
            0,
        )?
        .0;
        let dy = binary(BinaryOp::Mul, &diff, &Tensor::from_f32(&dev, &[1], &[0.5])?)?;
        // 6. Backward, op by op in reverse: each forward kernel has its gradient kernel.
        let dz2 = unary_backward(UnaryOp::Sigmoid, &z2, &dy)?;
        let (dhw, db2) = binary_backward(BinaryOp::Add, &matmul(&h, w2, false, false)?, b2, &dz2)?;
        let (dh, dw2) = matmul_backward(&h, w2, &dhw)?;
        let dz1 = unary_backward(UnaryOp::Tanh, &z1, &dh)?;
        let (dxw, db1) = binary_backward(BinaryOp::Add, &matmul(&x, w1, false, false)?, b1, &dz1)?;
        let (_, dw1) = matmul_backward(&x, w1, &dxw)?;
        // 7. Plain SGD: p ← p − lr·g (broadcasting the scalar learning rate).
        let grads = [dw1, db1, dw2, db2];
        for (p, g) in params.iter_mut().zip(&grads) {
            *p = binary(BinaryOp::Sub, p, &binary(BinaryOp::Mul, g, &lr)?)?;
        }
        if step % 300 == 0 {
            // 8. Read back only when we want to look.
            println!(
                "step {step:4}  loss {:.5}  predictions {:?}",
                loss.to_f32()?[0],
                y.to_f32()?
                    .iter()
                    .map(|v| (v * 100.0).round() / 100.0)
                    .collect::<Vec<_>>()
            );
        }
    }
    Ok(())
}
