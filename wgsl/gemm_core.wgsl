// The tiled GEMM main loop shared by matmul and the implicit-GEMM convolutions.
// C(M, N) = sum_k A(M, K) · B(K, N) per batch (workgroup z). The including module supplies:
//   gemm_m(), gemm_n(), gemm_k()               problem size
//   load_a(batch, m, k), load_b(batch, k, n)   the operands' scalar meaning, 0 outside the problem
//   a_k_fastest(), b_n_fastest()               which index is contiguous in memory (for coalescing)
//   a_k4(), b_k4()                             whether the loader reads four consecutive k (below)
//   store_c(batch, m, n, acc)                  the epilogue (bias, accumulate, scatter, ...)
//   c_m_contiguous(), store_c4m(batch, m, n, v) whether C's consecutive m are adjacent in memory
//                                              (stored column-major), and then the store of
//                                              (store_c(batch, m + i, n, v[i]))_{i<4}, m a
//                                              multiple of 4; gemm_c_rows.wgsl: row-major C
// and the vector loaders the main loop stages through, each split into a half fixed over the K
// loop (prepared once per invocation) and a half per K step:
//   type ARows, a_rows(batch, m) -> ARows      rows m..m+3 (row m when a_k4())
//   load_a4(batch, rows, k) -> vec4<f32>       (load_a(batch, m + i, k))_{i<4}
//                                              (when a_k4(): (load_a(batch, m, k + i))_{i<4})
//   type BCols, b_cols(batch, n) -> BCols      columns n..n+3 (column n when b_k4())
//   load_b4(batch, k, cols) -> vec4<f32>       (load_b(batch, k, n + i))_{i<4}
//                                              (when b_k4(): (load_b(batch, k + i, n))_{i<4})
// so a loader decomposes k (a convolution tap, say) once per four values and m or n (an output
// pixel) once per kernel, not per element.
//
// Three tiled entry points, 256 invocations each, K in steps of BK = 8:
//   gemm_thin  128×32 outputs per workgroup, 4×4 per invocation  (grid ceil(N/32),  ceil(M/128))
//   gemm       128×64 outputs per workgroup, 8×4 per invocation  (grid ceil(N/64),  ceil(M/128))
//   gemm_wide  128×128 outputs per workgroup, 8×8 per invocation (grid ceil(N/128), ceil(M/128))
// Invocation (ty, tx), 16 × 16 of them, owns rows 4ty..4ty+3 and 64+4ty..64+4ty+3 and columns
// 4tx..4tx+3 (and 64+4tx..64+4tx+3 when wide), so it reads the shared tiles as vec4s (A: a
// broadcast, B: consecutive vec4s). A subgroup of 32 takes 4 ty × 8 tx (`tile_of`): each k it
// reads 4 + 8 distinct vec4s of the tiles where 16 consecutive tx would read 2 + 16. In the thin
// tile lid = 8·ty + tx owns rows 4ty..4ty+3 and columns 4tx..4tx+3 (a narrow N, 32 channels say,
// leaves no tile columns idle). And `gemm_direct`, without shared memory or barriers, for CPU
// adapters (below).
// Shared tiles are K-major, [buffer·BK + k][column of 4], double-buffered, each K row padded by
// one vec4 so that transposed stores (k-fastest operands) hit distinct banks (16.5 KiB of
// workgroup memory in all, within lavapipe's 32 KiB).
// Tiles, staging registers and sums are `accum`: f32, or f16 under Accumulator::F16 (the
// operands rounded to f16 as they are staged, half the shared memory, f16 multiply-adds); the
// loaders and the epilogue stay f32.
// The next K step is fetched into registers while the current one is multiplied (the next two
// for the thin and 128×64 tiles, `deep`), and one barrier ends each step. Every invocation
// stages one vec4 of A and (lid < 2·bn, the B tile's units) one of B: four consecutive m (n) at
// one k (a w-unit), or, where the loader reads K four at a time
// (a_k4(), b_k4(): 16-byte loads of an operand whose K is contiguous), four consecutive k of one
// m (n) (a k-unit), stored transposed; consecutive invocations take consecutive addresses of the
// operand's contiguous index.
//
// Written for naga, which bounds every loop (so drivers rarely unroll them) and clamps dynamic
// indices: every register array is indexed by constants only (a dynamically indexed one lands in
// local memory), the K step is unrolled by hand (`mac` ×8) and the K loop by two so that the
// buffer, hence the shared row index, is a constant and the clamped column indices are loop
// invariants; the tile width is a literal argument (`bn`: 32, 64 or 128) that folds once the
// driver inlines `gemm_main` into each entry. No assumption on subgroup size.

