//! Element types: what a tensor holds and which variant of a kernel reads it.

/// Element type of a tensor. f16 is designed in (storage and the f16 accumulator paths);
/// u32 carries indices (argmax states, class labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 16-bit IEEE float (storage; needs the device's `shader_f16`).
    F16,
    /// 32-bit unsigned integer (indices, labels).
    U32,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::U32 => 4,
            DType::F16 => 2,
        }
    }
}

/// The precision the summing kernels accumulate in (MPS's
/// `MPSNNConvolutionAccumulatorPrecisionOption`), independent of the storage `DType`: the
/// convolutions, matmul, fully connected layers, norms and reductions, forward and gradients
/// (the ops whose `Primitive::accumulation_len` is `Some`). Chosen per graph and per node at
/// compile time (`compile::Options::accumulator`, `accumulator_nodes`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Accumulator {
    /// Sums in f32 (the default, whatever the storage).
    #[default]
    F32,
    /// Sums, and the GEMM core's staged operands, in f16 (needs the device's `shader_f16`):
    /// faster where f16 arithmetic is, at an error that grows with the sum's length
    /// (`reference::f16_acc_tol`). With f32 storage the operands are rounded to f16 as they
    /// enter the sum.
    F16,
}

/// The ops that can accumulate in f16, as the refusals of the others say it.
pub(crate) const F16_ACCUMULATING_OPS: &str = "only convolutions, matmul, fully connected \
    layers, norms and sum/mean reductions, and their gradients, can";

/// Which variant of a kernel a launch compiles: its storage type (`act` in WGSL), its
/// accumulator type (`accum`) and which of its `read` bindings are declared `read_write`.
/// Pipelines are cached per variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    /// Storage of activations and gradients (f32 or f16).
    pub act: DType,
    /// Accumulator of the sums.
    pub acc: Accumulator,
    /// The `read` bindings declared `read_write` instead: bit n for binding n, [`Variant::ALL`]
    /// for every one, 0 to keep them all read-only (`launch::Shader::source_of`).
    pub read_write: u32,
}

impl Variant {
    /// [`Variant::read_write`] for every `read` binding: the plain source.
    pub const ALL: u32 = u32::MAX;

    /// f32 storage, f32 accumulation, every binding read-write: the plain source.
    pub const F32: Variant = Variant {
        act: DType::F32,
        acc: Accumulator::F32,
        read_write: Variant::ALL,
    };
}

impl From<DType> for Variant {
    /// Storage `act` with the default f32 accumulator.
    fn from(act: DType) -> Variant {
        Variant {
            act,
            acc: Accumulator::F32,
            read_write: Variant::ALL,
        }
    }
}
