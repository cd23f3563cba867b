//! Foundation kernels vs the CPU f64 reference on awkward shapes, on every adapter.

mod common;

use common::{assert_close, each_device};
use wgtrain::ops::elementwise::gpu as elementwise;
use wgtrain::ops::elementwise::reference as basic;
use wgtrain::ops::elementwise::{BinaryOp, UnaryOp};
use wgtrain::ops::matmul::gpu as matmul;
use wgtrain::ops::reduce::ReduceKind;
use wgtrain::ops::reduce::gpu as reduce;
use wgtrain::ops::shape::permute as transpose;
use wgtrain::reference::Array;
use wgtrain::{Device, Error, Tensor};

fn up(dev: &Device, a: &Array) -> Tensor {
    Tensor::from_f32(dev, &a.shape, &a.to_f32()).unwrap()
}

/// The f32 values the GPU sees, back in f64, so references start from identical inputs.
fn rounded(a: &Array) -> Array {
    Array::from_f32(&a.shape, &a.to_f32())
}

#[test]
fn unary_forward_backward() {
    each_device("unary", |dev| {
        for shape in [vec![1], vec![7], vec![33], vec![257], vec![3, 5, 7]] {
            for op in UnaryOp::all() {
                let mut x = rounded(&Array::seeded(&shape, 11).map_scaled(3.0));
                if matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip) {
                    x = rounded(&Array::new(
                        &shape,
                        x.data.iter().map(|v| v.abs() + 0.05).collect(),
                    ));
                }
                let dy = rounded(&Array::seeded(&shape, 12));
                let y = elementwise::unary(op, &up(dev, &x))
                    .unwrap()
                    .to_f32()
                    .unwrap();
                assert_close(
                    &format!("{op:?} {shape:?}"),
                    &y,
                    &basic::unary(op, &x).data,
                    1e-5,
                    1e-5,
                );
                let dx = elementwise::unary_backward(op, &up(dev, &x), &up(dev, &dy))
                    .unwrap()
                    .to_f32()
                    .unwrap();
                assert_close(
                    &format!("{op:?}' {shape:?}"),
                    &dx,
                    &basic::unary_backward(op, &x, &dy).unwrap().data,
                    1e-5,
                    1e-4,
                );
            }
        }
    });
}

#[test]
fn binary_broadcast_forward_backward() {
    each_device("binary", |dev| {
        // Same layout, runs of the output's dims (per channel, trailing, leading, across a
        // size-1 dim) and broadcasts between kept dims (the per-dim loop), on either side.
        let cases: [(&[usize], &[usize]); 11] = [
            (&[1], &[1]),
            (&[7], &[7]),
            (&[33, 1], &[1, 7]),
            (&[2, 3, 33], &[33]),
            (&[5, 1, 7], &[3, 1]),
            (&[3, 5, 7], &[1, 5, 7]),
            (&[2, 5, 3, 7], &[1, 5, 1, 1]),
            (&[5, 1, 1], &[2, 5, 3, 7]),
            (&[3, 1, 2, 5], &[3, 1, 2, 1]),
            (&[2, 3, 4], &[2, 1, 4]),
            (&[4, 1, 7], &[4, 3, 7]),
        ];
        for (sa, sb) in cases {
            let out = elementwise::broadcast_shape("test", sa, sb).unwrap();
            let a = rounded(&Array::seeded(sa, 21));
            // Keep b away from 0 so that divide is well conditioned.
            let b = rounded(&Array::new(
                sb,
                Array::seeded(sb, 22)
                    .data
                    .iter()
                    .map(|v| v + 1.5 * v.signum() + 0.01)
                    .collect(),
            ));
            let dy = rounded(&Array::seeded(&out, 23));
            for op in [
                BinaryOp::Add,
                BinaryOp::Sub,
                BinaryOp::Mul,
                BinaryOp::Div,
                BinaryOp::Max,
                BinaryOp::Min,
            ] {
                let what = format!("{op:?} {sa:?}·{sb:?}");
                let y = elementwise::binary(op, &up(dev, &a), &up(dev, &b)).unwrap();
                assert_eq!(y.shape(), &out[..]);
                assert_close(
                    &what,
                    &y.to_f32().unwrap(),
                    &basic::binary(op, &a, &b, &out).data,
                    1e-6,
                    1e-5,
                );
                let (ga, gb) =
                    elementwise::binary_backward(op, &up(dev, &a), &up(dev, &b), &up(dev, &dy))
                        .unwrap();
                let (ra, rb) = basic::binary_backward(op, &a, &b, &dy);
                assert_eq!(ga.shape(), sa);
                assert_eq!(gb.shape(), sb);
                assert_close(
                    &format!("{what} da"),
                    &ga.to_f32().unwrap(),
                    &ra.data,
                    1e-5,
                    1e-4,
                );
                assert_close(
                    &format!("{what} db"),
                    &gb.to_f32().unwrap(),
                    &rb.data,
                    1e-5,
                    1e-4,
                );
            }
        }
    });
}

