// The three transforms of Winograd F(4×4, 3×3) (winograd_common.wgsl has the layouts), one
// invocation per (channel, tile) or (channel, channel), the tile or the output channel fastest
// so that the transformed buffers are written (and M read) in consecutive addresses.
// Transform matrices (Lavin & Gray), interpolation points 0, ±1, ±2, ±1/2:
//   Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
//   G  = [1/4 0 0; −1/6 −1/6 −1/6; −1/6 1/6 −1/6; 1/24 1/12 1/6; 1/24 −1/12 1/6; 0 0 1]
//   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]
// F(2×2, 5×5) (`KERNEL` = 5) shares the 6×6 domain, its points and so Bᵀ; G and Aᵀ are the same
// rows extended to five filter taps and cut to two outputs:
//   G  = rows c·(1, p, p², p³, p⁴) for (p, c) = (0, 1/4), (1, −1/6), (−1, −1/6), (2, 1/24),
//        (−2, 1/24), and (0 0 0 0 1) for ∞ (for 3×3: the first three columns)
//   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 1]
// Every array below is indexed by constants only (a dynamically indexed one lands in local
// memory), so the 6×6 tiles stay in registers.

// filter_transform, input_transform:
@group(0) @binding(1) var<storage, read> src: array<act>;        // w, or the input (N, cin, h, w)
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;  // U or V
// output_transform, filter_grad_transform:
@group(0) @binding(1) var<storage, read> om: array<f32>;         // M, or S
// filter_grad_transform:
@group(0) @binding(2) var<storage, read_write> gw: array<act>;   // dF as w (cout, cin, 3, 3)
@group(0) @binding(2) var<storage, read> ob: array<act>;         // (cout,), or any buffer
@group(0) @binding(3) var<storage, read_write> oy: array<act>;   // output (N, cout, oh, ow)

// The filter's edge (3 or 5, a pipeline constant) and the output tile's (4 or 2).
override KERNEL: u32 = 3u;

fn tile_edge() -> u32 {
    return 7u - KERNEL;
}

// Index i = channel·tiles + t of a per-tile entry as (channel, image, tile row, tile column).
fn site(i: u32) -> vec4<u32> {
    let c = i / p.tiles;
    let t = i - c * p.tiles;
    let per_image = p.th * p.tw;
    let n = t / per_image;
    let rest = t - n * per_image;
    let ty = rest / p.tw;
    return vec4<u32>(c, p.n0 + n, ty, rest - ty * p.tw);
}

// Column s of a transformed 6×6 tile, v[r] = element (r, s), into dst at ξ = 6r + s of index i.
fn put_column(i: u32, s: u32, stride: u32, v: array<f32, 6>) {
    let b = s * stride + i;
    dst[b] = v[0];
    dst[b + 6u * stride] = v[1];
    dst[b + 12u * stride] = v[2];
    dst[b + 18u * stride] = v[3];
    dst[b + 24u * stride] = v[4];
    dst[b + 30u * stride] = v[5];
}

// Bᵀ·d for a column d of six.
fn bt(d: array<f32, 6>) -> array<f32, 6> {
    return array<f32, 6>(
        4.0 * d[0] - 5.0 * d[2] + d[4],
        -4.0 * (d[1] + d[2]) + d[3] + d[4],
        4.0 * (d[1] - d[2]) - d[3] + d[4],
        2.0 * (d[3] - d[1]) - d[2] + d[4],
        2.0 * (d[1] - d[3]) - d[2] + d[4],
        4.0 * d[1] - 5.0 * d[3] + d[5],
    );
}

// A·v for a column v of four (A = (Aᵀ)ᵀ, 6×4).
fn a6(v: vec4<f32>) -> array<f32, 6> {
    let e = v.x + v.z;
    let o = v.y + v.w;
    let e4 = v.x + 4.0 * v.z;
    let o8 = 2.0 * v.y + 8.0 * v.w;
    return array<f32, 6>(v.x, e + o, e - o, e4 + o8, e4 - o8, v.w);
}

// Gᵀ·u for a column u of six (3×6).
fn gt3(u: array<f32, 6>) -> vec3<f32> {
    let s = u[3] + u[4];
    let d = u[3] - u[4];
    return vec3<f32>(
        0.25 * u[0] - (u[1] + u[2]) / 6.0 + s / 24.0,
        (u[2] - u[1]) / 6.0 + d / 12.0,
        (s - u[1] - u[2]) / 6.0 + u[5],
    );
}

