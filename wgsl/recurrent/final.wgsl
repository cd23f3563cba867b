// backward_final: the gradients of the initial state once every step is done (see
// common.wgsl): dh0 = carry_h + dG_h[first]·W_hh, dc0 = carry_c (LSTM).

@group(0) @binding(1) var<storage, read> w_hh: array<act>;        // (G·H, H)
@group(0) @binding(2) var<storage, read> dg_h: array<act>;        // (T, N, G·H)
@group(0) @binding(3) var<storage, read> carry: array<f32>;       // (2, N, H)
@group(0) @binding(4) var<storage, read_write> dh0: array<act>;   // (N, H)
@group(0) @binding(5) var<storage, read_write> dc0: array<act>;   // (N, H) LSTM

fn dgh_at(t: u32, n: u32, k: u32) -> f32 {
    return f32(dg_h[(t * p.batch + n) * gates() * p.hidden + k]);
}

fn whh_at(k: u32, j: u32) -> f32 {
    return f32(w_hh[k * p.hidden + j]);
}

fn initial_grad(n: u32, j: u32, rec: f32) {
    let NH = p.batch * p.hidden;
    let nj = n * p.hidden + j;
    dh0[nj] = act(carry[nj] + rec);
    if (p.cell == 1u) {
        dc0[nj] = act(carry[NH + nj]);
    }
}

@compute @workgroup_size(16, 16)
fn backward_final(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                  @builtin(local_invocation_index) index: u32) {
    let rec = back_product(wid, lid, index, p.t);
    let j = wid.x * TILE + lid.x;
    let n = wid.y * TILE + lid.y;
    if (j < p.hidden && n < p.batch) {
        initial_grad(n, j, rec);
    }
}
