//! A graph op: a source (input, parameter, state) or a `Primitive` from one of the op families
//! in `src/ops/`. Every question the graph, autograd and the compiler ask of an op goes through
//! the `Primitive` trait here, so a new op family is a folder plus one registry line, never a
//! new arm in a match spread over the crate. Gradient ops are primitives too (made by `vjp`), so
//! the backward pass is planned, aliased and replayed exactly like the forward.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::{Graph, Value};
use crate::dtype::{Accumulator, F16_ACCUMULATING_OPS};
use crate::error::{Error, Result};
use crate::launch::{self, Prepared};
use crate::neuron::UnaryOp;
use crate::reference::Array;
use crate::tensor::{DType, Tensor};

/// One output of an op: its shape and dtype.
pub type Out = (Vec<usize>, DType);

/// The `Err` of a `Primitive::lower_grad_neuron` asked of an op (or variant) that cannot apply
/// `neuron`'s gradient.
pub(crate) fn cannot_fold(op: &(impl fmt::Debug + ?Sized), neuron: UnaryOp) -> Error {
    Error::Invalid(format!("{op:?} cannot apply the gradient of {neuron:?}"))
}

/// A non-finite check of every output of a node that an op runs inside its own launches
/// (`Primitive::checks_outputs`) instead of the compiler's scan per output (`crate::health`):
/// a non-finite element ORs `flag` into word 0 of `health` and lowers word `slot` to `code`,
/// as the scans would.
#[derive(Clone, Copy, Debug)]
pub struct OutputCheck<'a> {
    /// The health buffer (`wgsl/health.wgsl`'s words).
    pub health: &'a Tensor,
    /// The bit set in word 0.
    pub flag: u32,
    /// The word that takes the smallest code.
    pub slot: u32,
    /// The code recorded: the node's index.
    pub code: u32,
}

/// What an op of a family is: shapes, GPU lowering, f64 reference and vjp rule, in one type
/// (MLX's `Primitive`). The implementations live in `src/ops/<family>/op.rs`.
pub trait Primitive: fmt::Debug + Send + Sync + Any {
    /// Output shapes and dtypes from the input shapes; `Graph::add` adds the node's name and
    /// its inputs to an error.
    fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>>;