// G·g for a column g of three.
fn gt(g: vec3<f32>) -> array<f32, 6> {
    let s = g.x + g.z;
    return array<f32, 6>(
        0.25 * g.x,
        -(s + g.y) / 6.0,
        -(s - g.y) / 6.0,
        g.x / 24.0 + g.y / 12.0 + g.z / 6.0,
        g.x / 24.0 - g.y / 12.0 + g.z / 6.0,
        g.z,
    );
}

// Aᵀ·m for a column m of six.
fn at(m: array<f32, 6>) -> vec4<f32> {
    let a = m[1] + m[2];
    let b = m[1] - m[2];
    let c = m[3] + m[4];
    let d = m[3] - m[4];
    return vec4<f32>(m[0] + a + c, b + 2.0 * d, a + 4.0 * c, b + 8.0 * d + m[5]);
}

// U[ξ, c, o] = (G·F[o, c]·Gᵀ)[r, s], ξ = 6r + s. One invocation per (c, o), o fastest.
@compute @workgroup_size(256)
fn filter_transform(@builtin(workgroup_id) wid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.cin * p.cout) { return; }
    let c = i / p.cout;
    let o = i - c * p.cout;
    if (KERNEL == 5u) {
        filter_transform5(i, c, o);
        return;
    }
    // F's 3×3 taps, row-major, from w (o, c) or flipped from w (c, o).
    var f: array<f32, 9>;
    if (p.adjoint == 0u) {
        let b = (o * p.cin + c) * 9u;
        f = array<f32, 9>(f32(src[b]), f32(src[b + 1u]), f32(src[b + 2u]), f32(src[b + 3u]),
                          f32(src[b + 4u]), f32(src[b + 5u]), f32(src[b + 6u]),
                          f32(src[b + 7u]), f32(src[b + 8u]));
    } else {
        let b = (c * p.cout + o) * 9u;
        f = array<f32, 9>(f32(src[b + 8u]), f32(src[b + 7u]), f32(src[b + 6u]),
                          f32(src[b + 5u]), f32(src[b + 4u]), f32(src[b + 3u]),
                          f32(src[b + 2u]), f32(src[b + 1u]), f32(src[b]));
    }
    // G·F: six rows of three, as columns j of G·(column j of F).
    let c0 = gt(vec3<f32>(f[0], f[3], f[6]));
    let c1 = gt(vec3<f32>(f[1], f[4], f[7]));
    let c2 = gt(vec3<f32>(f[2], f[5], f[8]));
    // (G·F)·Gᵀ: row r is G·(row r of G·F).
    let stride = p.cin * p.cout;
    for (var r = 0u; r < 6u; r = r + 1u) {
        var row: vec3<f32>;
        switch r {
            case 0u: { row = vec3<f32>(c0[0], c1[0], c2[0]); }
            case 1u: { row = vec3<f32>(c0[1], c1[1], c2[1]); }
            case 2u: { row = vec3<f32>(c0[2], c1[2], c2[2]); }
            case 3u: { row = vec3<f32>(c0[3], c1[3], c2[3]); }
            case 4u: { row = vec3<f32>(c0[4], c1[4], c2[4]); }
            default: { row = vec3<f32>(c0[5], c1[5], c2[5]); }
        }
        let u = gt(row);
        let base = 6u * r * stride + i;
        dst[base] = u[0];
        dst[base + stride] = u[1];
        dst[base + 2u * stride] = u[2];
        dst[base + 3u * stride] = u[3];
        dst[base + 4u * stride] = u[4];
        dst[base + 5u * stride] = u[5];
    }
}

// Input element (y, x) of the plane at `base`, 0 outside.
fn x_at(base: u32, y: i32, x: i32) -> f32 {
    if (u32(y) >= p.h || u32(x) >= p.w) { return 0.0; }
    return f32(src[base + u32(y) * p.w + u32(x)]);
}

