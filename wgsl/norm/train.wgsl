// Normalisation in training: statistics of the batch (see common.wgsl), forward and backward.

@group(0) @binding(1) var<storage, read> ns_x: array<lane>;
@group(0) @binding(2) var<storage, read_write> ns_part: array<f32>; // (G, chunks, 2): mean, M2

// Forward partials of a split group: each chunk's mean and M2.
@compute @workgroup_size(256)
fn norm_stats_partial(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let gid = group_id(wid, nwg);
    if (gid >= p.groups * p.chunks) { return; } // uniform: the whole workgroup leaves
    let ch = chunk_of(gid);
    var v: array<lanef, E>;
    var w = walk_at(ch.start + lid);
    for (var e = 0u; e < E; e = e + 1u) {
        var x = lanef(0.0);
        if (lid + e * WG < ch.count) { x = lanef(ns_x[walk_index(ch.k, w)]); }
        v[e] = x;
        w = walk_next(w);
    }
    let shift = lane_first(lanef(ns_x[walk_index(ch.k, walk_at(ch.start))]));
    let mo = chunk_moments(lid, ch.count, &v, shift);
    if (lid == 0u) {
        ns_part[2u * gid] = mo.x;
        ns_part[2u * gid + 1u] = mo.y;
    }
}

@group(0) @binding(1) var<storage, read> nm_part: array<f32>;         // norm_stats_partial's
@group(0) @binding(2) var<storage, read_write> nm_state: array<f32>;  // (2, G): mean, biased var
@group(0) @binding(3) var<storage, read_write> nm_mean: array<f32>;   // running, when flags bit 4
@group(0) @binding(4) var<storage, read_write> nm_var: array<f32>;    // running, when flags bit 4

// The statistics of a split group from its chunks' (mean, M2), one workgroup per group, into
// the state (and the running statistics when flags bit 4): a dispatch of G workgroups, so that
// norm_forward's workgroups read two values instead of each merging every partial of its group.
@compute @workgroup_size(256)
fn norm_stats_combine(@builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let k = group_id(wid, nwg);
    if (k >= p.groups) { return; } // uniform: the whole workgroup leaves
    var mo = vec3<f32>(0.0);
    for (var c = lid; c < p.chunks; c = c + WG) {
        let at = 2u * (k * p.chunks + c);
        let n = f32(chunk_count(c) * LANES);
        mo = merge_moments(mo, vec3<f32>(n, nm_part[at], nm_part[at + 1u]));
    }
    let all = reduce_moments(lid, mo);
    if (lid == 0u) {
        let st = vec2<f32>(all.y, all.z / group_elements());
        nm_state[k] = st.x;
        nm_state[p.groups + k] = st.y;
        if ((p.flags & 16u) != 0u) {
            let next = running_next(vec2<f32>(nm_mean[k], nm_var[k]), st);
            nm_mean[k] = next.x;
            nm_var[k] = next.y;
        }
    }
}

@group(0) @binding(1) var<storage, read> nf_x: array<lane>;
@group(0) @binding(2) var<storage, read> nf_gamma: array<f32>;      // (P)
@group(0) @binding(3) var<storage, read> nf_beta: array<f32>;       // (P)
@group(0) @binding(4) var<storage, read_write> nf_y: array<lane>;
@group(0) @binding(5) var<storage, read_write> nf_state: array<f32>; // (2, G): mean, biased var
@group(0) @binding(6) var<storage, read> nf_res: array<lane>;       // residual when flags bit 3

