// Pooling on (N, C, H, W): windowed max / average and global average, forward and backward.
// A window follows the convolution index rule with a depthwise geometry (ops::pool::Pool2d):
// output (oy, ox) with tap (ky, kx) reads (oy·sh + ky·dh − pad_t, ox·sw + kx·dw − pad_l);
// taps in the padding are skipped (max) or count as zeros (average with count_pad).
// Forward: one invocation per output. Backward: one invocation per input element that gathers
// from the windows covering it (overlapping windows add up; deterministic, no atomics).

struct Params {
    planes: u32,    // N·C
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    dh: u32,
    dw: u32,
    pad_t: u32,
    pad_l: u32,
    count_pad: u32, // average: divide by kh·kw (1) or by the taps inside the input (0)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// The input coordinate of output coordinate `o` at tap `k`, or -1 in the padding.
fn tap(o: u32, k: u32, s: u32, d: u32, pad: u32, len: u32) -> i32 {
    let i = i32(o * s + k * d) - i32(pad);
    if (i < 0 || i >= i32(len)) { return -1; }
    return i;
}

// The output coordinate whose tap `k` reads input coordinate `i`, or -1.
fn source(i: u32, k: u32, s: u32, d: u32, pad: u32, out_len: u32) -> i32 {
    let t = i32(i + pad) - i32(k * d);
    if (t < 0) { return -1; }
    let o = u32(t) / s;
    if (o * s != u32(t) || o >= out_len) { return -1; }
    return i32(o);
}

// Taps of output row `oy` (or column) that land inside the input.
fn inside_y(oy: u32) -> u32 {
    var n = 0u;
    for (var k = 0u; k < p.kh; k = k + 1u) {
        if (tap(oy, k, p.sh, p.dh, p.pad_t, p.h) >= 0) { n = n + 1u; }
    }
    return n;
}

fn inside_x(ox: u32) -> u32 {
    var n = 0u;
    for (var k = 0u; k < p.kw; k = k + 1u) {
        if (tap(ox, k, p.sw, p.dw, p.pad_l, p.w) >= 0) { n = n + 1u; }
    }
    return n;
}

// The average's divisor for output (oy, ox).
fn divisor(oy: u32, ox: u32) -> f32 {
    if (p.count_pad != 0u) { return f32(p.kh * p.kw); }
    return f32(inside_y(oy) * inside_x(ox));
}

@group(0) @binding(1) var<storage, read> mf_x: array<act>;          // (N, C, H, W)
@group(0) @binding(2) var<storage, read_write> mf_y: array<act>;    // (N, C, OH, OW)
@group(0) @binding(3) var<storage, read_write> mf_arg: array<u32>;  // (N, C, OH, OW)

// A window's maximum so far and its flat index into x (0xffffffff: no tap yet).
struct MaxPick { best: f32, arg: u32 }

// `m` after the tap at x[j]: the first (window order, strict >) that reaches the maximum wins.
fn max_pick(m: MaxPick, j: u32) -> MaxPick {
    let v = f32(mf_x[j]);
    if (m.arg == 0xffffffffu || beats_max(v, m.best)) {
        return MaxPick(v, j);
    }
    return m;
}

// y = max over the window's taps inside the input; arg = the flat index into x of the first
// (window order, strict >) that reaches it: the state max_backward needs.
@compute @workgroup_size(256)
fn max_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    let ohw = p.oh * p.ow;
    if (i >= p.planes * ohw) { return; }
    let plane = i / ohw;
    let oy = (i - plane * ohw) / p.ow;
    let ox = i - plane * ohw - oy * p.ow;
    let base = plane * p.h * p.w;
    var m = MaxPick(0.0, 0xffffffffu);
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        let iy = tap(oy, ky, p.sh, p.dh, p.pad_t, p.h);
        if (iy < 0) { continue; }
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            let ix = tap(ox, kx, p.sw, p.dw, p.pad_l, p.w);
            if (ix < 0) { continue; }
            m = max_pick(m, base + u32(iy) * p.w + u32(ix));
        }
    }
    mf_y[i] = act(m.best);
    mf_arg[i] = m.arg;
}

@group(0) @binding(1) var<storage, read> mb_dy: array<act>;        // (N, C, OH, OW)
@group(0) @binding(2) var<storage, read> mb_arg: array<u32>;       // (N, C, OH, OW)
@group(0) @binding(3) var<storage, read_write> mb_dx: array<act>;  // (N, C, H, W)
@group(0) @binding(4) var<storage, read> mb_y: array<act>;         // (N, C, OH, OW), _out only

// Σ dy over the windows covering input element j whose argmax is j (`sum`), and one such
// window (`o`; 0xffffffff for none).
struct MaxGrad { sum: f32, o: u32 }

