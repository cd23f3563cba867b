// Convolution weight gradient as an implicit GEMM with split-K:
//   M = C_out/g, N = (C_in/g)·kh·kw, K = N·OH·OW (every output pixel of every sample),
//   A = dy of the group as (C_out/g, N·OH·OW), B = im2col(x)ᵀ.
// K is long and M·N small (64×576 for a ResNet 3×3), so K is split over workgroup z, which
// holds group · splits + split; each split writes its partial dw to its own slab of `wout`
// (splits, C_out, C_in/g·kh·kw), summed afterwards by reduce.wgsl (deterministic, no atomics).
// With one split `wout` is dw itself.

@group(0) @binding(1) var<storage, read> gx: array<f32>;         // (N, C_in, H, W)
@group(0) @binding(2) var<storage, read> gdy: array<f32>;        // (N, C_out, OH, OW)
@group(0) @binding(3) var<storage, read_write> wout: array<f32>; // (splits, C_out, C_in/g, kh, kw)

fn gemm_m() -> u32 { return p.cout_g; }
fn gemm_n() -> u32 { return p.cin_g * p.kh * p.kw; }
fn gemm_k() -> u32 { return p.k_chunk; }
// dy planes are contiguous along the output pixels; so are x rows along k (stride 1).
fn a_k_fastest() -> bool { return true; }
fn b_n_fastest() -> bool { return false; }

// The global K index of chunk-local `k`, or 0xffffffff past this split or past K.
fn global_k(z: u32, k: u32) -> u32 {
    let kg = (z % p.splits) * p.k_chunk + k;
    if (k >= p.k_chunk || kg >= p.batch * p.oh * p.ow) { return 0xffffffffu; }
    return kg;
}

fn load_a(z: u32, m: u32, k: u32) -> f32 {
    let kg = global_k(z, k);
    if (m >= gemm_m() || kg == 0xffffffffu) { return 0.0; }
    let g = z / p.splits;
    let ohw = p.oh * p.ow;
    let n = kg / ohw;
    let pix = kg - n * ohw;
    return gdy[(n * p.cout + g * p.cout_g + m) * ohw + pix];
}

fn load_b(z: u32, k: u32, n: u32) -> f32 {
    let kg = global_k(z, k);
    if (n >= gemm_n() || kg == 0xffffffffu) { return 0.0; }
    let i = x_tap(z / p.splits, kg, n);
    if (i < 0) { return 0.0; }
    return gx[u32(i)];
}

fn store_c(z: u32, m: u32, n: u32, acc: f32) {
    let g = z / p.splits;
    let s = z % p.splits;
    wout[(s * p.cout + g * p.cout_g + m) * gemm_n() + n] = acc;
}
