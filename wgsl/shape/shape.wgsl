// Shape ops (see src/ops/shape/): strided copies (concat as copies into slices of the output,
// split as copies out of them, slice forward), and gathers for everything that would otherwise
// scatter (slice, pad and upsample backward): one invocation per element written, each reading
// every source that maps to it, so results are deterministic with no atomics.
// One invocation per element; 256 per workgroup; 2-D grid (see `grid_1d` in src/launch.rs).
// Rank <= 8.

struct Params {
    n: u32,        // elements written
    rank: u32,
    mode: u32,     // pad: 0 zero, 1 edge; upsample: 0 nearest, 1 bilinear
    src_off: u32,  // element offset of the first source element
    dst_off: u32,  // element offset of the first destination element
    _p0: u32,
    _p1: u32,
    _p2: u32,
    v0: array<vec4<u32>, 2>, // per entry (see each kernel)
    v1: array<vec4<u32>, 2>,
    v2: array<vec4<u32>, 2>,
    v3: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> sh_x: array<act>;
@group(0) @binding(2) var<storage, read_write> sh_y: array<act>;

// Entry k of each parameter vector, read from the uniform in place: a helper taking the array
// by value would copy it to private memory per call (spilled to local memory on NVIDIA).
fn v0_at(k: u32) -> u32 { return p.v0[k / 4u][k % 4u]; }
fn v1_at(k: u32) -> u32 { return p.v1[k / 4u][k % 4u]; }
fn v2_at(k: u32) -> u32 { return p.v2[k / 4u][k % 4u]; }
fn v3_at(k: u32) -> u32 { return p.v3[k / 4u][k % 4u]; }

// y[dst_off + Σ c·v2] = x[src_off + Σ c·v1] for every index c of the shape v0. Concat's
// copy-into-slice, split's copy-out-of-slice and the strided slice are all this one kernel.
@compute @workgroup_size(256)
fn strided_copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    var rem = i;
    var src = p.src_off;
    var dst = p.dst_off;
    for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
        let k = u32(d);
        let s = v0_at(k);
        let c = rem % s;
        rem = rem / s;
        src = src + c * v1_at(k);
        dst = dst + c * v2_at(k);
    }
    sh_y[dst] = act(f32(sh_x[src]));
}

// Slice backward as a gather: dx (shape v0) at index c takes dy at (c − start)/step where that
// is a whole in-range index, else 0. v1 = start, v2 = step, v3 = dy's shape.
@compute @workgroup_size(256)
fn slice_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    var rem = i;
    var src = 0u;
    var stride = 1u;
    var hit = true;
    for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
        let k = u32(d);
        let s = v0_at(k);
        let c = rem % s;
        rem = rem / s;
        let start = v1_at(k);
        let step = v2_at(k);
        let q = c - min(c, start);
        let o = q / step;
        hit = hit && c >= start && q % step == 0u && o < v3_at(k);
        src = src + o * stride;
        stride = stride * v3_at(k);
    }
    sh_y[i] = act(select(0.0, f32(sh_x[src]), hit));
}

// Pad forward as a gather: y (shape v1) at index c reads x (shape v0) at c − before (v2),
// or 0 outside x (zero mode), or clamped to x's edge (edge mode).
@compute @workgroup_size(256)
fn pad_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    var rem = i;
    var src = 0u;
    var stride = 1u;
    var inside = true;
    for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
        let k = u32(d);
        let s = v1_at(k);
        let c = i32(rem % s);
        rem = rem / s;
        let n_in = i32(v0_at(k));
        let q = c - i32(v2_at(k));
        inside = inside && q >= 0 && q < n_in;
        src = src + u32(clamp(q, 0, n_in - 1)) * stride;
        stride = stride * u32(n_in);
    }
    var v = 0.0;
    if (inside || p.mode == 1u) { v = f32(sh_x[src]); }
    sh_y[i] = act(v);
}

// Pad backward as a gather: dx (shape v0) at index c sums dy (shape v1) over the box of output
// positions that read it: before + c alone inside, and in edge mode also every pad position
// beyond an edge element (all of [0, before] at c = 0, all of [before + n − 1, out) at c = n − 1).
@compute @workgroup_size(256)
fn pad_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    var lo: array<u32, 8>;
    var ext: array<u32, 8>;
    var rem = i;
    var count = 1u;
    for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
        let k = u32(d);
        let n_in = v0_at(k);
        let c = rem % n_in;
        rem = rem / n_in;
        let at = v2_at(k) + c;
        var a = at;
        var b = at;
        if (p.mode == 1u) {
            if (c == 0u) { a = 0u; }
            if (c == n_in - 1u) { b = v1_at(k) - 1u; }
        }
        lo[k] = a;
        ext[k] = b - a + 1u;
        count = count * ext[k];
    }
    var acc = 0.0;
    for (var j = 0u; j < count; j = j + 1u) {
        var r = j;
        var off = 0u;
        var stride = 1u;
        for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
            let k = u32(d);
            off = off + (lo[k] + r % ext[k]) * stride;
            r = r / ext[k];
            stride = stride * v1_at(k);
        }
        acc = acc + f32(sh_x[off]);
    }
    sh_y[i] = act(acc);
}

