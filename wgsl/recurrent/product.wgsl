// The backward recurrent product of one 16×16 tile: Σ_k dG_h[t, n, k] · W_hh[k, j] over the
// G·H gate rows k, for the invocation's unit j and its ROWS sequences (a vec4, one per row).
// Each module including it defines `dgh_at` and `whh_at` over its own bindings. Call in uniform
// control flow (it has barriers).

// Gate rows per barrier pair: the G·H reduction is long.
const CHUNK: u32 = 64u;

var<workgroup> tile_dg: array<array<f32, 64>, 16>; // [n][k]
var<workgroup> tile_wt: array<array<f32, 16>, 64>; // [k][j]

fn back_product(wid: vec3<u32>, lid: vec3<u32>, index: u32, t: u32) -> vec4<f32> {
    let H = p.hidden;
    let N = p.batch;
    let GH = gates() * H;
    let r0 = lid.y * ROWS;
    var acc = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < GH; k0 += CHUNK) {
        // 1024 elements of each tile, 16 per invocation, consecutive invocations on consecutive
        // addresses.
        for (var q = 0u; q < 16u; q++) {
            let e = index + 64u * q;
            let nn = e / CHUNK;
            let kk = e % CHUNK;
            let n = wid.y * TILE + nn;
            let k = k0 + kk;
            tile_dg[nn][kk] = select(0.0, dgh_at(t, min(n, N - 1u), min(k, GH - 1u)), n < N && k < GH);
            let kr = k0 + e / TILE;
            let j = wid.x * TILE + e % TILE;
            tile_wt[e / TILE][e % TILE] = select(0.0, whh_at(min(kr, GH - 1u), min(j, H - 1u)), kr < GH && j < H);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < CHUNK; kk++) {
            let w = tile_wt[kk][lid.x];
            acc += w * vec4<f32>(tile_dg[r0][kk], tile_dg[r0 + 1u][kk], tile_dg[r0 + 2u][kk], tile_dg[r0 + 3u][kk]);
        }
        workgroupBarrier();
    }
    return acc;
}
