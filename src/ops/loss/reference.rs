//! Reference for the losses: per-sample loss and its gradient w.r.t. the logits/predictions,
//! then weighting and reduction. Formulas are on [`crate::ops::loss`].

use crate::error::{Result, shape_err};
use crate::neuron::{sigmoid, softplus};
use crate::ops::axis::fmt_shape;
use crate::ops::loss::{LabelsShape, Loss, LossKind, Reduction};
use crate::reference::Array;

/// Labels: one class index per sample, or dense with the logits' shape.
#[derive(Clone, Copy, Debug)]
pub enum Labels<'a> {
    /// One class index per sample.
    Indices(&'a [usize]),
    /// Dense targets with the logits' shape (probabilities, regression targets, ±1 for hinge).
    Dense(&'a Array),
}

/// Squared norms below this are clamped (Keras's `l2_normalize` epsilon).
const COS_EPS: f64 = 1e-12;

/// Per-sample loss and its gradient w.r.t. the row `x`, given the row's labels `t`.
fn sample(kind: &LossKind, x: &[f64], t: &[f64]) -> (f64, Vec<f64>) {
    let d = x.len() as f64;
    let smooth = |ls: f32, k: f64| -> Vec<f64> {
        let ls = ls as f64;
        t.iter().map(|&v| (1.0 - ls) * v + ls / k).collect()
    };
    let cw = |w: &Option<Vec<f32>>, c: usize| w.as_ref().map_or(1.0, |w| w[c] as f64);
    // Elementwise losses: mean over the row of h(x, t), gradient h'(x, t)/D.
    let mean_of = |h: &dyn Fn(f64, f64) -> (f64, f64)| -> (f64, Vec<f64>) {
        let (mut l, mut g) = (0.0, vec![0.0; x.len()]);
        for j in 0..x.len() {
            let (v, dv) = h(x[j], t[j]);
            l += v / d;
            g[j] = dv / d;
        }
        (l, g)
    };
    match kind {
        LossKind::SoftmaxCrossEntropy {
            label_smoothing,
            class_weights,
        } => {
            let ts = smooth(*label_smoothing, d);
            let max = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + x.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
            let wt: Vec<f64> = (0..x.len()).map(|c| cw(class_weights, c) * ts[c]).collect();
            let (l, s) = (0..x.len()).fold((0.0, 0.0), |(l, s), c| {
                (l - wt[c] * (x[c] - lse), s + wt[c])
            });
            // d/dx_j: −w_j·t'_j + p_j·Σ_c w_c·t'_c
            let g = (0..x.len())
                .map(|j| -wt[j] + (x[j] - lse).exp() * s)
                .collect();
            (l, g)
        }
        LossKind::SigmoidCrossEntropy { label_smoothing } => {
            let ts = smooth(*label_smoothing, 2.0);
            let (mut l, mut g) = (0.0, vec![0.0; x.len()]);
            for j in 0..x.len() {
                // max(x,0) − x·t + ln(1 + e^{−|x|}) = softplus(x) − x·t
                l += (softplus(x[j]) - x[j] * ts[j]) / d;
                g[j] = (sigmoid(x[j]) - ts[j]) / d;
            }
            (l, g)
        }
        LossKind::CategoricalCrossEntropy {
            label_smoothing,
            class_weights,
        } => {
            let ts = smooth(*label_smoothing, d);
            let (mut l, mut g) = (0.0, vec![0.0; x.len()]);
            for c in 0..x.len() {
                let wt = cw(class_weights, c) * ts[c];
                if wt != 0.0 {
                    l -= wt * x[c].ln();
                    g[c] = -wt / x[c];
                }
            }
            (l, g)
        }
        LossKind::MeanSquaredError => mean_of(&|x, t| ((x - t) * (x - t), 2.0 * (x - t))),
        LossKind::MeanAbsoluteError => mean_of(&|x, t| {
            let e: f64 = x - t;
            (
                e.abs(),
                if e > 0.0 {
                    1.0
                } else if e < 0.0 {
                    -1.0
                } else {
                    0.0
                },
            )
        }),
        LossKind::Huber { delta } => {
            let dl = *delta as f64;
            mean_of(&|x, t| {
                let e: f64 = x - t;
                let v = if e.abs() <= dl {
                    0.5 * e * e
                } else {
                    dl * (e.abs() - 0.5 * dl)
                };
                (v, e.clamp(-dl, dl))
            })
        }
        LossKind::Hinge => mean_of(&|x, t| {
            let m = 1.0 - t * x;
            if m > 0.0 { (m, -t) } else { (0.0, 0.0) }
        }),
        LossKind::KlDivergence {
            log_input,
            log_target,
        } => {
            let (mut l, mut g) = (0.0, vec![0.0; x.len()]);
            for j in 0..x.len() {
                // T and ln T from the label; T = 0 (not log_target) adds nothing, as xlogy.
                let (tt, lt) = if *log_target {
                    (t[j].exp(), t[j])
                } else if t[j] > 0.0 {
                    (t[j], t[j].ln())
                } else {
                    continue;
                };
                let lp = if *log_input { x[j] } else { x[j].ln() };
                l += tt * (lt - lp);
                g[j] = if *log_input { -tt } else { -tt / x[j] };
            }
            (l, g)
        }
        LossKind::CosineDistance => {
            let sq = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>();
            let (sx, st) = (sq(x), sq(t));
            let (nx, nt) = (sx.max(COS_EPS).sqrt(), st.max(COS_EPS).sqrt());
            let cos: f64 = x.iter().zip(t).map(|(a, b)| a * b).sum::<f64>() / (nx * nt);
            // u = x/‖x‖, v = t/‖t‖: d(1 − u·v)/dx = −(v − u·(u·v))/‖x‖ (the u term vanishes
            // where ‖x‖ is clamped, as the norm is then constant).
            let proj = if sx > COS_EPS { cos } else { 0.0 };
            let g = (0..x.len())
                .map(|j| -(t[j] / nt - x[j] / nx * proj) / nx)
                .collect();
            (1.0 - cos, g)
        }
    }
}

/// A loss's inputs checked and spelled out for the row loop.
struct Rows {
    n: usize,
    d: usize,
    /// Per-sample weights (N), ones without.
    w: Vec<f64>,
    /// Dense label rows (N·D).
    t: Vec<f64>,
    /// The reduction's factor over `Σ w_n·l_n` (see [`Reduction`]); 0 for a zero divisor.
    factor: f64,
}

/// Validates everything and spells out the rows.
fn prepare(loss: &Loss, logits: &Array, labels: &Labels, weights: Option<&Array>) -> Result<Rows> {
    let ls = match labels {
        Labels::Indices(i) => LabelsShape::Indices(i.len()),
        Labels::Dense(a) => LabelsShape::Dense(&a.shape),
    };
    let (n, d) = loss.check(&logits.shape, ls, weights.map(|w| &w.shape[..]))?;
    let t = match labels {
        Labels::Dense(a) => a.data.clone(),
        Labels::Indices(idx) => {
            loss.check_class_indices(idx, d).map_err(|e| match e {
                crate::Error::Attr { op, msg } => crate::Error::Attr {
                    op,
                    msg: format!("{msg} (logits {})", fmt_shape(&logits.shape)),
                },
                e => e,
            })?;
            let mut t = vec![0.0; n * d];
            for (s, &k) in idx.iter().enumerate() {
                t[s * d + k] = 1.0;
            }
            t
        }
    };
    let w = weights.map_or(vec![1.0; n], |w| w.data.clone());
    let div = match loss.reduction {
        Reduction::None | Reduction::Sum => 1.0,
        // PyTorch's weighted mean: the targets' class weights (index labels only).
        Reduction::Mean => match (labels, loss.class_weights()) {
            (Labels::Indices(idx), Some(cw)) => idx.iter().map(|&k| cw[k] as f64).sum(),
            _ => n as f64,
        },
        Reduction::SumByNonZeroWeights => w.iter().filter(|&&v| v != 0.0).count() as f64,
    };
    let factor = if div == 0.0 {
        0.0
    } else {
        loss.sum_scale(d) / div
    };
    Ok(Rows { n, d, w, t, factor })
}

/// The loss: (N) per-sample weighted losses for `Reduction::None`, else (1).
/// `logits` (N, *); dense `labels` shaped like logits or (N) class indices; `weights` (N).
pub fn loss_forward(
    loss: &Loss,
    logits: &Array,
    labels: &Labels,
    weights: Option<&Array>,
) -> Result<Array> {
    let Rows { n, d, w, t, factor } = prepare(loss, logits, labels, weights)?;
    let per: Vec<f64> = (0..n)
        .map(|s| {
            let r = s * d..(s + 1) * d;
            w[s] * sample(&loss.kind, &logits.data[r.clone()], &t[r]).0
        })
        .collect();
    if loss.reduction == Reduction::None {
        return Ok(Array::new(&[n], per));
    }
    Ok(Array::new(&[1], vec![per.iter().sum::<f64>() * factor]))
}

/// Gradient w.r.t. the logits given `dloss`, the upstream gradient of the output (shaped like
/// [`loss_forward`]'s result: (N) or (1); pass 1 for the plain gradient of the reduced loss).
/// Labels and weights are constants.
pub fn loss_backward(
    loss: &Loss,
    logits: &Array,
    labels: &Labels,
    weights: Option<&Array>,
    dloss: &Array,
) -> Result<Array> {
    let Rows { n, d, w, t, factor } = prepare(loss, logits, labels, weights)?;
    let out = loss.output_shape(n);
    if dloss.shape != out {
        return shape_err(
            loss.name(),
            format!(
                "dloss {} does not match the loss output {}",
                fmt_shape(&dloss.shape),
                fmt_shape(&out)
            ),
        );
    }
    let mut dx = Array::zeros(&logits.shape);
    for (s, &ws) in w.iter().enumerate() {
        let up = if loss.reduction == Reduction::None {
            dloss.data[s]
        } else {
            dloss.data[0]
        };
        let scale = if factor == 0.0 { 0.0 } else { up * ws * factor };
        let r = s * d..(s + 1) * d;
        let (_, g) = sample(&loss.kind, &logits.data[r.clone()], &t[r.clone()]);
        for (o, gv) in dx.data[r].iter_mut().zip(g) {
            *o = scale * gv;
        }
    }
    Ok(dx)
}

/// Rows of positive values summing to 1 (probabilities, dense labels).
pub fn distributions(shape: &[usize], seed: u64) -> Array {
    let mut a = Array::seeded(shape, seed);
    let d = a.len() / shape[0];
    for row in a.data.chunks_mut(d) {
        row.iter_mut().for_each(|v| *v = v.abs() + 0.05);
        let s: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= s);
    }
    a
}

