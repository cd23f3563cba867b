// Convolution forward as an implicit GEMM, one group (and K split) per workgroup z:
//   M = N·OH·OW (output pixels), N = C_out/g, K = (C_in/g)·kh·kw,
//   A = im2col(x) (never materialised), B = wᵀ of the group, epilogue adds the bias.
// Also the backward-data of a conv-transpose (its adjoint relation).

@group(0) @binding(1) var<storage, read> fx: array<act>;        // (N, C_in, H, W)
@group(0) @binding(2) var<storage, read> fw: array<act>;        // (C_out, C_in/g, kh, kw)
@group(0) @binding(3) var<storage, read> fbias: array<act>;     // (C_out,), or any buffer
@group(0) @binding(4) var<storage, read_write> fy: array<act>;  // (N, C_out, OH, OW)

fn gemm_m() -> u32 { return p.batch * p.oh * p.ow; }
fn gemm_n() -> u32 { return p.cout_g; }
// The filter's length, and the K this workgroup walks: all of it, or one split's chunk.
fn full_k() -> u32 { return p.cin_g * p.kh * p.kw; }
fn gemm_k() -> u32 { return select(full_k(), p.k_chunk, p.splits > 1u); }
// Neighbouring m are neighbouring output columns, so neighbouring input columns (stride 1).
fn a_k_fastest() -> bool { return false; }
// A weight row (one output channel) is contiguous along k.
fn b_n_fastest() -> bool { return false; }
// Staged four m (n) at one k (gemm_core.wgsl's w-units), read one element at a time.
fn a_k4() -> bool { return false; }
fn b_k4() -> bool { return false; }

// Workgroup z is group · splits + split. Split s walks K from s·k_chunk; each writes its partial
// product to its own slab of `fy` (splits, N, C_out, OH, OW), summed with the bias and the neuron
// by matmul.wgsl's gemm_sum. With one split fy is y and the epilogue is here.

// The scalar meaning of the operands (the main loop stages through a_rows/load_a4, b_cols/load_b4).
fn load_a(z: u32, m: u32, k: u32) -> f32 {
    let r = split_range(z);
    if (m >= gemm_m() || k >= r.y) { return 0.0; }
    let i = x_tap(group_of(z), m, r.x + k);
    if (i < 0) { return 0.0; }
    return f32(fx[u32(i)]);
}

fn load_b(z: u32, k: u32, n: u32) -> f32 {
    let r = split_range(z);
    if (k >= r.y || n >= gemm_n()) { return 0.0; }
    return f32(fw[(group_of(z) * p.cout_g + n) * full_k() + r.x + k]);
}

struct ARows {
    win: Win4,
    split: vec2<u32>,
}

fn a_rows(z: u32, m: u32) -> ARows {
    let g = group_of(z);
    return ARows(win4(out_window(g, m), out_window(g, m + 1u), out_window(g, m + 2u),
                      out_window(g, m + 3u)), split_range(z));
}

// x at coordinate (y, x) of the window offset `base` + channel offset `coff`, 0 in the padding.
fn x_at(base: u32, coff: u32, y: i32, x: i32) -> f32 {
    if (u32(y) >= p.h || u32(x) >= p.w) { return 0.0; }
    return f32(fx[base + coff + u32(y) * p.w + u32(x)]);
}

// Four output pixels at tap k (of this split).
fn load_a4(z: u32, rows: ARows, k: u32) -> vec4<f32> {
    if (k >= rows.split.y) { return vec4<f32>(0.0); }
    let r = rows.win;
    let tap = decompose(rows.split.x + k, k_outer(p.kh * p.kw), k_inner(p.kw));
    let coff = tap.x * p.h * p.w;
    let y = r.y + vec4<i32>(i32(tap.y * p.dh));
    let x = r.x + vec4<i32>(i32(tap.z * p.dw));
    return vec4<f32>(x_at(r.base.x, coff, y.x, x.x), x_at(r.base.y, coff, y.y, x.y),
                     x_at(r.base.z, coff, y.z, x.z), x_at(r.base.w, coff, y.w, x.w));
}

// Four output channels: weight rows, strided by the filter's length, from this split's start.
struct BCols {
    idx: u32,
    valid: u32,
    len: u32,
}

fn b_cols(z: u32, n: u32) -> BCols {
    let r = split_range(z);
    return BCols((group_of(z) * p.cout_g + n) * full_k() + r.x, valid4(n, p.cout_g), r.y);
}

fn load_b4(z: u32, k: u32, c: BCols) -> vec4<f32> {
    let kk = full_k();
    if (k >= c.len) { return vec4<f32>(0.0); }
    let i = c.idx + k;
    if (c.valid == 4u) {
        return vec4<f32>(f32(fw[i]), f32(fw[i + kk]), f32(fw[i + 2u * kk]), f32(fw[i + 3u * kk]));
    }
    var v = vec4<f32>(0.0);
    if (c.valid > 0u) { v.x = f32(fw[i]); }
    if (c.valid > 1u) { v.y = f32(fw[i + kk]); }
    if (c.valid > 2u) { v.z = f32(fw[i + 2u * kk]); }
    return v;
}

fn store_c(z: u32, m: u32, n: u32, acc: f32) {
    let oc = group_of(z) * p.cout_g + n;
    let ohw = p.oh * p.ow;
    let img = m / ohw;
    let pix = m - img * ohw;
    let idx = (img * p.cout + oc) * ohw + pix;
    if (p.splits > 1u) {
        fy[(z % p.splits) * p.batch * p.cout * ohw + idx] = act(acc);
        return;
    }
    var v = acc;
    if (p.has_bias != 0u) { v = v + f32(fbias[oc]); }
    if (p.accumulate != 0u) { v = v + f32(fy[idx]); }
    fy[idx] = act(post_op(p.act_len, p.act_op, p.act_a, p.act_b, v));
}
