//! Shape-op kernels (concat, split, slice, pad, upsample) forward and backward vs the CPU f64
//! reference on awkward shapes, and their errors.

mod common;

use common::{assert_close, each_device};
use wgtrain::ops::shape::gpu as shape;
use wgtrain::ops::shape::reference;
use wgtrain::ops::shape::{
    Concat, Pad, PadMode, Slice, SliceRange, Split, Upsample, UpsampleMode, UpsampleSize,
};
use wgtrain::reference::Array;
use wgtrain::{DType, Device, Tensor};

fn up(dev: &Device, a: &Array) -> Tensor {
    Tensor::from_f32(dev, &a.shape, &a.to_f32()).unwrap()
}

fn rounded(a: &Array) -> Array {
    Array::from_f32(&a.shape, &a.to_f32())
}

fn seeded(shape: &[usize], seed: u64) -> Array {
    rounded(&Array::seeded(shape, seed))
}

/// Exact comparison for the pure copies, a summation tolerance for gathers that add.
fn same(what: &str, t: &Tensor, want: &Array, tol: f64) {
    assert_eq!(t.shape(), &want.shape[..], "{what}: shape");
    assert_close(what, &t.to_f32().unwrap(), &want.data, tol, tol);
}

#[test]
fn concat_three_inputs_on_every_axis() {
    each_device("concat", |dev| {
        let cases: [(isize, [&[usize]; 3]); 3] = [
            (0, [&[1, 3, 5], &[2, 3, 5], &[3, 3, 5]]),
            (1, [&[2, 1, 5], &[2, 7, 5], &[2, 3, 5]]),
            (-1, [&[2, 3, 1], &[2, 3, 4], &[2, 3, 7]]),
        ];
        for (axis, shapes) in cases {
            let op = Concat { axis };
            let xs: Vec<Array> = (0..3).map(|i| seeded(shapes[i], i as u64 + 1)).collect();
            let gs: Vec<Tensor> = xs.iter().map(|x| up(dev, x)).collect();
            let y = shape::concat(&op, &gs.iter().collect::<Vec<_>>()).unwrap();
            let want = reference::concat(&op, &xs.iter().collect::<Vec<_>>()).unwrap();
            same(&format!("concat axis {axis}"), &y, &want, 0.0);
            let dy = seeded(&want.shape, 9);
            let dxs = shape::concat_backward(&op, &shapes, &up(dev, &dy)).unwrap();
            let wants = reference::concat_backward(&op, &shapes, &dy).unwrap();
            for (k, (d, w)) in dxs.iter().zip(&wants).enumerate() {
                same(&format!("concat axis {axis} d{k}"), d, w, 0.0);
            }
        }
    });
}

#[test]
fn copy_into_writes_only_its_slice() {
    each_device("copy_into", |dev| {
        // A producer's output landing straight in its slice of a larger buffer.
        let dst = seeded(&[2, 6, 3], 1);
        let src = seeded(&[2, 2, 3], 2);
        let gd = up(dev, &dst);
        let l = shape::copy_into_launch(&up(dev, &src), &gd, 1, 3).unwrap();
        dev.run(&[l]).unwrap();
        let mut want = dst.clone();
        for n in 0..2 {
            for c in 0..2 {
                for k in 0..3 {
                    want.data[(n * 6 + 3 + c) * 3 + k] = src.data[(n * 2 + c) * 3 + k];
                }
            }
        }
        same("copy_into", &gd, &want, 0.0);
        let back = Tensor::zeros(dev, &[2, 2, 3], DType::F32).unwrap();
        dev.run(&[shape::copy_from_launch(&gd, 1, 3, &back).unwrap()])
            .unwrap();
        same("copy_from", &back, &src, 0.0);
    });
}

