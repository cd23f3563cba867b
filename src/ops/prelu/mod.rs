//! The PReLU family: a leaky ReLU whose negative slope is learned, as PyTorch's
//! `nn.PReLU(num_parameters)`.
//!
//! On an input `(N, C, *)` (or `(N, C)`) with a slope vector `a` of `num_parameters` entries
//! (`C`: one slope per channel; `1`: one slope shared by every channel):
//!
//! ```text
//! y  = x            if x > 0
//!      a[c] · x     otherwise
//! dx = dy           if x > 0
//!      a[c] · dy    otherwise          (x = 0 takes this branch: dx = a·dy)
//! da[c] = Σ over N and the spatial dims (and over C when the slope is shared) of
//!         (x > 0 ? 0 : x) · dy
//! ```
//!
//! At `x = 0` the function has a kink; like PyTorch, the gradient takes the `x <= 0` branch:
//! `dx = a·dy`, and the slope's term `x·dy` is 0.
//!
//! The parameter is `<name>.weight` of shape `[num_parameters]` (PyTorch's state-dict name).
//! PyTorch initialises it to 0.25; here parameters are initialised by their data sources, and
//! `train::default_init` gives any 1-D `.weight` the constant 1 (as batch norm's γ) — a PReLU
//! that starts as the identity. Pass `Init::Constant(0.25)` for it to start like PyTorch.

pub mod gpu;
mod op;
pub mod reference;
pub(crate) mod samples;

pub use op::PReluOp;

use crate::error::{Result, attr_err, shape_err};
use crate::ops::axis::fmt_shape;

/// PReLU with `num_parameters` learned slopes: the channel count `C` of the input, or 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PRelu {
    /// Number of slopes: C or 1.
    pub num_parameters: usize,
}

impl PRelu {
    pub(crate) const OP: &'static str = "prelu";

    /// One slope per channel (`num_parameters = C`), or shared (`1`); checked here for ≥ 1 and
    /// against the input's channel count when the op meets one.
    pub fn new(num_parameters: usize) -> Result<Self> {
        let p = PRelu { num_parameters };
        p.validate()?;
        Ok(p)
    }

    /// `num_parameters` must be at least 1.
    pub fn validate(&self) -> Result<()> {
        if self.num_parameters == 0 {
            return attr_err(Self::OP, "num_parameters = 0 must be at least 1");
        }
        Ok(())
    }

    /// The slope parameter's shape, `[num_parameters]`.
    pub fn weight_shape(&self) -> Vec<usize> {
        vec![self.num_parameters]
    }

    /// The input viewed as `(outer, slots, inner)`: element `j` (row-major) uses slope
    /// `a[(j / inner) % slots]`, where `slots = num_parameters`. Per channel: `(N, C, spatial)`;
    /// shared: `(1, 1, all elements)`. Errors (naming the op) unless the input has rank ≥ 2, no
    /// zero dimension, and `num_parameters` is 1 or its channel count.
    pub fn layout(&self, x: &[usize]) -> Result<(usize, usize, usize)> {
        self.validate()?;
        if x.len() < 2 {
            return shape_err(
                Self::OP,
                format!(
                    "input {} has rank {}; PReLU takes (N, C, ...) of rank at least 2",
                    fmt_shape(x),
                    x.len()
                ),
            );
        }
        if x.contains(&0) {
            return shape_err(Self::OP, format!("input {} is empty", fmt_shape(x)));
        }
        let (n, c) = (x[0], x[1]);
        let spatial: usize = x[2..].iter().product();
        if self.num_parameters == c {
            Ok((n, c, spatial))
        } else if self.num_parameters == 1 {
            Ok((1, 1, n * c * spatial))
        } else {
            attr_err(
                Self::OP,
                format!(
                    "num_parameters = {} must be 1 or the channel count {c} of input {}",
                    self.num_parameters,
                    fmt_shape(x)
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_per_channel_and_shared() {
        assert_eq!(PRelu::new(7).unwrap().layout(&[2, 7]).unwrap(), (2, 7, 1));
        assert_eq!(
            PRelu::new(3).unwrap().layout(&[2, 3, 5, 7]).unwrap(),
            (2, 3, 35)
        );
        assert_eq!(
            PRelu::new(1).unwrap().layout(&[2, 3, 5, 7]).unwrap(),
            (1, 1, 210)
        );
        assert_eq!(
            PRelu::new(1).unwrap().layout(&[4, 1, 3]).unwrap(),
            (4, 1, 3)
        );
    }

    #[test]
    fn bad_descriptors_and_shapes_are_errors_naming_the_op() {
        let e = PRelu::new(0).unwrap_err().to_string();
        assert!(
            e.contains("prelu") && e.contains("num_parameters = 0"),
            "{e}"
        );
        let e = PRelu { num_parameters: 0 }
            .layout(&[2, 3])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("prelu") && e.contains("num_parameters = 0"),
            "{e}"
        );
        let p = PRelu::new(3).unwrap();
        let e = p.layout(&[2, 7, 4]).unwrap_err().to_string();
        assert!(
            e.contains("prelu") && e.contains("num_parameters = 3") && e.contains("7"),
            "{e}"
        );
        let e = p.layout(&[3]).unwrap_err().to_string();
        assert!(e.contains("prelu") && e.contains("rank 1"), "{e}");
        let e = PRelu::new(1).unwrap().layout(&[]).unwrap_err().to_string();
        assert!(e.contains("prelu") && e.contains("rank 0"), "{e}");
        let e = p.layout(&[0, 3]).unwrap_err().to_string();
        assert!(e.contains("prelu") && e.contains("empty"), "{e}");
    }
}
