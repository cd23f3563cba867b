//! The pool family.
//!
//! Pooling descriptors: windowed `Pool2d` (max / average) and `GlobalAvgPool`, on `(N, C, H, W)`.

pub mod gpu;
mod op;
pub mod reference;
pub(crate) mod samples;

pub use op::PoolOp;

use super::conv::{ConvGeometry, Ctx, Padding};
use crate::error::{Result, shape_err};

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
            let empty_y = (0..oh).find(|&o| (0..k.0).all(|t| g.tap_y(o, t).is_none()));
            let empty_x = (0..ow).find(|&o| (0..k.1).all(|t| g.tap_x(o, t).is_none()));
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
