//! Reference for batch, instance, group and layer norm, forward and backward.
//!
//! All four share one engine: each element `i` belongs to a statistics group `group[i]` (its μ,
//! σ² are taken over that group) and reads affine parameters `param[i]` (its γ, β). Backward
//! through the statistics, per group of M elements with `x̂ = (x − μ)/√(σ² + eps)`,
//! `g = dy·γ`: `dx = (g − mean(g) − x̂·mean(g·x̂)) / √(σ² + eps)`, `dγ = Σ dy·x̂`, `dβ = Σ dy`.

use crate::error::{Result, shape_err};
use crate::ops::axis::fmt_shape;
use crate::ops::norm::{BatchNorm, GroupNorm, InstanceNorm, LayerNorm};
use crate::reference::Array;

/// Gradients of a normalisation: dx (shape of x), dγ and dβ (shape of γ).
#[derive(Clone, Debug)]
pub struct NormGrads {
    /// Gradient of x.
    pub dx: Array,
    /// Gradient of γ (scale).
    pub dgamma: Array,
    /// Gradient of β (shift).
    pub dbeta: Array,
}

/// Batch-norm training output: y, the batch statistics (biased variance, as used to
/// normalise) and the updated running statistics.
#[derive(Clone, Debug)]
pub struct BatchNormTrain {
    /// The normalised output (shape of x).
    pub y: Array,
    /// (C)
    pub mean: Array,
    /// (C), biased (÷M).
    pub var: Array,
    /// (C), `(1 − m)·old + m·mean`.
    pub running_mean: Array,
    /// (C), `(1 − m)·old + m·var·M/(M − 1)`.
    pub running_var: Array,
}

/// Which statistics group and which affine parameter each element uses.
struct Plan {
    groups: usize,
    group: Vec<usize>,
    param: Vec<usize>,
}

/// (N, C, *) → (N, C, S) with S the product of the spatial dims.
fn ncs(x: &[usize]) -> (usize, usize, usize) {
    (x[0], x[1], x[2..].iter().product())
}

impl Plan {
    fn per_channel(x: &[usize]) -> Plan {
        let (n, c, s) = ncs(x);
        let chan: Vec<usize> = (0..n * c * s).map(|i| (i / s) % c).collect();
        Plan {
            groups: c,
            group: chan.clone(),
            param: chan,
        }
    }
    fn per_sample_group(x: &[usize], groups: usize) -> Plan {
        let (n, c, s) = ncs(x);
        let per = c / groups;
        let param: Vec<usize> = (0..n * c * s).map(|i| (i / s) % c).collect();
        let group = (0..n * c * s)
            .map(|i| (i / (c * s)) * groups + ((i / s) % c) / per)
            .collect();
        Plan {
            groups: n * groups,
            group,
            param,
        }
    }
    fn trailing(x: &[usize], dims: usize) -> Plan {
        let inner: usize = x[x.len() - dims..].iter().product();
        let total: usize = x.iter().product();
        Plan {
            groups: total / inner.max(1),
            group: (0..total).map(|i| i / inner).collect(),
            param: (0..total).map(|i| i % inner).collect(),
        }
    }

