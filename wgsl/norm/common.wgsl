// Normalisation (batch, instance, group, layer norm), forward and backward.
//
// Every norm is one engine: element i of x belongs to statistics group `(i / gdiv) % groups` and
// reads affine parameter `(i / pdiv) % pmod`. Group k holds `m` elements, laid out as runs of
// `run` contiguous elements `run_stride` apart starting at `k * gdiv`:
//   batch    (N, C, S): group c, runs of S with stride C·S (N of them); param c
//   instance (N, C, S): group (n, c), one run of S;                    param c
//   group    (N, C, S): group (n, g), C/G contiguous runs of S;        param c
//   layer    (R, I):    group r, one run of I;                         param i (elementwise)
// Statistics are a (2, groups) state: mean, then the biased variance, exactly the pair the
// backward and the running-stat update need.
//
// Training kernels work on chunks: workgroup (k, c) of a (groups · chunks) grid takes elements
// [c·clen, c·clen + clen) of group k, WG·E at most, one register each per invocation (invocation
// `lid` holds elements lid, lid + WG, ...: neighbours read neighbours). A group of at most WG·E
// elements is one chunk, and its kernel does everything from those registers in one pass over x
// (one dispatch). A larger group is split: a partial dispatch reduces each chunk (forward: mean
// and M2 = Σ(x − mean)², each invocation's two-pass over its registers, merged by Chan's formula,
// no cancellation; backward: the two sums dx needs). The forward then merges a group's chunks in
// a combine dispatch of one workgroup per group (norm_stats_combine: the state, and batch norm's
// running statistics), and its main dispatch reads two values per workgroup; the backward's dx
// workgroups sum their group's partials themselves (plain sums, one tree). Elements are walked as
// (run n, offset s), advanced by WG without a division; the affine parameter of (n, s) in group k
// is (k % pgroups)·pmul + n·pstep + s·sstep.
// The chunked kernels see x as lanes (lane1.wgsl: one element; lane4.wgsl: four contiguous ones,
// one 16-byte load, where every run is a whole number of them): `m`, `run`, `run_stride`, `gdiv`,
// `clen` and the walk count lanes there, and E is lanes per invocation.
// Reductions within a workgroup are a shared-memory tree (no subgroup ops, so nothing depends on
// the subgroup size). The sums are `accum` (f32, or f16 under Accumulator::F16); everything else
// is f32, the partials and the merges of moments included.

