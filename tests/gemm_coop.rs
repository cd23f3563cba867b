//! The tensor-core GEMM (`ops::matmul::coop`), every kernel variant (`coop::KERNELS`), against the
//! f64 reference on awkward shapes, every stored layout, a batch with a shared operand, the
//! epilogue options and an f16 C — on the adapters that report 16×16×16 f16 → f32
//! cooperative-matrix tiles. Elsewhere (lavapipe) the launch must refuse with the explicit `Err`,
//! and the test says which adapters ran which check.
//! The argument checks run on every adapter (they come before the adapter's).

mod common;

use std::sync::Mutex;
use wgtrain::ops::elementwise::UnaryOp;
use wgtrain::ops::matmul::coop::{
    CoopKernel, KERNELS, MAX_DEPTH, coop_biased_gemm_launch_with, coop_gemm_launch,
    coop_gemm_launch_with, coop_supported,
};
use wgtrain::ops::matmul::gpu::Gemm;
use wgtrain::ops::matmul::reference::matmul;
use wgtrain::reference::{Array, f16_tol, max_rel_diff};
use wgtrain::{DType, Device, Error, Tensor};

/// Seeded values in [-1, 1) rounded to f16: what the GPU reads, and so what the reference reads.
fn f16_values(len: usize, seed: u64) -> Vec<f32> {
    Array::seeded(&[len], seed)
        .data
        .iter()
        .map(|&v| half::f16::from_f64(v).to_f32())
        .collect()
}

/// One case: `g` over fresh operands (and a C holding seeded values when accumulating).
struct Case {
    g: Gemm,
    c_dtype: DType,
    /// An f16 bias (N,) added in the epilogue.
    bias: bool,
}

fn gemm(m: usize, n: usize, k: usize, ta: bool, tb: bool) -> Gemm {
    Gemm::plain(m, n, k, ta, tb, false)
}

/// Runs `case` with `kernel` on `dev` and holds it to the reference: per batch,
/// `alpha · op(A)·op(B) (+ C)` with the fused neuron, in f64 from the f16 operands.
fn check(dev: &Device, case: &Case, kernel: CoopKernel) {
    let g = &case.g;
    let (ar, ac) = if g.trans_a { (g.k, g.m) } else { (g.m, g.k) };
    let (br, bc) = if g.trans_b { (g.n, g.k) } else { (g.k, g.n) };
    let a_len = (g.batch - 1) * g.a_stride + ar * ac;
    let b_len = (g.batch - 1) * g.b_stride + br * bc;
    let c_len = (g.batch - 1) * g.c_stride + g.m * g.n;
    let av = f16_values(a_len, 1 + g.m as u64);
    let bv = f16_values(b_len, 2 + g.n as u64);
    let c0: Vec<f32> = match case.c_dtype {
        DType::F16 => f16_values(c_len, 3),
        _ => Array::seeded(&[c_len], 3).to_f32(),
    };
    let a = Tensor::from_f32_as_f16(dev, &[a_len], &av).unwrap();
    let b = Tensor::from_f32_as_f16(dev, &[b_len], &bv).unwrap();
    let c = match case.c_dtype {
        DType::F16 => Tensor::from_f32_as_f16(dev, &[c_len], &c0).unwrap(),
        _ => Tensor::from_f32(dev, &[c_len], &c0).unwrap(),
    };
    let bias_v: Vec<f32> = match case.bias {
        true => f16_values(g.n, 4),
        false => Vec::new(),
    };
    let bias = (case.bias).then(|| Tensor::from_f32_as_f16(dev, &[g.n], &bias_v).unwrap());
    let what = format!(
        "{} {g:?} into {:?}, bias {}",
        kernel.name(),
        case.c_dtype,
        case.bias
    );
    let launch = coop_biased_gemm_launch_with(kernel, g, &a, &b, bias.as_ref(), &c)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    dev.run(&[launch]).unwrap();
    let got: Vec<f64> = c.to_f32().unwrap().iter().map(|&v| v as f64).collect();
    let mut want: Vec<f64> = c0.iter().map(|&v| v as f64).collect();
    for i in 0..g.batch {
        let slice =
            |v: &[f32], at: usize, r: usize, c: usize| Array::from_f32(&[r, c], &v[at..at + r * c]);
        let p = matmul(
            &slice(&av, i * g.a_stride, ar, ac),
            &slice(&bv, i * g.b_stride, br, bc),
            g.trans_a,
            g.trans_b,
        );
        for (j, v) in p.data.iter().enumerate() {
            let o = &mut want[i * g.c_stride + j];
            let mut y = g.alpha as f64 * v;
            if g.accumulate {
                y += *o;
            }
            if case.bias {
                y += bias_v[j % g.n] as f64;
            }
            *o = g.fused.map_or(y, |u| u.f(y));
        }
    }
    let tol = f16_tol(g.k);
    let diff = max_rel_diff(&got, &want);
    assert!(
        diff < tol,
        "{what}: max relative difference {diff:.3e} over the tolerance {tol:.3e}"
    );
}

