//! The elementwise graph ops: a neuron (unary), a broadcasting binary op, their gradients, and
//! the ones that seed the backward pass.

use crate::error::{Error, Result};
use crate::graph::{Graph, Out, Primitive, Value};
use crate::launch::Prepared;
use crate::neuron::{GradFrom, UnaryOp};
use crate::reference::Array;
use crate::tensor::{DType, Tensor};

use super::gpu::{self, BinaryOp, MAX_CHAIN};
use super::reference;

/// The elementwise graph ops (a [`Primitive`]): what [`Graph::unary`] and [`Graph::binary`] add,
/// and what [`crate::ops::eager::run`] runs on tensors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ElementwiseOp {
    /// `[x] -> op(x)`
    Unary(UnaryOp),
    /// `[x, dy] -> dx`
    UnaryGrad(UnaryOp),
    /// `[y, dy] -> dx` from the forward's output `y = op(x)`, for ops whose derivative is a
    /// function of y (`UnaryOp::grad_from`): x is then read by the forward alone and can fuse.
    UnaryGradOut(UnaryOp),
    /// `[a, b] -> a (op) b` with broadcasting.
    Binary(BinaryOp),
    /// `[a, b, dy] -> d(operand)`; operand 0 = a, 1 = b (for `Add` and `Sub`, a and b only
    /// for their shapes).
    BinaryGrad(BinaryOp, usize),
    /// `[x] -> ones of x's shape`: the seed of the backward pass (d sum(loss) / d loss). Its
    /// value never changes: the compiler fills it once and launches nothing for it
    /// (`Primitive::constant`).
    OnesLike,
    /// `[x] -> x`, a view (no dispatch, no memory): the gradient of a sum's operand that was
    /// not broadcast is the sum's gradient itself.
    Identity,
    /// `[x] -> x`, copied: a gradient that must own its memory (`Graph::gradients`).
    Copy,
}

fn f32(s: &[usize]) -> Out {
    (s.to_vec(), DType::F32)
}

impl ElementwiseOp {
    fn arity(&self) -> usize {
        match self {
            ElementwiseOp::Unary(_)
            | ElementwiseOp::OnesLike
            | ElementwiseOp::Identity
            | ElementwiseOp::Copy => 1,
            ElementwiseOp::UnaryGrad(_)
            | ElementwiseOp::UnaryGradOut(_)
            | ElementwiseOp::Binary(_) => 2,
            ElementwiseOp::BinaryGrad(..) => 3,
        }
    }

    fn shape_err(&self, msg: String) -> Error {
        Error::Shape {
            op: format!("{self:?}"),
            msg,
        }
    }
}

impl Primitive for ElementwiseOp {
    fn supports_f16(&self) -> bool {
        true
    }

    fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        let arity = self.arity();
        if ins.len() != arity {
            return Err(self.shape_err(format!("takes {arity} inputs, got {}", ins.len())));
        }
        if let ElementwiseOp::Unary(u)
        | ElementwiseOp::UnaryGrad(u)
        | ElementwiseOp::UnaryGradOut(u) = self
        {
            u.validate()?;
        }
        Ok(match self {
            ElementwiseOp::Unary(_)
            | ElementwiseOp::OnesLike
            | ElementwiseOp::Identity
            | ElementwiseOp::Copy => vec![f32(ins[0])],
            ElementwiseOp::UnaryGradOut(u) if u.grad_from() != GradFrom::Output => {
                return Err(self.shape_err(format!(
                    "the derivative of {u:?} is not a function of its output"
                )));
            }
            ElementwiseOp::UnaryGrad(_) | ElementwiseOp::UnaryGradOut(_) => {
                if ins[0] != ins[1] {
                    return Err(self.shape_err(format!("x {:?} vs dy {:?}", ins[0], ins[1])));
                }
                vec![f32(ins[0])]
            }
            ElementwiseOp::Binary(b) => {
                vec![f32(&gpu::broadcast_shape(
                    &format!("{b:?}"),
                    ins[0],
                    ins[1],
                )?)]
            }
            ElementwiseOp::BinaryGrad(_, which) if *which > 1 => {
                return Err(Error::Attr {
                    op: format!("{self:?}"),
                    msg: format!("operand {which}: a binary op has operands 0 and 1"),
                });
            }
            ElementwiseOp::BinaryGrad(b, which) => {
                let out = gpu::broadcast_shape(&format!("{b:?}"), ins[0], ins[1])?;
                if out != ins[2] {
                    return Err(self.shape_err(format!("dy {:?} vs output {out:?}", ins[2])));
                }
                vec![f32(ins[*which])]
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
        Ok(Prepared::one(match self {
            ElementwiseOp::Unary(u) => gpu::unary_fused_launch(*u, fused, ins[0], outs[0])?,
            ElementwiseOp::OnesLike => {
                gpu::unary_launch(UnaryOp::Linear { a: 0.0, b: 1.0 }, ins[0], outs[0])?
            }
            ElementwiseOp::Identity => return Ok(Prepared::default()),
            ElementwiseOp::Copy => {
                gpu::unary_launch(UnaryOp::Linear { a: 1.0, b: 0.0 }, ins[0], outs[0])?
            }
            ElementwiseOp::UnaryGrad(u) => gpu::unary_backward_launch(*u, ins[0], ins[1], outs[0])?,
            ElementwiseOp::UnaryGradOut(u) => {
                gpu::unary_backward_out_launch(*u, ins[0], ins[1], outs[0])?
            }
            ElementwiseOp::Binary(b) => {
                gpu::binary_fused_launch(*b, fused, ins[0], ins[1], outs[0])?
            }
            ElementwiseOp::BinaryGrad(b, which) => {
                gpu::binary_grad_launch(*b, *which, ins[0], ins[1], ins[2], outs[0])?
            }
        }))
    }

    fn reference(&self, ins: &[&Array], outs: &[Out], _step: u64) -> Result<Vec<Array>> {
        let shape0 = &outs[0].0;
        Ok(vec![match self {
            ElementwiseOp::Unary(u) => reference::unary(*u, ins[0]),
            ElementwiseOp::OnesLike => Array::new(shape0, vec![1.0; ins[0].len()]),
            ElementwiseOp::Identity | ElementwiseOp::Copy => ins[0].clone(),
            ElementwiseOp::UnaryGrad(u) => reference::unary_backward(*u, ins[0], ins[1])?,
            ElementwiseOp::UnaryGradOut(u) => reference::unary_backward_out(*u, ins[0], ins[1])?,
            ElementwiseOp::Binary(b) => reference::binary(*b, ins[0], ins[1], shape0),
            ElementwiseOp::BinaryGrad(b, which) => {
                let (ga, gb) = reference::binary_backward(*b, ins[0], ins[1], ins[2]);
                if *which == 0 { ga } else { gb }
            }
        }])
    }

    fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        let x = g.forward_inputs(node, self.arity())?;
        // Which operands have the output's shape (were not broadcast).
        let out = g.shape(Value { node, port: 0 })?.to_vec();
        let whole = x
            .iter()
            .map(|v| Ok(g.shape(*v)? == out.as_slice()))
            .collect::<Result<Vec<bool>>>()?;
        let mut d = |k: usize, op: ElementwiseOp, ins: &[Value]| -> Result<Option<Value>> {
            g.add_grad(node, &format!("d{k}"), op, ins).map(Some)
        };
        Ok(match self {
            ElementwiseOp::OnesLike => vec![None],
            // Read as little of the forward as the derivative needs: from the output y where it
            // is a function of y, so the input stays free to fuse into its producer (conv + bias
            // + ReLU in one dispatch in training too; y itself is the fused dispatch's output).
            ElementwiseOp::Unary(u) => vec![match u.grad_from() {
                GradFrom::Nothing(scale) => d(0, ElementwiseOp::Unary(scale), &[dy])?,
                GradFrom::Output => {
                    let y = Value { node, port: 0 };
                    d(0, ElementwiseOp::UnaryGradOut(*u), &[y, dy])?
                }
                GradFrom::Input => d(0, ElementwiseOp::UnaryGrad(*u), &[x[0], dy])?,
            }],
            ElementwiseOp::Binary(b) => {
                let mut grads = Vec::with_capacity(2);
                for (k, &whole) in whole.iter().enumerate().take(2) {
                    // d(a + b)/da = 1 (so for b, and for a of a − b): unless a was broadcast,
                    // its gradient is dy itself, a view, and nothing reads the forward values.
                    let passes = matches!((b, k), (BinaryOp::Add, _) | (BinaryOp::Sub, 0));
                    let op = if passes && whole {
                        ElementwiseOp::Identity
                    } else {
                        ElementwiseOp::BinaryGrad(*b, k)
                    };
                    let ins: &[Value] = match op {
                        ElementwiseOp::Identity => &[dy],
                        _ => &[x[0], x[1], dy],
                    };
                    grads.push(d(k, op, ins)?);
                }
                grads
            }
            ElementwiseOp::Identity | ElementwiseOp::Copy => vec![Some(dy)],
            _ => return Err(g.no_second_derivative(node)),
        })
    }

    /// The backward seed (`OnesLike`) reads only its input's shape, and the loss gradient reads
    /// it as f32: in and out it stays f32, so mixed precision casts neither.
    fn fixed_f32_input(&self, _slot: usize) -> bool {
        *self == ElementwiseOp::OnesLike
    }

    fn fixed_f32_output(&self, _port: usize) -> bool {
        *self == ElementwiseOp::OnesLike
    }

    fn is_view(&self) -> bool {
        *self == ElementwiseOp::Identity
    }

    /// A sum's or difference's gradient reads dy alone: the operands only for their shapes.
    fn reads_input(&self, slot: usize) -> bool {
        match self {
            ElementwiseOp::BinaryGrad(BinaryOp::Add | BinaryOp::Sub, _) => slot == 2,
            _ => true,
        }
    }

    fn constant(&self) -> Option<f32> {
        (*self == ElementwiseOp::OnesLike).then_some(1.0)
    }

    fn fusable_neurons(&self, port: usize) -> usize {
        match self {
            ElementwiseOp::Unary(_) | ElementwiseOp::Binary(_) if port == 0 => MAX_CHAIN,
            _ => 0,
        }
    }

    fn as_neuron(&self) -> Option<UnaryOp> {
        match self {
            ElementwiseOp::Unary(u) => Some(*u),
            _ => None,
        }
    }
}

/// Builder methods.
impl Graph {
    /// `op(x)`, elementwise.
    pub fn unary(&mut self, name: &str, op: UnaryOp, x: Value) -> Result<Value> {
        self.add(name, ElementwiseOp::Unary(op), &[x])
    }

    /// `a (op) b` with numpy broadcasting.
    pub fn binary(&mut self, name: &str, op: BinaryOp, a: Value, b: Value) -> Result<Value> {
        self.add(name, ElementwiseOp::Binary(op), &[a, b])
    }
}
