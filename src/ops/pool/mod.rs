//! The pool family.
//!
//! Pooling descriptors: windowed `Pool2d` (max / average) and `GlobalAvgPool`, on `(N, C, H, W)`.

pub mod gpu;
mod op;
pub mod reference;
pub(crate) mod samples;

pub use op::PoolOp;

use super::conv::{ConvGeometry, Ctx, Padding, Padding1d, first_padding_only_window};
use crate::error::{Result, attr_err, shape_err};

/// The most taps (kh·kw) of one window: the kernels and the reference visit every tap of every
/// window (and the kernel's average divides by kh·kw in u32), so a kernel near usize::MAX over
/// a padded plane would run practically forever.
pub const MAX_POOL_TAPS: usize = 1 << 20;

/// What a pooling window computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// Largest input in the window; padding never wins (it is skipped, not zero).
    Max,
    /// Mean of the window. `count_include_pad: true` divides by `kh·kw` always (PyTorch's
    /// default; padding counts as zeros); `false` divides by the number of taps inside the input
    /// (TensorFlow's and MPS's behaviour at edges).
    Avg {
        /// Whether padded taps count in the divisor.
        count_include_pad: bool,
    },
}

/// 2-D pooling with any kernel, stride (need not equal the kernel), dilation and padding.
/// Output size follows the convolution rule (floor), so [`Padding::Same`] gives `ceil(in/stride)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2d {
    /// Max or average.
    pub kind: PoolKind,
    /// `(kh, kw)`.
    pub kernel: (usize, usize),
    /// `(sh, sw)`.
    pub stride: (usize, usize),
    /// `(dh, dw)`; `(1, 1)` for ordinary pooling.
    pub dilation: (usize, usize),
    /// Padding of H and W.
    pub padding: Padding,
}

/// 1-D pooling of (N, C, L) along L (`Graph::pool1d`): PyTorch's `MaxPool1d` / `AvgPool1d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool1d {
    /// Max or average.
    pub kind: PoolKind,
    /// Window length.
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
    /// Spacing of the taps; 1 for ordinary pooling.
    pub dilation: usize,
    /// Padding of L.
    pub padding: Padding1d,
}

impl Pool1d {
    /// Max pooling, no padding.
    pub fn max(kernel: usize, stride: usize) -> Self {
        Pool1d {
            kind: PoolKind::Max,
            kernel,
            stride,
            dilation: 1,
            padding: Padding1d::Valid,
        }
    }

    /// Average pooling, no padding (padding, if added, counts in the divisor as PyTorch's).
    pub fn avg(kernel: usize, stride: usize) -> Self {
        Pool1d {
            kind: PoolKind::Avg {
                count_include_pad: true,
            },
            ..Self::max(kernel, stride)
        }
    }

    /// With padding `p`.
    pub fn padding(mut self, p: Padding1d) -> Self {
        self.padding = p;
        self
    }

    /// With dilation `d`.
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = d;
        self
    }

    /// The 2-D pooling of the (N, C, 1, L) view.
    pub fn to_2d(&self) -> Pool2d {
        Pool2d {
            kind: self.kind,
            kernel: (1, self.kernel),
            stride: (1, self.stride),
            dilation: (1, self.dilation),
            padding: self.padding.to_2d(),
        }
    }
}

impl Pool2d {
    /// Max pooling, no padding, no dilation.
    pub fn max(kernel: (usize, usize), stride: (usize, usize)) -> Self {
        Pool2d {
            kind: PoolKind::Max,
            kernel,
            stride,
            dilation: (1, 1),
            padding: Padding::Valid,
        }
    }

    /// Average pooling, no padding, no dilation.
    pub fn avg(kernel: (usize, usize), stride: (usize, usize), count_include_pad: bool) -> Self {
        Pool2d {
            kind: PoolKind::Avg { count_include_pad },
            kernel,
            stride,
            dilation: (1, 1),
            padding: Padding::Valid,
        }
    }

