// Operand loaders of gemm_coop.wgsl when every row of A and B (and each batch stride) is a
// multiple of 4 halves: one 8-byte load per unit, which is then inside or outside the problem as
// a whole (coop.rs picks gemm_coop_any.wgsl otherwise).

@group(0) @binding(1) var<storage, read> a4: array<vec4<f16>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f16>>;

// Stored A is (M, K), or (K, M) when TA.
fn fetch_a(batch: u32, r: u32, c: u32) -> vec4<f16> {
    let rows = select(p.m, p.k, TA);
    let cols = select(p.k, p.m, TA);
    if (r >= rows || c >= cols) {
        return vec4<f16>();
    }
    return a4[(batch * p.a_stride + r * cols + c) / 4u];
}

// Stored B is (K, N), or (N, K) when TB.
fn fetch_b(batch: u32, r: u32, c: u32) -> vec4<f16> {
    let rows = select(p.k, p.n, TB);
    let cols = select(p.n, p.k, TB);
    if (r >= rows || c >= cols) {
        return vec4<f16>();
    }
    return b4[(batch * p.b_stride + r * cols + c) / 4u];
}
