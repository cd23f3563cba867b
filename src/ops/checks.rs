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
