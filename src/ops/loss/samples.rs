//! Sample cases of every loss kind: class-index (u32) and dense labels, label smoothing, class
//! and per-sample weights, every reduction. Labels and weights are data (no gradient).

use super::{Loss, LossKind, Reduction};
use crate::graph::Value;
use crate::ops::sample::{Fill, Sample};

const N: usize = 5;
const D: usize = 7;

fn class_weights() -> Option<Vec<f32>> {
    Some((0..D).map(|c| 0.5 + (c % 3) as f32 * 0.25).collect())
}

/// A loss over logits `x` (N·s, D) with dense labels `t` like the logits, or u32 class indices
/// `t` (N·s) when `indices`, and per-sample weights `w` (N·s) when `weights`.
fn case(name: &str, loss: Loss, indices: bool, weights: bool, x: Fill, t: Fill) -> Sample {
    let sample = Sample::new(format!("loss/{name}"), move |g, s| {
        let x = g.input("x", &[N * s, D])?;
        let t = if indices {
            g.input_u32("t", &[N * s])?
        } else {
            g.input("t", &[N * s, D])?
        };
        let w: Option<Value> = if weights {
            Some(g.input("w", &[N * s])?)
        } else {
            None
        };
        g.loss("y", x, t, w, loss.clone())
    });
    let t = if indices { Fill::Classes(D) } else { t };
    sample
        .fill("x", x)
        .fill("t", t)
        .fill("w", Fill::Uniform(0.0, 2.0))
        .no_grad("t")
        .no_grad("w")
}

pub fn samples() -> Vec<Sample> {
    let u = Fill::Uniform(-2.0, 2.0);
    let p = Fill::Probabilities;
    let sce = |label_smoothing, class_weights| LossKind::SoftmaxCrossEntropy {
        label_smoothing,
        class_weights,
    };
    let cce = |label_smoothing, class_weights| LossKind::CategoricalCrossEntropy {
        label_smoothing,
        class_weights,
    };
    let l = |kind, reduction| Loss { kind, reduction };
    vec![
        case(
            "softmax_ce/indices",
            l(sce(0.0, None), Reduction::Mean),
            true,
            false,
            u,
            u,
        ),
        case(
            "softmax_ce/dense_smooth_weighted",
            l(sce(0.1, class_weights()), Reduction::Sum),
            false,
            true,
            u,
            p,
        ),
        // Smoothing large enough that the smoothed target is mostly uniform.
        case(
            "softmax_ce/indices_smooth0.7",
            l(sce(0.7, None), Reduction::Mean),
            true,
            false,
            u,
            u,
        ),
        case(
            "softmax_ce/indices_class_weights",
            l(sce(0.2, class_weights()), Reduction::None),
            true,
            false,
            u,
            u,
        ),
        case(
            "sigmoid_ce",
            l(
                LossKind::SigmoidCrossEntropy {
                    label_smoothing: 0.1,
                },
                Reduction::None,
            ),
            false,
            false,
            u,
            Fill::Uniform(0.0, 1.0),
        ),
        case(
            "categorical_ce/indices",
            l(cce(0.0, None), Reduction::SumByNonZeroWeights),
            true,
            true,
            p,
            u,
        ),
        case(
            "categorical_ce/dense_smooth",
            l(cce(0.1, class_weights()), Reduction::Mean),
            false,
            false,
            p,
            p,
        ),
        case(
            "mse",
            l(LossKind::MeanSquaredError, Reduction::Mean),
            false,
            false,
            u,
            u,
        ),
        case(
            "mae",
            l(LossKind::MeanAbsoluteError, Reduction::Sum),
            false,
            true,
            u,
            u,
        ),
        case(
            "huber",
            l(LossKind::Huber { delta: 0.5 }, Reduction::Mean),
            false,
            false,
            u,
            u,
        ),
        case(
            "hinge",
            l(LossKind::Hinge, Reduction::Sum),
            false,
            false,
            u,
            Fill::Signs,
        ),
        case(
            "kl_divergence",
            l(
                LossKind::KlDivergence {
                    log_input: false,
                    log_target: false,
                },
                Reduction::Mean,
            ),
            false,
            false,
            p,
            p,
        ),
        // PyTorch's kl_div: log-probability inputs (any values), probability or log targets.
        case(
            "kl_div/log_input",
            l(LossKind::kl_div(false), Reduction::Mean),
            false,
            true,
            Fill::Uniform(-3.0, -0.1),
            p,
        ),
        case(
            "kl_div/log_target",
            l(LossKind::kl_div(true), Reduction::Sum),
            false,
            false,
            Fill::Uniform(-3.0, -0.1),
            Fill::Uniform(-3.0, 0.0),
        ),
        // PyTorch's weighted mean: divided by the summed class weights of the targets.
        case(
            "softmax_ce/indices_class_weights_mean",
            l(sce(0.1, class_weights()), Reduction::Mean),
            true,
            true,
            u,
            u,
        ),
        case(
            "categorical_ce/indices_class_weights_mean",
            l(cce(0.0, class_weights()), Reduction::Mean),
            true,
            false,
            p,
            u,
        ),
        // Sum over every element of an elementwise loss; None's per-sample rows, weighted.
        case(
            "mse/sum",
            l(LossKind::MeanSquaredError, Reduction::Sum),
            false,
            false,
            u,
            u,
        ),
        case(
            "sigmoid_ce/sum_weighted",
            l(
                LossKind::SigmoidCrossEntropy {
                    label_smoothing: 0.0,
                },
                Reduction::Sum,
            ),
            false,
            true,
            u,
            Fill::Uniform(0.0, 1.0),
        ),
        case(
            "huber/none_weighted",
            l(LossKind::Huber { delta: 0.5 }, Reduction::None),
            false,
            true,
            u,
            u,
        ),
        case(
            "cosine_distance",
            l(LossKind::CosineDistance, Reduction::SumByNonZeroWeights),
            false,
            true,
            u,
            u,
        ),
    ]
}
