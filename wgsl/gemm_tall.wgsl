// `gemm_tall`: gemm_core.wgsl's product on 256×64 tiles, 8×8 outputs per invocation, for an N of
// 33..64 (64 channels, say) with rows to spare, or a wider N that 64-column tiles cover with fewer
// idle columns than 128-column ones (192 channels). On the 128×64 tile (`gemm`) an invocation
// reads three shared vec4s per 32 multiply-adds; here four per 64, as `gemm_wide` does.
// Same loaders, staging registers `pa`/`pb`, accumulators `acc` and epilogue (`store_half`) as
// the core; its own shared tiles and functions, so the core's entries do not reach them and keep
// their 16.5 KiB of workgroup memory (these take 20.5 KiB: `launch::TALL_WORKGROUP_BYTES`).
// Invocation lid = 8·ty + tx owns rows 4ty..4ty+3 and 128+4ty..128+4ty+3, columns 4tx..4tx+3
// and 32+4tx..32+4tx+3; acc[2r + c] as in the core, column block c of 32.
// Each invocation stages two vec4s of A a K step (one row quad, two k: when m is contiguous, k
// and k + 4 with consecutive invocations on consecutive m; else k and k + 1, four invocations
// covering a row quad's eight k) and, lid < 128, one of B as the 128×64 tile does.

const TALL_BM: u32 = 256u;

var<workgroup> ta: array<array<vec4<accum>, 65>, 16>; // [2·BK][64 columns of 4 rows + pad]
var<workgroup> tb: array<array<vec4<accum>, 17>, 16>; // [2·BK][16 columns of 4 + pad]
// The second A staging unit's next K step.
var<private> pa2: vec4<accum>;

// This invocation's A staging units: rows m..m+3 at k and at k + dk, as (m, k, dk).
fn tall_a_unit(lid: u32) -> vec3<u32> {
    if (a_k_fastest()) {
        return vec3<u32>(4u * (lid / 4u), 2u * (lid % 4u), 1u);
    }
    return vec3<u32>(4u * (lid % 64u), lid / 64u, 4u);
}

fn tall_fetch(batch: u32, ar: ARows, bc: BCols, k0: u32, au: vec3<u32>, bu: vec2<u32>,
              has_b: bool) {
    pa = vec4<accum>(load_a4(batch, ar, k0 + au.y));
    pa2 = vec4<accum>(load_a4(batch, ar, k0 + au.y + au.z));
    if (has_b) {
        pb = vec4<accum>(load_b4(batch, k0 + bu.y, bc));
    }
}

fn tall_stash(buf: u32, au: vec3<u32>, bu: vec2<u32>, has_b: bool) {
    ta[buf * BK + au.y][au.x / 4u] = pa;
    ta[buf * BK + au.y + au.z][au.x / 4u] = pa2;
    if (has_b) {
        tb[buf * BK + bu.y][bu.x / 4u] = pb;
    }
}

// One k (shared row r): the outer product of 8 A values and 8 B values.
fn tall_mac(r: u32, ty: u32, tx: u32) {
    let a0 = ta[r][ty];
    let a1 = ta[r][ty + 32u];
    let b0 = tb[r][tx];
    let b1 = tb[r][tx + 8u];
    acc[0] = fma(vec4<accum>(a0.x), b0, acc[0]);
    acc[2] = fma(vec4<accum>(a0.y), b0, acc[2]);
    acc[4] = fma(vec4<accum>(a0.z), b0, acc[4]);
    acc[6] = fma(vec4<accum>(a0.w), b0, acc[6]);
    acc[8] = fma(vec4<accum>(a1.x), b0, acc[8]);
    acc[10] = fma(vec4<accum>(a1.y), b0, acc[10]);
    acc[12] = fma(vec4<accum>(a1.z), b0, acc[12]);
    acc[14] = fma(vec4<accum>(a1.w), b0, acc[14]);
    acc[1] = fma(vec4<accum>(a0.x), b1, acc[1]);
    acc[3] = fma(vec4<accum>(a0.y), b1, acc[3]);
    acc[5] = fma(vec4<accum>(a0.z), b1, acc[5]);
    acc[7] = fma(vec4<accum>(a0.w), b1, acc[7]);
    acc[9] = fma(vec4<accum>(a1.x), b1, acc[9]);
    acc[11] = fma(vec4<accum>(a1.y), b1, acc[11]);
    acc[13] = fma(vec4<accum>(a1.z), b1, acc[13]);
    acc[15] = fma(vec4<accum>(a1.w), b1, acc[15]);
}

// The BK k of shared buffer `buf` (a literal).
fn tall_mac_step(buf: u32, ty: u32, tx: u32) {
    let r = buf * BK;
    tall_mac(r, ty, tx);
    tall_mac(r + 1u, ty, tx);
    tall_mac(r + 2u, ty, tx);
    tall_mac(r + 3u, ty, tx);
    tall_mac(r + 4u, ty, tx);
    tall_mac(r + 5u, ty, tx);
    tall_mac(r + 6u, ty, tx);
    tall_mac(r + 7u, ty, tx);
}

// The core's main loop (gemm_main) on the tall tiles: one step fetched ahead into registers,
// two shared buffers, one barrier a step.
@compute @workgroup_size(256, 1, 1)
fn gemm_tall(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let batch = wid.z;
    let m0 = wid.y * TALL_BM;
    let n0 = wid.x * 64u;
    let tx = lid % 8u;
    let ty = lid / 8u;
    let au = tall_a_unit(lid);
    let bu = stage_unit(b_n_fastest(), 64u, lid);
    let has_b = lid < 128u;
    let ar = a_rows(batch, m0 + au.x);
    let bc = b_cols(batch, n0 + bu.x);
    acc = array<vec4<accum>, 16>();
    let kdim = gemm_k();

    tall_fetch(batch, ar, bc, 0u, au, bu, has_b);
    tall_stash(0u, au, bu, has_b);
    workgroupBarrier();
    for (var k0 = 0u; k0 < kdim; k0 = k0 + 2u * BK) {
        tall_fetch(batch, ar, bc, k0 + BK, au, bu, has_b);
        tall_mac_step(0u, ty, tx);
        tall_stash(1u, au, bu, has_b);
        workgroupBarrier();
        if (k0 + BK >= kdim) {
            break;
        }
        tall_fetch(batch, ar, bc, k0 + 2u * BK, au, bu, has_b);
        tall_mac_step(1u, ty, tx);
        tall_stash(0u, au, bu, has_b);
        workgroupBarrier();
    }

    let m = m0 + 4u * ty;
    store_half(batch, m, m + 128u, n0 + 4u * tx, 0u, 64u);
    store_half(batch, m, m + 128u, n0 + 32u + 4u * tx, 1u, 64u);
}
