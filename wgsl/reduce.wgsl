// Reductions over one axis. The input is viewed as (outer, len, inner); the output as (outer, inner).
// One invocation per output element walks the axis: neighbouring invocations read neighbouring
// `inner` elements, so loads coalesce whenever inner > 1. Sums are `accum` (f32, or f16 under
// Accumulator::F16).

struct Params {
    outer: u32,
    len: u32,
    inner: u32,
    op: u32,     // 0 = sum, 1 = mean; sum_lanes: 1 = add to y (a gradient sum in place)
}

@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read> rs_x: array<act>;   // (outer, len, inner)
@group(0) @binding(2) var<storage, read_write> rs_y: array<act>; // (outer, inner)

// y = sum (or mean) of x over the axis
@compute @workgroup_size(256)
fn sum_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.outer * p.inner) { return; }
    let o = i / p.inner;
    let k = i % p.inner;
    let base = o * p.len * p.inner + k;
    var acc = accum(0.0);
    for (var l = 0u; l < p.len; l = l + 1u) {
        acc = acc + accum(f32(rs_x[base + l * p.inner]));
    }
    var v = f32(acc);
    if (p.op == 1u) {
        v = v / f32(p.len);
    }
    rs_y[i] = act(v);
}

var<workgroup> lanes: array<accum, 256>;

// y[k] = Σ_l x[l, k] over (len, inner) with outer = 1 (sum only): for a long axis and few
// outputs — split-K partial sums, chunked bias gradients — where one invocation per output would
// walk the whole axis alone. 8 outputs per workgroup, 32 invocations each take every 32nd row
// (consecutive outputs, so loads coalesce), then a tree over the 32 in a fixed order.
@compute @workgroup_size(256)
fn sum_lanes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let col = group_id(wid, nwg) * 8u + lid % 8u;
    var acc = accum(0.0);
    if (col < p.inner) {
        for (var l = lid / 8u; l < p.len; l = l + 32u) {
            acc = acc + accum(f32(rs_x[l * p.inner + col]));
        }
    }
    lanes[lid] = acc;
    workgroupBarrier();
    for (var s = 128u; s >= 8u; s = s >> 1u) {
        if (lid < s) {
            lanes[lid] = lanes[lid] + lanes[lid + s];
        }
        workgroupBarrier();
    }
    if (lid < 8u && col < p.inner) {
        var v = f32(lanes[lid]);
        if (p.op == 1u) { v = v + f32(rs_y[col]); }
        rs_y[col] = act(v);
    }
}

@group(0) @binding(1) var<storage, read> rm_x: array<act>;       // (outer, len, inner)
@group(0) @binding(2) var<storage, read_write> rm_y: array<act>; // (outer, inner)
@group(0) @binding(3) var<storage, read_write> rm_arg: array<u32>; // (outer, inner) index along the axis

// y = max of x over the axis; arg = the first index reaching it (the state the gradient needs)
@compute @workgroup_size(256)
fn max_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.outer * p.inner) { return; }
    let o = i / p.inner;
    let k = i % p.inner;
    let base = o * p.len * p.inner + k;
    var best = f32(rm_x[base]);
    var arg = 0u;
    for (var l = 1u; l < p.len; l = l + 1u) {
        let v = f32(rm_x[base + l * p.inner]);
        if (beats_max(v, best)) {
            best = v;
            arg = l;
        }
    }
    rm_y[i] = act(best);
    rm_arg[i] = arg;
}

@group(0) @binding(1) var<storage, read> sb_dy: array<act>;       // (outer, inner)
@group(0) @binding(2) var<storage, read_write> sb_dx: array<act>; // (outer, len, inner)

// dx = dy broadcast along the axis (divided by len for mean)
@compute @workgroup_size(256)
fn sum_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.outer * p.len * p.inner) { return; }
    let k = i % p.inner;
    let o = i / (p.len * p.inner);
    var g = f32(sb_dy[o * p.inner + k]);
    if (p.op == 1u) {
        g = g / f32(p.len);
    }
    sb_dx[i] = act(g);
}

@group(0) @binding(1) var<storage, read> mb_dy: array<act>;       // (outer, inner)
@group(0) @binding(2) var<storage, read> mb_arg: array<u32>;      // (outer, inner)
@group(0) @binding(3) var<storage, read_write> mb_dx: array<act>; // (outer, len, inner)

// dx = dy at the argmax, 0 elsewhere
@compute @workgroup_size(256)
fn max_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.outer * p.len * p.inner) { return; }
    let k = i % p.inner;
    let l = (i / p.inner) % p.len;
    let o = i / (p.len * p.inner);
    let j = o * p.inner + k;
    mb_dx[i] = act(select(0.0, f32(mb_dy[j]), mb_arg[j] == l));
}
