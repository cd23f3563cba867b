// Shared by the Winograd modules (winograd.wgsl: the transforms; winograd_gemm.wgsl: the 36
// products): F(4×4, 3×3) for a 3×3 correlation at stride 1,
//   out[n, o, y, x] = Σ_c Σ_{i,j<3} in[n, c, y + i − pad_t, x + j − pad_l] · F[o, c, i, j],
// zero outside the input. Each 4×4 output tile reads a 6×6 input tile; in the 6×6 transformed
// domain (ξ = 6r + s) the sum over c is one GEMM per ξ. Buffers (f32, row-major):
//   U (36, cin, cout)   transformed filters  G·F·Gᵀ
//   V (36, cin, tiles)  transformed inputs   Bᵀ·d·B
//   M (36, cout, tiles) their products       Σ_c V·U, back to 4×4 by Aᵀ·M·A
// with tile t = (n·th + ty)·tw + tx. The weight gradient is the same identity transposed:
// y = Aᵀ·(G·F·Gᵀ ⊙ Bᵀ·d·B)·A gives dF = Gᵀ·(Σ_t Bᵀ·d_t·B ⊙ A·dy_t·Aᵀ)·G, so
//   D (36, cout, tiles)          transformed output gradients  A·dy·Aᵀ
//   S (36, splits_all, cin, cout)  Σ_t V·D over each split's tiles, back by Gᵀ·(Σ S)·G

struct Params {
    batch: u32,
    cin: u32,        // channels of the correlation's input (the GEMM's K)
    cout: u32,       // channels of its output (the GEMM's N)
    h: u32,          // input rows and columns
    w: u32,
    oh: u32,         // output rows and columns
    ow: u32,
    th: u32,         // tiles per column and per row: ceil(oh / 4), ceil(ow / 4)
    tw: u32,
    tiles: u32,      // batch · th · tw (the GEMM's M)
    pad_t: u32,
    pad_l: u32,
    // F[o, c, i, j] = w[o, c, i, j] (0, the forward) or w[c, o, 2 − i, 2 − j] (1, the data
    // gradient: the adjoint of a stride-1 convolution is the correlation with the flipped filter).
    adjoint: u32,
    has_bias: u32,   // the output transform adds bias[o]
    accumulate: u32, // ... and what the output holds (a gradient sum in place)
    act_len: u32,    // fused post-op: 0 = none, 1 = neuron act_op
    act_op: u32,
    act_a: f32,
    act_b: f32,
    // The weight gradient's products are split over the tiles (its K): k_chunk tiles per split.
    splits: u32,
    k_chunk: u32,
    // A pass runs over the batch in chunks of images (to bound the scratch): this launch's first
    // image (its tiles are the chunk's: `batch` images from n0), and for the weight gradient the
    // chunk's first split in S and the splits of all chunks.
    n0: u32,
    split0: u32,
    splits_all: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

const XI: u32 = 36u;

// Number of the four lines n..n+3 below `count`.
fn valid4(n: u32, count: u32) -> u32 {
    return select(0u, min(count - n, 4u), n < count);
}
