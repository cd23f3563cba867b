// matmul.wgsl's operands read four contiguous elements at a time (one 16-byte load in f32): the
// host takes this variant only where every such four lies whole inside the problem and aligned
// (`matmul::gpu::vec4_loads`: the contiguous extent, batch strides, split chunk and binding
// offsets multiples of four elements), so no load needs a bounds check per element; and none at
// all when INTERIOR (gemm_core.wgsl: every block inside the problem, no split).

@group(0) @binding(1) var<storage, read> mat_a: array<vec4<act>>;
@group(0) @binding(2) var<storage, read> mat_b: array<vec4<act>>;

// An operand whose K is contiguous is staged four consecutive k of one m (n) at a time
// (gemm_core.wgsl's k-units); the other way round, four consecutive m (n) at one k.
fn a_k4() -> bool { return !TRANS_A; }
fn b_k4() -> bool { return TRANS_B; }

// a_rows' line m: A(m, k..k+3) when K is contiguous, else A(m..m+3, k); zeros outside.
fn load_a4(batch: u32, r: Lines, k: u32) -> vec4<f32> {
    if (!INTERIOR && (r.valid == 0u || k >= r.kend)) { return vec4<f32>(0.0); }
    return vec4<f32>(mat_a[(r.idx + k * r.kstep) / 4u]);
}

// b_cols' line n: B(k..k+3, n) when K is contiguous, else B(k, n..n+3); zeros outside.
fn load_b4(batch: u32, k: u32, c: Lines) -> vec4<f32> {
    if (!INTERIOR && (c.valid == 0u || k >= c.kend)) { return vec4<f32>(0.0); }
    return vec4<f32>(mat_b[(c.idx + k * c.kstep) / 4u]);
}
