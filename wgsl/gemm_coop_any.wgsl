// Operand loaders of gemm_coop.wgsl for any shape: four guarded 2-byte loads per unit (rows of
// odd length, e.g. K = 33, are not 8-byte aligned).

@group(0) @binding(1) var<storage, read> a1: array<f16>;
@group(0) @binding(2) var<storage, read> b1: array<f16>;

// Stored A is (M, K), or (K, M) when TA.
fn fetch_a(batch: u32, r: u32, c: u32) -> vec4<f16> {
    let rows = select(p.m, p.k, TA);
    let cols = select(p.k, p.m, TA);
    var v = vec4<f16>();
    if (r >= rows) {
        return v;
    }
    let i = batch * p.a_stride + r * cols + c;
    if (c < cols) { v.x = a1[i]; }
    if (c + 1u < cols) { v.y = a1[i + 1u]; }
    if (c + 2u < cols) { v.z = a1[i + 2u]; }
    if (c + 3u < cols) { v.w = a1[i + 3u]; }
    return v;
}

// Stored B is (K, N), or (N, K) when TB.
fn fetch_b(batch: u32, r: u32, c: u32) -> vec4<f16> {
    let rows = select(p.k, p.n, TB);
    let cols = select(p.n, p.k, TB);
    var v = vec4<f16>();
    if (r >= rows) {
        return v;
    }
    let i = batch * p.b_stride + r * cols + c;
    if (c < cols) { v.x = b1[i]; }
    if (c + 1u < cols) { v.y = b1[i + 1u]; }
    if (c + 2u < cols) { v.z = b1[i + 2u]; }
    if (c + 3u < cols) { v.w = b1[i + 3u]; }
    return v;
}
