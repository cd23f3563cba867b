//! The chunked training kernels of the norms: groups of more than `MAX_CHUNK` elements, split
//! into chunks whose partial moments / sums are combined, on awkward shapes (runs of 1, 7, 49
//! and 33·N elements, one and three channels, chunk lengths that do not divide the group),
//! against the f64 reference, with f32 and f16 storage; and a large mean over a small variance,
//! where Σx² − (Σx)²/m in f32 would lose the variance.

mod common;

use common::{assert_close, chunk_stats, each_device};
use wgtrain::ops::norm::gpu::{self as gnorm, MAX_CHUNK, Norm};
use wgtrain::ops::norm::reference as rnorm;
use wgtrain::ops::norm::{BatchNorm, GroupNorm, InstanceNorm, LayerNorm};
use wgtrain::reference::Array;
use wgtrain::{DType, Device, Tensor};

/// Storage of x and dy: f32, or f16 (the kernels' f16 variant).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Storage {
    F32,
    F16,
}

impl Storage {
    /// The tolerance of the outputs stored in this type (y, dx).
    fn tol(self) -> f64 {
        match self {
            Storage::F32 => 2e-4,
            Storage::F16 => 4e-3,
        }
    }
}

impl Storage {
    fn dtype(self) -> DType {
        match self {
            Storage::F32 => DType::F32,
            Storage::F16 => DType::F16,
        }
    }
}

/// `a` on the device in `storage`, and the values it holds there (rounded), for the reference.
fn up(dev: &Device, a: &Array, storage: Storage) -> (Tensor, Array) {
    let data = a.to_f32();
    let t = match storage {
        Storage::F32 => Tensor::from_f32(dev, &a.shape, &data),
        Storage::F16 => Tensor::from_f32_as_f16(dev, &a.shape, &data),
    }
    .unwrap();
    let held = t.to_f32().unwrap();
    (t, Array::from_f32(&a.shape, &held))
}

/// Seeded values in `o ± s`.
fn input(shape: &[usize], seed: u64, s: f64, o: f64) -> Array {
    let a = Array::seeded(shape, seed);
    Array::new(shape, a.data.iter().map(|v| v * s + o).collect())
}

fn get(t: &Tensor) -> Vec<f32> {
    t.to_f32().unwrap()
}

/// The storages this device runs.
fn storages(dev: &Device) -> Vec<Storage> {
    if dev.caps().shader_f16 {
        vec![Storage::F32, Storage::F16]
    } else {
        vec![Storage::F32]
    }
}

