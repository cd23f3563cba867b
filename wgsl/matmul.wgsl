// Batched matmul C = alpha · op(A) · op(B) (+ C when accumulate), op = optional transpose.
// A is (M, K) row-major, or (K, M) when ta; B is (K, N), or (N, K) when tb. A batch stride of 0
// broadcasts an operand (e.g. one weight matrix for every sample). Main loop: gemm_core.wgsl.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    ta: u32,
    tb: u32,
    accumulate: u32,
    alpha: f32,
    _pad: u32,
    a_stride: u32,   // elements between batches of A (0 = shared)
    b_stride: u32,
    c_stride: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> mat_a: array<f32>;
@group(0) @binding(2) var<storage, read> mat_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> mat_c: array<f32>;

fn gemm_m() -> u32 { return p.m; }
fn gemm_n() -> u32 { return p.n; }
fn gemm_k() -> u32 { return p.k; }
fn a_k_fastest() -> bool { return p.ta == 0u; }
fn b_n_fastest() -> bool { return p.tb == 0u; }

fn load_a(batch: u32, m: u32, k: u32) -> f32 {
    if (m >= p.m || k >= p.k) { return 0.0; }
    var idx = m * p.k + k;
    if (p.ta != 0u) { idx = k * p.m + m; }
    return mat_a[batch * p.a_stride + idx];
}

fn load_b(batch: u32, k: u32, n: u32) -> f32 {
    if (k >= p.k || n >= p.n) { return 0.0; }
    var idx = k * p.n + n;
    if (p.tb != 0u) { idx = n * p.k + k; }
    return mat_b[batch * p.b_stride + idx];
}

// A(m..m+3, k): rows strided by K (or consecutive when ta), one bounds check when all inside.
fn load_a4(batch: u32, m: u32, k: u32) -> vec4<f32> {
    if (k >= p.k || m >= p.m) { return vec4<f32>(0.0); }
    if (m + 3u >= p.m) {
        return vec4<f32>(load_a(batch, m, k), load_a(batch, m + 1u, k),
                         load_a(batch, m + 2u, k), load_a(batch, m + 3u, k));
    }
    var idx = batch * p.a_stride + m * p.k + k;
    var step = p.k;
    if (p.ta != 0u) {
        idx = batch * p.a_stride + k * p.m + m;
        step = 1u;
    }
    return vec4<f32>(mat_a[idx], mat_a[idx + step], mat_a[idx + 2u * step], mat_a[idx + 3u * step]);
}

// B(k, n..n+3): consecutive (or rows strided by K when tb).
fn load_b4(batch: u32, k: u32, n: u32) -> vec4<f32> {
    if (k >= p.k || n >= p.n) { return vec4<f32>(0.0); }
    if (n + 3u >= p.n) {
        return vec4<f32>(load_b(batch, k, n), load_b(batch, k, n + 1u),
                         load_b(batch, k, n + 2u), load_b(batch, k, n + 3u));
    }
    var idx = batch * p.b_stride + k * p.n + n;
    var step = 1u;
    if (p.tb != 0u) {
        idx = batch * p.b_stride + n * p.k + k;
        step = p.k;
    }
    return vec4<f32>(mat_b[idx], mat_b[idx + step], mat_b[idx + 2u * step], mat_b[idx + 3u * step]);
}

fn store_c(batch: u32, m: u32, n: u32, acc: f32) {
    let idx = batch * p.c_stride + m * p.n + n;
    var v = p.alpha * acc;
    if (p.accumulate != 0u) { v = v + mat_c[idx]; }
    mat_c[idx] = v;
}