/// The concat gradient's copy through a neuron's derivative (`copy_from_grad_launch`, what a
/// folded ReLU gradient lowers to): dx = dy·[y > 0] over the window, y read from the same window
/// of the concat's output; rows shorter than a workgroup, one row over several chunks, and a
/// window of one channel.
#[test]
fn the_concat_gradient_applies_a_relu_mask_from_its_window() {
    each_device("copy_from through relu", |dev| {
        let relu = wgtrain::ops::elementwise::UnaryOp::Relu;
        for (big, axis, offset, extent) in [
            (vec![2, 7, 33], 1, 2, 4),
            (vec![1, 3, 1100], 1, 1, 2),
            (vec![3, 5, 2, 2], 1, 4, 1),
            (vec![4, 9], 0, 1, 3),
        ] {
            let dy = seeded(&big, 11);
            let y = seeded(&big, 12);
            let mut small = big.clone();
            small[axis] = extent;
            let dx = Tensor::zeros(dev, &small, DType::F32).unwrap();
            let l =
                shape::copy_from_grad_launch(&up(dev, &dy), &up(dev, &y), axis, offset, relu, &dx)
                    .unwrap();
            dev.run(&[l]).unwrap();
            let rows: usize = big[..axis].iter().product();
            let inner: usize = big[axis + 1..].iter().product();
            let mut want = Vec::new();
            for r in 0..rows {
                for e in 0..extent * inner {
                    let i = r * big[axis] * inner + offset * inner + e;
                    let y = y.data[i] as f32 as f64;
                    want.push(if y > 0.0 {
                        dy.data[i] as f32 as f64
                    } else {
                        0.0
                    });
                }
            }
            assert!(want.contains(&0.0) && want.iter().any(|&v| v != 0.0));
            same(
                &format!("relu window {big:?}"),
                &dx,
                &Array::new(&small, want),
                0.0,
            );
        }
    });
}

#[test]
fn split_on_every_axis() {
    each_device("split", |dev| {
        let x = seeded(&[3, 33, 2], 4);
        let gx = up(dev, &x);
        for (axis, sizes) in [(0isize, vec![1, 2]), (1, vec![7, 1, 25]), (-1, vec![1, 1])] {
            let op = Split { axis, sizes };
            let parts = shape::split(&op, &gx).unwrap();
            let wants = reference::split(&op, &x).unwrap();
            assert_eq!(parts.len(), wants.len());
            for (k, (p, w)) in parts.iter().zip(&wants).enumerate() {
                same(&format!("split {axis} piece {k}"), p, w, 0.0);
            }
            let dys: Vec<Array> = wants
                .iter()
                .enumerate()
                .map(|(k, w)| seeded(&w.shape, 20 + k as u64))
                .collect();
            let gdys: Vec<Tensor> = dys.iter().map(|d| up(dev, d)).collect();
            let dx =
                shape::split_backward(&op, &x.shape, &gdys.iter().collect::<Vec<_>>()).unwrap();
            let want =
                reference::split_backward(&op, &x.shape, &dys.iter().collect::<Vec<_>>()).unwrap();
            same(&format!("split {axis} dx"), &dx, &want, 0.0);
        }
    });
}

/// Concat of `outer` rows of pieces `sizes` × `inner` along axis 1, forward and backward, in
/// `dtype`: exact copies against the reference (fed the values the tensors hold).
fn concat_rows(dev: &Device, outer: usize, sizes: &[usize], inner: usize, dtype: DType) {
    let shapes: Vec<Vec<usize>> = sizes.iter().map(|&c| vec![outer, c, inner]).collect();
    let shape_refs: Vec<&[usize]> = shapes.iter().map(|s| &s[..]).collect();
    let load = |a: &Array| match dtype {
        DType::F16 => Tensor::from_f32_as_f16(dev, &a.shape, &a.to_f32()).unwrap(),
        _ => up(dev, a),
    };
    // The values the tensors hold (f16-rounded in f16), so the copies compare exactly.
    let held = |t: &Tensor| Array::from_f32(t.shape(), &t.to_f32().unwrap());
    let gs: Vec<Tensor> = (0..sizes.len())
        .map(|i| load(&seeded(&shapes[i], 40 + i as u64)))
        .collect();
    assert!(gs.iter().all(|g| g.dtype() == dtype));
    let xs: Vec<Array> = gs.iter().map(held).collect();
    let op = Concat { axis: 1 };
    let what = format!("concat {outer} × {sizes:?} × {inner} {dtype:?}");
    // Through the launches, which take outputs of the inputs' dtype (the eager concat's are f32).
    let want = reference::concat(&op, &xs.iter().collect::<Vec<_>>()).unwrap();
    let y = Tensor::zeros(dev, &want.shape, dtype).unwrap();
    let ls = shape::concat_launch(&op, &gs.iter().collect::<Vec<_>>(), &y).unwrap();
    dev.run(&ls).unwrap();
    same(&what, &y, &want, 0.0);
    let gdy = load(&seeded(&want.shape, 50));
    let dxs: Vec<Tensor> = shapes
        .iter()
        .map(|s| Tensor::zeros(dev, s, dtype).unwrap())
        .collect();
    let ls = shape::concat_backward_launch(&op, &gdy, &dxs.iter().collect::<Vec<_>>()).unwrap();
    dev.run(&ls).unwrap();
    let wants = reference::concat_backward(&op, &shape_refs, &held(&gdy)).unwrap();
    for (k, (d, w)) in dxs.iter().zip(&wants).enumerate() {
        assert_eq!(d.dtype(), dtype, "{what} d{k}");
        same(&format!("{what} d{k}"), d, w, 0.0);
    }
}

