// Normalisation with given statistics (inference), the running-stat update and the affine
// parameters' gradients: elementwise, or one workgroup per parameter.

@group(0) @binding(1) var<storage, read> na_x: array<act>;
@group(0) @binding(2) var<storage, read> na_gamma: array<f32>;
@group(0) @binding(3) var<storage, read> na_beta: array<f32>;
@group(0) @binding(4) var<storage, read> na_mean: array<f32>; // (G)
@group(0) @binding(5) var<storage, read> na_var: array<f32>;  // variances from var_off
@group(0) @binding(6) var<storage, read_write> na_y: array<act>;
@group(0) @binding(7) var<storage, read> na_res: array<act>; // residual when flags bit 3

// Inference forward with given statistics (batch norm's running stats), one invocation per
// element: γ·x̂ + β, plus a residual when bound, then the fused neuron.
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
    var o = g * (f32(na_x[i]) - na_mean[k]) / sqrt(na_var[p.var_off + k] + p.eps) + b;
    if ((p.flags & 8u) != 0u) { o = o + f32(na_res[i]); }
    na_y[i] = act(post_op(p.act_len, p.act_op, p.act_a, p.act_b, o));
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
    let next = running_next(vec2<f32>(nr_mean[k], nr_var[k]),
                            vec2<f32>(nr_state[k], nr_state[p.groups + k]));
    nr_mean[k] = next.x;
    nr_var[k] = next.y;
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
        let dy = param_dy(i);
        acc = acc + vec2<accum>(vec2<f32>(dy * xh, dy));
    }
    let sums = reduce2(lid, acc);
    if (lid == 0u) {
        ng_dgamma[q] = sums.x;
        ng_dbeta[q] = sums.y;
    }
}