/// Batch norm in training on x of `shape` (uniform in `mean ± spread`): y, state, running
/// statistics and the three gradients against the reference.
fn batch_norm_case(dev: &Device, shape: &[usize], storage: Storage) {
    let (spread, mean) = (3.0, 20.0);
    let bn = BatchNorm::new(1e-5, 0.1).unwrap();
    let what = format!("batch_norm {shape:?} {storage:?}");
    let c = [shape[1]];
    let (rg, rb) = (input(&c, 2, 1.0, 1.5), input(&c, 3, 1.0, 0.0));
    let (rm, rv) = (input(&c, 5, 1.0, 0.0), input(&c, 6, 0.5, 1.0));
    let (g, rg) = up(dev, &rg, Storage::F32);
    let (b, rb) = up(dev, &rb, Storage::F32);
    let ((grm, rm), (grv, rv)) = (up(dev, &rm, Storage::F32), up(dev, &rv, Storage::F32));
    let (gx, x) = up(dev, &input(shape, 1, spread, mean), storage);
    let r = rnorm::batch_norm_train(&bn, &x, &rg, &rb, &rm, &rv).unwrap();
    // The launches, not the eager functions: those keep y f32.
    let z = |s: &[usize], dt: DType| Tensor::zeros(dev, s, dt).unwrap();
    let (y, state) = (z(shape, storage.dtype()), z(&[2, shape[1]], DType::F32));
    let l =
        gnorm::batch_norm_train_launch(&bn, &gx, Some(&g), Some(&b), &grm, &grv, &y, &state, None);
    dev.run(&l.unwrap().launches).unwrap();
    let tol = storage.tol();
    assert_close(&format!("{what} y"), &get(&y), &r.y.data, tol, tol);
    let (got, n) = (get(&state), shape[1]);
    assert_close(&format!("{what} mean"), &got[..n], &r.mean.data, 1e-5, 1e-5);
    assert_close(&format!("{what} var"), &got[n..], &r.var.data, 0.0, 1e-4);
    let rt = 1e-4;
    assert_close(
        &format!("{what} rmean"),
        &get(&grm),
        &r.running_mean.data,
        rt,
        rt,
    );
    assert_close(
        &format!("{what} rvar"),
        &get(&grv),
        &r.running_var.data,
        rt,
        rt,
    );
    let (gdy, dy) = up(dev, &input(shape, 4, 1.0, 0.0), storage);
    let rg_ = rnorm::batch_norm_train_backward(&bn, &x, &rg, &dy).unwrap();
    let gg = gnorm::NormGrads {
        dx: z(shape, storage.dtype()),
        dgamma: z(&c, DType::F32),
        dbeta: z(&c, DType::F32),
    };
    let (dx, dgamma, dbeta) = (&gg.dx, Some(&gg.dgamma), Some(&gg.dbeta));
    let l = gnorm::batch_norm_train_backward_launch(
        &bn,
        &gx,
        Some(&g),
        &state,
        &gdy,
        dx,
        dgamma,
        dbeta,
    );
    dev.run(&l.unwrap().launches).unwrap();
    // dx scales with 1/σ: relative to its largest value.
    let dx_scale = rg_.dx.data.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    assert_close(
        &format!("{what} dx"),
        &get(&gg.dx),
        &rg_.dx.data,
        tol * dx_scale,
        tol,
    );
    let ptol = if storage == Storage::F32 { 2e-4 } else { 1e-3 };
    let dg = &rg_.dgamma.data;
    let scale = dg.iter().fold(1.0f64, |a, v| a.max(v.abs()));
    assert_close(
        &format!("{what} dgamma"),
        &get(&gg.dgamma),
        dg,
        ptol * scale,
        ptol,
    );
    assert_close(
        &format!("{what} dbeta"),
        &get(&gg.dbeta),
        &rg_.dbeta.data,
        ptol * 10.0,
        ptol,
    );
}

/// Channels of more than `MAX_CHUNK` elements: runs of S = 1, 7, 49, 33·N, 3000 (three chunks);
/// one and three channels; no chunk count divides its channel.
const BIG: [&[usize]; 5] = [
    &[4500, 3],
    &[700, 1, 7],
    &[90, 3, 7, 7],
    &[12, 1, 396],
    &[3, 1, 3000],
];

#[test]
fn batch_norm_split_channels_match_the_reference() {
    each_device("chunked batch_norm", |dev| {
        for shape in BIG {
            let m: usize = shape.iter().product::<usize>() / shape[1];
            assert!(
                m > MAX_CHUNK && !m.is_multiple_of(MAX_CHUNK),
                "{shape:?} is not split"
            );
            for storage in storages(dev) {
                batch_norm_case(dev, shape, storage);
            }
        }
        // One chunk per channel (the single-dispatch path), S = 1 and S = 49 in elements, S = 12
        // and 24 in lanes of four (`wgsl/norm/lane4.wgsl`; BIG's S = 396 and 3000 split them).
        for shape in [
            &[300usize, 3][..],
            &[2, 3, 7, 7],
            &[5, 2, 12],
            &[2, 3, 4, 6],
        ] {
            for storage in storages(dev) {
                batch_norm_case(dev, shape, storage);
            }
        }
    });
}

