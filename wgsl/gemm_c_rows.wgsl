// gemm_core.wgsl's store contract for a row-major C (every includer but Winograd's products):
// its consecutive m are not adjacent, so the core stores by rows through store_c alone.

fn c_m_contiguous() -> bool { return false; }

fn store_c4m(batch: u32, m: u32, n: u32, v: vec4<f32>) {
    store_c(batch, m, n, v.x);
    store_c(batch, m + 1u, n, v.y);
    store_c(batch, m + 2u, n, v.z);
    store_c(batch, m + 3u, n, v.w);
}
