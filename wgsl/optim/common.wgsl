// Optimizers over a flat parameter arena: declarations shared by the built-in kernels
// (builtin.wgsl) and the custom-optimizer template (custom.wgsl).
//
// The arena is cut into chunks of at most CHUNK elements, each inside one range of one parameter
// group; workgroup c handles chunk c (2-D grid, see `grid_1d` in src/launch.rs). The chunk table
// lives in `opt_tbl` after the per-group settings, so a kernel never searches for an element's
// group.
// Gradient preprocessing, in this order: rescale, clip by global norm (the scale comes from
// norm_finish), clip by value, then L1 and L2 regularisation added to the gradient.

const WG: u32 = 256u;

const F_CLIP_NORM: u32 = 1u;
const F_CLIP_VALUE: u32 = 2u;
const F_NESTEROV: u32 = 4u;
const F_AMSGRAD: u32 = 8u;
const F_CENTERED: u32 = 16u;
const F_DECOUPLED: u32 = 32u;

struct OptParams {
    n: u32,            // elements in the arena (the stride between state slots)
    n_chunks: u32,
    chunk_base: u32,   // word index of the chunk list in opt_tbl
    flags: u32,        // F_* bits
    rescale: f32,
    clip_value: f32,
    max_norm: f32,
    base: u32,         // arena element at index 0 of the bound params, grads and state rows
    momentum: f32,     // SGD, RMSProp
    dampening_w: f32,  // SGD: 1 - dampening
    beta1_w: f32,      // Adam: 1 - beta1 (the lerp weight)
    beta2: f32,
    beta2_w: f32,      // Adam: 1 - beta2
    eps: f32,          // Adam, RMSProp
    alpha: f32,        // RMSProp
    alpha_w: f32,      // RMSProp: 1 - alpha
    slot_a: u32,       // state slots (rows of opt_state) used by the algorithm, see optim/mod.rs
    slot_b: u32,
    slot_c: u32,
    _p1: u32,
}

// Per-step values, written by the host before each step (Optimizer::prepare_step).
struct OptStep {
    head: vec4<u32>,          // x = step t (1-based)
    bias: vec4<f32>,          // x = sqrt(1 - beta2^t) (Adam)
    groups: array<vec4<f32>, 256>, // per group: x = lr, y = lr / (1 - beta1^t), z = 1 - lr * weight_decay
}

@group(0) @binding(0) var<uniform> cfg: OptParams;

// Group settings (4 words each: weight_decay, l1, l2, unused; f32 bits) then chunks
// (4 words each: start, end, group, unused).
@group(0) @binding(1) var<storage, read> opt_tbl: array<u32>;
@group(0) @binding(2) var<storage, read> opt_grads: array<f32>;
// Norm partials, one per chunk, then [n_chunks] = clip scale and [n_chunks + 1] = total norm.
@group(0) @binding(3) var<storage, read_write> opt_norm: array<f32>;
@group(0) @binding(4) var<uniform> opt_step: OptStep;
@group(0) @binding(5) var<storage, read_write> opt_params: array<f32>;
// Optimizer state: slot s of bound element j at s * cfg.n + j.
@group(0) @binding(6) var<storage, read_write> opt_state: array<f32>;

// The step's non-finite guard (src/health.rs): word 0 set means something was NaN or
// infinite (loss, gradients): the update kernels leave parameters and state as they are.
@group(0) @binding(7) var<storage, read> opt_health: array<u32>;

fn opt_skipped() -> bool {
    return opt_health[0] != 0u;
}

fn opt_chunk_id(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// (start, end, group) of chunk c.
fn opt_chunk(c: u32) -> vec3<u32> {
    let b = cfg.chunk_base + 4u * c;
    return vec3<u32>(opt_tbl[b], opt_tbl[b + 1u], opt_tbl[b + 2u]);
}

fn opt_weight_decay(grp: u32) -> f32 {
    return bitcast<f32>(opt_tbl[4u * grp]);
}

// The gradient of bound element j (parameter value w) after rescale, clipping and L1/L2 terms.
fn opt_grad(j: u32, grp: u32, w: f32) -> f32 {
    var g = opt_grads[j] * cfg.rescale;
    if ((cfg.flags & F_CLIP_NORM) != 0u) {
        g = g * opt_norm[cfg.n_chunks];
    }
    if ((cfg.flags & F_CLIP_VALUE) != 0u) {
        g = clamp(g, -cfg.clip_value, cfg.clip_value);
    }
    let l1 = bitcast<f32>(opt_tbl[4u * grp + 1u]);
    let l2 = bitcast<f32>(opt_tbl[4u * grp + 2u]);
    if (l1 != 0.0) {
        g = g + l1 * sign(w);
    }
    if (l2 != 0.0) {
        g = g + l2 * w;
    }
    return g;
}

// PyTorch's lerp: a + t (b - a), computed from the nearer end as aten does.
fn opt_lerp(a: f32, b: f32, t: f32) -> f32 {
    if (abs(t) < 0.5) {
        return a + t * (b - a);
    }
    return b - (b - a) * (1.0 - t);
}
