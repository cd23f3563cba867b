// Convolutions whose reduction is short: K = C_in·kh·kw ≤ 32 taps (groups 1) and C_out ≤ 64,
// a network's first layer (MNIST's 1 → 32 5×5, Inception's 3 → 32 3×3). The implicit GEMM
// spends its time there in K steps of 8 that each wait for their gathers, so these kernels
// loop over the taps directly instead.
//   short_k_forward:     y (N, C_out, OH, OW) = neuron(conv(x, w) + b (+ y)), one invocation per
//                        output pixel and 16 channels (grid: pixels / 256, then z = C_out / 16).
//   short_k_weight_grad: dw (C_out, K), and db (C_out) with a bias, per chunk of output pixels
//                        (grid: one workgroup per chunk); one chunk writes them itself.
//   short_k_grad_sum:    dw and db from a bias's chunks' partial rows (without a bias the host's
//                        `sum_partials` sums them): 8 outputs per workgroup.
// Pixel p is (n, oy, ox), ox fastest; tap t is (ci, ky, kx), kx fastest (OIHW: w[co·K + t]).
// Sums are f32 vec4s named by constants, so nothing lands in local memory.
// The uniform is geometry.wgsl's: `has_bias` (forward: add b; weight gradient: db too) and
// `accumulate` (into y forward; into dw, never db, where the weight gradient is one chunk, and in
// the sum) as there, `k_chunk` the output pixels per weight-gradient workgroup (a multiple of PB),
// `splits` the weight gradient's chunks, one group (cin_g = cin).

const WG: u32 = 256u;

// The geometry's tap counts and the output plane as pipeline constants (`short_k::constants`),
// so the tap loops unroll and pixels and taps decompose by dividing by constants.
override SK_CIN: u32 = 1u;
override SK_KH: u32 = 1u;
override SK_KW: u32 = 1u;
override SK_OW: u32 = 1u;
override SK_OHW: u32 = 1u; // OH·OW

fn taps() -> u32 {
    return SK_CIN * SK_KH * SK_KW;
}

fn pixels() -> u32 {
    return p.batch * SK_OHW;
}

// x[n, ci, iy, ix] for output pixel (n, oy, ox) and tap t = (ci, ky, kx); 0 in the padding.
fn tap_index(n: u32, oy: u32, ox: u32, ci: u32, ky: u32, kx: u32) -> i32 {
    let iy = i32(oy * p.sh + ky * p.dh) - i32(p.pad_t);
    let ix = i32(ox * p.sw + kx * p.dw) - i32(p.pad_l);
    if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) { return -1; }
    return i32(((n * p.cin + ci) * p.h + u32(iy)) * p.w + u32(ix));
}

// Pixel p as (n, oy, ox).
fn pixel_of(pix: u32) -> vec3<u32> {
    let n = pix / SK_OHW;
    let r = pix - n * SK_OHW;
    let oy = r / SK_OW;
    return vec3<u32>(n, oy, r - oy * SK_OW);
}

// Where (n, co, oy, ox) of y or dy lies.
fn out_index(px: vec3<u32>, co: u32) -> u32 {
    return ((px.x * p.cout + co) * p.oh + px.y) * p.ow + px.z;
}

@group(0) @binding(1) var<storage, read> fx: array<act>;
@group(0) @binding(2) var<storage, read> fw: array<f32>;   // (C_out, K)
@group(0) @binding(3) var<storage, read> fb: array<f32>;   // (C_out) when has_bias
@group(0) @binding(4) var<storage, read_write> fy: array<act>;

// The workgroup's 16 channels' weights, [tap][quad]: channels 16z + 4·quad .. +3.
var<workgroup> fws: array<vec4<f32>, 128>;

fn weight_or_zero(co: u32, t: u32) -> f32 {
    if (co >= p.cout) { return 0.0; }
    return fw[co * taps() + t];
}

