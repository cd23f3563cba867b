// The 36 products of the Winograd weight gradient (winograd_common.wgsl) as one batched GEMM on
// gemm_core.wgsl, split over the chunk's tiles (its K), workgroup z = ξ·splits + split:
//   S[ξ, split0 + split] (cin × cout) = V[ξ] (cin × tiles of the split) · D[ξ]ᵀ (tiles × cout).
// Both operands are contiguous along the tiles. Their bindings and loaders:
// winograd_wgrad_gemm_scalar.wgsl, or winograd_wgrad_gemm_vec4.wgsl where the tiles are a
// multiple of 4.

@group(0) @binding(3) var<storage, read_write> ws: array<f32>;  // S (36, splits_all, cin, cout)

fn gemm_m() -> u32 { return p.cin; }
fn gemm_n() -> u32 { return p.cout; }
fn gemm_k() -> u32 { return p.k_chunk; }
fn a_k_fastest() -> bool { return true; }
fn b_n_fastest() -> bool { return false; }

// Lines (channels) of V or D from w at their split's first tile: offset, how many of the lines
// the loader reads exist, and the split's length.
struct Lines {
    base: u32,
    valid: u32,
    len: u32,
}

alias ARows = Lines;
alias BCols = Lines;

// Line w of `count` (of ξ = z / splits) at split z % splits, `valid` of the lines read from it.
fn split_lines(z: u32, w: u32, count: u32, valid: u32) -> Lines {
    let xi = z / p.splits;
    let off = (z % p.splits) * p.k_chunk;
    let len = min(p.k_chunk, p.tiles - min(off, p.tiles));
    return Lines((xi * count + w) * p.tiles + off, valid, len);
}

// This chunk's split s of ξ is slab ξ·splits_all + split0 + s of S.
fn store_c(z: u32, m: u32, n: u32, acc: f32) {
    let slab = (z / p.splits) * p.splits_all + p.split0 + z % p.splits;
    ws[(slab * p.cin + m) * p.cout + n] = acc;
}
