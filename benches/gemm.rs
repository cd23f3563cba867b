//! GFLOP/s of the f32 matmul at 256…4096 (square), timed around whole submits of many GEMMs.
//! Run: `cargo bench --bench gemm` (add `-- --quick` on a software adapter: 256 and 512 only).
//! Without `--bench` (`cargo test --benches`): one untimed GEMM at 256, checked.
//! Its PyTorch twin is `benches/gemm_torch.py`; run both on the same card (BENCHMARKS.md).
//! `--f16`: the tensor-core GEMM (`ops::matmul::coop`, f16 operands, f32 accumulation) in
//! TFLOP/s at 256…8192, every stored layout and an f16 C at 4096, against `gemm_torch.py --f16`;
//! an adapter without cooperative-matrix f16 tiles says so and skips.
//! `--f16 --variants`: every `coop::KERNELS` variant at 4096 NN, 2048, 8192, 4096 NT and TN, 1024
//! and 512, each checked like `--f16`; a variant that fails to build or to match prints why and
//! the others still run (`coop::kernel_for` chooses among them by size).

mod common;

use common::Mode;
use wgtrain::ops::matmul::gpu::{Gemm, gemm_launch};
use wgtrain::ops::matmul::reference::matmul;
use wgtrain::reference::Array;
use wgtrain::{DType, Tensor};

fn main() -> wgtrain::Result<()> {
    let mode = Mode::from_args();
    let Some(dev) = common::device("gemm") else {
        return Ok(());
    };
    println!("adapter: {}", dev.describe());
    mode.announce("gemm");
    if std::env::args().any(|a| a == "--f16") {
        return f16::run(&dev, mode);
    }
    let sizes: &[usize] = match mode {
        Mode::Smoke => &[256],
        Mode::Quick => &[256, 512],
        Mode::Full => &[256, 512, 1024, 2048, 4096],
    };
    println!("| size | ms/GEMM | GFLOP/s |");
    println!("|---|---|---|");
    for &n in sizes {
        let (av, ar) = common::random(&[n, n], 1);
        let (bv, br) = common::random(&[n, n], 2);
        let a = Tensor::from_f32(&dev, &[n, n], &av)?;
        let b = Tensor::from_f32(&dev, &[n, n], &bv)?;
        let c = Tensor::zeros(&dev, &[n, n], DType::F32)?;
        let g = Gemm {
            m: n,
            n,
            k: n,
            batch: 1,
            trans_a: false,
            trans_b: false,
            accumulate: false,
            alpha: 1.0,
            a_stride: 0,
            b_stride: 0,
            c_stride: 0,
            fused: None,
        };
        let l = [gemm_launch(&g, &a, &b, &c)?];
        // Best of 3 batches of ~0.5 s after a warm-up.
        let flop = 2.0 * (n as f64).powi(3);
        let best = common::time(&dev, &l, mode)?;
        // Check the answer so a fast wrong kernel cannot pass: random inputs against the f64
        // reference, every row up to 512, 16 rows spread over the matrix above (the whole f64
        // product at 4096 would take minutes on the CPU).
        let out = c.to_f32()?;
        let rows = common::sample(n, if n <= 512 { n } else { 16 });
        let (mut got, mut want) = (Vec::new(), Vec::new());
        for &i in &rows {
            let a_row = Array::new(&[1, n], ar.data[i * n..(i + 1) * n].to_vec());
            want.extend(matmul(&a_row, &br, false, false).data);
            got.extend(out[i * n..(i + 1) * n].iter().map(|&v| v as f64));
        }
        common::assert_matches(&format!("gemm {n}"), &got, &want, 1e-4);
        println!("| {n} | {:.3} | {:.1} |", best * 1e3, flop / best / 1e9);
    }
    Ok(())
}

/// The `--f16` mode: the cooperative-matrix GEMM.
mod f16 {
    use super::common::{self, Mode};
    use wgtrain::ops::matmul::coop::{
        CoopKernel, KERNELS, coop_gemm_launch_with, coop_supported, kernel_for,
    };
    use wgtrain::ops::matmul::gpu::Gemm;
    use wgtrain::ops::matmul::reference::matmul;
    use wgtrain::reference::{Array, f16_tol};
    use wgtrain::{DType, Device, Tensor};

    /// Seeded values in [-1, 1) rounded to f16, and the `Array` of exactly those values.
    fn random_f16(shape: &[usize], seed: u64) -> (Vec<f32>, Array) {
        let (v, _) = common::random(shape, seed);
        let h: Vec<f32> = v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect();
        let a = Array::from_f32(shape, &h);
        (h, a)
    }

    /// One problem of the table: operands on the GPU, and the f64 reference's inputs.
    struct Problem {
        n: usize,
        ta: bool,
        tb: bool,
        c_dtype: DType,
        a: Tensor,
        b: Tensor,
        ar: Array,
        br: Array,
    }

    impl Problem {
        fn new(
            dev: &Device,
            n: usize,
            ta: bool,
            tb: bool,
            c_dtype: DType,
        ) -> wgtrain::Result<Self> {
            let (av, ar) = random_f16(&[n, n], 1);
            let (bv, br) = random_f16(&[n, n], 2);
            Ok(Problem {
                n,
                ta,
                tb,
                c_dtype,
                a: Tensor::from_f32_as_f16(dev, &[n, n], &av)?,
                b: Tensor::from_f32_as_f16(dev, &[n, n], &bv)?,
                ar,
                br,
            })
        }

        fn layout(&self) -> String {
            let t = |x: bool| if x { "T" } else { "N" };
            format!("{}{}", t(self.ta), t(self.tb))
        }

