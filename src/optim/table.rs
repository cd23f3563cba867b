//! The chunk table an optimizer's kernels read (`wgsl/optim/common.wgsl`): each group's settings,
//! then the arena cut into chunks of at most `CHUNK` elements, each inside one range of one group.

use std::ops::Range;

use super::{CHUNK, MAX_GROUPS, ParamGroup};
use crate::error::{Error, Result};
use crate::launch::f;

/// The chunk table: group settings, then (start, end, group) per chunk in arena order.
pub(super) struct Table {
    pub words: Vec<u32>,
    pub chunks: Vec<Range<usize>>,
    pub chunk_base: usize,
}

/// Cuts the groups' ranges into chunks of at most `CHUNK` elements, also cut at every `cuts`
/// boundary (so that, just-in-time, each parameter's chunks can run on their own).
pub(super) fn build_table(groups: &[ParamGroup], n: usize, cuts: &[usize]) -> Result<Table> {
    if groups.len() > MAX_GROUPS {
        return Err(Error::Invalid(format!(
            "optimizer: {} parameter groups, at most {MAX_GROUPS}",
            groups.len()
        )));
    }
    let mut spans = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        for v in [g.lr_scale, g.weight_decay, g.l1, g.l2] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::Invalid(format!(
                    "optimizer: group {gi}: lr_scale, weight_decay, l1 and l2 must be finite and >= 0 ({g:?})"
                )));
            }
        }
        for r in &g.ranges {
            if r.start > r.end || r.end > n {
                return Err(Error::Invalid(format!(
                    "optimizer: group {gi}: range {r:?} is not inside the arena of {n} elements"
                )));
            }
            if r.start < r.end {
                spans.push((r.start, r.end, gi));
            }
        }
    }
    spans.sort();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(Error::Invalid(format!(
                "optimizer: range {:?} (group {}) overlaps {:?} (group {})",
                w[0].0..w[0].1,
                w[0].2,
                w[1].0..w[1].1,
                w[1].2
            )));
        }
    }
    let mut words = Vec::new();
    for g in groups {
        words.extend([f(g.weight_decay as f32), f(g.l1 as f32), f(g.l2 as f32), 0]);
    }
    let chunk_base = words.len();
    let mut cuts = cuts.to_vec();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    for (s, e, g) in spans {
        let mut a = s;
        while a < e {
            let next_cut = cuts.get(cuts.partition_point(|&c| c <= a));
            let b = (a + CHUNK)
                .min(e)
                .min(next_cut.copied().unwrap_or(usize::MAX));
            words.extend([a as u32, b as u32, g as u32, 0]);
            chunks.push(a..b);
            a = b;
        }
    }
    if n > u32::MAX as usize {
        return Err(Error::Invalid(format!(
            "optimizer: arena of {n} elements exceeds u32 indexing"
        )));
    }
    Ok(Table {
        words,
        chunks,
        chunk_base,
    })
}
