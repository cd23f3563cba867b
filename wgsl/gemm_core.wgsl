// The tiled GEMM main loop shared by matmul and the implicit-GEMM convolutions.
// C(M, N) = sum_k A(M, K) · B(K, N) per batch (workgroup z). The including module supplies:
//   gemm_m(), gemm_n(), gemm_k()               problem size
//   load_a(batch, m, k), load_b(batch, k, n)   operands, 0 outside the problem
//   a_k_fastest(), b_n_fastest()               which index is contiguous in memory (for coalescing)
//   store_c(batch, m, n, acc)                  the epilogue (bias, accumulate, scatter, ...)
// Tile: 64×64 outputs per workgroup of 16×16 invocations, 4×4 per invocation, K in steps of 16.
// The invocation (tx, ty) owns rows ty + 16·i and columns tx + 16·j, so that reads of the shared
// tiles are broadcasts or consecutive words. No assumption on subgroup size.

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> tile_a: array<f32, 1024>; // [BK][BM]
var<workgroup> tile_b: array<f32, 1024>; // [BK][BN]

@compute @workgroup_size(16, 16, 1)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l3: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let batch = wid.z;
    let m0 = wid.y * BM;
    let n0 = wid.x * BN;
    let tx = l3.x;
    let ty = l3.y;
    let kdim = gemm_k();
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i = i + 1u) {
        acc[i] = 0.0;
    }
    for (var k0 = 0u; k0 < kdim; k0 = k0 + BK) {
        // Each of the 256 invocations stages 4 elements of each tile.
        for (var r = 0u; r < 4u; r = r + 1u) {
            let e = lid + r * 256u;
            var mm = e % BM;
            var kk = e / BM;
            if (a_k_fastest()) {
                kk = e % BK;
                mm = e / BK;
            }
            tile_a[kk * BM + mm] = load_a(batch, m0 + mm, k0 + kk);
            var nn = e % BN;
            var kb = e / BN;
            if (!b_n_fastest()) {
                kb = e % BK;
                nn = e / BK;
            }
            tile_b[kb * BN + nn] = load_b(batch, k0 + kb, n0 + nn);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk = kk + 1u) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i = i + 1u) {
                av[i] = tile_a[kk * BM + ty + 16u * i];
                bv[i] = tile_b[kk * BN + tx + 16u * i];
            }
            for (var i = 0u; i < 4u; i = i + 1u) {
                for (var j = 0u; j < 4u; j = j + 1u) {
                    acc[i * 4u + j] = fma(av[i], bv[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            let m = m0 + ty + 16u * i;
            let n = n0 + tx + 16u * j;
            if (m < gemm_m() && n < gemm_n()) {
                store_c(batch, m, n, acc[i * 4u + j]);
            }
        }
    }
}
