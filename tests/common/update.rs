//! The optimizer tests' tolerance rule (`tests/optim.rs` against the f64 reference,
//! `tests/optim_torch.rs` against PyTorch): one place, so both hold the same bar.

/// The optimizer tests' tolerance rule, for each step's displacement `after - before` and for
/// each state slot alike: `|gpu - ref| <= RTOL·(|ref| + max|ref|)` per element, the maximum over
/// the step's displacements (or the slot), plus for displacements one f32 ulp of the parameter
/// per side that stored it in f32 (its rounding, which no kernel avoids). Relative to the update, not
/// to the parameter: Adam moves a parameter of 1 by ~0.01, so 2e-4·|p| let a 2% wrong step pass.
/// The max term covers cancellation (a clipped gradient minus an L2 term, a moving average of
/// signed gradients); the squared averages get no median slack. Measured on lavapipe: within
/// 0.35 of this against the f64 reference; a 0.1% wrong learning rate or a 1% wrong decay fails
/// (`tests/optim.rs`, `the_update_tolerance_sees_small_mistakes`).
pub const RTOL: f64 = 1e-5;

/// The first element of `got` outside the rule against `want`, with `ulp` giving each element's
/// extra absolute slack; and the worst error as a fraction of its tolerance.
pub fn mismatch(
    what: &str,
    got: &[f64],
    want: &[f64],
    ulp: impl Fn(usize) -> f64,
) -> (Option<String>, f64) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} vs {}",
        got.len(),
        want.len()
    );
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let mut worst = 0.0f64;
    for i in 0..got.len() {
        let err = (got[i] - want[i]).abs();
        let tol = RTOL * (want[i].abs() + scale) + ulp(i);
        if err.is_nan() || err > tol {
            let e = format!(
                "{what}: element {i}: gpu {:e} vs reference {:e} (err {err:e}, tolerance {tol:e})",
                got[i], want[i]
            );
            return (Some(e), f64::INFINITY);
        }
        worst = worst.max(err / tol);
    }
    (None, worst)
}

/// Each step's displacement against the reference's, under the rule above; `rounded` is how
/// many of the two sides stored f32 parameters (1 against the f64 reference, 2 against PyTorch).
pub fn update_mismatch(
    what: &str,
    before: &[f32],
    after: &[f32],
    ref_before: &[f64],
    ref_after: &[f64],
    rounded: u32,
) -> (Option<String>, f64) {
    assert_eq!(before.len(), ref_before.len(), "{what}: lengths");
    let got: Vec<f64> = (after.iter().zip(before))
        .map(|(&a, &b)| a as f64 - b as f64)
        .collect();
    let want: Vec<f64> = (ref_after.iter().zip(ref_before))
        .map(|(a, b)| a - b)
        .collect();
    let ulp = |i: usize| {
        rounded as f64 * f32::EPSILON as f64 * (after[i].abs().max(before[i].abs()) as f64)
    };
    mismatch(what, &got, &want, ulp)
}

/// Each state slot (`[slot][element]`, `n` per slot) against the reference's, under the rule above.
pub fn state_mismatch(
    what: &str,
    slots: &[String],
    got: &[f32],
    want: &[f64],
    n: usize,
) -> (Option<String>, f64) {
    assert_eq!(
        got.len(),
        slots.len() * n,
        "{what}: state is not {} slots of {n}",
        slots.len()
    );
    let mut worst = 0.0f64;
    for (k, slot) in slots.iter().enumerate() {
        let g: Vec<f64> = got[k * n..(k + 1) * n].iter().map(|&x| x as f64).collect();
        let (e, w) = mismatch(
            &format!("{what}: state {slot}"),
            &g,
            &want[k * n..(k + 1) * n],
            |_| 0.0,
        );
        if e.is_some() {
            return (e, w);
        }
        worst = worst.max(w);
    }
    (None, worst)
}
