enable f16;
enable wgpu_cooperative_matrix;

// The tensor-core GEMM on 128×256 blocks: the same problem, layouts and epilogue as
// gemm_coop.wgsl (read its header first; gemm_coop_common.wgsl holds what they share), with a
// quarter fewer operand bytes per multiply-add and twice the subgroups per workgroup:
// - 256 invocations = 8 subgroups of 32, subgroup s computing the 64×64 piece (s / 4, s % 4) of
//   the 128×256 block as 4×4 accumulator tiles (the per-subgroup work of gemm_coop.wgsl);
// - K steps of 16 (two stages of a 128×256×16 problem fit the 48 KiB that 32 would not), double
//   buffered in workgroup memory, one barrier per step;
// - staging in units of 8 halves, 1 of A and 2 of B per invocation per step, from the including
//   module's loaders
//     fetch_a(batch, r, c) -> mat2x4<f16>   stored A row r, columns c..c+7 (c a multiple of 8), 0 outside
//     fetch_b(batch, r, c) -> mat2x4<f16>   likewise for B
//   (gemm_coop_wide_ld16.wgsl: one 16-byte load, rows of a multiple of 8 halves;
//   gemm_coop_wide_ld8.wgsl: two 8-byte loads, rows of a multiple of 4);
// - `DEPTH` (1 or 2) K steps in flight in registers, loaded DEPTH steps before they are stored
//   to workgroup memory: on the H200 two beat one by 20% (the loads' latency sets the pace), and
//   three or four register sets (tried) were as slow as one.
//
// naga's SPIR-V writer panics ("Expression [N] is not cached") when a coopLoad/coopStore
// pointer holds an inline index expression: every index is bound with `let` first.

// K steps in flight in registers, 1 or 2 (coop.rs checks; a pipeline constant: each setting is
// its own pipeline).
override DEPTH: u32 = 2u;

const BM: u32 = 128u;
const BN: u32 = 256u;
const BK: u32 = 16u;
const THREADS: u32 = 256u;
// Shared rows in halves: K-contiguous blocks 16 + 8 pad (48 bytes: 8 rows of a tile start on
// distinct 16-byte banks), wide ones 128 + 8 (A) or 256 + 8 (B). One buffer of A holds
// max(128 · LDK, 16 · LDA) halves, one of B max(256 · LDK, 16 · LDB).
const LDK: u32 = 24u;
const LDA: u32 = 136u;
const LDB: u32 = 264u;
const BUF_A: u32 = 3072u;
const BUF_B: u32 = 6144u;

const UNIT: u32 = 4u;
var<workgroup> sa: array<vec4<f16>, 1536>;
var<workgroup> sb: array<vec4<f16>, 3072>;
// The guarded epilogue's staging: one 16×16 tile per subgroup.
var<workgroup> scratch: array<f32, 2048>;

// Stores the 8 halves of `v` at half h (a multiple of 8).
fn put_a(h: u32, v: mat2x4<f16>) {
    let i = h / UNIT;
    sa[i] = v[0];
    sa[i + 1u] = v[1];
}

fn put_b(h: u32, v: mat2x4<f16>) {
    let i = h / UNIT;
    sb[i] = v[0];
    sb[i + 1u] = v[1];
}

// One K step of this invocation's units: 1 of A, 2 of B (a struct of named values, not an
// array, so that it stays in registers).
struct Regs {
    a0: mat2x4<f16>,
    b0: mat2x4<f16>,
    b1: mat2x4<f16>,
}

// Where an invocation's units sit in a stored block: K-contiguous (16 columns: 2 units a row)
// or `wide` (`cols` columns): first row, row step to its second unit, unit column, and shared
// row length `ld_wide` when wide.
struct Stage {
    row: u32,
    step: u32,
    col8: u32,
    ld: u32,
}

fn stage_of(wide: bool, cols: u32, ld_wide: u32, lid: u32) -> Stage {
    let per_row = select(2u, cols / 8u, wide);
    return Stage(lid / per_row, THREADS / per_row, lid % per_row, select(LDK, ld_wide, wide));
}

