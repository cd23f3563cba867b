// Recurrent layers (RNN, LSTM, GRU): what every recurrent kernel shares. See `ops::recurrent` for
// the cells, gate orders and the reserve layout; `ops::recurrent::reference` is the f64 oracle.
// The input projection of all steps (x·W_ihᵀ + b_ih) and the weight gradients are GEMMs run
// before and after; the kernels here do only what depends on the previous step:
//
//   forward.wgsl   step_forward (t):  pre = reserve_gates[t] + h_{t-1}·W_hhᵀ + b_hh -> cell
//                                     -> y[t], reserve[t], and h_n / c_n at the last step
//   prep.wgsl      backward_prep:     prev = (h_{t-1}, c_{t-1}) for every t; carry = (dh_n, dc_n)
//   backward.wgsl  step_backward (t): dh = dy[t] + carry_h + dG_h[t_next]·W_hh -> dG_x[t],
//                                     dG_h[t]; carry_h = GRU's direct z·dh, carry_c = f·dc
//   final.wgsl     backward_final:    dh0 = carry_h + dG_h[first]·W_hh, dc0 = carry_c
//
// The step kernels compute a 16 (hidden units j) × 16 (sequences n) tile per workgroup, the
// recurrent product through workgroup memory in 16-wide slices of its reduction. Every invocation
// runs every barrier (out-of-range ones load zeros and write nothing).

struct Params {
    t: u32,        // time position of this step
    step: u32,     // processing index of t: 0 is the first step of the forward pass
    seq: u32,      // T
    batch: u32,    // N
    hidden: u32,   // H
    cell: u32,     // 0 RNN, 1 LSTM, 2 GRU
    act: u32,      // RNN neuron op code (wgsl/neuron.wgsl)
    act_a: f32,
    act_b: f32,
    has_bias: u32, // b_hh bound
    has_init: u32, // h0 (and c0) bound
    reverse: u32,
    has_dy: u32,   // upstream dy bound
    has_dh: u32,   // upstream dh_n bound
    has_dc: u32,   // upstream dc_n bound (LSTM)
}

@group(0) @binding(0) var<uniform> p: Params;

const TILE: u32 = 16u;

fn gates() -> u32 {
    switch p.cell {
        case 1u: { return 4u; }
        case 2u: { return 3u; }
        default: { return 1u; }
    }
}

// The time position processed before `t` (only valid when t is not processed first).
fn before(t: u32) -> u32 {
    return select(t - 1u, t + 1u, p.reverse == 1u);
}

// The time position processed after `t` (only valid when t is not processed last).
fn after(t: u32) -> u32 {
    return select(t + 1u, t - 1u, p.reverse == 1u);
}

// Whether `t` is the first time position processed by the forward pass.
fn processed_first(t: u32) -> bool {
    return t == select(0u, p.seq - 1u, p.reverse == 1u);
}
