//! A ResNet-style 3×3 convolution — batch 64, 64 → 64 channels, 56×56, stride 1, padding 1, with
//! bias — forward and backward (data + weights + bias), in ms and GFLOP/s, timed around whole
//! submits of many passes (best of 3 after a warm-up), as `benches/gemm.rs`.
//! Run: `cargo bench --bench conv` (add `-- --quick` on a software adapter: batch 2). Without
//! `--bench` (`cargo test --benches`): one untimed pass of each at batch 1, 16 channels, 14×14.
//! Its PyTorch twin is `benches/conv_torch.py`; run both on the same card (BENCHMARKS.md).
//! `--f16`: every tensor in f16 (the kernels' f16 variants, f32 accumulation), checked against
//! the reference of the f16-rounded inputs; the twin's `--f16` is cuDNN in fp16.
//! `--implicit-gemm`: the data passes without Winograd (`ops::conv::winograd`).

mod common;

use common::Mode;
use wgtrain::ops::conv::gpu::{self as conv, Grads};
use wgtrain::ops::conv::{Conv2d, Padding, reference};
use wgtrain::{DType, Tensor};

/// Single elements of the 3×3, stride 1, padding 1 convolution and its gradients, summed
/// directly (f64), for the full size where the whole reference would take minutes.
struct Taps<'a> {
    n: usize,
    c: usize,
    hw: usize,
    x: &'a [f64],
    w: &'a [f64],
    b: &'a [f64],
    dy: &'a [f64],
}

impl Taps<'_> {
    /// `x[n, ci, h, w]` (0 in the padding).
    fn x(&self, n: usize, ci: usize, h: isize, w: isize) -> f64 {
        let hw = self.hw as isize;
        if h < 0 || w < 0 || h >= hw || w >= hw {
            return 0.0;
        }
        self.x[((n * self.c + ci) * self.hw + h as usize) * self.hw + w as usize]
    }

    fn dy(&self, n: usize, co: usize, h: isize, w: isize) -> f64 {
        let hw = self.hw as isize;
        if h < 0 || w < 0 || h >= hw || w >= hw {
            return 0.0;
        }
        self.dy[((n * self.c + co) * self.hw + h as usize) * self.hw + w as usize]
    }

    fn w(&self, co: usize, ci: usize, kh: usize, kw: usize) -> f64 {
        self.w[((co * self.c + ci) * 3 + kh) * 3 + kw]
    }

    /// Element `i` (flat, row-major) of output `what`: y, dx, dw or db.
    fn at(&self, what: &str, i: usize) -> f64 {
        let (c, hw) = (self.c, self.hw);
        let split = |i: usize| {
            (
                i / (c * hw * hw),
                i / (hw * hw) % c,
                (i / hw % hw) as isize,
                (i % hw) as isize,
            )
        };
        let k3 = |k: usize| k as isize - 1;
        match what {
            "y" => {
                let (n, co, h, w) = split(i);
                let mut s = self.b[co];
                for ci in 0..c {
                    for kh in 0..3 {
                        for kw in 0..3 {
                            s += self.x(n, ci, h + k3(kh), w + k3(kw)) * self.w(co, ci, kh, kw);
                        }
                    }
                }
                s
            }
            "dx" => {
                let (n, ci, h, w) = split(i);
                let mut s = 0.0;
                for co in 0..c {
                    for kh in 0..3 {
                        for kw in 0..3 {
                            s += self.dy(n, co, h - k3(kh), w - k3(kw)) * self.w(co, ci, kh, kw);
                        }
                    }
                }
                s
            }
            "dw" => {
                let (co, ci, kh, kw) = (i / (c * 9), i / 9 % c, i / 3 % 3, i % 3);
                let mut s = 0.0;
                for n in 0..self.n {
                    for h in 0..hw as isize {
                        for w in 0..hw as isize {
                            s += self.dy(n, co, h, w) * self.x(n, ci, h + k3(kh), w + k3(kw));
                        }
                    }
                }
                s
            }
            _ => {
                let mut s = 0.0;
                for n in 0..self.n {
                    for h in 0..hw as isize {
                        for w in 0..hw as isize {
                            s += self.dy(n, i, h, w);
                        }
                    }
                }
                s
            }
        }
    }
}

fn main() -> wgtrain::Result<()> {
    wgtrain::ops::conv::winograd::with_conv_algo(common::conv_algo(), run)
}