const BM: u32 = 128u;
const BK: u32 = 8u;

// Set by the host (a pipeline constant) when every workgroup's block lies inside the problem and
// K is a multiple of BK: the loaders may then skip their bounds (matmul_vec4.wgsl does; the
// last fetches past K then read values that are never multiplied), and blocks run in groups of
// 8 block rows so that neighbouring workgroups share operand rows in L2 (BENCHMARKS.md).
override INTERIOR: bool = false;

var<workgroup> sa: array<array<vec4<accum>, 33>, 16>; // [2·BK][32 columns of 4 rows + pad]
var<workgroup> sb: array<array<vec4<accum>, 33>, 16>; // [2·BK][32 (narrow: 16) columns + pad]
// acc[2r + c]: row r (0..3: 4ty + r, 4..7: 64 + 4ty + r − 4), columns c·64 + 4tx .. +3; in
// gemm_direct, rows m + r and column blocks n + 4c of its 8×8 block.
var<private> acc: array<vec4<accum>, 16>;
// The next K steps of this invocation's share of A and B, held in registers: set 0 (pa, pb)
// and, two steps ahead (`deep`), set 1 (pa1, pb1).
var<private> pa: vec4<accum>;
var<private> pb: vec4<accum>;
var<private> pa1: vec4<accum>;
var<private> pb1: vec4<accum>;

// This invocation's staging unit (w, k) in a tile of `width` (along m or n) × BK: four
// consecutive w at one k. Consecutive invocations take consecutive w when w is the contiguous
// index, else consecutive k (each then reads four rows strided in memory). A k-unit (`k4`):
// four consecutive k from k at one w, consecutive invocations taking consecutive k.
fn stage_unit(w_fastest: bool, k4: bool, width: u32, lid: u32) -> vec2<u32> {
    if (k4) {
        return vec2<u32>(lid / (BK / 4u), 4u * (lid % (BK / 4u)));
    }
    let cols = width / 4u;
    if (w_fastest) {
        return vec2<u32>(4u * (lid % cols), lid / cols);
    }
    return vec2<u32>(4u * (lid / BK), lid % BK);
}

// K step k0's share into register set `regs` (a literal).
fn fetch(batch: u32, ar: ARows, bc: BCols, k0: u32, au: vec2<u32>, bu: vec2<u32>, has_b: bool,
         regs: u32) {
    let a = vec4<accum>(load_a4(batch, ar, k0 + au.y));
    var b = vec4<accum>(0.0);
    if (has_b) {
        b = vec4<accum>(load_b4(batch, k0 + bu.y, bc));
    }
    if (regs == 0u) {
        pa = a;
        pb = b;
    } else {
        pa1 = a;
        pb1 = b;
    }
}

// Register set `regs` (a literal) into shared buffer `buf`.
fn stash(buf: u32, au: vec2<u32>, bu: vec2<u32>, has_b: bool, regs: u32) {
    let a = select(pa, pa1, regs == 1u);
    let b = select(pb, pb1, regs == 1u);
    if (a_k4()) {
        // A k-unit's four k into rows r..r+3 at column w (component w % 4 of vec4 w / 4).
        let r = buf * BK + au.y;
        let c = au.x / 4u;
        let j = au.x % 4u;
        sa[r][c][j] = a.x;
        sa[r + 1u][c][j] = a.y;
        sa[r + 2u][c][j] = a.z;
        sa[r + 3u][c][j] = a.w;
    } else {
        sa[buf * BK + au.y][au.x / 4u] = a;
    }
    if (!has_b) {
        return;
    }
    if (b_k4()) {
        let r = buf * BK + bu.y;
        let c = bu.x / 4u;
        let j = bu.x % 4u;
        sb[r][c][j] = b.x;
        sb[r + 1u][c][j] = b.y;
        sb[r + 2u][c][j] = b.z;
        sb[r + 3u][c][j] = b.w;
    } else {
        sb[buf * BK + bu.y][bu.x / 4u] = b;
    }
}

