// Normalisation (batch, instance, group, layer norm), forward and backward.
//
// Every norm is one engine: element i of x belongs to statistics group `(i / gdiv) % groups` and
// reads affine parameter `(i / pdiv) % pmod`. Group k holds `m` elements, laid out as runs of
// `run` contiguous elements `run_stride` apart starting at `k * gdiv`:
//   batch    (N, C, S): group c, runs of S with stride C·S (N of them); param c
//   instance (N, C, S): group (n, c), one run of S;                    param c
//   group    (N, C, S): group (n, g), one run of (C/G)·S;              param c
//   layer    (R, I):    group r, one run of I;                         param i (elementwise)
// Statistics are a (2, groups) state: mean, then the biased variance, exactly the pair the
// backward and the running-stat update need.
//
// Reductions: one workgroup of 256 per group (or per parameter), each invocation sums a strided
// share, then a shared-memory tree. No subgroup ops, so nothing depends on the subgroup size.
// Variance is two-pass (mean first, then Σ(x − mean)²), which does not cancel catastrophically.
// The sums are `accum` (f32, or f16 under Accumulator::F16); everything else is f32.

struct Params {
    groups: u32,     // statistics groups G
    m: u32,          // elements per group
    run: u32,        // contiguous run length inside a group
    run_stride: u32, // distance between the runs of a group
    gdiv: u32,       // group of element i: (i / gdiv) % groups; group k starts at k · gdiv
    pdiv: u32,       // affine parameter of element i: (i / pdiv) % pmod
    pmod: u32,       // number of affine parameters P
    total: u32,      // elements of x
    flags: u32,      // bit 0: gamma bound, bit 1: beta bound (else the slot holds x, unread)
    var_off: u32,    // index of the first variance in the variance binding
    eps: f32,
    momentum: f32,   // running-stat update: new = keep · old + momentum · batch
    keep: f32,       // 1 − momentum (computed on the host)
    unbias: f32,     // M / (M − 1): biased → unbiased variance for the running estimate
    act_len: u32,    // fused post-op (0 = none, 1 = the neuron below) on the forward outputs
    act_op: u32,
    act_a: f32,
    act_b: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;

var<workgroup> red: array<vec2<accum>, 256>;

// Sum of `v` over the workgroup, returned to every invocation (in f32). Call in uniform control
// flow.
fn reduce2(lid: u32, v: vec2<accum>) -> vec2<f32> {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier(); // everyone has read red[0] before the next reduction overwrites it
    return vec2<f32>(r);
}

// Flat index of the j-th element of group k.
fn group_elem(k: u32, j: u32) -> u32 {
    return k * p.gdiv + (j / p.run) * p.run_stride + j % p.run;
}

fn group_of(i: u32) -> u32 {
    return (i / p.gdiv) % p.groups;
}

fn param_of(i: u32) -> u32 {
    return (i / p.pdiv) % p.pmod;
}

// Flat index of the r-th element using affine parameter q.
fn param_elem(q: u32, r: u32) -> u32 {
    return (r / p.pdiv) * (p.pdiv * p.pmod) + q * p.pdiv + r % p.pdiv;
}

@group(0) @binding(1) var<storage, read> nf_x: array<act>;
@group(0) @binding(2) var<storage, read> nf_gamma: array<f32>;      // (P)
@group(0) @binding(3) var<storage, read> nf_beta: array<f32>;       // (P)
@group(0) @binding(4) var<storage, read_write> nf_y: array<act>;
@group(0) @binding(5) var<storage, read_write> nf_state: array<f32>; // (2, G): mean, biased var

// Training forward, one workgroup per group: statistics of the batch, then y = γ·x̂ + β.
@compute @workgroup_size(256)
fn norm_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let k = group_id(wid, nwg);
    if (k >= p.groups) { return; } // uniform: the whole workgroup leaves
    let fm = f32(p.m);
    var s = accum(0.0);
    for (var j = lid; j < p.m; j = j + WG) {
        s = s + accum(f32(nf_x[group_elem(k, j)]));
    }
    let mean = reduce2(lid, vec2<accum>(s, 0.0)).x / fm;
    var q = accum(0.0);
    for (var j = lid; j < p.m; j = j + WG) {
        let d = f32(nf_x[group_elem(k, j)]) - mean;
        q = q + accum(d * d);
    }
    let var_b = reduce2(lid, vec2<accum>(q, 0.0)).x / fm;
    let inv = 1.0 / sqrt(var_b + p.eps);
    for (var j = lid; j < p.m; j = j + WG) {
        let i = group_elem(k, j);
        let c = param_of(i);
        var g = 1.0;
        var b = 0.0;
        if ((p.flags & 1u) != 0u) { g = nf_gamma[c]; }
        if ((p.flags & 2u) != 0u) { b = nf_beta[c]; }
        nf_y[i] = act(post_op(p.act_len, p.act_op, p.act_a, p.act_b, g * (f32(nf_x[i]) - mean) * inv + b));
    }
    if (lid == 0u) {
        nf_state[k] = mean;
        nf_state[p.groups + k] = var_b;
    }
}

@group(0) @binding(1) var<storage, read> na_x: array<act>;
@group(0) @binding(2) var<storage, read> na_gamma: array<f32>;
@group(0) @binding(3) var<storage, read> na_beta: array<f32>;
@group(0) @binding(4) var<storage, read> na_mean: array<f32>; // (G)
@group(0) @binding(5) var<storage, read> na_var: array<f32>;  // variances from var_off
@group(0) @binding(6) var<storage, read_write> na_y: array<act>;

