//! The UCI HAPT smartphone recordings (accelerometer + gyroscope, 50 Hz, 30 users, 61
//! recordings, 12 activities) as the bytes of one gzipped file in the format `README.md`
//! specifies.
//!
//! A separate crate so that `wgtrain` stays small on crates.io: enable wgtrain's
//! `embedded-har` feature (or `embedded-data`) for `wgtrain::data::Har::embedded()`, or pass
//! [`HAPT`] to `wgtrain::data::Har::from_bytes`.
//!
//! Data: Jorge L. Reyes-Ortiz, Davide Anguita, Alessandro Ghio, Luca Oneto and Xavier Parra, the
//! UCI "Smartphone-Based Recognition of Human Activities and Postural Transitions" data set,
//! CC BY 4.0; paper: Reyes-Ortiz, Oneto, Samà, Parra, Anguita, *Transition-Aware Human Activity
//! Recognition Using Smartphones*, Neurocomputing 171 (2016) 754–767. Converted (quantized,
//! re-encoded) by this project; `README.md` gives the details.

#![no_std]

/// `hapt.bin.gz`: magic `WHAR`, format version 1, 6 channels, 61 recordings, 1,122,772 samples.
pub const HAPT: &[u8] = include_bytes!("../hapt.bin.gz");

#[cfg(test)]
mod tests {
    use super::*;

    /// One gzip stream whose trailer (ISIZE, the decoded length mod 2^32) matches the 61
    /// recordings: a truncated or replaced file fails here, before wgtrain parses it.
    #[test]
    fn file_is_a_gzip_stream_of_the_declared_size() {
        assert_eq!(HAPT[..3], [0x1f, 0x8b, 8], "gzip magic and deflate");
        let trailer: [u8; 4] = HAPT[HAPT.len() - 4..].try_into().unwrap();
        assert_eq!(u32::from_le_bytes(trailer), 14_596_780);
    }
}
