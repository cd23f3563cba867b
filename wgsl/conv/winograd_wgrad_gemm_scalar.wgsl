// winograd_wgrad_gemm.wgsl's operands read one element at a time (any tiles): four lines at one
// tile (gemm_core.wgsl's w-units).

@group(0) @binding(1) var<storage, read> wv: array<f32>;        // V (36, cin, tiles)
@group(0) @binding(2) var<storage, read> wd: array<f32>;        // D (36, cout, tiles)

fn a_k4() -> bool { return false; }
fn b_k4() -> bool { return false; }

fn a_rows(z: u32, m: u32) -> ARows { return split_lines(z, m, p.cin, valid4(m, p.cin)); }
fn b_cols(z: u32, n: u32) -> BCols { return split_lines(z, n, p.cout, valid4(n, p.cout)); }

fn load_a4(z: u32, rows: ARows, k: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (k >= rows.len) { return v; }
    let i = rows.base + k;
    if (rows.valid > 0u) { v.x = wv[i]; }
    if (rows.valid > 1u) { v.y = wv[i + p.tiles]; }
    if (rows.valid > 2u) { v.z = wv[i + 2u * p.tiles]; }
    if (rows.valid > 3u) { v.w = wv[i + 3u * p.tiles]; }
    return v;
}

fn load_b4(z: u32, k: u32, cols: BCols) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (k >= cols.len) { return v; }
    let i = cols.base + k;
    if (cols.valid > 0u) { v.x = wd[i]; }
    if (cols.valid > 1u) { v.y = wd[i + p.tiles]; }
    if (cols.valid > 2u) { v.z = wd[i + 2u * p.tiles]; }
    if (cols.valid > 3u) { v.w = wd[i + 3u * p.tiles]; }
    return v;
}
