enable f16;
enable wgpu_cooperative_matrix;

// The tensor-core twin of gemm_core.wgsl for the implicit-GEMM convolutions: the same loader
// contract (gemm_m/n/k, a_k_fastest, b_n_fastest, ARows/a_rows/load_a4, BCols/b_cols/load_b4,
// store_c — see gemm_core.wgsl), so each convolution module is [its loaders, this] or [its
// loaders, gemm_core.wgsl]. Operands are rounded to f16 as they are staged, sums are f32 in
// 16×16×16 cooperative matrices (`ops::conv::coop`; the adapter must offer that tile and
// subgroups of 32, as for `ops::matmul::coop`).
//
// One entry point, 256 invocations = 8 subgroups of 32 each (4 along m × 2 along n), K in steps
// of CK = 32, two widths (the pipeline constant WIDE: naga requires uniform control flow around
// cooperative-matrix operations and takes function arguments for non-uniform):
//   WIDE   128×128 outputs per workgroup, 32×64 per subgroup (2×4 tiles)
//   !WIDE  128×64 outputs per workgroup, 32×32 per subgroup (2×2 tiles)
// Eight subgroups rather than four: the convolutions' loaders gather scalars, so staging is
// bound by the number of invocations issuing loads, not by the tensor cores.
// Blocks are staged K-major, [k][m or n], as units of 4 consecutive m (n) at one k (what
// load_a4/load_b4 return); each invocation keeps one ARows/BCols (its 4 m or n) for the whole
// loop and takes 4 (narrow B: 2) k of it per step: consecutive invocations take consecutive
// units along the operand's contiguous index (m or n when it is, else k). The next step is
// fetched into registers while the current one is multiplied; one barrier per step. Rows are
// padded by 8 halves so a tile's 16 rows start on distinct banks.
//
// The epilogue goes through a 16×16 f32 scratch tile per subgroup stored column-major, so
// consecutive lanes hand store_c consecutive m: the convolutions' outputs are contiguous along
// m. Named registers and accumulators throughout (naga bounds loops, drivers then rarely unroll,
// and dynamically indexed arrays land in local memory); coopLoad/coopStore pointers take
// `let`-bound indices (naga's SPIR-V writer panics on inline ones).

override WIDE: bool = true;

const CM: u32 = 128u;       // block rows (m)
const CK: u32 = 32u;        // K per step
const CT: u32 = 256u;       // invocations
const CLD_W: u32 = 136u;    // shared row of a 128-wide block, in halves (128 + 8 pad)
const CLD_N: u32 = 72u;     // shared row of a 64-wide block (64 + 8 pad)
const CBUF: u32 = 4352u;    // one buffer: CK rows of CLD_W halves
const CUNIT: u32 = 4u;      // halves per staged unit

var<workgroup> csa: array<vec4<f16>, 2176>; // 2 buffers × CBUF / CUNIT
var<workgroup> csb: array<vec4<f16>, 2176>;
var<workgroup> cscratch: array<f32, 2048>;  // a 16×16 tile per subgroup

// One K step of this invocation's units, held in registers between its loads and its store to
// workgroup memory (named fields: see above).
struct CRegs {
    a0: vec4<f16>,
    a1: vec4<f16>,
    a2: vec4<f16>,
    a3: vec4<f16>,
    b0: vec4<f16>,
    b1: vec4<f16>,
    b2: vec4<f16>,
    b3: vec4<f16>,
}

// An invocation's staging units in a block `width` wide (128 or 64) × CK: its 4 columns
// (w, block-relative), first k and step between its k.
struct CUnit {
    w: u32,
    k: u32,
    step: u32,
}

fn cunit(w_fastest: bool, width: u32, lid: u32) -> CUnit {
    let groups = width / 4u;
    let per = CT / groups;
    if (w_fastest) {
        return CUnit(4u * (lid % groups), lid / groups, per);
    }
    return CUnit(4u * (lid / per), lid % per, per);
}

fn cfetch(batch: u32, ar: ARows, bc: BCols, k0: u32, ua: CUnit, ub: CUnit) -> CRegs {
    var r = CRegs();
    let ka = k0 + ua.k;
    r.a0 = vec4<f16>(load_a4(batch, ar, ka));
    r.a1 = vec4<f16>(load_a4(batch, ar, ka + ua.step));
    r.a2 = vec4<f16>(load_a4(batch, ar, ka + 2u * ua.step));
    r.a3 = vec4<f16>(load_a4(batch, ar, ka + 3u * ua.step));
    let kb = k0 + ub.k;
    r.b0 = vec4<f16>(load_b4(batch, kb, bc));
    r.b1 = vec4<f16>(load_b4(batch, kb + ub.step, bc));
    if (WIDE) {
        r.b2 = vec4<f16>(load_b4(batch, kb + 2u * ub.step, bc));
        r.b3 = vec4<f16>(load_b4(batch, kb + 3u * ub.step, bc));
    }
    return r;
}

fn cstash(buf: u32, ua: CUnit, ub: CUnit, r: CRegs) {
    let a = (buf * CBUF + ua.k * CLD_W + ua.w) / CUNIT;
    let sa = ua.step * CLD_W / CUNIT;
    csa[a] = r.a0;
    csa[a + sa] = r.a1;
    csa[a + 2u * sa] = r.a2;
    csa[a + 3u * sa] = r.a3;
    let ld = select(CLD_N, CLD_W, WIDE);
    let b = (buf * CBUF + ub.k * ld + ub.w) / CUNIT;
    let sb = ub.step * ld / CUNIT;
    csb[b] = r.b0;
    csb[b + sb] = r.b1;
    if (WIDE) {
        csb[b + 2u * sb] = r.b2;
        csb[b + 3u * sb] = r.b3;
    }
}

