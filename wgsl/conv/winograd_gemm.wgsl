// The 36 products of Winograd F(4×4, 3×3) (winograd_common.wgsl has the layouts) as one batched
// GEMM on gemm_core.wgsl, ξ on workgroup z:
//   M[ξ] (tiles × cout, stored transposed: (cout, tiles)) = V[ξ]ᵀ (tiles × cin) · U[ξ] (cin × cout).
// Neighbouring tiles are neighbouring addresses of V and M, neighbouring output channels of U.

@group(0) @binding(1) var<storage, read> wv: array<f32>;        // V (36, cin, tiles)
@group(0) @binding(2) var<storage, read> wu: array<f32>;        // U (36, cin, cout)
@group(0) @binding(3) var<storage, read_write> wm: array<f32>;  // M (36, cout, tiles)

fn gemm_m() -> u32 { return p.tiles; }
fn gemm_n() -> u32 { return p.cout; }
fn gemm_k() -> u32 { return p.cin; }
fn a_k_fastest() -> bool { return false; }
fn b_n_fastest() -> bool { return true; }
// Staged four m (n) at one k (gemm_core.wgsl's w-units), read one element at a time.
fn a_k4() -> bool { return false; }
fn b_k4() -> bool { return false; }

// Four consecutive lines (tiles of A, channels of B) from `base` at k = 0, of which `valid` exist.
struct Lines {
    base: u32,
    valid: u32,
}

alias ARows = Lines;
alias BCols = Lines;

fn a_rows(z: u32, m: u32) -> ARows {
    return Lines(z * p.cin * p.tiles + m, valid4(m, p.tiles));
}

fn b_cols(z: u32, n: u32) -> BCols {
    return Lines(z * p.cin * p.cout + n, valid4(n, p.cout));
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

fn load_a4(z: u32, rows: ARows, k: u32) -> vec4<f32> { return four_v(rows, k); }
fn load_b4(z: u32, k: u32, cols: BCols) -> vec4<f32> { return four_u(cols, k); }

fn store_c(z: u32, m: u32, n: u32, acc: f32) {
    wm[(z * p.cout + n) * p.tiles + m] = acc;
}