// One k (shared row r) of the register tile: the outer product of 8 A values (4 when thin) and
// 4 B values. The wide tile's 8 × 8 is `mac_wide`.
fn mac(r: u32, ty: u32, tx: u32, bn: u32) {
    let a0 = sa[r][ty];
    let b0 = sb[r][tx];
    acc[0] = fma(vec4<accum>(a0.x), b0, acc[0]);
    acc[2] = fma(vec4<accum>(a0.y), b0, acc[2]);
    acc[4] = fma(vec4<accum>(a0.z), b0, acc[4]);
    acc[6] = fma(vec4<accum>(a0.w), b0, acc[6]);
    if (bn == 32u) {
        return;
    }
    let a1 = sa[r][ty + 16u];
    acc[8] = fma(vec4<accum>(a1.x), b0, acc[8]);
    acc[10] = fma(vec4<accum>(a1.y), b0, acc[10]);
    acc[12] = fma(vec4<accum>(a1.z), b0, acc[12]);
    acc[14] = fma(vec4<accum>(a1.w), b0, acc[14]);
}

// One k of the wide tile: 8 A values × 8 B values, straight-line, each A value's two
// multiply-adds adjacent (the same work behind a branch in `mac` measured slower, BENCHMARKS.md).
fn mac_wide(r: u32, ty: u32, tx: u32) {
    let a0 = sa[r][ty];
    let a1 = sa[r][ty + 16u];
    let b0 = sb[r][tx];
    let b1 = sb[r][tx + 16u];
    acc[0] = fma(vec4<accum>(a0.x), b0, acc[0]);
    acc[1] = fma(vec4<accum>(a0.x), b1, acc[1]);
    acc[2] = fma(vec4<accum>(a0.y), b0, acc[2]);
    acc[3] = fma(vec4<accum>(a0.y), b1, acc[3]);
    acc[4] = fma(vec4<accum>(a0.z), b0, acc[4]);
    acc[5] = fma(vec4<accum>(a0.z), b1, acc[5]);
    acc[6] = fma(vec4<accum>(a0.w), b0, acc[6]);
    acc[7] = fma(vec4<accum>(a0.w), b1, acc[7]);
    acc[8] = fma(vec4<accum>(a1.x), b0, acc[8]);
    acc[9] = fma(vec4<accum>(a1.x), b1, acc[9]);
    acc[10] = fma(vec4<accum>(a1.y), b0, acc[10]);
    acc[11] = fma(vec4<accum>(a1.y), b1, acc[11]);
    acc[12] = fma(vec4<accum>(a1.z), b0, acc[12]);
    acc[13] = fma(vec4<accum>(a1.z), b1, acc[13]);
    acc[14] = fma(vec4<accum>(a1.w), b0, acc[14]);
    acc[15] = fma(vec4<accum>(a1.w), b1, acc[15]);
}

// The BK k of shared buffer `buf` (a literal).
fn mac_step(buf: u32, ty: u32, tx: u32, bn: u32) {
    let r = buf * BK;
    if (bn == 128u) {
        mac_wide(r, ty, tx);
        mac_wide(r + 1u, ty, tx);
        mac_wide(r + 2u, ty, tx);
        mac_wide(r + 3u, ty, tx);
        mac_wide(r + 4u, ty, tx);
        mac_wide(r + 5u, ty, tx);
        mac_wide(r + 6u, ty, tx);
        mac_wide(r + 7u, ty, tx);
    } else {
        mac(r, ty, tx, bn);
        mac(r + 1u, ty, tx, bn);
        mac(r + 2u, ty, tx, bn);
        mac(r + 3u, ty, tx, bn);
        mac(r + 4u, ty, tx, bn);
        mac(r + 5u, ty, tx, bn);
        mac(r + 6u, ty, tx, bn);
        mac(r + 7u, ty, tx, bn);
    }
}

