// C of gemm_coop.wgsl in f16: accumulated in f32, rounded once when stored.

@group(0) @binding(3) var<storage, read_write> c16: array<f16>;

fn get_c(i: u32) -> f32 {
    return f32(c16[i]);
}

fn put_c(i: u32, v: f32) {
    c16[i] = f16(v);
}

// Never called: coop.rs sets `direct` only for an f32 C (an f16 C takes the guarded stores,
// which round each value).
fn store_direct(t: coop_mat16x16<f32, C>, i: u32) {
}
