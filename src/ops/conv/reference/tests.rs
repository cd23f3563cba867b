//! Tests of the reference convolutions: gradients against finite differences on awkward shapes,
//! hand-checked tiny cases, the conv / conv-transpose adjoint identity, and shape errors.

use super::testing::{assert_close, assert_fd, dot};
use super::*;
use crate::ops::conv::{Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, Padding, Padding1d};

/// Checks every gradient of `op` at random `x`, `w`, `b` against central differences of the
/// random linear functional `Σ dy · forward(x, w, b)`.
fn check_grads<Op: Convolution>(op: &Op, x_shape: &[usize], seed: u64) {
    let x = Array::seeded(x_shape, seed);
    let w = Array::seeded(&op.weight_shape(), seed + 1);
    let b = op
        .has_bias()
        .then(|| Array::seeded(&[op.out_channels()], seed + 2));
    let y = forward(op, &x, &w, b.as_ref()).unwrap();
    assert_eq!(y.shape, op.out_shape(x_shape).unwrap());
    let dy = Array::seeded(&y.shape, seed + 3);
    let g = backward(op, &x, &w, &dy).unwrap();
    let loss = |x: &Array, w: &Array, b: Option<&Array>| dot(&dy, &forward(op, x, w, b).unwrap());
    let name = op.name();
    assert_fd(&format!("{name} dx"), &x, &g.dx, |x| {
        loss(x, &w, b.as_ref())
    });
    assert_fd(&format!("{name} dw"), &w, &g.dw, |w| {
        loss(&x, w, b.as_ref())
    });
    match (&b, &g.db) {
        (Some(b), Some(db)) => assert_fd(&format!("{name} db"), b, db, |b| loss(&x, &w, Some(b))),
        (None, None) => {}
        _ => panic!("{name}: db present iff the op has a bias"),
    }
}

#[test]
fn conv2d_grads_asymmetric_padding_stride_dilation() {
    let op = Conv2d {
        stride: (2, 1),
        dilation: (1, 2),
        padding: Padding::Explicit {
            top: 1,
            bottom: 0,
            left: 2,
            right: 1,
        },
        ..Conv2d::new(3, 4, (3, 2))
    };
    assert_eq!(op.out_shape(&[2, 3, 7, 5]).unwrap(), vec![2, 4, 3, 6]);
    check_grads(&op, &[2, 3, 7, 5], 1);
}

#[test]
fn conv2d_grads_groups_stride3_same() {
    let op = Conv2d {
        groups: 2,
        stride: (3, 3),
        padding: Padding::Same,
        ..Conv2d::new(4, 6, (3, 3))
    };
    assert_eq!(op.out_shape(&[1, 4, 7, 8]).unwrap(), vec![1, 6, 3, 3]);
    check_grads(&op, &[1, 4, 7, 8], 2);
}

#[test]
fn conv2d_grads_depthwise() {
    // groups = C, dilation 2, Same
    let op = Conv2d {
        groups: 3,
        dilation: (2, 2),
        padding: Padding::Same,
        ..Conv2d::new(3, 3, (3, 3))
    };
    check_grads(&op, &[2, 3, 5, 6], 3);
    // channel multiplier 2, stride (2, 3), asymmetric padding, no bias
    let op = Conv2d {
        groups: 2,
        stride: (2, 3),
        padding: Padding::Explicit {
            top: 0,
            bottom: 1,
            left: 1,
            right: 0,
        },
        bias: false,
        ..Conv2d::new(2, 4, (2, 3))
    };
    check_grads(&op, &[1, 2, 5, 7], 4);
}

#[test]
fn conv2d_grads_tiny_and_even_kernel() {
    check_grads(&Conv2d::new(2, 3, (1, 1)), &[1, 2, 1, 1], 5);
    // kernel as large as the padded input
    let op = Conv2d {
        padding: Padding::hw(1, 0),
        ..Conv2d::new(1, 2, (3, 1))
    };
    check_grads(&op, &[3, 1, 1, 1], 6);
    let op = Conv2d {
        padding: Padding::Same,
        ..Conv2d::new(1, 2, (4, 2))
    };
    check_grads(&op, &[1, 1, 5, 4], 7);
}