/// The row kernel's edges: one row, a few, more than a workgroup's worth; rows of whole and
/// partial chunks (1024), lengths no multiple of 4 or 256, offsets at no alignment; and rows
/// under a workgroup (255) beside long ones, which take the strided copy.
const ROW_CASES: [(usize, &[usize], usize); 5] = [
    (1, &[1, 2, 5], 257),
    (7, &[3, 1], 341),
    (33, &[4, 5, 1], 259),
    (7, &[3, 1, 12], 85),
    (2, &[1, 3], 1024),
];

#[test]
fn row_copies_of_awkward_shapes() {
    each_device("row copy", |dev| {
        for (outer, sizes, inner) in ROW_CASES {
            concat_rows(dev, outer, sizes, inner, DType::F32);
        }
        // Split's pieces of one input, and its backward, on the same awkward rows.
        let x = seeded(&[7, 9, 131], 6);
        let op = Split {
            axis: 1,
            sizes: vec![2, 4, 3],
        };
        let parts = shape::split(&op, &up(dev, &x)).unwrap();
        for (k, (p, w)) in parts
            .iter()
            .zip(reference::split(&op, &x).unwrap())
            .enumerate()
        {
            same(&format!("split piece {k}"), p, &w, 0.0);
        }
    });
}

#[test]
fn row_copies_in_f16() {
    each_device("row copy f16", |dev| {
        if !dev.caps().shader_f16 {
            eprintln!("no SHADER_F16: skipped");
            return;
        }
        for (outer, sizes, inner) in ROW_CASES {
            concat_rows(dev, outer, sizes, inner, DType::F16);
        }
    });
}

#[test]
fn row_copy_past_one_grid_dimension() {
    each_device("row copy grid", |dev| {
        // 65,537 rows of one workgroup each: the grid folds into a second dimension, and the
        // one workgroup past the last row must write nothing. (Along the last axis, so the
        // destination stays within one binding's 128 MiB.)
        let (rows, len, wide) = (65_537, 256, 300);
        let src: Vec<f32> = (0..rows * len).map(|i| (i % 4093) as f32).collect();
        let fill: Vec<f32> = vec![-1.0; rows * wide];
        let gs = Tensor::from_f32(dev, &[rows, len], &src).unwrap();
        let gd = Tensor::from_f32(dev, &[rows, wide], &fill).unwrap();
        dev.run(&[shape::copy_into_launch(&gs, &gd, 1, 44).unwrap()])
            .unwrap();
        let got = gd.to_f32().unwrap();
        for r in 0..rows {
            let row = &got[r * wide..(r + 1) * wide];
            assert!(
                row[..44].iter().all(|&v| v == -1.0),
                "row {r} before the slice"
            );
            assert_eq!(&row[44..], &src[r * len..(r + 1) * len], "row {r}");
        }
    });
}

fn r(start: usize, end: usize, step: usize) -> SliceRange {
    SliceRange { start, end, step }
}

