// Operand loaders of gemm_coop_wide.wgsl when every row of A and B (and each batch stride) is a
// multiple of 4 halves: two 8-byte loads per unit of 8, each half inside or outside the problem
// as a whole.

@group(0) @binding(1) var<storage, read> a4: array<vec4<f16>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f16>>;

// Stored A is (M, K), or (K, M) when TA.
fn fetch_a(batch: u32, r: u32, c: u32) -> mat2x4<f16> {
    let rows = select(p.m, p.k, TA);
    let cols = select(p.k, p.m, TA);
    var v = mat2x4<f16>();
    if (r >= rows || c >= cols) {
        return v;
    }
    let i = (batch * p.a_stride + r * cols + c) / 4u;
    v[0] = a4[i];
    if (c + 4u < cols) {
        v[1] = a4[i + 1u];
    }
    return v;
}

// Stored B is (K, N), or (N, K) when TB.
fn fetch_b(batch: u32, r: u32, c: u32) -> mat2x4<f16> {
    let rows = select(p.k, p.n, TB);
    let cols = select(p.n, p.k, TB);
    var v = mat2x4<f16>();
    if (r >= rows || c >= cols) {
        return v;
    }
    let i = (batch * p.b_stride + r * cols + c) / 4u;
    v[0] = b4[i];
    if (c + 4u < cols) {
        v[1] = b4[i + 1u];
    }
    return v;
}