    /// Per-group mean, biased variance and element count.
    fn stats(&self, x: &Array) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut cnt = vec![0.0; self.groups];
        let mut mean = vec![0.0; self.groups];
        for (i, &v) in x.data.iter().enumerate() {
            cnt[self.group[i]] += 1.0;
            mean[self.group[i]] += v;
        }
        for (m, c) in mean.iter_mut().zip(&cnt) {
            *m /= c;
        }
        let mut var = vec![0.0; self.groups];
        for (i, &v) in x.data.iter().enumerate() {
            let g = self.group[i];
            var[g] += (v - mean[g]) * (v - mean[g]);
        }
        for (v, c) in var.iter_mut().zip(&cnt) {
            *v /= c;
        }
        (mean, var, cnt)
    }

    /// `y = γ·(x − mean)/√(var + eps) + β` with the given per-group statistics.
    fn apply(&self, x: &Array, mean: &[f64], var: &[f64], g: &Array, b: &Array, eps: f64) -> Array {
        let data = x
            .data
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let (k, p) = (self.group[i], self.param[i]);
                g.data[p] * (v - mean[k]) / (var[k] + eps).sqrt() + b.data[p]
            })
            .collect();
        Array::new(&x.shape, data)
    }

    fn forward(&self, x: &Array, gamma: &Array, beta: &Array, eps: f64) -> Array {
        let (mean, var, _) = self.stats(x);
        self.apply(x, &mean, &var, gamma, beta, eps)
    }

    /// Backward through the batch statistics (see the module doc).
    fn backward(&self, x: &Array, gamma: &Array, dy: &Array, eps: f64) -> NormGrads {
        let (mean, var, cnt) = self.stats(x);
        let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        let xhat: Vec<f64> = (0..x.len())
            .map(|i| (x.data[i] - mean[self.group[i]]) * inv[self.group[i]])
            .collect();
        let mut dgamma = Array::zeros(&gamma.shape);
        let mut dbeta = Array::zeros(&gamma.shape);
        let (mut mg, mut mgx) = (vec![0.0; self.groups], vec![0.0; self.groups]);
        for (i, &xh) in xhat.iter().enumerate() {
            let (k, p) = (self.group[i], self.param[i]);
            dgamma.data[p] += dy.data[i] * xh;
            dbeta.data[p] += dy.data[i];
            let g = dy.data[i] * gamma.data[p];
            mg[k] += g / cnt[k];
            mgx[k] += g * xh / cnt[k];
        }
        let dx = (0..x.len())
            .map(|i| {
                let k = self.group[i];
                let g = dy.data[i] * gamma.data[self.param[i]];
                (g - mg[k] - xhat[i] * mgx[k]) * inv[k]
            })
            .collect();
        NormGrads {
            dx: Array::new(&x.shape, dx),
            dgamma,
            dbeta,
        }
    }
}

fn check_dy(op: &str, x: &Array, dy: &Array) -> Result<()> {
    if x.shape != dy.shape {
        return shape_err(
            op,
            format!(
                "dy {} does not match x {}",
                fmt_shape(&dy.shape),
                fmt_shape(&x.shape)
            ),
        );
    }
    Ok(())
}

/// Batch norm in training mode: x (N, C, *), gamma/beta/running stats (C).
pub fn batch_norm_train(
    bn: &BatchNorm,
    x: &Array,
    gamma: &Array,
    beta: &Array,
    running_mean: &Array,
    running_var: &Array,
) -> Result<BatchNormTrain> {
    bn.check(&x.shape, &gamma.shape, &beta.shape)?;
    bn.check_running(&x.shape, &running_mean.shape, &running_var.shape)?;
    bn.check_training(&x.shape)?;
    let plan = Plan::per_channel(&x.shape);
    let (mean, var, cnt) = plan.stats(x);
    let y = plan.apply(x, &mean, &var, gamma, beta, bn.eps as f64);
    let m = bn.momentum as f64;
    let c = mean.len();
    // A channel whose batch statistics are non-finite keeps its running ones (as the kernel).
    let keep = |k: usize| !mean[k].is_finite() || !var[k].is_finite();
    let rm = (0..c)
        .map(|k| match keep(k) {
            true => running_mean.data[k],
            false => (1.0 - m) * running_mean.data[k] + m * mean[k],
        })
        .collect();
    let rv = (0..c)
        .map(|k| match keep(k) {
            true => running_var.data[k],
            false => (1.0 - m) * running_var.data[k] + m * var[k] * cnt[k] / (cnt[k] - 1.0),
        })
        .collect();
    Ok(BatchNormTrain {
        y,
        mean: Array::new(&[c], mean),
        var: Array::new(&[c], var),
        running_mean: Array::new(&[c], rm),
        running_var: Array::new(&[c], rv),
    })
}

/// Backward of [`batch_norm_train`] through the batch statistics.
pub fn batch_norm_train_backward(
    bn: &BatchNorm,
    x: &Array,
    gamma: &Array,
    dy: &Array,
) -> Result<NormGrads> {
    bn.check(&x.shape, &gamma.shape, &gamma.shape)?;
    bn.check_training(&x.shape)?;
    check_dy(BatchNorm::OP, x, dy)?;
    Ok(Plan::per_channel(&x.shape).backward(x, gamma, dy, bn.eps as f64))
}

/// Batch norm in inference mode: normalise with the running statistics.
pub fn batch_norm_infer(
    bn: &BatchNorm,
    x: &Array,
    gamma: &Array,
    beta: &Array,
    running_mean: &Array,
    running_var: &Array,
) -> Result<Array> {
    bn.check(&x.shape, &gamma.shape, &beta.shape)?;
    bn.check_running(&x.shape, &running_mean.shape, &running_var.shape)?;
    let plan = Plan::per_channel(&x.shape);
    Ok(plan.apply(
        x,
        &running_mean.data,
        &running_var.data,
        gamma,
        beta,
        bn.eps as f64,
    ))
}

