enable f16;
enable wgpu_cooperative_matrix;

// The tensor-core GEMM: C(M, N) (+)= alpha · op(A)(M, K) · op(B)(K, N) per batch (workgroup z),
// f16 operands, f32 accumulators in 16×16×16 cooperative matrices (`src/ops/matmul/coop.rs`).
// A is stored (M, K) row-major, or (K, M) when TA; B (K, N), or (N, K) when TB (pipeline
// constants, so each layout is its own pipeline with no branch left in the loop). The including
// module supplies the operand loaders (gemm_coop_vec4.wgsl or gemm_coop_any.wgsl):
//   fetch_a(batch, r, c) -> vec4<f16>   stored A row r, columns c..c+3 (c a multiple of 4), 0 outside
//   fetch_b(batch, r, c) -> vec4<f16>   likewise for B
// and C's element type (gemm_coop_f32.wgsl or gemm_coop_f16.wgsl): get_c, put_c, store_direct.
//
// One workgroup: a 128×128 block of C, 128 invocations = 4 subgroups of 32 (coop.rs refuses other
// subgroup sizes), subgroup s computing the 64×64 quarter (s / 2, s % 2) as 4×4 accumulator tiles
// — 16 named matrices, as naga bounds every loop (drivers then rarely unroll) and a dynamically
// indexed array of matrices would live in local memory. K advances 32 per step through two
// shared buffers: every invocation fetches its 8 + 8 units (4 halves each) of the next step into
// registers, the subgroups multiply the current buffer, then the registers are stored into the
// other buffer; one barrier per step. Blocks are staged in their stored orientation (a plain
// copy: consecutive invocations read consecutive addresses for every layout) and the tiles are
// loaded row- or column-major from there (coopLoadT / coopLoad). Rows are padded by 8 halves so
// a tile's 16 rows start on distinct banks. Everything outside the problem is staged as zeros,
// so edges need no branch in the multiply.
//
// The parameters, the layout overrides and the epilogue (`store_tile`) are gemm_coop_common.wgsl,
// shared with the 128×256-block kernel (gemm_coop_wide.wgsl).
//
// naga's SPIR-V writer panics ("Expression [N] is not cached") when a coopLoad/coopStore
// pointer holds an inline index expression: every index is bound with `let` first.

const BM: u32 = 128u;
const BN: u32 = 128u;
const BK: u32 = 32u;
const THREADS: u32 = 128u;
// Shared rows in halves: a block stored with K contiguous (32 + 8 pad), and one stored with M
// or N contiguous (128 + 8); one buffer of either orientation: max(128 · LDK, 32 · LDW).
const LDK: u32 = 40u;
const LDW: u32 = 136u;
const BUF: u32 = 5120u;

// The shared element: 4 halves, one staged unit (coopLoad's pointer may point at a vector; its
// stride then counts vectors).
const UNIT: u32 = 4u;
var<workgroup> sa: array<vec4<f16>, 2560>;
var<workgroup> sb: array<vec4<f16>, 2560>;

// Stores the unit at half h (a multiple of 4).
fn put_a(h: u32, v: vec4<f16>) {
    sa[h / UNIT] = v;
}

fn put_b(h: u32, v: vec4<f16>) {
    sb[h / UNIT] = v;
}

// The guarded epilogue's staging: one 16×16 tile per subgroup.
var<workgroup> scratch: array<f32, 1024>;

// The next K step of this invocation's units, in registers (named: see above).
var<private> ra0: vec4<f16>;
var<private> ra1: vec4<f16>;
var<private> ra2: vec4<f16>;
var<private> ra3: vec4<f16>;
var<private> ra4: vec4<f16>;
var<private> ra5: vec4<f16>;
var<private> ra6: vec4<f16>;
var<private> ra7: vec4<f16>;
var<private> rb0: vec4<f16>;
var<private> rb1: vec4<f16>;
var<private> rb2: vec4<f16>;
var<private> rb3: vec4<f16>;
var<private> rb4: vec4<f16>;
var<private> rb5: vec4<f16>;
var<private> rb6: vec4<f16>;
var<private> rb7: vec4<f16>;

// Where an invocation's units sit in a stored block of `wide` (128 columns: 32 units a row) or
// K-contiguous (32 columns: 8 units a row) shape: first row, row step between its units, unit
// column, and shared row length.
struct Stage {
    row: u32,
    step: u32,
    col4: u32,
    ld: u32,
}

fn stage_of(wide: bool, lid: u32) -> Stage {
    let per_row = select(8u, 32u, wide);
    return Stage(lid / per_row, THREADS / per_row, lid % per_row, select(LDK, LDW, wide));
}

// Stored origin (row, column) of a block: (m or n, k) when K is contiguous, else (k, m or n).
fn origin(wide: bool, w0: u32, k0: u32) -> vec2<u32> {
    return select(vec2<u32>(w0, k0), vec2<u32>(k0, w0), wide);
}

