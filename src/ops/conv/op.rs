//! Convolutions as graph ops: `[x, w, b?] -> y` with its neuron fused into the GEMM epilogue,
//! and the data, weight and bias gradients.

use crate::error::{Error, Result};
use crate::graph::{Graph, Out, Primitive, Value};
use crate::launch::Prepared;
use crate::neuron::UnaryOp;
use crate::ops::checks::{arity, check_bias, per_group, same};
use crate::reference::Array;
use crate::tensor::{DType, Tensor};

use super::{Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, Convolution, gpu, reference};

/// Any of the four convolutions (they share kernels through `Convolution`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConvKind {
    /// A [`Conv2d`].
    D2(Conv2d),
    /// A [`Conv1d`].
    D1(Conv1d),
    /// A [`ConvTranspose2d`].
    T2(ConvTranspose2d),
    /// A [`ConvTranspose1d`].
    T1(ConvTranspose1d),
}

impl ConvKind {
    /// The descriptor, as the shared [`Convolution`] interface.
    pub fn op(&self) -> &dyn Convolution {
        match self {
            ConvKind::D2(c) => c,
            ConvKind::D1(c) => c,
            ConvKind::T2(c) => c,
            ConvKind::T1(c) => c,
        }
    }
}

/// The convolution family's graph ops: forward and its three gradients.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConvOp {
    /// `[x, w, b?] -> y`
    Forward(ConvKind),
    /// `[w, dy, x] -> dx` (x only for its shape)
    GradData(ConvKind),
    /// `[x, dy] -> dw`
    GradWeight(ConvKind),
    /// `[x, dy] -> [dw, db]`: a convolution with a bias's two parameter gradients in one node,
    /// so a weight gradient that loops over its taps (`short_k`) sums db from the dy it stages
    /// instead of a dispatch of its own.
    GradWeightBias(ConvKind),
    /// `[dy] -> db`: dy summed over every axis but 1 (channels / features); fully connected
    /// layers use it too.
    BiasGrad,
}

fn f32(s: Vec<usize>) -> Out {
    (s, DType::F32)
}

impl Primitive for ConvOp {
    fn supports_f16(&self) -> bool {
        true
    }

    /// Forward: C_in/g · kh · kw per output (numel(w) / C_out, transposed too); data gradient:
    /// numel(w) / C_in; weight gradient: the batch × pixels of one channel of x or dy (the
    /// longer); bias gradient: dy's batch × pixels.
    fn accumulation_len(&self, ins: &[&[usize]]) -> Option<usize> {
        let channels = |s: &[usize]| s.get(1).copied().unwrap_or(1);
        Some(match self {
            ConvOp::Forward(k) => per_group(&k.op().weight_shape(), k.op().out_channels()),
            ConvOp::GradData(k) => per_group(&k.op().weight_shape(), k.op().in_channels()),
            ConvOp::GradWeight(_) | ConvOp::GradWeightBias(_) => {
                let (x, dy) = (ins.first()?, ins.get(1)?);
                per_group(x, channels(x)).max(per_group(dy, channels(dy)))
            }
            ConvOp::BiasGrad => per_group(ins.first()?, channels(ins.first()?)),
        })
    }

    fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        Ok(match self {
            ConvOp::Forward(k) => {
                let c = k.op();
                arity(c.name(), ins, 2, 3)?;
                same(c.name(), "weight", ins[1], &c.weight_shape())?;
                check_bias(c.name(), c.has_bias(), ins, c.out_channels())?;
                vec![f32(c.out_shape(ins[0])?)]
            }
            ConvOp::GradData(k) => {
                let c = k.op();
                arity(c.name(), ins, 3, 3)?;
                same(c.name(), "output gradient", ins[1], &c.out_shape(ins[2])?)?;
                vec![f32(ins[2].to_vec())]
            }
            ConvOp::GradWeight(k) => {
                let c = k.op();
                arity(c.name(), ins, 2, 2)?;
                same(c.name(), "output gradient", ins[1], &c.out_shape(ins[0])?)?;
                vec![f32(c.weight_shape())]
            }
            ConvOp::GradWeightBias(k) => {
                let mut dw = ConvOp::GradWeight(*k).infer(ins)?;
                dw.push(f32(vec![k.op().out_channels()]));
                dw
            }
            ConvOp::BiasGrad => {
                arity("bias gradient", ins, 1, 1)?;
                if ins[0].len() < 2 {
                    return Err(Error::Shape {
                        op: "bias gradient".into(),
                        msg: format!("dy {:?} has no channel axis", ins[0]),
                    });
                }
                vec![f32(vec![ins[0][1]])]
            }
        })
    }

    fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        fused: &[UnaryOp],
        _step: u64,
    ) -> Result<Prepared> {
        Ok(match self {
            ConvOp::Forward(k) => gpu::forward_fused_launches(
                k.op(),
                ins[0],
                ins[1],
                ins.get(2).copied(),
                outs[0],
                fused.first().copied(),
            )?,
            ConvOp::GradData(k) => {
                gpu::backward_data_launches(k.op(), ins[2].shape(), ins[0], ins[1], outs[0])?
            }
            ConvOp::GradWeight(k) => {
                gpu::backward_weights_launches(k.op(), ins[0], ins[1], outs[0])?
            }
            ConvOp::GradWeightBias(k) => {
                gpu::backward_weights_bias_into(k.op(), ins[0], ins[1], outs[0], outs[1], false)?
            }
            ConvOp::BiasGrad => gpu::bias_grad_launches(ins[0], outs[0])?,
        })
    }

    /// The data gradient takes the forward input x for its shape alone.
    fn reads_input(&self, slot: usize) -> bool {
        !matches!(self, ConvOp::GradData(_)) || slot != 2
    }

    /// The three implicit GEMMs add into their output in the epilogue (the weight gradient's
    /// split-K, in the sum of its splits; with the bias's, into dw alone); the bias gradient's
    /// reduction does not.
    fn accumulates(&self) -> bool {
        !matches!(self, ConvOp::BiasGrad)
    }

    fn lower_accumulate(&self, ins: &[&Tensor], outs: &[&Tensor]) -> Result<Prepared> {
        match self {
            ConvOp::Forward(k) => {
                let b = ins.get(2).copied();
                gpu::forward_into(k.op(), ins[0], ins[1], b, outs[0], None, true)
            }
            ConvOp::GradData(k) => {
                gpu::backward_data_into(k.op(), ins[2].shape(), ins[0], ins[1], outs[0], true)
            }
            ConvOp::GradWeight(k) => {
                gpu::backward_weights_into(k.op(), ins[0], ins[1], outs[0], true)
            }
            ConvOp::GradWeightBias(k) => {
                gpu::backward_weights_bias_into(k.op(), ins[0], ins[1], outs[0], outs[1], true)
            }
            ConvOp::BiasGrad => Err(Error::Invalid(format!("{self:?} cannot add into db"))),
        }
    }

    fn reference(&self, ins: &[&Array], _outs: &[Out], _step: u64) -> Result<Vec<Array>> {
        Ok(match self {
            ConvOp::Forward(k) => {
                vec![reference::forward(
                    k.op(),
                    ins[0],
                    ins[1],
                    ins.get(2).copied(),
                )?]
            }
            ConvOp::GradData(k) => {
                vec![reference::backward_data(
                    k.op(),
                    &ins[2].shape,
                    ins[0],
                    ins[1],
                )?]
            }
            ConvOp::GradWeight(k) => vec![reference::backward_weights(k.op(), ins[0], ins[1])?],
            ConvOp::GradWeightBias(k) => vec![
                reference::backward_weights(k.op(), ins[0], ins[1])?,
                bias_sum(ins[1]),
            ],
            ConvOp::BiasGrad => vec![bias_sum(ins[0])],
        })
    }

    fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        let ConvOp::Forward(k) = *self else {
            return Err(g.no_second_derivative(node));
        };
        let x = g.forward_inputs(node, 2)?;
        let dx = g.add_grad(node, "d0", ConvOp::GradData(k), &[x[1], dy, x[0]])?;
        if x.len() == 3 {
            let dw = g.add_grad(node, "d1", ConvOp::GradWeightBias(k), &[x[0], dy])?;
            let db = Value {
                node: dw.node,
                port: 1,
            };
            return Ok(vec![Some(dx), Some(dw), Some(db)]);
        }
        let dw = g.add_grad(node, "d1", ConvOp::GradWeight(k), &[x[0], dy])?;
        Ok(vec![Some(dx), Some(dw)])
    }

    fn fusable_neurons(&self, port: usize) -> usize {
        // Convolution + bias + neuron: the neuron runs in the GEMM epilogue.
        usize::from(matches!(self, ConvOp::Forward(_)) && port == 0)
    }
}

/// `db[c] = Σ dy[n, c, ...]`: dy summed over every axis but 1.
fn bias_sum(dy: &Array) -> Array {
    let (n, c) = (dy.shape[0], dy.shape[1]);
    let inner = dy.len() / (n * c).max(1);
    let mut db = Array::zeros(&[c]);
    for (i, v) in dy.data.iter().enumerate() {
        db.data[(i / inner) % c] += v;
    }
    db
}

/// Builder methods; weights are `param` nodes named `<name>.weight` / `<name>.bias` (PyTorch's
/// state-dict names and layouts: OIHW).
impl Graph {
    /// A convolution of any kind with its own weight (and bias) parameters.
    /// In channels 0 (`Conv2d::out` and kin) are taken from `x`.
    pub fn conv(&mut self, name: &str, x: Value, mut kind: ConvKind) -> Result<Value> {
        if kind.op().in_channels() == 0 {
            let s = self.shape(x)?;
            let c = *s.get(1).ok_or_else(|| Error::Shape {
                op: format!("node {name:?}"),
                msg: format!("input {s:?} has no channel axis (axis 1)"),
            })?;
            match &mut kind {
                ConvKind::D2(o) => o.in_channels = c,
                ConvKind::D1(o) => o.in_channels = c,
                ConvKind::T2(o) => o.in_channels = c,
                ConvKind::T1(o) => o.in_channels = c,
            }
        }
        let c = kind.op();
        c.out_shape(self.shape(x)?).map_err(|e| Error::Shape {
            op: format!("node {name:?}"),
            msg: e.to_string(),
        })?;
        let bias = c.has_bias().then(|| c.out_channels());
        self.add_with_params(name, ConvOp::Forward(kind), x, &c.weight_shape(), bias)
    }

    /// Adds a 2-D convolution of `x` (N, C, H, W) with parameters `{name}.weight` (and `{name}.bias`).
    pub fn conv2d(&mut self, name: &str, x: Value, op: Conv2d) -> Result<Value> {
        self.conv(name, x, ConvKind::D2(op))
    }

    /// Adds a 1-D convolution of `x` (N, C, L) with parameters `{name}.weight` (and `{name}.bias`).
    pub fn conv1d(&mut self, name: &str, x: Value, op: Conv1d) -> Result<Value> {
        self.conv(name, x, ConvKind::D1(op))
    }
}
