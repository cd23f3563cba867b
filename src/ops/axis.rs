//! Axis arguments: signed like PyTorch (`-1` is the last axis), resolved once with a clear error.

use crate::error::{Result, attr_err};

/// Resolve a possibly negative `axis` against `rank`; `Err(Attr)` naming `op` when out of range.
pub fn resolve_axis(op: &str, axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    if axis >= r || axis < -r {
        return attr_err(
            op,
            format!(
                "axis {axis} out of range for rank {rank} (valid: {} ..= {})",
                -r,
                r - 1
            ),
        );
    }
    Ok(if axis < 0 {
        (axis + r) as usize
    } else {
        axis as usize
    })
}

/// Shape as `(a, b, c)` for messages.
pub fn fmt_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("({})", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_negative_and_rejects_out_of_range() {
        assert_eq!(resolve_axis("t", -1, 4).unwrap(), 3);
        assert_eq!(resolve_axis("t", 1, 4).unwrap(), 1);
        let e = resolve_axis("concat", 4, 4).unwrap_err().to_string();
        assert!(
            e.contains("concat") && e.contains("axis 4") && e.contains("rank 4"),
            "{e}"
        );
        assert!(resolve_axis("t", -5, 4).is_err());
        assert!(resolve_axis("t", 0, 0).is_err());
    }
}
