// What both cooperative-matrix GEMM cores share (gemm_coop.wgsl, gemm_coop_wide.wgsl): the
// parameters, the stored-layout overrides and the epilogue. The core declares `scratch` (one
// 16×16 f32 tile per subgroup) and the C part supplies get_c, put_c and store_direct.

struct CoopParams {
    m: u32,
    n: u32,
    k: u32,
    a_stride: u32,   // elements between batches of A (0 = shared)
    b_stride: u32,
    c_stride: u32,
    accumulate: u32,
    alpha: f32,
    act_len: u32,    // fused post-op: 0 = none, 1 = the neuron act_op(act_a, act_b)
    act_op: u32,
    act_a: f32,
    act_b: f32,
    // 1: a workgroup whose block is inside C stores the accumulators straight to C (coop.rs sets
    // it when there is nothing to apply — alpha 1, no accumulate, no neuron, no bias — and rows
    // of C are 16-byte aligned); 0: every tile goes through workgroup memory and guarded stores.
    direct: u32,
    has_bias: u32,   // the epilogue adds coop_bias[n] before the neuron
}

@group(0) @binding(0) var<uniform> p: CoopParams;
// f16 whatever C's type (a dense layer's f16 compute copy); without a bias, any f16 buffer.
@group(0) @binding(4) var<storage, read> coop_bias: array<f16>;   // (N,)

override TA: bool = false;
override TB: bool = false;

// One 16×16 tile of C at (m, n) (absolute): straight from the accumulator when `direct` (the
// whole block is inside C), else through this subgroup's scratch tile, each lane then storing
// 8 values (two rows of 16 per pass) with alpha, accumulate, the neuron and the bounds applied.
// Called by every invocation of the workgroup alike (the barriers need uniform control flow).
fn store_tile(t: coop_mat16x16<f32, C>, batch: u32, m: u32, n: u32, direct: bool, sg: u32,
              lane: u32) {
    if (direct) {
        let i = batch * p.c_stride + m * p.n + n;
        store_direct(t, i);
        return;
    }
    let s = sg * 256u;
    coopStoreT(t, &scratch[s], 16u);
    workgroupBarrier();
    for (var row2 = 0u; row2 < 8u; row2 = row2 + 1u) {
        let r = 2u * row2 + lane / 16u;
        let c = lane % 16u;
        if (m + r < p.m && n + c < p.n) {
            let i = batch * p.c_stride + (m + r) * p.n + n + c;
            var v = p.alpha * scratch[s + r * 16u + c];
            if (p.accumulate != 0u) {
                v = v + get_c(i);
            }
            if (p.has_bias != 0u) {
                v = v + f32(coop_bias[n + c]);
            }
            put_c(i, post_op(p.act_len, p.act_op, p.act_a, p.act_b, v));
        }
    }
    workgroupBarrier();
}

