//! f64 reference optimizers: the update rules of `torch.optim.SGD`, `Adam`, `AdamW` and `RMSprop`
//! written out from PyTorch's pseudo-code (its single-tensor implementations where the two differ:
//! AMSGrad keeps the running maximum of the raw second moment, as `max_exp_avg_sq` in PyTorch's
//! state), with the same preprocessing, groups and schedules as `optim::Optimizer`.

use crate::optim::{Algorithm, OptimizerConfig, ParamGroup};

/// The CPU twin of `optim::Optimizer`; state is `[slot][element]` in the same slot order.
#[derive(Clone, Debug)]
pub struct RefOptimizer {
    /// Hyperparameters, as the GPU optimizer's.
    pub config: OptimizerConfig,
    /// Parameter groups (ranges of the flat arena with their own settings).
    pub groups: Vec<ParamGroup>,
    /// Number of elements in the flat arena.
    pub n: usize,
    /// Steps taken (Adam's bias correction uses it).
    pub step: u64,
    /// Position of the learning-rate schedule.
    pub schedule_pos: u64,
    /// Names of the state slots (`momentum_buffer`, `exp_avg`, …).
    pub slots: Vec<String>,
    /// State per slot, per element of the arena.
    pub state: Vec<Vec<f64>>,
    /// ‖rescale · g‖₂ over the grouped elements at the last step (when clipping by norm).
    pub last_norm: Option<f64>,
}

impl RefOptimizer {
    /// Panics on a custom algorithm (there is no reference for user code).
    pub fn new(config: OptimizerConfig, groups: Vec<ParamGroup>, n: usize) -> Self {
        assert!(
            !matches!(config.algorithm, Algorithm::Custom(_)),
            "no reference for custom optimizers"
        );
        let slots = config.algorithm.slot_names();
        let state = vec![vec![0.0; n]; slots.len()];
        RefOptimizer {
            config,
            groups,
            n,
            step: 0,
            schedule_pos: 0,
            slots,
            state,
            last_norm: None,
        }
    }

    fn slot(&self, name: &str) -> usize {
        self.slots
            .iter()
            .position(|s| s == name)
            .unwrap_or_else(|| panic!("no state slot {name}"))
    }

    /// The state flattened slot-major, as `Optimizer::state()` holds it.
    pub fn state_flat(&self) -> Vec<f64> {
        self.state.concat()
    }

    /// One step: `params` updated in place from `grads`.
    pub fn step(&mut self, params: &mut [f64], grads: &[f64]) {
        assert_eq!(params.len(), self.n);
        assert_eq!(grads.len(), self.n);
        let t = self.step + 1;
        let go = self.config.grad.clone();
        let grouped = || {
            self.groups.iter().enumerate().flat_map(|(gi, g)| {
                g.ranges
                    .iter()
                    .flat_map(move |r| r.clone().map(move |i| (gi, i)))
            })
        };
        let coef = match go.clip_norm {
            Some(max) => {
                let total = grouped()
                    .map(|(_, i)| (go.rescale * grads[i]).powi(2))
                    .sum::<f64>()
                    .sqrt();
                self.last_norm = Some(total);
                (max / (total + 1e-6)).min(1.0)
            }
            None => 1.0,
        };
        let items: Vec<(usize, usize)> = grouped().collect();
        for (gi, i) in items {
            let grp = self.groups[gi].clone();
            let lr = self
                .config
                .schedule
                .lr(self.config.lr * grp.lr_scale, self.schedule_pos);
            let p = params[i];
            let mut g = go.rescale * grads[i] * coef;
            if let Some(c) = go.clip_value {
                g = g.clamp(-c, c);
            }
            g += grp.l1 * sign(p) + grp.l2 * p;
            params[i] = self.update(i, p, g, t, lr, grp.weight_decay);
        }
        self.step = t;
        self.schedule_pos += 1;
    }

