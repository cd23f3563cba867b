//! Layer builders that read like the network: sizes taken from the input (in channels, in
//! features), options as chained methods, and the 1-D pooling layers PyTorch has.
//!
//! ```
//! use wgtrain::Graph;
//! use wgtrain::ops::conv::{Conv2d, Padding};
//! use wgtrain::ops::pool::{Pool1d, Pool2d};
//! # fn main() -> wgtrain::Result<()> {
//! let mut g = Graph::new();
//! let x = g.input("image", &[4, 3, 32, 32])?;
//! let h = g.conv2d("conv1", x, Conv2d::out(16, 3).padding(Padding::Same).stride(2))?;
//! assert_eq!(g.shape(h)?, &[4, 16, 16, 16]);
//! let h = g.pool("pool", h, Pool2d::max((2, 2), (2, 2)))?;
//! let y = g.linear("fc", h, 10)?; // in_features = 16·8·8, from the input
//! assert_eq!(g.shape(y)?, &[4, 10]);
//! let s = g.input("signal", &[4, 6, 50])?;
//! let p = g.pool1d("p", s, Pool1d::avg(5, 5))?;
//! assert_eq!(g.shape(p)?, &[4, 6, 10]);
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::graph::{Graph, Value};
use crate::ops::conv::{Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, Padding, Padding1d};
use crate::ops::dense::FullyConnected;
use crate::ops::pool::{Pool1d, Pool2d};

/// A size given once for both axes (`3`) or per axis (`(1, 7)`).
pub trait Pair {
    /// `(h, w)`.
    fn pair(self) -> (usize, usize);
}

impl Pair for usize {
    fn pair(self) -> (usize, usize) {
        (self, self)
    }
}

impl Pair for (usize, usize) {
    fn pair(self) -> (usize, usize) {
        self
    }
}

/// Chained options of the 2-D convolutions (in channels 0 means: from the input).
macro_rules! conv2d_options {
    ($t:ty) => {
        impl $t {
            /// `out_channels` filters of `kernel` (one edge or `(kh, kw)`), the input channels
            /// taken from the input when the layer is added to a graph.
            pub fn out(out_channels: usize, kernel: impl Pair) -> Self {
                Self::new(0, out_channels, kernel.pair())
            }
            /// With stride `s` (one or per axis).
            pub fn stride(mut self, s: impl Pair) -> Self {
                self.stride = s.pair();
                self
            }
            /// With dilation `d` (one or per axis).
            pub fn dilation(mut self, d: impl Pair) -> Self {
                self.dilation = d.pair();
                self
            }
            /// With `groups` channel groups (`in_channels` of them: depthwise).
            pub fn groups(mut self, groups: usize) -> Self {
                self.groups = groups;
                self
            }
            /// With padding `p` (`Padding::Same`, `Padding::symmetric(1)`, ...).
            pub fn padding(mut self, p: Padding) -> Self {
                self.padding = p;
                self
            }
            /// Without a bias.
            pub fn no_bias(mut self) -> Self {
                self.bias = false;
                self
            }
        }
    };
}

conv2d_options!(Conv2d);
conv2d_options!(ConvTranspose2d);

/// Chained options of the 1-D convolutions (in channels 0 means: from the input).
macro_rules! conv1d_options {
    ($t:ty) => {
        impl $t {
            /// `out_channels` filters of length `kernel`, the input channels taken from the
            /// input when the layer is added to a graph.
            pub fn out(out_channels: usize, kernel: usize) -> Self {
                Self::new(0, out_channels, kernel)
            }
            /// With stride `s`.
            pub fn stride(mut self, s: usize) -> Self {
                self.stride = s;
                self
            }
            /// With dilation `d`.
            pub fn dilation(mut self, d: usize) -> Self {
                self.dilation = d;
                self
            }
            /// With `groups` channel groups.
            pub fn groups(mut self, groups: usize) -> Self {
                self.groups = groups;
                self
            }
            /// With padding `p`.
            pub fn padding(mut self, p: Padding1d) -> Self {
                self.padding = p;
                self
            }
            /// Without a bias.
            pub fn no_bias(mut self) -> Self {
                self.bias = false;
                self
            }
        }
    };
}

conv1d_options!(Conv1d);
conv1d_options!(ConvTranspose1d);