fn cases() -> Vec<Case> {
    let f32c = |g| Case {
        g,
        c_dtype: DType::F32,
        bias: false,
    };
    let mut v = Vec::new();
    // Awkward sizes in every layout: one element, below a tile, a tile and one, over a block (and
    // its K over several steps), the odd ones on the guarded loaders.
    for (m, n, k) in [
        (1, 1, 1),
        (7, 33, 1),
        (33, 7, 130),
        (130, 129, 33),
        (1, 130, 7),
    ] {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            v.push(f32c(gemm(m, n, k, ta, tb)));
        }
    }
    // Rows of a multiple of 4: the 8-byte loaders, whole blocks stored straight from the
    // accumulators, and edges (132, 260) in each layout; rows of a multiple of 8 (the 16-byte
    // loaders) with edges (136, 264, a K of 40 ending inside a step) likewise.
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        v.push(f32c(gemm(256, 128, 96, ta, tb)));
        v.push(f32c(gemm(132, 260, 36, ta, tb)));
        v.push(f32c(gemm(136, 264, 40, ta, tb)));
    }
    // Several K steps, odd and even in count (the register stages alternate per step).
    v.push(f32c(gemm(128, 256, 160, false, false)));
    v.push(f32c(gemm(256, 128, 128, true, true)));
    // A batch sharing B (stride 0), and one with every operand strided.
    let mut g = gemm(33, 17, 40, false, true);
    g.batch = 3;
    g.a_stride = 33 * 40;
    g.c_stride = 33 * 17;
    v.push(f32c(g));
    let mut g = gemm(20, 36, 44, true, false);
    g.batch = 2;
    g.a_stride = 44 * 20 + 4;
    g.b_stride = 44 * 36;
    g.c_stride = 20 * 36 + 8;
    v.push(f32c(g));
    // Strides of a multiple of 8 (the 16-byte loaders), one operand shared.
    let mut g = gemm(136, 40, 72, false, true);
    g.batch = 3;
    g.a_stride = 136 * 72 + 8;
    g.c_stride = 136 * 40;
    v.push(f32c(g));
    // The epilogue: alpha, accumulate and a neuron, on a block-aligned shape (no direct store).
    let mut g = gemm(128, 128, 64, false, false);
    g.alpha = 0.5;
    g.accumulate = true;
    g.fused = Some(UnaryOp::Tanh);
    v.push(f32c(g));
    // C in f16, aligned and not.
    v.push(Case {
        g: gemm(128, 132, 64, false, false),
        c_dtype: DType::F16,
        bias: false,
    });
    let mut g = gemm(33, 7, 130, true, true);
    g.accumulate = true;
    v.push(Case {
        g,
        c_dtype: DType::F16,
        bias: false,
    });
    // A bias before the neuron (a fully connected layer's forward), in both C types: a ragged N,
    // a batch, and whole blocks (which would otherwise store straight from the accumulators).
    for c_dtype in [DType::F32, DType::F16] {
        let mut g = gemm(65, 33, 130, false, true);
        g.fused = Some(UnaryOp::Relu);
        v.push(Case {
            g,
            c_dtype,
            bias: true,
        });
        let mut g = gemm(7, 36, 40, false, false);
        g.batch = 2;
        g.a_stride = 7 * 40;
        g.c_stride = 7 * 36;
        v.push(Case {
            g,
            c_dtype,
            bias: true,
        });
        v.push(Case {
            g: gemm(256, 256, 64, false, true),
            c_dtype,
            bias: true,
        });
    }
    v
}

