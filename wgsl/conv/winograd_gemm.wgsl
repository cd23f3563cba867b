// The 36 products of Winograd (winograd_common.wgsl has the layouts) as one batched GEMM on
// gemm_core.wgsl, ξ on workgroup z, in one of two orientations (pipeline constant TRANSPOSED):
//   M[ξ]ᵀ (tiles × cout) = V[ξ]ᵀ (tiles × cin) · U[ξ] (cin × cout)   rows are tiles (few channels)
//   M[ξ] (cout × tiles) = U[ξ]ᵀ (cout × cin) · V[ξ] (cin × tiles)    rows are channels (≥ 128)
// M is stored (cout, tiles) either way: the first writes it column by column (a 128-row tile
// leaves no rows idle at 64 channels), the second row by row.
override TRANSPOSED: bool = false;

@group(0) @binding(1) var<storage, read> wv: array<f32>;        // V (36, cin, tiles)
@group(0) @binding(2) var<storage, read> wu: array<f32>;        // U (36, cin, cout)
@group(0) @binding(3) var<storage, read_write> wm: array<f32>;  // M (36, cout, tiles)

fn gemm_m() -> u32 { return select(p.tiles, p.cout, TRANSPOSED); }
fn gemm_n() -> u32 { return select(p.cout, p.tiles, TRANSPOSED); }
fn gemm_k() -> u32 { return p.cin; }
// Both operands are contiguous along M and N in either orientation.
fn a_k_fastest() -> bool { return false; }
fn b_n_fastest() -> bool { return true; }

// Four consecutive lines (tiles of A, channels of B) from `base` at k = 0, of which `valid` exist.
struct Lines {
    base: u32,
    valid: u32,
}

alias ARows = Lines;
alias BCols = Lines;

// Four tiles of V, or four channels of U, from t or o.
fn tiles4(z: u32, t: u32) -> Lines { return Lines(z * p.cin * p.tiles + t, valid4(t, p.tiles)); }
fn channels4(z: u32, o: u32) -> Lines { return Lines(z * p.cin * p.cout + o, valid4(o, p.cout)); }

fn a_rows(z: u32, m: u32) -> ARows {
    if (TRANSPOSED) { return channels4(z, m); }
    return tiles4(z, m);
}

fn b_cols(z: u32, n: u32) -> BCols {
    if (TRANSPOSED) { return tiles4(z, n); }
    return channels4(z, n);
}

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

fn load_a4(z: u32, rows: ARows, k: u32) -> vec4<f32> {
    if (TRANSPOSED) { return four_u(rows, k); }
    return four_v(rows, k);
}

fn load_b4(z: u32, k: u32, cols: BCols) -> vec4<f32> {
    if (TRANSPOSED) { return four_v(cols, k); }
    return four_u(cols, k);
}

fn store_c(z: u32, m: u32, n: u32, acc: f32) {
    if (TRANSPOSED) {
        wm[(z * p.cout + m) * p.tiles + n] = acc;
    } else {
        wm[(z * p.cout + n) * p.tiles + m] = acc;
    }
}
