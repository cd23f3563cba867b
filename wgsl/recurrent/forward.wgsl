// step_forward: one time step of a recurrent layer (see common.wgsl). The reserve's gate section
// holds x_t·W_ihᵀ + b_ih on entry (the input GEMM) and the activated gates on exit.

@group(0) @binding(1) var<storage, read_write> reserve: array<f32>; // gates (T,N,G·H), extra (T,N,H)
@group(0) @binding(2) var<storage, read> w_hh: array<f32>;          // (G·H, H)
@group(0) @binding(3) var<storage, read> b_hh: array<f32>;          // (G·H) when has_bias
@group(0) @binding(4) var<storage, read> h0: array<f32>;            // (N, H) when has_init
@group(0) @binding(5) var<storage, read> c0: array<f32>;            // (N, H) LSTM with has_init
@group(0) @binding(6) var<storage, read_write> y: array<f32>;       // (T, N, H)
@group(0) @binding(7) var<storage, read_write> h_n: array<f32>;     // (N, H)
@group(0) @binding(8) var<storage, read_write> c_n: array<f32>;     // (N, H) LSTM

// The step is bound by the latency of its global loads, not by arithmetic: each invocation
// issues its share of the next slice's loads into registers all at once, before computing on the
// current slice from workgroup memory, so one slice's loads wait while the other computes.

// Hidden units k per slice: 512 elements of h (8 per invocation), 2048 of W_hh (32).
const FCHUNK: u32 = 32u;

var<workgroup> tile_h: array<array<f32, 32>, 16>; // [n][k]: h_{t-1}
// [k][g·16 + j]: the W_hh rows of each gate, transposed so a row of invocations reads
// consecutive words; padded to 65 so the transposing writes spread over the banks.
var<workgroup> tile_w: array<array<f32, 65>, 32>;

struct Slice {
    h: array<f32, 8>,
    w: array<f32, 32>,
}

// Invocation `index`'s share of the slice at k0. Gates past G load a clamped row into columns
// nobody reads, so the loop has a constant count.
fn load_slice(wid: vec3<u32>, index: u32, k0: u32) -> Slice {
    let H = p.hidden;
    let N = p.batch;
    let G = gates();
    var s: Slice;
    for (var q = 0u; q < 8u; q++) {
        let e = index + 64u * q;
        let n = wid.y * TILE + e / FCHUNK;
        let k = k0 + e % FCHUNK;
        s.h[q] = select(0.0, h_prev(min(n, N - 1u), min(k, H - 1u)), n < N && k < H);
    }
    for (var q = 0u; q < 32u; q++) {
        let e = index + 64u * q;
        let g = e / (TILE * FCHUNK);
        let jr = wid.x * TILE + (e / FCHUNK) % TILE;
        let k = k0 + e % FCHUNK;
        let w = w_hh[(min(g, G - 1u) * H + min(jr, H - 1u)) * H + min(k, H - 1u)];
        s.w[q] = select(0.0, w, g < G && jr < H && k < H);
    }
    return s;
}

// h_{t-1}[n, k]: h0 (or zeros) at the first step.
fn h_prev(n: u32, k: u32) -> f32 {
    if (p.step == 0u) {
        return select(0.0, h0[n * p.hidden + k], p.has_init == 1u);
    }
    return y[(before(p.t) * p.batch + n) * p.hidden + k];
}

// c_{t-1}[n, j] of an LSTM: c0 (or zeros) at the first step, else the reserve's cell section.
fn c_prev(n: u32, j: u32) -> f32 {
    if (p.step == 0u) {
        return select(0.0, c0[n * p.hidden + j], p.has_init == 1u);
    }
    let cells = p.seq * p.batch * 4u * p.hidden;
    return reserve[cells + (before(p.t) * p.batch + n) * p.hidden + j];
}