// Stored origin (row, column) of a block: (m or n, k) when K is contiguous, else (k, m or n).
fn origin(wide: bool, w0: u32, k0: u32) -> vec2<u32> {
    return select(vec2<u32>(w0, k0), vec2<u32>(k0, w0), wide);
}

fn fetch_step(batch: u32, sa_: Stage, sb_: Stage, m0: u32, n0: u32, k0: u32) -> Regs {
    let oa = origin(TA, m0, k0) + vec2<u32>(sa_.row, 8u * sa_.col8);
    let ob = origin(!TB, n0, k0) + vec2<u32>(sb_.row, 8u * sb_.col8);
    return Regs(
        fetch_a(batch, oa.x, oa.y),
        fetch_b(batch, ob.x, ob.y),
        fetch_b(batch, ob.x + sb_.step, ob.y),
    );
}

fn stash_step(buf: u32, sa_: Stage, sb_: Stage, r: Regs) {
    let a = buf * BUF_A + sa_.row * sa_.ld + 8u * sa_.col8;
    put_a(a, r.a0);
    let b = buf * BUF_B + sb_.row * sb_.ld + 8u * sb_.col8;
    put_b(b, r.b0);
    put_b(b + sb_.step * sb_.ld, r.b1);
}

// The A tile of rows m..m+15 (block-relative) and k kk..kk+15 of shared buffer `buf`.
fn tile_a(buf: u32, m: u32, kk: u32) -> coop_mat16x16<f16, A> {
    if (TA) {
        let i = (buf * BUF_A + kk * LDA + m) / UNIT;
        return coopLoad<coop_mat16x16<f16, A>>(&sa[i], LDA / UNIT);
    }
    let i = (buf * BUF_A + m * LDK + kk) / UNIT;
    return coopLoadT<coop_mat16x16<f16, A>>(&sa[i], LDK / UNIT);
}

// The B tile of k kk..kk+15 and columns n..n+15 (block-relative) of shared buffer `buf`.
fn tile_b(buf: u32, kk: u32, n: u32) -> coop_mat16x16<f16, B> {
    if (TB) {
        let i = (buf * BUF_B + n * LDK + kk) / UNIT;
        return coopLoad<coop_mat16x16<f16, B>>(&sb[i], LDK / UNIT);
    }
    let i = (buf * BUF_B + kk * LDB + n) / UNIT;
    return coopLoadT<coop_mat16x16<f16, B>>(&sb[i], LDB / UNIT);
}

