// Softmax and log-softmax over one axis, forward and backward (from the output y). The tensor is
// viewed as (outer, len, inner); element (o, k, i) is at (o·len + k)·inner + i.
//
// Two shapes of kernel:
//   *_rows: inner == 1 and long rows. One workgroup of 256 per row; each invocation folds a strided
//           share, then a shared-memory tree (no subgroup ops, any subgroup size).
//   *_cols: anything else. One invocation per (o, i) walks the axis; neighbouring invocations read
//           neighbouring i, so loads coalesce when inner > 1.
// Stable: the forward folds (running max m, Σ exp(x − m)) online, rescaling the sum when m grows.

struct Params {
    outer: u32,
    len: u32,
    inner: u32,
    log: u32, // 1: log-softmax
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;
const LOWEST: f32 = -3.40282347e+38;

var<workgroup> red: array<vec2<f32>, 256>;

// Folds v into the running (max, Σ exp(x − max)).
fn lse_push(a: vec2<f32>, v: f32) -> vec2<f32> {
    if (v > a.x) {
        return vec2<f32>(v, a.y * exp(a.x - v) + 1.0);
    }
    return vec2<f32>(a.x, a.y + exp(v - a.x));
}

// Merges two partial (max, Σ exp(x − max)).
fn lse_merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let m = max(a.x, b.x);
    return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

// y from x and the row's (max, sum).
fn softmax_out(x: f32, ms: vec2<f32>) -> f32 {
    if (p.log == 1u) {
        return x - ms.x - log(ms.y);
    }
    return exp(x - ms.x) / ms.y;
}

// dx from y, dy and the row's Σ dy·y (softmax) or Σ dy (log-softmax).
fn softmax_grad(y: f32, dy: f32, s: f32) -> f32 {
    if (p.log == 1u) {
        return dy - exp(y) * s;
    }
    return y * (dy - s);
}

// The term summed along the axis in the backward.
fn grad_term(y: f32, dy: f32) -> f32 {
    if (p.log == 1u) {
        return dy;
    }
    return dy * y;
}

@group(0) @binding(1) var<storage, read> sr_x: array<act>;       // (outer, len)
@group(0) @binding(2) var<storage, read_write> sr_y: array<act>; // (outer, len)

@compute @workgroup_size(256)
fn softmax_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let o = group_id(wid, nwg);
    if (o >= p.outer) { return; } // uniform: the whole workgroup leaves
    let base = o * p.len;
    var a = vec2<f32>(LOWEST, 0.0);
    for (var k = lid; k < p.len; k = k + WG) {
        a = lse_push(a, f32(sr_x[base + k]));
    }
    red[lid] = a;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red[lid] = lse_merge(red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    let ms = red[0];
    for (var k = lid; k < p.len; k = k + WG) {
        sr_y[base + k] = act(softmax_out(f32(sr_x[base + k]), ms));
    }
}

@group(0) @binding(1) var<storage, read> sc_x: array<act>;       // (outer, len, inner)
@group(0) @binding(2) var<storage, read_write> sc_y: array<act>; // (outer, len, inner)

@compute @workgroup_size(256)
fn softmax_cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let t = group_id(wid, nwg) * WG + lid;
    if (t >= p.outer * p.inner) { return; }
    let base = (t / p.inner) * p.len * p.inner + t % p.inner;
    var a = vec2<f32>(LOWEST, 0.0);
    for (var k = 0u; k < p.len; k = k + 1u) {
        a = lse_push(a, f32(sc_x[base + k * p.inner]));
    }
    for (var k = 0u; k < p.len; k = k + 1u) {
        let i = base + k * p.inner;
        sc_y[i] = act(softmax_out(f32(sc_x[i]), a));
    }
}

@group(0) @binding(1) var<storage, read> br_y: array<act>;
@group(0) @binding(2) var<storage, read> br_dy: array<act>;
@group(0) @binding(3) var<storage, read_write> br_dx: array<act>;

@compute @workgroup_size(256)
fn softmax_backward_rows(@builtin(workgroup_id) wid: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    let o = group_id(wid, nwg);
    if (o >= p.outer) { return; }
    let base = o * p.len;
    var acc = 0.0;
    for (var k = lid; k < p.len; k = k + WG) {
        acc = acc + grad_term(f32(br_y[base + k]), f32(br_dy[base + k]));
    }
    red[lid] = vec2<f32>(acc, 0.0);
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    let sum = red[0].x;
    for (var k = lid; k < p.len; k = k + WG) {
        br_dx[base + k] = act(softmax_grad(f32(br_y[base + k]), f32(br_dy[base + k]), sum));
    }
}

@group(0) @binding(1) var<storage, read> bc_y: array<act>;
@group(0) @binding(2) var<storage, read> bc_dy: array<act>;
@group(0) @binding(3) var<storage, read_write> bc_dx: array<act>;

@compute @workgroup_size(256)
fn softmax_backward_cols(@builtin(workgroup_id) wid: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    let t = group_id(wid, nwg) * WG + lid;
    if (t >= p.outer * p.inner) { return; }
    let base = (t / p.inner) * p.len * p.inner + t % p.inner;
    var sum = 0.0;
    for (var k = 0u; k < p.len; k = k + 1u) {
        let i = base + k * p.inner;
        sum = sum + grad_term(f32(bc_y[i]), f32(bc_dy[i]));
    }
    for (var k = 0u; k < p.len; k = k + 1u) {
        let i = base + k * p.inner;
        bc_dx[i] = act(softmax_grad(f32(bc_y[i]), f32(bc_dy[i]), sum));
    }
}