fn fetch_step(batch: u32, sa_: Stage, sb_: Stage, m0: u32, n0: u32, k0: u32) {
    let oa = origin(TA, m0, k0) + vec2<u32>(sa_.row, 4u * sa_.col4);
    ra0 = fetch_a(batch, oa.x, oa.y);
    ra1 = fetch_a(batch, oa.x + sa_.step, oa.y);
    ra2 = fetch_a(batch, oa.x + 2u * sa_.step, oa.y);
    ra3 = fetch_a(batch, oa.x + 3u * sa_.step, oa.y);
    ra4 = fetch_a(batch, oa.x + 4u * sa_.step, oa.y);
    ra5 = fetch_a(batch, oa.x + 5u * sa_.step, oa.y);
    ra6 = fetch_a(batch, oa.x + 6u * sa_.step, oa.y);
    ra7 = fetch_a(batch, oa.x + 7u * sa_.step, oa.y);
    let ob = origin(!TB, n0, k0) + vec2<u32>(sb_.row, 4u * sb_.col4);
    rb0 = fetch_b(batch, ob.x, ob.y);
    rb1 = fetch_b(batch, ob.x + sb_.step, ob.y);
    rb2 = fetch_b(batch, ob.x + 2u * sb_.step, ob.y);
    rb3 = fetch_b(batch, ob.x + 3u * sb_.step, ob.y);
    rb4 = fetch_b(batch, ob.x + 4u * sb_.step, ob.y);
    rb5 = fetch_b(batch, ob.x + 5u * sb_.step, ob.y);
    rb6 = fetch_b(batch, ob.x + 6u * sb_.step, ob.y);
    rb7 = fetch_b(batch, ob.x + 7u * sb_.step, ob.y);
}

fn stash_step(buf: u32, sa_: Stage, sb_: Stage) {
    let a = buf * BUF + sa_.row * sa_.ld + 4u * sa_.col4;
    let as_ = sa_.step * sa_.ld;
    put_a(a, ra0);
    put_a(a + as_, ra1);
    put_a(a + 2u * as_, ra2);
    put_a(a + 3u * as_, ra3);
    put_a(a + 4u * as_, ra4);
    put_a(a + 5u * as_, ra5);
    put_a(a + 6u * as_, ra6);
    put_a(a + 7u * as_, ra7);
    let b = buf * BUF + sb_.row * sb_.ld + 4u * sb_.col4;
    let bs = sb_.step * sb_.ld;
    put_b(b, rb0);
    put_b(b + bs, rb1);
    put_b(b + 2u * bs, rb2);
    put_b(b + 3u * bs, rb3);
    put_b(b + 4u * bs, rb4);
    put_b(b + 5u * bs, rb5);
    put_b(b + 6u * bs, rb6);
    put_b(b + 7u * bs, rb7);
}

// The A tile of rows m..m+15 (block-relative) and k kk..kk+15 of shared buffer `buf`.
fn tile_a(buf: u32, m: u32, kk: u32) -> coop_mat16x16<f16, A> {
    if (TA) {
        // Stored (k, m): element (m, k) at k · LDW + m, column-major.
        let i = (buf * BUF + kk * LDW + m) / UNIT;
        return coopLoad<coop_mat16x16<f16, A>>(&sa[i], LDW / UNIT);
    }
    let i = (buf * BUF + m * LDK + kk) / UNIT;
    return coopLoadT<coop_mat16x16<f16, A>>(&sa[i], LDK / UNIT);
}

// The B tile of k kk..kk+15 and columns n..n+15 (block-relative) of shared buffer `buf`.
fn tile_b(buf: u32, kk: u32, n: u32) -> coop_mat16x16<f16, B> {
    if (TB) {
        // Stored (n, k): element (k, n) at n · LDK + k, column-major.
        let i = (buf * BUF + n * LDK + kk) / UNIT;
        return coopLoad<coop_mat16x16<f16, B>>(&sb[i], LDK / UNIT);
    }
    let i = (buf * BUF + kk * LDW + n) / UNIT;
    return coopLoadT<coop_mat16x16<f16, B>>(&sb[i], LDW / UNIT);
}

@compute @workgroup_size(128)
fn gemm_coop(@builtin(workgroup_id) wid: vec3<u32>,
             @builtin(local_invocation_index) lid: u32,
             @builtin(subgroup_id) sg: u32,
             @builtin(subgroup_invocation_id) lane: u32) {
    let batch = wid.z;
    let m0 = wid.y * BM;
    let n0 = wid.x * BN;
    let sa_ = stage_of(TA, lid);
    let sb_ = stage_of(!TB, lid);
    // This subgroup's 64×64 quarter, block-relative.
    let wm = (sg / 2u) * 64u;
    let wn = (sg % 2u) * 64u;

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
    fetch_step(batch, sa_, sb_, m0, n0, 0u);
    stash_step(0u, sa_, sb_);
    workgroupBarrier();
    for (var s = 0u; s < steps; s = s + 1u) {
        let buf = s % 2u;
        let more = s + 1u < steps;
        if (more) {
            fetch_step(batch, sa_, sb_, m0, n0, (s + 1u) * BK);
        }
        for (var kk = 0u; kk < BK; kk = kk + 16u) {
            let a0 = tile_a(buf, wm, kk);
            let a1 = tile_a(buf, wm + 16u, kk);
            let a2 = tile_a(buf, wm + 32u, kk);
            let a3 = tile_a(buf, wm + 48u, kk);
            let b0 = tile_b(buf, kk, wn);
            let b1 = tile_b(buf, kk, wn + 16u);
            let b2 = tile_b(buf, kk, wn + 32u);
            let b3 = tile_b(buf, kk, wn + 48u);
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
        }
        // The other buffer was last read before the previous barrier: free to overwrite.
        if (more) {
            stash_step(1u - buf, sa_, sb_);
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
