//! Graph ops with weights or windows — convolutions, fully connected, pooling — and their gradient
//! ops: shape inference, lowering, CPU reference and vjp rule, side by side per variant.

use super::op::Out;
use super::{Graph, Op, Value};
use crate::error::{Error, Result};
use crate::kernels::elementwise::UnaryOp;
use crate::kernels::{Launch, conv, dense, pool};
use crate::ops::conv::{Conv1d, Conv2d, ConvOp, ConvTranspose1d, ConvTranspose2d};
use crate::ops::dense::FullyConnected;
use crate::ops::pool::{GlobalAvgPool, Pool2d, PoolKind};
use crate::reference::{self, Array};
use crate::tensor::{DType, Tensor};

/// Any of the four convolutions (they share kernels through `ConvOp`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConvKind {
    D2(Conv2d),
    D1(Conv1d),
    T2(ConvTranspose2d),
    T1(ConvTranspose1d),
}

impl ConvKind {
    pub fn op(&self) -> &dyn ConvOp {
        match self {
            ConvKind::D2(c) => c,
            ConvKind::D1(c) => c,
            ConvKind::T2(c) => c,
            ConvKind::T1(c) => c,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// `[x, w, b?] -> y`
    Conv(ConvKind),
    /// `[w, dy, x] -> dx` (x only for its shape)
    ConvGradData(ConvKind),
    /// `[x, dy] -> dw`
    ConvGradWeight(ConvKind),
    /// `[dy] -> db`: dy summed over every axis but 1 (channels / features)
    BiasGrad,
    /// `[x, w, b?] -> y`
    Dense(FullyConnected),
    /// `[w, dy, x] -> dx`
    DenseGradData(FullyConnected),
    /// `[x, dy] -> dw`
    DenseGradWeight(FullyConnected),
    /// `[x] -> (y, argmax state for max pooling)`
    Pool(Pool2d),
    /// `[dy, x, argmax?] -> dx`
    PoolGrad(Pool2d),
    /// `[x] -> y (N, C, 1, 1)`
    GlobalAvgPool,
    /// `[dy, x] -> dx`
    GlobalAvgPoolGrad,
}

fn f32(s: Vec<usize>) -> Out {
    (s, DType::F32)
}

fn arity(op: &str, ins: &[&[usize]], lo: usize, hi: usize) -> Result<()> {
    if ins.len() < lo || ins.len() > hi {
        return Err(Error::Shape {
            op: op.into(),
            msg: format!("takes {lo}..={hi} inputs, got {}", ins.len()),
        });
    }
    Ok(())
}

fn check_bias(op: &str, has: bool, ins: &[&[usize]], channels: usize) -> Result<()> {
    match (has, ins.get(2)) {
        (true, Some(b)) if *b == [channels] => Ok(()),
        (true, Some(b)) => Err(Error::Shape {
            op: op.into(),
            msg: format!("bias {b:?}, expected [{channels}]"),
        }),
        (true, None) => Err(Error::Shape {
            op: op.into(),
            msg: "the op has a bias but none was given".into(),
        }),
        (false, Some(_)) => Err(Error::Shape {
            op: op.into(),
            msg: "a bias was given to an op without one".into(),
        }),
        (false, None) => Ok(()),
    }
}

fn same(op: &str, what: &str, got: &[usize], want: &[usize]) -> Result<()> {
    if got != want {
        return Err(Error::Shape {
            op: op.into(),
            msg: format!("{what} {got:?}, expected {want:?}"),
        });
    }
    Ok(())
}

impl Layer {
    pub fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        Ok(match self {
            Layer::Conv(k) => {
                let c = k.op();
                arity(c.name(), ins, 2, 3)?;
                same(c.name(), "weight", ins[1], &c.weight_shape())?;
                check_bias(c.name(), c.has_bias(), ins, c.out_channels())?;
                vec![f32(c.out_shape(ins[0])?)]
            }
            Layer::ConvGradData(k) => {
                let c = k.op();
                arity(c.name(), ins, 3, 3)?;
                same(c.name(), "output gradient", ins[1], &c.out_shape(ins[2])?)?;
                vec![f32(ins[2].to_vec())]
            }
            Layer::ConvGradWeight(k) => {
                let c = k.op();
                arity(c.name(), ins, 2, 2)?;
                same(c.name(), "output gradient", ins[1], &c.out_shape(ins[0])?)?;
                vec![f32(c.weight_shape())]
            }
            Layer::BiasGrad => {
                arity("bias gradient", ins, 1, 1)?;
                if ins[0].len() < 2 {
                    return Err(Error::Shape {
                        op: "bias gradient".into(),
                        msg: format!("dy {:?} has no channel axis", ins[0]),
                    });
                }
                vec![f32(vec![ins[0][1]])]
            }
            Layer::Dense(d) => {
                arity("fully_connected", ins, 2, 3)?;
                same("fully_connected", "weight", ins[1], &d.weight_shape())?;
                check_bias("fully_connected", d.bias, ins, d.out_features)?;
                vec![f32(d.out_shape(ins[0])?)]
            }
            Layer::DenseGradData(d) => {
                arity("fully_connected", ins, 3, 3)?;
                same(
                    "fully_connected",
                    "output gradient",
                    ins[1],
                    &d.out_shape(ins[2])?,
                )?;
                vec![f32(ins[2].to_vec())]
            }
            Layer::DenseGradWeight(d) => {
                arity("fully_connected", ins, 2, 2)?;
                same(
                    "fully_connected",
                    "output gradient",
                    ins[1],
                    &d.out_shape(ins[0])?,
                )?;
                vec![f32(d.weight_shape())]
            }
            Layer::Pool(p) => {
                arity(p.name(), ins, 1, 1)?;
                let out = p.out_shape(ins[0])?;
                let mut outs = vec![f32(out.clone())];
                if p.kind == PoolKind::Max {
                    outs.push((out, DType::U32));
                }
                outs
            }
            Layer::PoolGrad(p) => {
                arity(p.name(), ins, 2, 3)?;
                same(p.name(), "output gradient", ins[0], &p.out_shape(ins[1])?)?;
                vec![f32(ins[1].to_vec())]
            }
            Layer::GlobalAvgPool => {
                arity("global_avg_pool", ins, 1, 1)?;
                vec![f32(GlobalAvgPool.out_shape(ins[0])?)]
            }
            Layer::GlobalAvgPoolGrad => {
                arity("global_avg_pool", ins, 2, 2)?;
                same(
                    "global_avg_pool",
                    "output gradient",
                    ins[0],
                    &GlobalAvgPool.out_shape(ins[1])?,
                )?;
                vec![f32(ins[1].to_vec())]
            }
        })
    }

    /// Lowers to launches; `post` (convolutions and fully connected only) is a neuron fused into
    /// the GEMM epilogue.
    pub fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        post: &[UnaryOp],
    ) -> Result<conv::Prepared> {
        let fused = post.first().copied();
        if post.len() > 1 || (fused.is_some() && !matches!(self, Layer::Conv(_) | Layer::Dense(_)))
        {
            return Err(Error::Invalid(format!(
                "{self:?} cannot take the fused post-ops {post:?}"
            )));
        }
        let one = |l: Launch| conv::Prepared {
            launches: vec![l],
            scratch: vec![],
        };
        Ok(match self {
            Layer::Conv(k) => conv::forward_post_launches(
                k.op(),
                ins[0],
                ins[1],
                ins.get(2).copied(),
                outs[0],
                fused,
            )?,
            Layer::ConvGradData(k) => {
                conv::backward_data_launches(k.op(), ins[2].shape(), ins[0], ins[1], outs[0])?
            }
            Layer::ConvGradWeight(k) => {
                conv::backward_weights_launches(k.op(), ins[0], ins[1], outs[0])?
            }
            Layer::BiasGrad => one(conv::bias_grad_launch(ins[0], outs[0])?),
            Layer::Dense(d) => dense::forward_post_launches(
                d,
                ins[0],
                ins[1],
                ins.get(2).copied(),
                outs[0],
                fused,
            )?,
            Layer::DenseGradData(d) => one(dense::backward_data_launch(
                d,
                ins[2].shape(),
                ins[0],
                ins[1],
                outs[0],
            )?),
            Layer::DenseGradWeight(d) => {
                one(dense::backward_weights_launch(d, ins[0], ins[1], outs[0])?)
            }
            Layer::Pool(p) => one(pool::forward_launch(
                p,
                ins[0],
                outs[0],
                outs.get(1).copied(),
            )?),
            Layer::PoolGrad(p) => one(pool::backward_launch(
                p,
                ins[1].shape(),
                ins[0],
                ins.get(2).copied(),
                outs[0],
            )?),
            Layer::GlobalAvgPool => one(pool::global_avg_forward_launch(
                &GlobalAvgPool,
                ins[0],
                outs[0],
            )?),
            Layer::GlobalAvgPoolGrad => one(pool::global_avg_backward_launch(
                &GlobalAvgPool,
                ins[1].shape(),
                ins[0],
                outs[0],
            )?),
        })
    }

