//! Reference for the shape ops, forward and backward. Backward of a gather is the matching
//! scatter-add, so every backward here is the exact adjoint of its forward.

use crate::error::{Result, shape_err};
use crate::ops::axis::fmt_shape;
use crate::ops::shape::{
    Concat, Flatten, Pad, PadMode, Reshape, Slice, Split, Upsample, UpsampleMode,
};
use crate::reference::{Array, strides};

fn check_dy(op: &str, want: &[usize], dy: &Array) -> Result<()> {
    if dy.shape != want {
        return shape_err(
            op,
            format!(
                "dy {} does not match output {}",
                fmt_shape(&dy.shape),
                fmt_shape(want)
            ),
        );
    }
    Ok(())
}

/// Multi-index of flat index `i` in a row-major `shape`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        idx[k] = i % shape[k];
        i /= shape[k];
    }
    idx
}

fn ravel(idx: &[usize], st: &[usize]) -> usize {
    idx.iter().zip(st).map(|(a, b)| a * b).sum()
}

/// (outer, inner) around `axis`: the block of one outer index along `axis` is contiguous.
fn outer_inner(shape: &[usize], axis: usize) -> (usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis + 1..].iter().product(),
    )
}

/// Concatenate `xs` along the axis.
pub fn concat(op: &Concat, xs: &[&Array]) -> Result<Array> {
    let shapes: Vec<&[usize]> = xs.iter().map(|x| &x.shape[..]).collect();
    let (out, axis) = op.output_shape(&shapes)?;
    let (outer, inner) = outer_inner(&out, axis);
    let mut data = Vec::with_capacity(out.iter().product());
    for o in 0..outer {
        for x in xs {
            let block = x.shape[axis] * inner;
            data.extend_from_slice(&x.data[o * block..(o + 1) * block]);
        }
    }
    Ok(Array::new(&out, data))
}

/// Backward of [`concat()`]: `dy` split back into pieces shaped like the inputs.
pub fn concat_backward(op: &Concat, input_shapes: &[&[usize]], dy: &Array) -> Result<Vec<Array>> {
    let (out, axis) = op.output_shape(input_shapes)?;
    check_dy(Concat::OP, &out, dy)?;
    let sizes = input_shapes.iter().map(|s| s[axis]).collect();
    split(
        &Split {
            axis: axis as isize,
            sizes,
        },
        dy,
    )
}

/// Split `x` along the axis into pieces of `op.sizes`.
pub fn split(op: &Split, x: &Array) -> Result<Vec<Array>> {
    let (shapes, axis) = op.output_shapes(&x.shape)?;
    let (outer, inner) = outer_inner(&x.shape, axis);
    let mut parts: Vec<Vec<f64>> = vec![Vec::new(); shapes.len()];
    let mut at = 0;
    for _ in 0..outer {
        for (p, &n) in parts.iter_mut().zip(&op.sizes) {
            p.extend_from_slice(&x.data[at..at + n * inner]);
            at += n * inner;
        }
    }
    Ok(shapes
        .iter()
        .zip(parts)
        .map(|(s, d)| Array::new(s, d))
        .collect())
}

/// Backward of [`split()`]: concatenate the piece gradients.
pub fn split_backward(op: &Split, input_shape: &[usize], dys: &[&Array]) -> Result<Array> {
    let (shapes, axis) = op.output_shapes(input_shape)?;
    if dys.len() != shapes.len() {
        return shape_err(
            Split::OP,
            format!("{} gradients for {} pieces", dys.len(), shapes.len()),
        );
    }
    for (s, dy) in shapes.iter().zip(dys) {
        check_dy(Split::OP, s, dy)?;
    }
    concat(
        &Concat {
            axis: axis as isize,
        },
        dys,
    )
}

/// `x.reshape(shape)`: same data, new shape.
pub fn reshape(op: &Reshape, x: &Array) -> Result<Array> {
    Ok(Array::new(&op.output_shape(&x.shape)?, x.data.clone()))
}

/// Backward of [`reshape()`]: `dy` with the input's shape.
pub fn reshape_backward(op: &Reshape, input_shape: &[usize], dy: &Array) -> Result<Array> {
    check_dy(Reshape::OP, &op.output_shape(input_shape)?, dy)?;
    Ok(Array::new(input_shape, dy.data.clone()))
}

/// `torch.flatten(x, axis)`: same data, trailing axes from `axis` merged.
pub fn flatten(op: &Flatten, x: &Array) -> Result<Array> {
    Ok(Array::new(&op.output_shape(&x.shape)?, x.data.clone()))
}