// Row y of the 6×6 input tile from column x0, transformed: (d·B)[row] = Bᵀ·(row).
fn row_bt(base: u32, y: i32, x0: i32) -> array<f32, 6> {
    return bt(array<f32, 6>(x_at(base, y, x0), x_at(base, y, x0 + 1), x_at(base, y, x0 + 2),
                            x_at(base, y, x0 + 3), x_at(base, y, x0 + 4),
                            x_at(base, y, x0 + 5)));
}

// V[ξ, c, t] = (Bᵀ·d·B)[r, s] for the 6×6 input tile d of tile t. One invocation per (c, t),
// t fastest.
@compute @workgroup_size(256)
fn input_transform(@builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.cin * p.tiles) { return; }
    let here = site(i);
    let c = here.x;
    let n = here.y;
    let ty = here.z;
    let tx = here.w;
    let base = (n * p.cin + c) * p.h * p.w;
    let y0 = i32(tile_edge() * ty) - i32(p.pad_t);
    let x0 = i32(tile_edge() * tx) - i32(p.pad_l);
    // d·B, row by row; then Bᵀ·(d·B), column by column.
    let r0 = row_bt(base, y0, x0);
    let r1 = row_bt(base, y0 + 1, x0);
    let r2 = row_bt(base, y0 + 2, x0);
    let r3 = row_bt(base, y0 + 3, x0);
    let r4 = row_bt(base, y0 + 4, x0);
    let r5 = row_bt(base, y0 + 5, x0);
    let stride = p.cin * p.tiles;
    for (var s = 0u; s < 6u; s = s + 1u) {
        var col: array<f32, 6>;
        switch s {
            case 0u: { col = array<f32, 6>(r0[0], r1[0], r2[0], r3[0], r4[0], r5[0]); }
            case 1u: { col = array<f32, 6>(r0[1], r1[1], r2[1], r3[1], r4[1], r5[1]); }
            case 2u: { col = array<f32, 6>(r0[2], r1[2], r2[2], r3[2], r4[2], r5[2]); }
            case 3u: { col = array<f32, 6>(r0[3], r1[3], r2[3], r3[3], r4[3], r5[3]); }
            case 4u: { col = array<f32, 6>(r0[4], r1[4], r2[4], r3[4], r4[4], r5[4]); }
            default: { col = array<f32, 6>(r0[5], r1[5], r2[5], r3[5], r4[5], r5[5]); }
        }
        put_column(i, s, stride, bt(col));
    }
}

// Row r of M for output channel o and tile t, transformed: (M·A)[r] = Aᵀ·(row r).
fn row_at(i: u32, r: u32, stride: u32) -> vec4<f32> {
    let b = 6u * r * stride + i;
    return at(array<f32, 6>(om[b], om[b + stride], om[b + 2u * stride], om[b + 3u * stride],
                            om[b + 4u * stride], om[b + 5u * stride]));
}

// Output element (oy, ox) of tile origin (y0, x0) and plane `base` from sum `v`: bias,
// accumulate, neuron, inside the output only.
fn put(base: u32, y: u32, x: u32, o: u32, v: f32) {
    if (y >= p.oh || x >= p.ow) { return; }
    let idx = base + y * p.ow + x;
    var s = v;
    if (p.has_bias != 0u) { s = s + f32(ob[o]); }
    if (p.accumulate != 0u) { s = s + f32(oy[idx]); }
    oy[idx] = act(post_op(p.act_len, p.act_op, p.act_a, p.act_b, s));
}

