//! Reference convolutions — `Conv2d`, `Conv1d`, `ConvTranspose2d`, `ConvTranspose1d` — forward
//! and backward, through one generic API over [`Convolution`].
//!
//! Every op resolves to a [`ConvGeometry`], and everything is one loop nest, [`for_each_tap`],
//! over the `(input, weight, output)` index triples of that geometry. The three products over it
//! are the three faces of one trilinear form `Σ x·w·y`:
//!
//! * `conv_data`:         `y  += x  · w`   (conv forward)
//! * `conv_data_adjoint`: `dx += dy · w`   (conv backward-data)
//! * `conv_weight_grad`:  `dw += x  · dy`  (conv backward-weights)
//!
//! A conv-transpose is the adjoint of its geometry's convolution, so its forward IS conv
//! backward-data, its backward-data IS conv forward, and its weight gradient is conv's with the
//! roles of input and output gradient exchanged. 1-D ops are the H = 1 case; their arrays are
//! used as they are, since inserting a unit axis does not move row-major data.

use crate::error::{Result, shape_err};
use crate::ops::conv::{ConvGeometry, Convolution};
use crate::reference::Array;

/// Gradients of a layer with weights: input, weights and (if the op has one) bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Grads {
    /// Gradient of the input (shape of x).
    pub dx: Array,
    /// Gradient of the weights (shape of w).
    pub dw: Array,
    /// Gradient of the bias (`(C_out,)`), if the op has one.
    pub db: Option<Array>,
}