/// Flatten's gradient: `dy` reshaped back to `input_shape`.
pub fn flatten_backward(op: &Flatten, input_shape: &[usize], dy: &Array) -> Result<Array> {
    check_dy(Flatten::OP, &op.output_shape(input_shape)?, dy)?;
    Ok(Array::new(input_shape, dy.data.clone()))
}

/// Input flat index of each output element of a slice.
fn slice_map(op: &Slice, input: &[usize]) -> Result<(Vec<usize>, Vec<usize>)> {
    let out = op.output_shape(input)?;
    let st = strides(input);
    let map = (0..out.iter().product())
        .map(|i| {
            let idx = unravel(i, &out);
            let src: Vec<usize> = idx
                .iter()
                .zip(&op.ranges)
                .map(|(&o, r)| r.start + o * r.step)
                .collect();
            ravel(&src, &st)
        })
        .collect();
    Ok((out, map))
}

/// Strided slice, as `x[start:end:step]` per axis.
pub fn slice(op: &Slice, x: &Array) -> Result<Array> {
    let (out, map) = slice_map(op, &x.shape)?;
    Ok(Array::new(&out, map.iter().map(|&j| x.data[j]).collect()))
}

/// Backward of [`slice()`]: scatter `dy` into zeros of the input's shape.
pub fn slice_backward(op: &Slice, input_shape: &[usize], dy: &Array) -> Result<Array> {
    let (out, map) = slice_map(op, input_shape)?;
    check_dy(Slice::OP, &out, dy)?;
    let mut dx = Array::zeros(input_shape);
    for (&j, &g) in map.iter().zip(&dy.data) {
        dx.data[j] += g;
    }
    Ok(dx)
}

/// Input flat index of each output element of a pad (`None` = a zero pad).
fn pad_map(op: &Pad, input: &[usize]) -> Result<(Vec<usize>, Vec<Option<usize>>)> {
    let out = op.output_shape(input)?;
    let st = strides(input);
    let map = (0..out.iter().product())
        .map(|i| {
            let mut src = Vec::with_capacity(input.len());
            for (k, o) in unravel(i, &out).into_iter().enumerate() {
                let p = o as isize - op.before[k] as isize;
                let d = input[k] as isize;
                match op.mode {
                    PadMode::Zero if p < 0 || p >= d => return None,
                    PadMode::Zero => src.push(p as usize),
                    PadMode::Edge => src.push(p.clamp(0, d - 1) as usize),
                }
            }
            Some(ravel(&src, &st))
        })
        .collect();
    Ok((out, map))
}

/// Padding, as `torch.nn.functional.pad` with the op's mode.
pub fn pad(op: &Pad, x: &Array) -> Result<Array> {
    let (out, map) = pad_map(op, &x.shape)?;
    Ok(Array::new(
        &out,
        map.iter().map(|j| j.map_or(0.0, |j| x.data[j])).collect(),
    ))
}

/// Backward of [`pad()`]: the interior of `dy`, plus (edge mode) each pad's gradient added to the
/// edge element it copied.
pub fn pad_backward(op: &Pad, input_shape: &[usize], dy: &Array) -> Result<Array> {
    let (out, map) = pad_map(op, input_shape)?;
    check_dy(Pad::OP, &out, dy)?;
    let mut dx = Array::zeros(input_shape);
    for (j, &g) in map.iter().zip(&dy.data) {
        if let Some(j) = j {
            dx.data[*j] += g;
        }
    }
    Ok(dx)
}

