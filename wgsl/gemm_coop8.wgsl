enable f16;
enable wgpu_cooperative_matrix;

// The tensor-core GEMM with eight subgroups per workgroup: the same problem, layouts and epilogue
// as gemm_coop.wgsl (read its header first; gemm_coop_common.wgsl holds what they share), built
// to keep more loads in flight, which the timings of gemm_coop.wgsl say is its limit
// (BENCHMARKS.md, "GEMM f16 on the tensor cores"):
// - 256 invocations = 8 subgroups of 32, subgroup s computing the 64×32 piece (s / 4, s % 4) of
//   the 128×128 block as 4×2 accumulator tiles: half the accumulator registers per invocation
//   of gemm_coop.wgsl, twice the warps per block to hide latency with;
// - staging in units of 8 halves: the loader part returns a `mat2x4<f16>` (two vec4 columns,
//   16 bytes), 2 units of A and 2 of B per invocation per K step;
// - `PF2`: the registers hold two K steps in flight (loaded two steps before they are stored to
//   workgroup memory) instead of one.
// The including module supplies
//   fetch_a(batch, r, c) -> mat2x4<f16>   stored A row r, columns c..c+7 (c a multiple of 8), 0 outside
//   fetch_b(batch, r, c) -> mat2x4<f16>   likewise for B
// (gemm_coop8_ld16.wgsl: one 16-byte load, rows of a multiple of 8 halves; gemm_coop8_ld8.wgsl:
// two 8-byte loads, rows of a multiple of 4) and C's element type as for gemm_coop.wgsl.
//
// naga's SPIR-V writer panics ("Expression [N] is not cached") when a coopLoad/coopStore
// pointer holds an inline index expression: every index is bound with `let` first.

// Two register stages instead of one (a pipeline constant: each setting is its own pipeline).
override PF2: bool = false;

const BM: u32 = 128u;
const BN: u32 = 128u;
const BK: u32 = 32u;
const THREADS: u32 = 256u;
// Shared rows in halves as in gemm_coop.wgsl: K-contiguous blocks 32 + 8 pad, wide ones 128 + 8.
const LDK: u32 = 40u;
const LDW: u32 = 136u;
const BUF: u32 = 5120u;

const UNIT: u32 = 4u;
var<workgroup> sa: array<vec4<f16>, 2560>;
var<workgroup> sb: array<vec4<f16>, 2560>;
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

// One K step of this invocation's units: 2 of A, 2 of B (a struct of named values, not an
// array, so that it stays in registers).
struct Regs {
    a0: mat2x4<f16>,
    a1: mat2x4<f16>,
    b0: mat2x4<f16>,
    b1: mat2x4<f16>,
}

// Where an invocation's units sit in a stored block of `wide` (128 columns: 16 units a row) or
// K-contiguous (32 columns: 4 units a row) shape: first row, row step to its second unit, unit
// column, and shared row length.
struct Stage {
    row: u32,
    step: u32,
    col8: u32,
    ld: u32,
}

fn stage_of(wide: bool, lid: u32) -> Stage {
    let per_row = select(4u, 16u, wide);
    return Stage(lid / per_row, THREADS / per_row, lid % per_row, select(LDK, LDW, wide));
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
        fetch_a(batch, oa.x + sa_.step, oa.y),
        fetch_b(batch, ob.x, ob.y),
        fetch_b(batch, ob.x + sb_.step, ob.y),
    );
}

fn stash_step(buf: u32, sa_: Stage, sb_: Stage, r: Regs) {
    let a = buf * BUF + sa_.row * sa_.ld + 8u * sa_.col8;
    put_a(a, r.a0);
    put_a(a + sa_.step * sa_.ld, r.a1);
    let b = buf * BUF + sb_.row * sb_.ld + 8u * sb_.col8;
    put_b(b, r.b0);
    put_b(b + sb_.step * sb_.ld, r.b1);
}

// The A tile of rows m..m+15 (block-relative) and k kk..kk+15 of shared buffer `buf`.
fn tile_a(buf: u32, m: u32, kk: u32) -> coop_mat16x16<f16, A> {
    if (TA) {
        let i = (buf * BUF + kk * LDW + m) / UNIT;
        return coopLoad<coop_mat16x16<f16, A>>(&sa[i], LDW / UNIT);
    }
    let i = (buf * BUF + m * LDK + kk) / UNIT;
    return coopLoadT<coop_mat16x16<f16, A>>(&sa[i], LDK / UNIT);
}