// out[n, o, 4ty.., 4tx..] = Aᵀ·M·A for output channel o and tile t (one invocation per (o, t),
// t fastest), with the epilogue.
@compute @workgroup_size(256)
fn output_transform(@builtin(workgroup_id) wid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.cout * p.tiles) { return; }
    let here = site(i);
    let o = here.x;
    let n = here.y;
    let ty = here.z;
    let tx = here.w;
    let stride = p.cout * p.tiles;
    if (KERNEL == 5u) {
        output_transform5(i, o, (n * p.cout + o) * p.oh * p.ow, 2u * ty, 2u * tx, stride);
        return;
    }
    // M·A, row by row (rows r of six columns each become four); then Aᵀ·(M·A), column by column.
    let m0 = row_at(i, 0u, stride);
    let m1 = row_at(i, 1u, stride);
    let m2 = row_at(i, 2u, stride);
    let m3 = row_at(i, 3u, stride);
    let m4 = row_at(i, 4u, stride);
    let m5 = row_at(i, 5u, stride);
    let base = (n * p.cout + o) * p.oh * p.ow;
    let y0 = 4u * ty;
    let x0 = 4u * tx;
    let c0 = at(array<f32, 6>(m0.x, m1.x, m2.x, m3.x, m4.x, m5.x));
    let c1 = at(array<f32, 6>(m0.y, m1.y, m2.y, m3.y, m4.y, m5.y));
    let c2 = at(array<f32, 6>(m0.z, m1.z, m2.z, m3.z, m4.z, m5.z));
    let c3 = at(array<f32, 6>(m0.w, m1.w, m2.w, m3.w, m4.w, m5.w));
    put(base, y0, x0, o, c0.x);
    put(base, y0, x0 + 1u, o, c1.x);
    put(base, y0, x0 + 2u, o, c2.x);
    put(base, y0, x0 + 3u, o, c3.x);
    put(base, y0 + 1u, x0, o, c0.y);
    put(base, y0 + 1u, x0 + 1u, o, c1.y);
    put(base, y0 + 1u, x0 + 2u, o, c2.y);
    put(base, y0 + 1u, x0 + 3u, o, c3.y);
    put(base, y0 + 2u, x0, o, c0.z);
    put(base, y0 + 2u, x0 + 1u, o, c1.z);
    put(base, y0 + 2u, x0 + 2u, o, c2.z);
    put(base, y0 + 2u, x0 + 3u, o, c3.z);
    put(base, y0 + 3u, x0, o, c0.w);
    put(base, y0 + 3u, x0 + 1u, o, c1.w);
    put(base, y0 + 3u, x0 + 2u, o, c2.w);
    put(base, y0 + 3u, x0 + 3u, o, c3.w);
}

// Output-gradient element (y, x) of the plane at `base`, 0 outside.
fn dy_at(base: u32, y: u32, x: u32) -> f32 {
    if (y >= p.oh || x >= p.ow) { return 0.0; }
    return f32(src[base + y * p.ow + x]);
}

// Row y of the 4×4 output-gradient tile from column x0, transformed: (dy·Aᵀ)[row] = A·(row).
fn row_a6(base: u32, y: u32, x0: u32) -> array<f32, 6> {
    return a6(vec4<f32>(dy_at(base, y, x0), dy_at(base, y, x0 + 1u), dy_at(base, y, x0 + 2u),
                        dy_at(base, y, x0 + 3u)));
}

// D[ξ, o, t] = (A·dy_t·Aᵀ)[r, s] for the 4×4 output-gradient tile of tile t (the weight
// gradient). One invocation per (o, t), t fastest.
@compute @workgroup_size(256)
fn grad_transform(@builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.cout * p.tiles) { return; }
    let here = site(i);
    let o = here.x;
    let n = here.y;
    let ty = here.z;
    let tx = here.w;
    let base = (n * p.cout + o) * p.oh * p.ow;
    let stride = p.cout * p.tiles;
    if (KERNEL == 5u) {
        grad_transform5(i, base, 2u * ty, 2u * tx, stride);
        return;
    }
    let y0 = 4u * ty;
    let x0 = 4u * tx;
    // dy·Aᵀ, row by row (four rows of six); then A·(dy·Aᵀ), column by column.
    let r0 = row_a6(base, y0, x0);
    let r1 = row_a6(base, y0 + 1u, x0);
    let r2 = row_a6(base, y0 + 2u, x0);
    let r3 = row_a6(base, y0 + 3u, x0);
    for (var s = 0u; s < 6u; s = s + 1u) {
        var col: vec4<f32>;
        switch s {
            case 0u: { col = vec4<f32>(r0[0], r1[0], r2[0], r3[0]); }
            case 1u: { col = vec4<f32>(r0[1], r1[1], r2[1], r3[1]); }
            case 2u: { col = vec4<f32>(r0[2], r1[2], r2[2], r3[2]); }
            case 3u: { col = vec4<f32>(r0[3], r1[3], r2[3], r3[3]); }
            case 4u: { col = vec4<f32>(r0[4], r1[4], r2[4], r3[4]); }
            default: { col = vec4<f32>(r0[5], r1[5], r2[5], r3[5]); }
        }
        put_column(i, s, stride, a6(col));
    }
}

