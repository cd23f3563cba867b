// Elementwise kernels: unary ops (neurons and math) forward/backward, and broadcasting binary ops
// forward/backward (each operand's gradient reduced over its broadcast dims in the same kernel).
// One invocation per output element; 256 per workgroup; 2-D grid (see `grid_1d` in
// src/launch.rs).

struct Params {
    n: u32,        // elements in the output
    op: u32,       // op code: `UnaryOp::code` (src/neuron.rs) or `BinaryOp` (ops/elementwise/gpu.rs)
    rank: u32,     // number of dims (<= 8) for broadcasting kernels
    chain_len: u32, // unary ops fused after this one (elementwise-chain fusion), <= 8
    a: f32,        // op parameter (alpha, slope, ...)
    b: f32,        // second op parameter
    _p0: u32,
    _p1: u32,
    shape: array<vec4<u32>, 2>,     // output shape, padded with 1
    a_strides: array<vec4<u32>, 2>, // strides of operand a in output coordinates (0 where broadcast)
    b_strides: array<vec4<u32>, 2>, // strides of operand b likewise
    chain_op: array<vec4<u32>, 2>,  // op codes of the fused unary chain
    chain_a: array<vec4<f32>, 2>,   // their parameters
    chain_b: array<vec4<f32>, 2>,
    a_map: vec4<u32>, // how binary kernels index a: (kind, inner, count, 0); see `operand_offset`
    b_map: vec4<u32>, // and b
}

// Operand kinds (`operand_map` in src/ops/elementwise/gpu.rs): read through the strides (any
// broadcast), in the output's own layout (offset i), or one run of the output's dims (e.g. a
// per-channel (1, C, 1, 1) operand: offset (i / inner) % count).
const STRIDED: u32 = 0u;
const SAME: u32 = 1u;
const RUN: u32 = 2u;

@group(0) @binding(0) var<uniform> p: Params;

// Entry k of the rank-8 vectors, read from the uniform in place: a helper taking the array by
// value would copy it to private memory per call (spilled to local memory on NVIDIA).
fn out_dim(k: u32) -> u32 { return p.shape[k / 4u][k % 4u]; }
fn a_stride(k: u32) -> u32 { return p.a_strides[k / 4u][k % 4u]; }
fn b_stride(k: u32) -> u32 { return p.b_strides[k / 4u][k % 4u]; }

// The fused chain: y = f_k(...f_1(v)) for the unary ops the graph folded into this dispatch.
fn apply_chain(v: f32) -> f32 {
    var y = v;
    for (var k = 0u; k < p.chain_len; k = k + 1u) {
        y = unary_f(p.chain_op[k / 4u][k % 4u], y, p.chain_a[k / 4u][k % 4u], p.chain_b[k / 4u][k % 4u]);
    }
    return y;
}

@group(0) @binding(1) var<storage, read> x_in: array<act>;
@group(0) @binding(2) var<storage, read_write> y_out: array<act>;

// y = chain(op(x))
@compute @workgroup_size(256)
fn unary_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    y_out[i] = act(apply_chain(unary_f(p.op, f32(x_in[i]), p.a, p.b)));
}

@group(0) @binding(1) var<storage, read> ub_x: array<act>;
@group(0) @binding(2) var<storage, read> ub_dy: array<act>;
@group(0) @binding(3) var<storage, read_write> ub_dx: array<act>;

// dx = op'(x) * dy
@compute @workgroup_size(256)
fn unary_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    ub_dx[i] = act(unary_b(p.op, f32(ub_x[i]), f32(ub_dy[i]), p.a, p.b));
}

// dx = op'(x) * dy from y = op(x) (the bindings of unary_backward, binding 1 holding y)
@compute @workgroup_size(256)
fn unary_backward_out(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    ub_dx[i] = act(unary_b_out(p.op, f32(ub_x[i]), f32(ub_dy[i]), p.a, p.b));
}

// Offsets of output element i into a and b through their broadcast strides.
fn strided_offsets(i: u32) -> vec2<u32> {
    var rem = i;
    var oa = 0u;
    var ob = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
        let k = u32(d);
        let s = out_dim(k);
        let c = rem % s;
        rem = rem / s;
        oa = oa + c * a_stride(k);
        ob = ob + c * b_stride(k);
    }
    return vec2<u32>(oa, ob);
}

// Offsets of output element i into a and b. The branches are on uniforms (no divergence): the
// same-layout and run operands skip the per-dim loop, with its division and modulo per dim.
fn broadcast_offsets(i: u32) -> vec2<u32> {
    let ka = p.a_map.x;
    let kb = p.b_map.x;
    if (ka == SAME && kb == SAME) { return vec2<u32>(i, i); }
    var o = vec2<u32>(i, i);
    if (ka == STRIDED || kb == STRIDED) { o = strided_offsets(i); }
    if (ka == RUN) { o.x = (i / p.a_map.y) % p.a_map.z; }
    if (kb == RUN) { o.y = (i / p.b_map.y) % p.b_map.z; }
    return o;
}

