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

fn load_a(g: u32, m: u32, k: u32) -> f32 {
    if (m >= gemm_m() || k >= gemm_k()) { return 0.0; }
    let hw = p.h * p.w;
    let n = m / hw;
    let pix = m - n * hw;
    let iy = pix / p.w;
    let ix = pix - iy * p.w;
    let khw = p.kh * p.kw;
    let ocg = k / khw;
    let t = k - ocg * khw;
    let ky = t / p.kw;
    let kx = t - ky * p.kw;
    let oy = tap_source(iy, ky, p.sh, p.dh, p.pad_t, p.oh);
    let ox = tap_source(ix, kx, p.sw, p.dw, p.pad_l, p.ow);
    if (oy < 0 || ox < 0) { return 0.0; }
    let oc = g * p.cout_g + ocg;
    return ddy[((n * p.cout + oc) * p.oh + u32(oy)) * p.ow + u32(ox)];
}

fn load_b(g: u32, k: u32, n: u32) -> f32 {
    if (k >= gemm_k() || n >= gemm_n()) { return 0.0; }
    let khw = p.kh * p.kw;
    let ocg = k / khw;
    let t = k - ocg * khw;
    return dgw[((g * p.cout_g + ocg) * p.cin_g + n) * khw + t];
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
