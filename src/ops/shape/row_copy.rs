//! Concat's copy into its slice of the output along an axis, and split's copy out of one, as a
//! row copy: `rows` rows (the product of the dims before the axis) of `len` contiguous elements
//! (the slice's extent on the axis times the dims after it) between two row strides. The kernel
//! does no index arithmetic per element, where the general strided copy (`strided_copy` in
//! `wgsl/shape/shape.wgsl`) divides per dim; that one still takes rows too short to fill a
//! workgroup. WGSL: `wgsl/shape/row_copy.wgsl`.

use crate::error::{Error, Result, Unit};
use crate::launch::{PRELUDE, Shader, grid_1d};
use crate::ops::axis::fmt_shape;
use crate::ops::checks::{mul, numel};

pub(crate) static SHADER: Shader = Shader {
    name: "row_copy",
    user_code: false,
    parts: &[
        PRELUDE,
        crate::neuron::WGSL,
        include_str!("../../../wgsl/shape/row_copy.wgsl"),
    ],
};

/// Elements of a row one workgroup copies (`CHUNK` in the WGSL: 256 invocations × 4).
pub(crate) const CHUNK: usize = 1024;

/// Rows shorter than a workgroup leave most of its invocations idle on every row: the strided
/// copy, one invocation per element, takes those.
pub(crate) const MIN_LEN: usize = 256;

/// A copy of `rows` rows of `len` contiguous elements, row `r` from `src_off + r · src_stride`
/// to `dst_off + r · dst_stride` (element offsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RowCopy {
    pub rows: usize,
    pub len: usize,
    pub src_stride: usize,
    pub dst_stride: usize,
    pub src_off: usize,
    pub dst_off: usize,
}

impl RowCopy {
    /// The copy between `small` and its window at `offset` along `axis` of `big` (every other dim
    /// equal, the window inside `big`: the caller has checked both): small into big where
    /// `into` (concat), else big into small (split). Rows that are contiguous on both sides
    /// (concat on the first axis with nothing before it) merge into one.
    pub fn window(
        op: &str,
        small: &[usize],
        big: &[usize],
        axis: usize,
        offset: usize,
        into: bool,
    ) -> Result<RowCopy> {
        let rows = numel(op, &big[..axis])?;
        let inner = numel(op, &big[axis + 1..])?;
        let what = |w: &str| format!("{w} of {} in {}", fmt_shape(small), fmt_shape(big));
        let len = mul(op, &what("the row length"), small[axis], inner)?;
        let big_stride = mul(op, &what("the row stride"), big[axis], inner)?;
        let at = mul(op, &what("the offset"), offset, inner)?;
        let (src_stride, dst_stride, src_off, dst_off) = if into {
            (len, big_stride, 0, at)
        } else {
            (big_stride, len, at, 0)
        };
        let mut c = RowCopy {
            rows,
            len,
            src_stride,
            dst_stride,
            src_off,
            dst_off,
        };
        if src_stride == len && dst_stride == len && rows > 1 {
            c.len = mul(op, &what("the copy"), rows, len)?;
            c.rows = 1;
        }
        Ok(c)
    }

    /// The elements the copy spans on each side, `(src, dst)`: where the last row ends.
    fn ends(&self, op: &str) -> Result<(usize, usize)> {
        let end = |off: usize, stride: usize| {
            let last = self.rows.saturating_sub(1);
            let span = last
                .checked_mul(stride)
                .and_then(|s| s.checked_add(off)?.checked_add(self.len));
            span.ok_or_else(|| too_large(op, usize::MAX))
        };
        Ok((
            end(self.src_off, self.src_stride)?,
            end(self.dst_off, self.dst_stride)?,
        ))
    }

    /// Checks that every offset the copy takes fits the kernels' u32 indices: an `Err` naming
    /// `op` where it does not.
    pub fn check_u32(&self, op: &str) -> Result<()> {
        let (s, d) = self.ends(op)?;
        if s.max(d) > u32::MAX as usize {
            return Err(too_large(op, s.max(d)));
        }
        Ok(())
    }

    /// The row kernel's parameter words and grid, or `None` where the rows are too short for it
    /// (or so long that a chunk's column would pass u32: the strided copy takes those). The
    /// caller has run `check_u32`.
    pub fn plan(&self) -> Option<([u32; 8], [u32; 3])> {
        if self.len < MIN_LEN {
            return None;
        }
        self.plan_any()
    }