fn put(px: vec3<u32>, co: u32, v: f32) {
    if (co >= p.cout) { return; }
    var o = v;
    if (p.has_bias != 0u) { o = o + fb[co]; }
    let i = out_index(px, co);
    if (p.accumulate != 0u) { o = o + f32(fy[i]); }
    fy[i] = act(post_op(p.act_len, p.act_op, p.act_a, p.act_b, o));
}

fn put4(px: vec3<u32>, co: u32, v: vec4<f32>) {
    put(px, co, v.x);
    put(px, co + 1u, v.y);
    put(px, co + 2u, v.z);
    put(px, co + 3u, v.w);
}

@compute @workgroup_size(256)
fn short_k_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let c0 = 16u * wid.z;
    if (lid < 4u * taps()) {
        let t = lid / 4u;
        let co = c0 + 4u * (lid % 4u);
        fws[lid] = vec4<f32>(weight_or_zero(co, t), weight_or_zero(co + 1u, t),
                             weight_or_zero(co + 2u, t), weight_or_zero(co + 3u, t));
    }
    workgroupBarrier();
    let pix = (wid.x + wid.y * nwg.x) * WG + lid;
    if (pix >= pixels()) { return; }
    let px = pixel_of(pix);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    // Taps t = (ci, ky, kx), kx fastest; each input row's bounds tested once.
    for (var ci = 0u; ci < SK_CIN; ci = ci + 1u) {
        for (var ky = 0u; ky < SK_KH; ky = ky + 1u) {
            let iy = i32(px.y * p.sh + ky * p.dh) - i32(p.pad_t);
            let row_in = iy >= 0 && iy < i32(p.h);
            let row = ((px.x * p.cin + ci) * p.h + u32(max(iy, 0))) * p.w;
            for (var kx = 0u; kx < SK_KW; kx = kx + 1u) {
                let ix = i32(px.z * p.sw + kx * p.dw) - i32(p.pad_l);
                var v = 0.0;
                if (row_in && ix >= 0 && ix < i32(p.w)) { v = f32(fx[row + u32(ix)]); }
                let f = 4u * ((ci * SK_KH + ky) * SK_KW + kx);
                a0 = a0 + v * fws[f];
                a1 = a1 + v * fws[f + 1u];
                a2 = a2 + v * fws[f + 2u];
                a3 = a3 + v * fws[f + 3u];
            }
        }
    }
    put4(px, c0, a0);
    put4(px, c0 + 4u, a1);
    put4(px, c0 + 8u, a2);
    put4(px, c0 + 12u, a3);
}

@group(0) @binding(1) var<storage, read> gx: array<act>;
@group(0) @binding(2) var<storage, read> gdy: array<act>;
// dw (C_out, K) where one chunk writes it, else rows of partial sums: (chunks, C_out·K), and
// with a bias each row followed by db's C_out.
@group(0) @binding(3) var<storage, read_write> gpart: array<f32>;
@group(0) @binding(4) var<storage, read_write> gdb: array<f32>; // db where one chunk writes it

// Pixels staged per block, and the padded row length of the staged tiles (distinct banks for
// the invocations reading one pixel of different taps or channels).
const PB: u32 = 32u;
const ROW: u32 = 33u;
// The x tile's row of ones after the 32 taps': the bias's sum is its "tap", Σ dy · 1.
const ONES: u32 = 32u;
var<workgroup> sdy: array<vec4<f32>, 528>; // [channel quad (16)][pixel (ROW)]: dy of 4 channels
var<workgroup> sxt: array<f32, 1089>;      // [tap (32), ones][pixel (ROW)]: x at the tap

// Tap t as (ci, ky, kx).
fn tap_of(t: u32) -> vec3<u32> {
    return vec3<u32>(t / (SK_KH * SK_KW), (t / SK_KW) % SK_KH, t % SK_KW);
}

// Sums per channel quad: its taps, then (with a bias) db's.
fn sums_per_quad() -> u32 {
    return taps() + p.has_bias;
}

