// Neuron functions shared by every kernel that applies one: the elementwise ops, and the fused
// post-op of other kernels (e.g. batch norm + ReLU at inference). Op codes: kernels/elementwise.rs.

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

// Forward of unary op `op` with parameters a, b.
fn unary_f(op: u32, x: f32, a: f32, b: f32) -> f32 {
    switch op {
        case 0u: { return max(x, 0.0); }                       // relu
        case 1u: { return select(a * x, x, x > 0.0); }         // leaky relu (a = slope)
        case 2u: { return clamp(x, 0.0, a); }                  // relu-n (a = n)
        case 3u: { return select(a * (exp(x) - 1.0), x, x > 0.0); } // elu
        case 4u: { return sigmoid(x); }
        case 5u: { return clamp(a * x + b, 0.0, 1.0); }        // hard sigmoid
        case 6u: { return tanh(x); }
        case 7u: { return softplus(x); }
        case 8u: { return x / (1.0 + abs(x)); }                // softsign
        case 9u: { return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752)); } // gelu (erf)
        case 10u: { return abs(x); }
        case 11u: { return exp(x); }
        case 12u: { return log(x); }
        case 13u: { return a * x + b; }                        // linear
        case 14u: { return -x; }
        case 15u: { return sqrt(x); }
        case 16u: { return x * x; }
        case 17u: { return 1.0 / x; }
        case 18u: { let t = tanh(gelu_tanh_arg(x)); return 0.5 * x * (1.0 + t); } // gelu (tanh)
        default: { return x; }
    }
}

// The fused neuron fixed when the pipeline is made (`kernels::elementwise::post_constants`), so
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
