// The 36 products of the Winograd weight gradient (winograd_common.wgsl) as one batched GEMM on
// gemm_core.wgsl, split over the chunk's tiles (its K), workgroup z = ξ·splits + split:
//   S[ξ, split0 + split] (cin × cout) = V[ξ] (cin × tiles of the split) · D[ξ]ᵀ (tiles × cout).
// Both operands are contiguous along the tiles.

@group(0) @binding(1) var<storage, read> wv: array<f32>;        // V (36, cin, tiles)
@group(0) @binding(2) var<storage, read> wd: array<f32>;        // D (36, cout, tiles)
@group(0) @binding(3) var<storage, read_write> ws: array<f32>;  // S (36, splits_all, cin, cout)

fn gemm_m() -> u32 { return p.cin; }
fn gemm_n() -> u32 { return p.cout; }
fn gemm_k() -> u32 { return p.k_chunk; }
fn a_k_fastest() -> bool { return true; }
fn b_n_fastest() -> bool { return false; }
// Staged four m (n) at one k (gemm_core.wgsl's w-units), read one element at a time.
fn a_k4() -> bool { return false; }
fn b_k4() -> bool { return false; }

// Four consecutive rows (channels) of V or D at their split's first tile: offset, how many exist,
// and the split's length.
struct Lines {
    base: u32,
    valid: u32,
    len: u32,
}

alias ARows = Lines;
alias BCols = Lines;

fn lines(z: u32, w: u32, count: u32) -> Lines {
    let xi = z / p.splits;
    let off = (z % p.splits) * p.k_chunk;
    let len = min(p.k_chunk, p.tiles - min(off, p.tiles));
    return Lines((xi * count + w) * p.tiles + off, valid4(w, count), len);
}

fn a_rows(z: u32, m: u32) -> ARows { return lines(z, m, p.cin); }
fn b_cols(z: u32, n: u32) -> BCols { return lines(z, n, p.cout); }

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

// This chunk's split s of ξ is slab ξ·splits_all + split0 + s of S.
fn store_c(z: u32, m: u32, n: u32, acc: f32) {
    let slab = (z / p.splits) * p.splits_all + p.split0 + z % p.splits;
    ws[(slab * p.cin + m) * p.cout + n] = acc;
}
