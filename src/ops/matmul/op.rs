//! The matrix product as a graph op: `[a, b] -> op(a) · op(b)`, batched over leading dims (a 2-D
//! operand is shared by every batch element).

use crate::error::Result;
use crate::graph::{Graph, Out, Primitive, Value};
use crate::launch::Prepared;
use crate::neuron::UnaryOp;
use crate::ops::reduce::{ReduceKind, ReduceOp};
use crate::ops::shape::ShapeOp;
use crate::reference::Array;
use crate::tensor::{DType, Tensor};

use super::{gpu, reference};

/// `[a, b] -> op(a) · op(b)`; `ta`/`tb` transpose the last two dims of an operand.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatMulOp {
    /// Transpose the last two dims of `a`.
    pub ta: bool,
    /// Transpose the last two dims of `b`.
    pub tb: bool,
}

impl Primitive for MatMulOp {
    fn supports_f16(&self) -> bool {
        true
    }

    /// K, the inner dimension (the gradients are matmuls too).
    fn accumulation_len(&self, ins: &[&[usize]]) -> Option<usize> {
        let (a, b) = (ins.first()?, ins.get(1)?);
        let (g, _) = gpu::plan(a, b, self.ta, self.tb).ok()?;
        Some(g.k.max(1))
    }

    fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        if ins.len() != 2 {
            return Err(crate::error::Error::Shape {
                op: format!("{self:?}"),
                msg: format!("takes 2 inputs, got {}", ins.len()),
            });
        }
        Ok(vec![(
            gpu::plan(ins[0], ins[1], self.ta, self.tb)?.1,
            DType::F32,
        )])
    }

    fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        _fused: &[UnaryOp],
        _step: u64,
    ) -> Result<Prepared> {
        let (g, _) = gpu::plan(ins[0].shape(), ins[1].shape(), self.ta, self.tb)?;
        gpu::matmul_launches(&g, ins[0], ins[1], outs[0])
    }

    fn accumulates(&self) -> bool {
        true
    }

    fn lower_accumulate(&self, ins: &[&Tensor], outs: &[&Tensor]) -> Result<Prepared> {
        let (g, _) = gpu::plan(ins[0].shape(), ins[1].shape(), self.ta, self.tb)?;
        let g = gpu::Gemm {
            accumulate: true,
            ..g
        };
        gpu::matmul_launches(&g, ins[0], ins[1], outs[0])
    }

    fn reference(&self, ins: &[&Array], outs: &[Out], _step: u64) -> Result<Vec<Array>> {
        // Batched: loop over the leading dims (a 2-D operand is shared).
        let shape0 = &outs[0].0;
        let (a, b) = (ins[0], ins[1]);
        let (m2, n2) = (shape0[shape0.len() - 2], shape0[shape0.len() - 1]);
        let batch = shape0.len() - 2;
        let nb: usize = shape0[..batch].iter().product();
        let mat = |x: &Array, i: usize| {
            let r = x.shape.len();
            let (p, q) = (x.shape[r - 2], x.shape[r - 1]);
            let k = if r == 2 { 0 } else { i };
            Array::new(&[p, q], x.data[k * p * q..(k + 1) * p * q].to_vec())
        };
        let mut data = Vec::with_capacity(nb * m2 * n2);
        for i in 0..nb {
            data.extend(reference::matmul(&mat(a, i), &mat(b, i), self.ta, self.tb).data);
        }
        Ok(vec![Array::new(shape0, data)])
    }

    fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>> {
        let x = g.forward_inputs(node, 2)?;
        let (ta, tb) = (self.ta, self.tb);
        let mut d =
            |k: usize, op: MatMulOp, ins: &[Value]| g.add_grad(node, &format!("d{k}"), op, ins);
        // c = op(a)·op(b): da = op(b)·dyᵀ if ta else dy·op(b)ᵀ; db = dyᵀ·op(a) if tb else op(a)ᵀ·dy.
        let da = if ta {
            d(0, MatMulOp { ta: tb, tb: true }, &[x[1], dy])?
        } else {
            d(0, MatMulOp { ta: false, tb: !tb }, &[dy, x[1]])?
        };
        let db = if tb {
            d(1, MatMulOp { ta: true, tb: ta }, &[dy, x[0]])?
        } else {
            d(1, MatMulOp { ta: !ta, tb: false }, &[x[0], dy])?
        };
        let (sa, sb) = (g.shape(x[0])?.to_vec(), g.shape(x[1])?.to_vec());
        Ok(vec![
            Some(fold_to(g, node, da, &sa)?),
            Some(fold_to(g, node, db, &sb)?),
        ])
    }
}

/// Folds a gradient computed per batch element back to a shared operand's shape by summing over
/// the leading (batch) axes.
fn fold_to(g: &mut Graph, node: usize, grad: Value, want: &[usize]) -> Result<Value> {
    let have = g.shape(grad)?.to_vec();
    if have == want {
        return Ok(grad);
    }
    let mut grad = grad;
    for axis in 0..have.len() - want.len() {
        grad = g.add_grad(
            node,
            "fold",
            ReduceOp::Reduce(ReduceKind::Sum, axis),
            &[grad],
        )?;
    }
    g.add_grad(node, "view", ShapeOp::View(want.to_vec()), &[grad])
}

/// Builder methods.
impl Graph {
    /// `a · b`, batched over leading dims.
    pub fn matmul(&mut self, name: &str, a: Value, b: Value) -> Result<Value> {
        self.add(
            name,
            MatMulOp {
                ta: false,
                tb: false,
            },
            &[a, b],
        )
    }
}
