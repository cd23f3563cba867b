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
    /// A tensor or binding exceeds a device limit.
    TooLarge {
        what: String,
        bytes: u64,
        limit: u64,
    },
    /// Shapes that do not fit together; names the op and the shapes.
    Shape { op: String, msg: String },
    /// A bad attribute (stride 0, axis out of range, ...); names the op.
    Attr { op: String, msg: String },
    /// A file that could not be read or written, or whose contents are wrong.
    Io { path: String, msg: String },
    /// Anything else the user asked for that cannot be done.
    Invalid(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoAdapter(m) => write!(f, "no GPU adapter: {m}"),
            Error::Device(m) => write!(f, "device: {m}"),
            Error::Gpu(m) => write!(f, "GPU error: {m}"),
            Error::TooLarge { what, bytes, limit } => write!(
                f,
                "{what} needs {bytes} bytes but the device allows at most {limit} bytes per binding"
            ),
            Error::Shape { op, msg } => write!(f, "{op}: shape mismatch: {msg}"),
            Error::Attr { op, msg } => write!(f, "{op}: bad attribute: {msg}"),
            Error::Io { path, msg } => write!(f, "{path}: {msg}"),
            Error::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

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
