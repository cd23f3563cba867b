// winograd_gemm.wgsl's operands and products four elements at a time (16-byte loads and stores),
// for passes whose tiles and cout are multiples of 4 (`conv::winograd::gemm_shader`): every
// four lines a loader reads then exist whole and start at a multiple of 4, as does every four
// consecutive tiles of M the core stores.

@group(0) @binding(1) var<storage, read> wv: array<vec4<f32>>;        // V (36, cin, tiles)
@group(0) @binding(2) var<storage, read> wu: array<vec4<f32>>;        // U (36, cin, cout)
@group(0) @binding(3) var<storage, read_write> wm: array<vec4<f32>>;  // M (36, cout, tiles)

fn load_a4(z: u32, rows: ARows, k: u32) -> vec4<f32> {
    if (rows.valid == 0u || k >= p.cin) { return vec4<f32>(0.0); }
    return wv[(rows.base + k * p.tiles) / 4u];
}

fn load_b4(z: u32, k: u32, cols: BCols) -> vec4<f32> {
    if (cols.valid == 0u || k >= p.cin) { return vec4<f32>(0.0); }
    return wu[(cols.base + k * p.cout) / 4u];
}

fn store_c(z: u32, m: u32, n: u32, acc: f32) {
    let i = m_index(z, m, n);
    wm[i / 4u][i % 4u] = acc;
}

fn store_c4m(z: u32, m: u32, n: u32, v: vec4<f32>) {
    wm[m_index(z, m, n) / 4u] = v;
}
