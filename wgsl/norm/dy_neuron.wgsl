// The norms' backward loads of dy with a neuron's gradient folded in (the `norm_dy` shader): the
// dy bound is the gradient at the neuron's output y, and each load applies the neuron's
// derivative from y (`GRAD_OP`, neuron.wgsl), so the masked gradient (ReLU: dy·[y > 0]) is never
// written. A separate shader, not a flag, so the plain backward keeps at most 8 storage bindings
// (norm_backward_dx takes a ninth here).

@group(0) @binding(6) var<storage, read> nb_y: array<lane>;
@group(0) @binding(9) var<storage, read> nd_y: array<lane>;
@group(0) @binding(7) var<storage, read> ng_y: array<act>;

fn partial_dy(i: u32) -> lanef {
    return lane_grad(lanef(nb_y[i]), lanef(nb_dy[i]));
}

fn dx_dy(i: u32) -> lanef {
    return lane_grad(lanef(nd_y[i]), lanef(nd_dy[i]));
}

fn param_dy(i: u32) -> f32 {
    return grad_from_out(f32(ng_y[i]), f32(ng_dy[i]));
}
