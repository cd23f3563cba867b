// Shared by the three implicit-GEMM convolution modules (conv_fwd, conv_dgrad, conv_wgrad), after
// geometry.wgsl: their split of K and the loaders' index helpers. Each module is [geometry, this,
// its loaders, gemm_core.wgsl]; the loaders map GEMM coordinates to tensor indices, the main loop
// is shared with matmul so a faster core speeds up both.

// Workgroup z is group · splits + split in each module (one split where K is not split). Each
// module's full_k() is its whole K and gemm_k() the K one workgroup walks (a split's chunk).
fn group_of(z: u32) -> u32 { return z / p.splits; }

// Workgroup z's split: its first K index and its length.
fn split_range(z: u32) -> vec2<u32> {
    let off = (z % p.splits) * p.k_chunk;
    return vec2<u32>(off, min(gemm_k(), full_k() - min(off, full_k())));
}

// `k` in the mixed radix (·, outer / inner, inner): (k / outer, (k mod outer) / inner, k mod inner).
fn decompose(k: u32, outer: u32, inner: u32) -> vec3<u32> {
    let hi = k / outer;
    let t = k - hi * outer;
    let mid = t / inner;
    return vec3<u32>(hi, mid, t - mid * inner);
}

// The two divisors the main loop's K index is decomposed by at every step, as pipeline
// constants where the launch gives them (0: the uniform's value): kh·kw and kw of the filter
// (the forward) or of the stride phase (the data gradient), OH·OW and OW (the weight gradient).
// A division by a constant compiles to a multiply and a shift; by a uniform, to a long sequence
// per K step.
override K_OUTER: u32 = 0u;
override K_INNER: u32 = 0u;

fn k_outer(uniform_value: u32) -> u32 { return select(uniform_value, K_OUTER, K_OUTER != 0u); }
fn k_inner(uniform_value: u32) -> u32 { return select(uniform_value, K_INNER, K_INNER != 0u); }

// Tap `k` of the implicit im2col matrix as (icg, ky, kx): columns are (C_in/g)·kh·kw taps.
fn tap_of(k: u32) -> vec3<u32> {
    return decompose(k, p.kh * p.kw, p.kw);
}

// Flat index into x (N, C_in, H, W) read by output pixel `m` = (n, oy, ox) at tap `k` =
// (icg, ky, kx) of group `g`, or -1 where the tap falls in the padding (it reads zero).
// The implicit im2col matrix: rows are output pixels, columns are (C_in/g)·kh·kw taps.
fn x_tap(g: u32, m: u32, k: u32) -> i32 {
    let ohw = p.oh * p.ow;
    let n = m / ohw;
    let pix = m - n * ohw;
    let oy = pix / p.ow;
    let ox = pix - oy * p.ow;
    let tap = tap_of(k);
    let iy = i32(oy * p.sh + tap.y * p.dh) - i32(p.pad_t);
    let ix = i32(ox * p.sw + tap.z * p.dw) - i32(p.pad_l);
    if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) {
        return -1;
    }
    let c = g * p.cin_g + tap.x;
    return i32(((n * p.cin + c) * p.h + u32(iy)) * p.w + u32(ix));
}

// The GEMM loaders split that rule in two halves, one fixed over the K loop (prepared once per
// invocation by a_rows/b_cols) and one per K step, so each step costs one decomposition of k per
// four values. A `Win` is the fixed half for one row or column: an offset into a tensor and a 2-D
// coordinate to which the per-step half adds its own; one outside the problem gets coordinates
// no step can bring back in range, so it reads zeros without a separate check.
struct Win {
    base: u32,
    y: i32,
    x: i32,
}

const OUTSIDE: i32 = -1073741824;

// Four windows, one per lane.
struct Win4 {
    base: vec4<u32>,
    y: vec4<i32>,
    x: vec4<i32>,
}

fn win4(w0: Win, w1: Win, w2: Win, w3: Win) -> Win4 {
    return Win4(vec4<u32>(w0.base, w1.base, w2.base, w3.base), vec4<i32>(w0.y, w1.y, w2.y, w3.y),
                vec4<i32>(w0.x, w1.x, w2.x, w3.x));
}

// Output pixel m of group g as the window of x it reads: the offset of its image's group
// channels, and the input coordinate of tap (0, 0).
fn out_window(g: u32, m: u32) -> Win {
    let ohw = p.oh * p.ow;
    if (m >= p.batch * ohw) { return Win(0u, OUTSIDE, OUTSIDE); }
    let n = m / ohw;
    let pix = m - n * ohw;
    let oy = pix / p.ow;
    let ox = pix - oy * p.ow;
    return Win((n * p.cin + g * p.cin_g) * p.h * p.w, i32(oy * p.sh) - i32(p.pad_t),
               i32(ox * p.sw) - i32(p.pad_l));
}

// Number of the four lines n..n+3 below `count`.
fn valid4(n: u32, count: u32) -> u32 {
    return select(0u, min(count - n, 4u), n < count);
}
