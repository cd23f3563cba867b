//! Inception v3 (torchvision's `Inception3` without the auxiliary head) with torchvision's
//! state-dict names.

use super::classifier;
use crate::error::{Result, attr_err};
use crate::graph::{Graph, Value};
use crate::neuron::UnaryOp;
use crate::ops::conv::{Conv2d, Padding};
use crate::ops::dropout::Dropout;
use crate::ops::norm::BatchNorm;
use crate::ops::pool::Pool2d;
use crate::ops::shape::Concat;
use crate::train::Network;

/// Widths and head of [`inception_v3`]: torchvision's is [`InceptionSize::TORCHVISION`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InceptionSize {
    /// Every channel count of torchvision's (32 … 448, 2048 at the end) divided by this,
    /// rounded up: 1 is torchvision's network, 16 one narrow enough for a software GPU.
    pub width_divisor: usize,
    /// Classes of the fully connected head.
    pub classes: usize,
    /// Dropout before the head (torchvision: rate 0.5); `None` adds no dropout node.
    pub dropout: Option<Dropout>,
}

impl InceptionSize {
    /// torchvision's `inception_v3(aux_logits=False)`.
    pub const TORCHVISION: InceptionSize = InceptionSize {
        width_divisor: 1,
        classes: 1000,
        dropout: Some(Dropout { rate: 0.5, seed: 0 }),
    };
}

/// Inception v3 as torchvision builds it (`Inception3(aux_logits=False, transform_input=False)`):
/// the stem, Mixed_5b … Mixed_7c, global average pooling, dropout and `fc`. Every convolution is
/// torchvision's `BasicConv2d` (no bias, batch norm with eps 0.001, ReLU), named as its state
/// dict names it (`Conv2d_1a_3x3.conv.weight`, `Mixed_6b.branch7x7_2.bn.running_var`, `fc.bias`;
/// no `num_batches_tracked`), so its weights load from and save to PyTorch's. The inputs are the
/// loop's: `image` (N, 3, H, W), at least 75×75 as torchvision's; `labels` u32 (N); `weights` (N).
/// At 75×75 the last blocks are 1×1, so batch norm needs a batch of 2 or more (an `Err` below).
/// Two differences in order, not in function: each pool branch runs its 1×1 convolution before
/// its 3×3 average, not after (both linear, no bias between them: the same outputs up to
/// rounding), so the average works on fewer channels and keeps no pooled copy of the block
/// input; and Mixed_7b/7c concatenate their six branch ends at once where torchvision nests
/// two concats in the outer one (the same tensor, two copies fewer).
pub fn inception_v3(batch: usize, image: (usize, usize), size: InceptionSize) -> Result<Network> {
    if size.width_divisor == 0 {
        return attr_err(
            "inception_v3",
            "width_divisor = 0 (1 is torchvision's widths)",
        );
    }
    let mut g = Graph::new();
    let x = g.input("image", &[batch, 3, image.0, image.1])?;
    let labels = g.input_u32("labels", &[batch])?;
    let weights = g.input("weights", &[batch])?;
    let mut b = Blocks {
        g: &mut g,
        divisor: size.width_divisor,
    };
    let h = b.conv("Conv2d_1a_3x3", x, 32, (3, 3), 2, (0, 0))?;
    let h = b.conv("Conv2d_2a_3x3", h, 32, (3, 3), 1, (0, 0))?;
    let h = b.conv("Conv2d_2b_3x3", h, 64, (3, 3), 1, (1, 1))?;
    let h = b.max_pool("maxpool1", h)?;
    let h = b.conv("Conv2d_3b_1x1", h, 80, (1, 1), 1, (0, 0))?;
    let h = b.conv("Conv2d_4a_3x3", h, 192, (3, 3), 1, (0, 0))?;
    let h = b.max_pool("maxpool2", h)?;
    let h = b.inception_a("Mixed_5b", h, 32)?;
    let h = b.inception_a("Mixed_5c", h, 64)?;
    let h = b.inception_a("Mixed_5d", h, 64)?;
    let h = b.inception_b("Mixed_6a", h)?;
    let h = b.inception_c("Mixed_6b", h, 128)?;
    let h = b.inception_c("Mixed_6c", h, 160)?;
    let h = b.inception_c("Mixed_6d", h, 160)?;
    let h = b.inception_c("Mixed_6e", h, 192)?;
    let h = b.inception_d("Mixed_7a", h)?;
    let h = b.inception_e("Mixed_7b", h)?;
    let h = b.inception_e("Mixed_7c", h)?;
    let h = g.global_avg_pool("avgpool", h)?;
    let mut h = g.flatten("flatten", h)?;
    if let Some(d) = size.dropout {
        h = g.dropout("dropout", h, d)?;
    }
    let logits = g.linear("fc", h, size.classes)?;
    classifier(g, logits, labels, weights)
}