// Inference forward with given statistics (batch norm's running stats), one invocation per element.
@compute @workgroup_size(256)
fn norm_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = group_id(wid, nwg) * WG + lid;
    if (i >= p.total) { return; }
    let k = group_of(i);
    let c = param_of(i);
    var g = 1.0;
    var b = 0.0;
    if ((p.flags & 1u) != 0u) { g = na_gamma[c]; }
    if ((p.flags & 2u) != 0u) { b = na_beta[c]; }
    na_y[i] = act(post_op(p.act_len, p.act_op, p.act_a, p.act_b,
                      g * (f32(na_x[i]) - na_mean[k]) / sqrt(na_var[p.var_off + k] + p.eps) + b));
}

@group(0) @binding(1) var<storage, read> nr_state: array<f32>;       // (2, C)
@group(0) @binding(2) var<storage, read_write> nr_mean: array<f32>; // (C), updated in place
@group(0) @binding(3) var<storage, read_write> nr_var: array<f32>;  // (C), updated in place

// Running-stat update after a training forward, one invocation per channel. Separate from
// norm_forward because the running stats must be bound read_write and nothing else may alias them.
@compute @workgroup_size(256)
fn norm_running(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let k = group_id(wid, nwg) * WG + lid;
    if (k >= p.groups) { return; }
    // A non-finite batch statistic would poison the running ones for good: keep the old ones (the
    // loss is non-finite too, so the health check flags and skips this step).
    if (is_nonfinite(nr_state[k]) || is_nonfinite(nr_state[p.groups + k])) { return; }
    nr_mean[k] = p.keep * nr_mean[k] + p.momentum * nr_state[k];
    nr_var[k] = p.keep * nr_var[k] + p.momentum * nr_state[p.groups + k] * p.unbias;
}

@group(0) @binding(1) var<storage, read> nb_x: array<act>;
@group(0) @binding(2) var<storage, read> nb_gamma: array<f32>;
@group(0) @binding(3) var<storage, read> nb_dy: array<act>;
@group(0) @binding(4) var<storage, read> nb_state: array<f32>; // (2, G) from norm_forward
@group(0) @binding(5) var<storage, read_write> nb_dx: array<act>;

// dx through the batch statistics, one workgroup per group. With g = dy·γ and
// x̂ = (x − μ)·inv: dx = (g − mean(g) − x̂·mean(g·x̂))·inv.
@compute @workgroup_size(256)
fn norm_backward_dx(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let k = group_id(wid, nwg);
    if (k >= p.groups) { return; }
    let mean = nb_state[k];
    let inv = 1.0 / sqrt(nb_state[p.groups + k] + p.eps);
    let has_gamma = (p.flags & 1u) != 0u;
    var acc = vec2<accum>(0.0, 0.0);
    for (var j = lid; j < p.m; j = j + WG) {
        let i = group_elem(k, j);
        var g = f32(nb_dy[i]);
        if (has_gamma) { g = g * nb_gamma[param_of(i)]; }
        acc = acc + vec2<accum>(vec2<f32>(g, g * (f32(nb_x[i]) - mean) * inv));
    }
    let sums = reduce2(lid, acc) / f32(p.m); // (mean(g), mean(g·x̂))
    for (var j = lid; j < p.m; j = j + WG) {
        let i = group_elem(k, j);
        var g = f32(nb_dy[i]);
        if (has_gamma) { g = g * nb_gamma[param_of(i)]; }
        let xh = (f32(nb_x[i]) - mean) * inv;
        nb_dx[i] = act((g - sums.x - xh * sums.y) * inv);
    }
}

@group(0) @binding(1) var<storage, read> nc_dy: array<act>;
@group(0) @binding(2) var<storage, read> nc_gamma: array<f32>;
@group(0) @binding(3) var<storage, read> nc_var: array<f32>; // variances from var_off
@group(0) @binding(4) var<storage, read_write> nc_dx: array<act>;

// dx with constant statistics (inference): dx = dy·γ/√(var + eps), one invocation per element.
@compute @workgroup_size(256)
fn norm_backward_dx_const(@builtin(workgroup_id) wid: vec3<u32>,
                          @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
    let i = group_id(wid, nwg) * WG + lid;
    if (i >= p.total) { return; }
    var g = f32(nc_dy[i]);
    if ((p.flags & 1u) != 0u) { g = g * nc_gamma[param_of(i)]; }
    nc_dx[i] = act(g / sqrt(nc_var[p.var_off + group_of(i)] + p.eps));
}

@group(0) @binding(1) var<storage, read> ng_x: array<act>;
@group(0) @binding(2) var<storage, read> ng_dy: array<act>;
@group(0) @binding(3) var<storage, read> ng_mean: array<f32>; // (G)
@group(0) @binding(4) var<storage, read> ng_var: array<f32>;  // variances from var_off
@group(0) @binding(5) var<storage, read_write> ng_dgamma: array<f32>; // (P)
@group(0) @binding(6) var<storage, read_write> ng_dbeta: array<f32>;  // (P)

// dγ = Σ dy·x̂ and dβ = Σ dy over the elements of each affine parameter, one workgroup per
// parameter (those elements span several statistics groups except in batch norm).
@compute @workgroup_size(256)
fn norm_param_grads(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let q = group_id(wid, nwg);
    if (q >= p.pmod) { return; }
    let count = p.total / p.pmod;
    var acc = vec2<accum>(0.0, 0.0);
    for (var r = lid; r < count; r = r + WG) {
        let i = param_elem(q, r);
        let k = group_of(i);
        let xh = (f32(ng_x[i]) - ng_mean[k]) / sqrt(ng_var[p.var_off + k] + p.eps);
        let dy = f32(ng_dy[i]);
        acc = acc + vec2<accum>(vec2<f32>(dy * xh, dy));
    }
    let sums = reduce2(lid, acc);
    if (lid == 0u) {
        ng_dgamma[q] = sums.x;
        ng_dbeta[q] = sums.y;
    }
}
