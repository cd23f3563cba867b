// matmul.wgsl's operands read one element at a time: any shape, stride and offset.

@group(0) @binding(1) var<storage, read> mat_a: array<act>;
@group(0) @binding(2) var<storage, read> mat_b: array<act>;

// Every operand staged as four consecutive m (n) at one k (gemm_core.wgsl).
fn a_k4() -> bool { return false; }
fn b_k4() -> bool { return false; }

// The scalar meaning of the operands (the main loop stages through a_rows/load_a4, b_cols/load_b4).
fn load_a(batch: u32, m: u32, k: u32) -> f32 {
    if (m >= p.m || !k_inside(batch, k)) { return 0.0; }
    let kg = k + k_offset(batch);
    var idx = m * p.k + kg;
    if (TRANS_A) { idx = kg * p.m + m; }
    return f32(mat_a[matrix_of(batch) * p.a_stride + idx]);
}

fn load_b(batch: u32, k: u32, n: u32) -> f32 {
    if (n >= p.n || !k_inside(batch, k)) { return 0.0; }
    let kg = k + k_offset(batch);
    var idx = kg * p.n + n;
    if (TRANS_B) { idx = n * p.k + kg; }
    return f32(mat_b[matrix_of(batch) * p.b_stride + idx]);
}

// A(m..m+3, k) = four load_a.
fn load_a4(batch: u32, r: Lines, k: u32) -> vec4<f32> {
    if (k >= r.kend) { return vec4<f32>(0.0); }
    let i = r.idx + k * r.kstep;
    if (r.valid == 4u) {
        return vec4<f32>(f32(mat_a[i]), f32(mat_a[i + r.step]), f32(mat_a[i + 2u * r.step]), f32(mat_a[i + 3u * r.step]));
    }
    var v = vec4<f32>(0.0);
    if (r.valid > 0u) { v.x = f32(mat_a[i]); }
    if (r.valid > 1u) { v.y = f32(mat_a[i + r.step]); }
    if (r.valid > 2u) { v.z = f32(mat_a[i + 2u * r.step]); }
    return v;
}

// B(k, n..n+3) = four load_b.
fn load_b4(batch: u32, k: u32, c: Lines) -> vec4<f32> {
    if (k >= c.kend) { return vec4<f32>(0.0); }
    let i = c.idx + k * c.kstep;
    if (c.valid == 4u) {
        return vec4<f32>(f32(mat_b[i]), f32(mat_b[i + c.step]), f32(mat_b[i + 2u * c.step]), f32(mat_b[i + 3u * c.step]));
    }
    var v = vec4<f32>(0.0);
    if (c.valid > 0u) { v.x = f32(mat_b[i]); }
    if (c.valid > 1u) { v.y = f32(mat_b[i + c.step]); }
    if (c.valid > 2u) { v.z = f32(mat_b[i + 2u * c.step]); }
    return v;
}
