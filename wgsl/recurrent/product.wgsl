// The backward recurrent product of one 16×16 tile: Σ_k dG_h[t, n, k] · W_hh[k, j] over the
// G·H gate rows k, for the invocation's (n, j). Each module including it defines `dgh_at` and
// `whh_at` over its own bindings. Call in uniform control flow (it has barriers).

// The reduction advances CHUNK gate rows per barrier pair (each invocation loads CHUNK / 16
// elements of each tile): fewer barriers on the long G·H reduction.
const CHUNK: u32 = 64u;

var<workgroup> tile_dg: array<array<f32, 64>, 16>; // [n][k]
var<workgroup> tile_wt: array<array<f32, 16>, 64>; // [k][j]

fn back_product(wid: vec3<u32>, lid: vec3<u32>, t: u32) -> f32 {
    let H = p.hidden;
    let N = p.batch;
    let GH = gates() * H;
    let n = wid.y * TILE + lid.y;
    let j = wid.x * TILE + lid.x;
    var acc = 0.0;
    for (var k0 = 0u; k0 < GH; k0 += CHUNK) {
        for (var s = 0u; s < CHUNK; s += TILE) {
            let k = k0 + s + lid.x;
            tile_dg[lid.y][s + lid.x] = select(0.0, dgh_at(t, min(n, N - 1u), min(k, GH - 1u)), n < N && k < GH);
            let kr = k0 + s + lid.y;
            tile_wt[s + lid.y][lid.x] = select(0.0, whh_at(min(kr, GH - 1u), min(j, H - 1u)), kr < GH && j < H);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < CHUNK; kk++) {
            acc += tile_dg[lid.y][kk] * tile_wt[kk][lid.x];
        }
        workgroupBarrier();
    }
    return acc;
}