/// Backward of [`batch_norm_infer`]: the statistics are constants, so
/// `dx = dy·γ/√(rv + eps)`, `dγ = Σ dy·(x − rm)/√(rv + eps)`, `dβ = Σ dy`.
pub fn batch_norm_infer_backward(
    bn: &BatchNorm,
    x: &Array,
    gamma: &Array,
    running_mean: &Array,
    running_var: &Array,
    dy: &Array,
) -> Result<NormGrads> {
    bn.check(&x.shape, &gamma.shape, &gamma.shape)?;
    bn.check_running(&x.shape, &running_mean.shape, &running_var.shape)?;
    check_dy(BatchNorm::OP, x, dy)?;
    let plan = Plan::per_channel(&x.shape);
    let mut g = NormGrads {
        dx: Array::zeros(&x.shape),
        dgamma: Array::zeros(&gamma.shape),
        dbeta: Array::zeros(&gamma.shape),
    };
    for i in 0..x.len() {
        let c = plan.param[i];
        let inv = 1.0 / (running_var.data[c] + bn.eps as f64).sqrt();
        g.dx.data[i] = dy.data[i] * gamma.data[c] * inv;
        g.dgamma.data[c] += dy.data[i] * (x.data[i] - running_mean.data[c]) * inv;
        g.dbeta.data[c] += dy.data[i];
    }
    Ok(g)
}

/// Instance norm: x (N, C, S1, ...), gamma/beta (C).
pub fn instance_norm(op: &InstanceNorm, x: &Array, gamma: &Array, beta: &Array) -> Result<Array> {
    op.check(&x.shape, &gamma.shape, &beta.shape)?;
    Ok(Plan::per_sample_group(&x.shape, x.shape[1]).forward(x, gamma, beta, op.eps as f64))
}

/// Instance-norm backward: gradients of x, γ and β given dy.
pub fn instance_norm_backward(
    op: &InstanceNorm,
    x: &Array,
    gamma: &Array,
    dy: &Array,
) -> Result<NormGrads> {
    op.check(&x.shape, &gamma.shape, &gamma.shape)?;
    check_dy(InstanceNorm::OP, x, dy)?;
    Ok(Plan::per_sample_group(&x.shape, x.shape[1]).backward(x, gamma, dy, op.eps as f64))
}

/// Group norm: x (N, C, *), gamma/beta (C), groups dividing C.
pub fn group_norm(op: &GroupNorm, x: &Array, gamma: &Array, beta: &Array) -> Result<Array> {
    op.check(&x.shape, &gamma.shape, &beta.shape)?;
    Ok(Plan::per_sample_group(&x.shape, op.groups).forward(x, gamma, beta, op.eps as f64))
}

/// Group-norm backward: gradients of x, γ and β given dy.
pub fn group_norm_backward(
    op: &GroupNorm,
    x: &Array,
    gamma: &Array,
    dy: &Array,
) -> Result<NormGrads> {
    op.check(&x.shape, &gamma.shape, &gamma.shape)?;
    check_dy(GroupNorm::OP, x, dy)?;
    Ok(Plan::per_sample_group(&x.shape, op.groups).backward(x, gamma, dy, op.eps as f64))
}

/// Layer norm over the last `op.dims` axes; gamma/beta have the shape of those axes.
pub fn layer_norm(op: &LayerNorm, x: &Array, gamma: &Array, beta: &Array) -> Result<Array> {
    op.check(&x.shape, &gamma.shape, &beta.shape)?;
    Ok(Plan::trailing(&x.shape, op.dims).forward(x, gamma, beta, op.eps as f64))
}

