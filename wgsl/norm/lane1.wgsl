// The chunked training kernels' lane (train.wgsl): one element. `E` lanes an invocation holds.

alias lane = act;
alias lanef = f32;
const LANES: u32 = 1u;
const E: u32 = 16u; // `CHUNK_PER_INVOCATION` on the host

fn lane_sum(v: f32) -> f32 {
    return v;
}

fn lane_first(v: f32) -> f32 {
    return v;
}

fn lane_dot(a: f32, b: f32) -> f32 {
    return a * b;
}

fn lane_post(v: f32) -> f32 {
    return post_op(p.act_len, p.act_op, p.act_a, p.act_b, v);
}

fn lane_grad(y: f32, dy: f32) -> f32 {
    return grad_from_out(y, dy);
}
