// C of gemm_coop.wgsl in f32.

@group(0) @binding(3) var<storage, read_write> c32: array<f32>;

fn get_c(i: u32) -> f32 {
    return c32[i];
}

fn put_c(i: u32, v: f32) {
    c32[i] = v;
}

// A whole 16×16 tile at element i, rows N apart.
fn store_direct(t: coop_mat16x16<f32, C>, i: u32) {
    let ld = p.n;
    coopStoreT(t, &c32[i], ld);
}
