// backward_prep: for every (t, n, j), prev = h_{t-1} (section 0) and, for an LSTM, c_{t-1}
// (section 1) — h0/c0 or zeros where t is processed first — the operand of dW_hh's GEMM and of
// the cell gradients; and the carried gradients start as (dh_n, dc_n) or zeros. One invocation
// per element of (T, N, H), 256 per workgroup (see common.wgsl).

@group(0) @binding(1) var<storage, read> reserve: array<act>;
@group(0) @binding(2) var<storage, read> y: array<act>;          // (T, N, H)
@group(0) @binding(3) var<storage, read> h0: array<act>;         // (N, H) when has_init
@group(0) @binding(4) var<storage, read> c0: array<act>;         // (N, H) LSTM with has_init
@group(0) @binding(5) var<storage, read> dh_n: array<act>;       // (N, H) when has_dh
@group(0) @binding(6) var<storage, read> dc_n: array<act>;       // (N, H) when has_dc
@group(0) @binding(7) var<storage, read_write> prev: array<act>; // (1 or 2, T, N, H)
@group(0) @binding(8) var<storage, read_write> carry: array<f32>; // (2, N, H): dh, dc

@compute @workgroup_size(256)
fn backward_prep(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let NH = p.batch * p.hidden;
    let total = p.seq * NH;
    let g = group_id(wid, nwg);
    if (g > (total - 1u) / 256u) {
        return;
    }
    let i = g * 256u + lid;
    if (i >= total) {
        return;
    }
    let t = i / NH;
    let nj = i % NH;
    let init = p.has_init == 1u;
    if (processed_first(t)) {
        prev[i] = act(select(0.0, f32(h0[nj]), init));
    } else {
        prev[i] = act(f32(y[before(t) * NH + nj]));
    }
    if (p.cell == 1u) {
        let cells = p.seq * NH * 4u; // the LSTM reserve's gate section, (T, N, 4H)
        if (processed_first(t)) {
            prev[total + i] = act(select(0.0, f32(c0[nj]), init));
        } else {
            prev[total + i] = act(f32(reserve[cells + before(t) * NH + nj]));
        }
    }
    if (i < NH) {
        carry[i] = select(0.0, f32(dh_n[i]), p.has_dh == 1u);
        carry[NH + i] = select(0.0, f32(dc_n[i]), p.has_dc == 1u);
    }
}