// Where sum t of a quad reads x in the staged tile: tap t's row, the ones for db's.
fn x_row(t: u32) -> u32 {
    return select(t, ONES, t == taps()) * ROW;
}

// dy of channel quad q at staged pixel j (zeros past the chunk or the channels).
fn stage_dy(q: u32, j: u32, px: vec3<u32>, live: bool) {
    var d = vec4<f32>(0.0);
    let co = 4u * q;
    if (live && co < p.cout) {
        d.x = f32(gdy[out_index(px, co)]);
        if (co + 1u < p.cout) { d.y = f32(gdy[out_index(px, co + 1u)]); }
        if (co + 2u < p.cout) { d.z = f32(gdy[out_index(px, co + 2u)]); }
        if (co + 3u < p.cout) { d.w = f32(gdy[out_index(px, co + 3u)]); }
    }
    sdy[q * ROW + j] = d;
}

// x at tap t = (ci, ky, kx) of staged pixel j (zero past the chunk, the taps or the image).
fn stage_x(t: u32, k: vec3<u32>, j: u32, px: vec3<u32>, live: bool) {
    var v = 0.0;
    if (live && t < taps()) {
        let at = tap_index(px.x, px.y, px.z, k.x, k.y, k.z);
        if (at >= 0) { v = f32(gx[at]); }
    }
    sxt[t * ROW + j] = v;
}

// s plus channel quad q's dy times the staged x row starting at xr, over the block's pixels.
fn block_sum(s: vec4<f32>, q: u32, xr: u32) -> vec4<f32> {
    var a = s;
    for (var i = 0u; i < PB; i = i + 1u) {
        a = a + sdy[q * ROW + i] * sxt[xr + i];
    }
    return a;
}

// Invocation lid sums pairs lid, lid + 256 and lid + 512 of the (channel quad q, sum t) pairs, t
// fastest (the third only at 16 quads of 32 taps and a bias): dw[4q .. 4q+3, t] over its
// workgroup's chunk of output pixels, a block of PB at a time, or db[4q .. 4q+3] where t is the
// bias's. For the staging it is pixel j = lid % PB of the block and row r = lid / PB: channel
// quads r and r + 8, taps r, r + 8, r + 16 and r + 24 (their decompositions, and the pixel's
// once a block, are its only divisions).
@compute @workgroup_size(256)
fn short_k_weight_grad(@builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    let chunk = wid.x + wid.y * nwg.x;
    let start = chunk * p.k_chunk;
    if (start >= pixels()) { return; } // uniform: the whole workgroup leaves
    let end = min(pixels(), start + p.k_chunk);
    let per_quad = sums_per_quad();
    let pairs = (p.cout + 3u) / 4u * per_quad;
    let q0 = lid / per_quad;
    let t0 = lid % per_quad;
    let q1 = (lid + WG) / per_quad;
    let t1 = (lid + WG) % per_quad;
    let q2 = (lid + 2u * WG) / per_quad;
    let t2 = (lid + 2u * WG) % per_quad;
    let x0 = x_row(t0);
    let x1 = x_row(t1);
    let x2 = x_row(t2);
    let j = lid % PB;
    let r = lid / PB;
    let k0 = tap_of(r);
    let k1 = tap_of(r + 8u);
    let k2 = tap_of(r + 16u);
    let k3 = tap_of(r + 24u);
    if (p.has_bias != 0u && lid < PB) { sxt[ONES * ROW + lid] = 1.0; }
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    for (var base = start; base < end; base = base + PB) {
        let live = base + j < end;
        let px = pixel_of(min(base + j, end - 1u));
        stage_dy(r, j, px, live);
        stage_dy(r + 8u, j, px, live);
        stage_x(r, k0, j, px, live);
        stage_x(r + 8u, k1, j, px, live);
        stage_x(r + 16u, k2, j, px, live);
        stage_x(r + 24u, k3, j, px, live);
        workgroupBarrier();
        if (lid < pairs) { s0 = block_sum(s0, q0, x0); }
        if (lid + WG < pairs) { s1 = block_sum(s1, q1, x1); }
        if (lid + 2u * WG < pairs) { s2 = block_sum(s2, q2, x2); }
        workgroupBarrier();
    }
    if (lid < pairs) { put_grad(chunk, q0, t0, s0); }
    if (lid + WG < pairs) { put_grad(chunk, q1, t1, s1); }
    if (lid + 2u * WG < pairs) { put_grad(chunk, q2, t2, s2); }
}