/// For one axis of `n_in → n_out`: per output index, the (input index, weight) taps.
fn taps(mode: UpsampleMode, n_in: usize, n_out: usize) -> Vec<Vec<(usize, f64)>> {
    (0..n_out)
        .map(|o| match mode {
            UpsampleMode::Nearest => vec![((o * n_in / n_out).min(n_in - 1), 1.0)],
            UpsampleMode::Bilinear => {
                let src = ((o as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5).max(0.0);
                let i0 = (src.floor() as usize).min(n_in - 1);
                let i1 = (i0 + 1).min(n_in - 1);
                let l1 = src - i0 as f64;
                vec![(i0, 1.0 - l1), (i1, l1)]
            }
        })
        .collect()
}

/// Shared loop of upsample forward (gather) and backward (scatter-add): calls
/// `f(input_flat, output_flat, weight)` for every tap.
fn upsample_each(
    op: &Upsample,
    input: &[usize],
    mut f: impl FnMut(usize, usize, f64),
) -> Result<Vec<usize>> {
    let out = op.output_shape(input)?;
    let r = input.len();
    let (h, w, oh, ow) = (input[r - 2], input[r - 1], out[r - 2], out[r - 1]);
    let (th, tw) = (taps(op.mode, h, oh), taps(op.mode, w, ow));
    let planes: usize = input[..r - 2].iter().product();
    for p in 0..planes {
        for (y, ty) in th.iter().enumerate() {
            for (x, tx) in tw.iter().enumerate() {
                for &(iy, wy) in ty {
                    for &(ix, wx) in tx {
                        f((p * h + iy) * w + ix, (p * oh + y) * ow + x, wy * wx);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Resize the last two axes (see [`UpsampleMode`] for the exact index maths).
pub fn upsample(op: &Upsample, x: &Array) -> Result<Array> {
    let mut y = vec![0.0; op.output_shape(&x.shape)?.iter().product()];
    let out = upsample_each(op, &x.shape, |i, o, wt| y[o] += wt * x.data[i])?;
    Ok(Array::new(&out, y))
}

/// Backward of [`upsample()`]: each output gradient scattered onto its taps with their weights.
pub fn upsample_backward(op: &Upsample, input_shape: &[usize], dy: &Array) -> Result<Array> {
    check_dy(Upsample::OP, &op.output_shape(input_shape)?, dy)?;
    let mut dx = Array::zeros(input_shape);
    upsample_each(op, input_shape, |i, o, wt| dx.data[i] += wt * dy.data[o])?;
    Ok(dx)
}

/// `y.shape[i] = x.shape[perm[i]]`.
pub fn permute(x: &Array, perm: &[usize]) -> Array {
    let st = strides(&x.shape);
    let out: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let mut y = Array::zeros(&out);
    for i in 0..y.len() {
        let (mut rem, mut src) = (i, 0);
        for d in (0..out.len()).rev() {
            src += (rem % out[d]) * st[perm[d]];
            rem /= out[d];
        }
        y.data[i] = x.data[src];
    }
    y
}

#[cfg(test)]
mod tests {
    #[test]
    fn permute_inverse_is_identity() {
        let x = Array::seeded(&[2, 3, 4], 1);
        let y = permute(&x, &[2, 0, 1]);
        assert_eq!(y.shape, vec![4, 2, 3]);
        assert_eq!(permute(&y, &[1, 2, 0]), x);
    }

    use super::*;
    use crate::ops::shape::{SliceRange, UpsampleSize};
    use crate::reference::{finite_diff, max_rel_diff};

    /// `bwd(dy)` against finite differences of `Σ dy·fwd(x)`.
    fn check(x: &Array, fwd: impl Fn(&Array) -> Array, bwd: impl Fn(&Array) -> Array) {
        let out = fwd(x).shape;
        let dy = Array::seeded(&out, 77);
        let num = finite_diff(x, 1e-6, |x| {
            fwd(x).data.iter().zip(&dy.data).map(|(a, b)| a * b).sum()
        });
        let ana = bwd(&dy);
        assert_eq!(ana.shape, x.shape);
        let d = max_rel_diff(&ana.data, &num.data);
        assert!(d < 1e-8, "{:?} → {out:?}: rel diff {d}", x.shape);
    }

    #[test]
    fn concat_and_split_grads() {
        let a = Array::seeded(&[2, 1, 3], 1);
        let b = Array::seeded(&[2, 7, 3], 2);
        let c = Array::seeded(&[2, 3, 3], 3);
        let op = Concat::CHANNELS;
        let shapes: Vec<&[usize]> = vec![&a.shape, &b.shape, &c.shape];
        let y = concat(&op, &[&a, &b, &c]).unwrap();
        assert_eq!(y.shape, vec![2, 11, 3]);
        assert_eq!(y.data[..3], a.data[..3]);
        assert_eq!(y.data[3..24], b.data[..21]);
        // d/da, d/db, d/dc each from the one concat backward.
        for k in 0..3 {
            let xs = [&a, &b, &c];
            let fwd = |x: &Array| {
                let mut v = xs;
                v[k] = x;
                concat(&op, &v).unwrap()
            };
            check(xs[k], fwd, |dy| {
                concat_backward(&op, &shapes, dy).unwrap().remove(k)
            });
        }
        // Split is the inverse, on every axis.
        let x = Array::seeded(&[3, 33, 2], 4);
        for (axis, sizes) in [(0isize, vec![1, 2]), (1, vec![7, 1, 25]), (-1, vec![1, 1])] {
            let sp = Split { axis, sizes };
            let parts = split(&sp, &x).unwrap();
            let refs: Vec<&Array> = parts.iter().collect();
            assert_eq!(concat(&Concat { axis }, &refs).unwrap(), x);
            for k in 0..parts.len() {
                let dys: Vec<Array> = parts.iter().map(|p| Array::zeros(&p.shape)).collect();
                check(
                    &x,
                    |x| split(&sp, x).unwrap().remove(k),
                    |dy| {
                        let mut d = dys.clone();
                        d[k] = dy.clone();
                        let r: Vec<&Array> = d.iter().collect();
                        split_backward(&sp, &x.shape, &r).unwrap()
                    },
                );
            }
        }
    }

    #[test]
    fn reshape_flatten_grads() {
        let x = Array::seeded(&[2, 3, 1, 7], 5);
        let r = Reshape { shape: vec![6, 7] };
        check(
            &x,
            |x| reshape(&r, x).unwrap(),
            |dy| reshape_backward(&r, &x.shape, dy).unwrap(),
        );
        for (axis, want) in [
            (1isize, vec![2, 21]),
            (0, vec![42]),
            (-1, vec![2, 3, 1, 7]),
            (2, vec![2, 3, 7]),
        ] {
            let f = Flatten { axis };
            assert_eq!(flatten(&f, &x).unwrap().shape, want);
            check(
                &x,
                |x| flatten(&f, x).unwrap(),
                |dy| flatten_backward(&f, &x.shape, dy).unwrap(),
            );
        }
    }

    #[test]
    fn slice_values_and_grads() {
        let x = Array::new(&[1, 7], (0..7).map(|v| v as f64).collect());
        let s = Slice {
            ranges: vec![
                SliceRange {
                    start: 0,
                    end: 1,
                    step: 1,
                },
                SliceRange {
                    start: 1,
                    end: 7,
                    step: 2,
                },
            ],
        };
        assert_eq!(slice(&s, &x).unwrap().data, vec![1.0, 3.0, 5.0]);
        let x = Array::seeded(&[3, 33, 5], 6);
        let s = Slice {
            ranges: vec![
                SliceRange {
                    start: 1,
                    end: 3,
                    step: 1,
                },
                SliceRange {
                    start: 2,
                    end: 33,
                    step: 4,
                },
                SliceRange {
                    start: 0,
                    end: 5,
                    step: 3,
                },
            ],
        };
        assert_eq!(s.output_shape(&x.shape).unwrap(), vec![2, 8, 2]);
        check(
            &x,
            |x| slice(&s, x).unwrap(),
            |dy| slice_backward(&s, &x.shape, dy).unwrap(),
        );
        let c = Slice::crop(&[0, 5, 1], &[3, 7, 3]);
        check(
            &x,
            |x| slice(&c, x).unwrap(),
            |dy| slice_backward(&c, &x.shape, dy).unwrap(),
        );
    }

    #[test]
    fn pad_values_and_grads() {
        let x = Array::new(&[3], vec![1.0, 2.0, 3.0]);
        let edge = Pad {
            before: vec![2],
            after: vec![1],
            mode: PadMode::Edge,
        };
        assert_eq!(
            pad(&edge, &x).unwrap().data,
            vec![1.0, 1.0, 1.0, 2.0, 3.0, 3.0]
        );
        let zero = Pad {
            mode: PadMode::Zero,
            ..edge.clone()
        };
        assert_eq!(
            pad(&zero, &x).unwrap().data,
            vec![0.0, 0.0, 1.0, 2.0, 3.0, 0.0]
        );
        let x = Array::seeded(&[2, 1, 3, 7], 7);
        for mode in [PadMode::Zero, PadMode::Edge] {
            let p = Pad {
                before: vec![0, 1, 2, 0],
                after: vec![1, 0, 3, 4],
                mode,
            };
            check(
                &x,
                |x| pad(&p, x).unwrap(),
                |dy| pad_backward(&p, &x.shape, dy).unwrap(),
            );
        }
    }

    #[test]
    fn upsample_values_match_pytorch() {
        let x = Array::new(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let near = Upsample {
            mode: UpsampleMode::Nearest,
            size: UpsampleSize::Scale(2, 2),
        };
        let y = upsample(&near, &x).unwrap();
        assert_eq!(y.data[..8], [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
        // torch.nn.functional.interpolate([[1, 2]], scale_factor=2, mode="linear") = 1, 1.25, 1.75, 2
        let bi = Upsample {
            mode: UpsampleMode::Bilinear,
            size: UpsampleSize::Scale(1, 2),
        };
        let y = upsample(&bi, &Array::new(&[1, 2], vec![1.0, 2.0])).unwrap();
        assert_eq!(y.data, vec![1.0, 1.25, 1.75, 2.0]);
        // Output size 3 from 2 (ratio 2/3): src = 0, 0.5, 1.1667 → 1, 1.5, 2.
        let bi = Upsample {
            mode: UpsampleMode::Bilinear,
            size: UpsampleSize::Size(1, 3),
        };
        let y = upsample(&bi, &Array::new(&[1, 2], vec![1.0, 2.0])).unwrap();
        assert!(max_rel_diff(&y.data, &[1.0, 1.5, 2.0]) < 1e-15);
    }

    #[test]
    fn upsample_grads() {
        let x = Array::seeded(&[2, 3, 1, 7], 8);
        for mode in [UpsampleMode::Nearest, UpsampleMode::Bilinear] {
            for size in [
                UpsampleSize::Scale(3, 2),
                UpsampleSize::Size(5, 33),
                UpsampleSize::Size(1, 4),
            ] {
                let u = Upsample { mode, size };
                check(
                    &x,
                    |x| upsample(&u, x).unwrap(),
                    |dy| upsample_backward(&u, &x.shape, dy).unwrap(),
                );
            }
        }
    }

    fn err<T: std::fmt::Debug>(r: Result<T>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (a, b) = (Array::zeros(&[2, 3, 4]), Array::zeros(&[2, 3, 5]));
        let e = err(concat(&Concat::CHANNELS, &[&a, &b]));
        assert!(
            e.contains("concat") && e.contains("(2, 3, 5)") && e.contains("(2, 3, 4)"),
            "{e}"
        );
        let e = err(concat(&Concat { axis: 3 }, &[&a, &a]));
        assert!(
            e.contains("concat") && e.contains("axis 3") && e.contains("out of range"),
            "{e}"
        );
        assert!(err(concat(&Concat::CHANNELS, &[])).contains("concat"));
        let e = err(split(
            &Split {
                axis: 1,
                sizes: vec![1, 1],
            },
            &a,
        ));
        assert!(
            e.contains("split") && e.contains("[1, 1]") && e.contains("(2, 3, 4)"),
            "{e}"
        );
        let e = err(split(
            &Split {
                axis: -4,
                sizes: vec![2],
            },
            &a,
        ));
        assert!(e.contains("split") && e.contains("axis -4"), "{e}");
        let e = err(flatten(&Flatten { axis: 3 }, &a));
        assert!(e.contains("flatten") && e.contains("axis 3"), "{e}");
        let e = err(reshape(&Reshape { shape: vec![5, 5] }, &a));
        assert!(
            e.contains("reshape") && e.contains("(2, 3, 4)") && e.contains("(5, 5)"),
            "{e}"
        );
        let e = err(slice(&Slice::crop(&[0, 1, 2], &[2, 2, 3]), &a));
        assert!(
            e.contains("slice")
                && e.contains("axis 2")
                && e.contains("2..5")
                && e.contains("dim 4"),
            "{e}"
        );
        let s0 = Slice {
            ranges: vec![
                SliceRange {
                    start: 0,
                    end: 2,
                    step: 0
                };
                3
            ],
        };
        assert!(err(slice(&s0, &a)).contains("step 0"));
        assert!(err(slice(&Slice::crop(&[0], &[1]), &a)).contains("1 ranges"));
        let p = Pad {
            before: vec![1, 1],
            after: vec![1, 1],
            mode: PadMode::Zero,
        };
        let e = err(pad(&p, &a));
        assert!(e.contains("pad") && e.contains("(2, 3, 4)"), "{e}");
        let u = Upsample {
            mode: UpsampleMode::Nearest,
            size: UpsampleSize::Scale(0, 2),
        };
        let e = err(upsample(&u, &a));
        assert!(e.contains("upsample") && e.contains("Scale(0, 2)"), "{e}");
        let u = Upsample {
            mode: UpsampleMode::Nearest,
            size: UpsampleSize::Scale(2, 2),
        };
        assert!(err(upsample(&u, &Array::zeros(&[4]))).contains("(4)"));
        let e = err(upsample_backward(&u, &a.shape, &a));
        assert!(e.contains("dy (2, 3, 4)") && e.contains("(2, 6, 8)"), "{e}");
    }
}