// The cell update of sequence n, unit j, given acc[g] = Σ_k h_{t-1}[n, k] · W_hh[g·H + j, k].
fn cell(n: u32, j: u32, acc: vec4<f32>) {
    let H = p.hidden;
    let N = p.batch;
    let G = gates();
    var bias = vec4<f32>(0.0);
    if (p.has_bias == 1u) {
        for (var g = 0u; g < G; g++) {
            bias[g] = b_hh[g * H + j];
        }
    }
    let row = (p.t * N + n) * G * H;
    let at = (p.t * N + n) * H + j;
    let extra = p.seq * N * G * H + at;
    let last = p.step == p.seq - 1u;
    var h = 0.0;
    switch p.cell {
        case 1u: {
            let i = sigmoid(reserve[row + j] + acc.x + bias.x);
            let f = sigmoid(reserve[row + H + j] + acc.y + bias.y);
            let g = tanh(reserve[row + 2u * H + j] + acc.z + bias.z);
            let o = sigmoid(reserve[row + 3u * H + j] + acc.w + bias.w);
            let c = f * c_prev(n, j) + i * g;
            h = o * tanh(c);
            reserve[row + j] = i;
            reserve[row + H + j] = f;
            reserve[row + 2u * H + j] = g;
            reserve[row + 3u * H + j] = o;
            reserve[extra] = c;
            if (last) {
                c_n[n * H + j] = c;
            }
        }
        case 2u: {
            let r = sigmoid(reserve[row + j] + acc.x + bias.x);
            let z = sigmoid(reserve[row + H + j] + acc.y + bias.y);
            let hn = acc.z + bias.z;
            let nn = tanh(reserve[row + 2u * H + j] + r * hn);
            h = (1.0 - z) * nn + z * h_prev(n, j);
            reserve[row + j] = r;
            reserve[row + H + j] = z;
            reserve[row + 2u * H + j] = nn;
            reserve[extra] = hn;
        }
        default: {
            let a = reserve[row + j] + acc.x + bias.x;
            reserve[row + j] = a;
            h = unary_f(p.act, a, p.act_a, p.act_b);
        }
    }
    y[at] = h;
    if (last) {
        h_n[n * H + j] = h;
    }
}

@compute @workgroup_size(16, 4)
fn step_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                @builtin(local_invocation_index) index: u32) {
    let H = p.hidden;
    let N = p.batch;
    let j = wid.x * TILE + lid.x;
    let r0 = lid.y * ROWS;
    // acc_r[g] = Σ_k h_{t-1}[n0 + r, k] · W_hh[g·H + j, k]
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var next = load_slice(wid, index, 0u);
    for (var k0 = 0u; k0 < H; k0 += FCHUNK) {
        for (var q = 0u; q < 8u; q++) {
            let e = index + 64u * q;
            tile_h[e / FCHUNK][e % FCHUNK] = next.h[q];
        }
        for (var q = 0u; q < 32u; q++) {
            let e = index + 64u * q;
            tile_w[e % FCHUNK][e / FCHUNK] = next.w[q];
        }
        workgroupBarrier();
        if (k0 + FCHUNK < H) {
            next = load_slice(wid, index, k0 + FCHUNK);
        }
        for (var kk = 0u; kk < FCHUNK; kk++) {
            let w = vec4<f32>(tile_w[kk][lid.x], tile_w[kk][TILE + lid.x], tile_w[kk][2u * TILE + lid.x], tile_w[kk][3u * TILE + lid.x]);
            acc0 += tile_h[r0][kk] * w;
            acc1 += tile_h[r0 + 1u][kk] * w;
            acc2 += tile_h[r0 + 2u][kk] * w;
            acc3 += tile_h[r0 + 3u][kk] * w;
        }
        workgroupBarrier();
    }
    if (j >= H) {
        return;
    }
    let n0 = wid.y * TILE + r0;
    if (n0 < N) { cell(n0, j, acc0); }
    if (n0 + 1u < N) { cell(n0 + 1u, j, acc1); }
    if (n0 + 2u < N) { cell(n0 + 2u, j, acc2); }
    if (n0 + 3u < N) { cell(n0 + 3u, j, acc3); }
}