/// Adapters that ran the real check, and those that only gave the explicit `Err`.
static RAN: Mutex<Vec<String>> = Mutex::new(Vec::new());
static REFUSED: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[test]
fn coop_gemm_matches_f64_reference_or_refuses_explicitly() {
    common::each_device("coop_gemm_reference", |dev| {
        if let Err(why) = coop_supported(dev) {
            // Every variant's launch must refuse, with the same explicit reason.
            let a = Tensor::from_f32_as_f16(dev, &[4], &[1.0; 4]).unwrap();
            let b = Tensor::from_f32_as_f16(dev, &[4], &[1.0; 4]).unwrap();
            let c = Tensor::zeros(dev, &[4], DType::F32).unwrap();
            let g = gemm(2, 2, 2, false, false);
            let mut errs = vec![coop_gemm_launch(&g, &a, &b, &c)];
            errs.extend(KERNELS.map(|k| coop_gemm_launch_with(k, &g, &a, &b, &c)));
            for err in errs {
                let err = err.expect_err("the launch must refuse where coop_supported does");
                assert!(matches!(err, Error::Device(_)), "{err:?}");
                assert_eq!(err.to_string(), why.to_string());
            }
            let text = why.to_string();
            assert!(
                text.contains("no cooperative-matrix f16 tiles") || text.contains("subgroups"),
                "{text}"
            );
            eprintln!(
                "[coop_gemm_reference] {}: refused as expected: {text}",
                dev.name()
            );
            REFUSED.lock().unwrap().push(dev.name());
            return;
        }
        // Every benchmarked variant, and the 128×256 core with one step in flight (a depth no
        // variant uses, but `coop_gemm_launch_with` accepts).
        let one_step = CoopKernel::Wide {
            ld16: true,
            depth: 1,
        };
        for kernel in KERNELS.into_iter().chain([one_step]) {
            for case in cases() {
                check(dev, &case, kernel);
            }
        }
        RAN.lock().unwrap().push(dev.name());
    });
    let ran = RAN.lock().unwrap();
    let refused = REFUSED.lock().unwrap();
    eprintln!(
        "[coop_gemm_reference] real check against the f64 reference ran on: {}",
        if ran.is_empty() {
            "NO adapter (none reports 16×16×16 f16 → f32 cooperative-matrix tiles)".to_string()
        } else {
            ran.join(", ")
        }
    );
    eprintln!(
        "[coop_gemm_reference] explicit Err checked (no cooperative-matrix GEMM) on: {}",
        if refused.is_empty() {
            "none".to_string()
        } else {
            refused.join(", ")
        }
    );
}