// The A tile of rows m..m+15 (block-relative) and k kk..kk+15: stored [k][m], column-major.
fn ctile_a(buf: u32, m: u32, kk: u32) -> coop_mat16x16<f16, A> {
    let i = (buf * CBUF + kk * CLD_W + m) / CUNIT;
    return coopLoad<coop_mat16x16<f16, A>>(&csa[i], CLD_W / CUNIT);
}

// The B tile of k kk..kk+15 and columns n..n+15: stored [k][n], row-major.
fn ctile_b(buf: u32, kk: u32, n: u32) -> coop_mat16x16<f16, B> {
    let ld = select(CLD_N, CLD_W, WIDE);
    let i = (buf * CBUF + kk * ld + n) / CUNIT;
    return coopLoadT<coop_mat16x16<f16, B>>(&csb[i], ld / CUNIT);
}

// One 16×16 tile at (m, n) (absolute) through this subgroup's scratch, column-major: lane l
// takes row l % 16 of columns 2j + l / 16. Called by every invocation alike (barriers).
fn cstore_tile(t: coop_mat16x16<f32, C>, batch: u32, m: u32, n: u32, sg: u32, lane: u32) {
    let s = sg * 256u;
    coopStore(t, &cscratch[s], 16u);
    workgroupBarrier();
    let r = lane % 16u;
    let mm = gemm_m();
    let nn = gemm_n();
    for (var j = 0u; j < 8u; j = j + 1u) {
        let c = 2u * j + lane / 16u;
        if (m + r < mm && n + c < nn) {
            store_c(batch, m + r, n + c, cscratch[s + c * 16u + r]);
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(256)
fn gemm_coop(@builtin(workgroup_id) wid: vec3<u32>,
             @builtin(local_invocation_index) lid: u32,
             @builtin(subgroup_id) sg: u32,
             @builtin(subgroup_invocation_id) lane: u32) {
    let batch = wid.z;
    let bn = select(64u, 128u, WIDE);
    let m0 = wid.y * CM;
    let n0 = wid.x * bn;
    let ua = cunit(!a_k_fastest(), CM, lid);
    let ub = cunit(b_n_fastest(), bn, lid);
    let ar = a_rows(batch, m0 + ua.w);
    let bc = b_cols(batch, n0 + ub.w);
    // This subgroup's 32 rows and 64 (narrow: 32) columns, block-relative.
    let wm = (sg / 2u) * 32u;
    let wn = (sg % 2u) * select(32u, 64u, WIDE);

    var c00 = coop_mat16x16<f32, C>();
    var c01 = coop_mat16x16<f32, C>();
    var c02 = coop_mat16x16<f32, C>();
    var c03 = coop_mat16x16<f32, C>();
    var c10 = coop_mat16x16<f32, C>();
    var c11 = coop_mat16x16<f32, C>();
    var c12 = coop_mat16x16<f32, C>();
    var c13 = coop_mat16x16<f32, C>();

    let steps = (gemm_k() + CK - 1u) / CK;
    cstash(0u, ua, ub, cfetch(batch, ar, bc, 0u, ua, ub));
    workgroupBarrier();
    // The next step's registers (a second step in flight timed no faster on the H200: the
    // gathers' issue, not their latency, is the limit).
    var next = CRegs();
    for (var s = 0u; s < steps; s = s + 1u) {
        let buf = s % 2u;
        let more = s + 1u < steps;
        if (more) {
            next = cfetch(batch, ar, bc, (s + 1u) * CK, ua, ub);
        }
        for (var kk = 0u; kk < CK; kk = kk + 16u) {
            let a0 = ctile_a(buf, wm, kk);
            let a1 = ctile_a(buf, wm + 16u, kk);
            let b0 = ctile_b(buf, kk, wn);
            let b1 = ctile_b(buf, kk, wn + 16u);
            c00 = coopMultiplyAdd(a0, b0, c00);
            c01 = coopMultiplyAdd(a0, b1, c01);
            c10 = coopMultiplyAdd(a1, b0, c10);
            c11 = coopMultiplyAdd(a1, b1, c11);
            if (WIDE) {
                let b2 = ctile_b(buf, kk, wn + 32u);
                let b3 = ctile_b(buf, kk, wn + 48u);
                c02 = coopMultiplyAdd(a0, b2, c02);
                c03 = coopMultiplyAdd(a0, b3, c03);
                c12 = coopMultiplyAdd(a1, b2, c12);
                c13 = coopMultiplyAdd(a1, b3, c13);
            }
        }
        // The other buffer was last read before the previous barrier: free to overwrite.
        if (more) {
            cstash(1u - buf, ua, ub, next);
        }
        workgroupBarrier();
    }

    let m = m0 + wm;
    let n = n0 + wn;
    cstore_tile(c00, batch, m, n, sg, lane);
    cstore_tile(c01, batch, m, n + 16u, sg, lane);
    cstore_tile(c10, batch, m + 16u, n, sg, lane);
    cstore_tile(c11, batch, m + 16u, n + 16u, sg, lane);
    if (WIDE) {
        cstore_tile(c02, batch, m, n + 32u, sg, lane);
        cstore_tile(c03, batch, m, n + 48u, sg, lane);
        cstore_tile(c12, batch, m + 16u, n + 32u, sg, lane);
        cstore_tile(c13, batch, m + 16u, n + 48u, sg, lane);
    }
}