        /// Seconds per GEMM of `kernel` (best of 3 batches) and the largest relative error of
        /// C against the f64 reference on sampled rows: `Err` saying why when the kernel fails
        /// to build or to match, not a panic, so that the other variants still run.
        fn time(&self, kernel: CoopKernel, mode: Mode) -> Result<(f64, f64), String> {
            let n = self.n;
            let g = Gemm::plain(n, n, n, self.ta, self.tb, false);
            let dev = self.a.device();
            let run = || -> wgtrain::Result<(f64, Vec<f32>)> {
                // A fresh C: another variant's answer must not pass for this one's.
                let c = Tensor::zeros(dev, &[n, n], self.c_dtype)?;
                let l = [coop_gemm_launch_with(kernel, &g, &self.a, &self.b, &c)?];
                let best = common::time(dev, &l, mode)?;
                Ok((best, c.to_f32()?))
            };
            let (best, out) = run().map_err(|e| e.to_string())?;
            // Sampled rows against the f64 reference of the same f16 values (see gemm's f32 check).
            let rows = common::sample(n, if n <= 512 { n } else { 16 });
            let (mut got, mut want) = (Vec::new(), Vec::new());
            for &i in &rows {
                // Row i of op(A) as a 1×n matrix.
                let a_row: Vec<f64> = (0..n)
                    .map(|k| {
                        if self.ta {
                            self.ar.data[k * n + i]
                        } else {
                            self.ar.data[i * n + k]
                        }
                    })
                    .collect();
                let a_row = Array::new(&[1, n], a_row);
                want.extend(matmul(&a_row, &self.br, false, self.tb).data);
                got.extend(out[i * n..(i + 1) * n].iter().map(|&v| v as f64));
            }
            let err = common::matches(&got, &want, f16_tol(n))?;
            Ok((best, err))
        }
    }

    pub fn run(dev: &Device, mode: Mode) -> wgtrain::Result<()> {
        if let Err(e) = coop_supported(dev) {
            println!("gemm --f16 skipped: {e}");
            return Ok(());
        }
        if std::env::args().any(|a| a == "--variants") {
            return variants(dev, mode);
        }
        let mut shapes: Vec<(usize, bool, bool, DType)> = match mode {
            Mode::Smoke => vec![(256, false, false, DType::F32)],
            Mode::Quick => vec![
                (256, false, false, DType::F32),
                (512, false, false, DType::F32),
            ],
            Mode::Full => [256, 512, 1024, 2048, 4096, 8192]
                .iter()
                .map(|&n| (n, false, false, DType::F32))
                .collect(),
        };
        if mode == Mode::Full {
            for (ta, tb) in [(false, true), (true, false), (true, true)] {
                shapes.push((4096, ta, tb, DType::F32));
            }
            shapes.push((4096, false, false, DType::F16));
        }
        println!(
            "f16 GEMM on the tensor cores (f16 A, B; f32 accumulation), the kernel coop_gemm_launch \
             chooses (coop::kernel_for)"
        );
        println!("| size | layout | C | kernel | ms/GEMM | TFLOP/s |");
        println!("|---|---|---|---|---|---|");
        for (n, ta, tb, c_dtype) in shapes {
            let p = Problem::new(dev, n, ta, tb, c_dtype)?;
            let layout = p.layout();
            let kernel = kernel_for(&Gemm::plain(n, n, n, ta, tb, false));
            let (best, _) = p
                .time(kernel, mode)
                .unwrap_or_else(|e| panic!("gemm --f16 {n} {layout}: {e}"));
            let flop = 2.0 * (n as f64).powi(3);
            println!(
                "| {n} | {layout} | {c_dtype:?} | {} | {:.3} | {:.1} |",
                kernel.name(),
                best * 1e3,
                flop / best / 1e12
            );
        }
        Ok(())
    }

    /// `--variants`: every kernel variant on the same problems, one row each; a failure is a
    /// row saying why.
    fn variants(dev: &Device, mode: Mode) -> wgtrain::Result<()> {
        let problems: &[(usize, bool, bool)] = match mode {
            Mode::Smoke => &[(256, false, false)],
            Mode::Quick => &[(256, false, false), (512, false, true)],
            // The sizes of the goal, then smaller ones (fewer blocks than multiprocessors
            // for 128×256 blocks).
            Mode::Full => &[
                (4096, false, false),
                (2048, false, false),
                (8192, false, false),
                (4096, false, true),
                (4096, true, false),
                (1024, false, false),
                (512, false, false),
            ],
        };
        println!(
            "f16 GEMM kernel variants (coop::KERNELS; coop_gemm_launch runs coop::kernel_for's)"
        );
        println!("| size | layout | variant | ms | TFLOP/s | max err ok |");
        println!("|---|---|---|---|---|---|");
        for &(n, ta, tb) in problems {
            let p = Problem::new(dev, n, ta, tb, DType::F32)?;
            let flop = 2.0 * (n as f64).powi(3);
            for kernel in KERNELS {
                let row = p.time(kernel, mode);
                let name = kernel.name();
                let layout = p.layout();
                match row {
                    Ok((best, err)) => println!(
                        "| {n} | {layout} | {name} | {:.3} | {:.1} | {err:.1e} ≤ {:.1e}: yes |",
                        best * 1e3,
                        flop / best / 1e12,
                        f16_tol(n)
                    ),
                    Err(e) => println!("| {n} | {layout} | {name} | — | — | FAILED: {e} |"),
                }
            }
        }
        Ok(())
    }
}
