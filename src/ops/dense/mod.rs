//! The dense family: fully connected (linear) layers on the GEMM core.
//!
//! Fully connected (dense / linear) layer descriptor.

pub mod gpu;
mod op;
pub mod reference;
pub(crate) mod samples;

pub use op::DenseOp;

use crate::error::{Result, attr_err, shape_err};

const OP: &str = "fully_connected";

/// `y = x · Wᵀ + b` with the weight `(out_features, in_features)` like PyTorch's `Linear`.
///
/// The input is either a matrix `(N, K)` or an image batch `(N, C, H, W)` flattened row-major
/// (C, then H, then W, as `torch.flatten(x, 1)`) to `K = C·H·W`. An image input gives an image
/// output `(N, out_features, 1, 1)`, as MPS does (its fully connected layer is a convolution whose
/// kernel covers the whole image), so it can feed further image ops; a matrix gives `(N, out)`.
/// The data is the same either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FullyConnected {
    /// Input features (C·H·W of an image input).
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// Whether a bias per output feature is learned and added.
    pub bias: bool,
}

impl FullyConnected {
    /// With bias.
    pub fn new(in_features: usize, out_features: usize) -> Self {
        FullyConnected {
            in_features,
            out_features,
            bias: true,
        }
    }

    /// `Err(Attr)` if a size is 0.
    pub fn validate(&self) -> Result<()> {
        if self.in_features == 0 || self.out_features == 0 {
            return attr_err(
                OP,
                format!(
                    "in_features {} and out_features {} must be at least 1",
                    self.in_features, self.out_features
                ),
            );
        }
        Ok(())
    }

    /// The input as the matrix `(N, K)` the layer multiplies.
    pub fn matrix_shape(&self, input: &[usize]) -> Result<(usize, usize)> {
        self.validate()?;
        if input.len() != 2 && input.len() != 4 {
            return shape_err(
                OP,
                format!(
                    "expects an input (N, K) or (N, C, H, W), got {input:?} of rank {}",
                    input.len()
                ),
            );
        }
        if input.contains(&0) {
            return shape_err(OP, format!("input {input:?} has a zero dimension"));
        }
        let k: usize = input[1..].iter().product();
        if k != self.in_features {
            return shape_err(
                OP,
                format!(
                    "input {input:?} has {k} features per sample but in_features is {}",
                    self.in_features
                ),
            );
        }
        Ok((input[0], k))
    }

    /// `(N, out)` for a matrix input, `(N, out, 1, 1)` for an image input.
    pub fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let (n, _) = self.matrix_shape(input)?;
        Ok(if input.len() == 4 {
            vec![n, self.out_features, 1, 1]
        } else {
            vec![n, self.out_features]
        })
    }

    /// `(out_features, in_features)`.
    pub fn weight_shape(&self) -> Vec<usize> {
        vec![self.out_features, self.in_features]
    }

    /// `(out_features,)` if the layer has a bias.
    pub fn bias_shape(&self) -> Option<Vec<usize>> {
        self.bias.then(|| vec![self.out_features])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg<T: std::fmt::Debug>(r: Result<T>) -> String {
        r.expect_err("expected an error").to_string()
    }

    #[test]
    fn shapes() {
        let fc = FullyConnected::new(12, 5);
        assert_eq!(fc.out_shape(&[7, 12]).unwrap(), vec![7, 5]);
        assert_eq!(fc.out_shape(&[7, 3, 2, 2]).unwrap(), vec![7, 5, 1, 1]);
        assert_eq!(fc.weight_shape(), vec![5, 12]);
        assert_eq!(fc.bias_shape(), Some(vec![5]));
        assert_eq!(FullyConnected { bias: false, ..fc }.bias_shape(), None);
    }

    #[test]
    fn errors() {
        let fc = FullyConnected::new(12, 5);
        let m = msg(fc.out_shape(&[7, 11]));
        assert!(
            m.contains("fully_connected") && m.contains("11") && m.contains("12"),
            "{m}"
        );
        let m = msg(fc.out_shape(&[7, 3, 5]));
        assert!(m.contains("fully_connected") && m.contains("rank 3"), "{m}");
        let m = msg(fc.out_shape(&[0, 12]));
        assert!(
            m.contains("fully_connected") && m.contains("[0, 12]"),
            "{m}"
        );
        let m = msg(FullyConnected::new(0, 5).out_shape(&[1, 1]));
        assert!(
            m.contains("fully_connected") && m.contains("in_features 0"),
            "{m}"
        );
        let m = msg(FullyConnected::new(3, 0).validate());
        assert!(
            m.contains("fully_connected") && m.contains("out_features 0"),
            "{m}"
        );
    }
}
