// winograd_gemm.wgsl's operands read one element at a time (any tiles and cout).

@group(0) @binding(1) var<storage, read> wv: array<f32>;        // V (36, cin, tiles)
@group(0) @binding(2) var<storage, read> wu: array<f32>;        // U (36, cin, cout)
@group(0) @binding(3) var<storage, read_write> wm: array<f32>;  // M (36, cout, tiles)

// Four consecutive values at `i` of `a` (V) or `b` (U), those of `valid` lines, 0 past K.
fn four_v(l: Lines, k: u32) -> vec4<f32> {
    if (k >= p.cin) { return vec4<f32>(0.0); }
    let i = l.base + k * p.tiles;
    if (l.valid == 4u) { return vec4<f32>(wv[i], wv[i + 1u], wv[i + 2u], wv[i + 3u]); }
    var v = vec4<f32>(0.0);
    if (l.valid > 0u) { v.x = wv[i]; }
    if (l.valid > 1u) { v.y = wv[i + 1u]; }
    if (l.valid > 2u) { v.z = wv[i + 2u]; }
    return v;
}

fn four_u(l: Lines, k: u32) -> vec4<f32> {
    if (k >= p.cin) { return vec4<f32>(0.0); }
    let i = l.base + k * p.cout;
    if (l.valid == 4u) { return vec4<f32>(wu[i], wu[i + 1u], wu[i + 2u], wu[i + 3u]); }
    var v = vec4<f32>(0.0);
    if (l.valid > 0u) { v.x = wu[i]; }
    if (l.valid > 1u) { v.y = wu[i + 1u]; }
    if (l.valid > 2u) { v.z = wu[i + 2u]; }
    return v;
}

fn load_a4(z: u32, rows: ARows, k: u32) -> vec4<f32> { return four_v(rows, k); }
fn load_b4(z: u32, k: u32, cols: BCols) -> vec4<f32> { return four_u(cols, k); }

fn store_c(z: u32, m: u32, n: u32, acc: f32) {
    wm[m_index(z, m, n)] = acc;
}

fn store_c4m(z: u32, m: u32, n: u32, v: vec4<f32>) {
    let i = m_index(z, m, n);
    wm[i] = v.x;
    wm[i + 1u] = v.y;
    wm[i + 2u] = v.z;
    wm[i + 3u] = v.w;
}
