// Casts between f32 and f16 storage (mixed precision: f16 compute copies of f32 weights, f32
// gradients of f16 ones), optionally dividing by a loss scale (the gradients' way back to the
// f32 arena, unscaled there). One element per invocation; 2-D grid (`grid_1d`).
enable f16;

struct CastParams {
    n: u32,      // elements (ranges_to_f32: chunks)
    scaled: u32, // 1: divide by scale[0]
}

@group(0) @binding(0) var<uniform> cp: CastParams;

@group(0) @binding(1) var<storage, read> c16_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> c16_y: array<f16>;
@group(0) @binding(3) var<storage, read> c16_scale: array<f32>;

// y = f16(x / scale); values past f16's range become ±inf (found by the gradient scan).
@compute @workgroup_size(256)
fn to_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= cp.n) { return; }
    var v = c16_x[i];
    if (cp.scaled == 1u) { v = v / c16_scale[0]; }
    c16_y[i] = f16(v);
}

@group(0) @binding(1) var<storage, read> c32_x: array<f16>;
@group(0) @binding(2) var<storage, read_write> c32_y: array<f32>;
@group(0) @binding(3) var<storage, read> c32_scale: array<f32>;

// y = f32(x) / scale
@compute @workgroup_size(256)
fn to_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= cp.n) { return; }
    var v = f32(c32_x[i]);
    if (cp.scaled == 1u) { v = v / c32_scale[0]; }
    c32_y[i] = v;
}

@group(0) @binding(4) var<storage, read> c32_ranges: array<u32>;

// The f16 gradient arena into the f32 one, chunk by chunk: chunk c is the elements
// [ranges[3c], ranges[3c] + ranges[3c + 1]), y = f32(x) / scale; or, when ranges[3c + 2] is 1,
// f32 gradients already in y (a norm's γ/β), divided by the scale where they are. Elements in no
// chunk are left as they are.
@compute @workgroup_size(256)
fn ranges_to_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let c = group_id(wid, nwg);
    if (c >= cp.n) { return; }
    let start = c32_ranges[3u * c];
    let len = c32_ranges[3u * c + 1u];
    let in_place = c32_ranges[3u * c + 2u] == 1u;
    for (var j = lid; j < len; j += 256u) {
        var v: f32;
        if (in_place) { v = c32_y[start + j]; } else { v = f32(c32_x[start + j]); }
        if (cp.scaled == 1u) { v = v / c32_scale[0]; }
        c32_y[start + j] = v;
    }
}