/// Every bad argument is an `Err` naming it, before the adapter is asked (so on any adapter).
#[test]
fn coop_gemm_refuses_bad_arguments() {
    common::each_device("coop_gemm_arguments", |dev| {
        let h = |n: usize| Tensor::from_f32_as_f16(dev, &[n], &vec![0.5; n]).unwrap();
        let c32 = |n: usize| Tensor::zeros(dev, &[n], DType::F32).unwrap();
        let g = gemm(4, 4, 4, false, false);
        let expect = |r: wgtrain::Result<_>, what: &str, says: &str| {
            let e = r.expect_err(what).to_string();
            assert!(e.contains(says), "{what}: {e}");
        };
        // Operands of the wrong dtype.
        let a32 = Tensor::from_f32(dev, &[16], &[0.5; 16]).unwrap();
        expect(
            coop_gemm_launch(&g, &a32, &h(16), &c32(16)),
            "f32 A",
            "coop_gemm A",
        );
        expect(
            coop_gemm_launch(&g, &h(16), &a32, &c32(16)),
            "f32 B",
            "coop_gemm B",
        );
        let cu = Tensor::zeros(dev, &[16], DType::U32).unwrap();
        expect(
            coop_gemm_launch(&g, &h(16), &h(16), &cu),
            "u32 C",
            "coop_gemm C",
        );
        // Tensors too small for the problem.
        expect(
            coop_gemm_launch(&g, &h(15), &h(16), &c32(16)),
            "short A",
            "A [15]",
        );
        expect(
            coop_gemm_launch(&g, &h(16), &h(12), &c32(16)),
            "short B",
            "B [12]",
        );
        expect(
            coop_gemm_launch(&g, &h(16), &h(16), &c32(15)),
            "short C",
            "C [15]",
        );
        // A bias not f16, or not (N,).
        expect(
            coop_biased_gemm_launch_with(KERNELS[0], &g, &h(16), &h(16), Some(&c32(4)), &c32(16)),
            "f32 bias",
            "the bias must be (4,)",
        );
        expect(
            coop_biased_gemm_launch_with(KERNELS[0], &g, &h(16), &h(16), Some(&h(5)), &c32(16)),
            "bias of 5",
            "the bias must be (4,)",
        );
        let mut batched = g;
        batched.batch = 2;
        batched.a_stride = 16;
        batched.c_stride = 16;
        expect(
            coop_gemm_launch(&batched, &h(16), &h(16), &c32(32)),
            "A of one batch",
            "A [16]",
        );
        // Overlapping batches of C, an overflowing stride, an empty dimension.
        batched.c_stride = 8;
        expect(
            coop_gemm_launch(&batched, &h(32), &h(16), &c32(32)),
            "overlapping C",
            "batches would overlap",
        );
        batched.c_stride = 16;
        batched.a_stride = usize::MAX;
        expect(
            coop_gemm_launch(&batched, &h(32), &h(16), &c32(32)),
            "overflowing stride",
            "does not hold",
        );
        for zero in [
            gemm(0, 4, 4, false, false),
            gemm(4, 0, 4, false, false),
            gemm(4, 4, 0, false, false),
        ] {
            expect(
                coop_gemm_launch(&zero, &h(16), &h(16), &c32(16)),
                "empty dimension",
                "at least 1",
            );
        }
        let mut none = g;
        none.batch = 0;
        expect(
            coop_gemm_launch(&none, &h(16), &h(16), &c32(16)),
            "no batch",
            "at least 1",
        );
        // The 128×256 kernel keeps 1 to MAX_DEPTH steps in flight.
        for depth in [0, MAX_DEPTH + 1, u32::MAX] {
            let kernel = CoopKernel::Wide { ld16: true, depth };
            expect(
                coop_gemm_launch_with(kernel, &g, &h(16), &h(16), &c32(16)),
                "depth out of range",
                &format!("1 to {MAX_DEPTH} K steps in flight, got {depth}"),
            );
        }
    });
}

#[test]
fn large_gemms_take_the_wide_kernel_small_ones_the_quad() {
    use wgtrain::ops::matmul::coop::{CoopKernel, KERNEL, kernel_for};
    let plain = |n| wgtrain::ops::matmul::gpu::Gemm::plain(n, n, n, false, false, false);
    assert!(matches!(
        kernel_for(&plain(2048)),
        CoopKernel::Wide {
            ld16: true,
            depth: 2
        }
    ));
    assert_eq!(kernel_for(&plain(1024)).name(), KERNEL.name());
    // A batch of small matrices fills the GPU as one large one does.
    let mut batched = plain(512);
    batched.batch = 16;
    assert!(matches!(kernel_for(&batched), CoopKernel::Wide { .. }));
}
