// The backward recurrent product of one 16×16 tile: Σ_k dG_h[t, n, k] · W_hh[k, j] over the
// G·H gate rows k, for the invocation's unit j and its ROWS sequences (a vec4, one per row).
// Each module including it defines `dgh_at` and `whh_at` over its own bindings. Call in uniform
// control flow (it has barriers).
//
// The step is bound by the latency of its global loads, not by arithmetic: each invocation
// issues its share of the next slice's loads into registers all at once, before computing on the
// current slice from workgroup memory, so one slice's loads wait while the other computes.

// Gate rows per slice: 2048 elements of each tile, 32 per invocation.
const CHUNK: u32 = 128u;

var<workgroup> tile_dg: array<array<f32, 128>, 16>; // [n][k]
var<workgroup> tile_wt: array<array<f32, 16>, 128>; // [k][j]

struct Slice {
    dg: array<f32, 32>,
    w: array<f32, 32>,
}

fn load_slice(wid: vec3<u32>, index: u32, t: u32, k0: u32) -> Slice {
    let H = p.hidden;
    let N = p.batch;
    let GH = gates() * H;
    var s: Slice;
    for (var q = 0u; q < 32u; q++) {
        let e = index + 64u * q;
        let n = wid.y * TILE + e / CHUNK;
        let k = k0 + e % CHUNK;
        s.dg[q] = select(0.0, dgh_at(t, min(n, N - 1u), min(k, GH - 1u)), n < N && k < GH);
        let kr = k0 + e / TILE;
        let j = wid.x * TILE + e % TILE;
        s.w[q] = select(0.0, whh_at(min(kr, GH - 1u), min(j, H - 1u)), kr < GH && j < H);
    }
    return s;
}

fn back_product(wid: vec3<u32>, lid: vec3<u32>, index: u32, t: u32) -> vec4<f32> {
    let GH = gates() * p.hidden;
    let r0 = lid.y * ROWS;
    var acc = vec4<f32>(0.0);
    var next = load_slice(wid, index, t, 0u);
    for (var k0 = 0u; k0 < GH; k0 += CHUNK) {
        for (var q = 0u; q < 32u; q++) {
            let e = index + 64u * q;
            tile_dg[e / CHUNK][e % CHUNK] = next.dg[q];
            tile_wt[e / TILE][e % TILE] = next.w[q];
        }
        workgroupBarrier();
        if (k0 + CHUNK < GH) {
            next = load_slice(wid, index, t, k0 + CHUNK);
        }
        for (var kk = 0u; kk < CHUNK; kk++) {
            let w = tile_wt[kk][lid.x];
            acc += w * vec4<f32>(tile_dg[r0][kk], tile_dg[r0 + 1u][kk], tile_dg[r0 + 2u][kk], tile_dg[r0 + 3u][kk]);
        }
        workgroupBarrier();
    }
    return acc;
}
