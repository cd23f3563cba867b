// Operand loaders of gemm_coop_wide.wgsl when every row of A and B (and each batch stride) is a
// multiple of 8 halves: one 16-byte load per unit (the operands bound as 16-byte elements), the
// unit then inside or outside the problem as a whole.

@group(0) @binding(1) var<storage, read> a8: array<mat2x4<f16>>;
@group(0) @binding(2) var<storage, read> b8: array<mat2x4<f16>>;

// Stored A is (M, K), or (K, M) when TA.
fn fetch_a(batch: u32, r: u32, c: u32) -> mat2x4<f16> {
    let rows = select(p.m, p.k, TA);
    let cols = select(p.k, p.m, TA);
    if (r >= rows || c >= cols) {
        return mat2x4<f16>();
    }
    return a8[(batch * p.a_stride + r * cols + c) / 8u];
}

// Stored B is (K, N), or (N, K) when TB.
fn fetch_b(batch: u32, r: u32, c: u32) -> mat2x4<f16> {
    let rows = select(p.k, p.n, TB);
    let cols = select(p.n, p.k, TB);
    if (r >= rows || c >= cols) {
        return mat2x4<f16>();
    }
    return b8[(batch * p.b_stride + r * cols + c) / 8u];
}