#[test]
fn conv1d_grads() {
    let op = Conv1d {
        stride: 2,
        dilation: 2,
        groups: 2,
        padding: Padding1d::Explicit { left: 2, right: 1 },
        ..Conv1d::new(4, 2, 3)
    };
    assert_eq!(op.out_shape(&[2, 4, 7]).unwrap(), vec![2, 2, 3]);
    check_grads(&op, &[2, 4, 7], 8);
    let op = Conv1d {
        padding: Padding1d::Same,
        ..Conv1d::new(1, 1, 4)
    };
    assert_eq!(op.out_shape(&[1, 1, 1]).unwrap(), vec![1, 1, 1]);
    check_grads(&op, &[1, 1, 1], 9);
}

#[test]
fn conv_transpose2d_grads() {
    let op = ConvTranspose2d {
        groups: 2,
        stride: (2, 3),
        dilation: (1, 2),
        padding: Padding::Explicit {
            top: 1,
            bottom: 0,
            left: 0,
            right: 2,
        },
        output_padding: (1, 2),
        ..ConvTranspose2d::new(4, 6, (3, 2))
    };
    // (3-1)*2 + 3 + 1 - 1 = 7, (4-1)*3 + 3 + 2 - 2 = 12
    assert_eq!(op.out_shape(&[1, 4, 3, 4]).unwrap(), vec![1, 6, 7, 12]);
    assert_eq!(op.weight_shape(), vec![4, 3, 3, 2]);
    check_grads(&op, &[1, 4, 3, 4], 10);
    // depthwise, Same: out = in * stride
    let op = ConvTranspose2d {
        groups: 3,
        stride: (2, 2),
        padding: Padding::Same,
        ..ConvTranspose2d::new(3, 3, (3, 3))
    };
    assert_eq!(op.out_shape(&[2, 3, 3, 2]).unwrap(), vec![2, 3, 6, 4]);
    check_grads(&op, &[2, 3, 3, 2], 11);
}

#[test]
fn conv_transpose2d_grads_edge_cases() {
    // Same with a kernel smaller than the stride: the last rows / columns get no tap.
    let op = ConvTranspose2d {
        stride: (3, 3),
        padding: Padding::Same,
        ..ConvTranspose2d::new(2, 1, (1, 2))
    };
    assert_eq!(op.out_shape(&[1, 2, 2, 3]).unwrap(), vec![1, 1, 6, 9]);
    check_grads(&op, &[1, 2, 2, 3], 12);
    // output_padding >= stride (allowed below the dilation): extra untouched rows / columns.
    let op = ConvTranspose2d {
        dilation: (2, 2),
        output_padding: (1, 1),
        ..ConvTranspose2d::new(2, 3, (2, 2))
    };
    assert_eq!(op.out_shape(&[1, 2, 3, 3]).unwrap(), vec![1, 3, 6, 6]);
    check_grads(&op, &[1, 2, 3, 3], 13);
    check_grads(&ConvTranspose2d::new(1, 1, (1, 1)), &[1, 1, 1, 1], 14);
}

#[test]
fn conv_transpose1d_grads() {
    let op = ConvTranspose1d {
        stride: 3,
        padding: Padding1d::Explicit { left: 1, right: 2 },
        output_padding: 2,
        ..ConvTranspose1d::new(3, 2, 3)
    };
    assert_eq!(op.out_shape(&[1, 3, 4]).unwrap(), vec![1, 2, 11]);
    check_grads(&op, &[1, 3, 4], 15);
    let op = ConvTranspose1d {
        groups: 2,
        dilation: 2,
        bias: false,
        ..ConvTranspose1d::new(2, 4, 2)
    };
    check_grads(&op, &[2, 2, 1], 16);
}