    /// The launches computing the op from `ins` into `outs`, then the neurons in `fused` (at most
    /// `fusable_neurons` of them); `step` seeds per-step ops (dropout).
    fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        fused: &[UnaryOp],
        step: u64,
    ) -> Result<Prepared>;

    /// Whether `lower_accumulate` can add the op's result to what its output already holds
    /// (`C += …` in a GEMM epilogue), so a sum of this output and another value needs no `Add`
    /// dispatch (the compiler's `sums` pass).
    fn accumulates(&self) -> bool {
        false
    }

    /// `lower` adding into `outs[0]` instead of overwriting it (no fused neurons). Only called
    /// when `accumulates` says so; the default refuses.
    fn lower_accumulate(&self, _ins: &[&Tensor], _outs: &[&Tensor]) -> Result<Prepared> {
        Err(Error::Invalid(format!(
            "{self:?} cannot add into its output"
        )))
    }

    /// The CPU f64 reference (u32 states as f64 indices): the oracle of the compiled graph.
    fn reference(&self, ins: &[&Array], outs: &[Out], step: u64) -> Result<Vec<Array>>;

    /// The vjp rule: given dy at output port 0 of `node` (this op), the gradient of each input
    /// (`None` where none flows), appended to `g` as new nodes.
    fn vjp(&self, g: &mut Graph, node: usize, dy: Value) -> Result<Vec<Option<Value>>>;

    /// The vjp rule given the gradient arriving at each output port (`dys[p]`, `None` where none
    /// does). The default serves ops whose only differentiable output is port 0; a gradient
    /// reaching another port is an `Err`, never dropped.
    fn vjp_ports(
        &self,
        g: &mut Graph,
        node: usize,
        dys: &[Option<Value>],
    ) -> Result<Vec<Option<Value>>> {
        if let Some(p) = (1..dys.len()).find(|&p| dys[p].is_some()) {
            return Err(Error::Invalid(format!(
                "node {:?} ({self:?}): no gradient flows back through its output {p}",
                g.nodes.get(node).map_or("?", |n| n.name.as_str())
            )));
        }
        match dys.first().copied().flatten() {
            Some(dy) => self.vjp(g, node, dy),
            None => Ok(vec![]),
        }
    }

    /// Whether the launches read input `slot`'s values; `false` for an input taken only for
    /// its shape (a forward input a gradient op needs the shape of), which then keeps no
    /// value alive: the compiler plans its memory and orders writes without that read, and
    /// mixed precision casts nothing for it.
    fn reads_input(&self, _slot: usize) -> bool {
        true
    }

    /// Whether `lower_grad_neuron` can apply a neuron's derivative, taken from the neuron's
    /// output (`UnaryOp::grad_from` is `Output`), to output 0 as it writes it: the neuron's
    /// gradient then costs no dispatch of its own (the compiler's fusion pass).
    fn folds_grad_neuron(&self) -> bool {
        false
    }

    /// `lower` with output 0 multiplied by `neuron`'s derivative read from `y` (its output, of
    /// output 0's shape and dtype; for a concat's or max pooling's gradient, the forward's
    /// output holding it).
    /// Only called when `folds_grad_neuron` says so.
    fn lower_grad_neuron(
        &self,
        _ins: &[&Tensor],
        _outs: &[&Tensor],
        neuron: UnaryOp,
        _y: &Tensor,
    ) -> Result<Prepared> {
        Err(cannot_fold(self, neuron))
    }

    /// The input slot holding a gradient that `lower_grad_neuron_input` can multiply by a
    /// neuron's derivative, taken from the neuron's output, as it reads it (a training norm's
    /// dy): the neuron's gradient then costs no dispatch and its result no memory. `None`: the
    /// op cannot, or not on a device binding `storage_bindings` storage buffers per stage.
    fn folds_grad_neuron_input(&self, _storage_bindings: u32) -> Option<usize> {
        None
    }

    /// `lower` with input `folds_grad_neuron_input` read through `neuron`'s derivative from `y`
    /// (the neuron's output, of that input's shape and dtype). Only called when
    /// `folds_grad_neuron_input` is `Some`.
    fn lower_grad_neuron_input(
        &self,
        _ins: &[&Tensor],
        _outs: &[&Tensor],
        neuron: UnaryOp,
        _y: &Tensor,
    ) -> Result<Prepared> {
        Err(Error::Invalid(format!(
            "{self:?} cannot read its input through the gradient of {neuron:?}"
        )))
    }

    /// Whether `lower_residual` can add a value of output 0's shape and dtype to output 0 before
    /// its fused neurons (a norm's epilogue): a sum of that output and another value then needs
    /// no `Add` dispatch (the compiler's fusion pass).
    fn adds_residual(&self) -> bool {
        false
    }

    /// `lower` with `residual` added to output 0 before the neurons in `fused`. Only called when
    /// `adds_residual` says so.
    fn lower_residual(
        &self,
        _ins: &[&Tensor],
        _outs: &[&Tensor],
        _fused: &[UnaryOp],
        _residual: &Tensor,
    ) -> Result<Prepared> {
        Err(Error::Invalid(format!("{self:?} cannot add a residual")))
    }

    /// Whether `lower_checked` can check every output for non-finite values inside the op's own
    /// launches, so the compiler's non-finite scans of its outputs cost no dispatches (a
    /// reducing loss, whose one-workgroup reduction reads every per-sample value).
    fn checks_outputs(&self) -> bool {
        false
    }

    /// `lower` (no fused neurons) with `check` run on every output. Only called when
    /// `checks_outputs` says so.
    fn lower_checked(
        &self,
        _ins: &[&Tensor],
        _outs: &[&Tensor],
        _check: &OutputCheck,
    ) -> Result<Prepared> {
        Err(Error::Invalid(format!("{self:?} cannot check its outputs")))
    }

    /// Whether the op's kernels have f16 variants (they store activations as WGSL `act`), so
    /// mixed precision (`crate::autocast`) runs it on f16 values.
    fn supports_f16(&self) -> bool {
        false
    }

    /// For an op whose kernels sum in the WGSL `accum` type, so it can accumulate in f16
    /// (`Accumulator`): the longest sum behind one of its output elements, given the input
    /// shapes (a dot product's K, a norm group's size, a weight gradient's batch × pixels).
    /// `None`: the op sums nothing, or always in f32. The compiler asks whether it is `Some`;
    /// the tests take the length for `reference::f16_acc_tol`.
    fn accumulation_len(&self, _ins: &[&[usize]]) -> Option<usize> {
        None
    }

    /// An f32 input that stays f32 in an f16 node (a scale, a per-sample weight).
    fn fixed_f32_input(&self, _slot: usize) -> bool {
        false
    }

    /// An f32 output that stays f32 in an f16 node (a loss, a norm's statistics).
    fn fixed_f32_output(&self, _port: usize) -> bool {
        false
    }

    /// An op that chooses its own dtypes (a cast): mixed precision leaves it as it is.
    fn keeps_precision(&self) -> bool {
        false
    }

    /// How many neurons this op can apply to its output at `port` inside its own dispatch.
    fn fusable_neurons(&self, _port: usize) -> usize {
        0
    }

    /// The neuron this op is, when it is one that can fold into its producer.
    fn as_neuron(&self) -> Option<UnaryOp> {
        None
    }

    /// Whether `lower` writes nothing: the output aliases the input's memory.
    fn is_view(&self) -> bool {
        false
    }

    /// The value of every element of output 0 when it never changes (the backward seed's
    /// ones): the compiler fills it once, outside the arena, and launches nothing for it.
    fn constant(&self) -> Option<f32> {
        None
    }

    /// For ops whose launch depends on the step counter: the first launch's parameter words at
    /// `step` for an input of `n` elements (rewritten before every step).
    fn step_params(&self, _step: u64, _n: usize) -> Option<Vec<u32>> {
        None
    }

    /// The op an inference graph uses instead (dropout off, batch norm on running statistics).
    fn for_inference(&self) -> Option<Op> {
        None
    }

    /// For an index input (a loss's class indices): every value written to input `port` must be
    /// below this bound, given the input shapes. `Compiled::set_u32` checks it on the host.
    fn index_bound(&self, _port: usize, _ins: &[&[usize]]) -> Option<usize> {
        None
    }
}

