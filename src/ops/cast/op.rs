//! The cast's graph op.

use super::gpu;
use crate::error::{Error, Result};
use crate::graph::{Graph, Out, Primitive, Value};
use crate::launch::Prepared;
use crate::neuron::UnaryOp;
use crate::reference::Array;
use crate::tensor::{DType, Tensor};

/// `[x] -> x` stored as `to` (f32 or f16); `[x, scale] -> x / scale[0]` when `scaled`.
/// The reference is exact (f64 has no f16 rounding): the tolerance of an f16 check covers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CastOp {
    /// The dtype written.
    pub to: DType,
    /// Divide by the second input's one value (a loss scale).
    pub scaled: bool,
}

impl Primitive for CastOp {
    fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        let want = 1 + self.scaled as usize;
        let op = || format!("{self:?}");
        if ins.len() != want {
            return Err(Error::Shape {
                op: op(),
                msg: format!("takes {want} inputs, got {}", ins.len()),
            });
        }
        if self.to == DType::U32 {
            return Err(Error::Attr {
                op: op(),
                msg: "casts go to f32 or f16".into(),
            });
        }
        if self.scaled && ins[1].iter().product::<usize>() != 1 {
            return Err(Error::Shape {
                op: op(),
                msg: format!("the scale is one value, not {:?}", ins[1]),
            });
        }
        Ok(vec![(ins[0].to_vec(), self.to)])
    }

    fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        _fused: &[UnaryOp],
        _step: u64,
    ) -> Result<Prepared> {
        let scale = self.scaled.then(|| ins[1]);
        Ok(Prepared::one(gpu::cast_launch(ins[0], outs[0], scale)?))
    }

    fn reference(&self, ins: &[&Array], _outs: &[Out], _step: u64) -> Result<Vec<Array>> {
        let mut y = ins[0].clone();
        if self.scaled {
            let s = ins[1].data[0];
            y.data.iter_mut().for_each(|v| *v /= s);
        }
        Ok(vec![y])
    }

    /// The gradient goes back in the input's dtype (and through the same scale).
    fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        let x = g.forward_inputs(node, 1 + self.scaled as usize)?;
        let back = CastOp {
            to: g.node(x[0])?.outputs[x[0].port].1,
            scaled: self.scaled,
        };
        let ins: Vec<Value> = std::iter::once(dy).chain(x.get(1).copied()).collect();
        let dx = g.add_grad(node, "d0", back, &ins)?;
        Ok(vec![Some(dx), None].into_iter().take(x.len()).collect())
    }

    fn keeps_precision(&self) -> bool {
        true
    }
}

impl Graph {
    /// `x` stored as `to` (f32 or f16).
    pub fn cast(&mut self, name: &str, x: Value, to: DType) -> Result<Value> {
        self.add(name, CastOp { to, scaled: false }, &[x])
    }
}
