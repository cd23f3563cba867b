//! Sample cases of the cast: an f32 → f16 → f32 round trip at an awkward length. The reference is
//! exact, so the sample's tolerance is f16's rounding (relative ε_f16 / 2, with room).

use crate::ops::sample::Sample;
use crate::tensor::DType;

pub fn samples() -> Vec<Sample> {
    vec![
        Sample::new("cast/round_trip", |g, s| {
            let x = g.input("x", &[7, 33 * s])?;
            let h = g.cast("h", x, DType::F16)?;
            g.cast("y", h, DType::F32)
        })
        .tol(crate::reference::F16_EPSILON),
    ]
}