#[test]
fn reductions_forward_backward() {
    each_device("reduce", |dev| {
        for shape in [vec![1], vec![7], vec![257], vec![3, 33], vec![2, 7, 5]] {
            for axis in 0..shape.len() {
                for op in [ReduceKind::Sum, ReduceKind::Mean, ReduceKind::Max] {
                    let what = format!("{op:?} {shape:?} axis {axis}");
                    let x = rounded(&Array::seeded(&shape, 31));
                    let (ry, rarg) = wgtrain::ops::reduce::reference::reduce(op, &x, axis);
                    let (y, arg) = reduce::reduce(op, &up(dev, &x), axis).unwrap();
                    assert_close(&what, &y.to_f32().unwrap(), &ry.data, 1e-5, 1e-5);
                    if let Some(a) = &arg {
                        let got: Vec<usize> =
                            a.to_u32().unwrap().iter().map(|&v| v as usize).collect();
                        assert_eq!(got, rarg, "{what} argmax");
                    }
                    let dy = rounded(&Array::seeded(&ry.shape, 32));
                    let dx = reduce::reduce_backward(op, &shape, axis, &up(dev, &dy), arg.as_ref())
                        .unwrap();
                    let rdx = wgtrain::ops::reduce::reference::reduce_backward(
                        op, &shape, axis, &dy, &rarg,
                    );
                    assert_close(
                        &format!("{what} dx"),
                        &dx.to_f32().unwrap(),
                        &rdx.data,
                        1e-6,
                        1e-5,
                    );
                }
            }
        }
    });
}

#[test]
fn matmul_all_transposes_awkward_shapes() {
    each_device("matmul", |dev| {
        for (m, k, n) in [
            (1, 1, 1),
            (7, 33, 1),
            (33, 7, 65),
            (65, 257, 33),
            (130, 17, 129),
        ] {
            let a = rounded(&Array::seeded(&[m, k], 41));
            let b = rounded(&Array::seeded(&[k, n], 42));
            let want = wgtrain::ops::matmul::reference::matmul(&a, &b, false, false);
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let ga = if ta {
                    wgtrain::ops::shape::reference::permute(&a, &[1, 0])
                } else {
                    a.clone()
                };
                let gb = if tb {
                    wgtrain::ops::shape::reference::permute(&b, &[1, 0])
                } else {
                    b.clone()
                };
                let c = matmul::matmul(&up(dev, &ga), &up(dev, &gb), ta, tb).unwrap();
                assert_eq!(c.shape(), &[m, n]);
                assert_close(
                    &format!("matmul {m}x{k}x{n} ta={ta} tb={tb}"),
                    &c.to_f32().unwrap(),
                    &want.data,
                    1e-4,
                    1e-4,
                );
            }
            let dc = rounded(&Array::seeded(&[m, n], 43));
            let (da, db) =
                matmul::matmul_backward(&up(dev, &a), &up(dev, &b), &up(dev, &dc)).unwrap();
            let (ra, rb) = wgtrain::ops::matmul::reference::matmul_backward(&a, &b, &dc);
            assert_close(
                &format!("matmul {m}x{k}x{n} da"),
                &da.to_f32().unwrap(),
                &ra.data,
                1e-4,
                1e-4,
            );
            assert_close(
                &format!("matmul {m}x{k}x{n} db"),
                &db.to_f32().unwrap(),
                &rb.data,
                1e-4,
                1e-4,
            );
        }
    });
}

