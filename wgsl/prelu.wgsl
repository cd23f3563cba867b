// PReLU: a leaky ReLU with learned slopes, on x viewed as (outer, slots, inner) — element j uses
// slope a[(j / inner) % slots]; slots = C with inner = the spatial size (one slope per channel), or
// slots = 1 with inner = every element (one shared slope). See `ops::prelu`.
//
//   prelu_forward:        y  = x > 0 ? x  : a·x
//   prelu_backward_input: dx = x > 0 ? dy : a·dy      (x = 0 takes the slope branch)
//   prelu_da_partial / prelu_da_finish:
//                         da[k] = Σ_{elements of slot k} (x > 0 ? 0 : x)·dy
//
// The slope gradient is a deterministic two-level reduction, no atomics: workgroup (k, c) of
// prelu_da_partial sums chunk c (`chunk` consecutive elements of slot k, in slot order) with a
// fixed strided share per invocation and a fixed tree, into part[k·chunks + c]; then
// prelu_da_finish sums slot k's `chunks` partials the same way into da[k]. With one chunk per slot
// the first level writes da directly and the second is not launched. Same inputs, same bits.
//
// Elementwise kernels: one invocation per element, 256 per workgroup. Grids over 65,535 workgroups
// are folded into 2-D (`launch::grid_1d`): the linear workgroup id is wid.x + wid.y·nwg.x, and the
// spare workgroups of the fold leave at once.

struct Params {
    n: u32,        // elements of x
    slots: u32,    // slopes: num_parameters
    inner: u32,    // consecutive elements sharing one slope
    chunks: u32,   // da: chunks per slot (partials per slot)
    chunk: u32,    // da: elements per chunk
    per_slot: u32, // da: elements per slot, n / slots
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;

// The element of this invocation, or n for the tail of the last workgroup and the fold's spare
// workgroups. The group is checked first, so the product never wraps, even for n near 2^32.
fn element(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    let g = group_id(wid, nwg);
    if (g > (p.n - 1u) / WG) { return p.n; }
    return g * WG + lid;
}

fn slope_of(j: u32) -> u32 {
    return (j / p.inner) % p.slots;
}

@group(0) @binding(1) var<storage, read> f_x: array<act>;
@group(0) @binding(2) var<storage, read> f_a: array<act>;        // (slots,)
@group(0) @binding(3) var<storage, read_write> f_y: array<act>;

@compute @workgroup_size(256)
fn prelu_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let j = element(wid, nwg, lid);
    if (j >= p.n) { return; }
    let x = f32(f_x[j]);
    f_y[j] = act(select(f32(f_a[slope_of(j)]) * x, x, x > 0.0));
}

@group(0) @binding(1) var<storage, read> bi_x: array<act>;
@group(0) @binding(2) var<storage, read> bi_a: array<act>;       // (slots,)
@group(0) @binding(3) var<storage, read> bi_dy: array<act>;
@group(0) @binding(4) var<storage, read_write> bi_dx: array<act>;

@compute @workgroup_size(256)
fn prelu_backward_input(@builtin(workgroup_id) wid: vec3<u32>,
                        @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
    let j = element(wid, nwg, lid);
    if (j >= p.n) { return; }
    let dy = f32(bi_dy[j]);
    bi_dx[j] = act(select(f32(bi_a[slope_of(j)]) * dy, dy, f32(bi_x[j]) > 0.0));
}

var<workgroup> red: array<f32, 256>;

// Sums red[0..256) into red[0] in a fixed order; every invocation of the workgroup must call it.
fn tree_sum(lid: u32) {
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
}

@group(0) @binding(1) var<storage, read> dp_x: array<act>;
@group(0) @binding(2) var<storage, read> dp_dy: array<act>;
@group(0) @binding(3) var<storage, read_write> dp_part: array<act>; // (slots, chunks)

// One workgroup per (slot k, chunk c), grid slots·chunks (folded): part[k·chunks + c].
@compute @workgroup_size(256)
fn prelu_da_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let g = group_id(wid, nwg);
    if (g >= p.slots * p.chunks) { return; } // uniform: the whole workgroup leaves
    let k = g / p.chunks;
    let start = (g - k * p.chunks) * p.chunk;
    let end = start + min(p.chunk, p.per_slot - start);
    var acc = 0.0;
    for (var t = start + lid; t < end; t = t + WG) {
        // t-th element of slot k: (outer t / inner, slot k, inner t % inner).
        let o = t / p.inner;
        let j = (o * p.slots + k) * p.inner + (t - o * p.inner);
        let x = f32(dp_x[j]);
        acc = acc + select(x, 0.0, x > 0.0) * f32(dp_dy[j]);
    }
    red[lid] = acc;
    tree_sum(lid);
    if (lid == 0u) {
        dp_part[g] = act(red[0]);
    }
}

@group(0) @binding(1) var<storage, read> df_part: array<act>;       // (slots, chunks)
@group(0) @binding(2) var<storage, read_write> df_da: array<act>;   // (slots,)

// One workgroup per slot: da[k] = Σ_c part[k·chunks + c].
@compute @workgroup_size(256)
fn prelu_da_finish(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let k = group_id(wid, nwg);
    if (k >= p.slots) { return; } // uniform
    var acc = 0.0;
    for (var c = lid; c < p.chunks; c = c + WG) {
        acc = acc + f32(df_part[k * p.chunks + c]);
    }
    red[lid] = acc;
    tree_sum(lid);
    if (lid == 0u) {
        df_da[k] = act(red[0]);
    }
}
