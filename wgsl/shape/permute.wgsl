// Permute (generalised transpose) of up to 8 dims: y[i] = x[source offset of i]. Its own inverse
// gives the gradient. Also a strided copy into a slice of a larger buffer (concat elision later).

struct Params {
    n: u32,
    rank: u32,
    dst_offset: u32,
    _pad: u32,
    out_shape: array<vec4<u32>, 2>,   // shape of y
    src_strides: array<vec4<u32>, 2>, // stride in x of each y dim
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> tp_x: array<act>;
@group(0) @binding(2) var<storage, read_write> tp_y: array<act>;

// Read in place from the uniform (a helper taking the array by value would copy it to private
// memory per call: local memory on NVIDIA).
fn out_dim(k: u32) -> u32 { return p.out_shape[k / 4u][k % 4u]; }
fn src_stride(k: u32) -> u32 { return p.src_strides[k / 4u][k % 4u]; }

@compute @workgroup_size(256)
fn permute(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.n) { return; }
    var rem = i;
    var src = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
        let k = u32(d);
        let s = out_dim(k);
        src = src + (rem % s) * src_stride(k);
        rem = rem / s;
    }
    tp_y[p.dst_offset + i] = act(f32(tp_x[src]));
}
