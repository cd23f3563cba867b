//! Descriptor tests: output and weight shapes, and an error (naming the op and the offending
//! value) for every bad attribute or input.

use super::*;

/// The error message, asserting it names `op` and contains every one of `needles`.
#[track_caller]
fn assert_err<T: std::fmt::Debug>(r: Result<T>, op: &str, needles: &[&str]) {
    let m = r.expect_err("expected an error").to_string();
    assert!(m.starts_with(&format!("{op}:")), "{m}");
    for n in needles {
        assert!(m.contains(n), "{m:?} lacks {n:?}");
    }
}

#[test]
fn shapes() {
    let c = Conv2d {
        groups: 2,
        ..Conv2d::new(4, 6, (3, 2))
    };
    assert_eq!(c.weight_shape(), vec![6, 2, 3, 2]);
    assert_eq!(c.bias_shape(), Some(vec![6]));
    assert_eq!(c.out_shape(&[2, 4, 7, 5]).unwrap(), vec![2, 6, 5, 4]);
    let c1 = Conv1d {
        groups: 2,
        ..Conv1d::new(4, 6, 3)
    };
    assert_eq!(c1.weight_shape(), vec![6, 2, 3]);
    assert_eq!(c1.out_shape(&[2, 4, 7]).unwrap(), vec![2, 6, 5]);
    let g = c1.geometry(&[2, 4, 7]).unwrap();
    assert_eq!((g.in_size, g.out_size, g.kernel), ((1, 7), (1, 5), (1, 3)));
    let t = ConvTranspose2d {
        groups: 2,
        stride: (2, 2),
        padding: Padding::symmetric(1),
        ..ConvTranspose2d::new(4, 6, (3, 3))
    };
    // PyTorch: (3 - 1) * 2 - 2 + 3 = 5
    assert_eq!(t.out_shape(&[1, 4, 3, 3]).unwrap(), vec![1, 6, 5, 5]);
    assert_eq!(t.weight_shape(), vec![4, 3, 3, 3]);
    // The geometry is that of the conv 6 -> 4 channels, 5x5 -> 3x3, whose OIHW is this weight.
    let g = t.geometry(&[1, 4, 3, 3]).unwrap();
    assert_eq!(
        (g.in_channels, g.out_channels, g.in_size, g.out_size),
        (6, 4, (5, 5), (3, 3))
    );
    assert_eq!(g.weight_shape(), t.weight_shape());
    let t1 = ConvTranspose1d {
        stride: 2,
        output_padding: 1,
        ..ConvTranspose1d::new(2, 3, 3)
    };
    assert_eq!(t1.out_shape(&[1, 2, 4]).unwrap(), vec![1, 3, 10]);
    assert_eq!(t1.weight_shape(), vec![2, 3, 3]);
    let same = ConvTranspose1d {
        padding: Padding1d::Same,
        output_padding: 0,
        ..t1
    };
    assert_eq!(same.out_shape(&[1, 2, 4]).unwrap(), vec![1, 3, 8]);
    assert_eq!(same.resolved_padding(4), (0, 1));
}

#[test]
fn conv2d_errors() {
    let c = Conv2d::new(3, 4, (3, 3));
    let x = [1, 3, 5, 5];
    assert_err(
        c.out_shape(&[1, 2, 5, 5]),
        "conv2d",
        &["2 channels", "in_channels is 3", "[1, 2, 5, 5]"],
    );
    assert_err(
        c.out_shape(&[3, 5, 5]),
        "conv2d",
        &["rank-4", "[3, 5, 5]", "rank 3"],
    );
    assert_err(
        c.out_shape(&[1, 3, 0, 5]),
        "conv2d",
        &["[1, 3, 0, 5]", "zero"],
    );
    assert_err(
        Conv2d {
            stride: (0, 1),
            ..c
        }
        .out_shape(&x),
        "conv2d",
        &["stride (0, 1)"],
    );
    assert_err(
        Conv2d {
            dilation: (2, 0),
            ..c
        }
        .out_shape(&x),
        "conv2d",
        &["dilation (2, 0)"],
    );
    assert_err(
        Conv2d {
            kernel: (0, 3),
            ..c
        }
        .validate(),
        "conv2d",
        &["kernel (0, 3)"],
    );
    assert_err(
        Conv2d { groups: 0, ..c }.out_shape(&x),
        "conv2d",
        &["groups 0"],
    );
    assert_err(
        Conv2d { groups: 2, ..c }.out_shape(&x),
        "conv2d",
        &["groups 2", "in_channels 3"],
    );
    let c6 = Conv2d {
        groups: 3,
        ..Conv2d::new(3, 4, (1, 1))
    };
    assert_err(c6.validate(), "conv2d", &["groups 3", "out_channels 4"]);
    assert_err(
        Conv2d::new(0, 4, (1, 1)).validate(),
        "conv2d",
        &["in_channels 0"],
    );
    assert_err(
        Conv2d::new(3, 0, (1, 1)).validate(),
        "conv2d",
        &["out_channels 0"],
    );
    // kernel larger than the padded input: 6 > 5, and dilated 2 * (3 - 1) + 1 = 5 > 4 + 0
    assert_err(
        Conv2d {
            kernel: (6, 3),
            ..c
        }
        .out_shape(&x),
        "conv2d",
        &["kernel height 6", "padded input height 5"],
    );
    let pad = Padding::Explicit {
        top: 0,
        bottom: 0,
        left: 1,
        right: 0,
    };
    let m = Conv2d {
        dilation: (1, 3),
        padding: pad,
        ..c
    }
    .out_shape(&[1, 3, 5, 4]);
    assert_err(
        m,
        "conv2d",
        &[
            "kernel width 3 (dilated 7)",
            "padded input width 5",
            "4 + padding 1 + 0",
        ],
    );
    // enough padding makes it fit
    let fits = Conv2d {
        kernel: (6, 3),
        padding: Padding::hw(1, 0),
        ..c
    };
    assert_eq!(fits.out_shape(&x).unwrap(), vec![1, 4, 2, 3]);
}

