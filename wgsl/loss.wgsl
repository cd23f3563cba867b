// Losses (formulas: src/ops/loss/mod.rs): per-sample loss, its reduction over the batch, and
// the gradient w.r.t. the logits. One workgroup per sample walks its row of D values with a
// stride of WG and combines partial results with a shared-memory tree (barriers only, so nothing
// depends on the subgroup size). Grid: linear workgroup id = group_id (prelude.wgsl).
//
// Labels are bound as u32 words: class indices (N) as they are, dense labels (N, D) are f32 bits
// read through bitcast, so one binding serves both. Absent per-sample or class weights are
// flagged off and some read-only input is bound in their place.

struct Params {
    n: u32,          // samples
    d: u32,          // values per sample (classes)
    kind: u32,       // loss kind code (`kind_code` in src/ops/loss/gpu.rs)
    flags: u32,      // bit 0: class-index labels, 1: per-sample weights, 2: class weights,
                     // 3: KL input is log-probabilities, 4: KL labels are log-probabilities
    reduction: u32,  // 0 none, 1 sum, 2 mean, 3 sum by non-zero weights
    check_flag: u32, // loss_reduce_checked: health.wgsl's flag, word and code for a non-finite
    check_slot: u32, // loss (the compiler's scans of both outputs, done here instead)
    check_code: u32,
    ls: f32,         // label smoothing
    ls_k: f32,       // smoothing spreads ls over this many classes (D, or 2 for sigmoid CE)
    delta: f32,      // Huber's delta
    sum_scale: f32,  // Sum's factor: D for elementwise kinds (sum over every element), else 1
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 64u;
const COS_EPS: f32 = 1e-12;

var<workgroup> sh4: array<vec4<f32>, 64>;
var<workgroup> sh1: array<f32, 64>;

fn nan() -> f32 {
    return bitcast<f32>(0x7fc00000u);
}

// Sum of v over the workgroup; every invocation gets the total.
fn sum4(lid: u32, v: vec4<f32>) -> vec4<f32> {
    sh4[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            sh4[lid] = sh4[lid] + sh4[lid + s];
        }
        workgroupBarrier();
    }
    let r = sh4[0];
    workgroupBarrier(); // sh4 may be reused right after
    return r;
}

// Max (op 0) or sum (op 1) of v over the workgroup; every invocation gets the result.
fn combine1(lid: u32, v: f32, op: u32) -> f32 {
    sh1[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            if (op == 0u) {
                sh1[lid] = max(sh1[lid], sh1[lid + s]);
            } else {
                sh1[lid] = sh1[lid] + sh1[lid + s];
            }
        }
        workgroupBarrier();
    }
    let r = sh1[0];
    workgroupBarrier();
    return r;
}

fn softplus(x: f32) -> f32 {
    return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}

fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

// ---- per-row inputs, shared by forward and backward (same globals at bindings 1..4) ----

@group(0) @binding(1) var<storage, read> ls_x: array<act>;   // (N, D) logits / predictions
@group(0) @binding(2) var<storage, read> ls_lab: array<u32>; // (N) class indices or (N, D) f32 bits
@group(0) @binding(3) var<storage, read> ls_w: array<f32>;   // (N) per-sample weights
@group(0) @binding(4) var<storage, read> ls_cw: array<f32>;  // (D) class weights

fn index_labels() -> bool { return (p.flags & 1u) != 0u; }
fn has_weights() -> bool { return (p.flags & 2u) != 0u; }
fn has_class_weights() -> bool { return (p.flags & 4u) != 0u; }
fn kl_log_input() -> bool { return (p.flags & 8u) != 0u; }
fn kl_log_target() -> bool { return (p.flags & 16u) != 0u; }

// A class index outside 0..D poisons the sample (NaN loss and gradient) rather than read past
// the row; the eager API rejects it on the host first.
fn bad_label(n: u32) -> bool {
    return index_labels() && ls_lab[n] >= p.d;
}

// Raw label t of element j of sample n.
fn label(n: u32, j: u32) -> f32 {
    if (index_labels()) {
        return select(0.0, 1.0, ls_lab[n] == j);
    }
    return bitcast<f32>(ls_lab[n * p.d + j]);
}

// Smoothed label t' = (1 − ls)·t + ls/K.
fn smoothed(t: f32) -> f32 {
    return (1.0 - p.ls) * t + p.ls / p.ls_k;
}

fn class_weight(j: u32) -> f32 {
    if (has_class_weights()) {
        return ls_cw[j];
    }
    return 1.0;
}

fn sample_weight(n: u32) -> f32 {
    if (has_weights()) {
        return ls_w[n];
    }
    return 1.0;
}

// c_n of the Mean's divisor Σ c_n: the class weight of sample n's target for index labels with
// class weights (PyTorch's weighted mean), else 1. A bad index gives NaN, not a read past D.
fn target_weight(n: u32) -> f32 {
    if (index_labels() && has_class_weights()) {
        if (ls_lab[n] >= p.d) { return nan(); }
        return ls_cw[ls_lab[n]];
    }
    return 1.0;
}

