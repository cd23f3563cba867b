// Convolution backward-data as a gather-style implicit GEMM, one group per workgroup z:
//   M = N·H·W (input pixels), N = C_in/g, K = (C_out/g)·kh·kw,
//   A(m, k) = dy at the output pixel whose tap k reads input pixel m — found by inverting the
//   index rule, oy = (iy + pad_t − ky·dh) / sh, valid only when that divides exactly and lands
//   inside the output — B(k, n) = w of the group, read as (C_out/g·kh·kw, C_in/g).
// Every dx element is written once (no col2im scatter, no atomics). Also the forward of a
// conv-transpose, so the epilogue can add a bias per dx channel.

@group(0) @binding(1) var<storage, read> ddy: array<act>;       // (N, C_out, OH, OW)
@group(0) @binding(2) var<storage, read> dgw: array<act>;       // (C_out, C_in/g, kh, kw)
@group(0) @binding(3) var<storage, read> dbias: array<act>;     // (C_in,), or any buffer
@group(0) @binding(4) var<storage, read_write> ddx: array<act>; // (N, C_in, H, W)

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

// The scalar meaning of the operands (the main loop stages through a_rows/load_a4, b_cols/load_b4).
fn load_a(g: u32, m: u32, k: u32) -> f32 {
    if (m >= gemm_m() || k >= gemm_k()) { return 0.0; }
    let hw = p.h * p.w;
    let n = m / hw;
    let pix = m - n * hw;
    let iy = pix / p.w;
    let ix = pix - iy * p.w;
    let tap = tap_of(k);
    let oy = tap_source(iy, tap.y, p.sh, p.dh, p.pad_t, p.oh);
    let ox = tap_source(ix, tap.z, p.sw, p.dw, p.pad_l, p.ow);
    if (oy < 0 || ox < 0) { return 0.0; }
    let oc = g * p.cout_g + tap.x;
    return f32(ddy[((n * p.cout + oc) * p.oh + u32(oy)) * p.ow + u32(ox)]);
}

fn load_b(g: u32, k: u32, n: u32) -> f32 {
    if (k >= gemm_k() || n >= gemm_n()) { return 0.0; }
    let khw = p.kh * p.kw;
    let ocg = k / khw;
    let t = k - ocg * khw;
    return f32(dgw[((g * p.cout_g + ocg) * p.cin_g + n) * khw + t]);
}

// Input pixel m of group g as a window of dy: the offset of its image's group channels, and its
// coordinate plus the padding (from which each tap subtracts its offset).
fn in_window(g: u32, m: u32) -> Win {
    let hw = p.h * p.w;
    if (m >= p.batch * hw) { return Win(0u, OUTSIDE, OUTSIDE); }
    let n = m / hw;
    let pix = m - n * hw;
    let iy = pix / p.w;
    let ix = pix - iy * p.w;
    return Win((n * p.cout + g * p.cout_g) * p.oh * p.ow, i32(iy + p.pad_t), i32(ix + p.pad_l));
}

alias ARows = Win4;

fn a_rows(g: u32, m: u32) -> Win4 {
    return win4(in_window(g, m), in_window(g, m + 1u), in_window(g, m + 2u), in_window(g, m + 3u));
}

// dy at output coordinate (t_y, t_x) · stride⁻¹ of the window offset `base` + channel offset
// `coff`: 0 unless both divide exactly and land inside the output.
fn dy_at(base: u32, coff: u32, ty: i32, tx: i32) -> f32 {
    if (ty < 0 || tx < 0) { return 0.0; }
    let oy = u32(ty) / p.sh;
    let ox = u32(tx) / p.sw;
    if (oy * p.sh != u32(ty) || ox * p.sw != u32(tx) || oy >= p.oh || ox >= p.ow) { return 0.0; }
    return f32(ddy[base + coff + oy * p.ow + ox]);
}

// The same for stride 1 (no division).
fn dy_at_s1(base: u32, coff: u32, oy: i32, ox: i32) -> f32 {
    if (u32(oy) >= p.oh || u32(ox) >= p.ow) { return 0.0; }
    return f32(ddy[base + coff + u32(oy) * p.ow + u32(ox)]);
}

// Four input pixels at tap k = (ocg, ky, kx).
fn load_a4(g: u32, r: Win4, k: u32) -> vec4<f32> {
    if (k >= gemm_k()) { return vec4<f32>(0.0); }
    let tap = tap_of(k);
    let coff = tap.x * p.oh * p.ow;
    let y = r.y - vec4<i32>(i32(tap.y * p.dh));
    let x = r.x - vec4<i32>(i32(tap.z * p.dw));
    if (p.sh == 1u && p.sw == 1u) {
        return vec4<f32>(dy_at_s1(r.base.x, coff, y.x, x.x), dy_at_s1(r.base.y, coff, y.y, x.y),
                         dy_at_s1(r.base.z, coff, y.z, x.z), dy_at_s1(r.base.w, coff, y.w, x.w));
    }
    return vec4<f32>(dy_at(r.base.x, coff, y.x, x.x), dy_at(r.base.y, coff, y.y, x.y),
                     dy_at(r.base.z, coff, y.z, x.z), dy_at(r.base.w, coff, y.w, x.w));
}

// Four input channels: weight entries strided by kh·kw.
struct BCols {
    idx: u32,
    valid: u32,
}

fn b_cols(g: u32, n: u32) -> BCols {
    return BCols((g * p.cout_g * p.cin_g + n) * p.kh * p.kw, valid4(n, p.cin_g));
}

fn load_b4(g: u32, k: u32, c: BCols) -> vec4<f32> {
    if (k >= gemm_k()) { return vec4<f32>(0.0); }
    let khw = p.kh * p.kw;
    let ocg = k / khw;
    let i = c.idx + ocg * p.cin_g * khw + (k - ocg * khw);
    if (c.valid == 4u) {
        return vec4<f32>(f32(dgw[i]), f32(dgw[i + khw]), f32(dgw[i + 2u * khw]), f32(dgw[i + 3u * khw]));
    }
    var v = vec4<f32>(0.0);
    if (c.valid > 0u) { v.x = f32(dgw[i]); }
    if (c.valid > 1u) { v.y = f32(dgw[i + khw]); }
    if (c.valid > 2u) { v.z = f32(dgw[i + 2u * khw]); }
    return v;
}

fn store_c(g: u32, m: u32, n: u32, acc: f32) {
    let c = g * p.cin_g + n;
    let hw = p.h * p.w;
    let img = m / hw;
    let pix = m - img * hw;
    var v = acc;
    if (p.has_bias != 0u) { v = v + f32(dbias[c]); }
    let idx = (img * p.cin + c) * hw + pix;
    if (p.accumulate != 0u) { v = v + f32(ddx[idx]); }
    ddx[idx] = act(post_op(p.act_len, p.act_op, p.act_a, p.act_b, v));
}