/// Calls `f(x_index, w_index, y_index)` (flat row-major indices into the geometry's input
/// `(N, C_in, H, W)`, weight `(C_out, C_in/groups, kh, kw)` and output `(N, C_out, OH, OW)`) for
/// every tap that lands inside the input. Taps in the padding are skipped: they contribute zero.
/// For a fixed output element the taps come in input-channel, then kernel-row-major order.
pub fn for_each_tap(g: &ConvGeometry, mut f: impl FnMut(usize, usize, usize)) {
    let (h, w) = g.in_size;
    let (oh, ow) = g.out_size;
    let (kh, kw) = g.kernel;
    let cin_g = g.in_channels / g.groups;
    let cout_g = g.out_channels / g.groups;
    for n in 0..g.batch {
        for oc in 0..g.out_channels {
            let group = oc / cout_g;
            for oy in 0..oh {
                for ox in 0..ow {
                    let yi = ((n * g.out_channels + oc) * oh + oy) * ow + ox;
                    for icg in 0..cin_g {
                        let ic = group * cin_g + icg;
                        for ky in 0..kh {
                            let Some(iy) = g.tap_y(oy, ky) else { continue };
                            for kx in 0..kw {
                                let Some(ix) = g.tap_x(ox, kx) else { continue };
                                let xi = ((n * g.in_channels + ic) * h + iy) * w + ix;
                                let wi = ((oc * cin_g + icg) * kh + ky) * kw + kx;
                                f(xi, wi, yi);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Convolution: `(N, C_in, H, W)` → `(N, C_out, OH, OW)`, no bias.
fn conv_data(g: &ConvGeometry, x: &[f64], w: &[f64]) -> Array {
    let mut y = Array::zeros(&g.out_shape());
    for_each_tap(g, |xi, wi, yi| y.data[yi] += x[xi] * w[wi]);
    y
}

/// Its adjoint in the input: `(N, C_out, OH, OW)` → `(N, C_in, H, W)`.
fn conv_data_adjoint(g: &ConvGeometry, dy: &[f64], w: &[f64]) -> Array {
    let mut dx = Array::zeros(&g.in_shape());
    for_each_tap(g, |xi, wi, yi| dx.data[xi] += dy[yi] * w[wi]);
    dx
}

/// Its adjoint in the weight: `(C_out, C_in/groups, kh, kw)`.
fn conv_weight_grad(g: &ConvGeometry, x: &[f64], dy: &[f64]) -> Array {
    let mut dw = Array::zeros(&g.weight_shape());
    for_each_tap(g, |xi, wi, yi| dw.data[wi] += x[xi] * dy[yi]);
    dw
}

/// `y[:, c, ...] += b[c]`: a per-channel bias on axis 1 (also fits `(N, C)` matrices).
pub(crate) fn add_channel_bias(y: &mut Array, b: &[f64]) {
    let inner: usize = y.shape[2..].iter().product();
    for (i, v) in y.data.iter_mut().enumerate() {
        *v += b[(i / inner) % b.len()];
    }
}

/// `Σ dy` over every axis but 1: the bias gradient of [`add_channel_bias`].
pub(crate) fn channel_sums(dy: &Array) -> Array {
    let c = dy.shape[1];
    let inner: usize = dy.shape[2..].iter().product();
    let mut db = Array::zeros(&[c]);
    for (i, v) in dy.data.iter().enumerate() {
        db.data[(i / inner) % c] += v;
    }
    db
}

/// Errors unless `got == expected`; `what` names the array.
pub(crate) fn check_shape(op: &str, what: &str, got: &[usize], expected: &[usize]) -> Result<()> {
    if got != expected {
        return shape_err(
            op,
            format!("{what} has shape {got:?}, expected {expected:?}"),
        );
    }
    Ok(())
}

/// The bias must be given exactly when the op has one, with shape `(C_out,)`.
pub(crate) fn check_bias(
    op: &str,
    has_bias: bool,
    b: Option<&Array>,
    channels: usize,
) -> Result<()> {
    match (has_bias, b) {
        (true, Some(b)) => check_shape(op, "bias", &b.shape, &[channels]),
        (false, None) => Ok(()),
        (true, None) => shape_err(
            op,
            format!("the op has a bias ({channels},) but none was given"),
        ),
        (false, Some(b)) => shape_err(
            op,
            format!("the op has no bias but a bias {:?} was given", b.shape),
        ),
    }
}

/// The geometry for `x_shape`, after checking the weight shape.
fn geometry_and_weight<Op: Convolution + ?Sized>(
    op: &Op,
    x_shape: &[usize],
    w: &Array,
) -> Result<ConvGeometry> {
    let g = op.geometry(x_shape)?;
    check_shape(op.name(), "weight", &w.shape, &op.weight_shape())?;
    Ok(g)
}

/// Checks `dy` against the op's output shape for `x_shape`.
fn check_dy<Op: Convolution + ?Sized>(op: &Op, x_shape: &[usize], dy: &Array) -> Result<()> {
    check_shape(
        op.name(),
        "output gradient",
        &dy.shape,
        &op.out_shape(x_shape)?,
    )
}

/// Relabels a 4-D result with the op's (possibly 3-D) shape; the data does not move.
fn with_shape(a: Array, shape: Vec<usize>) -> Array {
    Array::new(&shape, a.data)
}

/// `y = op(x; w) + b`. `x` is the op's input, `w` its weight (see the descriptor for layouts),
/// `b` the bias, given exactly when `op` has one.
pub fn forward<Op: Convolution + ?Sized>(
    op: &Op,
    x: &Array,
    w: &Array,
    b: Option<&Array>,
) -> Result<Array> {
    let g = geometry_and_weight(op, &x.shape, w)?;
    check_bias(op.name(), op.has_bias(), b, op.out_channels())?;
    let y = if op.is_transposed() {
        conv_data_adjoint(&g, &x.data, &w.data)
    } else {
        conv_data(&g, &x.data, &w.data)
    };
    let mut y = with_shape(y, op.out_shape(&x.shape)?);
    if let Some(b) = b {
        add_channel_bias(&mut y, &b.data);
    }
    Ok(y)
}

/// `dx` for an input of `x_shape`, given the output gradient `dy`.
pub fn backward_data<Op: Convolution + ?Sized>(
    op: &Op,
    x_shape: &[usize],
    w: &Array,
    dy: &Array,
) -> Result<Array> {
    let g = geometry_and_weight(op, x_shape, w)?;
    check_dy(op, x_shape, dy)?;
    let dx = if op.is_transposed() {
        conv_data(&g, &dy.data, &w.data)
    } else {
        conv_data_adjoint(&g, &dy.data, &w.data)
    };
    Ok(with_shape(dx, x_shape.to_vec()))
}

/// `dw`, in the op's weight layout.
pub fn backward_weights<Op: Convolution + ?Sized>(op: &Op, x: &Array, dy: &Array) -> Result<Array> {
    let g = op.geometry(&x.shape)?;
    check_dy(op, &x.shape, dy)?;
    let dw = if op.is_transposed() {
        conv_weight_grad(&g, &dy.data, &x.data)
    } else {
        conv_weight_grad(&g, &x.data, &dy.data)
    };
    Ok(with_shape(dw, op.weight_shape()))
}

/// `db`, `(C_out,)`: `dy` summed over everything but channels.
pub fn backward_bias<Op: Convolution + ?Sized>(
    op: &Op,
    x_shape: &[usize],
    dy: &Array,
) -> Result<Array> {
    check_dy(op, x_shape, dy)?;
    Ok(channel_sums(dy))
}

/// All gradients; `db` is `Some` exactly when the op has a bias.
pub fn backward<Op: Convolution + ?Sized>(
    op: &Op,
    x: &Array,
    w: &Array,
    dy: &Array,
) -> Result<Grads> {
    Ok(Grads {
        dx: backward_data(op, &x.shape, w, dy)?,
        dw: backward_weights(op, x, dy)?,
        db: if op.has_bias() {
            Some(backward_bias(op, &x.shape, dy)?)
        } else {
            None
        },
    })
}

/// Shared by the reference tests: gradient checks against central finite differences.
#[cfg(test)]
pub(crate) mod testing {
    use crate::reference::{Array, finite_diff, max_rel_diff};

    pub fn dot(a: &Array, b: &Array) -> f64 {
        assert_eq!(a.shape, b.shape, "dot of different shapes");
        a.data.iter().zip(&b.data).map(|(x, y)| x * y).sum()
    }

    /// Asserts `analytic` equals the central difference (eps 1e-6) of `f` at `x`. The ops are
    /// linear (or piecewise linear), so the differences are exact up to rounding.
    pub fn assert_fd(what: &str, x: &Array, analytic: &Array, f: impl Fn(&Array) -> f64) {
        assert_eq!(analytic.shape, x.shape, "{what}: gradient shape");
        let num = finite_diff(x, 1e-6, f);
        let d = max_rel_diff(&analytic.data, &num.data);
        assert!(
            d < 1e-6,
            "{what}: max rel diff {d}\nanalytic {:?}\nnumeric {:?}",
            analytic.data,
            num.data
        );
    }

    pub fn assert_close(what: &str, a: &[f64], b: &[f64]) {
        let d = max_rel_diff(a, b);
        assert!(d < 1e-12, "{what}: max rel diff {d}\n{a:?}\n{b:?}");
    }
}

#[cfg(test)]
mod tests;