    /// `"max_pool2d"` or `"avg_pool2d"`, as errors name the op.
    pub fn name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "max_pool2d",
            PoolKind::Avg { .. } => "avg_pool2d",
        }
    }

    fn ctx(&self) -> Ctx {
        Ctx::two_d(self.name())
    }

    /// Checks the attributes alone.
    pub fn validate(&self) -> Result<()> {
        self.ctx()
            .check_window(self.kernel, self.stride, self.dilation)
    }

    /// `(top, bottom, left, right)` for an input of `h` x `w`.
    pub fn resolved_padding(&self, h: usize, w: usize) -> (usize, usize, usize, usize) {
        self.padding
            .resolve((h, w), self.kernel, self.stride, self.dilation)
    }

    /// The windows as a depthwise [`ConvGeometry`] (`groups = in_channels = out_channels = C`):
    /// output `(n, c, oy, ox)` pools the taps `ConvGeometry::tap_y(oy, ky)`,
    /// `ConvGeometry::tap_x(ox, kx)` of input channel `c`.
    ///
    /// For max pooling and for average pooling without `count_include_pad`, every window must
    /// reach at least one input element (heavy padding or dilation can make one all-padding).
    pub fn geometry(&self, input: &[usize]) -> Result<ConvGeometry> {
        let ctx = self.ctx();
        self.validate()?;
        let taps = self.kernel.0.checked_mul(self.kernel.1);
        if taps.is_none_or(|t| t > MAX_POOL_TAPS) {
            return attr_err(
                ctx.op,
                format!(
                    "kernel {:?} has more than {MAX_POOL_TAPS} taps (use global_avg_pool to pool \
                     a whole plane)",
                    self.kernel
                ),
            );
        }
        let [n, c, h, w] = ctx.input_4d(input)?;
        let pad = self.resolved_padding(h, w);
        let (k, s, d) = (self.kernel, self.stride, self.dilation);
        let oh = ctx.out_len(false, h, (pad.0, pad.1), k.0, s.0, d.0)?;
        let ow = ctx.out_len(true, w, (pad.2, pad.3), k.1, s.1, d.1)?;
        let g = ConvGeometry {
            batch: n,
            in_channels: c,
            out_channels: c,
            groups: c,
            in_size: (h, w),
            out_size: (oh, ow),
            kernel: k,
            stride: s,
            dilation: d,
            padding: pad,
        };
        if self.kind
            != (PoolKind::Avg {
                count_include_pad: true,
            })
        {
            // The check lists a dilated window's taps; no real pool has this many.
            const MAX_DILATED_TAPS: usize = 1 << 16;
            if (d.0 > 1 && k.0 > MAX_DILATED_TAPS) || (d.1 > 1 && k.1 > MAX_DILATED_TAPS) {
                return shape_err(
                    ctx.op,
                    format!(
                        "a dilated kernel {k:?} has more than {MAX_DILATED_TAPS} taps per axis"
                    ),
                );
            }
            let empty_y = first_padding_only_window(oh, k.0, s.0, d.0, pad.0, h);
            let empty_x = first_padding_only_window(ow, k.1, s.1, d.1, pad.2, w);
            if let Some((axis, o)) = empty_y
                .map(|o| ("row", o))
                .or(empty_x.map(|o| ("column", o)))
            {
                return shape_err(
                    ctx.op,
                    format!(
                        "output {axis} {o} pools only padding (input {input:?}, padding {pad:?}, \
                         kernel {k:?}, stride {s:?}, dilation {d:?})"
                    ),
                );
            }
        }
        Ok(g)
    }

    /// `(N, C, OH, OW)` for `input` `(N, C, H, W)`.
    pub fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(self.geometry(input)?.out_shape())
    }
}

/// Mean over H and W: `(N, C, H, W)` → `(N, C, 1, 1)` (kept 4-D, as MPS does).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GlobalAvgPool;

