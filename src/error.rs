//! One error type for the whole crate: every failure a user can cause is an `Err` that names
//! the op, node, shape or file involved, never a panic or a wgpu validation abort.

use std::fmt;

/// What went wrong, with enough context to find it.
#[derive(Debug)]
pub enum Error {
    /// No GPU adapter could be found; the message says what to install.
    NoAdapter(String),
    /// The device refused a request (features, limits) or was lost.
    Device(String),
    /// A wgpu validation or out-of-memory error caught by an error scope.
    Gpu(String),
    /// A tensor, binding, grid or kernel exceeds a device limit; `unit` says what `amount` and
    /// `limit` count.
    TooLarge {
        /// The tensor, binding, grid or kernel, by name.
        what: String,
        /// How much was asked for, in `unit`s.
        amount: u64,
        /// The device's limit, in `unit`s.
        limit: u64,
        /// What `amount` and `limit` count.
        unit: Unit,
    },
    /// Shapes that do not fit together; names the op and the shapes.
    Shape {
        /// The op (and node, once the graph knows it).
        op: String,
        /// What does not fit, with the shapes.
        msg: String,
    },
    /// A bad attribute (stride 0, axis out of range, ...); names the op.
    Attr {
        /// The op (and node, once the graph knows it).
        op: String,
        /// Which attribute and why it is wrong.
        msg: String,
    },
    /// A file that could not be read or written, or whose contents are wrong.
    Io {
        /// The file (and tensor or record, where there is one).
        path: String,
        /// What went wrong.
        msg: String,
    },
    /// NaN or infinity where training needs finite values (the loss, gradients, weights, logits);
    /// `step` is the training step where it was found (0 where no step is involved).
    NonFinite {
        /// The step (1-based), or 0.
        step: u64,
        /// Where, and what to do about it.
        msg: String,
    },
    /// Anything else the user asked for that cannot be done.
    Invalid(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoAdapter(m) => write!(f, "no GPU adapter: {m}"),
            Error::Device(m) => write!(f, "device: {m}"),
            Error::Gpu(m) => write!(f, "GPU error: {m}"),
            Error::TooLarge {
                what,
                amount,
                limit,
                unit,
            } => write!(
                f,
                "{what} needs {amount} {unit} but the device allows at most {limit} {unit}"
            ),
            Error::Shape { op, msg } => write!(f, "{op}: shape mismatch: {msg}"),
            Error::Attr { op, msg } => write!(f, "{op}: bad attribute: {msg}"),
            Error::Io { path, msg } => write!(f, "{path}: {msg}"),
            Error::NonFinite { msg, .. } => write!(f, "non-finite values: {msg}"),
            Error::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

/// What the `amount` and `limit` of `Error::TooLarge` count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Bytes bound as one storage binding.
    BindingBytes,
    /// Bytes of one buffer.
    BufferBytes,
    /// Storage buffers bound by one shader stage (one dispatch).
    Bindings,
    /// Bytes of workgroup (shared) memory of one kernel.
    WorkgroupBytes,
    /// Workgroups along one dimension of a dispatch.
    Workgroups,
    /// Elements of one tensor (kernels index them with u32).
    Elements,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::BindingBytes => "bytes per binding",
            Unit::BufferBytes => "bytes per buffer",
            Unit::Bindings => "storage bindings per shader stage",
            Unit::WorkgroupBytes => "bytes of workgroup memory",
            Unit::Workgroups => "workgroups per dimension",
            Unit::Elements => "elements per tensor",
        })
    }
}

impl Error {
    /// The same error, its message prefixed with `context` (the node, the compile pass): the
    /// variant is kept, so callers match on the kind whatever added context on the way up.
    pub fn context(self, context: impl fmt::Display) -> Error {
        let at = |m: String| format!("{context}: {m}");
        match self {
            Error::NoAdapter(m) => Error::NoAdapter(at(m)),
            Error::Device(m) => Error::Device(at(m)),
            Error::Gpu(m) => Error::Gpu(at(m)),
            Error::TooLarge {
                what,
                amount,
                limit,
                unit,
            } => Error::TooLarge {
                what: at(what),
                amount,
                limit,
                unit,
            },
            Error::Shape { op, msg } => Error::Shape { op: at(op), msg },
            Error::Attr { op, msg } => Error::Attr { op: at(op), msg },
            Error::Io { path, msg } => Error::Io { path, msg: at(msg) },
            Error::NonFinite { step, msg } => Error::NonFinite { step, msg: at(msg) },
            Error::Invalid(m) => Error::Invalid(at(m)),
        }
    }
}

/// `std::result::Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for a shape error naming `op`.
pub fn shape_err<T>(op: &str, msg: impl Into<String>) -> Result<T> {
    Err(Error::Shape {
        op: op.to_string(),
        msg: msg.into(),
    })
}

/// Shorthand for an attribute error naming `op`.
pub fn attr_err<T>(op: &str, msg: impl Into<String>) -> Result<T> {
    Err(Error::Attr {
        op: op.to_string(),
        msg: msg.into(),
    })
}
