// Convolution backward-data as a gather-style implicit GEMM, one group per workgroup z:
//   M = N·H·W (input pixels), N = C_in/g, K = (C_out/g)·kh·kw,
//   A(m, k) = dy at the output pixel whose tap k reads input pixel m — found by inverting the
//   index rule, oy = (iy + pad_t − ky·dh) / sh, valid only when that divides exactly and lands
//   inside the output — B(k, n) = w of the group, read as (C_out/g·kh·kw, C_in/g).
// Strided (with dilation 1) it runs as one dispatch per stride phase: input rows iy ≡ py (mod sh)
// are reached only by taps ky ≡ py + pad_t (mod sh), and for those oy = i + off_y − a exactly
// (iy = iy0 + i·sh, ky = ky0 + a·sh), so each phase is a dense stride-1 GEMM over its own pixels
// and taps, where one dispatch over all would multiply sh·sw times as many zeros.
// Every dx element is written once (no col2im scatter, no atomics). Also the forward of a
// conv-transpose, so the epilogue can add a bias per dx channel.

@group(0) @binding(1) var<storage, read> ddy: array<act>;       // (N, C_out, OH, OW)
@group(0) @binding(2) var<storage, read> dgw: array<act>;       // (C_out, C_in/g, kh, kw)
@group(0) @binding(3) var<storage, read> dbias: array<act>;     // (C_in,), or any buffer
@group(0) @binding(4) var<storage, read_write> ddx: array<act>; // (N, C_in, H, W)

fn gemm_m() -> u32 { return p.batch * p.ph_h * p.ph_w; }
fn gemm_n() -> u32 { return p.cin_g; }
// This phase's K, and the K this workgroup walks: all of it, or one split's chunk.
fn full_k() -> u32 { return p.cout_g * p.ph_kh * p.ph_kw; }
fn gemm_k() -> u32 { return select(full_k(), p.k_chunk, p.splits > 1u); }
fn a_k_fastest() -> bool { return false; }
fn b_n_fastest() -> bool { return false; }
// Staged four m (n) at one k (gemm_core.wgsl's w-units), read one element at a time.
fn a_k4() -> bool { return false; }
fn b_k4() -> bool { return false; }

// Workgroup z is group · splits + split (unphased only). Split s walks K from s·k_chunk and
// writes its partial product to its own slab of `ddx` (splits, N, C_in, H, W), summed with the
// bias and the neuron by matmul.wgsl's gemm_sum. With one split ddx is dx and the epilogue is here.

// Tap k of this phase as (output channel in the group, a, b).
fn phase_tap(k: u32) -> vec3<u32> {
    return decompose(k, k_outer(p.ph_kh * p.ph_kw), k_inner(p.ph_kw));
}

// Offset of phase tap (a, b) in a (kh, kw) filter.
fn filter_tap(a: u32, b: u32) -> u32 {
    if (p.phased == 0u) { return a * p.kw + b; }
    return (p.ky0 + a * p.sh) * p.kw + p.kx0 + b * p.sw;
}

// Offset in an (H, W) plane of pixel `pix` of this phase's (ph_h, ph_w) grid.
fn plane_pixel(pix: u32) -> u32 {
    if (p.phased == 0u) { return pix; }
    let i = pix / p.ph_w;
    let j = pix - i * p.ph_w;
    return (p.iy0 + i * p.sh) * p.w + p.ix0 + j * p.sw;
}

// The scalar meaning of the operands (the main loop stages through a_rows/load_a4, b_cols/load_b4).
fn load_a(z: u32, m: u32, k: u32) -> f32 {
    if (m >= gemm_m() || k >= gemm_k()) { return 0.0; }
    let r = a_rows(z, m);
    return load_a4(z, r, k).x;
}

fn load_b(z: u32, k: u32, n: u32) -> f32 {
    if (k >= gemm_k() || n >= gemm_n()) { return 0.0; }
    return load_b4(z, k, b_cols(z, n)).x;
}

// Input pixel m of group g (of this phase) as a window of dy: the offset of its image's group
// channels, and its coordinate plus the padding (or the phase's offset), from which each tap
// subtracts its own.
fn in_window(g: u32, m: u32) -> Win {
    let hw = p.ph_h * p.ph_w;
    if (m >= p.batch * hw) { return Win(0u, OUTSIDE, OUTSIDE); }
    let n = m / hw;
    let pix = m - n * hw;
    let i = pix / p.ph_w;
    let j = pix - i * p.ph_w;
    return Win((n * p.cout + g * p.cout_g) * p.oh * p.ow, i32(i) + p.off_y, i32(j) + p.off_x);
}

struct ARows {
    win: Win4,
    split: vec2<u32>,
}

fn a_rows(z: u32, m: u32) -> ARows {
    let g = group_of(z);
    return ARows(win4(in_window(g, m), in_window(g, m + 1u), in_window(g, m + 2u),
                      in_window(g, m + 3u)), split_range(z));
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

// Four input pixels at tap k = (ocg, a, b).
fn load_a4(z: u32, rows: ARows, k: u32) -> vec4<f32> {
    if (k >= rows.split.y) { return vec4<f32>(0.0); }
    let r = rows.win;
    let tap = phase_tap(rows.split.x + k);
    let coff = tap.x * p.oh * p.ow;
    let y = r.y - vec4<i32>(i32(tap.y * p.kstep_y));
    let x = r.x - vec4<i32>(i32(tap.z * p.kstep_x));
    if (p.phased != 0u || (p.sh == 1u && p.sw == 1u)) {
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
    split: vec2<u32>,
}

fn b_cols(z: u32, n: u32) -> BCols {
    let g = group_of(z);
    return BCols((g * p.cout_g * p.cin_g + n) * p.kh * p.kw, valid4(n, p.cin_g), split_range(z));
}

fn load_b4(z: u32, k: u32, c: BCols) -> vec4<f32> {
    if (k >= c.split.y) { return vec4<f32>(0.0); }
    let khw = p.kh * p.kw;
    let tap = phase_tap(c.split.x + k);
    let i = c.idx + tap.x * p.cin_g * khw + filter_tap(tap.y, tap.z);
    if (c.valid == 4u) {
        return vec4<f32>(f32(dgw[i]), f32(dgw[i + khw]), f32(dgw[i + 2u * khw]), f32(dgw[i + 3u * khw]));
    }
    var v = vec4<f32>(0.0);
    if (c.valid > 0u) { v.x = f32(dgw[i]); }
    if (c.valid > 1u) { v.y = f32(dgw[i + khw]); }
    if (c.valid > 2u) { v.z = f32(dgw[i + 2u * khw]); }
    return v;
}

fn store_c(z: u32, m: u32, n: u32, acc: f32) {
    let c = group_of(z) * p.cin_g + n;
    let phw = p.ph_h * p.ph_w;
    let img = m / phw;
    let pix = plane_pixel(m - img * phw);
    let idx = (img * p.cin + c) * p.h * p.w + pix;
    if (p.splits > 1u) {
        ddx[(z % p.splits) * p.batch * p.cin * p.h * p.w + idx] = act(acc);
        return;
    }
    var v = acc;
    if (p.has_bias != 0u) { v = v + f32(dbias[c]); }
    if (p.accumulate != 0u) { v = v + f32(ddx[idx]); }
    ddx[idx] = act(post_op(p.act_len, p.act_op, p.act_a, p.act_b, v));
}