// Σ over the splits of S[ξ = 6r + s, ·, c, o] for (c, o) at index i = c·cout + o.
fn s_sum(i: u32, r: u32, s: u32) -> f32 {
    let per_split = p.cin * p.cout;
    var b = (6u * r + s) * p.splits_all * per_split + i;
    var v = 0.0;
    for (var k = 0u; k < p.splits_all; k = k + 1u) {
        v = v + om[b];
        b = b + per_split;
    }
    return v;
}

// Row r of Σ S for (c, o), transformed: (S·G)[row] = Gᵀ·(row).
fn s_row(i: u32, r: u32) -> vec3<f32> {
    return gt3(array<f32, 6>(s_sum(i, r, 0u), s_sum(i, r, 1u), s_sum(i, r, 2u), s_sum(i, r, 3u),
                             s_sum(i, r, 4u), s_sum(i, r, 5u)));
}

// dw[o, c] = Gᵀ·(Σ S)·G (3×3), added to what dw holds when accumulating. One invocation per
// (c, o), o fastest.
@compute @workgroup_size(256)
fn filter_grad_transform(@builtin(workgroup_id) wid: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    let i = linear_id(wid, nwg, lid);
    if (i >= p.cin * p.cout) { return; }
    let c = i / p.cout;
    let o = i - c * p.cout;
    if (KERNEL == 5u) {
        filter_grad_transform5(i, c, o);
        return;
    }
    let r0 = s_row(i, 0u);
    let r1 = s_row(i, 1u);
    let r2 = s_row(i, 2u);
    let r3 = s_row(i, 3u);
    let r4 = s_row(i, 4u);
    let r5 = s_row(i, 5u);
    // Gᵀ·(S·G), column by column: tap (ky, kx) = (row of Gᵀ, column j).
    let k0 = gt3(array<f32, 6>(r0.x, r1.x, r2.x, r3.x, r4.x, r5.x));
    let k1 = gt3(array<f32, 6>(r0.y, r1.y, r2.y, r3.y, r4.y, r5.y));
    let k2 = gt3(array<f32, 6>(r0.z, r1.z, r2.z, r3.z, r4.z, r5.z));
    let taps = array<f32, 9>(k0.x, k1.x, k2.x, k0.y, k1.y, k2.y, k0.z, k1.z, k2.z);
    let b = (o * p.cin + c) * 9u;
    for (var j = 0u; j < 9u; j = j + 1u) {
        var v = taps[j];
        if (p.accumulate != 0u) { v = v + f32(gw[b + j]); }
        gw[b + j] = act(v);
    }
}

// ---- F(2×2, 5×5) ----

// G·g for a column g of five.
fn g5(g: array<f32, 5>) -> array<f32, 6> {
    let e = g[0] + g[2] + g[4];
    let o = g[1] + g[3];
    let e2 = g[0] + 4.0 * g[2] + 16.0 * g[4];
    let o2 = 2.0 * g[1] + 8.0 * g[3];
    return array<f32, 6>(0.25 * g[0], -(e + o) / 6.0, -(e - o) / 6.0, (e2 + o2) / 24.0,
                         (e2 - o2) / 24.0, g[4]);
}

// Gᵀ·u for a column u of six (5×6).
fn gt5(u: array<f32, 6>) -> array<f32, 5> {
    let s = -(u[1] + u[2]) / 6.0;
    let d = (u[2] - u[1]) / 6.0;
    let s4 = (u[3] + u[4]) / 24.0;
    let d4 = (u[3] - u[4]) / 24.0;
    return array<f32, 5>(0.25 * u[0] + s + s4, d + 2.0 * d4, s + 4.0 * s4, d + 8.0 * d4,
                         s + 16.0 * s4 + u[5]);
}

// Aᵀ·m for a column m of six (2×6).
fn at2(m: array<f32, 6>) -> vec2<f32> {
    return vec2<f32>(m[0] + m[1] + m[2] + m[3] + m[4], m[1] - m[2] + 2.0 * (m[3] - m[4]) + m[5]);
}

// A·v for a column v of two (6×2).
fn a6_2(v: vec2<f32>) -> array<f32, 6> {
    return array<f32, 6>(v.x, v.x + v.y, v.x - v.y, v.x + 2.0 * v.y, v.x - 2.0 * v.y, v.y);
}

