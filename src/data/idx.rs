//! IDX, the file format of MNIST and its look-alikes (Fashion-MNIST, KMNIST, EMNIST).
//!
//! Layout: magic `00 00 TT NN` (TT = element type, NN = number of dimensions), then NN big-endian
//! u32 dimensions, then the elements in row-major order. Only u8 elements (TT = 0x08) are
//! supported, which is what every MNIST-style data set uses: 0x00000801 for labels,
//! 0x00000803 for images. Files may be gzipped (detected by the `1f 8b` magic, not the name).

use super::input::Input;
use super::{io_err, read_path};
use crate::Result;
use std::io::Write;
use std::path::Path;

/// A u8 IDX array: dimensions and row-major data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Elements, row-major.
    pub data: Vec<u8>,
}

/// The IDX element-type byte for u8, the only type read here.
const DTYPE_U8: u8 = 0x08;

fn dtype_name(t: u8) -> Option<&'static str> {
    Some(match t {
        0x08 => "u8",
        0x09 => "i8",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => return None,
    })
}

impl Idx {
    /// Checks that `data` holds exactly `dims.iter().product()` bytes.
    pub fn new(dims: Vec<usize>, data: Vec<u8>) -> Result<Idx> {
        let want = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if dims.is_empty() || dims.len() > 255 || want != Some(data.len()) {
            return Err(crate::Error::Invalid(format!(
                "Idx::new: {} bytes do not fit dims {dims:?} (1 to 255 dims)",
                data.len()
            )));
        }
        if let Some(&d) = dims.iter().find(|&&d| d > u32::MAX as usize) {
            return Err(crate::Error::Invalid(format!(
                "Idx::new: dimension {d} exceeds u32"
            )));
        }
        Ok(Idx { dims, data })
    }

    /// Reads an IDX file, gzipped or not; every error names `path`.
    pub fn read(path: impl AsRef<Path>) -> Result<Idx> {
        let path = path.as_ref();
        Self::from_bytes(&read_path(path)?, &path.display().to_string())
    }

    /// Parses IDX bytes, gzipped or not; `name` is what errors call the data (a path, usually).
    /// A gzipped file is inflated only as far as its header says the data goes (and never
    /// past [`MAX_DECODED_BYTES`](super::MAX_DECODED_BYTES)).
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Idx> {
        Self::parse(Input::new(bytes, name))
    }

