//! One random builder call per op family (and raw ops through `Graph::add`), with attributes from
//! `Prog`'s small-or-hostile draws. Every call is logged with its outcome.

use wgtrain::graph::{Op, Value};
use wgtrain::ops::conv::{ConvKind, ConvOp};
use wgtrain::ops::dense::DenseOp;
use wgtrain::ops::dropout::DropoutOp;
use wgtrain::ops::elementwise::ElementwiseOp;
use wgtrain::ops::loss::LossOp;
use wgtrain::ops::matmul::MatMulOp;
use wgtrain::ops::norm::NormOp;
use wgtrain::ops::norm::gpu::Norm;
use wgtrain::ops::pool::PoolOp;
use wgtrain::ops::prelu::{PRelu, PReluOp};
use wgtrain::ops::recurrent::{Recurrent, RecurrentOp};
use wgtrain::ops::reduce::{ReduceKind, ReduceOp};
use wgtrain::ops::shape::{PadMode, ShapeOp, SliceRange, UpsampleMode, UpsampleSize};
use wgtrain::ops::softmax::SoftmaxOp;
use wgtrain::*;

use super::Prog;

const UNARY: &[UnaryOp] = &[
    UnaryOp::Relu,
    UnaryOp::Sigmoid,
    UnaryOp::Tanh,
    UnaryOp::Exp,
    UnaryOp::Log,
    UnaryOp::Sqrt,
    UnaryOp::Abs,
    UnaryOp::Gelu,
    UnaryOp::Silu,
    UnaryOp::Recip,
    UnaryOp::LeakyRelu { alpha: 0.1 },
    UnaryOp::Elu { alpha: f32::NAN },
    UnaryOp::ReluN { n: f32::INFINITY },
    UnaryOp::Linear { a: -1.0, b: 2.0 },
    UnaryOp::HardSigmoid { a: 0.2, b: 0.5 },
];

const BINARY: &[BinaryOp] = &[
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Max,
    BinaryOp::Min,
];

impl Prog {
    fn pair(&mut self) -> (usize, usize) {
        (self.attr(), self.attr())
    }

    fn padding(&mut self) -> Padding {
        match self.rng.below(4) {
            0 => Padding::Valid,
            1 => Padding::Same,
            _ => Padding::Explicit {
                top: self.attr().saturating_sub(1),
                bottom: self.attr().saturating_sub(1),
                left: self.attr().saturating_sub(1),
                right: self.attr().saturating_sub(1),
            },
        }
    }

    fn conv2d(&mut self, channels: usize) -> Conv2d {
        Conv2d {
            in_channels: if self.rng.percent(85) {
                channels
            } else {
                self.attr()
            },
            out_channels: self.attr(),
            kernel: self.pair(),
            stride: self.pair(),
            dilation: self.pair(),
            groups: if self.rng.percent(80) { 1 } else { self.attr() },
            padding: self.padding(),
            bias: self.rng.bool(),
        }
    }

    fn conv_kind(&mut self, s: &[usize]) -> ConvKind {
        let c = s.get(1).copied().unwrap_or(1);
        let d2 = self.conv2d(c);
        let p1 = match d2.padding {
            Padding::Valid => wgtrain::ops::conv::Padding1d::Valid,
            Padding::Same => wgtrain::ops::conv::Padding1d::Same,
            Padding::Explicit { left, right, .. } => {
                wgtrain::ops::conv::Padding1d::Explicit { left, right }
            }
        };
        let op_pad = if self.rng.percent(80) { 0 } else { self.attr() };
        match self.rng.below(4) {
            0 => ConvKind::D2(d2),
            1 => ConvKind::D1(Conv1d {
                in_channels: d2.in_channels,
                out_channels: d2.out_channels,
                kernel: d2.kernel.1,
                stride: d2.stride.1,
                dilation: d2.dilation.1,
                groups: d2.groups,
                padding: p1,
                bias: d2.bias,
            }),
            2 => ConvKind::T2(ConvTranspose2d {
                in_channels: d2.in_channels,
                out_channels: d2.out_channels,
                kernel: d2.kernel,
                stride: d2.stride,
                dilation: d2.dilation,
                groups: d2.groups,
                padding: d2.padding,
                output_padding: (op_pad, 0),
                bias: d2.bias,
            }),
            _ => ConvKind::T1(ConvTranspose1d {
                in_channels: d2.in_channels,
                out_channels: d2.out_channels,
                kernel: d2.kernel.1,
                stride: d2.stride.1,
                dilation: d2.dilation.1,
                groups: d2.groups,
                padding: p1,
                output_padding: op_pad,
                bias: d2.bias,
            }),
        }
    }