fn run() -> wgtrain::Result<()> {
    let mode = Mode::from_args();
    let Some(dev) = common::device("conv") else {
        return Ok(());
    };
    println!("adapter: {}", dev.describe());
    mode.announce("conv");
    let (n, c, hw) = match mode {
        Mode::Smoke => (1, 16, 14),
        Mode::Quick => (2, 64, 56),
        Mode::Full => (64, 64, 56),
    };
    let op = Conv2d {
        padding: Padding::symmetric(1),
        ..Conv2d::new(c, c, (3, 3))
    };
    let xs = [n, c, hw, hw];
    let f16 = std::env::args().any(|a| a == "--f16");
    let dt = if f16 { DType::F16 } else { DType::F32 };
    // In f16 the reference starts from the f16-rounded inputs, as the GPU does.
    let random = |shape: &[usize], seed| {
        let (mut v, _) = common::random(shape, seed);
        if f16 {
            v.iter_mut()
                .for_each(|x| *x = half::f16::from_f32(*x).to_f32());
        }
        let a = wgtrain::reference::Array::from_f32(shape, &v);
        (v, a)
    };
    let upload = |shape: &[usize], v: &[f32]| {
        let t = Tensor::zeros(&dev, shape, dt)?;
        t.write_f32(v)?;
        Ok::<_, wgtrain::Error>(t)
    };
    let (xv, xr) = random(&xs, 1);
    let (wv, wr) = random(&op.weight_shape(), 2);
    let (bv, br) = random(&[c], 3);
    let (dyv, dyr) = random(&op.out_shape(&xs)?, 4);
    let x = upload(&xs, &xv)?;
    let w = upload(&op.weight_shape(), &wv)?;
    let b = upload(&[c], &bv)?;
    let y = Tensor::zeros(&dev, &op.out_shape(&xs)?, dt)?;
    let dy = upload(&op.out_shape(&xs)?, &dyv)?;
    let grads = Grads {
        dx: Tensor::zeros(&dev, &xs, dt)?,
        dw: Tensor::zeros(&dev, &op.weight_shape(), dt)?,
        db: Some(Tensor::zeros(&dev, &[c], dt)?),
    };
    let fwd = conv::forward_launches(&op, &x, &w, Some(&b), &y)?;
    let bwd = conv::backward_launches(&op, &x, &w, &dy, &grads)?;
    let t_fwd = common::time(&dev, &fwd.launches, mode)?;
    let t_bwd = common::time(&dev, &bwd.launches, mode)?;
    // Each backward dispatch alone (in order: data gradient, weight gradient [, split-K sum], bias).
    let mut parts = Vec::new();
    for i in 0..bwd.launches.len() {
        let l = &bwd.launches[i..i + 1];
        parts.push(format!(
            "{:?} {:.3} ms",
            l[0],
            common::time(&dev, l, mode)? * 1e3
        ));
    }

    // Check the answers so a fast wrong kernel cannot pass: random inputs against the f64
    // reference, every element below the full size, 256 spread over each tensor at it (the whole
    // f64 convolution there would take minutes on the CPU).
    let read = |t: &Tensor| -> wgtrain::Result<Vec<f64>> {
        Ok(t.to_f32()?.into_iter().map(|v| v as f64).collect())
    };
    let outs = [
        ("y", read(&y)?),
        ("dx", read(&grads.dx)?),
        ("dw", read(&grads.dw)?),
        ("db", read(grads.db.as_ref().unwrap())?),
    ];
    let whole = mode != Mode::Full;
    let want = if whole {
        let r = reference::backward(&op, &xr, &wr, &dyr)?;
        Some([
            reference::forward(&op, &xr, &wr, Some(&br))?,
            r.dx,
            r.dw,
            r.db.expect("bias"),
        ])
    } else {
        None
    };
    let taps = Taps {
        n,
        c,
        hw,
        x: &xr.data,
        w: &wr.data,
        b: &br.data,
        dy: &dyr.data,
    };
    for (k, (what, got)) in outs.iter().enumerate() {
        let at = common::sample(got.len(), if whole { got.len() } else { 256 });
        let want: Vec<f64> = match &want {
            Some(w) => at.iter().map(|&i| w[k].data[i]).collect(),
            None => at.iter().map(|&i| taps.at(what, i)).collect(),
        };
        let got: Vec<f64> = at.iter().map(|&i| got[i]).collect();
        // f16: the output's rounding (ε_f16 / 2) and f16 split-K partials.
        let tol = if f16 { 4e-3 } else { 1e-4 };
        common::assert_matches(&format!("conv bench {what}"), &got, &want, tol);
        if whole {
            // The direct sums the full size is checked with, checked here against the reference.
            let at = common::sample(got.len(), 64);
            let direct: Vec<f64> = at.iter().map(|&i| taps.at(what, i)).collect();
            let reference: Vec<f64> = at.iter().map(|&i| want[i]).collect();
            common::assert_matches(
                &format!("conv bench direct {what}"),
                &direct,
                &reference,
                1e-9,
            );
        }
    }

    // 2·N·OH·OW·C_out·C_in·9 per pass; backward does two such passes (dx, dw).
    let flop = 2.0 * (n * hw * hw * c * c * 9) as f64;
    println!(
        "\nconv 3x3, N={n}, {c}->{c} ch, {hw}x{hw}, stride 1, pad 1, bias, {}",
        if f16 { "f16" } else { "f32" }
    );
    println!("| pass | ms | GFLOP/s |");
    println!("|---|---|---|");
    println!(
        "| forward | {:.3} | {:.1} |",
        t_fwd * 1e3,
        flop / t_fwd / 1e9
    );
    println!(
        "| backward (data + weights + bias) | {:.3} | {:.1} |",
        t_bwd * 1e3,
        2.0 * flop / t_bwd / 1e9
    );
    println!("\nbackward dispatches: {}", parts.join(", "));
    Ok(())
}