@compute @workgroup_size(256)
fn gemm_coop(@builtin(workgroup_id) wid: vec3<u32>,
             @builtin(local_invocation_index) lid: u32,
             @builtin(subgroup_id) sg: u32,
             @builtin(subgroup_invocation_id) lane: u32) {
    let batch = wid.z;
    let m0 = wid.y * BM;
    let n0 = wid.x * BN;
    let sa_ = stage_of(TA, BM, LDA, lid);
    let sb_ = stage_of(!TB, BN, LDB, lid);
    // This subgroup's 64×64 piece, block-relative.
    let wm = (sg / 4u) * 64u;
    let wn = (sg % 4u) * 64u;

    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c02 = coop_mat16x16<f32, C>();
    var c03 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
    var c12 = coop_mat16x16<f32, C>();
    var c13 = coop_mat16x16<f32, C>();
    var c20 = coop_mat16x16<f32, C>();
    var c21 = coop_mat16x16<f32, C>();
    var c22 = coop_mat16x16<f32, C>();
    var c23 = coop_mat16x16<f32, C>();
    var c30 = coop_mat16x16<f32, C>();
    var c31 = coop_mat16x16<f32, C>();
    var c32 = coop_mat16x16<f32, C>();
    var c33 = coop_mat16x16<f32, C>();

    let steps = (p.k + BK - 1u) / BK;
    // DEPTH register sets rotate: at the top of step s, buffer s % 2 holds step s and (DEPTH 2)
    // set (s + 1) % 2 holds step s + 1. Step s loads step s + DEPTH into set s % DEPTH (its step
    // s went to workgroup memory at the end of step s - 1) and stores set (s + 1) % DEPTH. Each
    // set is loaded and stored inside its own branch: a copy between sets would wait for the
    // loads it copies.
    var r0 = fetch_step(batch, sa_, sb_, m0, n0, 0u);
    stash_step(0u, sa_, sb_, r0);
    var r1 = Regs();
    if (DEPTH > 1u && steps > 1u) {
        r1 = fetch_step(batch, sa_, sb_, m0, n0, BK);
    }
    workgroupBarrier();
    for (var s = 0u; s < steps; s = s + 1u) {
        let buf = s % 2u;
        if (s + DEPTH < steps) {
            let k0 = (s + DEPTH) * BK;
            if (s % DEPTH == 0u) {
                r0 = fetch_step(batch, sa_, sb_, m0, n0, k0);
            } else {
                r1 = fetch_step(batch, sa_, sb_, m0, n0, k0);
            }
        }
        // One k16 per step (BK = 16): no inner loop.
        let a0 = tile_a(buf, wm, 0u);
        let a1 = tile_a(buf, wm + 16u, 0u);
        let a2 = tile_a(buf, wm + 32u, 0u);
        let a3 = tile_a(buf, wm + 48u, 0u);
        let b0 = tile_b(buf, 0u, wn);
        let b1 = tile_b(buf, 0u, wn + 16u);
        let b2 = tile_b(buf, 0u, wn + 32u);
        let b3 = tile_b(buf, 0u, wn + 48u);
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        c02 = coopMultiplyAdd(a0, b2, c02);
        c03 = coopMultiplyAdd(a0, b3, c03);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
        c12 = coopMultiplyAdd(a1, b2, c12);
        c13 = coopMultiplyAdd(a1, b3, c13);
        c20 = coopMultiplyAdd(a2, b0, c20);
        c21 = coopMultiplyAdd(a2, b1, c21);
        c22 = coopMultiplyAdd(a2, b2, c22);
        c23 = coopMultiplyAdd(a2, b3, c23);
        c30 = coopMultiplyAdd(a3, b0, c30);
        c31 = coopMultiplyAdd(a3, b1, c31);
        c32 = coopMultiplyAdd(a3, b2, c32);
        c33 = coopMultiplyAdd(a3, b3, c33);
        // The other buffer was last read before the previous barrier: free to overwrite.
        if (s + 1u < steps) {
            if ((s + 1u) % DEPTH == 0u) {
                stash_step(1u - buf, sa_, sb_, r0);
            } else {
                stash_step(1u - buf, sa_, sb_, r1);
            }
        }
        workgroupBarrier();
    }

    // Uniform over the workgroup, so the guarded path's barriers are reached by all.
    let direct = p.direct != 0u && m0 + BM <= p.m && n0 + BN <= p.n;
    let m = m0 + wm;
    let n = n0 + wn;
    store_tile(c00, batch, m, n, direct, sg, lane);
    store_tile(c01, batch, m, n + 16u, direct, sg, lane);
    store_tile(c02, batch, m, n + 32u, direct, sg, lane);
    store_tile(c03, batch, m, n + 48u, direct, sg, lane);
    store_tile(c10, batch, m + 16u, n, direct, sg, lane);
    store_tile(c11, batch, m + 16u, n + 16u, direct, sg, lane);
    store_tile(c12, batch, m + 16u, n + 32u, direct, sg, lane);
    store_tile(c13, batch, m + 16u, n + 48u, direct, sg, lane);
    store_tile(c20, batch, m + 32u, n, direct, sg, lane);
    store_tile(c21, batch, m + 32u, n + 16u, direct, sg, lane);
    store_tile(c22, batch, m + 32u, n + 32u, direct, sg, lane);
    store_tile(c23, batch, m + 32u, n + 48u, direct, sg, lane);
    store_tile(c30, batch, m + 48u, n, direct, sg, lane);
    store_tile(c31, batch, m + 48u, n + 16u, direct, sg, lane);
    store_tile(c32, batch, m + 48u, n + 32u, direct, sg, lane);
    store_tile(c33, batch, m + 48u, n + 48u, direct, sg, lane);
}