    /// CPU reference (u32 states as f64 indices).
    pub fn eval_reference(&self, ins: &[&Array]) -> Result<Vec<Array>> {
        Ok(match self {
            Layer::Conv(k) => vec![reference::conv::forward(
                k.op(),
                ins[0],
                ins[1],
                ins.get(2).copied(),
            )?],
            Layer::ConvGradData(k) => vec![reference::conv::backward_data(
                k.op(),
                &ins[2].shape,
                ins[0],
                ins[1],
            )?],
            Layer::ConvGradWeight(k) => {
                vec![reference::conv::backward_weights(k.op(), ins[0], ins[1])?]
            }
            Layer::BiasGrad => {
                let dy = ins[0];
                let (n, c) = (dy.shape[0], dy.shape[1]);
                let inner = dy.len() / (n * c);
                let mut db = Array::zeros(&[c]);
                for (i, v) in dy.data.iter().enumerate() {
                    db.data[(i / inner) % c] += v;
                }
                vec![db]
            }
            Layer::Dense(d) => vec![reference::dense::forward(
                d,
                ins[0],
                ins[1],
                ins.get(2).copied(),
            )?],
            Layer::DenseGradData(d) => vec![reference::dense::backward_data(
                d,
                &ins[2].shape,
                ins[0],
                ins[1],
            )?],
            Layer::DenseGradWeight(d) => {
                vec![reference::dense::backward_weights(d, ins[0], ins[1])?]
            }
            Layer::Pool(p) => {
                let (y, arg) = reference::pool::forward(p, ins[0])?;
                let mut outs = vec![y.clone()];
                if let Some(a) = arg {
                    outs.push(Array::new(&y.shape, a.iter().map(|&i| i as f64).collect()));
                }
                outs
            }
            Layer::PoolGrad(p) => {
                let arg: Option<Vec<usize>> = ins
                    .get(2)
                    .map(|a| a.data.iter().map(|&v| v as usize).collect());
                vec![reference::pool::backward(
                    p,
                    &ins[1].shape,
                    ins[0],
                    arg.as_deref(),
                )?]
            }
            Layer::GlobalAvgPool => {
                vec![reference::pool::global_avg_forward(&GlobalAvgPool, ins[0])?]
            }
            Layer::GlobalAvgPoolGrad => {
                vec![reference::pool::global_avg_backward(
                    &GlobalAvgPool,
                    &ins[1].shape,
                    ins[0],
                )?]
            }
        })
    }