impl GlobalAvgPool {
    /// `(N, C, 1, 1)`.
    pub fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let [n, c, _, _] = Ctx::two_d("global_avg_pool").input_4d(input)?;
        Ok(vec![n, c, 1, 1])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_padding_only_window_check_matches_the_scan_it_replaced() {
        use crate::ops::conv::first_padding_only_window;
        let scan = |out: usize, k: usize, s: usize, d: usize, pad: usize, len: usize| {
            (0..out).find(|&o| {
                (0..k).all(|t| (o * s + t * d).checked_sub(pad).is_none_or(|i| i >= len))
            })
        };
        let mut checked = 0;
        for len in 1..6 {
            for k in 1..4 {
                for s in 1..4 {
                    for d in 1..5 {
                        for pad in 0..6 {
                            for out in 1..8 {
                                assert_eq!(
                                    first_padding_only_window(out, k, s, d, pad, len),
                                    scan(out, k, s, d, pad, len),
                                    "out {out} k {k} s {s} d {d} pad {pad} len {len}"
                                );
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 5000);
    }

    /// A pool over an axis of 2^40 used to scan every window (it never returned).
    #[test]
    fn a_huge_axis_is_checked_at_once() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let p = super::Pool2d::max((2, 2), (2, 2));
            let small = p.geometry(&[1, 1, 1 << 40, 2]).map(|g| g.out_size);
            // A kernel as long as half the axis: past the taps limit now, and the check it
            // runs through is O(1) (undilated) regardless.
            let p = super::Pool2d::max((1 << 39, 1), (1 << 39, 1));
            let long = p.geometry(&[1, 1, 1 << 40, 2]).map(|g| g.out_size);
            let window =
                crate::ops::conv::first_padding_only_window(2, 1 << 39, 1 << 39, 1, 0, 1 << 40);
            assert_eq!(window, None);
            let mut p = super::Pool2d::max((1 << 20, 1), (1, 1));
            p.dilation = (2, 1);
            let dilated = p.geometry(&[1, 1, 1 << 40, 2]).map(|g| g.out_size);
            let _ = tx.send((small, long, dilated));
        });
        let (small, long, dilated) = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("Pool2d::geometry did not return within 10 s");
        assert_eq!(small.unwrap(), (1 << 39, 1));
        let e = long.unwrap_err().to_string();
        assert!(e.contains("max_pool2d") && e.contains("taps"), "{e}");
        let e = dilated.unwrap_err().to_string();
        assert!(e.contains("taps"), "{e}");
    }

    use super::*;

    fn msg<T: std::fmt::Debug>(r: Result<T>) -> String {
        r.expect_err("expected an error").to_string()
    }

    #[test]
    fn shapes() {
        // kernel != stride, both ways
        assert_eq!(
            Pool2d::max((3, 3), (2, 2))
                .out_shape(&[1, 2, 7, 8])
                .unwrap(),
            vec![1, 2, 3, 3]
        );
        assert_eq!(
            Pool2d::max((2, 2), (3, 3))
                .out_shape(&[1, 2, 7, 8])
                .unwrap(),
            vec![1, 2, 2, 3]
        );
        let same = Pool2d {
            padding: Padding::Same,
            ..Pool2d::avg((3, 2), (2, 2), false)
        };
        assert_eq!(same.out_shape(&[2, 1, 7, 6]).unwrap(), vec![2, 1, 4, 3]);
        assert_eq!(same.resolved_padding(7, 6), (1, 1, 0, 0));
        let dil = Pool2d {
            dilation: (2, 1),
            ..Pool2d::max((3, 1), (1, 1))
        };
        assert_eq!(dil.out_shape(&[1, 1, 5, 1]).unwrap(), vec![1, 1, 1, 1]);
        assert_eq!(
            GlobalAvgPool.out_shape(&[3, 4, 5, 6]).unwrap(),
            vec![3, 4, 1, 1]
        );
    }

    #[test]
    fn errors() {
        let p = Pool2d::max((3, 3), (2, 2));
        let m = msg(Pool2d {
            stride: (0, 2),
            ..p
        }
        .out_shape(&[1, 1, 5, 5]));
        assert!(
            m.contains("max_pool2d") && m.contains("stride (0, 2)"),
            "{m}"
        );
        let m = msg(Pool2d {
            kernel: (3, 0),
            ..p
        }
        .validate());
        assert!(
            m.contains("max_pool2d") && m.contains("kernel (3, 0)"),
            "{m}"
        );
        let m = msg(Pool2d {
            dilation: (1, 0),
            ..Pool2d::avg((2, 2), (2, 2), true)
        }
        .validate());
        assert!(
            m.contains("avg_pool2d") && m.contains("dilation (1, 0)"),
            "{m}"
        );
        let m = msg(p.out_shape(&[1, 1, 2, 5]));
        assert!(
            m.contains("max_pool2d") && m.contains("kernel height 3") && m.contains("2"),
            "{m}"
        );
        let m = msg(p.out_shape(&[1, 5, 5]));
        assert!(m.contains("max_pool2d") && m.contains("rank 3"), "{m}");
        let m = msg(p.out_shape(&[1, 0, 5, 5]));
        assert!(
            m.contains("max_pool2d") && m.contains("[1, 0, 5, 5]"),
            "{m}"
        );
        // A window made only of padding has no max (and no mean without counting the padding).
        let pad = Padding::Explicit {
            top: 2,
            bottom: 0,
            left: 0,
            right: 0,
        };
        let m = msg(Pool2d {
            padding: pad,
            ..Pool2d::max((2, 2), (1, 1))
        }
        .out_shape(&[1, 1, 3, 3]));
        assert!(
            m.contains("max_pool2d") && m.contains("row 0") && m.contains("padding"),
            "{m}"
        );
        let avg = Pool2d {
            padding: pad,
            ..Pool2d::avg((2, 2), (1, 1), false)
        };
        assert!(avg.out_shape(&[1, 1, 3, 3]).is_err());
        let avg = Pool2d {
            padding: pad,
            ..Pool2d::avg((2, 2), (1, 1), true)
        };
        assert_eq!(avg.out_shape(&[1, 1, 3, 3]).unwrap(), vec![1, 1, 4, 2]);
        // Same with a dilated kernel on a tiny input: taps at -1 and 2 both miss a width-1 input.
        let same = Pool2d {
            padding: Padding::Same,
            dilation: (1, 3),
            ..Pool2d::max((1, 2), (1, 1))
        };
        let m = msg(same.out_shape(&[1, 1, 1, 1]));
        assert!(m.contains("max_pool2d") && m.contains("column 0"), "{m}");
        let m = msg(GlobalAvgPool.out_shape(&[2, 3]));
        assert!(m.contains("global_avg_pool") && m.contains("rank 2"), "{m}");
    }
}