/// Every entry of `gemm_core.wgsl` — the 128×32, 128×64 and 128×128 tiles and the direct loop —
/// on shapes that cut every tile, its 64-column halves and the K step (8): a batch large enough
/// that the wide entry is chosen, a tall grid of narrow tiles, N under 32 for the thin tile, and
/// the same shapes on the direct loop (8×8 blocks cut by M and N of 7 and 33).
#[test]
fn batched_matmul_every_gemm_entry() {
    use wgtrain::launch::{GemmLoop, with_gemm_loop};
    each_device("matmul gemm entries", |dev| {
        for (gemm_loop, bt, m, k, n, want_entry) in [
            (GemmLoop::Tiled, 64, 130, 37, 200, "gemm_wide"),
            (GemmLoop::Tiled, 2, 129, 9, 63, "gemm"),
            (GemmLoop::Tiled, 1, 1100, 5, 130, "gemm"),
            (GemmLoop::Tiled, 3, 257, 19, 33, "gemm"),
            (GemmLoop::Tiled, 3, 257, 19, 32, "gemm_thin"),
            (GemmLoop::Tiled, 2, 7, 40, 1, "gemm_thin"),
            (GemmLoop::Direct, 2, 129, 9, 63, "gemm_direct"),
            (GemmLoop::Direct, 3, 7, 33, 33, "gemm_direct"),
            (GemmLoop::Direct, 1, 1, 7, 1, "gemm_direct"),
        ] {
            with_gemm_loop(gemm_loop, || {
                let entry = matmul::gemm_grid(dev, m, n, bt).0;
                assert_eq!(entry, want_entry);
                let a = rounded(&Array::seeded(&[bt, m, k], 54));
                let b = rounded(&Array::seeded(&[bt, k, n], 55));
                let slice = |x: &Array, i: usize, r: usize, c: usize| {
                    Array::new(&[r, c], x.data[i * r * c..(i + 1) * r * c].to_vec())
                };
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    let mut ga = Vec::new();
                    let mut gb = Vec::new();
                    let mut want = Vec::new();
                    for i in 0..bt {
                        let (ai, bi) = (slice(&a, i, m, k), slice(&b, i, k, n));
                        want.extend(
                            wgtrain::ops::matmul::reference::matmul(&ai, &bi, false, false).data,
                        );
                        let ai = if ta {
                            wgtrain::ops::shape::reference::permute(&ai, &[1, 0])
                        } else {
                            ai
                        };
                        let bi = if tb {
                            wgtrain::ops::shape::reference::permute(&bi, &[1, 0])
                        } else {
                            bi
                        };
                        ga.extend(ai.data);
                        gb.extend(bi.data);
                    }
                    let sa = if ta { [bt, k, m] } else { [bt, m, k] };
                    let sb = if tb { [bt, n, k] } else { [bt, k, n] };
                    let c = matmul::matmul(
                        &up(dev, &Array::new(&sa, ga)),
                        &up(dev, &Array::new(&sb, gb)),
                        ta,
                        tb,
                    )
                    .unwrap();
                    assert_eq!(c.shape(), &[bt, m, n]);
                    assert_close(
                        &format!("{entry} {bt}x{m}x{k}x{n} ta={ta} tb={tb}"),
                        &c.to_f32().unwrap(),
                        &want,
                        1e-4,
                        1e-4,
                    );
                }
            });
        }
    });
}

#[test]
fn batched_matmul_with_shared_weight() {
    each_device("batched matmul", |dev| {
        let (bt, m, k, n) = (3, 7, 33, 5);
        let a = rounded(&Array::seeded(&[bt, m, k], 51));
        let w = rounded(&Array::seeded(&[k, n], 52));
        let c = matmul::matmul(&up(dev, &a), &up(dev, &w), false, false).unwrap();
        assert_eq!(c.shape(), &[bt, m, n]);
        let got = c.to_f32().unwrap();
        let mut want = Vec::new();
        for i in 0..bt {
            let ai = Array::new(&[m, k], a.data[i * m * k..(i + 1) * m * k].to_vec());
            want.extend(wgtrain::ops::matmul::reference::matmul(&ai, &w, false, false).data);
        }
        assert_close("batched matmul", &got, &want, 1e-4, 1e-4);
        // The shared weight's gradient is summed over the batch.
        let dc = rounded(&Array::seeded(&[bt, m, n], 53));
        let (_, dw) = matmul::matmul_backward(&up(dev, &a), &up(dev, &w), &up(dev, &dc)).unwrap();
        let a2 = Array::new(&[bt * m, k], a.data.clone());
        let dc2 = Array::new(&[bt * m, n], dc.data.clone());
        assert_close(
            "shared dw",
            &dw.to_f32().unwrap(),
            &wgtrain::ops::matmul::reference::matmul(&a2, &dc2, true, false).data,
            1e-4,
            1e-4,
        );
    });
}