// Stores four consecutive outputs of row m from column n, those inside the problem.
fn store4(batch: u32, m: u32, n: u32, sums: vec4<accum>) {
    let v = vec4<f32>(sums);
    let nn = gemm_n();
    if (m < gemm_m()) {
        if (n < nn) { store_c(batch, m, n, v.x); }
        if (n + 1u < nn) { store_c(batch, m, n + 1u, v.y); }
        if (n + 2u < nn) { store_c(batch, m, n + 2u, v.z); }
        if (n + 3u < nn) { store_c(batch, m, n + 3u, v.w); }
    }
}

// Stores four consecutive outputs of column n from row m (a multiple of 4), those inside the
// problem: at once where all four are.
fn store_col4(batch: u32, m: u32, n: u32, sums: vec4<accum>) {
    let v = vec4<f32>(sums);
    let mm = gemm_m();
    if (n >= gemm_n() || m >= mm) {
        return;
    }
    if (mm - m >= 4u) {
        store_c4m(batch, m, n, v);
        return;
    }
    store_c(batch, m, n, v.x);
    if (m + 1u < mm) { store_c(batch, m + 1u, n, v.y); }
    if (m + 2u < mm) { store_c(batch, m + 2u, n, v.z); }
}

// Rows m..m+3 of the four columns from n held as the row vec4s r0..r3, stored a column at a
// time: where C's m are adjacent, a subgroup's stores then cover whole segments (by rows, each
// store would touch a segment per invocation).
fn store_cols(batch: u32, m: u32, n: u32, r0: vec4<accum>, r1: vec4<accum>, r2: vec4<accum>,
              r3: vec4<accum>) {
    store_col4(batch, m, n, vec4<accum>(r0.x, r1.x, r2.x, r3.x));
    store_col4(batch, m, n + 1u, vec4<accum>(r0.y, r1.y, r2.y, r3.y));
    store_col4(batch, m, n + 2u, vec4<accum>(r0.z, r1.z, r2.z, r3.z));
    store_col4(batch, m, n + 3u, vec4<accum>(r0.w, r1.w, r2.w, r3.w));
}

// Column block c (a literal, so the acc indices stay constants) of this invocation's outputs
// from column n: rows m..m+3 and (unless thin) m2..m2+3.
fn store_half(batch: u32, m: u32, m2: u32, n: u32, c: u32, bn: u32) {
    if (c_m_contiguous()) {
        if (c == 0u) {
            store_cols(batch, m, n, acc[0], acc[2], acc[4], acc[6]);
            if (bn != 32u) {
                store_cols(batch, m2, n, acc[8], acc[10], acc[12], acc[14]);
            }
        } else {
            store_cols(batch, m, n, acc[1], acc[3], acc[5], acc[7]);
            store_cols(batch, m2, n, acc[9], acc[11], acc[13], acc[15]);
        }
        return;
    }
    if (c == 0u) {
        store4(batch, m, n, acc[0]);
        store4(batch, m + 1u, n, acc[2]);
        store4(batch, m + 2u, n, acc[4]);
        store4(batch, m + 3u, n, acc[6]);
        if (bn == 32u) {
            return;
        }
        store4(batch, m2, n, acc[8]);
        store4(batch, m2 + 1u, n, acc[10]);
        store4(batch, m2 + 2u, n, acc[12]);
        store4(batch, m2 + 3u, n, acc[14]);
    } else {
        store4(batch, m, n, acc[1]);
        store4(batch, m + 1u, n, acc[3]);
        store4(batch, m + 2u, n, acc[5]);
        store4(batch, m + 3u, n, acc[7]);
        store4(batch, m2, n, acc[9]);
        store4(batch, m2 + 1u, n, acc[11]);
        store4(batch, m2 + 2u, n, acc[13]);
        store4(batch, m2 + 3u, n, acc[15]);
    }
}