// KL's (T, ln T) from a raw label t (T = exp(t) with log_target); `valid` false where T = 0
// contributes nothing (xlogy).
struct KlTarget {
    t: f32,
    log_t: f32,
    valid: bool,
}

fn kl_target(t: f32) -> KlTarget {
    if (kl_log_target()) {
        return KlTarget(exp(t), t, true);
    }
    if (t > 0.0) {
        return KlTarget(t, log(t), true);
    }
    return KlTarget(0.0, 0.0, false);
}

// Row statistics: the max of the row (softmax CE's shift) and the per-kind sums
//   softmax CE: (Σ e^{x−m}, Σ w·t'·(m − x), Σ w·t', 0)
//   cosine:     (Σ x², Σ t², Σ x·t, 0)
//   others:     (Σ of the elementwise term, 0, 0, 0)
struct Row {
    m: f32,
    s: vec4<f32>,
}

fn row_stats(n: u32, lid: u32) -> Row {
    let base = n * p.d;
    var m = -3.4028235e38;
    if (p.kind == 0u) {
        for (var j = lid; j < p.d; j = j + WG) {
            m = max(m, f32(ls_x[base + j]));
        }
        m = combine1(lid, m, 0u);
    }
    var acc = vec4<f32>(0.0);
    for (var j = lid; j < p.d; j = j + WG) {
        let x = f32(ls_x[base + j]);
        let t = label(n, j);
        switch p.kind {
            case 0u: { // softmax CE
                let wt = class_weight(j) * smoothed(t);
                acc = acc + vec4<f32>(exp(x - m), wt * (m - x), wt, 0.0);
            }
            case 1u: { // sigmoid CE
                acc.x = acc.x + softplus(x) - x * smoothed(t);
            }
            case 2u: { // categorical CE on probabilities
                let wt = class_weight(j) * smoothed(t);
                if (wt != 0.0) { acc.x = acc.x - wt * log(x); }
            }
            case 3u: { let e = x - t; acc.x = acc.x + e * e; }   // MSE
            case 4u: { acc.x = acc.x + abs(x - t); }           // MAE
            case 5u: { // Huber
                let e = abs(x - t);
                acc.x = acc.x + select(p.delta * (e - 0.5 * p.delta), 0.5 * e * e, e <= p.delta);
            }
            case 6u: { let h = 1.0 - t * x; acc.x = acc.x + select(h, 0.0, h <= 0.0); } // hinge (NaN stays)
            case 7u: { // KL divergence
                let k = kl_target(t);
                if (k.valid) {
                    acc.x = acc.x + k.t * (k.log_t - select(log(x), x, kl_log_input()));
                }
            }
            case 8u: { acc = acc + vec4<f32>(x * x, t * t, x * t, 0.0); } // cosine distance
            default: {}
        }
    }
    return Row(m, sum4(lid, acc));
}

// The unweighted per-sample loss from the row statistics.
fn row_loss(r: Row) -> f32 {
    let d = f32(p.d);
    switch p.kind {
        case 0u: { return r.s.y + r.s.z * log(r.s.x); } // Σ w·t'·(lse − x), lse = m + ln Σ e^{x−m}
        case 2u, 7u: { return r.s.x; }
        case 8u: {
            let nx = sqrt(max(r.s.x, COS_EPS));
            let nt = sqrt(max(r.s.y, COS_EPS));
            return 1.0 - r.s.z / (nx * nt);
        }
        default: { return r.s.x / d; }
    }
}

// d(per-sample loss)/dx_j.
fn row_grad(r: Row, n: u32, j: u32) -> f32 {
    let x = f32(ls_x[n * p.d + j]);
    let t = label(n, j);
    let d = f32(p.d);
    switch p.kind {
        case 0u: { // −w_j·t'_j + softmax_j · Σ w·t'
            let wt = class_weight(j) * smoothed(t);
            return -wt + exp(x - r.m) / r.s.x * r.s.z;
        }
        case 1u: { return (sigmoid(x) - smoothed(t)) / d; }
        case 2u: {
            let wt = class_weight(j) * smoothed(t);
            return select(0.0, -wt / x, wt != 0.0);
        }
        case 3u: { return 2.0 * (x - t) / d; }
        case 4u: { return sign(x - t) / d; }
        case 5u: { return clamp(x - t, -p.delta, p.delta) / d; }
        case 6u: { return select(0.0, -t, 1.0 - t * x > 0.0) / d; }
        case 7u: {
            let k = kl_target(t);
            return select(0.0, select(-k.t / x, -k.t, kl_log_input()), k.valid);
        }
        case 8u: {
            // u = x/‖x‖, v = t/‖t‖: −(v − u·(u·v))/‖x‖; the u term vanishes where ‖x‖ is clamped.
            let nx = sqrt(max(r.s.x, COS_EPS));
            let nt = sqrt(max(r.s.y, COS_EPS));
            let cos = r.s.z / (nx * nt);
            let proj = select(0.0, cos, r.s.x > COS_EPS);
            return -(t / nt - x / nx * proj) / nx;
        }
        default: { return 0.0; }
    }
}

