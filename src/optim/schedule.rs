//! Learning-rate schedules, evaluated on the host once per step (in f64, as PyTorch's schedulers
//! do in Python floats) and handed to the kernels in the per-step uniform. The closed forms are
//! those of torch.optim.lr_scheduler's `StepLR`, `CosineAnnealingLR` and `LinearLR` (warm-up, then
//! the inner schedule restarted at 0, like `SequentialLR`).

/// The learning rate as a function of the schedule position `t` (0 for the first step).
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// `base` at every step.
    Constant,
    /// `base · gamma^(t / step_size)` (integer division): `StepLR`.
    Step {
        /// Steps between decays.
        step_size: u64,
        /// Factor applied at each decay.
        gamma: f64,
    },
    /// `eta_min + (base - eta_min) · (1 + cos(π · min(t, t_max) / t_max)) / 2`: `CosineAnnealingLR`,
    /// held at `eta_min` after `t_max` instead of rising again.
    Cosine {
        /// Steps of the half period.
        t_max: u64,
        /// Learning rate at the end.
        eta_min: f64,
    },
    /// For `t < steps`: `then`'s first value scaled by `start_factor + (1 - start_factor) · t / steps`
    /// (`LinearLR` to factor 1); afterwards `then` at `t - steps`.
    Warmup {
        /// Warmup length, in steps.
        steps: u64,
        /// Factor of the first step, in [0, 1].
        start_factor: f64,
        /// The schedule after the warmup.
        then: Box<Schedule>,
    },
}

impl Schedule {
    /// Linear warm-up over `steps` from `start_factor · lr`, then `then`.
    pub fn warmup(steps: u64, start_factor: f64, then: Schedule) -> Schedule {
        Schedule::Warmup {
            steps,
            start_factor,
            then: Box::new(then),
        }
    }

    /// The learning rate at position `t` for a group whose base learning rate is `base`.
    pub fn lr(&self, base: f64, t: u64) -> f64 {
        match self {
            Schedule::Constant => base,
            Schedule::Step { step_size, gamma } => {
                base * gamma.powi((t / (*step_size).max(1)).min(i32::MAX as u64) as i32)
            }
            Schedule::Cosine { t_max, eta_min } => {
                let tm = (*t_max).max(1);
                let x = t.min(tm) as f64 / tm as f64;
                eta_min + (base - eta_min) * (1.0 + (std::f64::consts::PI * x).cos()) / 2.0
            }
            Schedule::Warmup {
                steps,
                start_factor,
                then,
            } => {
                if t < *steps {
                    let f = start_factor + (1.0 - start_factor) * t as f64 / *steps as f64;
                    then.lr(base, 0) * f
                } else {
                    then.lr(base, t - steps)
                }
            }
        }
    }

    /// Checks the parameters (positive periods, finite factors); names the schedule otherwise.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(crate::Error::Invalid(format!("schedule {self:?}: {m}")));
        match self {
            Schedule::Constant => Ok(()),
            Schedule::Step { step_size, gamma } => {
                // (a gamma above 1 grows the rate without bound: `prepare_step` refuses the first
                // step whose rate is not a finite f32)
                if *step_size == 0 || !gamma.is_finite() || *gamma < 0.0 {
                    return bad("step_size must be >= 1 and gamma finite and >= 0".into());
                }
                Ok(())
            }
            Schedule::Cosine { t_max, eta_min } => {
                if *t_max == 0 || !eta_min.is_finite() || *eta_min < 0.0 {
                    return bad("t_max must be >= 1 and eta_min finite and >= 0".into());
                }
                Ok(())
            }
            Schedule::Warmup {
                steps,
                start_factor,
                then,
            } => {
                if *steps == 0 || !(0.0..=1.0).contains(start_factor) {
                    return bad("warm-up needs steps >= 1 and 0 <= start_factor <= 1".into());
                }
                then.validate()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn constant_and_step() {
        assert_eq!(Schedule::Constant.lr(0.1, 1000), 0.1);
        let s = Schedule::Step {
            step_size: 3,
            gamma: 0.5,
        };
        let got: Vec<f64> = (0..7).map(|t| s.lr(1.0, t)).collect();
        assert_eq!(got, [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
    }

    /// Against independent numbers, not the implementation's formula: PyTorch's
    /// `CosineAnnealingLR(T_max=10, eta_min=0.01)` from lr 0.1 at steps 2, 3 and 8 is
    /// 0.01 + 0.045·(1 + cos 36°/54°/144°), with cos 36° = (1 + √5)/4 and cos 54° = sin 36°
    /// (and `tests/optim_torch.rs` compares every step's rate with torch's own scheduler).
    #[test]
    fn cosine_matches_pytorch_and_holds() {
        let s = Schedule::Cosine {
            t_max: 10,
            eta_min: 0.01,
        };
        let want = [
            (0, 0.1),
            (2, 0.09140576474687263),
            (3, 0.08145033635316129),
            (5, 0.055),
            (8, 0.018594235253127367),
            (10, 0.01),
            (25, 0.01),
        ];
        for (t, w) in want {
            let got = s.lr(0.1, t);
            assert!(close(got, w), "step {t}: {got} vs {w}");
        }
    }

    #[test]
    fn warmup_then_inner_restarted() {
        let s = Schedule::warmup(
            4,
            0.25,
            Schedule::Step {
                step_size: 2,
                gamma: 0.1,
            },
        );
        let got: Vec<f64> = (0..8).map(|t| s.lr(2.0, t)).collect();
        let want = [0.5, 0.875, 1.25, 1.625, 2.0, 2.0, 0.2, 0.2];
        for (g, w) in got.iter().zip(want) {
            assert!(close(*g, w), "{got:?} vs {want:?}");
        }
        assert!(s.validate().is_ok());
        assert!(
            Schedule::warmup(0, 0.5, Schedule::Constant)
                .validate()
                .is_err()
        );
        assert!(
            Schedule::Cosine {
                t_max: 0,
                eta_min: 0.0
            }
            .validate()
            .is_err()
        );
    }
}
