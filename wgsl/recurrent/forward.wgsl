// step_forward: one time step of a recurrent layer (see common.wgsl). The reserve's gate section
// holds x_t·W_ihᵀ + b_ih on entry (the input GEMM) and the activated gates on exit.

@group(0) @binding(1) var<storage, read_write> reserve: array<act>; // gates (T,N,G·H), extra (T,N,H)
@group(0) @binding(2) var<storage, read> w_hh: array<act>;          // (G·H, H)
@group(0) @binding(3) var<storage, read> b_hh: array<act>;          // (G·H) when has_bias
@group(0) @binding(4) var<storage, read> h0: array<act>;            // (N, H) when has_init
@group(0) @binding(5) var<storage, read> c0: array<act>;            // (N, H) LSTM with has_init
@group(0) @binding(6) var<storage, read_write> y: array<act>;       // (T, N, H)
@group(0) @binding(7) var<storage, read_write> h_n: array<act>;     // (N, H)
@group(0) @binding(8) var<storage, read_write> c_n: array<act>;     // (N, H) LSTM

// A step is bound by the latency of its global loads: each invocation's loads of a slice are
// independent statements (no loop, no array, so they issue together and stay in registers), and
// the next slice's are issued before computing on the current one.

// Hidden units k per slice (two per invocation and row).
const FCHUNK: u32 = 32u;

var<workgroup> tile_h: array<array<f32, 32>, 16>; // [n][k]: h_{t-1}
// [g·16 + j][k]: the W_hh rows of each gate; padded to 33 so the 16 units a row of invocations
// reads at one k fall in distinct banks.
var<workgroup> tile_w: array<array<f32, 33>, 64>;

// W_hh[g·H + row, k] for the gates the cell has (zero past them, so the loads need no branch).
fn w_at(g: u32, row: u32, k: u32) -> f32 {
    let H = p.hidden;
    let G = gates();
    let w = f32(w_hh[(min(g, G - 1u) * H + min(row, H - 1u)) * H + min(k, H - 1u)]);
    return select(0.0, w, g < G && row < H && k < H);
}

// h_{t-1}[n, k]: h0 (or zeros) at the first step.
fn h_prev(n: u32, k: u32) -> f32 {
    if (p.step == 0u) {
        return select(0.0, f32(h0[n * p.hidden + k]), p.has_init == 1u);
    }
    return f32(y[(before(p.t) * p.batch + n) * p.hidden + k]);
}

// c_{t-1}[n, j] of an LSTM: c0 (or zeros) at the first step, else the reserve's cell section.
fn c_prev(n: u32, j: u32) -> f32 {
    if (p.step == 0u) {
        return select(0.0, f32(c0[n * p.hidden + j]), p.has_init == 1u);
    }
    let cells = p.seq * p.batch * 4u * p.hidden;
    return f32(reserve[cells + (before(p.t) * p.batch + n) * p.hidden + j]);
}

// The cell update of sequence n, unit j, given acc[g] = Σ_k h_{t-1}[n, k] · W_hh[g·H + j, k].
fn cell(n: u32, j: u32, acc: vec4<f32>) {
    let H = p.hidden;
    let N = p.batch;
    let G = gates();
    var bias = vec4<f32>(0.0);
    if (p.has_bias == 1u) {
        for (var g = 0u; g < G; g++) {
            bias[g] = f32(b_hh[g * H + j]);
        }
    }
    let row = (p.t * N + n) * G * H;
    let at = (p.t * N + n) * H + j;
    let extra = p.seq * N * G * H + at;
    let last = p.step == p.seq - 1u;
    var h = 0.0;
    switch p.cell {
        case 1u: {
            let i = sigmoid(f32(reserve[row + j]) + acc.x + bias.x);
            let f = sigmoid(f32(reserve[row + H + j]) + acc.y + bias.y);
            let g = tanh(f32(reserve[row + 2u * H + j]) + acc.z + bias.z);
            let o = sigmoid(f32(reserve[row + 3u * H + j]) + acc.w + bias.w);
            let c = f * c_prev(n, j) + i * g;
            h = o * tanh(c);
            reserve[row + j] = act(i);
            reserve[row + H + j] = act(f);
            reserve[row + 2u * H + j] = act(g);
            reserve[row + 3u * H + j] = act(o);
            reserve[extra] = act(c);
            if (last) {
                c_n[n * H + j] = act(c);
            }
        }
        case 2u: {
            let r = sigmoid(f32(reserve[row + j]) + acc.x + bias.x);
            let z = sigmoid(f32(reserve[row + H + j]) + acc.y + bias.y);
            let hn = acc.z + bias.z;
            let nn = tanh(f32(reserve[row + 2u * H + j]) + r * hn);
            h = (1.0 - z) * nn + z * h_prev(n, j);
            reserve[row + j] = act(r);
            reserve[row + H + j] = act(z);
            reserve[row + 2u * H + j] = act(nn);
            reserve[extra] = act(hn);
        }
        default: {
            let a = f32(reserve[row + j]) + acc.x + bias.x;
            reserve[row + j] = act(a);
            h = unary_f(p.act, a, p.act_a, p.act_b);
        }
    }
    y[at] = act(h);
    if (last) {
        h_n[n * H + j] = act(h);
    }
}

