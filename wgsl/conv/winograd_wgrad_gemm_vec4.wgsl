// winograd_wgrad_gemm.wgsl's operands four tiles at a time (16-byte loads, gemm_core.wgsl's
// k-units), for chunks whose tiles are a multiple of 4 (`conv::winograd::wgrad_gemm_shader`):
// every line and split then starts at a multiple of 4 and every split's length is one, as the
// split (`k_chunk`) is a multiple of 16.

@group(0) @binding(1) var<storage, read> wv: array<vec4<f32>>;  // V (36, cin, tiles)
@group(0) @binding(2) var<storage, read> wd: array<vec4<f32>>;  // D (36, cout, tiles)

fn a_k4() -> bool { return true; }
fn b_k4() -> bool { return true; }

fn a_rows(z: u32, m: u32) -> ARows { return split_lines(z, m, p.cin, u32(m < p.cin)); }
fn b_cols(z: u32, n: u32) -> BCols { return split_lines(z, n, p.cout, u32(n < p.cout)); }

// Tiles k..k+3 of the line, zeros outside the split or past the channels.
fn load_a4(z: u32, rows: ARows, k: u32) -> vec4<f32> {
    if (rows.valid == 0u || k >= rows.len) { return vec4<f32>(0.0); }
    return wv[(rows.base + k) / 4u];
}

fn load_b4(z: u32, k: u32, cols: BCols) -> vec4<f32> {
    if (cols.valid == 0u || k >= cols.len) { return vec4<f32>(0.0); }
    return wd[(cols.base + k) / 4u];
}
