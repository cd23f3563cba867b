//! Sample cases of the cast: f32 → f16 → f32 round trips at awkward lengths,.
//! (The conformance test compares with the exact reference at f16's tolerance.)

use crate::ops::sample::Sample;
use crate::tensor::DType;

pub fn samples() -> Vec<Sample> {
    vec![Sample::new("cast/round_trip", |g, s| {
        let x = g.input("x", &[7, 33 * s])?;
        let h = g.cast("h", x, DType::F16)?;
        g.cast("y", h, DType::F32)
    })]
}
