//! Permute (generalised transpose) and its gradient, the inverse permutation.
//! WGSL: `wgsl/shape/permute.wgsl`. CPU reference: `reference::permute`.

use crate::error::{Error, Result};
use crate::launch::{Launch, PRELUDE, Shader, grid_1d};
use crate::ops::elementwise::gpu::MAX_RANK;
use crate::tensor::{DType, Tensor};

pub(crate) static SHADER: Shader = Shader {
    name: "transpose",
    user_code: false,
    parts: &[PRELUDE, include_str!("../../../wgsl/shape/permute.wgsl")],
};

/// Checks that `perm` is a permutation of `0..rank`.
pub fn check_perm(op: &str, shape: &[usize], perm: &[usize]) -> Result<()> {
    let mut seen = vec![false; shape.len()];
    if perm.len() != shape.len()
        || perm
            .iter()
            .any(|&p| p >= shape.len() || std::mem::replace(&mut seen[p], true))
    {
        return Err(Error::Attr {
            op: op.into(),
            msg: format!("{perm:?} is not a permutation of the axes of {shape:?}"),
        });
    }
    if shape.len() > MAX_RANK {
        return Err(Error::Shape {
            op: op.into(),
            msg: format!("rank {} exceeds {MAX_RANK}", shape.len()),
        });
    }
    Ok(())
}

/// The shape of `permute(x, perm)`.
pub fn permuted_shape(shape: &[usize], perm: &[usize]) -> Vec<usize> {
    perm.iter().map(|&p| shape[p]).collect()
}

/// Prepares `y` with `y.shape[i] = x.shape[perm[i]]`.
pub fn permute_launch(x: &Tensor, perm: &[usize], y: &Tensor) -> Result<Launch> {
    check_perm("permute", &x.shape, perm)?;
    x.expect_dtype("permute", DType::F32)?;
    let out = permuted_shape(&x.shape, perm);
    if y.shape != out {
        return Err(Error::Shape {
            op: "permute".into(),
            msg: format!("output {:?}, expected {out:?}", y.shape),
        });
    }
    let st = crate::tensor::strides(&x.shape);
    let n = y.numel();
    let mut w = vec![n as u32, out.len() as u32, 0, 0];
    let mut shape = [1u32; MAX_RANK];
    let mut src = [0u32; MAX_RANK];
    for i in 0..out.len() {
        shape[i] = out[i] as u32;
        src[i] = st[perm[i]] as u32;
    }
    w.extend_from_slice(&shape);
    w.extend_from_slice(&src);
    x.device.launch(
        &SHADER,
        "permute",
        &[],
        &w,
        &[x.buffer(), y.buffer()],
        grid_1d(n, 256),
    )
}

/// `y` with `y.shape[i] = x.shape[perm[i]]`.
pub fn permute(x: &Tensor, perm: &[usize]) -> Result<Tensor> {
    crate::ops::eager::run_first(&x.device, super::ShapeOp::Permute(perm.to_vec()), &[x])
}

/// The inverse permutation: the gradient of `permute(x, perm)` is `permute(dy, inverse(perm))`.
pub fn inverse(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}

/// 2-D transpose of the last two axes.
pub fn transpose(x: &Tensor) -> Result<Tensor> {
    let r = x.shape.len();
    if r < 2 {
        return Err(Error::Shape {
            op: "transpose".into(),
            msg: format!("needs at least 2 dims, got {:?}", x.shape),
        });
    }
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(r - 1, r - 2);
    permute(x, &perm)
}
