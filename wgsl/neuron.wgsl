// Neuron functions shared by every kernel that applies one: the elementwise ops, and the fused
// post-op of other kernels (e.g. batch norm + ReLU at inference). NaN in, NaN out, as PyTorch
// (`is_nan` from finite.wgsl, which comes first): max and clamp may drop a NaN.
// The neuron table of the GPU: forward (unary_f), derivative from the input (unary_b) and from
// the output (unary_b_out) of every neuron, by op code. The op codes, names and f64 references
// are the table in src/neuron.rs (`UnaryOp`); its unit test checks every op code has its cases
// here and that each unary_f case is commented with the neuron's name.

// erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, below f32 resolution near 1).
fn erf_approx(x: f32) -> f32 {
    let s = sign(x);
    let ax = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * ax);
    let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-ax * ax);
    return s * y;
}

fn softplus(x: f32) -> f32 {
    return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}

fn sigmoid(x: f32) -> f32 {
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

// √(2/π)·(x + 0.044715·x³), clamped to ±20 where tanh is ±1 in f32 anyway: some backends build
// tanh from exponentials that overflow to inf/inf = NaN for large arguments.
fn gelu_tanh_arg(x: f32) -> f32 {
    return clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -20.0, 20.0);
}

// tanh(softplus(x)) = n / (n + 2) with n = eˣ(eˣ + 2) (since e^softplus = 1 + eˣ): no log, no
// cancellation for negative x (≈ eˣ, relatively exact), and 1 beyond x = 20, where it is 1 in f32
// and eˣ would overflow soon after.
fn tanh_softplus(x: f32) -> f32 {
    if (x > 20.0) {
        return 1.0;
    }
    let e = exp(x);
    let n = e * (e + 2.0);
    return n / (n + 2.0);
}

// Mish's derivative t + x·sech²(softplus(x))·σ(x) with t = tanh(softplus(x)) = n / (n + 2) and
// sech² = 1 − t² = (4n + 4) / (n + 2)² (no 1 − t² cancellation); 1 beyond x = 20 (exactly 1 in
// f32 there).
fn mish_d(x: f32) -> f32 {
    if (x > 20.0) {
        return 1.0;
    }
    let e = exp(x);
    let n = e * (e + 2.0);
    let d = n + 2.0;
    return n / d + x * (4.0 * n + 4.0) / (d * d) * sigmoid(x);
}

// Forward of unary op `op` with parameters a, b.
fn unary_f(op: u32, x: f32, a: f32, b: f32) -> f32 {
    switch op {
        case 0u: { return select(max(x, 0.0), x, is_nan(x)); }      // relu
        case 1u: { return select(a * x, x, x > 0.0); }              // leaky_relu
        case 2u: { return select(clamp(x, 0.0, a), x, is_nan(x)); } // relu_n
        case 3u: { return select(a * (exp(x) - 1.0), x, x > 0.0); } // elu
        case 4u: { return sigmoid(x); }                             // sigmoid
        case 5u: { let y = a * x + b; return select(clamp(y, 0.0, 1.0), y, is_nan(y)); } // hard_sigmoid
        case 6u: { return tanh(x); }                                // tanh
        case 7u: { return softplus(x); }                            // softplus
        case 8u: { return x / (1.0 + abs(x)); }                     // softsign
        case 9u: { return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752)); } // gelu
        case 10u: { return abs(x); }                                // abs
        case 11u: { return exp(x); }                                // exp
        case 12u: { return log(x); }                                // log
        case 13u: { return a * x + b; }                             // linear
        case 14u: { return -x; }                                    // neg
        case 15u: { return sqrt(x); }                               // sqrt
        case 16u: { return x * x; }                                 // square
        case 17u: { return 1.0 / x; }                               // recip
        case 18u: { let t = tanh(gelu_tanh_arg(x)); return 0.5 * x * (1.0 + t); } // gelu_tanh
        case 19u: { return x * sigmoid(x); }                        // silu
        case 20u: { return x * tanh_softplus(x); }                  // mish
        default: { return x; }
    }
}

