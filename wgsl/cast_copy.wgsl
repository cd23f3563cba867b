// A cast to the dtype the value already has: a copy (optionally divided by a loss scale), in the
// storage variant of the tensors (`act`). Kept apart from cast.wgsl, which needs f16 to compile.

struct CopyParams {
    n: u32,      // elements
    scaled: u32, // 1: divide by scale[0]
}

@group(0) @binding(0) var<uniform> cc: CopyParams;

@group(0) @binding(1) var<storage, read> cc_x: array<act>;
@group(0) @binding(2) var<storage, read_write> cc_y: array<act>;
@group(0) @binding(3) var<storage, read> cc_scale: array<f32>;

@compute @workgroup_size(256)
fn copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= cc.n) { return; }
    var v = f32(cc_x[i]);
    if (cc.scaled == 1u) { v = v / cc_scale[0]; }
    cc_y[i] = act(v);
}
