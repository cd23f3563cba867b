// step_backward: one time step of backpropagation through time (see common.wgsl), processed
// from the last forward step to the first. dG_x are the gradients of the gate pre-activations
// as the input projection sees them, dG_h as the recurrent product does: the same except GRU's
// n gate, whose recurrent part sits inside the reset product (dG_h = dG_x · r there). For RNN and
// LSTM both bindings are the same buffer.

@group(0) @binding(1) var<storage, read> reserve: array<act>;
@group(0) @binding(2) var<storage, read> w_hh: array<act>;         // (G·H, H)
@group(0) @binding(3) var<storage, read> prev: array<act>;         // (1 or 2, T, N, H)
@group(0) @binding(4) var<storage, read> dy: array<act>;           // (T, N, H) when has_dy
@group(0) @binding(5) var<storage, read_write> dg_x: array<act>;   // (T, N, G·H)
@group(0) @binding(6) var<storage, read_write> dg_h: array<act>;   // (T, N, G·H)
@group(0) @binding(7) var<storage, read_write> carry: array<f32>;  // (2, N, H)

fn dgh_at(t: u32, n: u32, k: u32) -> f32 {
    return f32(dg_h[(t * p.batch + n) * gates() * p.hidden + k]);
}

fn whh_at(k: u32, j: u32) -> f32 {
    return f32(w_hh[k * p.hidden + j]);
}

// The gate gradients of sequence n, unit j at step t, given rec = dG_h[t_next]·W_hh there.
fn cell_grad(n: u32, j: u32, rec: f32) {
    let H = p.hidden;
    let N = p.batch;
    let G = gates();
    let NH = N * H;
    let nj = n * H + j;
    let at = p.t * NH + nj;
    var dh = carry[nj] + rec;
    if (p.has_dy == 1u) {
        dh += f32(dy[at]);
    }
    let row = (p.t * N + n) * G * H;
    let extra = p.seq * N * G * H + at;
    switch p.cell {
        case 1u: {
            let i = f32(reserve[row + j]);
            let f = f32(reserve[row + H + j]);
            let g = f32(reserve[row + 2u * H + j]);
            let o = f32(reserve[row + 3u * H + j]);
            let tc = tanh(f32(reserve[extra]));
            let dc = carry[NH + nj] + dh * o * (1.0 - tc * tc);
            dg_x[row + j] = act(dc * g * i * (1.0 - i));
            dg_x[row + H + j] = act(dc * f32(prev[p.seq * NH + at]) * f * (1.0 - f));
            dg_x[row + 2u * H + j] = act(dc * i * (1.0 - g * g));
            dg_x[row + 3u * H + j] = act(dh * tc * o * (1.0 - o));
            carry[nj] = 0.0;
            carry[NH + nj] = dc * f;
        }
        case 2u: {
            let r = f32(reserve[row + j]);
            let z = f32(reserve[row + H + j]);
            let nn = f32(reserve[row + 2u * H + j]);
            let hn = f32(reserve[extra]);
            let dn = dh * (1.0 - z) * (1.0 - nn * nn);
            let dr = dn * hn * r * (1.0 - r);
            let dz = dh * (f32(prev[at]) - nn) * z * (1.0 - z);
            dg_x[row + j] = act(dr);
            dg_x[row + H + j] = act(dz);
            dg_x[row + 2u * H + j] = act(dn);
            dg_h[row + j] = act(dr);
            dg_h[row + H + j] = act(dz);
            dg_h[row + 2u * H + j] = act(dn * r);
            carry[nj] = dh * z;
        }
        default: {
            dg_x[row + j] = act(unary_b(p.act, f32(reserve[row + j]), dh, p.act_a, p.act_b));
            carry[nj] = 0.0;
        }
    }
}

@compute @workgroup_size(16, 16)
fn step_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                 @builtin(local_invocation_index) index: u32) {
    var rec = 0.0;
    if (p.step + 1u < p.seq) {
        rec = back_product(wid, lid, index, after(p.t));
    }
    let j = wid.x * TILE + lid.x;
    let n = wid.y * TILE + lid.y;
    if (j < p.hidden && n < p.batch) {
        cell_grad(n, j, rec);
    }
}
