// Built-in optimizers, one fused kernel each, in place over the flat parameter arena, following
// the operation order of PyTorch's single-tensor implementations (torch.optim.SGD/Adam/AdamW/
// RMSprop). Clipping by global norm is two passes before the update: norm_partial (one partial
// sum of squares per chunk) and norm_finish (one workgroup sums the partials). Both reduce in a
// fixed order — a serial loop per invocation, then a halving tree in workgroup memory — so the
// result does not depend on subgroup size or scheduling, and a run is bit-reproducible.

var<workgroup> opt_red: array<f32, 256>;

// Tree-sums opt_red[0..256] into opt_red[0]; every invocation of the workgroup must call it.
fn opt_tree_sum(lid: u32) {
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        workgroupBarrier();
        if (lid < s) {
            opt_red[lid] = opt_red[lid] + opt_red[lid + s];
        }
    }
    workgroupBarrier();
}

// opt_norm[c] = sum over chunk c of (rescale * g)^2
@compute @workgroup_size(256)
fn norm_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let c = opt_chunk_id(wid, nwg);
    var acc = 0.0;
    if (c < cfg.n_chunks) {
        let e = opt_chunk(c);
        for (var i = e.x + lid; i < e.y; i = i + WG) {
        let j = i - cfg.base;
            let g = opt_grads[j] * cfg.rescale;
            acc = acc + g * g;
        }
    }
    opt_red[lid] = acc;
    opt_tree_sum(lid);
    if (lid == 0u && c < cfg.n_chunks) {
        opt_norm[c] = opt_red[0];
    }
}

@group(0) @binding(1) var<storage, read_write> nf_norm: array<f32>;

// One workgroup: total = sqrt(sum of the partials); scale = min(1, max_norm / (total + 1e-6)),
// PyTorch's clip_grad_norm_ coefficient.
@compute @workgroup_size(256)
fn norm_finish(@builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    for (var c = lid; c < cfg.n_chunks; c = c + WG) {
        acc = acc + nf_norm[c];
    }
    opt_red[lid] = acc;
    opt_tree_sum(lid);
    if (lid == 0u) {
        let total = sqrt(opt_red[0]);
        nf_norm[cfg.n_chunks] = min(cfg.max_norm / (total + 1e-6), 1.0);
        nf_norm[cfg.n_chunks + 1u] = total;
    }
}

// SGD: g += wd p; b = g at step 1, else momentum b + (1 - dampening) g; g = g + momentum b
// (Nesterov) or b; p -= lr g. State: slot_a = momentum_buffer (when momentum != 0).
@compute @workgroup_size(256)
fn sgd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let c = opt_chunk_id(wid, nwg);
    if (c >= cfg.n_chunks || opt_skipped()) {
        return;
    }
    let e = opt_chunk(c);
    let lr = opt_step.groups[e.z].x;
    let wd = opt_weight_decay(e.z);
    for (var i = e.x + lid; i < e.y; i = i + WG) {
        let j = i - cfg.base;
        let w = opt_params[j];
        var g = opt_grad(j, e.z, w);
        if (wd != 0.0) {
            g = g + wd * w;
        }
        if (cfg.momentum != 0.0) {
            let k = cfg.slot_a * cfg.n + j;
            var b = g;
            if (opt_step.head.x > 1u) {
                b = opt_state[k] * cfg.momentum + cfg.dampening_w * g;
            }
            opt_state[k] = b;
            if ((cfg.flags & F_NESTEROV) != 0u) {
                g = g + cfg.momentum * b;
            } else {
                g = b;
            }
        }
        opt_params[j] = w - lr * g;
    }
}

// Adam / AdamW: p *= 1 - lr wd (AdamW) or g += wd p (Adam); m = lerp(m, g, 1 - beta1);
// v = beta2 v + (1 - beta2) g^2; vmax = max(vmax, v) (AMSGrad);
// p -= lr / (1 - beta1^t) * m / (sqrt(v or vmax) / sqrt(1 - beta2^t) + eps).
// State: slot_a = exp_avg, slot_b = exp_avg_sq, slot_c = max_exp_avg_sq (AMSGrad).
// Each invocation takes four elements a pass (i + q·WG, q < 4), all loaded before any is
// stored: four times the bytes in flight of one element at a time, which the update needs to
// approach the memory's bandwidth.
// One element's update: `gs` and `wd` are its group's step values and weight decay.
fn adam_one(j: u32, gs: vec4<f32>, wd: f32, w0: f32, g0: f32, m0: f32, v0: f32) {
    var w = w0;
    var g = g0;
    if ((cfg.flags & F_DECOUPLED) != 0u) {
        w = w * gs.z;
    } else if (wd != 0.0) {
        g = g + wd * w;
    }
    let m = opt_lerp(m0, g, cfg.beta1_w);
    let v = v0 * cfg.beta2 + cfg.beta2_w * g * g;
    opt_state[cfg.slot_a * cfg.n + j] = m;
    opt_state[cfg.slot_b * cfg.n + j] = v;
    var vhat = v;
    if ((cfg.flags & F_AMSGRAD) != 0u) {
        let kx = cfg.slot_c * cfg.n + j;
        vhat = max(opt_state[kx], v);
        opt_state[kx] = vhat;
    }
    let denom = sqrt(vhat) / opt_step.bias.x + cfg.eps;
    opt_params[j] = w - gs.y * (m / denom);
}