fn binary_f(op: u32, a: f32, b: f32) -> f32 {
    switch op {
        case 0u: { return a + b; }
        case 1u: { return a - b; }
        case 2u: { return a * b; }
        case 3u: { return a / b; }
        case 4u: { return max_nan(a, b); }
        case 5u: { return min_nan(a, b); }
        default: { return a; }
    }
}

// Local derivatives (d/da, d/db) of binary op at (a, b). max/min send the gradient to a on ties.
fn binary_d(op: u32, a: f32, b: f32) -> vec2<f32> {
    switch op {
        case 0u: { return vec2<f32>(1.0, 1.0); }
        case 1u: { return vec2<f32>(1.0, -1.0); }
        case 2u: { return vec2<f32>(b, a); }
        case 3u: { return vec2<f32>(1.0 / b, -a / (b * b)); }
        case 4u: { return select(vec2<f32>(0.0, 1.0), vec2<f32>(1.0, 0.0), a >= b); }
        case 5u: { return select(vec2<f32>(0.0, 1.0), vec2<f32>(1.0, 0.0), a <= b); }
        default: { return vec2<f32>(1.0, 0.0); }
    }
}

@group(0) @binding(1) var<storage, read> bf_a: array<act>;
@group(0) @binding(2) var<storage, read> bf_b: array<act>;
@group(0) @binding(3) var<storage, read_write> bf_y: array<act>;

// y = chain(a (op) b) with numpy broadcasting
@compute @workgroup_size(256)
fn binary_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let o = broadcast_offsets(i);
    bf_y[i] = act(apply_chain(binary_f(p.op, f32(bf_a[o.x]), f32(bf_b[o.y]))));
}

@group(0) @binding(1) var<storage, read> bb_a: array<act>;
@group(0) @binding(2) var<storage, read> bb_b: array<act>;
@group(0) @binding(3) var<storage, read> bb_dy: array<act>;
@group(0) @binding(4) var<storage, read_write> bb_g: array<act>; // (shape of the operand `which`)

// Gradient of one operand (`_p0`: 0 = a, 1 = b), one invocation per element of that operand:
// the local derivative times dy, summed over the output dims the operand was broadcast along
// (those where its stride is 0). No scratch buffer of the output's size is needed.
@compute @workgroup_size(256)
fn binary_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let t = linear_id(wid, nwg, lid);
    if (t >= p.n) { return; }
    // An operand in the output's layout was broadcast nowhere: its element t is output element
    // t, nothing to sum, and the other operand is read as the forward reads it.
    if (select(p.a_map.x, p.b_map.x, p._p0 == 1u) == SAME) {
        var d1 = binary_d(p.op, 0.0, 0.0);
        if (p.op > 1u) {
            let o = broadcast_offsets(t);
            d1 = binary_d(p.op, f32(bb_a[o.x]), f32(bb_b[o.y]));
        }
        bb_g[t] = act(select(d1.x, d1.y, p._p0 == 1u) * f32(bb_dy[t]));
        return;
    }
    // Coordinates of this operand element in output space (0 on its broadcast dims).
    var tc: array<u32, 8>;
    var rem = t;
    var count = 1u;
    for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
        let k = u32(d);
        var st = a_stride(k);
        if (p._p0 == 1u) { st = b_stride(k); }
        let s = out_dim(k);
        if (st != 0u) {
            tc[k] = rem % s;
            rem = rem / s;
        } else {
            tc[k] = 0u;
            count = count * s;
        }
    }
    var acc = 0.0;
    for (var j = 0u; j < count; j = j + 1u) {
        var r = j;
        var oo = 0u;
        var ostride = 1u;
        var oa = 0u;
        var ob = 0u;
        for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
            let k = u32(d);
            var st = a_stride(k);
            if (p._p0 == 1u) { st = b_stride(k); }
            let s = out_dim(k);
            var c = tc[k];
            if (st == 0u) {
                c = r % s;
                r = r / s;
            }
            oo = oo + c * ostride;
            ostride = ostride * s;
            oa = oa + c * a_stride(k);
            ob = ob + c * b_stride(k);
        }
        // Add and sub (op < 2) have constant derivatives: a and b are not read (dy is bound
        // in their place, and oa, ob may pass its end).
        var dd = binary_d(p.op, 0.0, 0.0);
        if (p.op > 1u) { dd = binary_d(p.op, f32(bb_a[oa]), f32(bb_b[ob])); }
        var g = dd.x;
        if (p._p0 == 1u) { g = dd.y; }
        acc = acc + g * f32(bb_dy[oo]);
    }
    bb_g[t] = act(acc);
}
