// Convolution weight gradient as an implicit GEMM with split-K, computing dwᵀ of the group:
//   M = (C_in/g)·kh·kw, N = C_out/g, K = N·OH·OW (every output pixel of every sample),
//   A = im2col(x)ᵀ, B = dyᵀ of the group as (N·OH·OW, C_out/g), stored transposed into dw.
// (Transposed so the long side of the small output — 576×64 for a ResNet 3×3 — is M, the side
// the GEMM tile is tallest along.)
// K is long and M·N small, so K is split over workgroup z, which holds group · splits + split;
// each split writes its partial dw to its own slab of `wout` (splits, C_out, C_in/g·kh·kw),
// summed afterwards by reduce.wgsl (deterministic, no atomics). With one split `wout` is dw itself.

@group(0) @binding(1) var<storage, read> gx: array<f32>;         // (N, C_in, H, W)
@group(0) @binding(2) var<storage, read> gdy: array<f32>;        // (N, C_out, OH, OW)
@group(0) @binding(3) var<storage, read_write> wout: array<f32>; // (splits, C_out, C_in/g, kh, kw)

fn gemm_m() -> u32 { return p.cin_g * p.kh * p.kw; }
fn gemm_n() -> u32 { return p.cout_g; }
fn gemm_k() -> u32 { return p.k_chunk; }
// x rows are contiguous along the output pixels k (stride 1); so are dy planes.
fn a_k_fastest() -> bool { return true; }
fn b_n_fastest() -> bool { return false; }

// The global K index of chunk-local `k`, or 0xffffffff past this split or past K.
fn global_k(z: u32, k: u32) -> u32 {
    let kg = (z % p.splits) * p.k_chunk + k;
    if (k >= p.k_chunk || kg >= p.batch * p.oh * p.ow) { return 0xffffffffu; }
    return kg;
}

// im2col(x)ᵀ: tap `m` of output pixel `k`.
fn load_a(z: u32, m: u32, k: u32) -> f32 {
    let kg = global_k(z, k);
    if (m >= gemm_m() || kg == 0xffffffffu) { return 0.0; }
    let i = x_tap(z / p.splits, kg, m);
    if (i < 0) { return 0.0; }
    return gx[u32(i)];
}

// dy of output channel `n` of the group at output pixel `k`.
fn load_b(z: u32, k: u32, n: u32) -> f32 {
    let kg = global_k(z, k);
    if (n >= gemm_n() || kg == 0xffffffffu) { return 0.0; }
    let g = z / p.splits;
    let ohw = p.oh * p.ow;
    let img = kg / ohw;
    let pix = kg - img * ohw;
    return gdy[(img * p.cout + g * p.cout_g + n) * ohw + pix];
}

// Four taps at one output pixel: the pixel is decomposed once, the taps (fixed per invocation
// over the K loop) are loop invariants.
fn load_a4(z: u32, m: u32, k: u32) -> vec4<f32> {
    let kg = global_k(z, k);
    if (m >= gemm_m() || kg == 0xffffffffu) { return vec4<f32>(0.0); }
    let g = z / p.splits;
    var v = vec4<f32>(0.0);
    let i0 = x_index(g, kg, tap_of(m));
    if (i0 >= 0) { v.x = gx[u32(i0)]; }
    if (m + 1u < gemm_m()) {
        let i = x_index(g, kg, tap_of(m + 1u));
        if (i >= 0) { v.y = gx[u32(i)]; }
    }
    if (m + 2u < gemm_m()) {
        let i = x_index(g, kg, tap_of(m + 2u));
        if (i >= 0) { v.z = gx[u32(i)]; }
    }
    if (m + 3u < gemm_m()) {
        let i = x_index(g, kg, tap_of(m + 3u));
        if (i >= 0) { v.w = gx[u32(i)]; }
    }
    return v;
}

// Four output channels at one output pixel: dy planes strided by OH·OW.
fn load_b4(z: u32, k: u32, n: u32) -> vec4<f32> {
    let kg = global_k(z, k);
    if (n >= gemm_n() || kg == 0xffffffffu) { return vec4<f32>(0.0); }
    if (n + 3u >= gemm_n()) {
        return vec4<f32>(load_b(z, k, n), load_b(z, k, n + 1u), load_b(z, k, n + 2u),
                         load_b(z, k, n + 3u));
    }
    let g = z / p.splits;
    let ohw = p.oh * p.ow;
    let img = kg / ohw;
    let pix = kg - img * ohw;
    let i = (img * p.cout + g * p.cout_g + n) * ohw + pix;
    return vec4<f32>(gdy[i], gdy[i + ohw], gdy[i + 2u * ohw], gdy[i + 3u * ohw]);
}

fn store_c(z: u32, m: u32, n: u32, acc: f32) {
    let g = z / p.splits;
    let s = z % p.splits;
    wout[(s * p.cout + g * p.cout_g + n) * gemm_m() + m] = acc;
}
