// Convolution weight gradient as an implicit GEMM with split-K, computing dwᵀ of the group:
//   M = (C_in/g)·kh·kw, N = C_out/g, K = N·OH·OW (every output pixel of every sample),
//   A = im2col(x)ᵀ, B = dyᵀ of the group as (N·OH·OW, C_out/g), stored transposed into dw.
// (Transposed so the long side of the small output — 576×64 for a ResNet 3×3 — is M, the side
// the GEMM tile is tallest along.)
// K is long and M·N small, so K is split over workgroup z, which holds group · splits + split;
// each split writes its partial dw to its own slab of `wout` (splits, C_out, C_in/g·kh·kw),
// summed afterwards in order (deterministic, no atomics: conv::param_grad::sum_partials). With one split `wout` is dw itself.

@group(0) @binding(1) var<storage, read> gx: array<act>;         // (N, C_in, H, W)
@group(0) @binding(2) var<storage, read> gdy: array<act>;        // (N, C_out, OH, OW)
@group(0) @binding(3) var<storage, read_write> wout: array<act>; // (splits, C_out, C_in/g, kh, kw)

fn gemm_m() -> u32 { return p.cin_g * p.kh * p.kw; }
fn gemm_n() -> u32 { return p.cout_g; }
fn full_k() -> u32 { return p.batch * p.oh * p.ow; }
fn gemm_k() -> u32 { return p.k_chunk; }
// x rows are contiguous along the output pixels k (stride 1); so are dy planes.
fn a_k_fastest() -> bool { return true; }
fn b_n_fastest() -> bool { return false; }
// Staged four m (n) at one k (gemm_core.wgsl's w-units), read one element at a time.
fn a_k4() -> bool { return false; }
fn b_k4() -> bool { return false; }

// The global K index of chunk-local `k`, or 0xffffffff past this split or past K.
fn global_k(z: u32, k: u32) -> u32 {
    let kg = (z % p.splits) * p.k_chunk + k;
    if (k >= p.k_chunk || kg >= full_k()) { return 0xffffffffu; }
    return kg;
}

// The scalar meaning of the operands (the main loop stages through a_rows/load_a4, b_cols/load_b4).
// im2col(x)ᵀ: tap `m` of output pixel `k`.
fn load_a(z: u32, m: u32, k: u32) -> f32 {
    let kg = global_k(z, k);
    if (m >= gemm_m() || kg == 0xffffffffu) { return 0.0; }
    let i = x_tap(group_of(z), kg, m);
    if (i < 0) { return 0.0; }
    return f32(gx[u32(i)]);
}

// dy of output channel `n` of the group at output pixel `k`.
fn load_b(z: u32, k: u32, n: u32) -> f32 {
    let kg = global_k(z, k);
    if (n >= gemm_n() || kg == 0xffffffffu) { return 0.0; }
    let g = group_of(z);
    let ohw = p.oh * p.ow;
    let img = kg / ohw;
    let pix = kg - img * ohw;
    return f32(gdy[(img * p.cout + g * p.cout_g + n) * ohw + pix]);
}

// Tap m of group g as a window of x: the offset of its channel and the input coordinate of
// output pixel (0, 0) through it.
fn tap_window(g: u32, m: u32) -> Win {
    if (m >= gemm_m()) { return Win(0u, OUTSIDE, OUTSIDE); }
    let tap = tap_of(m);
    return Win((g * p.cin_g + tap.x) * p.h * p.w, i32(tap.y * p.dh) - i32(p.pad_t),
               i32(tap.z * p.dw) - i32(p.pad_l));
}

struct ARows {
    w: Win4,
    split: vec2<u32>,
}

fn a_rows(z: u32, m: u32) -> ARows {
    let g = group_of(z);
    return ARows(win4(tap_window(g, m), tap_window(g, m + 1u), tap_window(g, m + 2u),
                      tap_window(g, m + 3u)), split_range(z));
}

fn x_at(base: u32, y: i32, x: i32) -> f32 {
    if (u32(y) >= p.h || u32(x) >= p.w) { return 0.0; }
    return f32(gx[base + u32(y) * p.w + u32(x)]);
}

// Four taps at output pixel k: the pixel is decomposed once.
fn load_a4(z: u32, r: ARows, k: u32) -> vec4<f32> {
    if (k >= r.split.y) { return vec4<f32>(0.0); }
    let px = decompose(r.split.x + k, k_outer(p.oh * p.ow), k_inner(p.ow)); // (n, oy, ox)
    let base = r.w.base + vec4<u32>(px.x * p.cin * p.h * p.w);
    let y = r.w.y + vec4<i32>(i32(px.y * p.sh));
    let x = r.w.x + vec4<i32>(i32(px.z * p.sw));
    return vec4<f32>(x_at(base.x, y.x, x.x), x_at(base.y, y.y, x.y), x_at(base.z, y.z, x.z),
                     x_at(base.w, y.w, x.w));
}

// Four output channels of the group: dy planes, strided by OH·OW.
struct BCols {
    idx: u32,
    valid: u32,
    split: vec2<u32>,
}

fn b_cols(z: u32, n: u32) -> BCols {
    let g = group_of(z);
    return BCols((g * p.cout_g + n) * p.oh * p.ow, valid4(n, p.cout_g), split_range(z));
}

fn load_b4(z: u32, k: u32, c: BCols) -> vec4<f32> {
    if (k >= c.split.y) { return vec4<f32>(0.0); }
    let kg = c.split.x + k;
    let ohw = k_outer(p.oh * p.ow);
    let img = kg / ohw;
    let i = img * p.cout * ohw + c.idx + (kg - img * ohw);
    if (c.valid == 4u) {
        return vec4<f32>(f32(gdy[i]), f32(gdy[i + ohw]), f32(gdy[i + 2u * ohw]), f32(gdy[i + 3u * ohw]));
    }
    var v = vec4<f32>(0.0);
    if (c.valid > 0u) { v.x = f32(gdy[i]); }
    if (c.valid > 1u) { v.y = f32(gdy[i + ohw]); }
    if (c.valid > 2u) { v.z = f32(gdy[i + 2u * ohw]); }
    return v;
}

fn store_c(z: u32, m: u32, n: u32, acc: f32) {
    let g = group_of(z);
    let s = z % p.splits;
    let idx = (s * p.cout + g * p.cout_g + n) * gemm_m() + m;
    // Set only without splits (the sum of the splits adds then).
    if (p.accumulate != 0u) {
        wout[idx] = act(acc + f32(wout[idx]));
        return;
    }
    wout[idx] = act(acc);
}
