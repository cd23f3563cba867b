// Custom optimizer template: wraps the user's
//     fn update(i: u32, p: f32, g: f32, step: u32, lr: f32) -> f32
// (returns the new value of parameter element i) in a kernel over the arena. `i` is the element's
// index as bound: its arena index with resident weights, its index inside one parameter
// just-in-time; use it only with state_get / state_set. `g` is already
// preprocessed (rescale, clipping, L1/L2) with the group's weight decay added as L2, like SGD;
// `step` is 1-based; `lr` is the group's scheduled learning rate. State slots (as many as the
// optimizer declares) are read and written through state_get / state_set.

fn state_get(slot: u32, i: u32) -> f32 {
    return opt_state[slot * cfg.n + i];
}

fn state_set(slot: u32, i: u32, v: f32) {
    opt_state[slot * cfg.n + i] = v;
}

@compute @workgroup_size(256)
fn custom_update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    // Binds the state buffer even when the update keeps no state (every binding must be used).
    _ = &opt_state;
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
        opt_params[j] = update(j, w, g, opt_step.head.x, lr);
    }
}