// Training forward, per chunk: the group's statistics (from the registers when the group is one
// chunk, and saved by chunk 0; else norm_stats_combine's), then y = γ·x̂ + β (+ a residual, then
// the fused neuron) over the chunk.
@compute @workgroup_size(256)
fn norm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let gid = group_id(wid, nwg);
    if (gid >= p.groups * p.chunks) { return; } // uniform: the whole workgroup leaves
    let ch = chunk_of(gid);
    var v: array<lanef, E>;
    let first = walk_at(ch.start + lid);
    var w = first;
    for (var e = 0u; e < E; e = e + 1u) {
        var x = lanef(0.0);
        if (lid + e * WG < ch.count) { x = lanef(nf_x[walk_index(ch.k, w)]); }
        v[e] = x;
        w = walk_next(w);
    }
    var st: vec2<f32>; // (mean, biased variance)
    if (p.chunks == 1u) {
        let shift = lane_first(lanef(nf_x[walk_index(ch.k, walk_at(ch.start))]));
        let mo = chunk_moments(lid, ch.count, &v, shift);
        st = vec2<f32>(mo.x, mo.y / group_elements());
    } else {
        st = vec2<f32>(nf_state[ch.k], nf_state[p.groups + ch.k]);
    }
    let inv = 1.0 / sqrt(st.y + p.eps);
    let base = param_base(ch.k);
    let per_group = param_per_group();
    let has_gamma = (p.flags & 1u) != 0u;
    let has_beta = (p.flags & 2u) != 0u;
    let has_res = (p.flags & 8u) != 0u;
    // A per-group γ, β is read once (batch norm: no per-element parameter loads).
    var g0 = 1.0;
    var b0 = 0.0;
    if (per_group && has_gamma) { g0 = nf_gamma[base]; }
    if (per_group && has_beta) { b0 = nf_beta[base]; }
    w = first;
    for (var e = 0u; e < E; e = e + 1u) {
        if (lid + e * WG < ch.count) {
            var g = g0;
            var b = b0;
            if (!per_group) {
                let c = walk_param(base, w);
                if (has_gamma) { g = nf_gamma[c]; }
                if (has_beta) { b = nf_beta[c]; }
            }
            let i = walk_index(ch.k, w);
            var o = g * (v[e] - st.x) * inv + b;
            if (has_res) { o = o + lanef(nf_res[i]); }
            nf_y[i] = lane(lane_post(o));
        }
        w = walk_next(w);
    }
    if (p.chunks == 1u && lid == 0u) {
        nf_state[ch.k] = st.x;
        nf_state[p.groups + ch.k] = st.y;
    }
}

// Backward: with g = dy·γ and x̂ = (x − μ)·inv, dx = (g − mean(g) − x̂·mean(g·x̂))·inv. The
// kernels sum h = g, or h = dy where one γ serves the whole group (mean(g) = γ·Σdy / m, and
// Σdy, Σdy·x̂ are then batch norm's dβ and dγ as well). dy is loaded through `partial_dy`,
// `dx_dy` and `param_dy` (dy.wgsl; dy_neuron.wgsl applies a folded neuron's derivative).

@group(0) @binding(1) var<storage, read> nb_x: array<lane>;
@group(0) @binding(2) var<storage, read> nb_gamma: array<f32>;
@group(0) @binding(3) var<storage, read> nb_dy: array<lane>;
@group(0) @binding(4) var<storage, read> nb_state: array<f32>; // (2, G) from norm_forward
@group(0) @binding(5) var<storage, read_write> nb_part: array<f32>; // (G, chunks, 2)

// Backward partials of a split group: each chunk's (Σh, Σh·x̂).
@compute @workgroup_size(256)
fn norm_backward_partial(@builtin(workgroup_id) wid: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    let gid = group_id(wid, nwg);
    if (gid >= p.groups * p.chunks) { return; } // uniform: the whole workgroup leaves
    let ch = chunk_of(gid);
    let mean = nb_state[ch.k];
    let inv = 1.0 / sqrt(nb_state[p.groups + ch.k] + p.eps);
    let scale = (p.flags & 1u) != 0u && !param_per_group();
    let base = param_base(ch.k);
    var acc = vec2<accum>(0.0, 0.0);
    var w = walk_at(ch.start + lid);
    for (var e = 0u; e < E; e = e + 1u) {
        if (lid + e * WG < ch.count) {
            let i = walk_index(ch.k, w);
            var h = partial_dy(i);
            if (scale) { h = h * nb_gamma[walk_param(base, w)]; }
            let xh = (lanef(nb_x[i]) - mean) * inv;
            acc = acc + vec2<accum>(vec2<f32>(lane_sum(h), lane_dot(h, xh)));
        }
        w = walk_next(w);
    }
    let sums = reduce2(lid, acc);
    if (lid == 0u) {
        nb_part[2u * gid] = sums.x;
        nb_part[2u * gid + 1u] = sums.y;
    }
}