// Invocation lid's (tx, ty). Thin: 8 tx of 4 columns a row, lid = 8·ty + tx, so a subgroup of
// 32 is 4 ty × 8 tx already. Else 16 × 16, a subgroup of 32 (lanes lid % 32) taking 4 ty × 8 tx
// (subgroup lid / 32 at ty 4·(s / 2), tx 8·(s % 2)). Any subgroup size is correct; 32 reads
// fewest distinct shared vec4s.
fn tile_of(lid: u32, bn: u32) -> vec2<u32> {
    if (bn == 32u) {
        return vec2<u32>(lid % 8u, lid / 8u);
    }
    let lane = lid % 32u;
    let s = lid / 32u;
    return vec2<u32>((s % 2u) * 8u + lane % 8u, (s / 2u) * 4u + lane / 8u);
}

// Block (column, row) of workgroup `wid` in a grid of `groups`: as dispatched, or, when
// INTERIOR, column-major within groups of 8 block rows.
fn block_of(wid: vec3<u32>, groups: vec3<u32>) -> vec2<u32> {
    if (!INTERIOR) {
        return wid.xy;
    }
    let id = wid.y * groups.x + wid.x;
    let per_group = 8u * groups.x;
    let first_row = (id / per_group) * 8u;
    let rows = min(groups.y - first_row, 8u);
    let within = id % per_group;
    return vec2<u32>(within / rows, first_row + within % rows);
}

fn gemm_main(wid: vec3<u32>, groups: vec3<u32>, lid: u32, bn: u32) {
    let batch = wid.z;
    let block = block_of(wid, groups);
    let m0 = block.y * BM;
    let n0 = block.x * bn;
    let t = tile_of(lid, bn);
    let tx = t.x;
    let ty = t.y;
    let au = stage_unit(!a_k_fastest(), a_k4(), BM, lid);
    let bu = stage_unit(b_n_fastest(), b_k4(), bn, lid);
    // The B tile has bn·BK / 4 staging units (all 256 invocations' in the wide tile).
    let has_b = bn == 128u || lid < 2u * bn;
    let ar = a_rows(batch, m0 + au.x);
    let bc = b_cols(batch, n0 + bu.x);
    acc = array<vec4<accum>, 16>();
    let kdim = gemm_k();

    // The narrower tiles fetch two K steps ahead (`deep`): their step's multiply-adds alone do
    // not cover a load's latency. The wide tile's measured no faster so (BENCHMARKS.md).
    let deep = bn != 128u;
    let ahead = select(1u, 2u, deep);
    fetch(batch, ar, bc, 0u, au, bu, has_b, 0u);
    stash(0u, au, bu, has_b, 0u);
    if (deep) {
        fetch(batch, ar, bc, BK, au, bu, has_b, 1u);
    }
    workgroupBarrier();
    // Two K steps per iteration, one per shared buffer. Deep, step s + 2 loads into set s % 2
    // (whose step s is in shared memory) while step s is multiplied, then step s + 1 goes from
    // set (s + 1) % 2 into its buffer; else step s + 1 loads into and goes from set 0 (one set
    // measured faster than alternating two, BENCHMARKS.md).
    // The last fetches run past K without a branch: their register sets reach only buffers that
    // are never multiplied. A loader reads zeros there, or, INTERIOR and unbounded, whatever lies
    // beyond (inside the binding: the backend's bounds checks or Vulkan's robust buffer access).
    for (var k0 = 0u; k0 < kdim; k0 = k0 + 2u * BK) {
        let k1 = k0 + ahead * BK;
        fetch(batch, ar, bc, k1, au, bu, has_b, 0u);
        mac_step(0u, ty, tx, bn);
        // Buffer 1 was last read before the previous barrier: free to overwrite.
        stash(1u, au, bu, has_b, select(0u, 1u, deep));
        workgroupBarrier();
        if (k0 + BK >= kdim) {
            break;
        }
        let k2 = k1 + BK;
        fetch(batch, ar, bc, k2, au, bu, has_b, select(0u, 1u, deep));
        mac_step(1u, ty, tx, bn);
        stash(0u, au, bu, has_b, 0u);
        workgroupBarrier();
    }

    let m = m0 + 4u * ty;
    store_half(batch, m, m + 64u, n0 + 4u * tx, 0u, bn);
    if (bn == 128u) {
        store_half(batch, m, m + 64u, n0 + 64u + 4u * tx, 1u, bn);
    }
}

