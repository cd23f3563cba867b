//! f64 reference of the matrix product and its gradients.

use crate::reference::Array;

/// 2-D `op(a) · op(b)`: a is (M, K) or (K, M) when `ta`; b is (K, N) or (N, K) when `tb`.
pub fn matmul(a: &Array, b: &Array, ta: bool, tb: bool) -> Array {
    let (m, k) = if ta {
        (a.shape[1], a.shape[0])
    } else {
        (a.shape[0], a.shape[1])
    };
    let n = if tb { b.shape[0] } else { b.shape[1] };
    let mut c = Array::zeros(&[m, n]);
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0;
            for l in 0..k {
                let av = if ta {
                    a.data[l * m + i]
                } else {
                    a.data[i * k + l]
                };
                let bv = if tb {
                    b.data[j * k + l]
                } else {
                    b.data[l * n + j]
                };
                s += av * bv;
            }
            c.data[i * n + j] = s;
        }
    }
    c
}

/// Gradients of `c = a · b` (2-D): `(dc · bᵀ, aᵀ · dc)`.
pub fn matmul_backward(a: &Array, b: &Array, dc: &Array) -> (Array, Array) {
    (matmul(dc, b, false, true), matmul(a, dc, true, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::shape::reference::permute;
    use crate::reference::{finite_diff, max_rel_diff};

    fn dot(a: &Array, b: &Array) -> f64 {
        a.data.iter().zip(&b.data).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn matmul_backward_matches_finite_differences() {
        let a = Array::seeded(&[3, 7], 6);
        let b = Array::seeded(&[7, 2], 7);
        let dc = Array::seeded(&[3, 2], 8);
        let (ga, gb) = matmul_backward(&a, &b, &dc);
        let fa = finite_diff(&a, 1e-6, |a| dot(&matmul(a, &b, false, false), &dc));
        let fb = finite_diff(&b, 1e-6, |b| dot(&matmul(&a, b, false, false), &dc));
        assert!(max_rel_diff(&ga.data, &fa.data) < 1e-6);
        assert!(max_rel_diff(&gb.data, &fb.data) < 1e-6);
        // Transposed operands read the same matrices.
        let at = permute(&a, &[1, 0]);
        let bt = permute(&b, &[1, 0]);
        assert_eq!(
            matmul(&at, &bt, true, true).data,
            matmul(&a, &b, false, false).data
        );
    }
}