    fn pool2d(&mut self) -> Pool2d {
        Pool2d {
            kind: match self.rng.below(3) {
                0 => PoolKind::Max,
                1 => PoolKind::Avg {
                    count_include_pad: true,
                },
                _ => PoolKind::Avg {
                    count_include_pad: false,
                },
            },
            kernel: self.pair(),
            stride: self.pair(),
            dilation: if self.rng.percent(70) {
                (1, 1)
            } else {
                self.pair()
            },
            padding: self.padding(),
        }
    }

    fn loss_op(&mut self, classes: usize) -> Loss {
        let weights = |p: &mut Prog| {
            p.rng.percent(30).then(|| {
                let n = if p.rng.percent(80) {
                    classes.min(64)
                } else {
                    p.rng.below(5)
                };
                vec![if p.rng.percent(90) { 1.0 } else { f32::NAN }; n]
            })
        };
        let ls = if self.rng.percent(90) { 0.1 } else { 2.0 };
        let kind = match self.rng.below(9) {
            0 => LossKind::SoftmaxCrossEntropy {
                label_smoothing: ls,
                class_weights: weights(self),
            },
            1 => LossKind::SigmoidCrossEntropy {
                label_smoothing: ls,
            },
            2 => LossKind::CategoricalCrossEntropy {
                label_smoothing: ls,
                class_weights: weights(self),
            },
            3 => LossKind::MeanSquaredError,
            4 => LossKind::MeanAbsoluteError,
            5 => LossKind::Huber {
                delta: if self.rng.percent(90) { 1.0 } else { -1.0 },
            },
            6 => LossKind::Hinge,
            7 => LossKind::kl_div(false),
            _ => LossKind::CosineDistance,
        };
        let reduction = self.rng.pick(&[
            Reduction::None,
            Reduction::Sum,
            Reduction::Mean,
            Reduction::SumByNonZeroWeights,
        ]);
        Loss { kind, reduction }
    }

    fn slice(&mut self, s: &[usize]) -> Slice {
        let rank = if self.rng.percent(90) {
            s.len()
        } else {
            self.rng.below(5)
        };
        let ranges = (0..rank)
            .map(|k| {
                let d = s.get(k).copied().unwrap_or(1);
                let start = if self.rng.percent(80) {
                    self.rng.below(d.clamp(1, 4))
                } else {
                    self.attr()
                };
                let end = if self.rng.percent(80) { d } else { self.dim() };
                SliceRange {
                    start,
                    end,
                    step: self.attr(),
                }
            })
            .collect();
        Slice { ranges }
    }

    fn pad(&mut self, rank: usize) -> Pad {
        let rank = if self.rng.percent(90) {
            rank
        } else {
            self.rng.below(5)
        };
        let mut v = || -> Vec<usize> { (0..rank).map(|_| self.attr().saturating_sub(1)).collect() };
        let before = v();
        let after = v();
        Pad {
            before,
            after,
            mode: if self.rng.bool() {
                PadMode::Zero
            } else {
                PadMode::Edge
            },
        }
    }

    fn upsample(&mut self) -> Upsample {
        Upsample {
            mode: if self.rng.bool() {
                UpsampleMode::Nearest
            } else {
                UpsampleMode::Bilinear
            },
            size: if self.rng.bool() {
                UpsampleSize::Scale(self.attr(), self.attr())
            } else {
                UpsampleSize::Size(self.dim(), self.dim())
            },
        }
    }