// h_{t-1}[n, k] · W_hh[g·H + j, k] for the four gates, from the tiles.
fn product(lid: vec3<u32>, kk: u32) -> vec4<f32> {
    let h = tile_h[lid.y][kk];
    return h * vec4<f32>(tile_w[lid.x][kk], tile_w[TILE + lid.x][kk], tile_w[2u * TILE + lid.x][kk], tile_w[3u * TILE + lid.x][kk]);
}

@compute @workgroup_size(16, 16)
fn step_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let H = p.hidden;
    let N = p.batch;
    let j = wid.x * TILE + lid.x;
    let n = wid.y * TILE + lid.y;
    // Invocation (x, y) loads h_{t-1}[n, k] and column k of W_hh row (tile start + y) of each
    // gate, for k = k0 + x and k0 + 16 + x.
    let jr = wid.x * TILE + lid.y;
    let nc = min(n, N - 1u);
    var ha = select(0.0, h_prev(nc, min(lid.x, H - 1u)), n < N && lid.x < H);
    var w0a = w_at(0u, jr, lid.x);
    var w1a = w_at(1u, jr, lid.x);
    var w2a = w_at(2u, jr, lid.x);
    var w3a = w_at(3u, jr, lid.x);
    var hb = select(0.0, h_prev(nc, min(lid.x + TILE, H - 1u)), n < N && lid.x + TILE < H);
    var w0b = w_at(0u, jr, lid.x + TILE);
    var w1b = w_at(1u, jr, lid.x + TILE);
    var w2b = w_at(2u, jr, lid.x + TILE);
    var w3b = w_at(3u, jr, lid.x + TILE);
    // acc[g] = Σ_k h_{t-1}[n, k] · W_hh[g·H + j, k]
    // Four partial sums per gate: independent chains of FMAs instead of one long one.
    var acc = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < H; k0 += FCHUNK) {
        tile_h[lid.y][lid.x] = ha;
        tile_w[lid.y][lid.x] = w0a;
        tile_w[TILE + lid.y][lid.x] = w1a;
        tile_w[2u * TILE + lid.y][lid.x] = w2a;
        tile_w[3u * TILE + lid.y][lid.x] = w3a;
        tile_h[lid.y][lid.x + TILE] = hb;
        tile_w[lid.y][lid.x + TILE] = w0b;
        tile_w[TILE + lid.y][lid.x + TILE] = w1b;
        tile_w[2u * TILE + lid.y][lid.x + TILE] = w2b;
        tile_w[3u * TILE + lid.y][lid.x + TILE] = w3b;
        workgroupBarrier();
        let k = k0 + FCHUNK + lid.x;
        if (k0 + FCHUNK < H) {
            ha = select(0.0, h_prev(nc, min(k, H - 1u)), n < N && k < H);
            w0a = w_at(0u, jr, k);
            w1a = w_at(1u, jr, k);
            w2a = w_at(2u, jr, k);
            w3a = w_at(3u, jr, k);
            hb = select(0.0, h_prev(nc, min(k + TILE, H - 1u)), n < N && k + TILE < H);
            w0b = w_at(0u, jr, k + TILE);
            w1b = w_at(1u, jr, k + TILE);
            w2b = w_at(2u, jr, k + TILE);
            w3b = w_at(3u, jr, k + TILE);
        }
        for (var kk = 0u; kk < FCHUNK; kk += 4u) {
            acc += product(lid, kk);
            acc2 += product(lid, kk + 1u);
            acc3 += product(lid, kk + 2u);
            acc4 += product(lid, kk + 3u);
        }
        workgroupBarrier();
    }
    if (j < H && n < N) {
        cell(n, j, (acc + acc2) + (acc3 + acc4));
    }
}
