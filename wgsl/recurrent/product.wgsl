// The backward recurrent product of one 16×16 tile: Σ_k dG_h[t, n, k] · W_hh[k, j] over the
// G·H gate rows k, for the invocation's (n, j). Each module including it defines `dgh_at` and
// `whh_at` over its own bindings. Call in uniform control flow (it has barriers).

var<workgroup> tile_dg: array<array<f32, 16>, 16>; // [n][k]
var<workgroup> tile_wt: array<array<f32, 16>, 16>; // [k][j]

fn back_product(wid: vec3<u32>, lid: vec3<u32>, t: u32) -> f32 {
    let H = p.hidden;
    let N = p.batch;
    let GH = gates() * H;
    var acc = 0.0;
    for (var k0 = 0u; k0 < GH; k0 += TILE) {
        let n = wid.y * TILE + lid.y;
        let k = k0 + lid.x;
        tile_dg[lid.y][lid.x] = select(0.0, dgh_at(t, min(n, N - 1u), min(k, GH - 1u)), n < N && k < GH);
        let kr = k0 + lid.y;
        let j = wid.x * TILE + lid.x;
        tile_wt[lid.y][lid.x] = select(0.0, whh_at(min(kr, GH - 1u), min(j, H - 1u)), kr < GH && j < H);
        workgroupBarrier();
        for (var kk = 0u; kk < TILE; kk++) {
            acc += tile_dg[lid.y][kk] * tile_wt[kk][lid.x];
        }
        workgroupBarrier();
    }
    return acc;
}