@compute @workgroup_size(256, 1, 1)
fn gemm_thin(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    gemm_main(wid, groups, lid, 32u);
}

@compute @workgroup_size(256, 1, 1)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    gemm_main(wid, groups, lid, 64u);
}

@compute @workgroup_size(256, 1, 1)
fn gemm_wide(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    gemm_main(wid, groups, lid, 128u);
}

// The same product without shared memory or barriers: one invocation per 8×8 block of C, walking
// all of K through the same loaders, blocks numbered row-major over the grid (x fastest, then y;
// z is the batch). For CPU adapters (lavapipe), where a tile's idle columns or rows (N = 8, a
// weight gradient's M = 25) cost real vector instructions and the caches already give the reuse
// shared memory would. The sums run over k in the same order as the tiled entries'.
const DIRECT_GROUP: u32 = 64u;

@compute @workgroup_size(64, 1, 1)
fn gemm_direct(@builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) groups: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let batch = wid.z;
    let col_blocks = (gemm_n() + 7u) / 8u;
    let block = (wid.y * groups.x + wid.x) * DIRECT_GROUP + lid;
    if (block >= col_blocks * ((gemm_m() + 7u) / 8u)) {
        return;
    }
    let m = block / col_blocks * 8u;
    let n = block % col_blocks * 8u;
    let ar = a_rows(batch, m);
    let ar2 = a_rows(batch, m + 4u);
    let bc = b_cols(batch, n);
    let bc2 = b_cols(batch, n + 4u);
    acc = array<vec4<accum>, 16>();
    let kdim = gemm_k();
    for (var k = 0u; k < kdim; k = k + 1u) {
        let a = vec4<accum>(load_a4(batch, ar, k));
        let a2 = vec4<accum>(load_a4(batch, ar2, k));
        let b = vec4<accum>(load_b4(batch, k, bc));
        let b2 = vec4<accum>(load_b4(batch, k, bc2));
        acc[0] = fma(vec4<accum>(a.x), b, acc[0]);
        acc[2] = fma(vec4<accum>(a.y), b, acc[2]);
        acc[4] = fma(vec4<accum>(a.z), b, acc[4]);
        acc[6] = fma(vec4<accum>(a.w), b, acc[6]);
        acc[8] = fma(vec4<accum>(a2.x), b, acc[8]);
        acc[10] = fma(vec4<accum>(a2.y), b, acc[10]);
        acc[12] = fma(vec4<accum>(a2.z), b, acc[12]);
        acc[14] = fma(vec4<accum>(a2.w), b, acc[14]);
        acc[1] = fma(vec4<accum>(a.x), b2, acc[1]);
        acc[3] = fma(vec4<accum>(a.y), b2, acc[3]);
        acc[5] = fma(vec4<accum>(a.z), b2, acc[5]);
        acc[7] = fma(vec4<accum>(a.w), b2, acc[7]);
        acc[9] = fma(vec4<accum>(a2.x), b2, acc[9]);
        acc[11] = fma(vec4<accum>(a2.y), b2, acc[11]);
        acc[13] = fma(vec4<accum>(a2.z), b2, acc[13]);
        acc[15] = fma(vec4<accum>(a2.w), b2, acc[15]);
    }
    store_half(batch, m, m + 4u, n, 0u, 64u);
    store_half(batch, m, m + 4u, n + 4u, 1u, 64u);
}
