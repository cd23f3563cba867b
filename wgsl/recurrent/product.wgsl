// The backward recurrent product for the invocation's (n, j): Σ_k dG_h[t, n, k] · W_hh[k, j]
// over the G·H gate rows k. Each module including it defines `dgh_at` and `whh_at` over its own
// bindings. Call in uniform control flow (it has barriers).
//
// A step is bound by the latency of its global loads: each invocation's loads of a slice are
// independent statements (no loop, no array, so they issue together and stay in registers), and
// the next slice's are issued before computing on the current one.

// Gate rows per slice: 1024 elements of each tile, 4 per invocation.
const CHUNK: u32 = 64u;

var<workgroup> tile_dg: array<array<f32, 64>, 16>; // [n][k]
var<workgroup> tile_wt: array<array<f32, 16>, 64>; // [k][j]

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
    var w0 = w_element(wid, index, 0u, 0u);
    var w1 = w_element(wid, index, 0u, 1u);
    var w2 = w_element(wid, index, 0u, 2u);
    var w3 = w_element(wid, index, 0u, 3u);
    var acc = 0.0;
    for (var k0 = 0u; k0 < GH; k0 += CHUNK) {
        // Element e = index + 256·q lands at [e / CHUNK][e % CHUNK] and [e / 16][e % 16].
        let a = index / CHUNK;
        let b = index % CHUNK;
        tile_dg[a][b] = d0;
        tile_dg[a + 4u][b] = d1;
        tile_dg[a + 8u][b] = d2;
        tile_dg[a + 12u][b] = d3;
        let c = index / TILE;
        let d = index % TILE;
        tile_wt[c][d] = w0;
        tile_wt[c + 16u][d] = w1;
        tile_wt[c + 32u][d] = w2;
        tile_wt[c + 48u][d] = w3;
        workgroupBarrier();
        let k1 = k0 + CHUNK;
        if (k1 < GH) {
            d0 = dg_element(wid, index, t, k1, 0u);
            d1 = dg_element(wid, index, t, k1, 1u);
            d2 = dg_element(wid, index, t, k1, 2u);
            d3 = dg_element(wid, index, t, k1, 3u);
            w0 = w_element(wid, index, k1, 0u);
            w1 = w_element(wid, index, k1, 1u);
            w2 = w_element(wid, index, k1, 2u);
            w3 = w_element(wid, index, k1, 3u);
        }
        for (var kk = 0u; kk < CHUNK; kk++) {
            acc += tile_dg[lid.y][kk] * tile_wt[kk][lid.x];
        }
        workgroupBarrier();
    }
    return acc;
}
