// The 36 products of Winograd F(4×4, 3×3) (winograd_common.wgsl has the layouts) as one batched
// GEMM on gemm_core.wgsl, ξ on workgroup z:
//   M[ξ] (tiles × cout, stored transposed: (cout, tiles)) = V[ξ]ᵀ (tiles × cin) · U[ξ] (cin × cout).
// Neighbouring tiles are neighbouring addresses of V and M, neighbouring output channels of U.
// The operands' bindings and loaders: winograd_gemm_scalar.wgsl, or winograd_gemm_vec4.wgsl
// where tiles and cout are multiples of 4.

fn gemm_m() -> u32 { return p.tiles; }
fn gemm_n() -> u32 { return p.cout; }
fn gemm_k() -> u32 { return p.cin; }
fn a_k_fastest() -> bool { return false; }
fn b_n_fastest() -> bool { return true; }
// Staged four m (n) at one k (gemm_core.wgsl's w-units).
fn a_k4() -> bool { return false; }
fn b_k4() -> bool { return false; }
// M is stored (cout, tiles): the core stores four consecutive tiles of a channel at once.
fn c_m_contiguous() -> bool { return true; }

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

// Index of M's element (tile m, channel n) of product z.
fn m_index(z: u32, m: u32, n: u32) -> u32 {
    return (z * p.cout + n) * p.tiles + m;
}