#[test]
fn slices_with_steps_and_crops() {
    each_device("slice", |dev| {
        let cases: Vec<(Vec<usize>, Slice)> = vec![
            (
                vec![1],
                Slice {
                    ranges: vec![r(0, 1, 1)],
                },
            ),
            (
                vec![33],
                Slice {
                    ranges: vec![r(1, 33, 3)],
                },
            ),
            (
                vec![7, 9, 5],
                Slice {
                    ranges: vec![r(1, 7, 2), r(0, 9, 3), r(2, 5, 1)],
                },
            ),
            (
                vec![2, 3, 5, 7],
                Slice {
                    ranges: vec![r(1, 2, 1), r(0, 3, 2), r(1, 5, 3), r(0, 7, 2)],
                },
            ),
            (vec![2, 3, 8, 8], Slice::crop(&[0, 1, 2, 3], &[2, 2, 5, 4])),
        ];
        for (s, op) in cases {
            let x = seeded(&s, 3);
            let y = shape::slice(&op, &up(dev, &x)).unwrap();
            let want = reference::slice(&op, &x).unwrap();
            same(&format!("slice {s:?}"), &y, &want, 0.0);
            let dy = seeded(&want.shape, 5);
            let dx = shape::slice_backward(&op, &s, &up(dev, &dy)).unwrap();
            same(
                &format!("slice {s:?} dx"),
                &dx,
                &reference::slice_backward(&op, &s, &dy).unwrap(),
                0.0,
            );
        }
    });
}

#[test]
fn asymmetric_zero_and_edge_pads() {
    each_device("pad", |dev| {
        let cases: [(&[usize], &[usize], &[usize]); 4] = [
            (&[7], &[3], &[1]),
            (&[2, 3, 4], &[0, 1, 2], &[1, 0, 3]),
            (&[1, 1], &[2, 1], &[1, 3]),
            (&[2, 1, 5, 3], &[0, 0, 2, 1], &[0, 2, 1, 4]),
        ];
        for (s, before, after) in cases {
            for mode in [PadMode::Zero, PadMode::Edge] {
                let op = Pad {
                    before: before.to_vec(),
                    after: after.to_vec(),
                    mode,
                };
                let what = format!("pad {mode:?} {s:?}");
                let x = seeded(s, 6);
                let y = shape::pad(&op, &up(dev, &x)).unwrap();
                let want = reference::pad(&op, &x).unwrap();
                same(&what, &y, &want, 0.0);
                let dy = seeded(&want.shape, 8);
                let dx = shape::pad_backward(&op, s, &up(dev, &dy)).unwrap();
                let want = reference::pad_backward(&op, s, &dy).unwrap();
                same(&format!("{what} dx"), &dx, &want, 1e-5);
            }
        }
    });
}

#[test]
fn upsample_nearest_and_bilinear() {
    each_device("upsample", |dev| {
        let cases: [(&[usize], UpsampleSize); 6] = [
            (&[2, 3, 4, 5], UpsampleSize::Scale(2, 2)),
            (&[1, 2, 3, 4], UpsampleSize::Scale(3, 3)),
            (&[3, 1, 7], UpsampleSize::Scale(2, 3)),
            (&[1, 1], UpsampleSize::Scale(3, 2)),
            (&[2, 1, 3, 4], UpsampleSize::Size(5, 7)),
            (&[1, 2, 5, 7], UpsampleSize::Size(2, 3)),
        ];
        for (s, size) in cases {
            for mode in [UpsampleMode::Nearest, UpsampleMode::Bilinear] {
                let op = Upsample { mode, size };
                let what = format!("upsample {mode:?} {size:?} {s:?}");
                let x = seeded(s, 10);
                let y = shape::upsample(&op, &up(dev, &x)).unwrap();
                let want = reference::upsample(&op, &x).unwrap();
                same(&what, &y, &want, 1e-6);
                let dy = seeded(&want.shape, 11);
                let dx = shape::upsample_backward(&op, s, &up(dev, &dy)).unwrap();
                let want = reference::upsample_backward(&op, s, &dy).unwrap();
                same(&format!("{what} dx"), &dx, &want, 1e-5);
            }
        }
    });
}

