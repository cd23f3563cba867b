// Convolution backward-data as a gather-style implicit GEMM, one group per workgroup z:
//   M = N·H·W (input pixels), N = C_in/g, K = (C_out/g)·kh·kw,
//   A(m, k) = dy at the output pixel whose tap k reads input pixel m — found by inverting the
//   index rule, oy = (iy + pad_t − ky·dh) / sh, valid only when that divides exactly and lands
//   inside the output — B(k, n) = w of the group, read as (C_out/g·kh·kw, C_in/g).
// Every dx element is written once (no col2im scatter, no atomics). Also the forward of a
// conv-transpose, so the epilogue can add a bias per dx channel.

@group(0) @binding(1) var<storage, read> ddy: array<f32>;       // (N, C_out, OH, OW)
@group(0) @binding(2) var<storage, read> dgw: array<f32>;       // (C_out, C_in/g, kh, kw)
@group(0) @binding(3) var<storage, read> dbias: array<f32>;     // (C_in,), or any buffer
@group(0) @binding(4) var<storage, read_write> ddx: array<f32>; // (N, C_in, H, W)

fn gemm_m() -> u32 { return p.batch * p.h * p.w; }
fn gemm_n() -> u32 { return p.cin_g; }
fn gemm_k() -> u32 { return p.cout_g * p.kh * p.kw; }
fn a_k_fastest() -> bool { return false; }
fn b_n_fastest() -> bool { return false; }

// The output coordinate whose tap `k` reads input coordinate `i`, or -1.
fn tap_source(i: u32, k: u32, s: u32, d: u32, pad: u32, out_len: u32) -> i32 {
    let t = i32(i + pad) - i32(k * d);
    if (t < 0) { return -1; }
    let o = u32(t) / s;
    if (o * s != u32(t) || o >= out_len) { return -1; }
    return i32(o);
}

// dy read by input pixel `m` through tap (ocg, ky, kx) of group `g`, or 0.
fn dy_at(g: u32, m: u32, tap: vec3<u32>) -> f32 {
    if (m >= gemm_m()) { return 0.0; }
    let hw = p.h * p.w;
    let n = m / hw;
    let pix = m - n * hw;
    let iy = pix / p.w;
    let ix = pix - iy * p.w;
    let oy = tap_source(iy, tap.y, p.sh, p.dh, p.pad_t, p.oh);
    let ox = tap_source(ix, tap.z, p.sw, p.dw, p.pad_l, p.ow);
    if (oy < 0 || ox < 0) { return 0.0; }
    let oc = g * p.cout_g + tap.x;
    return ddy[((n * p.cout + oc) * p.oh + u32(oy)) * p.ow + u32(ox)];
}

// dy read by input pixel `m` through tap (ocg, ky, kx), stride 1: no divisibility check.
fn dy_at_s1(g: u32, m: u32, tap: vec3<u32>) -> f32 {
    if (m >= gemm_m()) { return 0.0; }
    let hw = p.h * p.w;
    let n = m / hw;
    let pix = m - n * hw;
    let iy = pix / p.w;
    let ix = pix - iy * p.w;
    let oy = i32(iy + p.pad_t) - i32(tap.y * p.dh);
    let ox = i32(ix + p.pad_l) - i32(tap.z * p.dw);
    if (oy < 0 || ox < 0 || oy >= i32(p.oh) || ox >= i32(p.ow)) { return 0.0; }
    let oc = g * p.cout_g + tap.x;
    return ddy[((n * p.cout + oc) * p.oh + u32(oy)) * p.ow + u32(ox)];
}

fn load_a(g: u32, m: u32, k: u32) -> f32 {
    if (k >= gemm_k()) { return 0.0; }
    return dy_at(g, m, tap_of(k));
}

// Four input pixels at one tap: the tap is decomposed once.
fn load_a4(g: u32, m: u32, k: u32) -> vec4<f32> {
    if (k >= gemm_k()) { return vec4<f32>(0.0); }
    let tap = tap_of(k);
    if (p.sh == 1u && p.sw == 1u) {
        return vec4<f32>(dy_at_s1(g, m, tap), dy_at_s1(g, m + 1u, tap), dy_at_s1(g, m + 2u, tap),
                         dy_at_s1(g, m + 3u, tap));
    }
    return vec4<f32>(dy_at(g, m, tap), dy_at(g, m + 1u, tap), dy_at(g, m + 2u, tap),
                     dy_at(g, m + 3u, tap));
}

fn load_b(g: u32, k: u32, n: u32) -> f32 {
    if (k >= gemm_k() || n >= gemm_n()) { return 0.0; }
    let khw = p.kh * p.kw;
    let ocg = k / khw;
    let t = k - ocg * khw;
    return dgw[((g * p.cout_g + ocg) * p.cin_g + n) * khw + t];
}

// Four input channels at one tap: weight entries strided by kh·kw.
fn load_b4(g: u32, k: u32, n: u32) -> vec4<f32> {
    if (k >= gemm_k() || n >= gemm_n()) { return vec4<f32>(0.0); }
    if (n + 3u >= gemm_n()) {
        return vec4<f32>(load_b(g, k, n), load_b(g, k, n + 1u), load_b(g, k, n + 2u),
                         load_b(g, k, n + 3u));
    }
    let khw = p.kh * p.kw;
    let ocg = k / khw;
    let t = k - ocg * khw;
    let i = ((g * p.cout_g + ocg) * p.cin_g + n) * khw + t;
    return vec4<f32>(dgw[i], dgw[i + khw], dgw[i + 2u * khw], dgw[i + 3u * khw]);
}

fn store_c(g: u32, m: u32, n: u32, acc: f32) {
    let c = g * p.cin_g + n;
    let hw = p.h * p.w;
    let img = m / hw;
    let pix = m - img * hw;
    var v = acc;
    if (p.has_bias != 0u) { v = v + dbias[c]; }
    ddx[(img * p.cin + c) * hw + pix] = v;
}
