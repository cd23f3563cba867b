// Dropout: a counter-based keep mask (no RNG state), bit-identical to `ops::dropout::dropout_mask`.
// keep(i) = pcg(key ^ pcg(i)) >= threshold, with key, threshold and scale computed on the host.
// One invocation per element; 256 per workgroup; 2-D grid (see `grid_1d` in src/launch.rs).

struct Params {
    n: u32,
    key: u32,
    threshold: u32,
    scale: f32, // 1 / (1 − rate), rounded to f32
}

@group(0) @binding(0) var<uniform> p: Params;

// PCG-RXS-M-XS (Jarzynski & Olano 2020); u32 arithmetic wraps, as in the Rust spec.
fn pcg(v: u32) -> u32 {
    let s = v * 747796405u + 2891336453u;
    let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    return (w >> 22u) ^ w;
}

@group(0) @binding(1) var<storage, read> df_x: array<act>;
@group(0) @binding(2) var<storage, read_write> df_y: array<act>;
@group(0) @binding(3) var<storage, read_write> df_mask: array<u32>; // 1 = kept

// y = keep ? x·scale : 0; the mask is kept as the state the backward reads.
@compute @workgroup_size(256)
fn dropout_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let keep = pcg(p.key ^ pcg(i)) >= p.threshold;
    df_mask[i] = select(0u, 1u, keep);
    df_y[i] = act(select(0.0, f32(df_x[i]) * p.scale, keep));
}

@group(0) @binding(1) var<storage, read> db_dy: array<act>;
@group(0) @binding(2) var<storage, read> db_mask: array<u32>;
@group(0) @binding(3) var<storage, read_write> db_dx: array<act>;

// dx = mask ? dy·scale : 0 (dropout is linear in x).
@compute @workgroup_size(256)
fn dropout_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    db_dx[i] = act(select(0.0, f32(db_dy[i]) * p.scale, db_mask[i] != 0u));
}

@group(0) @binding(1) var<storage, read> do_dy: array<act>;
@group(0) @binding(2) var<storage, read> do_mask: array<u32>;
@group(0) @binding(3) var<storage, read> do_y: array<act>;
@group(0) @binding(4) var<storage, read_write> do_dx: array<act>;

// dropout_backward followed by the gradient of the neuron whose output y is the dropout's
// input (`GRAD_OP`): fc → ReLU → dropout's backward in one dispatch.
@compute @workgroup_size(256)
fn dropout_backward_out(@builtin(workgroup_id) wid: vec3<u32>,
                        @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    let dx = select(0.0, f32(do_dy[i]) * p.scale, do_mask[i] != 0u);
    do_dx[i] = act(grad_from_out(f32(do_y[i]), dx));
}

@group(0) @binding(1) var<storage, read> dc_x: array<act>;
@group(0) @binding(2) var<storage, read_write> dc_y: array<act>;

// Inference: y = x, for when the output must land in a buffer of its own.
@compute @workgroup_size(256)
fn dropout_copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    dc_y[i] = act(f32(dc_x[i]));
}