#[test]
fn permute_and_its_gradient() {
    each_device("permute", |dev| {
        for (shape, perm) in [
            (vec![7], vec![0]),
            (vec![33, 7], vec![1, 0]),
            (vec![2, 3, 5, 7], vec![3, 1, 0, 2]),
        ] {
            let x = rounded(&Array::seeded(&shape, 61));
            let y = transpose::permute(&up(dev, &x), &perm).unwrap();
            let want = wgtrain::ops::shape::reference::permute(&x, &perm);
            assert_eq!(y.shape(), &want.shape[..]);
            assert_close("permute", &y.to_f32().unwrap(), &want.data, 0.0, 0.0);
            let back = transpose::permute(&y, &transpose::inverse(&perm)).unwrap();
            assert_close(
                "permute inverse",
                &back.to_f32().unwrap(),
                &x.data,
                0.0,
                0.0,
            );
        }
    });
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    each_device("bad inputs", |dev| {
        let a = Tensor::from_f32(dev, &[2, 3], &[0.0; 6]).unwrap();
        let b = Tensor::from_f32(dev, &[4], &[0.0; 4]).unwrap();
        let e = elementwise::binary(BinaryOp::Add, &a, &b).unwrap_err();
        assert!(
            matches!(e, Error::Shape { .. })
                && e.to_string().contains("[2, 3]")
                && e.to_string().contains("[4]"),
            "{e}"
        );
        let e = reduce::reduce(ReduceKind::Sum, &a, 2).unwrap_err();
        assert!(e.to_string().contains("axis 2"), "{e}");
        let e = matmul::matmul(&a, &a, false, false).unwrap_err();
        assert!(
            e.to_string().contains("matmul") && e.to_string().contains("3 vs 2"),
            "{e}"
        );
        let e = transpose::permute(&a, &[0, 0]).unwrap_err();
        assert!(e.to_string().contains("permutation"), "{e}");
        let e = Tensor::from_f32(dev, &[2, 2], &[0.0; 3]).unwrap_err();
        assert!(e.to_string().contains("[2, 2]"), "{e}");
        // Larger than one storage binding: an Err naming both sizes, never a wgpu abort.
        let limit = dev
            .caps()
            .max_storage_binding
            .min(dev.caps().max_buffer_size);
        let n = (limit / 4 + 1) as usize;
        let e = Tensor::zeros(dev, &[n], wgtrain::DType::F32).unwrap_err();
        let s = e.to_string();
        assert!(
            matches!(e, Error::TooLarge { .. })
                && s.contains(&(n as u64 * 4).to_string())
                && s.contains(&limit.to_string()),
            "{s}"
        );
        let u = Tensor::from_u32(dev, &[2], &[1, 2]).unwrap();
        assert!(elementwise::unary(UnaryOp::Relu, &u).is_err());
    });
}

#[test]
fn tensors_as_views_into_one_arena() {
    each_device("arena views", |dev| {
        let align = dev.caps().storage_offset_alignment as u64;
        let arena = std::sync::Arc::new(dev.storage_buffer("arena", 2 * align + 64).unwrap());
        let a = Tensor::view(dev, arena.clone(), 0, &[7], wgtrain::DType::F32).unwrap();
        let b = Tensor::view(dev, arena.clone(), align, &[7], wgtrain::DType::F32).unwrap();
        let xa: Vec<f32> = (0..7).map(|i| i as f32 - 3.0).collect();
        let xb: Vec<f32> = (0..7).map(|i| 10.0 + i as f32).collect();
        a.write_f32(&xa).unwrap();
        b.write_f32(&xb).unwrap();
        assert_eq!(a.to_f32().unwrap(), xa, "writing b must not touch a");
        // A kernel reading one view and writing another in the same buffer.
        let y = elementwise::unary(UnaryOp::Relu, &a).unwrap();
        assert_eq!(
            y.to_f32().unwrap(),
            xa.iter().map(|v| v.max(0.0)).collect::<Vec<_>>()
        );
        let s = elementwise::binary(BinaryOp::Add, &a, &b)
            .unwrap()
            .to_f32()
            .unwrap();
        assert_eq!(
            s,
            xa.iter().zip(&xb).map(|(p, q)| p + q).collect::<Vec<_>>()
        );
        // Misaligned or out-of-range views are errors.
        if align > 4 {
            assert!(Tensor::view(dev, arena.clone(), 4, &[1], wgtrain::DType::F32).is_err());
        }
        assert!(Tensor::view(dev, arena.clone(), 2 * align, &[1000], wgtrain::DType::F32).is_err());
    });
}
