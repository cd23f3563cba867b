//! Cast launches. WGSL: `wgsl/cast.wgsl`.

use crate::error::{Error, Result};
use crate::launch::{Launch, PRELUDE, Shader, grid_1d};
use crate::tensor::{DType, Tensor};

pub(crate) static SHADER: Shader = Shader {
    name: "cast",
    user_code: false,
    parts: &[PRELUDE, include_str!("../../../wgsl/cast.wgsl")],
};

/// A cast to the dtype the value has: a copy in either storage variant.
pub(crate) static COPY: Shader = Shader {
    name: "cast_copy",
    user_code: false,
    parts: &[PRELUDE, include_str!("../../../wgsl/cast_copy.wgsl")],
};

/// `y = x` in `y`'s dtype (f32 ↔ f16, or a copy when they agree), divided by `scale[0]` when
/// given.
pub fn cast_launch(x: &Tensor, y: &Tensor, scale: Option<&Tensor>) -> Result<Launch> {
    let (shader, entry) = match (x.dtype(), y.dtype()) {
        (DType::F32, DType::F16) => (&SHADER, "to_f16"),
        (DType::F16, DType::F32) => (&SHADER, "to_f32"),
        (a, b) if a == b && a != DType::U32 => (&COPY, "copy"),
        (a, b) => {
            return Err(Error::Invalid(format!(
                "cast: {a:?} to {b:?} (casts go between f32 and f16)"
            )));
        }
    };
    if x.numel() != y.numel() {
        return Err(Error::Shape {
            op: "cast".into(),
            msg: format!("x {:?} vs y {:?}", x.shape(), y.shape()),
        });
    }
    if let Some(s) = scale {
        s.expect_dtype("cast scale", DType::F32)?;
        if s.numel() != 1 {
            return Err(Error::Shape {
                op: "cast".into(),
                msg: format!("the scale is one value, not {:?}", s.shape()),
            });
        }
    }
    // Unscaled casts bind x again in the scale's slot (never read).
    let s = scale.map_or_else(|| x.placeholder(), |s| s.buffer());
    x.device().launch(
        shader,
        entry,
        &[],
        &[x.numel() as u32, scale.is_some() as u32],
        &[x.buffer(), y.buffer(), s],
        grid_1d(x.numel(), 256),
    )
}

/// Elements per chunk of `ranges_to_f32` (one workgroup of 256 loops over at most this many):
/// small, so a small arena still spreads over many workgroups.
pub(crate) const RANGE_CHUNK: usize = 256 * 4;

/// The chunk table of `ranges_to_f32`: each range split into chunks of at most `RANGE_CHUNK`
/// elements, as `[start, len, in place]` triples (in place: the f32 elements are divided by the
/// scale where they are, not cast from the f16 arena). `Err` past u32 (the kernel's indices).
pub(crate) fn range_table(ranges: &[(std::ops::Range<usize>, bool)]) -> Result<Vec<u32>> {
    let mut words = Vec::new();
    for (r, in_place) in ranges {
        let mut at = r.start;
        while at < r.end {
            let len = (r.end - at).min(RANGE_CHUNK);
            // The kernel indexes up to start + len - 1 in u32.
            let last = u32::try_from(at + len - 1);
            let (Ok(s), Ok(l), Ok(_)) = (u32::try_from(at), u32::try_from(len), last) else {
                return Err(Error::Invalid(format!(
                    "cast: the range {r:?} lies past u32 elements"
                )));
            };
            words.extend([s, l, *in_place as u32]);
            at += len;
        }
    }
    Ok(words)
}

/// `y[r] = f32(x[r]) / scale[0]` (or `y[r] /= scale[0]` for a chunk in place) for every chunk
/// `r` of `table` (`range_table`): the f16 gradient arena into the f32 one in one dispatch,
/// leaving the elements outside the ranges.
pub(crate) fn ranges_to_f32_launch(
    table: &Tensor,
    x: &Tensor,
    y: &Tensor,
    scale: Option<&Tensor>,
) -> Result<Launch> {
    if x.dtype() != DType::F16
        || y.dtype() != DType::F32
        || x.numel() != y.numel()
        || table.dtype() != DType::U32
        || !table.numel().is_multiple_of(3)
    {
        return Err(Error::Shape {
            op: "cast ranges".into(),
            msg: format!(
                "x {:?} {:?} (f16), y {:?} {:?} (f32), table {:?} {:?} (u32 triples)",
                x.shape(),
                x.dtype(),
                y.shape(),
                y.dtype(),
                table.shape(),
                table.dtype()
            ),
        });
    }
    let chunks = table.numel() / 3;
    let s = scale.map_or_else(|| x.placeholder(), |s| s.buffer());
    x.device().launch(
        &SHADER,
        "ranges_to_f32",
        &[],
        &[chunks as u32, scale.is_some() as u32],
        &[x.buffer(), y.buffer(), s, table.buffer()],
        grid_1d(chunks, 1),
    )
}

#[cfg(test)]
mod tests {
    use super::{RANGE_CHUNK, range_table};

    #[test]
    fn range_tables_chunk_each_range_and_refuse_indices_past_u32() {
        let c = RANGE_CHUNK as u32;
        let t = range_table(&[
            (0..3, false),
            (64..64, true),
            (128..128 + RANGE_CHUNK + 5, true),
        ])
        .unwrap();
        assert_eq!(t, vec![0, 3, 0, 128, c, 1, 128 + c, 5, 1]);
        assert!(range_table(&[]).unwrap().is_empty());
        let far = u32::MAX as usize;
        assert!(range_table(&[(far - 2..far + 2, false)]).is_err());
    }
}