// d(op)/dx at x, times dy.
fn unary_b(op: u32, x: f32, dy: f32, a: f32, b: f32) -> f32 {
    switch op {
        case 0u: { return select(0.0, dy, x > 0.0); }
        case 1u: { return select(a * dy, dy, x > 0.0); }
        case 2u: { return select(0.0, dy, x > 0.0 && x < a); }
        case 3u: { return select(a * exp(x) * dy, dy, x > 0.0); }
        case 4u: { let s = sigmoid(x); return s * (1.0 - s) * dy; }
        case 5u: { let y = a * x + b; return select(0.0, a * dy, y > 0.0 && y < 1.0); }
        case 6u: { let t = tanh(x); return (1.0 - t * t) * dy; }
        case 7u: { return sigmoid(x) * dy; }
        case 8u: { let d = 1.0 + abs(x); return dy / (d * d); }
        case 9u: {
            let cdf = 0.5 * (1.0 + erf_approx(x * 0.70710678118654752));
            let pdf = 0.39894228040143268 * exp(-0.5 * x * x);
            return (cdf + x * pdf) * dy;
        }
        case 10u: { return sign(x) * dy; }
        case 11u: { return exp(x) * dy; }
        case 12u: { return dy / x; }
        case 13u: { return a * dy; }
        case 14u: { return -dy; }
        case 15u: { return 0.5 * dy / sqrt(x); }
        case 16u: { return 2.0 * x * dy; }
        case 17u: { return -dy / (x * x); }
        case 18u: {
            let u = gelu_tanh_arg(x);
            if (abs(u) >= 20.0) { return select(0.0, dy, x > 0.0); } // saturated (no inf·0)
            let t = tanh(u);
            let k = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
            return (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k) * dy;
        }
        // silu: σ(x)·(1 + x·(1 − σ(x))); 1 − σ is exactly 0 for large x, so no inf·0 below inf.
        case 19u: { let s = sigmoid(x); return s * (1.0 + x * (1.0 - s)) * dy; }
        case 20u: { return mish_d(x) * dy; }
        default: { return dy; }
    }
}

// d(op)/dx from the output y = op(x), times dy: only the ops whose derivative is a function of y
// (UnaryOp::grad_from). Kinks as unary_b: relu(0) -> 0, leaky(0) -> a, relu-n at 0 and n -> 0,
// hard sigmoid at its corners -> 0, elu(0) -> a.
fn unary_b_out(op: u32, y: f32, dy: f32, a: f32, b: f32) -> f32 {
    switch op {
        case 0u: { return select(0.0, dy, y > 0.0); }                // relu
        case 1u: { return select(a * dy, dy, y > 0.0); }             // leaky relu, a >= 0
        case 2u: { return select(0.0, dy, y > 0.0 && y < a); }       // relu-n, n > 0
        case 3u: { return select((y + a) * dy, dy, y > 0.0); }       // elu, a >= 0: a e^x = y + a
        case 4u: { return y * (1.0 - y) * dy; }                      // sigmoid
        case 5u: { return select(0.0, a * dy, y > 0.0 && y < 1.0); } // hard sigmoid
        case 6u: { return (1.0 - y * y) * dy; }                      // tanh
        case 11u: { return y * dy; }                                 // exp
        case 15u: { return 0.5 * dy / y; }                           // sqrt
        case 17u: { return -dy * (y * y); }                          // recip: -1/x^2 = -y^2
        default: { return dy; }
    }
}

// The fused neuron fixed when the pipeline is made (`neuron::fused_constants`), so
// the compiler keeps only its branch: the generic switch of unary_f costs a GEMM registers and
// occupancy. The default (all ones) reads the op from the uniform instead.
override POST_OP: u32 = 4294967295u;

// A kernel's fused post-op: `len` 0 (none) or 1 neuron `op` with its parameters.
fn post_op(len: u32, op: u32, a: f32, b: f32, v: f32) -> f32 {
    if (len == 0u) {
        return v;
    }
    if (POST_OP != 4294967295u) {
        return unary_f(POST_OP, v, a, b);
    }
    return unary_f(op, v, a, b);
}

// The neuron whose derivative a backward kernel applies, from the neuron's output y, as it
// writes dx (`neuron::grad_constants`: a neuron's gradient folded into max pooling's or
// dropout's backward). The default (all ones) applies none.
override GRAD_OP: u32 = 4294967295u;
override GRAD_A: f32 = 0.0;
override GRAD_B: f32 = 0.0;

fn grad_from_out(y: f32, dx: f32) -> f32 {
    if (GRAD_OP == 4294967295u) {
        return dx;
    }
    return unary_b_out(GRAD_OP, y, dx, GRAD_A, GRAD_B);
}
