// Batched matmul C = alpha · op(A) · op(B) (+ C when accumulate), op = optional transpose.
// A is (M, K) row-major, or (K, M) when TRANS_A; B is (K, N), or (N, K) when TRANS_B. A batch stride of 0
// broadcasts an operand (e.g. one weight matrix for every sample). Main loop: gemm_core.wgsl.

// Whether A (B) is stored transposed: pipeline constants, so that the loaders' layout folds.
override TRANS_A: bool = false;
override TRANS_B: bool = false;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    accumulate: u32,
    alpha: f32,
    act_len: u32,    // fused post-op: 0 = none, 1 = the neuron act_op(act_a, act_b)
    a_stride: u32,   // elements between batches of A (0 = shared)
    b_stride: u32,
    c_stride: u32,
    act_op: u32,
    act_a: f32,
    act_b: f32,
    // Split-K (`splits` > 1): workgroup z = matrix·splits + split; split s multiplies K range
    // [s·chunk, (s+1)·chunk) into its own (M, N) slice of the partial buffer, which gemm_sum adds.
    splits: u32,
    chunk: u32,
    batches: u32,
    has_bias: u32,   // the epilogue (gemm's, or gemm_sum's) adds bias[n] before the post-op
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Bindings 1 and 2, the operands, and their loaders: matmul_scalar.wgsl or matmul_vec4.wgsl.
@group(0) @binding(3) var<storage, read_write> mat_c: array<act>;
@group(0) @binding(4) var<storage, read> mat_bias: array<act>;   // (N,), or any buffer

fn gemm_m() -> u32 { return p.m; }
fn gemm_n() -> u32 { return p.n; }
fn gemm_k() -> u32 { return select(p.k, p.chunk, p.splits > 1u); }
fn n_splits() -> u32 { return max(p.splits, 1u); }
// The matrix a workgroup's z belongs to, and where its split's K range starts.
fn matrix_of(batch: u32) -> u32 { return batch / n_splits(); }
fn k_offset(batch: u32) -> u32 { return (batch % n_splits()) * p.chunk; }
// Whether local k of this split is inside the split and the problem.
fn k_inside(batch: u32, k: u32) -> bool { return k < gemm_k() && k + k_offset(batch) < p.k; }
fn a_k_fastest() -> bool { return !TRANS_A; }
fn b_n_fastest() -> bool { return !TRANS_B; }

// Four consecutive rows (or columns) of an operand, fixed over the K loop: element (i, k) is at
// idx + i·step + k·kstep for i < valid (the lines inside the problem) and k < kend (k_inside,
// worked out once instead of per K step).
struct Lines {
    idx: u32,
    step: u32,
    kstep: u32,
    valid: u32,
    kend: u32,
}

// The local k inside a split starting at global k `ko` and the problem: k_inside(batch, k) is
// k < k_end(k_offset(batch)).
fn k_end(ko: u32) -> u32 { return min(gemm_k(), p.k - min(ko, p.k)); }
alias ARows = Lines;
alias BCols = Lines;

fn a_rows(batch: u32, m: u32) -> Lines {
    let base = matrix_of(batch) * p.a_stride;
    let ko = k_offset(batch);
    let valid = select(0u, min(p.m - m, 4u), m < p.m);
    if (TRANS_A) { return Lines(base + ko * p.m + m, 1u, p.m, valid, k_end(ko)); }
    return Lines(base + m * p.k + ko, p.k, 1u, valid, k_end(ko));
}

fn b_cols(batch: u32, n: u32) -> Lines {
    let base = matrix_of(batch) * p.b_stride;
    let ko = k_offset(batch);
    let valid = select(0u, min(p.n - n, 4u), n < p.n);
    if (TRANS_B) { return Lines(base + n * p.k + ko, p.k, 1u, valid, k_end(ko)); }
    return Lines(base + ko * p.n + n, 1u, p.n, valid, k_end(ko));
}

fn store_c(batch: u32, m: u32, n: u32, acc: f32) {
    if (p.splits > 1u) {
        // A split's partial product; gemm_sum adds the splits and applies the epilogue.
        mat_c[(batch * p.m + m) * p.n + n] = act(p.alpha * acc);
        return;
    }
    let idx = batch * p.c_stride + m * p.n + n;
    var v = p.alpha * acc;
    if (p.accumulate != 0u) { v = v + f32(mat_c[idx]); }
    if (p.has_bias != 0u) { v = v + f32(mat_bias[n]); }
    mat_c[idx] = act(post_op(p.act_len, p.act_op, p.act_a, p.act_b, v));
}

@group(0) @binding(1) var<storage, read> gs_part: array<act>;     // (batches·splits, M, N)
@group(0) @binding(2) var<storage, read_write> gs_c: array<act>;  // (batches, M, N), c_stride apart
@group(0) @binding(3) var<storage, read> gs_bias: array<act>;     // (N,), or any buffer

// C = post_op(Σ_s part[matrix, s] (+ C)): the split-K GEMM's epilogue, one invocation per output,
// the splits added in order (deterministic).
@compute @workgroup_size(256)
fn gemm_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    let mn = p.m * p.n;
    if (i >= mn * p.batches) { return; }
    let b = i / mn;
    let j = i - b * mn;
    var sum = accum(0.0);
    for (var s = 0u; s < p.splits; s = s + 1u) {
        sum = sum + accum(f32(gs_part[(b * p.splits + s) * mn + j]));
    }
    var v = f32(sum);
    let idx = b * p.c_stride + j;
    if (p.accumulate != 0u) { v = v + f32(gs_c[idx]); }
    if (p.has_bias != 0u) { v = v + f32(gs_bias[j % p.n]); }
    gs_c[idx] = act(post_op(p.act_len, p.act_op, p.act_a, p.act_b, v));
}