// Sum t of quad q of chunk `chunk`: dw[4q .. 4q+3, t], or db[4q .. 4q+3] where t is the bias's.
fn put_grad(chunk: u32, q: u32, t: u32, s: vec4<f32>) {
    let co = 4u * q;
    let weights = p.cout * taps();
    // A partial row: dw's sums, then db's.
    let row = chunk * (weights + p.has_bias * p.cout);
    if (t == taps()) {
        put_bias(row + weights, co, s.x);
        if (co + 1u < p.cout) { put_bias(row + weights, co + 1u, s.y); }
        if (co + 2u < p.cout) { put_bias(row + weights, co + 2u, s.z); }
        if (co + 3u < p.cout) { put_bias(row + weights, co + 3u, s.w); }
        return;
    }
    put_grad1(row + co * taps() + t, s.x);
    if (co + 1u < p.cout) { put_grad1(row + (co + 1u) * taps() + t, s.y); }
    if (co + 2u < p.cout) { put_grad1(row + (co + 2u) * taps() + t, s.z); }
    if (co + 3u < p.cout) { put_grad1(row + (co + 3u) * taps() + t, s.w); }
}

// One sum into the partials, or added into dw itself (`accumulate`: one chunk, accumulating).
fn put_grad1(i: u32, v: f32) {
    if (p.accumulate != 0u) {
        gpart[i] = gpart[i] + v;
    } else {
        gpart[i] = v;
    }
}

// db[co]'s sum: written into db where one chunk writes it, else at `at` + co in the partials.
fn put_bias(at: u32, co: u32, v: f32) {
    if (p.splits == 1u) {
        gdb[co] = v;
    } else {
        gpart[at + co] = v;
    }
}

@group(0) @binding(1) var<storage, read> sg_part: array<f32>;      // (chunks, C_out·K + C_out)
@group(0) @binding(2) var<storage, read_write> sg_dw: array<f32>;  // (C_out, K)
@group(0) @binding(3) var<storage, read_write> sg_db: array<f32>;  // (C_out)

var<workgroup> sg_lanes: array<f32, 256>;

// dw and db from short_k_weight_grad's partial rows (`splits` of them, with a bias): reduce.wgsl's
// sum_lanes writing two tensors, so the bias costs no dispatch of its own. 8 outputs of a row
// per workgroup, 32 invocations each take every 32nd row (consecutive outputs, so loads
// coalesce), then a tree over the 32 in a fixed order; dw added into when `accumulate`.
@compute @workgroup_size(256)
fn short_k_grad_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let weights = p.cout * taps();
    let row = weights + p.cout;
    let col = group_id(wid, nwg) * 8u + lid % 8u;
    var acc = 0.0;
    if (col < row) {
        for (var l = lid / 8u; l < p.splits; l = l + 32u) {
            acc = acc + sg_part[l * row + col];
        }
    }
    sg_lanes[lid] = acc;
    workgroupBarrier();
    for (var s = 128u; s >= 8u; s = s >> 1u) {
        if (lid < s) {
            sg_lanes[lid] = sg_lanes[lid] + sg_lanes[lid + s];
        }
        workgroupBarrier();
    }
    if (lid < 8u && col < row) {
        let v = sg_lanes[lid];
        if (col >= weights) {
            sg_db[col - weights] = v;
        } else if (p.accumulate != 0u) {
            sg_dw[col] = sg_dw[col] + v;
        } else {
            sg_dw[col] = v;
        }
    }
}
