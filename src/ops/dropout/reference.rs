//! Reference for dropout: mask from [`dropout_mask`], keep-scaled by 1/(1 − rate); backward
//! applies the same mask and scale to dy; inference is the identity.

use crate::error::Result;
use crate::ops::dropout::Dropout;
pub use crate::ops::dropout::dropout_mask;
use crate::reference::Array;

/// `y = mask·x/(1 − rate)` in training, `y = x` otherwise. Any shape; the mask is over the flat
/// index.
pub fn dropout_forward(d: &Dropout, step: u64, x: &Array, training: bool) -> Result<Array> {
    d.validate()?;
    if !training {
        return Ok(x.clone());
    }
    let (mask, scale) = (dropout_mask(d.seed, step, x.len(), d.rate), d.scale());
    let data = x
        .data
        .iter()
        .zip(&mask)
        .map(|(&v, &k)| if k { v * scale } else { 0.0 })
        .collect();
    Ok(Array::new(&x.shape, data))
}

/// `dx = mask·dy/(1 − rate)` with the mask of the same (seed, step): dropout is linear in x.
pub fn dropout_backward(d: &Dropout, step: u64, dy: &Array, training: bool) -> Result<Array> {
    dropout_forward(d, step, dy, training)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{finite_diff, max_rel_diff};

    #[test]
    fn backward_matches_finite_differences() {
        let d = Dropout::new(0.3, 9).unwrap();
        for shape in [&[1usize][..], &[7], &[3, 33]] {
            let x = Array::seeded(shape, 1);
            let dy = Array::seeded(shape, 2);
            for training in [true, false] {
                let f = |x: &Array| {
                    let y = dropout_forward(&d, 5, x, training).unwrap();
                    y.data.iter().zip(&dy.data).map(|(a, b)| a * b).sum::<f64>()
                };
                let num = finite_diff(&x, 1e-6, f);
                let ana = dropout_backward(&d, 5, &dy, training).unwrap();
                assert!(max_rel_diff(&ana.data, &num.data) < 1e-8);
            }
        }
    }

    #[test]
    fn scales_kept_elements_and_inference_is_identity() {
        let d = Dropout::new(0.75, 1).unwrap();
        let x = Array::new(&[2, 50], vec![1.0; 100]);
        let y = dropout_forward(&d, 0, &x, true).unwrap();
        assert!(y.data.iter().all(|&v| v == 0.0 || v == 4.0));
        assert!(y.data.contains(&4.0) && y.data.contains(&0.0));
        assert_eq!(dropout_forward(&d, 0, &x, false).unwrap(), x);
        let bad = Dropout { rate: 1.0, seed: 0 };
        let e = dropout_forward(&bad, 0, &x, false).unwrap_err().to_string();
        assert!(e.contains("dropout") && e.contains("rate = 1"), "{e}");
    }
}