/// The op of a graph node.
#[derive(Clone)]
pub enum Op {
    /// Fed by the caller every step; dim 0 is the batch.
    Input,
    /// A trainable weight: persistent, initialised through its data source.
    Param,
    /// Persistent values an op updates but nobody trains (batch norm's running statistics).
    State,
    /// An op of one of the families in `src/ops/`.
    Compute(Arc<dyn Primitive>),
}

impl<P: Primitive> From<P> for Op {
    fn from(p: P) -> Op {
        Op::Compute(Arc::new(p))
    }
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Input => write!(f, "Input"),
            Op::Param => write!(f, "Param"),
            Op::State => write!(f, "State"),
            Op::Compute(p) => p.fmt(f),
        }
    }
}

/// Ops are plain data: two are equal when they describe the same computation.
impl PartialEq for Op {
    fn eq(&self, other: &Op) -> bool {
        match (self, other) {
            (Op::Compute(a), Op::Compute(b)) => format!("{a:?}") == format!("{b:?}"),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl Op {
    /// Whether the op is fed rather than computed (input, parameter, state).
    pub fn is_source(&self) -> bool {
        !matches!(self, Op::Compute(_))
    }

    /// The family op, or `None` for a source.
    pub fn primitive(&self) -> Option<&dyn Primitive> {
        match self {
            Op::Compute(p) => Some(p.as_ref()),
            _ => None,
        }
    }

    /// The family op as its concrete type (the compiler's special cases: concat elision).
    pub fn downcast<T: Primitive>(&self) -> Option<&T> {
        let p: &dyn Any = self.primitive()?;
        p.downcast_ref::<T>()
    }

    fn computed(&self) -> Result<&dyn Primitive> {
        self.primitive()
            .ok_or_else(|| Error::Invalid(format!("{self:?} is fed, not computed")))
    }

    /// Output shapes and dtypes from the input shapes.
    pub fn infer(&self, ins: &[&[usize]]) -> Result<Vec<Out>> {
        self.computed()?.infer(ins)
    }

    /// Launches for this op (sources launch nothing), accumulating in f32.
    pub fn lower(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        fused: &[UnaryOp],
        step: u64,
    ) -> Result<Prepared> {
        self.lower_accumulating(ins, outs, fused, step, Accumulator::F32)
    }

    /// Launches for this op whose sums accumulate in `acc`. An op without an f16-accumulating
    /// kernel (`Primitive::accumulation_len` is `None`) asked for f16 is an `Err`.
    pub fn lower_accumulating(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        fused: &[UnaryOp],
        step: u64,
        acc: Accumulator,
    ) -> Result<Prepared> {
        let Op::Compute(p) = self else {
            return Ok(Prepared::default());
        };
        if fused.len() > p.fusable_neurons(0) {
            return Err(Error::Invalid(format!(
                "{p:?} cannot take the fused neurons {fused:?}"
            )));
        }
        in_accumulator(p.as_ref(), ins, acc, || p.lower(ins, outs, fused, step))
    }

    /// Launches adding this op's result into `outs[0]` (`Primitive::lower_accumulate`), its
    /// sums in `acc`.
    pub fn lower_accumulate(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        acc: Accumulator,
    ) -> Result<Prepared> {
        let p = self.computed()?;
        if !p.accumulates() {
            return Err(Error::Invalid(format!("{p:?} cannot add into its output")));
        }
        in_accumulator(p, ins, acc, || p.lower_accumulate(ins, outs))
    }

    /// Launches with output 0 multiplied by `neuron`'s derivative read from `y`
    /// (`Primitive::lower_grad_neuron`), its sums in `acc`.
    pub fn lower_grad_neuron(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        neuron: UnaryOp,
        y: &Tensor,
        acc: Accumulator,
    ) -> Result<Prepared> {
        let p = self.computed()?;
        in_accumulator(p, ins, acc, || p.lower_grad_neuron(ins, outs, neuron, y))
    }

    /// Launches reading input `Primitive::folds_grad_neuron_input` through `neuron`'s
    /// derivative from `y` (`Primitive::lower_grad_neuron_input`), its sums in `acc`.
    pub fn lower_grad_neuron_input(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        neuron: UnaryOp,
        y: &Tensor,
        acc: Accumulator,
    ) -> Result<Prepared> {
        let p = self.computed()?;
        in_accumulator(p, ins, acc, || {
            p.lower_grad_neuron_input(ins, outs, neuron, y)
        })
    }

    /// Launches adding `residual` to output 0 before the neurons in `fused`
    /// (`Primitive::lower_residual`), its sums in `acc`.
    pub fn lower_residual(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        fused: &[UnaryOp],
        residual: &Tensor,
        acc: Accumulator,
    ) -> Result<Prepared> {
        let p = self.computed()?;
        if !p.adds_residual() || fused.len() > p.fusable_neurons(0) {
            return Err(Error::Invalid(format!(
                "{p:?} cannot add a residual before the neurons {fused:?}"
            )));
        }
        in_accumulator(p, ins, acc, || p.lower_residual(ins, outs, fused, residual))
    }

    /// Launches with every output checked for non-finite values (`Primitive::lower_checked`),
    /// its sums in `acc`.
    pub fn lower_checked(
        &self,
        ins: &[&Tensor],
        outs: &[&Tensor],
        check: &OutputCheck,
        acc: Accumulator,
    ) -> Result<Prepared> {
        let p = self.computed()?;
        if !p.checks_outputs() {
            return Err(Error::Invalid(format!("{p:?} cannot check its outputs")));
        }
        in_accumulator(p, ins, acc, || p.lower_checked(ins, outs, check))
    }

    /// The CPU f64 reference of this op.
    pub fn eval_reference(&self, ins: &[&Array], outs: &[Out], step: u64) -> Result<Vec<Array>> {
        self.computed()?.reference(ins, outs, step)
    }

    /// Whether `lower` writes nothing: the output aliases the input's memory.
    pub fn is_view(&self) -> bool {
        self.primitive().is_some_and(|p| p.is_view())
    }

    /// Whether the launches read input `slot`'s values (`Primitive::reads_input`).
    pub fn reads_input(&self, slot: usize) -> bool {
        self.primitive().is_none_or(|p| p.reads_input(slot))
    }
}

/// Runs `prepare` (an op's lowering) with its launches compiled for accumulator `acc`: the one
/// place a launch's accumulator is chosen (`launch::accumulating`). An op that cannot sum in f16
/// asked for f16 is an `Err`.
fn in_accumulator(
    p: &dyn Primitive,
    ins: &[&Tensor],
    acc: Accumulator,
    prepare: impl FnOnce() -> Result<Prepared>,
) -> Result<Prepared> {
    if acc == Accumulator::F16 {
        let shapes: Vec<&[usize]> = ins.iter().map(|t| t.shape()).collect();
        if p.accumulation_len(&shapes).is_none() {
            return Err(Error::Invalid(format!(
                "{p:?} cannot accumulate in f16 ({F16_ACCUMULATING_OPS})"
            )));
        }
    }
    launch::accumulating(acc, prepare)
}
