// Row copy (see src/ops/shape/row_copy.rs): `rows` rows of `len` contiguous elements from a source
// whose rows are `src_stride` apart into a destination whose rows are `dst_stride` apart. Concat
// writes each input into its slice along an axis this way, split (and so concat's backward)
// reads each piece out of one: `rows` is the product of the dims before the axis.
// Each workgroup copies one chunk of CHUNK elements of one row: no division per element, one per
// invocation (its row). 2-D grid of `groups` workgroups (see `grid_1d` in src/launch.rs).
// `row_copy_grad_out` copies through a neuron's derivative (`GRAD_OP`, neuron.wgsl) read from a
// third buffer laid out as the source: concat's backward with the neuron's gradient folded in,
// reading the neuron's output from the concat's output.

struct Params {
    rows: u32,
    len: u32,        // elements per row
    src_stride: u32, // elements from one source row to the next
    dst_stride: u32,
    src_off: u32,    // element offset of the first source row
    dst_off: u32,
    chunks: u32,     // workgroups per row: ceil(len / CHUNK)
    groups: u32,     // rows · chunks (the folded grid may hold a few more)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> rc_x: array<act>;
@group(0) @binding(2) var<storage, read_write> rc_y: array<act>;
@group(0) @binding(3) var<storage, read> rc_neuron_y: array<act>; // the source's layout

// Elements per invocation, 256 apart: each load instruction of a subgroup reads consecutive
// elements (coalesced), and an invocation has four independent loads in flight.
const PER: u32 = 4u;
const CHUNK: u32 = 1024u; // 256 · PER

// The source and destination element offsets of this invocation's first element, its column in
// the row (the host keeps len + CHUNK within u32), and whether its workgroup has a chunk.
struct Site { src: u32, dst: u32, c: u32, ok: bool }

fn site(g: u32, lid: u32) -> Site {
    let row = g / p.chunks;
    let c = (g - row * p.chunks) * CHUNK + lid;
    return Site(p.src_off + row * p.src_stride + c, p.dst_off + row * p.dst_stride + c, c,
                g < p.groups);
}

@compute @workgroup_size(256)
fn row_copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let s = site(group_id(wid, nwg), lid);
    if (!s.ok) { return; }
    if (s.c + (PER - 1u) * 256u < p.len) {
        // A whole chunk: every load issued before the first store.
        let v0 = rc_x[s.src];
        let v1 = rc_x[s.src + 256u];
        let v2 = rc_x[s.src + 512u];
        let v3 = rc_x[s.src + 768u];
        rc_y[s.dst] = v0;
        rc_y[s.dst + 256u] = v1;
        rc_y[s.dst + 512u] = v2;
        rc_y[s.dst + 768u] = v3;
        return;
    }
    // The row's last, partial chunk.
    for (var j = 0u; j < PER; j = j + 1u) {
        if (s.c + j * 256u >= p.len) { return; }
        rc_y[s.dst + j * 256u] = rc_x[s.src + j * 256u];
    }
}

@compute @workgroup_size(256)
fn row_copy_grad_out(@builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let s = site(group_id(wid, nwg), lid);
    if (!s.ok) { return; }
    for (var j = 0u; j < PER; j = j + 1u) {
        if (s.c + j * 256u >= p.len) { return; }
        let i = s.src + j * 256u;
        rc_y[s.dst + j * 256u] = act(grad_from_out(f32(rc_neuron_y[i]), f32(rc_x[i])));
    }
}