// Divisor of the reduction: 1 (none, sum), Σ c_n (mean: N, or the targets' class weights),
// #{w ≠ 0} (sum by non-zero weights; N without weights). Computed cooperatively by the whole
// workgroup from the labels or `w` (N).
fn divisor_of(lid: u32) -> f32 {
    switch p.reduction {
        case 2u: {
            if (!(index_labels() && has_class_weights())) { return f32(p.n); }
            var c = 0.0;
            for (var j = lid; j < p.n; j = j + WG) {
                c = c + target_weight(j);
            }
            return combine1(lid, c, 1u);
        }
        case 3u: {
            if (!has_weights()) { return f32(p.n); }
            var c = 0.0;
            for (var j = lid; j < p.n; j = j + WG) {
                c = c + select(0.0, 1.0, ls_w[j] != 0.0);
            }
            return combine1(lid, c, 1u);
        }
        default: { return 1.0; }
    }
}

@group(0) @binding(5) var<storage, read_write> lf_per: array<f32>; // (N) weighted per-sample loss

// per[n] = w_n · loss(row n)
@compute @workgroup_size(64)
fn loss_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let n = group_id(wid, nwg);
    if (n >= p.n) { return; }
    let r = row_stats(n, lid);
    if (lid == 0u) {
        var l = sample_weight(n) * row_loss(r);
        if (bad_label(n)) { l = nan(); }
        lf_per[n] = l;
    }
}

@group(0) @binding(5) var<storage, read> lb_dloss: array<f32>;     // (N) or (1) upstream gradient
@group(0) @binding(6) var<storage, read_write> lb_dx: array<act>;  // (N, D)

// dx[n, j] = dloss · w_n / divisor · d loss(row n)/dx_j
@compute @workgroup_size(64)
fn loss_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let n = group_id(wid, nwg);
    if (n >= p.n) { return; }
    let div = divisor_of(lid);
    let r = row_stats(n, lid);
    var up = lb_dloss[0];
    if (p.reduction == 0u) { up = lb_dloss[n]; }
    var scale = 0.0;
    if (div != 0.0) { scale = up * sample_weight(n) * p.sum_scale / div; }
    let bad = bad_label(n);
    for (var j = lid; j < p.d; j = j + WG) {
        var g = scale * row_grad(r, n, j);
        if (bad) { g = nan(); }
        lb_dx[n * p.d + j] = act(g);
    }
}

@group(0) @binding(1) var<storage, read> lr_per: array<f32>;        // (N)
@group(0) @binding(5) var<storage, read_write> lr_out: array<f32>;  // (1)
@group(0) @binding(6) var<storage, read_write> lr_health: array<atomic<u32>>; // health.wgsl's
// Bindings 2..4 are the labels, weights and class weights (ls_lab, ls_w, ls_cw) as above.

// (Σ per · sum_scale / divisor, 0 when the divisor is 0; the per-sample losses not finite), in
// every invocation.
fn reduce_per_sample(lid: u32) -> vec2<f32> {
    var acc = vec4<f32>(0.0);
    for (var j = lid; j < p.n; j = j + WG) {
        var nz = 1.0;
        if (has_weights()) { nz = select(0.0, 1.0, ls_w[j] != 0.0); }
        let bad = select(0.0, 1.0, is_nonfinite(lr_per[j]));
        acc = acc + vec4<f32>(lr_per[j], nz, target_weight(j), bad);
    }
    let s = sum4(lid, acc);
    var div = 1.0;
    if (p.reduction == 2u) {
        div = f32(p.n);
        if (index_labels() && has_class_weights()) { div = s.z; }
    }
    if (p.reduction == 3u) { div = s.y; }
    return vec2<f32>(select(s.x * p.sum_scale / div, 0.0, div == 0.0), s.w);
}

// out = the reduced loss. One workgroup.
@compute @workgroup_size(64)
fn loss_reduce(@builtin(local_invocation_index) lid: u32) {
    let r = reduce_per_sample(lid);
    if (lid == 0u) { lr_out[0] = r.x; }
}

// loss_reduce, and the non-finite check of both outputs that health.wgsl's `scan` would make
// of each, in the same workgroup (two one-workgroup dispatches fewer): a non-finite per-sample
// or reduced loss sets `check_flag` and lowers word `check_slot` to `check_code`.
@compute @workgroup_size(64)
fn loss_reduce_checked(@builtin(local_invocation_index) lid: u32) {
    let r = reduce_per_sample(lid);
    if (lid == 0u) {
        lr_out[0] = r.x;
        if (r.y != 0.0 || is_nonfinite(r.x)) {
            atomicOr(&lr_health[0], p.check_flag);
            atomicMin(&lr_health[p.check_slot], p.check_code);
        }
    }
}