/// Suitable (predictions, dense labels) of `shape` for each kind: inputs where every loss is
/// smooth and its gradient well conditioned (the finite-difference and GPU checks use them).
pub fn suitable_inputs(kind: &LossKind, shape: &[usize]) -> (Array, Array) {
    let mut x = Array::seeded(shape, 1);
    let mut t = Array::seeded(shape, 2);
    match kind {
        LossKind::SoftmaxCrossEntropy { .. } => {
            x.data.iter_mut().for_each(|v| *v *= 3.0);
            t = distributions(shape, 2);
        }
        LossKind::SigmoidCrossEntropy { .. } => {
            x.data.iter_mut().for_each(|v| *v *= 4.0);
            t.data.iter_mut().for_each(|v| *v = v.abs());
        }
        LossKind::CategoricalCrossEntropy { .. } | LossKind::KlDivergence { .. } => {
            x.data.iter_mut().for_each(|v| *v = v.abs() + 0.05);
            t = distributions(shape, 2);
            t.data[0] = 0.0; // KL skips t = 0
            if let LossKind::KlDivergence {
                log_input,
                log_target,
            } = kind
            {
                if *log_input {
                    x.data.iter_mut().for_each(|v| *v = v.ln());
                }
                if *log_target {
                    t.data.iter_mut().for_each(|v| *v = (*v + 0.01).ln());
                }
            }
        }
        LossKind::MeanSquaredError | LossKind::MeanAbsoluteError | LossKind::Huber { .. } => {
            x.data.iter_mut().for_each(|v| *v *= 2.0);
        }
        LossKind::Hinge => {
            x.data.iter_mut().for_each(|v| *v *= 3.0);
            t.data
                .iter_mut()
                .for_each(|v| *v = if *v > 0.0 { 1.0 } else { -1.0 });
        }
        LossKind::CosineDistance => {
            // The gradient scales as 1/|x| and, for one-element rows, is a cancellation that f32
            // resolves only to eps/|x| (seen on NVIDIA: 1.7e-4 at |x| ≈ 1e-3): keep |x| away
            // from 0.
            x.data.iter_mut().for_each(|v| *v += 0.5 * v.signum());
        }
    }
    (x, t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{finite_diff, max_rel_diff};

    fn kinds() -> Vec<LossKind> {
        vec![
            LossKind::SoftmaxCrossEntropy {
                label_smoothing: 0.0,
                class_weights: None,
            },
            LossKind::SoftmaxCrossEntropy {
                label_smoothing: 0.1,
                class_weights: Some(vec![]),
            },
            LossKind::SigmoidCrossEntropy {
                label_smoothing: 0.2,
            },
            LossKind::CategoricalCrossEntropy {
                label_smoothing: 0.1,
                class_weights: Some(vec![]),
            },
            LossKind::MeanSquaredError,
            LossKind::MeanAbsoluteError,
            LossKind::Huber { delta: 0.5 },
            LossKind::Hinge,
            LossKind::KlDivergence {
                log_input: false,
                log_target: false,
            },
            LossKind::kl_div(false),
            LossKind::kl_div(true),
            LossKind::CosineDistance,
        ]
    }

    /// Fills `Some(vec![])` class weights with D positive weights.
    fn with_classes(kind: &LossKind, d: usize) -> LossKind {
        let w: Vec<f32> = (0..d).map(|c| 0.5 + (c % 3) as f32 * 0.25).collect();
        match kind.clone() {
            LossKind::SoftmaxCrossEntropy {
                label_smoothing,
                class_weights: Some(_),
            } => LossKind::SoftmaxCrossEntropy {
                label_smoothing,
                class_weights: Some(w),
            },
            LossKind::CategoricalCrossEntropy {
                label_smoothing,
                class_weights: Some(_),
            } => LossKind::CategoricalCrossEntropy {
                label_smoothing,
                class_weights: Some(w),
            },
            k => k,
        }
    }

    const REDUCTIONS: [Reduction; 4] = [
        Reduction::None,
        Reduction::Sum,
        Reduction::Mean,
        Reduction::SumByNonZeroWeights,
    ];

    fn check_grad(loss: &Loss, x: &Array, labels: &Labels, w: Option<&Array>) {
        let n = x.shape[0];
        let dl = Array::seeded(&loss.output_shape(n), 7);
        let f = |x: &Array| {
            let l = loss_forward(loss, x, labels, w).unwrap();
            l.data.iter().zip(&dl.data).map(|(a, b)| a * b).sum::<f64>()
        };
        let num = finite_diff(x, 1e-6, f);
        let ana = loss_backward(loss, x, labels, w, &dl).unwrap();
        let d = max_rel_diff(&ana.data, &num.data);
        assert!(
            d < 1e-6,
            "{} {:?} {:?}: rel diff {d}",
            loss.name(),
            loss.reduction,
            x.shape
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        for shape in [&[1usize, 7][..], &[3, 33], &[5, 1], &[2, 3, 1, 5]] {
            let n = shape[0];
            let d = shape[1..].iter().product();
            let mut w = Array::seeded(&[n], 3);
            w.data.iter_mut().for_each(|v| *v = v.abs() + 0.5);
            w.data[0] = 0.0;
            for kind in kinds() {
                let kind = with_classes(&kind, d);
                let (x, t) = suitable_inputs(&kind, shape);
                for r in REDUCTIONS {
                    let loss = Loss::new(kind.clone(), r).unwrap();
                    check_grad(&loss, &x, &Labels::Dense(&t), None);
                    check_grad(&loss, &x, &Labels::Dense(&t), Some(&w));
                    if loss.accepts_class_indices() {
                        let idx: Vec<usize> = (0..n).map(|s| (s * 5 + 1) % d).collect();
                        check_grad(&loss, &x, &Labels::Indices(&idx), Some(&w));
                    }
                }
            }
        }
    }

    #[test]
    fn class_indices_equal_one_hot() {
        let (n, d) = (4, 6);
        let x = Array::seeded(&[n, d], 5);
        let idx = [0, 5, 2, 2];
        let mut oh = Array::zeros(&[n, d]);
        idx.iter()
            .enumerate()
            .for_each(|(s, &k)| oh.data[s * d + k] = 1.0);
        let cw = Some((0..d).map(|c| c as f32 + 1.0).collect());
        let loss = Loss::new(
            LossKind::SoftmaxCrossEntropy {
                label_smoothing: 0.2,
                class_weights: cw,
            },
            Reduction::None,
        )
        .unwrap();
        let a = loss_forward(&loss, &x, &Labels::Indices(&idx), None).unwrap();
        let b = loss_forward(&loss, &x, &Labels::Dense(&oh), None).unwrap();
        assert_eq!(a, b);
        let dl = Array::new(&[n], vec![1.0; n]);
        let ga = loss_backward(&loss, &x, &Labels::Indices(&idx), None, &dl).unwrap();
        let gb = loss_backward(&loss, &x, &Labels::Dense(&oh), None, &dl).unwrap();
        assert_eq!(ga, gb);
    }

    fn scalar(loss: &Loss, x: &Array, t: &Array, w: Option<&Array>) -> f64 {
        loss_forward(loss, x, &Labels::Dense(t), w).unwrap().data[0]
    }

    #[test]
    fn hand_values() {
        let sum = |k: LossKind| Loss::new(k, Reduction::Sum).unwrap();
        // Perfect one-hot prediction: CE ≈ 0; uniform logits: CE = ln C.
        let ce = Loss::softmax_cross_entropy(Reduction::Mean);
        let x = Array::new(&[1, 3], vec![60.0, 0.0, 0.0]);
        let l = loss_forward(&ce, &x, &Labels::Indices(&[0]), None)
            .unwrap()
            .data[0];
        assert!((0.0..1e-25).contains(&l), "{l}");
        let u = Array::new(&[2, 4], vec![0.3; 8]);
        let l = loss_forward(&ce, &u, &Labels::Indices(&[1, 3]), None)
            .unwrap()
            .data[0];
        assert!((l - 4f64.ln()).abs() < 1e-15);
        // Huber inside delta is MSE / 2.
        let x = Array::seeded(&[3, 5], 1);
        let t = Array::seeded(&[3, 5], 2);
        let h = scalar(&sum(LossKind::Huber { delta: 3.0 }), &x, &t, None);
        let m = scalar(&sum(LossKind::MeanSquaredError), &x, &t, None);
        assert!((h - m / 2.0).abs() < 1e-15);
        // MSE with Mean = PyTorch's mean over every element.
        let mse = Loss::new(LossKind::MeanSquaredError, Reduction::Mean).unwrap();
        let all: f64 = x
            .data
            .iter()
            .zip(&t.data)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            / 15.0;
        assert!((scalar(&mse, &x, &t, None) - all).abs() < 1e-15);
        // Reductions and weights: per-sample (None) · w, summed, / N, / non-zero weights.
        let w = Array::new(&[3], vec![0.0, 2.0, 0.5]);
        let per = loss_forward(
            &Loss {
                reduction: Reduction::None,
                ..mse.clone()
            },
            &x,
            &Labels::Dense(&t),
            None,
        )
        .unwrap();
        let wsum = 2.0 * per.data[1] + 0.5 * per.data[2];
        let red = |r| {
            scalar(
                &Loss {
                    reduction: r,
                    ..mse.clone()
                },
                &x,
                &t,
                Some(&w),
            )
        };
        // Sum adds every element (D = 5 per row), as PyTorch's reduction='sum'.
        assert!((red(Reduction::Sum) - 5.0 * wsum).abs() < 1e-14);
        assert!((red(Reduction::Mean) - wsum / 3.0).abs() < 1e-15);
        assert!((red(Reduction::SumByNonZeroWeights) - wsum / 2.0).abs() < 1e-15);
        let z = Array::zeros(&[3]);
        let nz = Loss {
            reduction: Reduction::SumByNonZeroWeights,
            ..mse.clone()
        };
        assert_eq!(scalar(&nz, &x, &t, Some(&z)), 0.0);
        let g = loss_backward(
            &nz,
            &x,
            &Labels::Dense(&t),
            Some(&z),
            &Array::new(&[1], vec![1.0]),
        );
        assert!(g.unwrap().data.iter().all(|&v| v == 0.0));
        // KL of identical distributions is 0; cosine of parallel 0, antiparallel 2.
        let p = distributions(&[2, 5], 4);
        let keras_kl = LossKind::KlDivergence {
            log_input: false,
            log_target: false,
        };
        assert!(scalar(&sum(keras_kl), &p, &p, None).abs() < 1e-15);
        let neg = Array::new(&p.shape, p.data.iter().map(|v| -2.0 * v).collect());
        let two = Array::new(&p.shape, p.data.iter().map(|v| 2.0 * v).collect());
        assert!(scalar(&sum(LossKind::CosineDistance), &two, &p, None).abs() < 1e-15);
        assert!((scalar(&sum(LossKind::CosineDistance), &neg, &p, None) - 4.0).abs() < 1e-15);
        // Sigmoid CE is stable at huge logits.
        let sce = sum(LossKind::SigmoidCrossEntropy {
            label_smoothing: 0.0,
        });
        let x = Array::new(&[1, 2], vec![1000.0, -1000.0]);
        let t = Array::new(&[1, 2], vec![1.0, 1.0]);
        // Summed over both elements, as PyTorch: 0 + 1000.
        assert_eq!(scalar(&sce, &x, &t, None), 1000.0);
    }

    fn err(r: Result<Array>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn bad_inputs_are_errors() {
        let ce = Loss::softmax_cross_entropy(Reduction::Mean);
        let x = Array::zeros(&[3, 4]);
        let e = err(loss_forward(
            &ce,
            &x,
            &Labels::Dense(&Array::zeros(&[3, 5])),
            None,
        ));
        assert!(
            e.contains("softmax_cross_entropy") && e.contains("(3, 5)") && e.contains("(3, 4)"),
            "{e}"
        );
        let e = err(loss_forward(&ce, &x, &Labels::Indices(&[0, 4, 1]), None));
        assert!(
            e.contains("softmax_cross_entropy")
                && e.contains("class index 4")
                && e.contains("4 classes"),
            "{e}"
        );
        assert!(e.contains("sample 1") && e.contains("(3, 4)"), "{e}");
        let e = err(loss_forward(&ce, &x, &Labels::Indices(&[0, 1]), None));
        assert!(e.contains("labels (2)") && e.contains("(3, 4)"), "{e}");
        let mse = Loss::new(LossKind::MeanSquaredError, Reduction::Sum).unwrap();
        let e = err(loss_forward(&mse, &x, &Labels::Indices(&[0, 1, 2]), None));
        assert!(e.contains("mse") && e.contains("class-index"), "{e}");
        let t = Array::zeros(&[3, 4]);
        let e = err(loss_forward(
            &mse,
            &x,
            &Labels::Dense(&t),
            Some(&Array::zeros(&[4])),
        ));
        assert!(e.contains("weights (4)") && e.contains("(3, 4)"), "{e}");
        let e = err(loss_backward(
            &mse,
            &x,
            &Labels::Dense(&t),
            None,
            &Array::zeros(&[3]),
        ));
        assert!(e.contains("dloss (3)") && e.contains("(1)"), "{e}");
        let cw = LossKind::SoftmaxCrossEntropy {
            label_smoothing: 0.0,
            class_weights: Some(vec![1.0; 3]),
        };
        let e = err(loss_forward(
            &Loss::new(cw, Reduction::Sum).unwrap(),
            &x,
            &Labels::Dense(&t),
            None,
        ));
        assert!(
            e.contains("class_weights (3)") && e.contains("4 classes"),
            "{e}"
        );
        let bad = LossKind::CategoricalCrossEntropy {
            label_smoothing: 1.5,
            class_weights: None,
        };
        let e = Loss::new(bad, Reduction::Sum).unwrap_err().to_string();
        assert!(
            e.contains("categorical_cross_entropy") && e.contains("label_smoothing = 1.5"),
            "{e}"
        );
        let e = Loss::new(LossKind::Huber { delta: 0.0 }, Reduction::Sum)
            .unwrap_err()
            .to_string();
        assert!(e.contains("huber") && e.contains("delta = 0"), "{e}");
        let e = err(loss_forward(
            &mse,
            &Array::zeros(&[]),
            &Labels::Dense(&Array::zeros(&[])),
            None,
        ));
        assert!(e.contains("mse") && e.contains("rank"), "{e}");
    }
}