    /// `plan` for rows of any length (short ones leave invocations idle): for the kernels that
    /// have no strided twin. `None` only where a chunk's column would pass u32.
    pub fn plan_any(&self) -> Option<([u32; 8], [u32; 3])> {
        if self.len > u32::MAX as usize - 2 * CHUNK {
            return None;
        }
        let chunks = self.len.div_ceil(CHUNK);
        // rows · chunks ≤ rows · len, which check_u32 bounded.
        let groups = u32::try_from(self.rows.checked_mul(chunks)?).ok()?;
        let w = [
            self.rows,
            self.len,
            self.src_stride,
            self.dst_stride,
            self.src_off,
            self.dst_off,
            chunks,
        ]
        .map(|v| u32::try_from(v).ok());
        let mut words = [0u32; 8];
        for (slot, v) in words.iter_mut().zip(w) {
            *slot = v?;
        }
        words[7] = groups;
        Some((words, grid_1d(groups as usize, 1)))
    }
}

fn too_large(op: &str, amount: usize) -> Error {
    Error::TooLarge {
        what: format!("{op}: the copy's element offsets (kernels index with u32)"),
        amount: amount as u64,
        limit: u32::MAX as u64,
        unit: Unit::Elements,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(small: &[usize], big: &[usize], axis: usize, offset: usize, into: bool) -> RowCopy {
        RowCopy::window("concat", small, big, axis, offset, into).unwrap()
    }

    #[test]
    fn inception_concat_is_32_rows_per_input() {
        // Inception v3's mixed_5b: (32, 96, 35, 35) into channels 128..224 of (32, 256, 35, 35).
        let c = copy(&[32, 96, 35, 35], &[32, 256, 35, 35], 1, 128, true);
        let plane = 35 * 35;
        let want = RowCopy {
            rows: 32,
            len: 96 * plane,
            src_stride: 96 * plane,
            dst_stride: 256 * plane,
            src_off: 0,
            dst_off: 128 * plane,
        };
        assert_eq!(c, want);
        let (w, grid) = c.plan().unwrap();
        let chunks = (96 * plane).div_ceil(CHUNK) as u32;
        assert_eq!(w[6], chunks);
        assert_eq!(w[7], 32 * chunks);
        assert_eq!(grid, [32 * chunks, 1, 1]);
        // Split (concat's backward) reads the same window: strides and offsets swap sides.
        let s = copy(&[32, 96, 35, 35], &[32, 256, 35, 35], 1, 128, false);
        assert_eq!(
            (s.src_stride, s.dst_stride, s.src_off, s.dst_off),
            (256 * plane, 96 * plane, 128 * plane, 0)
        );
    }

    #[test]
    fn contiguous_rows_merge_and_short_rows_fall_back() {
        // Concat on the first axis: one row of everything.
        let c = copy(&[3, 5, 7], &[8, 5, 7], 0, 2, true);
        assert_eq!((c.rows, c.len, c.dst_off), (1, 105, 70));
        assert!(c.plan().is_none(), "105 elements are a strided copy");
        let c = copy(&[1, 300], &[1, 301], 1, 1, false);
        assert_eq!((c.rows, c.len, c.src_off), (1, 300, 1));
        assert!(c.plan().is_some());
        // Last axis with a row of 255: below a workgroup.
        assert!(copy(&[4, 255], &[4, 300], 1, 45, false).plan().is_none());
        assert!(copy(&[4, 256], &[4, 300], 1, 44, false).plan().is_some());
    }

    #[test]
    fn grids_past_one_dimension_fold() {
        // 65,537 rows of one chunk each: more workgroups than one grid dimension holds.
        let c = copy(&[65_537, 1, 256], &[65_537, 2, 256], 1, 1, true);
        let (w, grid) = c.plan().unwrap();
        assert_eq!((w[6], w[7]), (1, 65_537));
        assert_eq!(grid, [32_769, 2, 1]);
        assert!(grid[0] as u64 * grid[1] as u64 >= 65_537);
        // Rows of many chunks multiply: 40,000 rows of 3 chunks.
        let c = copy(&[40_000, 1, 2049], &[40_000, 3, 2049], 1, 2, true);
        let (w, grid) = c.plan().unwrap();
        assert_eq!((w[6], w[7]), (3, 120_000));
        assert!(grid.iter().all(|&g| g <= 65_535));
        assert!(grid[0] as u64 * grid[1] as u64 >= 120_000);
    }

    #[test]
    fn offsets_past_u32_are_errors() {
        // 2^20 rows of 2^12 into rows of 2^13: the destination spans 2^33 elements.
        let c = copy(&[1 << 20, 1 << 12], &[1 << 20, 1 << 13], 1, 4096, true);
        let e = c.check_u32("concat").unwrap_err().to_string();
        assert!(e.contains("concat") && e.contains("4294967295"), "{e}");
        // A row length whose product overflows a usize.
        let e = RowCopy::window("split", &[2, usize::MAX / 2], &[2, usize::MAX], 0, 0, false);
        assert!(e.unwrap_err().to_string().contains("split"));
        // Just inside u32: checks pass, and the kernel takes the rows.
        let c = copy(&[1, 1 << 20], &[4095, 1 << 20], 0, 4094, true);
        c.check_u32("concat").unwrap();
        assert!(c.plan().is_some());
    }
}