    fn parse(mut input: Input) -> Result<Idx> {
        let name = input.name();
        let Some(magic) = input.array::<4>("the magic")? else {
            return Err(io_err(
                name,
                format!(
                    "not an IDX file: {} bytes, shorter than the magic",
                    input.pos()
                ),
            ));
        };
        if magic[0] != 0 || magic[1] != 0 {
            return Err(io_err(
                name,
                format!(
                    "not an IDX file: bad magic 0x{:08x}",
                    u32::from_be_bytes(magic)
                ),
            ));
        }
        let (dtype, ndim) = (magic[2], magic[3] as usize);
        if dtype != DTYPE_U8 {
            let what = match dtype_name(dtype) {
                Some(t) => {
                    format!("element type {t} (0x{dtype:02x}) is not supported, only u8 (0x08)")
                }
                None => format!("unknown IDX element type 0x{dtype:02x}"),
            };
            return Err(io_err(name, what));
        }
        if ndim == 0 {
            return Err(io_err(name, "IDX header declares 0 dimensions"));
        }
        let head = 4 + 4 * ndim;
        let raw = input.up_to(4 * ndim as u64, "the dimensions")?;
        if raw.len() < 4 * ndim {
            return Err(io_err(
                name,
                format!(
                    "truncated: header needs {head} bytes for {ndim} dimensions, file has {}",
                    input.pos()
                ),
            ));
        }
        let dims: Vec<usize> = raw
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
            .collect();
        let Some(want) = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
            return Err(io_err(name, format!("dims {dims:?} overflow")));
        };
        let data = input.up_to(want as u64, &format!("the data of dims {dims:?}"))?;
        if data.len() < want {
            return Err(io_err(
                name,
                format!(
                    "truncated: dims {dims:?} need {want} data bytes, file has {}",
                    data.len()
                ),
            ));
        }
        if let Some(t) = input.trailing()? {
            return Err(io_err(
                name,
                format!("trailing garbage: {t} after the {want} data bytes of dims {dims:?}"),
            ));
        }
        Ok(Idx { dims, data })
    }

    /// The uncompressed IDX encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 4 * self.dims.len() + self.data.len());
        out.extend_from_slice(&[0, 0, DTYPE_U8, self.dims.len() as u8]);
        for &d in &self.dims {
            out.extend_from_slice(&(d as u32).to_be_bytes());
        }
        out.extend_from_slice(&self.data);
        out
    }

    /// Writes the file, gzipped if `gzip`, so small data sets can be made in the MNIST format.
    pub fn write(&self, path: impl AsRef<Path>, gzip: bool) -> Result<()> {
        let path = path.as_ref();
        let err =
            |e: std::io::Error| io_err(&path.display().to_string(), format!("cannot write: {e}"));
        let bytes = if gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&self.to_bytes()).map_err(err)?;
            enc.finish().map_err(err)?
        } else {
            self.to_bytes()
        };
        std::fs::write(path, bytes).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// Asserts an `Io` error naming `name` whose message contains `what`.
    fn assert_io_err(r: Result<Idx>, name: &str, what: &str) {
        match r {
            Err(Error::Io { path, msg }) => {
                assert_eq!(path, name);
                assert!(msg.contains(what), "message {msg:?} lacks {what:?}");
            }
            other => panic!("expected Io error with {what:?}, got {other:?}"),
        }
    }

    fn sample() -> Idx {
        Idx::new(vec![3, 2, 4], (0..24).collect()).unwrap()
    }

    #[test]
    fn round_trip_plain_and_gzip() {
        let a = sample();
        let bytes = a.to_bytes();
        assert_eq!(&bytes[..4], &[0, 0, 8, 3]);
        assert_eq!(&bytes[4..8], &[0, 0, 0, 3]);
        assert_eq!(Idx::from_bytes(&bytes, "x").unwrap(), a);
        assert_eq!(Idx::from_bytes(&gz(&bytes), "x").unwrap(), a);
        let labels = Idx::new(vec![5], vec![1, 2, 3, 4, 5]).unwrap();
        assert_eq!(&labels.to_bytes()[..4], &[0, 0, 8, 1]);
        assert_eq!(Idx::from_bytes(&labels.to_bytes(), "y").unwrap(), labels);
    }

    #[test]
    fn round_trip_through_files() {
        let dir = std::env::temp_dir().join(format!("wgtrain-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = sample();
        for gzip in [false, true] {
            let p = dir.join(format!("a{gzip}"));
            a.write(&p, gzip).unwrap();
            let raw = std::fs::read(&p).unwrap();
            assert_eq!(raw.starts_with(&[0x1f, 0x8b]), gzip);
            assert_eq!(Idx::read(&p).unwrap(), a);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn new_rejects_mismatch() {
        assert!(Idx::new(vec![2, 2], vec![0; 3]).is_err());
        assert!(Idx::new(vec![], vec![]).is_err());
    }

    #[test]
    fn missing_file() {
        let p = std::env::temp_dir().join("wgtrain-no-such-file.idx");
        assert_io_err(Idx::read(&p), &p.display().to_string(), "cannot read");
    }

    #[test]
    fn bad_inputs_name_the_file() {
        let good = sample().to_bytes();
        let mut bad_magic = good.clone();
        bad_magic[0] = 0x12;
        assert_io_err(
            Idx::from_bytes(&bad_magic, "m.idx"),
            "m.idx",
            "bad magic 0x12000803",
        );
        assert_io_err(
            Idx::from_bytes(b"PK\x03\x04zip", "z.idx"),
            "z.idx",
            "bad magic",
        );
        assert_io_err(
            Idx::from_bytes(&[0, 0], "s.idx"),
            "s.idx",
            "not an IDX file",
        );
        let mut f32_type = good.clone();
        f32_type[2] = 0x0D;
        assert_io_err(
            Idx::from_bytes(&f32_type, "f.idx"),
            "f.idx",
            "f32 (0x0d) is not supported",
        );
        let mut odd_type = good.clone();
        odd_type[2] = 0x42;
        assert_io_err(
            Idx::from_bytes(&odd_type, "o.idx"),
            "o.idx",
            "unknown IDX element type",
        );
        assert_io_err(
            Idx::from_bytes(&good[..10], "h.idx"),
            "h.idx",
            "truncated: header",
        );
        assert_io_err(
            Idx::from_bytes(&good[..good.len() - 1], "t.idx"),
            "t.idx",
            "need 24 data bytes, file has 23",
        );
        let mut long = good.clone();
        long.extend_from_slice(b"junk");
        assert_io_err(
            Idx::from_bytes(&long, "g.idx"),
            "g.idx",
            "trailing garbage: 4 bytes",
        );
        assert_io_err(
            Idx::from_bytes(&[0, 0, 8, 0], "d.idx"),
            "d.idx",
            "0 dimensions",
        );
        let huge = [
            0, 0, 8, 3, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        ];
        assert!(Idx::from_bytes(&huge, "huge.idx").is_err());
    }

    /// Gzip as pigz and bgzip write it (several members) reads as one stream; anything else
    /// after the last member is refused; the declared size bounds what is inflated.
    #[test]
    fn members_junk_and_the_ceiling() {
        let a = sample();
        let bytes = a.to_bytes();
        let multi = [gz(&bytes[..5]), gz(&bytes[5..17]), gz(&bytes[17..])].concat();
        assert_eq!(Idx::from_bytes(&multi, "multi.gz").unwrap(), a);
        let junk = [gz(&bytes), b"\0\0".to_vec()].concat();
        assert_io_err(
            Idx::from_bytes(&junk, "junk.gz"),
            "junk.gz",
            "2 bytes of trailing junk after the gzip data",
        );
        // Data past the declared size inside the gzip data: counted up to a bound, not inflated.
        let bomb = gz(&[bytes.clone(), vec![0; 1 << 20]].concat());
        assert_io_err(
            Idx::from_bytes(&bomb, "bomb.gz"),
            "bomb.gz",
            "trailing garbage: more than 65536 bytes after the 24 data bytes",
        );
        // A declared size past the ceiling is refused before anything is inflated.
        let big = Idx::new(vec![40, 1], vec![7; 40]).unwrap().to_bytes();
        assert_io_err(
            Idx::parse(Input::with_ceiling(&gz(&big), "big.gz", 47)),
            "big.gz",
            "needs 40 bytes at offset 12: past the limit of 47 bytes",
        );
        assert!(Idx::parse(Input::with_ceiling(&gz(&big), "big.gz", 52)).is_ok());
    }

    #[test]
    fn corrupt_gzip_names_the_file() {
        let z = gz(&sample().to_bytes());
        assert_io_err(
            Idx::from_bytes(&z[..z.len() / 2], "cut.gz"),
            "cut.gz",
            "corrupt gzip",
        );
        assert_io_err(
            Idx::from_bytes(&z[..z.len() - 4], "nolen.gz"),
            "nolen.gz",
            "corrupt gzip",
        );
        let mut flipped = z.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        assert_io_err(
            Idx::from_bytes(&flipped, "flip.gz"),
            "flip.gz",
            "corrupt gzip",
        );
        assert_io_err(
            Idx::from_bytes(&[0x1f, 0x8b, 8], "stub.gz"),
            "stub.gz",
            "corrupt gzip",
        );
    }
}
