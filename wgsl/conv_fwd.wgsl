// Convolution forward as an implicit GEMM, one group per workgroup z:
//   M = N·OH·OW (output pixels), N = C_out/g, K = (C_in/g)·kh·kw,
//   A = im2col(x) (never materialised), B = wᵀ of the group, epilogue adds the bias.
// Also the backward-data of a conv-transpose (its adjoint relation).

@group(0) @binding(1) var<storage, read> fx: array<f32>;        // (N, C_in, H, W)
@group(0) @binding(2) var<storage, read> fw: array<f32>;        // (C_out, C_in/g, kh, kw)
@group(0) @binding(3) var<storage, read> fbias: array<f32>;     // (C_out,), or any buffer
@group(0) @binding(4) var<storage, read_write> fy: array<f32>;  // (N, C_out, OH, OW)

fn gemm_m() -> u32 { return p.batch * p.oh * p.ow; }
fn gemm_n() -> u32 { return p.cout_g; }
fn gemm_k() -> u32 { return p.cin_g * p.kh * p.kw; }
// Neighbouring m are neighbouring output columns, so neighbouring input columns (stride 1).
fn a_k_fastest() -> bool { return false; }
// A weight row (one output channel) is contiguous along k.
fn b_n_fastest() -> bool { return false; }

fn load_a(g: u32, m: u32, k: u32) -> f32 {
    if (m >= gemm_m() || k >= gemm_k()) { return 0.0; }
    let i = x_tap(g, m, k);
    if (i < 0) { return 0.0; }
    return fx[u32(i)];
}

fn load_b(g: u32, k: u32, n: u32) -> f32 {
    if (k >= gemm_k() || n >= gemm_n()) { return 0.0; }
    return fw[(g * p.cout_g + n) * gemm_k() + k];
}

fn x_at(g: u32, m: u32, tap: vec3<u32>) -> f32 {
    if (m >= gemm_m()) { return 0.0; }
    let i = x_index(g, m, tap);
    if (i < 0) { return 0.0; }
    return fx[u32(i)];
}

// Four output pixels at one tap: the tap is decomposed once.
fn load_a4(g: u32, m: u32, k: u32) -> vec4<f32> {
    if (k >= gemm_k()) { return vec4<f32>(0.0); }
    let tap = tap_of(k);
    return vec4<f32>(x_at(g, m, tap), x_at(g, m + 1u, tap), x_at(g, m + 2u, tap),
                     x_at(g, m + 3u, tap));
}

// Four output channels at one tap: weight rows strided by K.
fn load_b4(g: u32, k: u32, n: u32) -> vec4<f32> {
    let kk = gemm_k();
    if (k >= kk || n >= gemm_n()) { return vec4<f32>(0.0); }
    if (n + 3u >= gemm_n()) {
        return vec4<f32>(load_b(g, k, n), load_b(g, k, n + 1u), load_b(g, k, n + 2u),
                         load_b(g, k, n + 3u));
    }
    let i = (g * p.cout_g + n) * kk + k;
    return vec4<f32>(fw[i], fw[i + kk], fw[i + 2u * kk], fw[i + 3u * kk]);
}

fn store_c(g: u32, m: u32, n: u32, acc: f32) {
    let oc = g * p.cout_g + n;
    let ohw = p.oh * p.ow;
    let img = m / ohw;
    let pix = m - img * ohw;
    var v = acc;
    if (p.has_bias != 0u) { v = v + fbias[oc]; }
    fy[(img * p.cout + oc) * ohw + pix] = v;
}
