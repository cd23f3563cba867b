// The tiled GEMM main loop shared by matmul and the implicit-GEMM convolutions.
// C(M, N) = sum_k A(M, K) · B(K, N) per batch (workgroup z). The including module supplies:
//   gemm_m(), gemm_n(), gemm_k()               problem size
//   load_a(batch, m, k), load_b(batch, k, n)   operands, 0 outside the problem
//   a_k_fastest(), b_n_fastest()               which index is contiguous in memory (for coalescing)
//   store_c(batch, m, n, acc)                  the epilogue (bias, accumulate, scatter, ...)
//
// Two entry points, 256 invocations (16×16) each, K in steps of BK = 8:
//   gemm       128×64 outputs per workgroup, 8×4 per invocation  (grid ceil(N/64),  ceil(M/128))
//   gemm_wide  128×128 outputs per workgroup, 8×8 per invocation (grid ceil(N/128), ceil(M/128))
// Invocation (tx, ty) owns rows 4ty..4ty+3 and 64+4ty..64+4ty+3, columns 4tx..4tx+3 (and
// 64+4tx..64+4tx+3 when wide), so it reads the shared tiles as vec4 (A: a broadcast, B:
// consecutive vec4s). The shared tiles are double-buffered, K-major, rows padded by one vec4 so
// the transposed stores of k-fastest operands hit distinct banks; the next K step is fetched into
// registers while the current one is multiplied: one barrier per K step.
//
// Written for naga: it bounds every loop (so drivers rarely unroll them) and clamps dynamic
// indices, so every register array here is indexed by constants only (a dynamically indexed one
// lands in local memory), the K step is unrolled by hand (`mac` ×8), and the width is a literal
// argument (`wide`) that folds away once the driver inlines `gemm_main` into each entry.
// No assumption on subgroup size.

const BM: u32 = 128u;
const BK: u32 = 8u;
// vec4s per K row of the shared A tile (128 floats + one vec4 of padding).
const SA_ROW: u32 = 33u;

var<workgroup> sa: array<vec4<f32>, 528>; // [2][BK][SA_ROW]
var<workgroup> sb: array<vec4<f32>, 528>; // [2][BK][33] wide, [2][BK][17] narrow
// acc[2r + c]: row r (0..3: 4ty + r, 4..7: 64 + 4ty + r − 4), columns c·64 + 4tx .. +3.
var<private> acc: array<vec4<f32>, 16>;
// The next K step of this invocation's share of A and B, held in registers.
var<private> pa: vec4<f32>;
var<private> pb: vec4<f32>;

// This invocation's first staging element (w, k) and the step (dw, dk) to the next, in a tile
// of `width` × BK whose w index is contiguous in memory when `w_fastest`: consecutive
// invocations then read consecutive addresses.
fn stage_map(w_fastest: bool, width: u32, lid: u32) -> vec4<u32> {
    if (w_fastest) {
        return vec4<u32>(lid % width, lid / width, 0u, 256u / width);
    }
    return vec4<u32>(lid / BK, lid % BK, 256u / BK, 0u);
}

fn fetch(batch: u32, m0: u32, n0: u32, k0: u32, am: vec4<u32>, bm: vec4<u32>, wide: bool) {
    pa = vec4<f32>(
        load_a(batch, m0 + am.x, k0 + am.y),
        load_a(batch, m0 + am.x + am.z, k0 + am.y + am.w),
        load_a(batch, m0 + am.x + 2u * am.z, k0 + am.y + 2u * am.w),
        load_a(batch, m0 + am.x + 3u * am.z, k0 + am.y + 3u * am.w),
    );
    pb.x = load_b(batch, k0 + bm.y, n0 + bm.x);
    pb.y = load_b(batch, k0 + bm.y + bm.w, n0 + bm.x + bm.z);
    if (wide) {
        pb.z = load_b(batch, k0 + bm.y + 2u * bm.w, n0 + bm.x + 2u * bm.z);
        pb.w = load_b(batch, k0 + bm.y + 3u * bm.w, n0 + bm.x + 3u * bm.z);
    }
}

fn put_a(buf: u32, w: u32, k: u32, v: f32) {
    sa[(buf * BK + k) * SA_ROW + w / 4u][w % 4u] = v;
}

fn put_b(buf: u32, row: u32, w: u32, k: u32, v: f32) {
    sb[(buf * BK + k) * row + w / 4u][w % 4u] = v;
}

fn stash(buf: u32, am: vec4<u32>, bm: vec4<u32>, sb_row: u32, wide: bool) {
    put_a(buf, am.x, am.y, pa.x);
    put_a(buf, am.x + am.z, am.y + am.w, pa.y);
    put_a(buf, am.x + 2u * am.z, am.y + 2u * am.w, pa.z);
    put_a(buf, am.x + 3u * am.z, am.y + 3u * am.w, pa.w);
    put_b(buf, sb_row, bm.x, bm.y, pb.x);
    put_b(buf, sb_row, bm.x + bm.z, bm.y + bm.w, pb.y);
    if (wide) {
        put_b(buf, sb_row, bm.x + 2u * bm.z, bm.y + 2u * bm.w, pb.z);
        put_b(buf, sb_row, bm.x + 3u * bm.z, bm.y + 3u * bm.w, pb.w);
    }
}