    fn recurrent(&mut self, input: usize) -> Recurrent {
        Recurrent {
            cell: self
                .rng
                .pick(&[Cell::Lstm, Cell::Gru, Cell::Rnn(UnaryOp::Tanh)]),
            input_size: if self.rng.percent(80) {
                input
            } else {
                self.attr()
            },
            hidden_size: self.attr(),
            bias: self.rng.bool(),
            reverse: self.rng.bool(),
            initial_state: self.rng.bool(),
        }
    }

    /// A raw op of any family (forward or gradient), or a source, for `Graph::add`.
    fn raw_op(&mut self, s: &[usize]) -> Op {
        let rank = s.len();
        let c = s.get(1).copied().unwrap_or(1);
        match self.rng.below(22) {
            0 => Op::Input,
            1 => Op::Param,
            2 => Op::State,
            3 => ElementwiseOp::Unary(self.rng.pick(UNARY)).into(),
            4 => ElementwiseOp::UnaryGrad(self.rng.pick(UNARY)).into(),
            5 => ElementwiseOp::UnaryGradOut(self.rng.pick(UNARY)).into(),
            6 => ElementwiseOp::BinaryGrad(
                self.rng.pick(BINARY),
                self.rng.pick(&[0, 1, 2, 7, usize::MAX]),
            )
            .into(),
            7 => ElementwiseOp::OnesLike.into(),
            8 => MatMulOp {
                ta: self.rng.bool(),
                tb: self.rng.bool(),
            }
            .into(),
            9 => {
                let k = self
                    .rng
                    .pick(&[ReduceKind::Sum, ReduceKind::Mean, ReduceKind::Max]);
                let axis = self.uaxis(rank);
                if self.rng.bool() {
                    ReduceOp::Reduce(k, axis).into()
                } else {
                    ReduceOp::Grad(k, axis).into()
                }
            }
            10 => match self.rng.below(9) {
                0 => ShapeOp::Permute((0..rank).rev().collect()).into(),
                1 => ShapeOp::Reshape(self.shape()).into(),
                2 => ShapeOp::View(self.shape()).into(),
                3 => ShapeOp::ConcatGrad {
                    op: Concat {
                        axis: self.axis(rank),
                    },
                    offset: self.attr(),
                }
                .into(),
                4 => ShapeOp::SliceGrad(self.slice(s)).into(),
                5 => ShapeOp::PadGrad(self.pad(rank)).into(),
                6 => ShapeOp::UpsampleGrad(self.upsample()).into(),
                7 => ShapeOp::Concat(Concat {
                    axis: self.axis(rank),
                })
                .into(),
                _ => ShapeOp::Slice(self.slice(s)).into(),
            },
            11 => {
                let k = self.conv_kind(s);
                match self.rng.below(5) {
                    0 => ConvOp::Forward(k),
                    1 => ConvOp::GradData(k),
                    2 => ConvOp::GradWeight(k),
                    3 => ConvOp::GradWeightBias(k),
                    _ => ConvOp::BiasGrad,
                }
                .into()
            }
            12 => {
                let d = FullyConnected {
                    in_features: self.attr(),
                    out_features: self.attr(),
                    bias: self.rng.bool(),
                };
                match self.rng.below(3) {
                    0 => DenseOp::Forward(d),
                    1 => DenseOp::GradData(d),
                    _ => DenseOp::GradWeight(d),
                }
                .into()
            }
            13 => match self.rng.below(4) {
                0 => PoolOp::Pool(self.pool2d()),
                1 => PoolOp::PoolGrad(self.pool2d()),
                2 => PoolOp::GlobalAvg,
                _ => PoolOp::GlobalAvgGrad,
            }
            .into(),
            14 => {
                let op = BatchNorm {
                    eps: 1e-5,
                    momentum: 0.1,
                };
                let training = self.rng.bool();
                if self.rng.bool() {
                    NormOp::BatchNorm { op, training }.into()
                } else {
                    NormOp::BatchNormGrad { op, training }.into()
                }
            }
            15 => {
                let n = match self.rng.below(3) {
                    0 => Norm::Instance(InstanceNorm { eps: 1e-5 }),
                    1 => Norm::Group(GroupNorm {
                        groups: self.attr(),
                        eps: 1e-5,
                    }),
                    _ => Norm::Layer(LayerNorm {
                        dims: self.attr(),
                        eps: 1e-5,
                    }),
                };
                if self.rng.bool() {
                    NormOp::Norm(n).into()
                } else {
                    NormOp::NormGrad(n).into()
                }
            }
            16 => {
                let op = Dropout {
                    rate: self.rng.pick(&[0.5, 0.0, 1.0, f32::NAN]),
                    seed: 7,
                };
                if self.rng.bool() {
                    DropoutOp::Dropout {
                        op,
                        training: self.rng.bool(),
                    }
                    .into()
                } else {
                    DropoutOp::Grad(op).into()
                }
            }
            17 => {
                let sm = Softmax {
                    axis: self.axis(rank),
                    log: self.rng.bool(),
                };
                if self.rng.bool() {
                    SoftmaxOp::Softmax(sm).into()
                } else {
                    SoftmaxOp::Grad(sm).into()
                }
            }
            18 => {
                let l = self.loss_op(s.iter().skip(1).product::<usize>().max(1));
                if self.rng.bool() {
                    LossOp::Loss(l).into()
                } else {
                    LossOp::Grad(l).into()
                }
            }
            19 => {
                let p = PRelu {
                    num_parameters: if self.rng.bool() { c } else { self.attr() },
                };
                match self.rng.below(3) {
                    0 => PReluOp::Forward(p),
                    1 => PReluOp::GradInput(p),
                    _ => PReluOp::GradWeight(p),
                }
                .into()
            }
            _ => {
                let r = self.recurrent(s.get(2).copied().unwrap_or(1));
                if self.rng.bool() {
                    RecurrentOp::Forward(r).into()
                } else {
                    RecurrentOp::Backward {
                        op: r,
                        dy: self.rng.bool(),
                        dh_n: self.rng.bool(),
                        dc_n: self.rng.bool(),
                    }
                    .into()
                }
            }
        }
    }