impl Pool2d {
    /// With padding `p`.
    pub fn padding(mut self, p: Padding) -> Self {
        self.padding = p;
        self
    }
    /// With dilation `d` (one or per axis).
    pub fn dilation(mut self, d: impl Pair) -> Self {
        self.dilation = d.pair();
        self
    }
}

impl Graph {
    /// Fully connected to `out_features`, the input features (all axes after the batch)
    /// taken from `x`, with bias: PyTorch's `nn.Linear` (after a flatten).
    pub fn linear(&mut self, name: &str, x: Value, out_features: usize) -> Result<Value> {
        let s = self.shape(x)?;
        let k = s
            .get(1..)
            .filter(|r| !r.is_empty())
            .and_then(|r| r.iter().try_fold(1usize, |a, &d| a.checked_mul(d)))
            .ok_or_else(|| Error::Shape {
                op: format!("node {name:?}"),
                msg: format!("input {s:?}: a linear layer needs (N, features...)"),
            })?;
        self.atomic(|g| {
            let y = g.dense(name, x, FullyConnected::new(k, out_features))?;
            // dense keeps images 4-D (N, out, 1, 1); a linear layer gives (N, out).
            if g.shape(y)?.len() == 2 {
                return Ok(y);
            }
            let flat = g.fresh(format!("{name}.flat"));
            g.flatten(&flat, y)
        })
    }

    /// A transposed 2-D convolution of `x` (N, C, H, W) with parameters `{name}.weight`
    /// (C, out/groups, kh, kw) and `{name}.bias`.
    pub fn conv_transpose2d(&mut self, name: &str, x: Value, op: ConvTranspose2d) -> Result<Value> {
        self.conv(name, x, crate::ops::conv::ConvKind::T2(op))
    }

    /// A transposed 1-D convolution of `x` (N, C, L).
    pub fn conv_transpose1d(&mut self, name: &str, x: Value, op: ConvTranspose1d) -> Result<Value> {
        self.conv(name, x, crate::ops::conv::ConvKind::T1(op))
    }

    /// Max or average pooling of `x` (N, C, L) along L: a 2-D pooling of the (N, C, 1, L) view.
    pub fn pool1d(&mut self, name: &str, x: Value, op: Pool1d) -> Result<Value> {
        let (c, l) = ncl(self, name, x, "1-D pooling")?;
        // Several nodes: none stays behind on an Err.
        self.atomic(|g| {
            let as_2d = g.fresh(format!("{name}.as_2d"));
            let v = g.reshape(&as_2d, x, &[c, 1, l])?;
            let pooled = g.fresh(format!("{name}.pool2d"));
            let p = g.pool(&pooled, v, op.to_2d())?;
            let out = g.shape(p)?[3];
            g.reshape(name, p, &[c, out])
        })
    }

    /// Mean over L: (N, C, L) -> (N, C, 1), PyTorch's `AdaptiveAvgPool1d(1)`.
    pub fn global_avg_pool1d(&mut self, name: &str, x: Value) -> Result<Value> {
        let (c, l) = ncl(self, name, x, "1-D global pooling")?;
        self.atomic(|g| {
            let as_2d = g.fresh(format!("{name}.as_2d"));
            let v = g.reshape(&as_2d, x, &[c, 1, l])?;
            let pooled = g.fresh(format!("{name}.pool2d"));
            let p = g.global_avg_pool(&pooled, v)?;
            g.reshape(name, p, &[c, 1])
        })
    }

    /// Max over L: (N, C, L) -> (N, C, 1), PyTorch's `AdaptiveMaxPool1d(1)`.
    pub fn global_max_pool1d(&mut self, name: &str, x: Value) -> Result<Value> {
        ncl(self, name, x, "1-D global pooling")?;
        self.max(name, x, 2)
    }
}

/// `(C, L)` of an `(N, C, L)` input, or an `Err` naming the layer.
fn ncl(g: &Graph, name: &str, x: Value, what: &str) -> Result<(usize, usize)> {
    match *g.shape(x)? {
        [_, c, l] => Ok((c, l)),
        ref s => Err(Error::Shape {
            op: format!("node {name:?}"),
            msg: format!("{what} takes (N, C, L), got {s:?}"),
        }),
    }
}
