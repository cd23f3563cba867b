// The uniform of every convolution kernel (`ops::conv::uniform::params`): the geometry of one 2-D
// convolution and its index rule, shared by the three implicit-GEMM modules (with common.wgsl)
// and the short-reduction loops (short_k.wgsl).
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
    act_len: u32,   // fused post-op (forward-type modules): 0 = none, 1 = neuron act_op
    act_op: u32,
    act_a: f32,
    act_b: f32,
    accumulate: u32, // the epilogue adds to what the output holds (a gradient sum in place)
    // The data gradient's stride phase (conv_dgrad only; see grad_data.wgsl): the input pixels
    // (iy0 + i·sh, ix0 + j·sw), i < ph_h, j < ph_w, and the taps (ky0 + a·sh, kx0 + b·sw),
    // a < ph_kh, b < ph_kw, that reach them. Unphased: the whole input, every tap.
    phased: u32,
    ph_h: u32,
    ph_w: u32,
    ph_kh: u32,
    ph_kw: u32,
    iy0: u32,
    ix0: u32,
    ky0: u32,
    kx0: u32,
    off_y: i32,     // dy row of (i, a) = i + off_y − a·kstep_y (exact when phased or stride 1)
    off_x: i32,
    kstep_y: u32,
    kstep_x: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