@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let c = opt_chunk_id(wid, nwg);
    if (c >= cfg.n_chunks || opt_skipped()) {
        return;
    }
    let e = opt_chunk(c);
    let gs = opt_step.groups[e.z];
    let wd = opt_weight_decay(e.z);
    for (var i = e.x + lid; i < e.y; i = i + 4u * WG) {
        // Elements past the chunk load element i's values (in range) and store nothing.
        let q = vec4<u32>(0u, WG, 2u * WG, 3u * WG);
        let live = i + q < vec4<u32>(e.y);
        let j = select(vec4<u32>(i), i + q, live) - cfg.base;
        let w = vec4<f32>(opt_params[j.x], opt_params[j.y], opt_params[j.z], opt_params[j.w]);
        let g = vec4<f32>(opt_grad(j.x, e.z, w.x), opt_grad(j.y, e.z, w.y),
                          opt_grad(j.z, e.z, w.z), opt_grad(j.w, e.z, w.w));
        let km = cfg.slot_a * cfg.n;
        let m = vec4<f32>(opt_state[km + j.x], opt_state[km + j.y], opt_state[km + j.z],
                          opt_state[km + j.w]);
        let kv = cfg.slot_b * cfg.n;
        let v = vec4<f32>(opt_state[kv + j.x], opt_state[kv + j.y], opt_state[kv + j.z],
                          opt_state[kv + j.w]);
        adam_one(j.x, gs, wd, w.x, g.x, m.x, v.x);
        if (live.y) { adam_one(j.y, gs, wd, w.y, g.y, m.y, v.y); }
        if (live.z) { adam_one(j.z, gs, wd, w.z, g.z, m.z, v.z); }
        if (live.w) { adam_one(j.w, gs, wd, w.w, g.w, m.w, v.w); }
    }
}

// RMSprop: g += wd p; s = alpha s + (1 - alpha) g^2; centered: a = lerp(a, g, 1 - alpha),
// d = sqrt(s - a^2) + eps, else d = sqrt(s) + eps; momentum: b = momentum b + g / d, p -= lr b;
// else p -= lr g / d. State: slot_a = square_avg, slot_b = momentum_buffer, slot_c = grad_avg.
@compute @workgroup_size(256)
fn rmsprop(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let c = opt_chunk_id(wid, nwg);
    if (c >= cfg.n_chunks || opt_skipped()) {
        return;
    }
    let e = opt_chunk(c);
    let lr = opt_step.groups[e.z].x;
    let wd = opt_weight_decay(e.z);
    for (var i = e.x + lid; i < e.y; i = i + WG) {
        let j = i - cfg.base;
        let w = opt_params[j];
        var g = opt_grad(j, e.z, w);
        if (wd != 0.0) {
            g = g + wd * w;
        }
        let ks = cfg.slot_a * cfg.n + j;
        let s = opt_state[ks] * cfg.alpha + cfg.alpha_w * g * g;
        opt_state[ks] = s;
        var avg: f32;
        if ((cfg.flags & F_CENTERED) != 0u) {
            let kg = cfg.slot_c * cfg.n + j;
            let a = opt_lerp(opt_state[kg], g, cfg.alpha_w);
            opt_state[kg] = a;
            avg = sqrt(s - a * a);
        } else {
            avg = sqrt(s);
        }
        avg = avg + cfg.eps;
        if (cfg.momentum > 0.0) {
            let kb = cfg.slot_b * cfg.n + j;
            let b = opt_state[kb] * cfg.momentum + g / avg;
            opt_state[kb] = b;
            opt_params[j] = w - lr * b;
        } else {
            opt_params[j] = w - lr * (g / avg);
        }
    }
}