/// Adds torchvision's blocks to a graph, every channel count divided by `divisor`.
struct Blocks<'a> {
    g: &'a mut Graph,
    divisor: usize,
}

impl Blocks<'_> {
    /// torchvision's `BasicConv2d`: a convolution without bias to `out` channels (before the
    /// divisor), batch norm (eps 0.001) and ReLU; `pad` is PyTorch's `padding=(ph, pw)`.
    fn conv(
        &mut self,
        name: &str,
        x: Value,
        out: usize,
        kernel: (usize, usize),
        stride: usize,
        pad: (usize, usize),
    ) -> Result<Value> {
        let h = self.conv_only(name, x, out, kernel, stride, pad)?;
        self.bn_relu(name, h)
    }

    /// `BasicConv2d`'s convolution alone (`name.conv`).
    fn conv_only(
        &mut self,
        name: &str,
        x: Value,
        out: usize,
        kernel: (usize, usize),
        stride: usize,
        pad: (usize, usize),
    ) -> Result<Value> {
        let c = Conv2d::out(out.div_ceil(self.divisor), kernel)
            .stride(stride)
            .padding(Padding::hw(pad.0, pad.1))
            .no_bias();
        self.g.conv2d(&format!("{name}.conv"), x, c)
    }

    /// `BasicConv2d`'s batch norm (eps 0.001) and ReLU (`name.bn`, `name.relu`) after its
    /// convolution's output `h`.
    fn bn_relu(&mut self, name: &str, h: Value) -> Result<Value> {
        let bn = BatchNorm {
            eps: 1e-3,
            ..BatchNorm::default()
        };
        let h = self.g.batch_norm(&format!("{name}.bn"), h, bn)?;
        self.g.unary(&format!("{name}.relu"), UnaryOp::Relu, h)
    }

    /// Max pooling 3×3, stride 2, no padding (`nn.MaxPool2d(3, 2)`, `F.max_pool2d(x, 3, 2)`).
    fn max_pool(&mut self, name: &str, x: Value) -> Result<Value> {
        self.g.pool(name, x, Pool2d::max((3, 3), (2, 2)))
    }

    /// `F.avg_pool2d(x, 3, stride=1, padding=1)` then the `branch_pool` 1×1 convolution to `out`
    /// (then its batch norm and ReLU), computed the other way round: the convolution, then the
    /// average. Both are linear and the convolution has no bias, so they commute (the same
    /// function up to rounding, the same weights); the average then runs on `out` channels (32 to
    /// 192) instead of the block input's (192 to 2,048), and no pooled copy of the block input is
    /// kept for the convolution's weight gradient, which reads the block input itself.
    fn pool_branch(&mut self, name: &str, x: Value, out: usize) -> Result<Value> {
        let branch = format!("{name}.branch_pool");
        let h = self.conv_only(&branch, x, out, (1, 1), 1, (0, 0))?;
        // PyTorch's default count_include_pad=True: border windows divide by 9 too.
        let avg = Pool2d::avg((3, 3), (1, 1), true).padding(Padding::symmetric(1));
        let h = self.g.pool(&format!("{name}.avg_pool"), h, avg)?;
        self.bn_relu(&branch, h)
    }

    fn concat(&mut self, name: &str, xs: &[Value]) -> Result<Value> {
        self.g.concat(name, xs, Concat::CHANNELS)
    }

    /// `InceptionA`: 1×1, 5×5, double 3×3 and pooling branches (35×35 at 299×299).
    fn inception_a(&mut self, name: &str, x: Value, pool_features: usize) -> Result<Value> {
        let n = |part: &str| format!("{name}.{part}");
        let b1 = self.conv(&n("branch1x1"), x, 64, (1, 1), 1, (0, 0))?;
        let b5 = self.conv(&n("branch5x5_1"), x, 48, (1, 1), 1, (0, 0))?;
        let b5 = self.conv(&n("branch5x5_2"), b5, 64, (5, 5), 1, (2, 2))?;
        let b3 = self.conv(&n("branch3x3dbl_1"), x, 64, (1, 1), 1, (0, 0))?;
        let b3 = self.conv(&n("branch3x3dbl_2"), b3, 96, (3, 3), 1, (1, 1))?;
        let b3 = self.conv(&n("branch3x3dbl_3"), b3, 96, (3, 3), 1, (1, 1))?;
        let bp = self.pool_branch(name, x, pool_features)?;
        self.concat(name, &[b1, b5, b3, bp])
    }

    /// `InceptionB`: the grid reduction 35 → 17 (strided 3×3, double 3×3, max pooling).
    fn inception_b(&mut self, name: &str, x: Value) -> Result<Value> {
        let n = |part: &str| format!("{name}.{part}");
        let b3 = self.conv(&n("branch3x3"), x, 384, (3, 3), 2, (0, 0))?;
        let bd = self.conv(&n("branch3x3dbl_1"), x, 64, (1, 1), 1, (0, 0))?;
        let bd = self.conv(&n("branch3x3dbl_2"), bd, 96, (3, 3), 1, (1, 1))?;
        let bd = self.conv(&n("branch3x3dbl_3"), bd, 96, (3, 3), 2, (0, 0))?;
        let bp = self.max_pool(&n("max_pool"), x)?;
        self.concat(name, &[b3, bd, bp])
    }

    /// `InceptionC`: the factorised 7×7 branches (1×7 and 7×1) with `c7` inner channels.
    fn inception_c(&mut self, name: &str, x: Value, c7: usize) -> Result<Value> {
        let n = |part: &str| format!("{name}.{part}");
        let (row, col) = (((1, 7), (0, 3)), ((7, 1), (3, 0)));
        let b1 = self.conv(&n("branch1x1"), x, 192, (1, 1), 1, (0, 0))?;
        let b7 = self.conv(&n("branch7x7_1"), x, c7, (1, 1), 1, (0, 0))?;
        let b7 = self.conv(&n("branch7x7_2"), b7, c7, row.0, 1, row.1)?;
        let b7 = self.conv(&n("branch7x7_3"), b7, 192, col.0, 1, col.1)?;
        let bd = self.conv(&n("branch7x7dbl_1"), x, c7, (1, 1), 1, (0, 0))?;
        let bd = self.conv(&n("branch7x7dbl_2"), bd, c7, col.0, 1, col.1)?;
        let bd = self.conv(&n("branch7x7dbl_3"), bd, c7, row.0, 1, row.1)?;
        let bd = self.conv(&n("branch7x7dbl_4"), bd, c7, col.0, 1, col.1)?;
        let bd = self.conv(&n("branch7x7dbl_5"), bd, 192, row.0, 1, row.1)?;
        let bp = self.pool_branch(name, x, 192)?;
        self.concat(name, &[b1, b7, bd, bp])
    }

    /// `InceptionD`: the grid reduction 17 → 8.
    fn inception_d(&mut self, name: &str, x: Value) -> Result<Value> {
        let n = |part: &str| format!("{name}.{part}");
        let b3 = self.conv(&n("branch3x3_1"), x, 192, (1, 1), 1, (0, 0))?;
        let b3 = self.conv(&n("branch3x3_2"), b3, 320, (3, 3), 2, (0, 0))?;
        let b7 = self.conv(&n("branch7x7x3_1"), x, 192, (1, 1), 1, (0, 0))?;
        let b7 = self.conv(&n("branch7x7x3_2"), b7, 192, (1, 7), 1, (0, 3))?;
        let b7 = self.conv(&n("branch7x7x3_3"), b7, 192, (7, 1), 1, (3, 0))?;
        let b7 = self.conv(&n("branch7x7x3_4"), b7, 192, (3, 3), 2, (0, 0))?;
        let bp = self.max_pool(&n("max_pool"), x)?;
        self.concat(name, &[b3, b7, bp])
    }

    /// `InceptionE`: the expanded 8×8 block, its 3×3 branches split into 1×3 and 3×1 halves.
    /// torchvision concatenates each pair of halves, then the four branches; one concat of all
    /// six is the same tensor, without the pairs' copies (and their outputs kept for the
    /// halves' ReLU masks, which the one concat's gradient reads from its own output).
    fn inception_e(&mut self, name: &str, x: Value) -> Result<Value> {
        let n = |part: &str| format!("{name}.{part}");
        let (row, col) = (((1, 3), (0, 1)), ((3, 1), (1, 0)));
        let b1 = self.conv(&n("branch1x1"), x, 320, (1, 1), 1, (0, 0))?;
        let b3 = self.conv(&n("branch3x3_1"), x, 384, (1, 1), 1, (0, 0))?;
        let b3a = self.conv(&n("branch3x3_2a"), b3, 384, row.0, 1, row.1)?;
        let b3b = self.conv(&n("branch3x3_2b"), b3, 384, col.0, 1, col.1)?;
        let bd = self.conv(&n("branch3x3dbl_1"), x, 448, (1, 1), 1, (0, 0))?;
        let bd = self.conv(&n("branch3x3dbl_2"), bd, 384, (3, 3), 1, (1, 1))?;
        let bda = self.conv(&n("branch3x3dbl_3a"), bd, 384, row.0, 1, row.1)?;
        let bdb = self.conv(&n("branch3x3dbl_3b"), bd, 384, col.0, 1, col.1)?;
        let bp = self.pool_branch(name, x, 192)?;
        self.concat(name, &[b1, b3a, b3b, bda, bdb, bp])
    }
}