@group(0) @binding(1) var<storage, read> nd_x: array<lane>;
@group(0) @binding(2) var<storage, read> nd_gamma: array<f32>;
@group(0) @binding(3) var<storage, read> nd_dy: array<lane>;
@group(0) @binding(4) var<storage, read> nd_state: array<f32>;      // (2, G) from norm_forward
@group(0) @binding(5) var<storage, read> nd_part: array<f32>;       // norm_backward_partial's
@group(0) @binding(6) var<storage, read_write> nd_dx: array<lane>;
@group(0) @binding(7) var<storage, read_write> nd_dgamma: array<f32>; // (G) when flags bit 2
@group(0) @binding(8) var<storage, read_write> nd_dbeta: array<f32>;  // (G) when flags bit 2

// dx through the statistics, per chunk: the group's (Σh, Σh·x̂) from the registers when the
// group is one chunk, else the sum of the partials; chunk 0 writes dγ = Σdy·x̂, dβ = Σdy when
// asked (batch norm: the same sums, so no separate parameter-gradient pass).
@compute @workgroup_size(256)
fn norm_backward_dx(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let gid = group_id(wid, nwg);
    if (gid >= p.groups * p.chunks) { return; } // uniform: the whole workgroup leaves
    let ch = chunk_of(gid);
    let mean = nd_state[ch.k];
    let inv = 1.0 / sqrt(nd_state[p.groups + ch.k] + p.eps);
    let has_gamma = (p.flags & 1u) != 0u;
    let per_group = param_per_group();
    let base = param_base(ch.k);
    var hv: array<lanef, E>;
    var xv: array<lanef, E>;
    var acc = vec2<accum>(0.0, 0.0);
    let first = walk_at(ch.start + lid);
    var w = first;
    for (var e = 0u; e < E; e = e + 1u) {
        var h = lanef(0.0);
        var xh = lanef(0.0);
        if (lid + e * WG < ch.count) {
            let i = walk_index(ch.k, w);
            h = dx_dy(i);
            if (has_gamma && !per_group) { h = h * nd_gamma[walk_param(base, w)]; }
            xh = (lanef(nd_x[i]) - mean) * inv;
            acc = acc + vec2<accum>(vec2<f32>(lane_sum(h), lane_dot(h, xh)));
        }
        hv[e] = h;
        xv[e] = xh;
        w = walk_next(w);
    }
    var sums: vec2<f32>; // (Σh, Σh·x̂) over the group
    if (p.chunks == 1u) {
        sums = reduce2(lid, acc);
    } else {
        var a = vec2<accum>(0.0, 0.0);
        for (var c = lid; c < p.chunks; c = c + WG) {
            let at = 2u * (ch.k * p.chunks + c);
            a = a + vec2<accum>(vec2<f32>(nd_part[at], nd_part[at + 1u]));
        }
        sums = reduce2(lid, a);
    }
    // γ of a per-group parameter multiplies h, the means and so dx; else h already holds it.
    var g = 1.0;
    if (has_gamma && per_group) { g = nd_gamma[base]; }
    let means = sums / group_elements();
    w = first;
    for (var e = 0u; e < E; e = e + 1u) {
        if (lid + e * WG < ch.count) {
            nd_dx[walk_index(ch.k, w)] = lane(g * (hv[e] - means.x - xv[e] * means.y) * inv);
        }
        w = walk_next(w);
    }
    if ((p.flags & 4u) != 0u && ch.c == 0u && lid == 0u) {
        nd_dgamma[ch.k] = sums.y;
        nd_dbeta[ch.k] = sums.x;
    }
}

