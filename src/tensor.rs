//! Tensors: a shape, a dtype and a GPU buffer. No math here — kernels live with their op family in `src/ops/`.

use std::sync::Arc;

use crate::device::{Device, word_padded};
use crate::error::{Error, Result};

pub use crate::dtype::DType;

/// A dense row-major tensor on one device: a range of a buffer (its own, or a slice of an arena
/// shared with other tensors, which is how the memory plan aliases intermediates). Cloning shares
/// the buffer.
#[derive(Clone)]
pub struct Tensor {
    pub(crate) device: Device,
    pub(crate) shape: Vec<usize>,
    pub(crate) dtype: DType,
    pub(crate) buffer: Arc<wgpu::Buffer>,
    /// Byte offset into `buffer` (a multiple of the device's storage offset alignment).
    pub(crate) offset: u64,
}

/// What a kernel binds: a buffer range. `Tensor::buffer()` gives the tensor's own range.
#[derive(Clone, Copy, Debug)]
pub struct Binding<'a> {
    /// The buffer bound.
    pub buffer: &'a wgpu::Buffer,
    /// Start of the range, in bytes.
    pub offset: u64,
    /// Length of the range, in bytes.
    pub size: u64,
    /// The element type of the tensor bound, when it is one: picks the kernel's variant (an
    /// f16 tensor selects `act = f16`) and is checked against the width the kernel reads.
    pub dtype: Option<DType>,
}

impl<'a> Binding<'a> {
    /// The whole of `buffer`.
    pub fn whole(buffer: &'a wgpu::Buffer) -> Self {
        Binding {
            buffer,
            offset: 0,
            size: buffer.size(),
            dtype: None,
        }
    }
}

/// The most elements one tensor of a graph may have: every kernel indexes with u32 (compiling
/// refuses a larger value, and so does the CPU reference of a graph).
pub const MAX_ELEMENTS: u64 = u32::MAX as u64;

