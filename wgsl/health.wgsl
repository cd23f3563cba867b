// Non-finite guards of a training step (src/health.rs). One small buffer of u32 words:
//   [0] this step's flags (H_LOSS | H_GRAD | H_ACT), [1] smallest gradient-arena index found
//   non-finite, [2] smallest node index with a non-finite output, [3] scratch;
//   [4] steps skipped since `Compiled::reset_health`, [5] the first skipped step (1-based, 0:
//   none), and [6..9] that step's words 0..2; [9] every flag seen.
// `scan` runs after a node (its outputs) or over the gradient arena (a reducing loss's
// `loss_reduce_checked`, wgsl/loss.wgsl, sets the words of its outputs' scans itself); the
// optimizer's kernels skip the update while word 0 is set; `finish`, after the update, records
// the step and clears 0..3.

const H_NONE: u32 = 0xffffffffu;

struct HealthParams {
    n: u32,     // elements scanned
    flag: u32,  // the bit a non-finite element sets in word 0
    slot: u32,  // the word that takes the smallest code
    code: u32,  // the code recorded (H_NONE: base + the element's index)
    base: u32,
    step: u32,  // finish: this step's number, 1-based
}

@group(0) @binding(0) var<uniform> hp: HealthParams;
@group(0) @binding(1) var<storage, read> hs_x: array<act>;
@group(0) @binding(2) var<storage, read_write> hs_health: array<atomic<u32>>;

var<workgroup> hs_first: atomic<u32>;

// 4 elements per invocation, 1024 per workgroup; one global atomic per workgroup that finds any.
@compute @workgroup_size(256)
fn scan(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    if (lid == 0u) {
        atomicStore(&hs_first, H_NONE);
    }
    workgroupBarrier();
    let start = group_id(wid, nwg) * 1024u;
    for (var k = 0u; k < 4u; k = k + 1u) {
        let i = start + k * 256u + lid;
        if (i < hp.n && is_nonfinite(f32(hs_x[i]))) {
            atomicMin(&hs_first, i);
        }
    }
    workgroupBarrier();
    if (lid == 0u) {
        let first = atomicLoad(&hs_first);
        if (first != H_NONE) {
            atomicOr(&hs_health[0], hp.flag);
            atomicMin(&hs_health[hp.slot], select(hp.code, hp.base + first, hp.code == H_NONE));
        }
    }
}

@group(0) @binding(1) var<storage, read_write> hf_health: array<u32>;

// One invocation, after the update read the flags: counts a flagged step, keeps the first
// one's words, and clears the flags so the next step starts clean (one dispatch, not two).
@compute @workgroup_size(1)
fn finish() {
    let flags = hf_health[0];
    if (flags != 0u) {
        hf_health[4] = hf_health[4] + 1u;
        if (hf_health[5] == 0u) {
            hf_health[5] = hp.step;
            hf_health[6] = flags;
            hf_health[7] = hf_health[1];
            hf_health[8] = hf_health[2];
        }
        hf_health[9] = hf_health[9] | flags;
    }
    hf_health[0] = 0u;
    hf_health[1] = H_NONE;
    hf_health[2] = H_NONE;
    hf_health[3] = H_NONE;
}

@group(0) @binding(1) var<storage, read_write> hu_health: array<u32>;
@group(0) @binding(2) var<storage, read_write> hu_scale: array<f32>; // [scale, clean steps]

// Dynamic loss scaling, after the update read the flags and before `finish` clears them: a
// flagged step (its update skipped) halves the scale; `hp.n` clean steps in a row double it.
// Bounded to [2^-24, 2^24] so the scale itself never flushes to 0 or overflows.
@compute @workgroup_size(1)
fn scale_update() {
    if (hu_health[0] != 0u) {
        hu_scale[0] = max(hu_scale[0] * 0.5, 5.9604645e-8);
        hu_scale[1] = 0.0;
        return;
    }
    let clean = hu_scale[1] + 1.0;
    if (clean >= f32(hp.n)) {
        hu_scale[0] = min(hu_scale[0] * 2.0, 16777216.0);
        hu_scale[1] = 0.0;
    } else {
        hu_scale[1] = clean;
    }
}
