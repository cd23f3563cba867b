// The prelude: helpers every kernel of a 2-D grid shares, the first part of each shader that
// needs them (once). Kernels with more workgroups than one grid row holds run on a 2-D grid
// (`launch::grid_1d`): rows of `nwg.x` workgroups.

// The linear workgroup id of a 2-D grid.
fn group_id(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// The linear invocation id of local invocation `lid` in a 2-D grid of 256-invocation workgroups
// (the one-element-per-invocation kernels).
fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return group_id(wid, nwg) * 256u + lid;
}
