//! Cast launches. WGSL: `wgsl/cast.wgsl`.

use crate::error::{Error, Result};
use crate::launch::{Launch, PRELUDE, Shader, grid_1d};
use crate::tensor::{DType, Tensor};

pub(crate) static SHADER: Shader = Shader {
    name: "cast",
    parts: &[PRELUDE, include_str!("../../../wgsl/cast.wgsl")],
};

/// A cast to the dtype the value has: a copy in either storage variant.
pub(crate) static COPY: Shader = Shader {
    name: "cast_copy",
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