/// x = 1000 + 0.01·u, u uniform: the variance (≈ 3e-5) is 3·10^-11 of E[x²]. f32's
/// Σx² − (Σx)²/m would be off by more than the variance itself; the chunks' two-pass moments and
/// their combination keep it within 1e-3 of the reference. (y is not compared: x − μ in f32 is
/// off by a rounding of 1000, 1% of σ, in any formula.)
#[test]
fn a_large_mean_does_not_swamp_a_small_variance() {
    each_device("chunked batch_norm large mean", |dev| {
        let bn = BatchNorm::new(1e-5, 0.1).unwrap();
        for shape in [&[4usize, 2, 1500][..], &[4, 2, 100]] {
            let c = [shape[1]];
            let (grm, rm) = up(dev, &Array::zeros(&c), Storage::F32);
            let (grv, rv) = up(dev, &input(&c, 6, 0.5, 1.0), Storage::F32);
            let ones = Array::new(&c, vec![1.0; c[0]]);
            let (gx, x) = up(dev, &input(shape, 1, 0.01, 1000.0), Storage::F32);
            let r = rnorm::batch_norm_train(&bn, &x, &ones, &Array::zeros(&c), &rm, &rv).unwrap();
            assert!(
                r.var.data.iter().all(|&v| v > 2e-5 && v < 4e-5),
                "{:?}",
                r.var.data
            );
            let (_, state) = gnorm::batch_norm_train(&bn, &gx, None, None, &grm, &grv).unwrap();
            let got = get(&state);
            let what = format!("large mean {shape:?}");
            assert_close(&format!("{what} mean"), &got[..2], &r.mean.data, 0.0, 1e-6);
            assert_close(&format!("{what} var"), &got[2..], &r.var.data, 0.0, 1e-3);
            assert_close(
                &format!("{what} rvar"),
                &get(&grv),
                &r.running_var.data,
                0.0,
                1e-4,
            );
        }
    });
}

/// A per-sample norm over groups of `m` elements: y, state and the gradients.
fn per_sample_case(dev: &Device, op: Norm, shape: &[usize], m: usize, storage: Storage) {
    let what = format!("{op:?} {shape:?} {storage:?}");
    let pshape = match op {
        Norm::Layer(l) => shape[shape.len() - l.dims..].to_vec(),
        _ => vec![shape[1]],
    };
    let (g, rg) = up(dev, &input(&pshape, 2, 1.0, 1.5), Storage::F32);
    let (b, rb) = up(dev, &input(&pshape, 3, 1.0, 0.0), Storage::F32);
    let (gx, x) = up(dev, &input(shape, 1, 3.0, -4.0), storage);
    let (gdy, dy) = up(dev, &input(shape, 4, 1.0, 0.0), storage);
    let (ry, rgrads) = match op {
        Norm::Instance(o) => (
            rnorm::instance_norm(&o, &x, &rg, &rb),
            rnorm::instance_norm_backward(&o, &x, &rg, &dy),
        ),
        Norm::Group(o) => (
            rnorm::group_norm(&o, &x, &rg, &rb),
            rnorm::group_norm_backward(&o, &x, &rg, &dy),
        ),
        Norm::Layer(o) => (
            rnorm::layer_norm(&o, &x, &rg, &rb),
            rnorm::layer_norm_backward(&o, &x, &rg, &dy),
        ),
    };
    let (ry, rgrads) = (ry.unwrap(), rgrads.unwrap());
    let z = |s: &[usize], dt: DType| Tensor::zeros(dev, s, dt).unwrap();
    let y = z(shape, storage.dtype());
    let state = z(&op.state_shape(shape).unwrap(), DType::F32);
    let l = gnorm::norm_launch(&op, &gx, Some(&g), Some(&b), &y, &state).unwrap();
    dev.run(&l.launches).unwrap();
    let tol = storage.tol();
    assert_close(&format!("{what} y"), &get(&y), &ry.data, tol, tol);
    assert_close(
        &format!("{what} state"),
        &get(&state),
        &chunk_stats(&x, m),
        1e-5,
        1e-5,
    );
    let gg = gnorm::NormGrads {
        dx: z(shape, storage.dtype()),
        dgamma: z(&pshape, DType::F32),
        dbeta: z(&pshape, DType::F32),
    };
    let (dx, dgamma, dbeta) = (&gg.dx, Some(&gg.dgamma), Some(&gg.dbeta));
    let l = gnorm::norm_backward_launch(&op, &gx, Some(&g), &state, &gdy, dx, dgamma, dbeta);
    dev.run(&l.unwrap().launches).unwrap();
    assert_close(
        &format!("{what} dx"),
        &get(&gg.dx),
        &rgrads.dx.data,
        tol,
        tol,
    );
    let ptol = if storage == Storage::F32 { 2e-4 } else { 1e-3 };
    let dg = &rgrads.dgamma.data;
    let scale = dg.iter().fold(1.0f64, |a, v| a.max(v.abs()));
    assert_close(
        &format!("{what} dgamma"),
        &get(&gg.dgamma),
        dg,
        ptol * scale,
        ptol,
    );
    let db = &rgrads.dbeta.data;
    let scale = db.iter().fold(1.0f64, |a, v| a.max(v.abs()));
    assert_close(
        &format!("{what} dbeta"),
        &get(&gg.dbeta),
        db,
        ptol * scale,
        ptol,
    );
}