fn max_grad_sum(j: u32) -> MaxGrad {
    let hw = p.h * p.w;
    let plane = j / hw;
    let iy = (j - plane * hw) / p.w;
    let ix = j - plane * hw - iy * p.w;
    let base = plane * p.oh * p.ow;
    var acc = 0.0;
    var hit = 0xffffffffu;
    if (p.dh == 1u && p.dw == 1u) {
        // Undilated: the taps reaching iy are ky = ry + a·sh, from output row qy − a (iy + pad_t =
        // qy·sh + ry), so no division per tap; the same order as below.
        let qy = (iy + p.pad_t) / p.sh;
        let qx = (ix + p.pad_l) / p.sw;
        let rx = ix + p.pad_l - qx * p.sw;
        var oy = i32(qy);
        for (var ky = iy + p.pad_t - qy * p.sh; ky < p.kh && oy >= 0; ky = ky + p.sh) {
            if (u32(oy) < p.oh) {
                var ox = i32(qx);
                for (var kx = rx; kx < p.kw && ox >= 0; kx = kx + p.sw) {
                    let o = base + u32(oy) * p.ow + u32(ox);
                    if (u32(ox) < p.ow && mb_arg[o] == j) {
                        acc = acc + f32(mb_dy[o]);
                        hit = o;
                    }
                    ox = ox - 1;
                }
            }
            oy = oy - 1;
        }
        return MaxGrad(acc, hit);
    }
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        let oy = source(iy, ky, p.sh, p.dh, p.pad_t, p.oh);
        if (oy < 0) { continue; }
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            let ox = source(ix, kx, p.sw, p.dw, p.pad_l, p.ow);
            if (ox < 0) { continue; }
            let o = base + u32(oy) * p.ow + u32(ox);
            if (mb_arg[o] == j) {
                acc = acc + f32(mb_dy[o]);
                hit = o;
            }
        }
    }
    return MaxGrad(acc, hit);
}

// dx[j] = Σ dy over the windows covering j whose argmax is j.
@compute @workgroup_size(256)
fn max_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let j = linear_id(wid, nwg, lid);
    if (j >= p.planes * p.h * p.w) { return; }
    mb_dx[j] = act(max_grad_sum(j).sum);
}

// max_backward followed by the gradient of the neuron whose output is the pool's input
// (`GRAD_OP`): dx[j] = op'(from that output at j) · Σ dy — one dispatch for ReLU → max pool's
// backward. The neuron's output at j is read from the pool's output (mb_y) at a window whose
// argmax is j, which holds exactly that value, so the pool's input need not outlive the forward
// pass; where no window picked j, dx is 0 (Σ dy is).
@compute @workgroup_size(256)
fn max_backward_out(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let j = linear_id(wid, nwg, lid);
    if (j >= p.planes * p.h * p.w) { return; }
    let g = max_grad_sum(j);
    var dx = 0.0;
    if (g.o != 0xffffffffu) {
        dx = grad_from_out(f32(mb_y[g.o]), g.sum);
    }
    mb_dx[j] = act(dx);
}

// Windows that tile the input exactly (stride = window, no dilation or padding, every input
// element in one window: 2×2/2 on an even image, say). The window and the output's width are
// pipeline constants, so the index arithmetic divides by constants and the tap loops unroll;
// the backward runs per window, writing each of its elements once, instead of per element.
// The same window order and ties as the general kernels.
override TILE_KH: u32 = 2u;
override TILE_KW: u32 = 2u;
override TILE_OW: u32 = 1u;
override TILE_OHW: u32 = 1u; // OH·OW

// The flat input index of window i's first tap (its row stride is TILE_OW·TILE_KW).
fn tiled_window(i: u32) -> u32 {
    let plane = i / TILE_OHW;
    let oy = (i - plane * TILE_OHW) / TILE_OW;
    let ox = i - plane * TILE_OHW - oy * TILE_OW;
    return (plane * TILE_OHW * TILE_KW + oy * TILE_OW * TILE_KW) * TILE_KH + ox * TILE_KW;
}

@compute @workgroup_size(256)
fn max_forward_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.planes * TILE_OHW) { return; }
    let first = tiled_window(i);
    let w = TILE_OW * TILE_KW;
    var m = MaxPick(0.0, 0xffffffffu);
    for (var ky = 0u; ky < TILE_KH; ky = ky + 1u) {
        for (var kx = 0u; kx < TILE_KW; kx = kx + 1u) {
            m = max_pick(m, first + ky * w + kx);
        }
    }
    mf_y[i] = act(m.best);
    mf_arg[i] = m.arg;
}

// Window i's gradient `g` into its argmax's element, zeros into the others.
fn max_backward_window(i: u32, g: f32) {
    let first = tiled_window(i);
    let w = TILE_OW * TILE_KW;
    let arg = mb_arg[i];
    for (var ky = 0u; ky < TILE_KH; ky = ky + 1u) {
        for (var kx = 0u; kx < TILE_KW; kx = kx + 1u) {
            let j = first + ky * w + kx;
            mb_dx[j] = act(select(0.0, g, j == arg));
        }
    }
}

