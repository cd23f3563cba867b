// The backward recurrent product for the invocation's (n, j): Σ_k dG_h[t, n, k] · W_hh[k, j]
// over the G·H gate rows k. Each module including it defines `dgh_at` and `whh_at` over its own
// bindings. Call in uniform control flow (it has barriers).
//
// A step is bound by the latency of its global loads: each invocation's loads of a slice are
// independent statements (no loop, no array, so they issue together and stay in registers), and
// the next slice's are issued before computing on the current one.

// Gate rows per slice: 2048 elements of each tile, 8 per invocation.
const CHUNK: u32 = 128u;

var<workgroup> tile_dg: array<array<f32, 128>, 16>; // [n][k]
var<workgroup> tile_wt: array<array<f32, 16>, 128>; // [k][j]

// Element q of invocation `index`'s share of the dG_h tile at k0 (16 sequences × CHUNK rows).
fn dg_element(wid: vec3<u32>, index: u32, t: u32, k0: u32, q: u32) -> f32 {
    let e = index + 256u * q;
    let n = wid.y * TILE + e / CHUNK;
    let k = k0 + e % CHUNK;
    let GH = gates() * p.hidden;
    return select(0.0, dgh_at(t, min(n, p.batch - 1u), min(k, GH - 1u)), n < p.batch && k < GH);
}

// Element q of invocation `index`'s share of the W_hh tile at k0 (CHUNK rows × 16 units).
fn w_element(wid: vec3<u32>, index: u32, k0: u32, q: u32) -> f32 {
    let e = index + 256u * q;
    let k = k0 + e / TILE;
    let j = wid.x * TILE + e % TILE;
    let GH = gates() * p.hidden;
    return select(0.0, whh_at(min(k, GH - 1u), min(j, p.hidden - 1u)), k < GH && j < p.hidden);
}

fn back_product(wid: vec3<u32>, lid: vec3<u32>, index: u32, t: u32) -> f32 {
    let GH = gates() * p.hidden;
    var d0 = dg_element(wid, index, t, 0u, 0u);
    var d1 = dg_element(wid, index, t, 0u, 1u);
    var d2 = dg_element(wid, index, t, 0u, 2u);
    var d3 = dg_element(wid, index, t, 0u, 3u);
    var d4 = dg_element(wid, index, t, 0u, 4u);
    var d5 = dg_element(wid, index, t, 0u, 5u);
    var d6 = dg_element(wid, index, t, 0u, 6u);
    var d7 = dg_element(wid, index, t, 0u, 7u);
    var w0 = w_element(wid, index, 0u, 0u);
    var w1 = w_element(wid, index, 0u, 1u);
    var w2 = w_element(wid, index, 0u, 2u);
    var w3 = w_element(wid, index, 0u, 3u);
    var w4 = w_element(wid, index, 0u, 4u);
    var w5 = w_element(wid, index, 0u, 5u);
    var w6 = w_element(wid, index, 0u, 6u);
    var w7 = w_element(wid, index, 0u, 7u);
    // Eight partial sums: independent chains of FMAs instead of one long one.
    var acc = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < GH; k0 += CHUNK) {
        // Element e = index + 256·q lands at [e / CHUNK][e % CHUNK] and [e / 16][e % 16].
        let a = index / CHUNK;
        let b = index % CHUNK;
        tile_dg[a + 0u][b] = d0;
        tile_dg[a + 2u][b] = d1;
        tile_dg[a + 4u][b] = d2;
        tile_dg[a + 6u][b] = d3;
        tile_dg[a + 8u][b] = d4;
        tile_dg[a + 10u][b] = d5;
        tile_dg[a + 12u][b] = d6;
        tile_dg[a + 14u][b] = d7;
        let c = index / TILE;
        let d = index % TILE;
        tile_wt[c + 0u][d] = w0;
        tile_wt[c + 16u][d] = w1;
        tile_wt[c + 32u][d] = w2;
        tile_wt[c + 48u][d] = w3;
        tile_wt[c + 64u][d] = w4;
        tile_wt[c + 80u][d] = w5;
        tile_wt[c + 96u][d] = w6;
        tile_wt[c + 112u][d] = w7;
        workgroupBarrier();
        let k1 = k0 + CHUNK;
        if (k1 < GH) {
            d0 = dg_element(wid, index, t, k1, 0u);
            d1 = dg_element(wid, index, t, k1, 1u);
            d2 = dg_element(wid, index, t, k1, 2u);
            d3 = dg_element(wid, index, t, k1, 3u);
            d4 = dg_element(wid, index, t, k1, 4u);
            d5 = dg_element(wid, index, t, k1, 5u);
            d6 = dg_element(wid, index, t, k1, 6u);
            d7 = dg_element(wid, index, t, k1, 7u);
            w0 = w_element(wid, index, k1, 0u);
            w1 = w_element(wid, index, k1, 1u);
            w2 = w_element(wid, index, k1, 2u);
            w3 = w_element(wid, index, k1, 3u);
            w4 = w_element(wid, index, k1, 4u);
            w5 = w_element(wid, index, k1, 5u);
            w6 = w_element(wid, index, k1, 6u);
            w7 = w_element(wid, index, k1, 7u);
        }
        for (var kk = 0u; kk < CHUNK; kk += 8u) {
            let dg = vec4<f32>(tile_dg[lid.y][kk], tile_dg[lid.y][kk + 1u], tile_dg[lid.y][kk + 2u], tile_dg[lid.y][kk + 3u]);
            let w = vec4<f32>(tile_wt[kk][lid.x], tile_wt[kk + 1u][lid.x], tile_wt[kk + 2u][lid.x], tile_wt[kk + 3u][lid.x]);
            acc += dg * w;
            let dg2 = vec4<f32>(tile_dg[lid.y][kk + 4u], tile_dg[lid.y][kk + 5u], tile_dg[lid.y][kk + 6u], tile_dg[lid.y][kk + 7u]);
            let w2 = vec4<f32>(tile_wt[kk + 4u][lid.x], tile_wt[kk + 5u][lid.x], tile_wt[kk + 6u][lid.x], tile_wt[kk + 7u][lid.x]);
            acc2 += dg2 * w2;
        }
        workgroupBarrier();
    }
    let sum = acc + acc2;
    return sum.x + sum.y + sum.z + sum.w;
}