// One k of the register tile: the outer product of 8 A values and 4 (8 when wide) B values.
fn mac(ai: u32, bi: u32, wide: bool) {
    let a0 = sa[ai];
    let a1 = sa[ai + 16u];
    let b0 = sb[bi];
    acc[0] = fma(vec4<f32>(a0.x), b0, acc[0]);
    acc[2] = fma(vec4<f32>(a0.y), b0, acc[2]);
    acc[4] = fma(vec4<f32>(a0.z), b0, acc[4]);
    acc[6] = fma(vec4<f32>(a0.w), b0, acc[6]);
    acc[8] = fma(vec4<f32>(a1.x), b0, acc[8]);
    acc[10] = fma(vec4<f32>(a1.y), b0, acc[10]);
    acc[12] = fma(vec4<f32>(a1.z), b0, acc[12]);
    acc[14] = fma(vec4<f32>(a1.w), b0, acc[14]);
    if (wide) {
        let b1 = sb[bi + 16u];
        acc[1] = fma(vec4<f32>(a0.x), b1, acc[1]);
        acc[3] = fma(vec4<f32>(a0.y), b1, acc[3]);
        acc[5] = fma(vec4<f32>(a0.z), b1, acc[5]);
        acc[7] = fma(vec4<f32>(a0.w), b1, acc[7]);
        acc[9] = fma(vec4<f32>(a1.x), b1, acc[9]);
        acc[11] = fma(vec4<f32>(a1.y), b1, acc[11]);
        acc[13] = fma(vec4<f32>(a1.z), b1, acc[13]);
        acc[15] = fma(vec4<f32>(a1.w), b1, acc[15]);
    }
}

// Stores four consecutive outputs of row m from column n, those inside the problem.
fn store4(batch: u32, m: u32, n: u32, v: vec4<f32>) {
    let nn = gemm_n();
    if (m < gemm_m()) {
        if (n < nn) { store_c(batch, m, n, v.x); }
        if (n + 1u < nn) { store_c(batch, m, n + 1u, v.y); }
        if (n + 2u < nn) { store_c(batch, m, n + 2u, v.z); }
        if (n + 3u < nn) { store_c(batch, m, n + 3u, v.w); }
    }
}

fn store_half(batch: u32, m: u32, n: u32, c: u32) {
    // c selects the column half; the acc indices stay constants.
    if (c == 0u) {
        store4(batch, m, n, acc[0]);
        store4(batch, m + 1u, n, acc[2]);
        store4(batch, m + 2u, n, acc[4]);
        store4(batch, m + 3u, n, acc[6]);
        store4(batch, m + 64u, n, acc[8]);
        store4(batch, m + 65u, n, acc[10]);
        store4(batch, m + 66u, n, acc[12]);
        store4(batch, m + 67u, n, acc[14]);
    } else {
        store4(batch, m, n, acc[1]);
        store4(batch, m + 1u, n, acc[3]);
        store4(batch, m + 2u, n, acc[5]);
        store4(batch, m + 3u, n, acc[7]);
        store4(batch, m + 64u, n, acc[9]);
        store4(batch, m + 65u, n, acc[11]);
        store4(batch, m + 66u, n, acc[13]);
        store4(batch, m + 67u, n, acc[15]);
    }
}

fn gemm_main(wid: vec3<u32>, lid: u32, wide: bool) {
    let batch = wid.z;
    let bn = select(64u, 128u, wide);
    let sb_row = select(17u, 33u, wide);
    let m0 = wid.y * BM;
    let n0 = wid.x * bn;
    let tx = lid % 16u;
    let ty = lid / 16u;
    let am = stage_map(!a_k_fastest(), BM, lid);
    let bm = stage_map(b_n_fastest(), bn, lid);
    acc = array<vec4<f32>, 16>();
    let kdim = gemm_k();

    fetch(batch, m0, n0, 0u, am, bm, wide);
    stash(0u, am, bm, sb_row, wide);
    workgroupBarrier();
    for (var k0 = 0u; k0 < kdim; k0 = k0 + BK) {
        let cur = (k0 / BK) & 1u;
        // Loads past K read zeros (the loaders' contract), so the last step needs no branch.
        fetch(batch, m0, n0, k0 + BK, am, bm, wide);
        let ai = cur * (BK * SA_ROW) + ty;
        let bi = cur * (BK * sb_row) + tx;
        mac(ai, bi, wide);
        mac(ai + SA_ROW, bi + sb_row, wide);
        mac(ai + 2u * SA_ROW, bi + 2u * sb_row, wide);
        mac(ai + 3u * SA_ROW, bi + 3u * sb_row, wide);
        mac(ai + 4u * SA_ROW, bi + 4u * sb_row, wide);
        mac(ai + 5u * SA_ROW, bi + 5u * sb_row, wide);
        mac(ai + 6u * SA_ROW, bi + 6u * sb_row, wide);
        mac(ai + 7u * SA_ROW, bi + 7u * sb_row, wide);
        // The other buffer was last read before the previous barrier: free to overwrite.
        stash(1u - cur, am, bm, sb_row, wide);
        workgroupBarrier();
    }

    let m = m0 + 4u * ty;
    store_half(batch, m, n0 + 4u * tx, 0u);
    if (wide) {
        store_half(batch, m, n0 + 64u + 4u * tx, 1u);
    }
}

@compute @workgroup_size(256, 1, 1)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    gemm_main(wid, lid, false);
}

@compute @workgroup_size(256, 1, 1)
fn gemm_wide(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    gemm_main(wid, lid, true);
}