// max_backward on tiling windows: one invocation per window.
@compute @workgroup_size(256)
fn max_backward_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.planes * TILE_OHW) { return; }
    max_backward_window(i, f32(mb_dy[i]));
}

// max_backward_out on tiling windows: the neuron's gradient from the window's output.
@compute @workgroup_size(256)
fn max_backward_out_tiled(@builtin(workgroup_id) wid: vec3<u32>,
                          @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.planes * TILE_OHW) { return; }
    max_backward_window(i, grad_from_out(f32(mb_y[i]), f32(mb_dy[i])));
}

@group(0) @binding(1) var<storage, read> af_x: array<act>;        // (N, C, H, W)
@group(0) @binding(2) var<storage, read_write> af_y: array<act>;  // (N, C, OH, OW)

// y = Σ taps inside the input / divisor
@compute @workgroup_size(256)
fn avg_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    let ohw = p.oh * p.ow;
    if (i >= p.planes * ohw) { return; }
    let plane = i / ohw;
    let oy = (i - plane * ohw) / p.ow;
    let ox = i - plane * ohw - oy * p.ow;
    let base = plane * p.h * p.w;
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        let iy = tap(oy, ky, p.sh, p.dh, p.pad_t, p.h);
        if (iy < 0) { continue; }
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            let ix = tap(ox, kx, p.sw, p.dw, p.pad_l, p.w);
            if (ix < 0) { continue; }
            acc = acc + f32(af_x[base + u32(iy) * p.w + u32(ix)]);
        }
    }
    af_y[i] = act(acc / divisor(oy, ox));
}

@group(0) @binding(1) var<storage, read> ab_dy: array<act>;       // (N, C, OH, OW)
@group(0) @binding(2) var<storage, read_write> ab_dx: array<act>; // (N, C, H, W)

// dx[j] = Σ dy / divisor over the windows covering j
@compute @workgroup_size(256)
fn avg_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let j = linear_id(wid, nwg, lid);
    let hw = p.h * p.w;
    if (j >= p.planes * hw) { return; }
    let plane = j / hw;
    let iy = (j - plane * hw) / p.w;
    let ix = j - plane * hw - iy * p.w;
    let base = plane * p.oh * p.ow;
    var acc = 0.0;
    if (p.dh == 1u && p.dw == 1u) {
        // As in max_grad_sum: the covering windows without a division per tap, in the same order.
        let qy = (iy + p.pad_t) / p.sh;
        let qx = (ix + p.pad_l) / p.sw;
        let rx = ix + p.pad_l - qx * p.sw;
        var oy = i32(qy);
        for (var ky = iy + p.pad_t - qy * p.sh; ky < p.kh && oy >= 0; ky = ky + p.sh) {
            if (u32(oy) < p.oh) {
                var ox = i32(qx);
                for (var kx = rx; kx < p.kw && ox >= 0; kx = kx + p.sw) {
                    if (u32(ox) < p.ow) {
                        let v = f32(ab_dy[base + u32(oy) * p.ow + u32(ox)]);
                        acc = acc + v / divisor(u32(oy), u32(ox));
                    }
                    ox = ox - 1;
                }
            }
            oy = oy - 1;
        }
        ab_dx[j] = act(acc);
        return;
    }
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        let oy = source(iy, ky, p.sh, p.dh, p.pad_t, p.oh);
        if (oy < 0) { continue; }
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            let ox = source(ix, kx, p.sw, p.dw, p.pad_l, p.ow);
            if (ox < 0) { continue; }
            acc = acc + f32(ab_dy[base + u32(oy) * p.ow + u32(ox)]) / divisor(u32(oy), u32(ox));
        }
    }
    ab_dx[j] = act(acc);
}

@group(0) @binding(1) var<storage, read> gf_x: array<act>;        // (N, C, H, W)
@group(0) @binding(2) var<storage, read_write> gf_y: array<act>;  // (N, C)

var<workgroup> partial: array<f32, 256>;

// y[plane] = mean of the plane: one workgroup per plane, coalesced strided sum, tree combine.
@compute @workgroup_size(256)
fn global_avg_forward(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let plane = group_id(wid, nwg);
    let hw = p.h * p.w;
    var acc = 0.0;
    if (plane < p.planes) {
        for (var j = lid; j < hw; j = j + 256u) {
            acc = acc + f32(gf_x[plane * hw + j]);
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            partial[lid] = partial[lid] + partial[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u && plane < p.planes) {
        gf_y[plane] = act(partial[0] / f32(hw));
    }
}

@group(0) @binding(1) var<storage, read> gb_dy: array<act>;       // (N, C)
@group(0) @binding(2) var<storage, read_write> gb_dx: array<act>; // (N, C, H, W)

// dx = dy / (H·W) broadcast over each plane
@compute @workgroup_size(256)
fn global_avg_backward(@builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    let j = linear_id(wid, nwg, lid);
    let hw = p.h * p.w;
    if (j >= p.planes * hw) { return; }
    gb_dx[j] = act(f32(gb_dy[j / hw]) / f32(hw));
}