    /// The vjp rule: gradients of the inputs of node `node` (this layer) given `dy`.
    pub fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        let x = g.nodes[node].inputs.clone();
        let base = format!("grad/{}", g.nodes[node].name);
        let mut d = |k: usize, l: Layer, ins: &[Value]| -> Result<Option<Value>> {
            let name = g.fresh(format!("{base}/d{k}"));
            g.add(&name, Op::Layer(l), ins).map(Some)
        };
        Ok(match self {
            Layer::Conv(k) => {
                let mut v = vec![
                    d(0, Layer::ConvGradData(*k), &[x[1], dy, x[0]])?,
                    d(1, Layer::ConvGradWeight(*k), &[x[0], dy])?,
                ];
                if x.len() == 3 {
                    v.push(d(2, Layer::BiasGrad, &[dy])?);
                }
                v
            }
            Layer::Dense(f) => {
                let mut v = vec![
                    d(0, Layer::DenseGradData(*f), &[x[1], dy, x[0]])?,
                    d(1, Layer::DenseGradWeight(*f), &[x[0], dy])?,
                ];
                if x.len() == 3 {
                    v.push(d(2, Layer::BiasGrad, &[dy])?);
                }
                v
            }
            Layer::Pool(p) => {
                let mut ins = vec![dy, x[0]];
                if p.kind == PoolKind::Max {
                    ins.push(Value { node, port: 1 });
                }
                vec![d(0, Layer::PoolGrad(*p), &ins)?]
            }
            Layer::GlobalAvgPool => vec![d(0, Layer::GlobalAvgPoolGrad, &[dy, x[0]])?],
            _ => {
                return Err(Error::Invalid(format!(
                    "node {:?}: {self:?} has no gradient (second derivatives are not supported)",
                    g.nodes[node].name
                )));
            }
        })
    }
}

