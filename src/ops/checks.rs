//! Input checks every family's shape inference shares: how many inputs, an optional bias, two
//! shapes that must agree. Each error names the op.

use crate::error::{Error, Result};

/// Errors unless `ins.len()` is in `lo..=hi`.
pub(crate) fn arity(op: &str, ins: &[&[usize]], lo: usize, hi: usize) -> Result<()> {
    if ins.len() < lo || ins.len() > hi {
        return Err(Error::Shape {
            op: op.into(),
            msg: format!("takes {lo}..={hi} inputs, got {}", ins.len()),
        });
    }
    Ok(())
}

/// Errors unless the optional third input is a bias of `[channels]` exactly when `has` is set.
pub(crate) fn check_bias(op: &str, has: bool, ins: &[&[usize]], channels: usize) -> Result<()> {
    match (has, ins.get(2)) {
        (true, Some(b)) if *b == [channels] => Ok(()),
        (true, Some(b)) => Err(Error::Shape {
            op: op.into(),
            msg: format!("bias {b:?}, expected [{channels}]"),
        }),
        (true, None) => Err(Error::Shape {
            op: op.into(),
            msg: "the op has a bias but none was given".into(),
        }),
        (false, Some(_)) => Err(Error::Shape {
            op: op.into(),
            msg: "a bias was given to an op without one".into(),
        }),
        (false, None) => Ok(()),
    }
}

/// Errors unless `got == want`; `what` names the value.
pub(crate) fn same(op: &str, what: &str, got: &[usize], want: &[usize]) -> Result<()> {
    if got != want {
        return Err(Error::Shape {
            op: op.into(),
            msg: format!("{what} {got:?}, expected {want:?}"),
        });
    }
    Ok(())
}

/// The element count of `shape` (a shape an attribute gives, e.g. a view's target), or an `Err`
/// naming `op` when it overflows a usize.
pub(crate) fn numel(op: &str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| overflow(op, &format!("the element count of {shape:?}")))
}

/// `a + b`, or an `Err` naming `op` and `what` when it overflows.
pub(crate) fn add(op: &str, what: &str, a: usize, b: usize) -> Result<usize> {
    a.checked_add(b).ok_or_else(|| overflow(op, what))
}

/// `a · b`, or an `Err` naming `op` and `what` when it overflows.
pub(crate) fn mul(op: &str, what: &str, a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b).ok_or_else(|| overflow(op, what))
}

/// The error of a size computation that overflows a usize.
pub(crate) fn overflow(op: &str, what: &str) -> Error {
    Error::Shape {
        op: op.into(),
        msg: format!("{what} overflows a usize"),
    }
}

/// The elements of `shape` per one of `groups` (a sum's length: the elements each output of a
/// per-channel or per-group sum adds), at least 1; saturating, as it only sizes a tolerance.
pub(crate) fn per_group(shape: &[usize], groups: usize) -> usize {
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .unwrap_or(usize::MAX);
    n.checked_div(groups).unwrap_or(n).max(1)
}
