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