#[test]
fn conv1d_errors() {
    let c = Conv1d::new(2, 4, 3);
    assert_err(
        c.out_shape(&[1, 3, 5]),
        "conv1d",
        &["3 channels", "in_channels is 2"],
    );
    assert_err(
        c.out_shape(&[1, 2, 1, 5]),
        "conv1d",
        &["rank-3", "(N, C, L)", "rank 4"],
    );
    assert_err(
        Conv1d { stride: 0, ..c }.out_shape(&[1, 2, 5]),
        "conv1d",
        &["stride 0 must"],
    );
    assert_err(
        Conv1d { dilation: 0, ..c }.validate(),
        "conv1d",
        &["dilation 0 must"],
    );
    assert_err(
        Conv1d { kernel: 0, ..c }.validate(),
        "conv1d",
        &["kernel 0 must"],
    );
    assert_err(
        Conv1d { groups: 3, ..c }.validate(),
        "conv1d",
        &["groups 3", "in_channels 2"],
    );
    assert_err(
        c.out_shape(&[1, 2, 2]),
        "conv1d",
        &["kernel length 3", "padded input length 2"],
    );
}

#[test]
fn conv_transpose_errors() {
    let t = ConvTranspose2d {
        stride: (2, 2),
        ..ConvTranspose2d::new(4, 2, (3, 3))
    };
    let x = [1, 4, 3, 3];
    assert_err(
        t.out_shape(&[1, 2, 3, 3]),
        "conv_transpose2d",
        &["2 channels", "in_channels is 4"],
    );
    assert_err(
        t.out_shape(&[4, 3, 3]),
        "conv_transpose2d",
        &["rank-4", "rank 3"],
    );
    assert_err(
        ConvTranspose2d {
            stride: (1, 0),
            ..t
        }
        .out_shape(&x),
        "conv_transpose2d",
        &["stride (1, 0)"],
    );
    assert_err(
        ConvTranspose2d {
            dilation: (0, 1),
            ..t
        }
        .validate(),
        "conv_transpose2d",
        &["dilation (0, 1)"],
    );
    assert_err(
        ConvTranspose2d { groups: 0, ..t }.validate(),
        "conv_transpose2d",
        &["groups 0"],
    );
    assert_err(
        ConvTranspose2d { groups: 4, ..t }.validate(),
        "conv_transpose2d",
        &["groups 4", "out_channels 2"],
    );
    assert_err(
        ConvTranspose2d { groups: 3, ..t }.validate(),
        "conv_transpose2d",
        &["groups 3", "in_channels 4"],
    );
    let big = ConvTranspose2d {
        output_padding: (0, 2),
        ..t
    };
    assert_err(
        big.validate(),
        "conv_transpose2d",
        &["output_padding (0, 2)", "stride (2, 2)", "dilation (1, 1)"],
    );
    let same = ConvTranspose2d {
        output_padding: (1, 0),
        padding: Padding::Same,
        ..t
    };
    assert_err(
        same.validate(),
        "conv_transpose2d",
        &["output_padding (1, 0)", "Same"],
    );
    // padding eats the whole output: (1 - 1) * 1 + 1 = 1 <= 1 + 0
    let eaten = ConvTranspose2d {
        padding: Padding::Explicit {
            top: 1,
            bottom: 0,
            left: 0,
            right: 0,
        },
        ..ConvTranspose2d::new(1, 1, (1, 1))
    };
    assert_err(
        eaten.out_shape(&[1, 1, 1, 1]),
        "conv_transpose2d",
        &["output height would be 1 - padding 1 - 0"],
    );
    let t1 = ConvTranspose1d {
        stride: 2,
        ..ConvTranspose1d::new(2, 2, 3)
    };
    assert_err(
        ConvTranspose1d {
            output_padding: 2,
            ..t1
        }
        .validate(),
        "conv_transpose1d",
        &["output_padding 2", "stride 2"],
    );
    assert_err(t1.out_shape(&[1, 2, 0]), "conv_transpose1d", &["[1, 2, 0]"]);
    let eaten1 = ConvTranspose1d {
        padding: Padding1d::Explicit { left: 2, right: 2 },
        ..t1
    };
    assert_err(
        eaten1.out_shape(&[1, 2, 1]),
        "conv_transpose1d",
        &["output length would be 3 - padding 2 - 2"],
    );
}