struct Params {
    groups: u32,     // statistics groups G
    m: u32,          // elements per group
    run: u32,        // contiguous run length inside a group
    run_stride: u32, // distance between the runs of a group
    gdiv: u32,       // group of element i: (i / gdiv) % groups; group k starts at k · gdiv
    pdiv: u32,       // affine parameter of element i: (i / pdiv) % pmod
    pmod: u32,       // number of affine parameters P
    total: u32,      // elements of x
    flags: u32,      // bit 0: gamma bound, bit 1: beta bound (else the slot holds x, unread);
                     // bit 2: norm_backward_dx writes dγ, dβ (parameter k = group k, batch norm);
                     // bit 3: the forwards add a residual before the fused neuron;
                     // bit 4: norm_stats_combine updates the running statistics
    var_off: u32,    // index of the first variance in the variance binding
    eps: f32,
    momentum: f32,   // running-stat update: new = keep · old + momentum · batch
    keep: f32,       // 1 − momentum (computed on the host)
    unbias: f32,     // M / (M − 1): biased → unbiased variance for the running estimate
    act_len: u32,    // fused post-op (0 = none, 1 = the neuron below) on the forward outputs
    act_op: u32,
    act_a: f32,
    act_b: f32,
    chunks: u32,     // chunks per group
    clen: u32,       // elements per chunk (a multiple of WG, at most WG · E)
    step_n: u32,     // WG / run and WG % run: the walk's step of WG elements
    step_s: u32,
    pgroups: u32,    // the affine parameter in a group, see the header
    pmul: u32,
    pstep: u32,
    sstep: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;

var<workgroup> red: array<vec2<accum>, 256>;

// Sum of `v` over the workgroup, returned to every invocation (in f32). Call in uniform control
// flow.
fn reduce2(lid: u32, v: vec2<accum>) -> vec2<f32> {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier(); // everyone has read red[0] before the next reduction overwrites it
    return vec2<f32>(r);
}

fn group_of(i: u32) -> u32 {
    return (i / p.gdiv) % p.groups;
}

fn param_of(i: u32) -> u32 {
    return (i / p.pdiv) % p.pmod;
}

// Flat index of the r-th element using affine parameter q.
fn param_elem(q: u32, r: u32) -> u32 {
    return (r / p.pdiv) * (p.pdiv * p.pmod) + q * p.pdiv + r % p.pdiv;
}

// A workgroup's share: group k, chunk c, its first element and how many it holds.
struct Chunk { k: u32, c: u32, start: u32, count: u32 }

fn chunk_of(gid: u32) -> Chunk {
    let k = gid / p.chunks;
    let c = gid % p.chunks;
    let start = c * p.clen;
    return Chunk(k, c, start, min(p.clen, p.m - start));
}

// Element j of a group as (run n, offset s in the run).
struct Walk { n: u32, s: u32 }

fn walk_at(j: u32) -> Walk {
    return Walk(j / p.run, j % p.run);
}

// The element WG further on: one compare instead of a division.
fn walk_next(w: Walk) -> Walk {
    var n = w.n + p.step_n;
    var s = w.s + p.step_s;
    if (s >= p.run) {
        s = s - p.run;
        n = n + 1u;
    }
    return Walk(n, s);
}

fn walk_index(k: u32, w: Walk) -> u32 {
    return k * p.gdiv + w.n * p.run_stride + w.s;
}

fn walk_param(base: u32, w: Walk) -> u32 {
    return base + w.n * p.pstep + w.s * p.sstep;
}

fn param_base(k: u32) -> u32 {
    return (k % p.pgroups) * p.pmul;
}

// Whether every element of a group has one affine parameter (batch and instance norm).
fn param_per_group() -> bool {
    return p.pstep == 0u && p.sstep == 0u;
}

// Chan et al.'s merge of two (count, mean, M2) moments: the mean moves towards b's by its share
// of the count, M2 adds b's and the spread of the two means. An empty one leaves the other.
fn merge_moments(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
    if (b.x == 0.0) { return a; }
    if (a.x == 0.0) { return b; }
    let n = a.x + b.x;
    let d = b.y - a.y;
    let f = b.x / n;
    return vec3<f32>(n, a.y + d * f, a.z + b.z + d * d * a.x * f);
}

var<workgroup> red_moments: array<vec3<f32>, 256>;

// (count, mean, M2) over the workgroup from each invocation's, returned to every invocation: one
// tree of merges, every term bounded by the data's magnitude (no Σx² to cancel). Call in uniform
// control flow.
fn reduce_moments(lid: u32, mo: vec3<f32>) -> vec3<f32> {
    red_moments[lid] = mo;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red_moments[lid] = merge_moments(red_moments[lid], red_moments[lid + s]);
        }
        workgroupBarrier();
    }
    let r = red_moments[0];
    workgroupBarrier(); // everyone has read it before the next reduction overwrites it
    return r;
}

// (mean, M2) of the chunk held in `v` (`count` valid lanes): each invocation's own moments of
// x − `shift` (any element of the chunk, so that the means merged are of the spread's magnitude,
// not the data's), two-pass over its registers with its sums in `accum`, merged across the
// workgroup.
fn chunk_moments(lid: u32, count: u32, v: ptr<function, array<lanef, E>>, shift: f32)
    -> vec2<f32> {
    var s = accum(0.0);
    var held = 0u;
    for (var e = 0u; e < E; e = e + 1u) {
        if (lid + e * WG < count) {
            s = s + accum(lane_sum((*v)[e] - shift));
            held = held + LANES;
        }
    }
    var mean = 0.0;
    if (held > 0u) { mean = f32(s) / f32(held); }
    var q = accum(0.0);
    for (var e = 0u; e < E; e = e + 1u) {
        if (lid + e * WG < count) {
            let d = (*v)[e] - shift - mean;
            q = q + accum(lane_dot(d, d));
        }
    }
    let all = reduce_moments(lid, vec3<f32>(f32(held), mean, f32(q)));
    return vec2<f32>(shift + all.y, all.z);
}

// The running statistics (mean, unbiased variance estimate) moved towards a batch's (mean, biased
// variance). A non-finite batch statistic would poison them for good: they stay (the loss is
// non-finite too, so the health check flags and skips the step).
fn running_next(old: vec2<f32>, batch: vec2<f32>) -> vec2<f32> {
    if (is_nonfinite(batch.x) || is_nonfinite(batch.y)) { return old; }
    return vec2<f32>(p.keep * old.x + p.momentum * batch.x,
                     p.keep * old.y + p.momentum * batch.y * p.unbias);
}

// Elements of a group (`m` counts lanes).
fn group_elements() -> f32 {
    return f32(p.m) * f32(LANES);
}

// Lanes in chunk c of a group.
fn chunk_count(c: u32) -> u32 {
    return min(p.clen, p.m - c * p.clen);
}

