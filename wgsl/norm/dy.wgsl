// The norms' backward loads of dy (norm_backward_partial, norm_backward_dx, norm_param_grads) as
// they are: the `norm` shader. The `norm_dy` shader takes dy_neuron.wgsl instead.

fn partial_dy(i: u32) -> lanef {
    return lanef(nb_dy[i]);
}

fn dx_dy(i: u32) -> lanef {
    return lanef(nd_dy[i]);
}

fn param_dy(i: u32) -> f32 {
    return f32(ng_dy[i]);
}
