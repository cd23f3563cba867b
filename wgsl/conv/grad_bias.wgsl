// Per-channel bias helpers for the convolutions and the fully connected layer, on tensors viewed
// as (N, C, inner): the bias gradient (a sum of dy over N and inner) and a bias broadcast (the
// initial C of a fully connected GEMM that then accumulates x·Wᵀ onto it).

struct Params {
    batch: u32,
    channels: u32,
    inner: u32,
    chunks: u32,  // bias_grad: chunks each channel's sum is split into (1: straight into db)
}

@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read> bg_dy: array<act>;       // (N, C, inner)
@group(0) @binding(2) var<storage, read_write> bg_db: array<act>; // (chunks, C)

var<workgroup> partial: array<accum, 256>; // f32, or f16 under Accumulator::F16

// db[c] = Σ_{n, i} dy[n, c, i], split over workgroups (c, k): workgroup (c, k) sums chunk k of
// channel c's (n, i) pairs — 256 invocations striding over consecutive i, so loads coalesce —
// into part[k, c]; `reduce.wgsl`'s sum_lanes then adds the chunks. A few channels over a large
// batch would otherwise leave all but a few of the GPU's cores idle.
@compute @workgroup_size(256)
fn bias_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let chunks = max(p.chunks, 1u);
    let w = group_id(wid, nwg);
    let c = w / chunks;
    let k = w - c * chunks;
    let total = p.batch * p.inner;
    // ceil(total / chunks) without overflowing near 2^32
    let per = total / chunks + select(0u, 1u, total % chunks != 0u);
    let start = min(k * per, total);
    let end = start + min(per, total - start);
    var acc = accum(0.0);
    if (c < p.channels) {
        for (var j = start + lid; j < end; j = j + 256u) {
            let n = j / p.inner;
            let i = j - n * p.inner;
            acc = acc + accum(f32(bg_dy[(n * p.channels + c) * p.inner + i]));
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
    if (lid == 0u && c < p.channels) {
        bg_db[k * p.channels + c] = act(f32(partial[0]));
    }
}

@group(0) @binding(1) var<storage, read> bf_b: array<act>;        // (C,)
@group(0) @binding(2) var<storage, read_write> bf_y: array<act>;  // (N, C, inner)

// y[n, c, i] = b[c]
@compute @workgroup_size(256)
fn bias_fill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let j = linear_id(wid, nwg, lid);
    if (j >= p.batch * p.channels * p.inner) { return; }
    bf_y[j] = act(f32(bf_b[(j / p.inner) % p.channels]));
}