    /// One random builder call.
    pub fn step(&mut self) {
        let name = self.name();
        let (x, s) = self.value_of_rank(None);
        let rank = s.len();
        let action = self.rng.below(27);
        // Logged first, so a hang shows the call it hung in.
        self.say(format!("  (action {action} on {x:?} {s:?})"));
        match action {
            0 | 1 => {
                let shape = self.shape();
                let r = match self.rng.below(4) {
                    0 => self.g.input(&name, &shape),
                    1 => self.g.param(&name, &shape),
                    2 => self.g.state(&name, &shape),
                    _ => self.g.input_u32(&name, &shape),
                };
                self.record(
                    format!("{name} = source#{} {shape:?}", self.g.nodes.len()),
                    r,
                );
            }
            2 => {
                let u = self.rng.pick(UNARY);
                let r = self.g.unary(&name, u, x);
                self.record(format!("{name} = unary({u:?}, {x:?})"), r);
            }
            3 => {
                let b = self.rng.pick(BINARY);
                let y = if self.compat() {
                    // Broadcastable: x's shape, its suffix, or with some dims 1.
                    let mut t: Vec<usize> =
                        s[self.rng.below(s.len().max(1)).min(s.len())..].to_vec();
                    for d in t.iter_mut() {
                        if self.rng.percent(30) {
                            *d = 1;
                        }
                    }
                    if t.is_empty() {
                        t.push(1);
                    }
                    let param = self.rng.bool();
                    self.source(&t, param)
                } else {
                    self.value()
                };
                let r = self.g.binary(&name, b, x, y);
                self.record(format!("{name} = binary({b:?}, {x:?}, {y:?})"), r);
            }
            4 => {
                let y = if self.compat() && rank >= 2 {
                    let k = self.attr();
                    self.source(&[s[rank - 1], k], true)
                } else {
                    self.value()
                };
                let r = self.g.matmul(&name, x, y);
                self.record(format!("{name} = matmul({x:?}, {y:?})"), r);
            }
            5 => {
                let axis = self.uaxis(rank);
                let r = match self.rng.below(3) {
                    0 => self.g.sum(&name, x, axis),
                    1 => self.g.mean(&name, x, axis),
                    _ => self.g.max(&name, x, axis),
                };
                self.record(format!("{name} = reduce({x:?}, axis {axis})"), r);
            }
            6 => {
                let mut perm: Vec<usize> = (0..rank).collect();
                for i in (1..perm.len()).rev() {
                    perm.swap(i, self.rng.below(i + 1));
                }
                if self.hostile && self.rng.percent(20) {
                    perm.push(self.rng.pick(&[0, rank, usize::MAX]));
                }
                let r = self.g.permute(&name, x, &perm);
                self.record(format!("{name} = permute({x:?}, {perm:?})"), r);
            }
            7 => {
                let rest = if self.rng.percent(50) {
                    vec![s.iter().skip(1).product::<usize>()]
                } else {
                    self.shape()
                };
                let r = self.g.reshape(&name, x, &rest);
                self.record(format!("{name} = reshape({x:?}, {rest:?})"), r);
            }
            8 => {
                let r = self.g.flatten(&name, x);
                self.record(format!("{name} = flatten({x:?})"), r);
            }
            9 => {
                let mut xs = vec![x];
                for _ in 0..self.rng.below(3) {
                    xs.push(if self.rng.bool() { x } else { self.value() });
                }
                if self.hostile && self.rng.percent(5) {
                    xs.clear();
                }
                let axis = self.axis(rank);
                let r = self.g.concat(&name, &xs, Concat { axis });
                self.record(format!("{name} = concat({xs:?}, axis {axis})"), r);
            }
            10 => {
                let op = self.slice(&s);
                let r = self.g.slice(&name, x, op.clone());
                self.record(format!("{name} = slice({x:?}, {op:?})"), r);
            }
            11 => {
                let op = self.pad(rank);
                let r = self.g.pad(&name, x, op.clone());
                self.record(format!("{name} = pad({x:?}, {op:?})"), r);
            }
            12 => {
                let op = self.upsample();
                let r = self.g.upsample(&name, x, op);
                self.record(format!("{name} = upsample({x:?}, {op:?})"), r);
            }
            13 | 14 => {
                let rank = if self.rng.bool() { 4 } else { 3 };
                let (x, s) = self.of_rank(rank);
                let k = self.conv_kind(&s);
                let r = self.g.conv(&name, x, k);
                self.record(format!("{name} = conv({x:?}, {k:?})"), r);
            }
            15 => {
                let inf = if self.rng.percent(80) {
                    s.iter().skip(1).product::<usize>()
                } else {
                    self.attr()
                };
                let op = FullyConnected {
                    in_features: inf,
                    out_features: self.attr(),
                    bias: self.rng.bool(),
                };
                let r = self.g.dense(&name, x, op);
                self.record(format!("{name} = dense({x:?}, {op:?})"), r);
            }
            16 => {
                let (x, _) = self.of_rank(4);
                let r = if self.rng.percent(80) {
                    let op = self.pool2d();
                    let r = self.g.pool(&name, x, op);
                    self.say(format!("pool {op:?}"));
                    r
                } else {
                    self.g.global_avg_pool(&name, x)
                };
                self.record(format!("{name} = pool({x:?})"), r);
            }
            17 => {
                let eps = if self.rng.percent(90) { 1e-5 } else { f32::NAN };
                let (k, momentum) = (self.attr(), self.rng.pick(&[0.1, 2.0]));
                let r = match self.rng.below(4) {
                    0 => self.g.batch_norm(&name, x, BatchNorm { eps, momentum }),
                    1 => self.g.instance_norm(&name, x, InstanceNorm { eps }),
                    2 => self.g.group_norm(&name, x, GroupNorm { groups: k, eps }),
                    _ => self.g.layer_norm(&name, x, LayerNorm { dims: k, eps }),
                };
                self.record(format!("{name} = norm({x:?}, eps {eps})"), r);
            }
            18 => {
                let rate = self.rng.pick(&[0.5, 0.0, 0.9, 1.0, -0.5, f32::NAN]);
                let r = self.g.dropout(
                    &name,
                    x,
                    Dropout {
                        rate,
                        seed: self.rng.next(),
                    },
                );
                self.record(format!("{name} = dropout({x:?}, rate {rate})"), r);
            }
            19 => {
                let op = Softmax {
                    axis: self.axis(rank),
                    log: self.rng.bool(),
                };
                let r = self.g.softmax(&name, x, op);
                self.record(format!("{name} = softmax({x:?}, {op:?})"), r);
            }
            20 => {
                let n = s.first().copied().unwrap_or(1);
                let (labels, weights) = if self.compat() {
                    let labels = if self.rng.bool() {
                        self.source(&s, false)
                    } else {
                        self.labels(&[n])
                    };
                    (
                        labels,
                        self.rng.percent(30).then(|| self.source(&[n], false)),
                    )
                } else {
                    (self.value(), self.rng.percent(30).then(|| self.value()))
                };
                let op = self.loss_op(s.iter().skip(1).product::<usize>().max(1));
                let r = self.g.loss(&name, x, labels, weights, op.clone());
                self.record(
                    format!("{name} = loss({x:?}, {labels:?}, {weights:?}, {op:?})"),
                    r,
                );
            }
            21 => {
                let n = if self.rng.percent(70) {
                    s.get(1).copied().unwrap_or(1)
                } else {
                    self.attr()
                };
                let r = self.g.prelu(&name, x, PRelu { num_parameters: n });
                self.record(format!("{name} = prelu({x:?}, {n})"), r);
            }
            22 => {
                let (x, _) = self.of_rank(3);
                // Around the layer limit, not at it: a stack of 2^16 layers builds (linearly), but
                // slowly for a fuzzer.
                let count = if self.hostile {
                    self.rng.pick(&[
                        0,
                        1,
                        2,
                        3,
                        wgtrain::ops::recurrent::MAX_LAYERS + 1,
                        usize::MAX,
                    ])
                } else {
                    1 + self.rng.below(2)
                };
                let mut layers = RecurrentLayers::new(self.attr()).layers(count);
                if self.rng.bool() {
                    layers = layers.bidirectional(if self.rng.bool() {
                        Merge::Concat
                    } else {
                        Merge::Sum
                    });
                }
                if self.rng.bool() {
                    layers = layers.with_initial_state();
                }
                if self.rng.bool() {
                    layers = layers.without_bias();
                }
                let r = match self.rng.below(3) {
                    0 => self.g.lstm(&name, x, layers),
                    1 => self.g.gru(&name, x, layers),
                    _ => self.g.rnn(&name, UnaryOp::Tanh, x, layers),
                };
                self.record(
                    format!("{name} = recurrent({x:?}, {layers:?})"),
                    r.map(|o| o.y),
                );
            }
            23 => {
                let r = if self.rng.bool() {
                    self.g.image_to_sequence(&name, x)
                } else {
                    self.g.sequence_to_image(&name, x)
                };
                self.record(format!("{name} = image<->sequence({x:?})"), r);
            }
            26 => self.weird(),
            _ => {
                let op = self.raw_op(&s);
                let count = if self.rng.percent(70) {
                    self.rng.below(4) + 1
                } else {
                    self.rng.below(9)
                };
                let ins: Vec<Value> = (0..count)
                    .map(|k| if k == 0 { x } else { self.value() })
                    .collect();
                let r = self.g.add(&name, op.clone(), &ins);
                self.record(format!("{name} = add({op:?}, {ins:?})"), r);
            }
        }
    }
}