    fn update(&mut self, i: usize, p: f64, mut g: f64, t: u64, lr: f64, wd: f64) -> f64 {
        match self.config.algorithm.clone() {
            Algorithm::Sgd {
                momentum,
                dampening,
                nesterov,
            } => {
                g += wd * p;
                if momentum != 0.0 {
                    let k = self.slot("momentum_buffer");
                    let b = if t > 1 {
                        momentum * self.state[k][i] + (1.0 - dampening) * g
                    } else {
                        g
                    };
                    self.state[k][i] = b;
                    g = if nesterov { g + momentum * b } else { b };
                }
                p - lr * g
            }
            Algorithm::Adam {
                beta1,
                beta2,
                eps,
                amsgrad,
            }
            | Algorithm::AdamW {
                beta1,
                beta2,
                eps,
                amsgrad,
            } => {
                let mut p = p;
                if matches!(self.config.algorithm, Algorithm::AdamW { .. }) {
                    p *= 1.0 - lr * wd;
                } else {
                    g += wd * p;
                }
                let (km, kv) = (self.slot("exp_avg"), self.slot("exp_avg_sq"));
                let m = beta1 * self.state[km][i] + (1.0 - beta1) * g;
                let v = beta2 * self.state[kv][i] + (1.0 - beta2) * g * g;
                self.state[km][i] = m;
                self.state[kv][i] = v;
                let vhat = if amsgrad {
                    let kx = self.slot("max_exp_avg_sq");
                    let x = self.state[kx][i].max(v);
                    self.state[kx][i] = x;
                    x
                } else {
                    v
                };
                let bc1 = 1.0 - beta1.powf(t as f64);
                let bc2 = 1.0 - beta2.powf(t as f64);
                p - lr * (m / bc1) / ((vhat / bc2).sqrt() + eps)
            }
            Algorithm::RmsProp {
                alpha,
                eps,
                momentum,
                centered,
            } => {
                g += wd * p;
                let ks = self.slot("square_avg");
                let s = alpha * self.state[ks][i] + (1.0 - alpha) * g * g;
                self.state[ks][i] = s;
                let mut avg = if centered {
                    let ka = self.slot("grad_avg");
                    let a = alpha * self.state[ka][i] + (1.0 - alpha) * g;
                    self.state[ka][i] = a;
                    (s - a * a).sqrt()
                } else {
                    s.sqrt()
                };
                avg += eps;
                if momentum > 0.0 {
                    let kb = self.slot("momentum_buffer");
                    let b = momentum * self.state[kb][i] + g / avg;
                    self.state[kb][i] = b;
                    p - lr * b
                } else {
                    p - lr * g / avg
                }
            }
            Algorithm::Custom(_) => unreachable!("checked in new"),
        }
    }
}

fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::Schedule;

    /// Hand-computed first two Adam steps on one element (the bias corrections make step 1 move
    /// by exactly lr · sign(g)).
    #[test]
    fn adam_first_step_moves_by_lr() {
        let cfg = OptimizerConfig::new(Algorithm::adam(), 0.1);
        let mut o = RefOptimizer::new(cfg, vec![ParamGroup::range(0..1)], 1);
        let mut p = [1.0];
        o.step(&mut p, &[0.5]);
        assert!((p[0] - 0.9).abs() < 1e-7, "{}", p[0]);
        let p1 = p[0];
        o.step(&mut p, &[-0.5]);
        // m = 0.9·0.05 - 0.05 = -0.005, v = 0.999·0.00025 + 0.00025 = 0.00049975
        let m = -0.005 / (1.0 - 0.81);
        let v = 0.00049975 / (1.0 - 0.999f64.powi(2));
        let want = p1 - 0.1 * m / (v.sqrt() + 1e-8);
        assert!((p[0] - want).abs() < 1e-12, "{} vs {want}", p[0]);
    }

    #[test]
    fn sgd_momentum_and_groups() {
        let mut cfg = OptimizerConfig::new(Algorithm::sgd(0.5), 1.0);
        cfg.schedule = Schedule::Step {
            step_size: 1,
            gamma: 0.5,
        };
        let groups = vec![
            ParamGroup::range(0..1),
            ParamGroup::range(2..3).lr_scale(2.0).weight_decay(1.0),
        ];
        let mut o = RefOptimizer::new(cfg, groups, 3);
        let mut p = [0.0, 7.0, 1.0];
        o.step(&mut p, &[1.0, 1.0, 1.0]);
        assert_eq!(p, [-1.0, 7.0, 1.0 - 2.0 * 2.0]);
        o.step(&mut p, &[1.0, 1.0, 1.0]);
        // b = 0.5·1 + 1 = 1.5 at lr 0.5; group 2: g = 1 + (-3) = -2, b = 0.5·2 - 2 = -1, lr 1
        assert_eq!(p, [-1.75, 7.0, -3.0 + 1.0]);
    }
}
