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

// The reduction advances FCHUNK hidden units per barrier pair (each invocation loads
// FCHUNK / 16 elements of each tile row): fewer barriers per step.
const FCHUNK: u32 = 32u;

var<workgroup> tile_h: array<array<f32, 32>, 16>; // [n][k]: h_{t-1}
var<workgroup> tile_w: array<array<f32, 32>, 64>; // [g·16 + j][k]: the W_hh rows of each gate

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

@compute @workgroup_size(16, 16)
fn step_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let H = p.hidden;
    let N = p.batch;
    let G = gates();
    let j = wid.x * TILE + lid.x;
    let n = wid.y * TILE + lid.y;
    // acc[g] = Σ_k h_{t-1}[n, k] · W_hh[g·H + j, k]
    var acc = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < H; k0 += FCHUNK) {
        for (var s = 0u; s < FCHUNK; s += TILE) {
            let k = k0 + s + lid.x;
            tile_h[lid.y][s + lid.x] = select(0.0, h_prev(min(n, N - 1u), min(k, H - 1u)), n < N && k < H);
            // Invocation (x, y) loads column k of W_hh row j' = tile start + y, for each gate.
            let jr = wid.x * TILE + lid.y;
            for (var g = 0u; g < G; g++) {
                let w = w_hh[(g * H + min(jr, H - 1u)) * H + min(k, H - 1u)];
                tile_w[g * TILE + lid.y][s + lid.x] = select(0.0, w, jr < H && k < H);
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < FCHUNK; kk++) {
            let h = tile_h[lid.y][kk];
            acc.x += h * tile_w[lid.x][kk];
            acc.y += h * tile_w[TILE + lid.x][kk];
            acc.z += h * tile_w[2u * TILE + lid.x][kk];
            acc.w += h * tile_w[3u * TILE + lid.x][kk];
        }
        workgroupBarrier();
    }
    if (j >= H || n >= N) {
        return;
    }
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