// U[ξ, c, o] = (G·F·Gᵀ)[r, s] for a 5×5 filter (the indexing of filter_transform).
fn filter_transform5(i: u32, c: u32, o: u32) {
    var f: array<f32, 25>;
    for (var k = 0u; k < 25u; k = k + 1u) {
        if (p.adjoint == 0u) {
            f[k] = f32(src[(o * p.cin + c) * 25u + k]);
        } else {
            f[k] = f32(src[(c * p.cout + o) * 25u + 24u - k]);
        }
    }
    // G·F, column by column: gf[j][r].
    var gf: array<array<f32, 6>, 5>;
    for (var j = 0u; j < 5u; j = j + 1u) {
        gf[j] = g5(array<f32, 5>(f[j], f[5u + j], f[10u + j], f[15u + j], f[20u + j]));
    }
    let stride = p.cin * p.cout;
    for (var r = 0u; r < 6u; r = r + 1u) {
        let u = g5(array<f32, 5>(gf[0][r], gf[1][r], gf[2][r], gf[3][r], gf[4][r]));
        let base = 6u * r * stride + i;
        for (var s = 0u; s < 6u; s = s + 1u) {
            dst[base + s * stride] = u[s];
        }
    }
}

// The 2×2 output tile at (y0, x0) of the plane at `base` from M at index i (output_transform's).
fn output_transform5(i: u32, o: u32, base: u32, y0: u32, x0: u32, stride: u32) {
    var ma: array<vec2<f32>, 6>;
    for (var r = 0u; r < 6u; r = r + 1u) {
        let b = 6u * r * stride + i;
        ma[r] = at2(array<f32, 6>(om[b], om[b + stride], om[b + 2u * stride],
                                  om[b + 3u * stride], om[b + 4u * stride],
                                  om[b + 5u * stride]));
    }
    let c0 = at2(array<f32, 6>(ma[0].x, ma[1].x, ma[2].x, ma[3].x, ma[4].x, ma[5].x));
    let c1 = at2(array<f32, 6>(ma[0].y, ma[1].y, ma[2].y, ma[3].y, ma[4].y, ma[5].y));
    put(base, y0, x0, o, c0.x);
    put(base, y0, x0 + 1u, o, c1.x);
    put(base, y0 + 1u, x0, o, c0.y);
    put(base, y0 + 1u, x0 + 1u, o, c1.y);
}

// D[ξ, o, t] = (A·dy_t·Aᵀ)[r, s] for the 2×2 output-gradient tile at (y0, x0) of the plane at
// `base` (grad_transform's indexing).
fn grad_transform5(i: u32, base: u32, y0: u32, x0: u32, stride: u32) {
    let r0 = a6_2(vec2<f32>(dy_at(base, y0, x0), dy_at(base, y0, x0 + 1u)));
    let r1 = a6_2(vec2<f32>(dy_at(base, y0 + 1u, x0), dy_at(base, y0 + 1u, x0 + 1u)));
    for (var s = 0u; s < 6u; s = s + 1u) {
        put_column(i, s, stride, a6_2(vec2<f32>(r0[s], r1[s])));
    }
}

// dw[o, c] = Gᵀ·(Σ S)·G (5×5), as filter_grad_transform.
fn filter_grad_transform5(i: u32, c: u32, o: u32) {
    // (Σ S)·G, row by row: sg[r][k].
    var sg: array<array<f32, 5>, 6>;
    for (var r = 0u; r < 6u; r = r + 1u) {
        sg[r] = gt5(array<f32, 6>(s_sum(i, r, 0u), s_sum(i, r, 1u), s_sum(i, r, 2u),
                                  s_sum(i, r, 3u), s_sum(i, r, 4u), s_sum(i, r, 5u)));
    }
    let b = (o * p.cin + c) * 25u;
    for (var kx = 0u; kx < 5u; kx = kx + 1u) {
        let col = gt5(array<f32, 6>(sg[0][kx], sg[1][kx], sg[2][kx], sg[3][kx], sg[4][kx],
                                    sg[5][kx]));
        for (var ky = 0u; ky < 5u; ky = ky + 1u) {
            var v = col[ky];
            let j = b + ky * 5u + kx;
            if (p.accumulate != 0u) { v = v + f32(gw[j]); }
            gw[j] = act(v);
        }
    }
}