/// Elements and bytes of `shape` in `dtype`, or an `Err` where the count overflows (a wrapped
/// product would allocate a tiny buffer for a huge shape).
pub(crate) fn checked_size(shape: &[usize], dtype: DType) -> Result<(usize, u64)> {
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::Shape {
            op: "tensor".into(),
            msg: format!("shape {shape:?} has more elements than a usize counts"),
        })?;
    let bytes = (n as u64)
        .checked_mul(dtype.size() as u64)
        .ok_or_else(|| Error::Shape {
            op: "tensor".into(),
            msg: format!("shape {shape:?} of {dtype:?} has more bytes than a u64 counts"),
        })?;
    Ok((n, bytes))
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    /// An uninitialised (zero-filled by wgpu) tensor.
    pub fn zeros(device: &Device, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let (_, bytes) = checked_size(shape, dtype)?;
        let buffer = device.storage_buffer(&format!("tensor {shape:?} {dtype:?}"), bytes)?;
        Ok(Tensor {
            device: device.clone(),
            shape: shape.to_vec(),
            dtype,
            buffer: Arc::new(buffer),
            offset: 0,
        })
    }

    /// A tensor living at `offset` bytes inside `buffer` (an arena). The range must fit, and the
    /// offset must meet the device's storage-offset alignment.
    pub fn view(
        device: &Device,
        buffer: Arc<wgpu::Buffer>,
        offset: u64,
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor> {
        let (_, bytes) = checked_size(shape, dtype)?;
        let align = device.caps().storage_offset_alignment as u64;
        if !offset.is_multiple_of(align)
            || offset
                .checked_add(word_padded(bytes))
                .is_none_or(|end| end > buffer.size())
        {
            return Err(Error::Invalid(format!(
                "view {shape:?} {dtype:?} at byte {offset}: needs {bytes} bytes aligned to {align} inside a buffer of {}",
                buffer.size()
            )));
        }
        device.check_binding(&format!("tensor view {shape:?}"), bytes)?;
        Ok(Tensor {
            device: device.clone(),
            shape: shape.to_vec(),
            dtype,
            buffer,
            offset,
        })
    }

    /// Uploads f32 data of the given shape.
    pub fn from_f32(device: &Device, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        Self::from_bytes(
            device,
            shape,
            DType::F32,
            bytemuck::cast_slice(data),
            data.len(),
        )
    }

    /// Uploads u32 data (indices, labels).
    pub fn from_u32(device: &Device, shape: &[usize], data: &[u32]) -> Result<Tensor> {
        Self::from_bytes(
            device,
            shape,
            DType::U32,
            bytemuck::cast_slice(data),
            data.len(),
        )
    }

    /// Uploads f32 data converted to f16 storage (a finite value beyond f16's range is an `Err`,
    /// see `to_f16`).
    pub fn from_f32_as_f16(device: &Device, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        let h = to_f16("from_f32_as_f16", shape, data)?;
        Self::from_bytes(
            device,
            shape,
            DType::F16,
            bytemuck::cast_slice(&h),
            data.len(),
        )
    }

    fn from_bytes(
        device: &Device,
        shape: &[usize],
        dtype: DType,
        bytes: &[u8],
        len: usize,
    ) -> Result<Tensor> {
        let (n, _) = checked_size(shape, dtype)?;
        if n != len {
            return Err(Error::Shape {
                op: "tensor upload".into(),
                msg: format!("shape {shape:?} holds {n} elements but {len} were given"),
            });
        }
        let t = Self::zeros(device, shape, dtype)?;
        t.write("tensor upload", dtype, bytes, len)?;
        Ok(t)
    }

    /// Dimensions, outermost first (row-major, e.g. NCHW).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements (the product of the shape).
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// The device that owns the buffer.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The buffer range this tensor occupies, for binding to a kernel.
    pub fn buffer(&self) -> Binding<'_> {
        Binding {
            buffer: &self.buffer,
            offset: self.offset,
            size: word_padded(self.bytes()),
            dtype: Some(self.dtype),
        }
    }

    /// This tensor's range bound in a slot the kernel never reads (an absent optional input):
    /// untyped, so it neither picks the kernel's variant nor is checked against its width.
    pub fn placeholder(&self) -> Binding<'_> {
        Binding {
            dtype: None,
            ..self.buffer()
        }
    }

    /// Overwrites the tensor's contents with u32 data (indices, labels) of the same element count.
    pub fn write_u32(&self, data: &[u32]) -> Result<()> {
        self.write(
            "write_u32",
            DType::U32,
            bytemuck::cast_slice(data),
            data.len(),
        )
    }

    /// Overwrites the tensor's contents with f32 data of the same element count (rounded to
    /// nearest when the tensor holds f16; a finite value beyond f16's range is an `Err`, see
    /// `to_f16`).
    pub fn write_f32(&self, data: &[f32]) -> Result<()> {
        if self.dtype == DType::F16 {
            let h = to_f16("write_f32", &self.shape, data)?;
            return self.write("write_f32", DType::F16, bytemuck::cast_slice(&h), h.len());
        }
        self.write(
            "write_f32",
            DType::F32,
            bytemuck::cast_slice(data),
            data.len(),
        )
    }

    /// Queue-ordered overwrite of `len` elements of `dtype` given as bytes.
    fn write(&self, op: &str, dtype: DType, bytes: &[u8], len: usize) -> Result<()> {
        if self.dtype != dtype {
            // Said from the writer's side: what was written, and what the tensor holds.
            return Err(Error::Invalid(format!(
                "{op}: {dtype:?} values written into a {:?} tensor {:?}",
                self.dtype, self.shape
            )));
        }
        if len != self.numel() {
            return Err(Error::Shape {
                op: op.into(),
                msg: format!("{len} values for a tensor {:?}", self.shape),
            });
        }
        if !bytes.is_empty() {
            // write_buffer takes whole 4-byte words: pad an odd f16 count (the binding and the
            // buffer are rounded up alike, so the pad lands in the tensor's own range).
            let mut padded;
            let data = if bytes.len().is_multiple_of(4) {
                bytes
            } else {
                padded = bytes.to_vec();
                padded.resize(bytes.len().div_ceil(4) * 4, 0);
                &padded[..]
            };
            self.device.scoped(|_| {
                self.device
                    .0
                    .queue
                    .write_buffer(&self.buffer, self.offset, data)
            })?;
        }
        Ok(())
    }

    /// Size in bytes (`numel × dtype size`).
    pub fn bytes(&self) -> u64 {
        (self.numel() * self.dtype.size()) as u64
    }

    /// The same buffer seen with another shape of equal element count (no copy).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if checked_size(shape, self.dtype)?.0 != self.numel() {
            return Err(Error::Shape {
                op: "reshape".into(),
                msg: format!(
                    "{:?} ({} elements) cannot become {shape:?} ({})",
                    self.shape,
                    self.numel(),
                    numel(shape)
                ),
            });
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            ..self.clone()
        })
    }

    /// Downloads as f32 (f16 is widened; u32 is an error: use `to_u32`).
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        let raw = self
            .device
            .read_buffer(&self.buffer, self.offset, self.bytes())?;
        match self.dtype {
            DType::F32 => Ok(bytemuck::cast_slice(&raw).to_vec()),
            DType::F16 => Ok(raw
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect()),
            DType::U32 => Err(Error::Invalid(format!(
                "to_f32 on a u32 tensor {:?}",
                self.shape
            ))),
        }
    }

    /// Downloads a u32 tensor.
    pub fn to_u32(&self) -> Result<Vec<u32>> {
        if self.dtype != DType::U32 {
            return Err(Error::Invalid(format!(
                "to_u32 on a {:?} tensor {:?}",
                self.dtype, self.shape
            )));
        }
        let raw = self
            .device
            .read_buffer(&self.buffer, self.offset, self.bytes())?;
        Ok(bytemuck::cast_slice(&raw).to_vec())
    }

    /// Checks the dtype, naming `op` on mismatch.
    pub fn expect_dtype(&self, op: &str, dtype: DType) -> Result<()> {
        // F32 stands for "a float": f16 tensors pick the kernels' f16 variant, and a launch
        // refuses a kernel without one (`Device::launch` checks each binding's width).
        let float = dtype == DType::F32 && self.dtype == DType::F16;
        if self.dtype != dtype && !float {
            return Err(Error::Invalid(format!(
                "{op}: expected a {dtype:?} tensor, got {:?} {:?}",
                self.dtype, self.shape
            )));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?}, {:?})", self.shape, self.dtype)
    }
}

/// Row-major strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// `data` rounded to f16 for `op` into a tensor of `shape`. A finite value that f16 cannot hold
/// (it would round to infinity) is an `Err` naming its index and value, not a silent infinity;
/// NaN and infinity pass as they are, as into an f32 tensor (the non-finite guards report them).
fn to_f16(op: &str, shape: &[usize], data: &[f32]) -> Result<Vec<half::f16>> {
    // The slice conversion uses the CPU's f16 instructions where it has them (mixed precision
    // feeds every batch through here).
    let mut h = vec![half::f16::ZERO; data.len()];
    half::slice::HalfFloatSliceExt::convert_from_f32_slice(&mut h[..], data);
    if let Some(i) = h
        .iter()
        .zip(data)
        .position(|(h, x)| h.is_infinite() && x.is_finite())
    {
        return Err(Error::Invalid(format!(
            "{op}: element {i} is {}, beyond f16's range (±{}) of an F16 tensor {shape:?}: it \
             would become {}",
            data[i],
            half::f16::MAX,
            h[i]
        )));
    }
    Ok(h)
}