/// Layer-norm backward: gradients of x, γ and β given dy.
pub fn layer_norm_backward(
    op: &LayerNorm,
    x: &Array,
    gamma: &Array,
    dy: &Array,
) -> Result<NormGrads> {
    op.check(&x.shape, &gamma.shape, &gamma.shape)?;
    check_dy(LayerNorm::OP, x, dy)?;
    Ok(Plan::trailing(&x.shape, op.dims).backward(x, gamma, dy, op.eps as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{finite_diff, max_rel_diff};

    fn dot(a: &Array, b: &Array) -> f64 {
        a.data.iter().zip(&b.data).map(|(x, y)| x * y).sum()
    }

    /// Checks dx, dγ, dβ of `fwd` against finite differences of `Σ dy·fwd(x, γ, β)`.
    fn check(
        shape: &[usize],
        pshape: &[usize],
        fwd: impl Fn(&Array, &Array, &Array) -> Array,
        bwd: impl Fn(&Array, &Array, &Array) -> NormGrads,
    ) {
        let x = Array::seeded(shape, 1);
        let mut gamma = Array::seeded(pshape, 2);
        gamma.data.iter_mut().for_each(|g| *g += 1.5);
        let beta = Array::seeded(pshape, 3);
        let dy = Array::seeded(shape, 4);
        let g = bwd(&x, &gamma, &dy);
        let nx = finite_diff(&x, 1e-6, |x| dot(&dy, &fwd(x, &gamma, &beta)));
        let ng = finite_diff(&gamma, 1e-6, |gm| dot(&dy, &fwd(&x, gm, &beta)));
        let nb = finite_diff(&beta, 1e-6, |b| dot(&dy, &fwd(&x, &gamma, b)));
        for (name, a, n) in [
            ("dx", &g.dx, &nx),
            ("dgamma", &g.dgamma, &ng),
            ("dbeta", &g.dbeta, &nb),
        ] {
            let d = max_rel_diff(&a.data, &n.data);
            assert!(d < 1e-6, "{shape:?} {name}: rel diff {d}");
        }
    }

    const SHAPES: [&[usize]; 4] = [&[7, 3], &[1, 3, 33], &[3, 1, 1, 7], &[2, 5, 3, 3]];

    #[test]
    fn batch_norm_train_grads_through_statistics() {
        let bn = BatchNorm::default();
        for s in SHAPES {
            let c = [s[1]];
            let (rm, rv) = (Array::zeros(&c), Array::new(&c, vec![1.0; s[1]]));
            check(
                s,
                &c,
                |x, g, b| batch_norm_train(&bn, x, g, b, &rm, &rv).unwrap().y,
                |x, g, dy| batch_norm_train_backward(&bn, x, g, dy).unwrap(),
            );
        }
    }

    #[test]
    fn batch_norm_infer_grads() {
        let bn = BatchNorm::default();
        for s in SHAPES {
            let c = [s[1]];
            let rm = Array::seeded(&c, 8);
            let mut rv = Array::seeded(&c, 9);
            rv.data.iter_mut().for_each(|v| *v = v.abs() + 0.5);
            check(
                s,
                &c,
                |x, g, b| batch_norm_infer(&bn, x, g, b, &rm, &rv).unwrap(),
                |x, g, dy| batch_norm_infer_backward(&bn, x, g, &rm, &rv, dy).unwrap(),
            );
        }
    }

    #[test]
    fn batch_norm_running_stats_by_hand() {
        // x (4, 1) = 1, 2, 3, 4: mean 2.5, biased var 1.25, unbiased 5/3.
        let bn = BatchNorm::new(0.0, 0.25).unwrap(); // exact in f32
        let x = Array::new(&[4, 1], vec![1.0, 2.0, 3.0, 4.0]);
        let one = Array::new(&[1], vec![1.0]);
        let zero = Array::zeros(&[1]);
        let out = batch_norm_train(&bn, &x, &one, &zero, &zero, &one).unwrap();
        assert!((out.mean.data[0] - 2.5).abs() < 1e-15);
        assert!((out.var.data[0] - 1.25).abs() < 1e-15);
        assert!((out.running_mean.data[0] - 0.625).abs() < 1e-15);
        assert!((out.running_var.data[0] - (0.75 + 0.25 * 5.0 / 3.0)).abs() < 1e-15);
        let ysum: f64 = out.y.data.iter().sum();
        let ysq: f64 = out.y.data.iter().map(|y| y * y).sum();
        assert!(ysum.abs() < 1e-12 && (ysq / 4.0 - 1.0).abs() < 1e-12);
        // Inference with running = batch stats gives the training output.
        let y = batch_norm_infer(&bn, &x, &one, &zero, &out.mean, &out.var).unwrap();
        assert!(max_rel_diff(&y.data, &out.y.data) < 1e-12);
    }

    #[test]
    fn instance_group_layer_norm_grads() {
        for s in [&[1usize, 3, 33][..], &[3, 2, 7], &[2, 4, 3, 3]] {
            let c = [s[1]];
            let inn = InstanceNorm::default();
            check(
                s,
                &c,
                |x, g, b| instance_norm(&inn, x, g, b).unwrap(),
                |x, g, dy| instance_norm_backward(&inn, x, g, dy).unwrap(),
            );
            for groups in [1, s[1]] {
                let gn = GroupNorm::new(groups, 1e-5).unwrap();
                check(
                    s,
                    &c,
                    |x, g, b| group_norm(&gn, x, g, b).unwrap(),
                    |x, g, dy| group_norm_backward(&gn, x, g, dy).unwrap(),
                );
            }
            for dims in 1..=s.len() {
                let ln = LayerNorm { dims, eps: 1e-5 };
                check(
                    s,
                    &s[s.len() - dims..],
                    |x, g, b| layer_norm(&ln, x, g, b).unwrap(),
                    |x, g, dy| layer_norm_backward(&ln, x, g, dy).unwrap(),
                );
            }
        }
        let gn = GroupNorm::new(2, 1e-5).unwrap();
        check(
            &[3, 4, 7],
            &[4],
            |x, g, b| group_norm(&gn, x, g, b).unwrap(),
            |x, g, dy| group_norm_backward(&gn, x, g, dy).unwrap(),
        );
    }

    #[test]
    fn group_norm_with_c_groups_is_instance_norm() {
        let x = Array::seeded(&[2, 3, 5], 11);
        let (g, b) = (Array::seeded(&[3], 12), Array::seeded(&[3], 13));
        let a = group_norm(&GroupNorm::new(3, 1e-5).unwrap(), &x, &g, &b).unwrap();
        let i = instance_norm(&InstanceNorm::default(), &x, &g, &b).unwrap();
        assert!(max_rel_diff(&a.data, &i.data) < 1e-14);
    }

    fn err_text<T: std::fmt::Debug>(r: Result<T>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn bad_inputs_are_errors() {
        let x = Array::zeros(&[2, 6, 5]);
        let (g6, g5) = (Array::zeros(&[6]), Array::zeros(&[5]));
        let e = err_text(group_norm(&GroupNorm::new(4, 1e-5).unwrap(), &x, &g6, &g6));
        assert!(
            e.contains("group_norm") && e.contains("groups = 4") && e.contains("C = 6"),
            "{e}"
        );
        assert!(GroupNorm::new(0, 1e-5).is_err());
        let bn = BatchNorm::default();
        let e = err_text(batch_norm_train(&bn, &x, &g5, &g6, &g6, &g6));
        assert!(
            e.contains("batch_norm") && e.contains("gamma (5)") && e.contains("(2, 6, 5)"),
            "{e}"
        );
        let e = err_text(batch_norm_infer(&bn, &x, &g6, &g6, &g6, &g5));
        assert!(e.contains("running_var (5)") && e.contains("(6)"), "{e}");
        let e = err_text(batch_norm_train(
            &bn,
            &Array::zeros(&[1, 6]),
            &g6,
            &g6,
            &g6,
            &g6,
        ));
        assert!(e.contains("batch_norm") && e.contains("(1, 6)"), "{e}");
        let e = err_text(BatchNorm::new(1e-5, 1.5));
        assert!(e.contains("momentum = 1.5"), "{e}");
        let e = err_text(instance_norm(&InstanceNorm { eps: -1.0 }, &x, &g6, &g6));
        assert!(e.contains("instance_norm") && e.contains("eps = -1"), "{e}");
        let e = err_text(instance_norm(
            &InstanceNorm::default(),
            &Array::zeros(&[2, 6]),
            &g6,
            &g6,
        ));
        assert!(e.contains("instance_norm") && e.contains("(2, 6)"), "{e}");
        let ln = LayerNorm { dims: 4, eps: 1e-5 };
        let e = err_text(layer_norm(&ln, &x, &g6, &g6));
        assert!(
            e.contains("layer_norm") && e.contains("dims = 4") && e.contains("out of range"),
            "{e}"
        );
        let ln = LayerNorm { dims: 2, eps: 1e-5 };
        let e = err_text(layer_norm(&ln, &x, &g6, &g6));
        assert!(e.contains("gamma (6)") && e.contains("(6, 5)"), "{e}");
        let e = err_text(layer_norm_backward(
            &ln,
            &x,
            &Array::zeros(&[6, 5]),
            &Array::zeros(&[2, 6]),
        ));
        assert!(e.contains("dy (2, 6)") && e.contains("(2, 6, 5)"), "{e}");
    }
}
