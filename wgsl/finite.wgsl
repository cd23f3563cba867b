// NaN and infinity tests on the bits, so no compiler's float assumptions can fold them away, and
// the NaN-propagating max PyTorch's max pooling, maximum and max reduction follow.

fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn is_nonfinite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

// Whether v replaces best in a running maximum: larger, or the first NaN (which then stays).
fn beats_max(v: f32, best: f32) -> bool {
    return (v > best || is_nan(v)) && !is_nan(best);
}

fn beats_min(v: f32, best: f32) -> bool {
    return (v < best || is_nan(v)) && !is_nan(best);
}

// torch.maximum / torch.minimum: NaN if either is.
fn max_nan(a: f32, b: f32) -> f32 {
    return select(select(max(a, b), b, is_nan(b)), a, is_nan(a));
}

fn min_nan(a: f32, b: f32) -> f32 {
    return select(select(min(a, b), b, is_nan(b)), a, is_nan(a));
}