// Taps of output index o on an axis of n_in → n_out: (i0, i1, weight of i1); i0 has 1 − weight.
// Nearest: floor(o·n_in/n_out) with weight 0 on the (equal) second tap. Bilinear (align_corners
// = false): src = max((o + 0.5)·n_in/n_out − 0.5, 0) evaluated exactly in integers as
// ((2o + 1)·n_in − n_out) / (2·n_out), so floor and fraction match the reference at every o.
fn taps(o: u32, n_in: u32, n_out: u32) -> vec3<f32> {
    if (p.mode == 0u) {
        let i = min(o * n_in / n_out, n_in - 1u);
        return vec3<f32>(f32(i), f32(i), 0.0);
    }
    let num = (2u * o + 1u) * n_in;
    var i0 = 0u;
    var l1 = 0.0;
    if (num > n_out) {
        let q = num - n_out;
        let den = 2u * n_out;
        i0 = q / den;
        l1 = f32(q % den) / f32(den);
    }
    if (i0 >= n_in - 1u) {
        // At or past the last row both taps are the last row; the weights still sum to 1.
        return vec3<f32>(f32(n_in - 1u), f32(n_in - 1u), l1);
    }
    return vec3<f32>(f32(i0), f32(i0 + 1u), l1);
}

// Weight with which output index o reads input index i on one axis.
fn tap_weight(o: u32, i: u32, n_in: u32, n_out: u32) -> f32 {
    let t = taps(o, n_in, n_out);
    return select(0.0, 1.0 - t.z, u32(t.x) == i) + select(0.0, t.z, u32(t.y) == i);
}

// Upsample forward: y (planes, oh, ow) from x (planes, h, w); v0 = (h, w, oh, ow).
@compute @workgroup_size(256)
fn upsample_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let h = p.v0[0].x;
    let w = p.v0[0].y;
    let oh = p.v0[0].z;
    let ow = p.v0[0].w;
    let ox = i % ow;
    let oy = (i / ow) % oh;
    let base = (i / (ow * oh)) * h * w;
    let ty = taps(oy, h, oh);
    let tx = taps(ox, w, ow);
    let r0 = base + u32(ty.x) * w;
    let r1 = base + u32(ty.y) * w;
    let top = (1.0 - tx.z) * f32(sh_x[r0 + u32(tx.x)]) + tx.z * f32(sh_x[r0 + u32(tx.y)]);
    let bot = (1.0 - tx.z) * f32(sh_x[r1 + u32(tx.x)]) + tx.z * f32(sh_x[r1 + u32(tx.y)]);
    sh_y[i] = act((1.0 - ty.z) * top + ty.z * bot);
}

// Output indices on one axis that can read input index i: a conservative window around
// i·n_out/n_in (bilinear reaches one input row either side), clamped to [0, n_out).
fn window(i: u32, n_in: u32, n_out: u32) -> vec2<u32> {
    let a = (2 * i32(i) - 1) * i32(n_out) - i32(n_in);
    let lo = max(a / (2 * i32(n_in)) - 2, 0);
    let hi = min((2 * i32(i) + 3) * i32(n_out) / (2 * i32(n_in)) + 2, i32(n_out) - 1);
    return vec2<u32>(u32(lo), u32(hi));
}

// Upsample backward as a gather: dx (planes, h, w) at (iy, ix) sums dy (planes, oh, ow) over
// the outputs that read it, with their tap weights. v0 = (h, w, oh, ow).
@compute @workgroup_size(256)
fn upsample_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let h = p.v0[0].x;
    let w = p.v0[0].y;
    let oh = p.v0[0].z;
    let ow = p.v0[0].w;
    let ix = i % w;
    let iy = (i / w) % h;
    let base = (i / (w * h)) * oh * ow;
    let wy = window(iy, h, oh);
    let wx = window(ix, w, ow);
    var acc = 0.0;
    for (var oy = wy.x; oy <= wy.y; oy = oy + 1u) {
        let a = tap_weight(oy, iy, h, oh);
        if (a == 0.0) { continue; }
        var row = 0.0;
        for (var ox = wx.x; ox <= wx.y; ox = ox + 1u) {
            row = row + tap_weight(ox, ix, w, ow) * f32(sh_x[base + oy * ow + ox]);
        }
        acc = acc + a * row;
    }
    sh_y[i] = act(acc);
}