#[test]
fn conv2d_by_hand() {
    let op = Conv2d::new(1, 1, (2, 2));
    let x = Array::new(&[1, 1, 3, 3], (1..=9).map(f64::from).collect());
    let w = Array::new(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let y = forward(&op, &x, &w, Some(&Array::new(&[1], vec![0.5]))).unwrap();
    // y00 = 1·1 + 2·2 + 4·3 + 5·4 = 37, then +6, +30, +40 as the window moves.
    assert_eq!(y, Array::new(&[1, 1, 2, 2], vec![37.5, 47.5, 67.5, 77.5]));
    // Padding reads zeros: a 1x1 output at the top-left corner sees only x00 (weight 4).
    let op = Conv2d {
        stride: (3, 3),
        padding: Padding::symmetric(1),
        bias: false,
        ..op
    };
    let y = forward(&op, &x, &w, None).unwrap();
    assert_eq!(y.shape, vec![1, 1, 2, 2]);
    assert_eq!(y.data[0], 4.0);
}

#[test]
fn conv2d_1x1_is_matmul() {
    // y[n, o, p] = Σ_c w[o, c] x[n, c, p] for every pixel p.
    let (n, c, o, hw) = (2, 3, 4, 6);
    let x = Array::seeded(&[n, c, 2, 3], 20);
    let w = Array::seeded(&[o, c, 1, 1], 21);
    let y = forward(
        &Conv2d {
            bias: false,
            ..Conv2d::new(c, o, (1, 1))
        },
        &x,
        &w,
        None,
    )
    .unwrap();
    let mut expect = vec![0.0; n * o * hw];
    for ni in 0..n {
        for oi in 0..o {
            for p in 0..hw {
                expect[(ni * o + oi) * hw + p] = (0..c)
                    .map(|ci| w.data[oi * c + ci] * x.data[(ni * c + ci) * hw + p])
                    .sum();
            }
        }
    }
    assert_eq!(y.shape, vec![n, o, 2, 3]);
    assert_close("1x1 conv", &y.data, &expect);
}

#[test]
fn same_padding_rules() {
    // Stride 1 keeps the size for odd and even kernels, dilated or not.
    for k in 1..=6 {
        for d in 1..=2 {
            for len in [1, 5, 6, 7] {
                let op = Conv2d {
                    dilation: (d, d),
                    padding: Padding::Same,
                    ..Conv2d::new(1, 1, (k, k))
                };
                assert_eq!(
                    op.out_shape(&[1, 1, len, len]).unwrap(),
                    vec![1, 1, len, len],
                    "k {k} d {d} len {len}"
                );
            }
        }
    }
    // Even kernel: the odd padding goes to the bottom / right (TensorFlow).
    let op = Conv2d {
        padding: Padding::Same,
        ..Conv2d::new(1, 1, (4, 2))
    };
    assert_eq!(op.resolved_padding(5, 5), (1, 2, 0, 1));
    // Stride 2: out = ceil(in / 2); total = (out - 1) * 2 + k - in.
    let op = Conv2d {
        stride: (2, 2),
        padding: Padding::Same,
        ..Conv2d::new(1, 1, (3, 3))
    };
    assert_eq!(op.resolved_padding(7, 8), (1, 1, 0, 1));
    assert_eq!(op.out_shape(&[1, 1, 7, 8]).unwrap(), vec![1, 1, 4, 4]);
    assert_eq!(
        Conv1d {
            padding: Padding1d::Same,
            ..Conv1d::new(1, 1, 4)
        }
        .resolved_padding(6),
        (1, 2)
    );
}

#[test]
fn conv1d_and_transpose_by_hand() {
    let x = Array::new(&[1, 1, 4], vec![1.0, 2.0, 3.0, 4.0]);
    let w = Array::new(&[1, 1, 2], vec![1.0, -1.0]);
    let y = forward(
        &Conv1d::new(1, 1, 2),
        &x,
        &w,
        Some(&Array::new(&[1], vec![10.0])),
    )
    .unwrap();
    assert_eq!(y, Array::new(&[1, 1, 3], vec![9.0, 9.0, 9.0]));

    // Each input scatters a copy of the kernel, `stride` apart; overlaps add.
    let x = Array::new(&[1, 1, 2], vec![1.0, 2.0]);
    let w = Array::new(&[1, 1, 3], vec![1.0, 1.0, 1.0]);
    let t = ConvTranspose1d {
        stride: 2,
        bias: false,
        ..ConvTranspose1d::new(1, 1, 3)
    };
    assert_eq!(
        forward(&t, &x, &w, None).unwrap().data,
        vec![1.0, 1.0, 3.0, 2.0, 2.0]
    );
    let t = ConvTranspose1d {
        padding: Padding1d::Explicit { left: 1, right: 1 },
        ..t
    };
    assert_eq!(forward(&t, &x, &w, None).unwrap().data, vec![1.0, 3.0, 2.0]);
    let t = ConvTranspose1d {
        padding: Padding1d::Valid,
        output_padding: 1,
        ..t
    };
    assert_eq!(
        forward(&t, &x, &w, None).unwrap().data,
        vec![1.0, 1.0, 3.0, 2.0, 2.0, 0.0]
    );
}

/// The conv-transpose with the same attributes, sized back to `x_shape`.
fn transpose_of(conv: &Conv2d, x_shape: &[usize]) -> ConvTranspose2d {
    let g = conv.geometry(x_shape).unwrap();
    let natural =
        |i: usize, pad: usize, k: usize, s: usize, d: usize| (i - 1) * s + (k - 1) * d + 1 - pad;
    let (pt, pb, pl, pr) = g.padding;
    let output_padding = if conv.padding == Padding::Same {
        (0, 0)
    } else {
        (
            g.in_size.0 - natural(g.out_size.0, pt + pb, g.kernel.0, g.stride.0, g.dilation.0),
            g.in_size.1 - natural(g.out_size.1, pl + pr, g.kernel.1, g.stride.1, g.dilation.1),
        )
    };
    ConvTranspose2d {
        in_channels: conv.out_channels,
        out_channels: conv.in_channels,
        kernel: conv.kernel,
        stride: conv.stride,
        dilation: conv.dilation,
        groups: conv.groups,
        padding: conv.padding,
        output_padding,
        bias: false,
    }
}

#[test]
fn conv_transpose_is_adjoint_of_conv() {
    // <conv(x), y> == <x, convT(y)> with the same weight.
    let cases = [
        (
            Conv2d {
                stride: (2, 3),
                padding: Padding::Explicit {
                    top: 2,
                    bottom: 0,
                    left: 1,
                    right: 1,
                },
                ..Conv2d::new(2, 3, (3, 2))
            },
            [2, 2, 7, 8],
        ),
        (
            Conv2d {
                groups: 2,
                dilation: (2, 1),
                stride: (1, 2),
                ..Conv2d::new(4, 2, (2, 3))
            },
            [1, 4, 6, 7],
        ),
        (
            Conv2d {
                groups: 3,
                stride: (2, 2),
                padding: Padding::Same,
                ..Conv2d::new(3, 6, (4, 3))
            },
            [1, 3, 6, 4],
        ),
    ];
    for (i, (conv, x_shape)) in cases.iter().enumerate() {
        let conv = Conv2d {
            bias: false,
            ..*conv
        };
        let t = transpose_of(&conv, x_shape);
        let x = Array::seeded(x_shape, 30 + i as u64);
        let w = Array::seeded(&conv.weight_shape(), 40 + i as u64);
        assert_eq!(t.weight_shape(), w.shape);
        let cx = forward(&conv, &x, &w, None).unwrap();
        let y = Array::seeded(&cx.shape, 50 + i as u64);
        let ty = forward(&t, &y, &w, None).unwrap();
        assert_eq!(ty.shape, x.shape, "case {i}");
        assert_close(
            &format!("adjoint case {i}"),
            &[dot(&cx, &y)],
            &[dot(&x, &ty)],
        );
        // and conv-transpose backward-data is conv forward
        assert_close(
            "convT dx",
            &backward_data(&t, &y.shape, &w, &x).unwrap().data,
            &cx.data,
        );
    }
}

#[test]
fn reference_shape_errors() {
    let op = Conv2d::new(2, 3, (3, 3));
    let x = Array::seeded(&[1, 2, 5, 5], 1);
    let w = Array::seeded(&op.weight_shape(), 2);
    let b = Array::seeded(&[3], 3);
    let m = forward(&op, &x, &Array::zeros(&[3, 2, 3, 2]), Some(&b))
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("conv2d")
            && m.contains("weight")
            && m.contains("[3, 2, 3, 2]")
            && m.contains("[3, 2, 3, 3]"),
        "{m}"
    );
    let m = forward(&op, &x, &w, None).unwrap_err().to_string();
    assert!(m.contains("conv2d") && m.contains("bias"), "{m}");
    let m = forward(&op, &x, &w, Some(&Array::zeros(&[2])))
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("conv2d") && m.contains("bias") && m.contains("[2]"),
        "{m}"
    );
    let nb = Conv2d { bias: false, ..op };
    assert!(
        forward(&nb, &x, &w, Some(&b))
            .unwrap_err()
            .to_string()
            .contains("no bias")
    );
    let m = backward(&op, &x, &w, &Array::zeros(&[1, 3, 3, 4]))
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("conv2d") && m.contains("[1, 3, 3, 4]") && m.contains("[1, 3, 3, 3]"),
        "{m}"
    );
    let t = ConvTranspose1d::new(2, 4, 3);
    let m = forward(
        &t,
        &Array::zeros(&[1, 2, 5]),
        &Array::zeros(&[4, 2, 3]),
        Some(&Array::zeros(&[4])),
    )
    .unwrap_err()
    .to_string();
    assert!(
        m.contains("conv_transpose1d") && m.contains("[2, 4, 3]"),
        "{m}"
    );
}
