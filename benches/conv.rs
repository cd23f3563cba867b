//! A ResNet-style 3×3 convolution — batch 64, 64 → 64 channels, 56×56, stride 1, padding 1, with
//! bias — forward and backward (data + weights + bias), in ms and GFLOP/s, timed around whole
//! submits of many passes (best of 3 after a warm-up), as `benches/gemm.rs`.
//! Run: `cargo bench --bench conv` (add `-- --quick` on a software adapter: batch 2). Without
//! `--bench` (`cargo test --benches`): one untimed pass of each at batch 1, 16 channels, 14×14.
//! Its PyTorch twin is `benches/conv_torch.py`; run both on the same card (BENCHMARKS.md).
//! `--f16`: every tensor in f16 (the kernels' f16 variants, f32 accumulation), checked against
//! the reference of the f16-rounded inputs; the twin's `--f16` is cuDNN in fp16.
//! `--implicit-gemm`: the data passes without Winograd (`ops::conv::winograd`).
//! `--shape N,CIN,COUT,HW,K`: another stride-1 convolution instead, K×K with "same" padding
//! (K / 2) on HW×HW images (the MNIST MPS net's conv2 at batch 256: `256,32,64,14,5`); the twin
//! takes the same flag.

mod common;

use common::Mode;
use wgtrain::ops::conv::gpu::{self as conv, Grads};
use wgtrain::ops::conv::{Conv2d, Padding, reference};
use wgtrain::{DType, Tensor};

/// Single elements of the K×K, stride 1, padding K / 2 convolution and its gradients, summed
/// directly (f64), for the full size where the whole reference would take minutes.
struct Taps<'a> {
    n: usize,
    cin: usize,
    cout: usize,
    hw: usize,
    k: usize,
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
        self.x[((n * self.cin + ci) * self.hw + h as usize) * self.hw + w as usize]
    }

    fn dy(&self, n: usize, co: usize, h: isize, w: isize) -> f64 {
        let hw = self.hw as isize;
        if h < 0 || w < 0 || h >= hw || w >= hw {
            return 0.0;
        }
        self.dy[((n * self.cout + co) * self.hw + h as usize) * self.hw + w as usize]
    }

    fn w(&self, co: usize, ci: usize, kh: usize, kw: usize) -> f64 {
        self.w[((co * self.cin + ci) * self.k + kh) * self.k + kw]
    }

    /// Element `i` (flat, row-major) of output `what`: y, dx, dw or db.
    fn at(&self, what: &str, i: usize) -> f64 {
        let (hw, k) = (self.hw, self.k);
        let split = |i: usize, c: usize| {
            (
                i / (c * hw * hw),
                i / (hw * hw) % c,
                (i / hw % hw) as isize,
                (i % hw) as isize,
            )
        };
        // Tap offset from the output pixel ("same" padding).
        let off = |t: usize| t as isize - (k / 2) as isize;
        match what {
            "y" => {
                let (n, co, h, w) = split(i, self.cout);
                let mut s = self.b[co];
                for ci in 0..self.cin {
                    for kh in 0..k {
                        for kw in 0..k {
                            s += self.x(n, ci, h + off(kh), w + off(kw)) * self.w(co, ci, kh, kw);
                        }
                    }
                }
                s
            }
            "dx" => {
                let (n, ci, h, w) = split(i, self.cin);
                let mut s = 0.0;
                for co in 0..self.cout {
                    for kh in 0..k {
                        for kw in 0..k {
                            s += self.dy(n, co, h - off(kh), w - off(kw)) * self.w(co, ci, kh, kw);
                        }
                    }
                }
                s
            }
            "dw" => {
                let (co, ci) = (i / (self.cin * k * k), i / (k * k) % self.cin);
                let (kh, kw) = (i / k % k, i % k);
                let mut s = 0.0;
                for n in 0..self.n {
                    for h in 0..hw as isize {
                        for w in 0..hw as isize {
                            s += self.dy(n, co, h, w) * self.x(n, ci, h + off(kh), w + off(kw));
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

/// Batch, channels in and out, image edge, filter edge.
type Shape = (usize, usize, usize, usize, usize);

/// `--shape N,CIN,COUT,HW,K`, if given: an `Err` unless it is five positive numbers with K odd.
fn shape_arg() -> wgtrain::Result<Option<Shape>> {
    let Some(arg) = common::flag_value("--shape") else {
        return Ok(None);
    };
    let bad = || wgtrain::Error::Invalid("--shape takes N,CIN,COUT,HW,K (K odd)".into());
    let v: Vec<usize> = arg
        .split(',')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<wgtrain::Result<_>>()?;
    match v[..] {
        [n, cin, cout, hw, k] if v.iter().all(|&d| d > 0) && k % 2 == 1 => {
            Ok(Some((n, cin, cout, hw, k)))
        }
        _ => Err(bad()),
    }
}

fn run() -> wgtrain::Result<()> {
    let mode = Mode::from_args();
    let Some(dev) = common::device("conv") else {
        return Ok(());
    };
    println!("adapter: {}", dev.describe());
    mode.announce("conv");
    let (n, cin, cout, hw, k) = match (shape_arg()?, mode) {
        (Some(s), _) => s,
        (None, Mode::Smoke) => (1, 16, 16, 14, 3),
        (None, Mode::Quick) => (2, 64, 64, 56, 3),
        (None, Mode::Full) => (64, 64, 64, 56, 3),
    };
    let op = Conv2d {
        padding: Padding::symmetric(k / 2),
        ..Conv2d::new(cin, cout, (k, k))
    };
    let xs = [n, cin, hw, hw];
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
    let (bv, br) = random(&[cout], 3);
    let (dyv, dyr) = random(&op.out_shape(&xs)?, 4);
    let x = upload(&xs, &xv)?;
    let w = upload(&op.weight_shape(), &wv)?;
    let b = upload(&[cout], &bv)?;
    let y = Tensor::zeros(&dev, &op.out_shape(&xs)?, dt)?;
    let dy = upload(&op.out_shape(&xs)?, &dyv)?;
    let grads = Grads {
        dx: Tensor::zeros(&dev, &xs, dt)?,
        dw: Tensor::zeros(&dev, &op.weight_shape(), dt)?,
        db: Some(Tensor::zeros(&dev, &[cout], dt)?),
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
        cin,
        cout,
        hw,
        k,
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

    // 2·N·OH·OW·C_out·C_in·K² per pass; backward does two such passes (dx, dw).
    let flop = 2.0 * (n * hw * hw * cin * cout * k * k) as f64;
    println!(
        "\nconv {k}x{k}, N={n}, {cin}->{cout} ch, {hw}x{hw}, stride 1, pad {}, bias, {}",
        k / 2,
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
