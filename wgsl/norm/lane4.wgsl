// The chunked training kernels' lane (train.wgsl): four contiguous elements, one 16-byte load,
// where every run of a group is a whole number of them (the host's `Layout::lanes`). An
// invocation holds as many elements as with one-element lanes.

alias lane = vec4<act>;
alias lanef = vec4<f32>;
const LANES: u32 = 4u;
const E: u32 = 4u;

fn lane_sum(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

fn lane_first(v: vec4<f32>) -> f32 {
    return v.x;
}

fn lane_dot(a: vec4<f32>, b: vec4<f32>) -> f32 {
    return dot(a, b);
}

fn lane_post(v: vec4<f32>) -> vec4<f32> {
    let l = p.act_len;
    let o = p.act_op;
    return vec4<f32>(post_op(l, o, p.act_a, p.act_b, v.x), post_op(l, o, p.act_a, p.act_b, v.y),
                     post_op(l, o, p.act_a, p.act_b, v.z), post_op(l, o, p.act_a, p.act_b, v.w));
}

fn lane_grad(y: vec4<f32>, dy: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(grad_from_out(y.x, dy.x), grad_from_out(y.y, dy.y),
                     grad_from_out(y.z, dy.z), grad_from_out(y.w, dy.w));
}