fn err<T: std::fmt::Debug>(r: wgtrain::Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn bad_inputs_are_errors() {
    each_device("shape errors", |dev| {
        let t = |s: &[usize]| Tensor::zeros(dev, s, DType::F32).unwrap();
        let (a, b) = (t(&[2, 3, 4]), t(&[2, 5, 4]));
        // Axis out of range.
        let e = err(shape::concat(&Concat { axis: 3 }, &[&a, &b]));
        assert!(
            e.contains("concat") && e.contains("axis 3") && e.contains("rank 3"),
            "{e}"
        );
        let sp = Split {
            axis: -4,
            sizes: vec![1, 1],
        };
        let e = err(shape::split(&sp, &a));
        assert!(e.contains("split") && e.contains("axis -4"), "{e}");
        // Concat inputs that disagree off the axis.
        let e = err(shape::concat(&Concat { axis: 0 }, &[&a, &b]));
        assert!(
            e.contains("concat") && e.contains("(2, 5, 4)") && e.contains("(2, 3, 4)"),
            "{e}"
        );
        let e = err(shape::concat_launch(
            &Concat { axis: 1 },
            &[&a, &b],
            &t(&[2, 8, 5]),
        ));
        assert!(
            e.contains("concat") && e.contains("(2, 8, 5)") && e.contains("(2, 8, 4)"),
            "{e}"
        );
        let e = err(shape::copy_into_launch(&b, &a, 1, 0));
        assert!(
            e.contains("copy_into") && e.contains("(2, 5, 4)") && e.contains("(2, 3, 4)"),
            "{e}"
        );
        let e = err(shape::copy_into_launch(&a, &b, 1, 3));
        assert!(e.contains("offset 3"), "{e}");
        // The concat gradient's copy through a neuron: the neuron's output must be laid out as
        // dy (the concat's output), in dy's dtype.
        let relu = wgtrain::ops::elementwise::UnaryOp::Relu;
        let e = err(shape::copy_from_grad_launch(&b, &a, 1, 0, relu, &a));
        assert!(
            e.contains("neuron's output") && e.contains("(2, 3, 4)"),
            "{e}"
        );
        let half = Tensor::zeros(dev, &[2, 5, 4], DType::F16).unwrap();
        if dev.caps().shader_f16 {
            let e = err(shape::copy_from_grad_launch(&b, &half, 1, 0, relu, &a));
            assert!(e.contains("one dtype"), "{e}");
        }
        let e = err(shape::copy_from_grad_launch(&b, &b, 1, 3, relu, &a));
        assert!(e.contains("offset 3"), "{e}");
        assert!(shape::copy_from_grad_launch(&b, &b, 1, 2, relu, &a).is_ok());
        // Split sizes that do not cover the axis.
        let sp = Split {
            axis: 1,
            sizes: vec![1, 1],
        };
        let e = err(shape::split(&sp, &a));
        assert!(
            e.contains("split") && e.contains("[1, 1]") && e.contains("(2, 3, 4)"),
            "{e}"
        );
        // Slice out of range: end past the dim, empty range, step 0, wrong rank.
        let bad = [
            Slice::crop(&[0, 0, 2], &[2, 3, 3]),
            Slice {
                ranges: vec![r(1, 1, 1), r(0, 3, 1), r(0, 4, 1)],
            },
            Slice {
                ranges: vec![r(0, 2, 0), r(0, 3, 1), r(0, 4, 1)],
            },
            Slice {
                ranges: vec![r(0, 2, 1)],
            },
        ];
        for op in &bad {
            let e = err(shape::slice(op, &a));
            assert!(e.contains("slice") && e.contains("(2, 3, 4)"), "{e}");
            let e = err(shape::slice_backward(op, &[2, 3, 4], &t(&[1])));
            assert!(e.contains("slice"), "{e}");
        }
        let e = err(shape::slice(&Slice::crop(&[0, 0, 2], &[2, 3, 3]), &a));
        assert!(e.contains("axis 2") && e.contains("2..5"), "{e}");
        // Outputs / gradients of the wrong shape.
        let op = Pad {
            before: vec![0, 1, 0],
            after: vec![0, 0, 2],
            mode: PadMode::Edge,
        };
        let e = err(shape::pad_launch(&op, &a, &t(&[2, 3, 4])));
        assert!(e.contains("pad") && e.contains("(2, 4, 6)"), "{e}");
        let e = err(shape::pad(
            &Pad {
                before: vec![1],
                after: vec![1],
                mode: PadMode::Zero,
            },
            &a,
        ));
        assert!(e.contains("pad") && e.contains("(2, 3, 4)"), "{e}");
        let upop = Upsample {
            mode: UpsampleMode::Bilinear,
            size: UpsampleSize::Scale(2, 2),
        };
        let e = err(shape::upsample_backward(&upop, &[2, 3, 4], &t(&[2, 3, 4])));
        assert!(e.contains("upsample") && e.contains("(2, 6, 8)"), "{e}");
        let e = err(shape::upsample(&upop, &t(&[4])));
        assert!(e.contains("upsample") && e.contains("rank"), "{e}");
    });
}