// The B tile of k kk..kk+15 and columns n..n+15 (block-relative) of shared buffer `buf`.
fn tile_b(buf: u32, kk: u32, n: u32) -> coop_mat16x16<f16, B> {
    if (TB) {
        let i = (buf * BUF + n * LDK + kk) / UNIT;
        return coopLoad<coop_mat16x16<f16, B>>(&sb[i], LDK / UNIT);
    }
    let i = (buf * BUF + kk * LDW + n) / UNIT;
    return coopLoadT<coop_mat16x16<f16, B>>(&sb[i], LDW / UNIT);
}

@compute @workgroup_size(256)
fn gemm_coop(@builtin(workgroup_id) wid: vec3<u32>,
             @builtin(local_invocation_index) lid: u32,
             @builtin(subgroup_id) sg: u32,
             @builtin(subgroup_invocation_id) lane: u32) {
    let batch = wid.z;
    let m0 = wid.y * BM;
    let n0 = wid.x * BN;
    let sa_ = stage_of(TA, lid);
    let sb_ = stage_of(!TB, lid);
    // This subgroup's 64×32 piece, block-relative.
    let wm = (sg / 4u) * 64u;
    let wn = (sg % 4u) * 32u;

    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
    var c20 = coop_mat16x16<f32, C>();
    var c21 = coop_mat16x16<f32, C>();
    var c30 = coop_mat16x16<f32, C>();
    var c31 = coop_mat16x16<f32, C>();

    let steps = (p.k + BK - 1u) / BK;
    // Two register sets. With PF2, at the top of step s, buffer s % 2 holds step s and set
    // (s + 1) % 2 holds step s + 1; step s loads s + 2 into set s % 2 and stores set (s + 1) % 2.
    // Without, set 0 alone takes step s + 1 and is stored at the end of step s.
    var r0 = fetch_step(batch, sa_, sb_, m0, n0, 0u);
    stash_step(0u, sa_, sb_, r0);
    var r1 = Regs();
    if (PF2 && steps > 1u) {
        r1 = fetch_step(batch, sa_, sb_, m0, n0, BK);
    }
    workgroupBarrier();
    for (var s = 0u; s < steps; s = s + 1u) {
        let buf = s % 2u;
        let odd = buf == 1u;
        if (PF2) {
            if (s + 2u < steps) {
                let k0 = (s + 2u) * BK;
                if (odd) {
                    r1 = fetch_step(batch, sa_, sb_, m0, n0, k0);
                } else {
                    r0 = fetch_step(batch, sa_, sb_, m0, n0, k0);
                }
            }
        } else if (s + 1u < steps) {
            r0 = fetch_step(batch, sa_, sb_, m0, n0, (s + 1u) * BK);
        }
        for (var kk = 0u; kk < BK; kk = kk + 16u) {
            let a0 = tile_a(buf, wm, kk);
            let a1 = tile_a(buf, wm + 16u, kk);
            let a2 = tile_a(buf, wm + 32u, kk);
            let a3 = tile_a(buf, wm + 48u, kk);
            let b0 = tile_b(buf, kk, wn);
            let b1 = tile_b(buf, kk, wn + 16u);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
            c20 = coopMultiplyAdd(a2, b0, c20);
            c21 = coopMultiplyAdd(a2, b1, c21);
            c30 = coopMultiplyAdd(a3, b0, c30);
            c31 = coopMultiplyAdd(a3, b1, c31);
        }
        // The other buffer was last read before the previous barrier: free to overwrite.
        if (s + 1u < steps) {
            if (PF2 && !odd) {
                stash_step(1u - buf, sa_, sb_, r1);
            } else {
                stash_step(1u - buf, sa_, sb_, r0);
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
    store_tile(c10, batch, m + 16u, n, direct, sg, lane);
    store_tile(c11, batch, m + 16u, n + 16u, direct, sg, lane);
    store_tile(c20, batch, m + 32u, n, direct, sg, lane);
    store_tile(c21, batch, m + 32u, n + 16u, direct, sg, lane);
    store_tile(c30, batch, m + 48u, n, direct, sg, lane);
    store_tile(c31, batch, m + 48u, n + 16u, direct, sg, lane);
}