/// Builder methods for layers; weights are `param` nodes named `<name>.weight` / `<name>.bias`
/// (PyTorch's state-dict names and layouts: OIHW, (out, in)).
impl Graph {
    fn with_params(
        &mut self,
        name: &str,
        layer: Layer,
        x: Value,
        w_shape: Vec<usize>,
        bias: Option<usize>,
    ) -> Result<Value> {
        let w = self.param(&format!("{name}.weight"), &w_shape)?;
        let mut ins = vec![x, w];
        if let Some(c) = bias {
            ins.push(self.param(&format!("{name}.bias"), &[c])?);
        }
        self.add(name, Op::Layer(layer), &ins)
    }

    /// A convolution of any kind with its own weight (and bias) parameters.
    pub fn conv(&mut self, name: &str, x: Value, kind: ConvKind) -> Result<Value> {
        let c = kind.op();
        c.out_shape(self.shape(x)).map_err(|e| Error::Shape {
            op: format!("node {name:?}"),
            msg: e.to_string(),
        })?;
        let bias = c.has_bias().then(|| c.out_channels());
        self.with_params(name, Layer::Conv(kind), x, c.weight_shape(), bias)
    }

    pub fn conv2d(&mut self, name: &str, x: Value, op: Conv2d) -> Result<Value> {
        self.conv(name, x, ConvKind::D2(op))
    }

    pub fn conv1d(&mut self, name: &str, x: Value, op: Conv1d) -> Result<Value> {
        self.conv(name, x, ConvKind::D1(op))
    }

    /// Fully connected on (N, K) or on images (N, C, H, W) flattened.
    pub fn dense(&mut self, name: &str, x: Value, op: FullyConnected) -> Result<Value> {
        op.out_shape(self.shape(x)).map_err(|e| Error::Shape {
            op: format!("node {name:?}"),
            msg: e.to_string(),
        })?;
        self.with_params(
            name,
            Layer::Dense(op),
            x,
            op.weight_shape(),
            op.bias.then_some(op.out_features),
        )
    }

    pub fn pool(&mut self, name: &str, x: Value, op: Pool2d) -> Result<Value> {
        self.add(name, Op::Layer(Layer::Pool(op)), &[x])
    }

    pub fn global_avg_pool(&mut self, name: &str, x: Value) -> Result<Value> {
        self.add(name, Op::Layer(Layer::GlobalAvgPool), &[x])
    }
}