#[test]
fn per_sample_norms_split_groups_match_the_reference() {
    each_device("chunked per-sample norms", |dev| {
        let inst: Norm = InstanceNorm { eps: 1e-5 }.into();
        let group: Norm = GroupNorm::new(2, 1e-5).unwrap().into();
        let layer: Norm = LayerNorm { dims: 1, eps: 1e-5 }.into();
        let layer2: Norm = LayerNorm { dims: 2, eps: 1e-5 }.into();
        let cases: [(Norm, &[usize], usize); 7] = [
            (inst, &[2, 3, 4500], 4500),
            // One sample: parameter c is group c, so dx's kernel writes dγ, dβ too.
            (inst, &[1, 2, 70, 70], 4900),
            (inst, &[1, 3, 33], 33),
            // Two channels of S = 2100 per group: the parameter steps with the run.
            (group, &[2, 4, 2100], 4200),
            (group, &[1, 6, 49, 33], 3 * 49 * 33),
            (layer, &[3, 5000], 5000),
            (layer2, &[2, 90, 49], 4410),
        ];
        for (op, shape, m) in cases {
            for storage in storages(dev) {
                per_sample_case(dev, op, shape, m, storage);
            }
        }
    });
}

/// Dispatches: one forward and one backward launch per single-chunk batch norm (dγ, dβ from dx's
/// kernel) plus the running-stat update; a split channel adds one partial launch each way, and its
/// forward's combine updates the running statistics (three launches forward either way then).
#[test]
fn batch_norm_launch_counts() {
    each_device("chunked batch_norm launches", |dev| {
        let bn = BatchNorm::new(1e-5, 0.1).unwrap();
        for (n, split) in [(2usize, false), (MAX_CHUNK, true)] {
            let shape = [n, 2, 3];
            let z = |s: &[usize]| Tensor::zeros(dev, s, DType::F32).unwrap();
            let (x, y, st, rm, rv) = (z(&shape), z(&shape), z(&[2, 2]), z(&[2]), z(&[2]));
            let fwd = gnorm::batch_norm_train_launch(&bn, &x, None, None, &rm, &rv, &y, &st, None)
                .unwrap();
            assert_eq!(fwd.launches.len(), 2 + split as usize, "{shape:?}");
            assert_eq!(fwd.scratch.len(), split as usize, "{shape:?}");
            let (dx, dg, db) = (z(&shape), z(&[2]), z(&[2]));
            let bwd = gnorm::batch_norm_train_backward_launch(
                &bn,
                &x,
                None,
                &st,
                &y,
                &dx,
                Some(&dg),
                Some(&db),
            )
            .unwrap();
            assert_eq!(bwd.launches.len(), 1 + split as usize, "{shape:?}");
        }
    });
}
