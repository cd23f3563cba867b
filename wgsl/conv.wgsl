// Shared by the three implicit-GEMM convolution modules (conv_fwd, conv_dgrad, conv_wgrad): the
// geometry of one 2-D convolution and its index rule. Each module is [this, its loaders,
// gemm_core.wgsl]; the loaders map GEMM coordinates to tensor indices, the main loop is shared
// with matmul so a faster core speeds up both.
//
// Index rule (ops::conv::ConvGeometry): output (oy, ox) with tap (ky, kx) reads input
// (oy·sh + ky·dh − pad_t, ox·sw + kx·dw − pad_l), zero outside. Layouts: x (N, C_in, H, W),
// w (C_out, C_in/g, kh, kw), y (N, C_out, OH, OW). 1-D convolutions are H = 1.

struct Params {
    batch: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    oh: u32,
    ow: u32,
    groups: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    dh: u32,
    dw: u32,
    pad_t: u32,
    pad_l: u32,
    cin_g: u32,     // C_in / groups
    cout_g: u32,    // C_out / groups
    has_bias: u32,  // epilogue adds bias[channel] (forward-type modules)
    splits: u32,    // split-K factor (weight gradient)
    k_chunk: u32,   // K per split, a multiple of the GEMM's K step (weight gradient)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// Tap `k` of the implicit im2col matrix as (icg, ky, kx): columns are (C_in/g)·kh·kw taps.
fn tap_of(k: u32) -> vec3<u32> {
    let khw = p.kh * p.kw;
    let icg = k / khw;
    let t = k - icg * khw;
    let ky = t / p.kw;
    return vec3<u32>(icg, ky, t - ky * p.kw);
}

// Flat index into x (N, C_in, H, W) read by output pixel `m` = (n, oy, ox) at tap (icg, ky, kx)
// of group `g`, or -1 where the tap falls in the padding (it reads zero). The pixel part depends
// on `m` only, the tap part on `tap` only: a loader calling this for several pixels and one tap
// (or the reverse) shares the divisions, and those of an index fixed over the K loop are hoisted.
fn x_index(g: u32, m: u32, tap: vec3<u32>) -> i32 {
    let ohw = p.oh * p.ow;
    let n = m / ohw;
    let pix = m - n * ohw;
    let oy = pix / p.ow;
    let ox = pix - oy * p.ow;
    let iy = i32(oy * p.sh + tap.y * p.dh) - i32(p.pad_t);
    let ix = i32(ox * p.sw + tap.z * p.dw) - i32(p.pad_l);
    if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) {
        return -1;
    }
    let c = g * p.cin_g + tap.x;
    return i32(((n * p.cin + c) * p.h + u32(iy)) * p.w + u32(ix));
}

// The same for tap index `k`: the implicit im2col matrix, rows output pixels, columns taps.
fn x_tap(g: u32, m: u32, k: u32) -> i32 {
    return x_index(g, m, tap_of(k));
}
