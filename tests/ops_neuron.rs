//! Every MPS neuron through its unary kernel (`UnaryOp::from(&Neuron)`) vs `reference::neuron`,
//! forward and backward, on awkward lengths, away from kinks; and the gradients read from the
//! output (`Op::UnaryGradOut`) vs `reference::basic`, kinks included.

mod common;

use common::{assert_close, each_device};
use wgtrain::Tensor;
use wgtrain::ops::elementwise::UnaryOp;
use wgtrain::ops::elementwise::gpu as elementwise;
use wgtrain::ops::elementwise::neuron::Neuron;
use wgtrain::ops::elementwise::neuron_reference as neuron;
use wgtrain::ops::elementwise::reference as basic;
use wgtrain::reference::Array;

fn all() -> Vec<Neuron> {
    vec![
        Neuron::Relu,
        Neuron::LeakyRelu { alpha: 0.1 },
        Neuron::ReluN { n: 1.5 },
        Neuron::Elu { alpha: 0.7 },
        Neuron::Sigmoid,
        Neuron::HARD_SIGMOID,
        Neuron::Tanh,
        Neuron::Softplus,
        Neuron::Softsign,
        Neuron::GELU,
        Neuron::Gelu { tanh_approx: true },
        Neuron::Abs,
        Neuron::Exp,
        Neuron::Log,
        Neuron::Linear { a: -1.5, b: 0.25 },
    ]
}

/// Points where a neuron's derivative jumps (its convention there is tested on the CPU side).
fn kinks(n: &Neuron) -> Vec<f64> {
    match *n {
        Neuron::Relu | Neuron::LeakyRelu { .. } | Neuron::Elu { .. } | Neuron::Abs => vec![0.0],
        Neuron::ReluN { n } => vec![0.0, n as f64],
        Neuron::HardSigmoid { a, b } => {
            let (a, b) = (a as f64, b as f64);
            vec![-b / a, (1.0 - b) / a]
        }
        _ => vec![],
    }
}

/// Inputs in (−4, 4) (positive for log), at least 0.01 from every kink, rounded to f32.
fn inputs(n: &Neuron, len: usize) -> Array {
    let mut x = Array::seeded(&[len], 31).map_scaled(4.0);
    for v in &mut x.data {
        if *n == Neuron::Log {
            *v = v.abs() + 0.05;
        }
        for k in kinks(n) {
            if (*v - k).abs() < 0.01 {
                *v = k + 0.02;
            }
        }
    }
    Array::from_f32(&x.shape, &x.to_f32())
}

#[test]
fn every_neuron_matches_reference() {
    each_device("neuron", |dev| {
        for n in all() {
            let op = UnaryOp::from(&n);
            for len in [1, 7, 33, 257] {
                let x = inputs(&n, len);
                let dy = Array::from_f32(&[len], &Array::seeded(&[len], 32).to_f32());
                let gx = Tensor::from_f32(dev, &[len], &x.to_f32()).unwrap();
                let gdy = Tensor::from_f32(dev, &[len], &dy.to_f32()).unwrap();
                let what = format!("{} ({op:?}) len {len}", n.name());
                let y = elementwise::unary(op, &gx).unwrap().to_f32().unwrap();
                let want = neuron::neuron_forward(&n, &x).unwrap();
                assert_close(&what, &y, &want.data, 1e-5, 1e-5);
                let dx = elementwise::unary_backward(op, &gx, &gdy)
                    .unwrap()
                    .to_f32()
                    .unwrap();
                let want = neuron::neuron_backward(&n, &x, &dy).unwrap();
                assert_close(&format!("{what} backward"), &dx, &want.data, 1e-5, 1e-4);
            }
        }
    });
}

#[test]
fn gelu_tanh_saturates_cleanly() {
    each_device("gelu tanh", |dev| {
        // Large |x|: no inf·0 in the derivative, exact identity / zero in the tails.
        let x = [-1e30f32, -50.0, 50.0, 1e30];
        let gx = Tensor::from_f32(dev, &[4], &x).unwrap();
        let y = elementwise::unary(UnaryOp::GeluTanh, &gx).unwrap();
        let y = y.to_f32().unwrap();
        assert_eq!(y[2], 50.0);
        assert_eq!(y[3], 1e30);
        assert!(y[0] == 0.0 && y[1] == 0.0, "{y:?}");
        let ones = Tensor::from_f32(dev, &[4], &[1.0; 4]).unwrap();
        let dx = elementwise::unary_backward(UnaryOp::GeluTanh, &gx, &ones).unwrap();
        assert_eq!(dx.to_f32().unwrap(), vec![0.0, 0.0, 1.0, 1.0]);
    });
}

#[test]
fn gradient_from_the_output_matches_reference() {
    each_device("neuron grad from output", |dev| {
        for op in basic::output_based_ops() {
            for len in [1, 7, 33] {
                // x in (−4, 4) (positive for sqrt / recip) with the kinks themselves at the front.
                let mut x = Array::seeded(&[len], 61).map_scaled(4.0);
                let positive = matches!(op, UnaryOp::Sqrt | UnaryOp::Recip);
                let kinks = match op {
                    _ if positive => vec![],
                    UnaryOp::ReluN { n } => vec![0.0, n as f64],
                    UnaryOp::HardSigmoid { a, b } => {
                        vec![-b as f64 / a as f64, (1.0 - b as f64) / a as f64]
                    }
                    _ => vec![0.0, -0.0],
                };
                for (v, k) in x.data.iter_mut().zip(&kinks) {
                    *v = *k;
                }
                if positive {
                    x.data.iter_mut().for_each(|v| *v = v.abs() + 0.1);
                }
                let x = Array::from_f32(&[len], &x.to_f32());
                let y = Array::from_f32(&[len], &basic::unary(op, &x).to_f32());
                let dy = Array::from_f32(&[len], &Array::seeded(&[len], 62).to_f32());
                let gy = Tensor::from_f32(dev, &[len], &y.to_f32()).unwrap();
                let gdy = Tensor::from_f32(dev, &[len], &dy.to_f32()).unwrap();
                let dx = elementwise::unary_backward_out(op, &gy, &gdy)
                    .unwrap()
                    .to_f32()
                    .unwrap();
                let what = format!("{op:?} len {len}");
                let want = basic::unary_backward_out(op, &y, &dy).unwrap();
                assert_close(&what, &dx, &want.data, 1e-6, 1e-5);
                // The x-based reference agrees, kinks included (y is rounded to f32 here).
                let from_x = basic::unary_backward(op, &x, &dy);
                assert_close(&format!("{what} vs x-based"), &dx, &from_x.data, 1e-5, 1e-4);
            }
        }
        // Ops whose derivative is not a function of y are refused, not computed wrongly.
        let t = Tensor::from_f32(dev, &[3], &[1.0, 2.0, 3.0]).unwrap();
        for op in [
            UnaryOp::Softplus,
            UnaryOp::Gelu,
            UnaryOp::LeakyRelu { alpha: -0.5 },
        ] {
            assert!(
                elementwise::unary_backward_out(op, &t, &t).is_err(),
                "{op:?}"
            );
        }
    });
}
