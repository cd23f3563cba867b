//! The bytes a reader parses, gzipped or not, read as a stream: a reader asks for what its
//! header declares and no more, so a small file that inflates to gigabytes (a gzip bomb) is
//! refused after the few bytes that show it, not after inflating them all. Gzip members may
//! follow one another (pigz, bgzip); anything else after the last member is an error.

use flate2::bufread::GzDecoder;
use std::io::Read;

use super::io_err;
use crate::Result;

/// The most bytes a reader builds from one file, gzipped or not: the (inflated) data, plus what
/// it decodes the data to (HAR samples become f32, each recording a struct). 1 GiB: twenty
/// times the full MNIST training images, far above the shipped data sets. A file declaring
/// more is an `Err` before any of it is read.
pub const MAX_DECODED_BYTES: u64 = 1 << 30;

/// How many trailing bytes an error counts exactly before it says "more than".
const TRAILING_COUNT_LIMIT: u64 = 1 << 16;

/// Bytes inflated per read: large enough to be fast, small enough that a truncated file never
/// makes a reader allocate much more than it had.
const CHUNK: usize = 1 << 16;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

enum Source<'a> {
    Plain(&'a [u8]),
    /// The member being inflated; its reader is the rest of the file.
    Gzip(Box<GzDecoder<&'a [u8]>>),
}

/// A file's bytes as a stream (inflated if they start with the gzip magic), bounded by a
/// ceiling on the bytes delivered plus those charged.
pub(crate) struct Input<'a> {
    src: Source<'a>,
    name: &'a str,
    /// Bytes delivered so far.
    pos: u64,
    /// Bytes delivered plus bytes charged; never above `ceiling`.
    used: u64,
    ceiling: u64,
}

impl<'a> Input<'a> {
    /// `bytes` (gzipped or not) under the default ceiling [`MAX_DECODED_BYTES`].
    pub(crate) fn new(bytes: &'a [u8], name: &'a str) -> Input<'a> {
        Self::with_ceiling(bytes, name, MAX_DECODED_BYTES)
    }

    /// `bytes` under `ceiling` (tests use a small one).
    pub(crate) fn with_ceiling(bytes: &'a [u8], name: &'a str, ceiling: u64) -> Input<'a> {
        let src = if bytes.starts_with(&GZIP_MAGIC) {
            Source::Gzip(Box::new(GzDecoder::new(bytes)))
        } else {
            Source::Plain(bytes)
        };
        Input {
            src,
            name,
            pos: 0,
            used: 0,
            ceiling,
        }
    }

    /// The name errors give the data (a path, usually).
    pub(crate) fn name(&self) -> &'a str {
        self.name
    }

    /// Bytes delivered so far (the offset of the next one).
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Counts `bytes` the reader is about to allocate for its own structures against the
    /// ceiling; an `Err` if they would pass it.
    pub(crate) fn charge(&mut self, bytes: u64, what: &str) -> Result<()> {
        self.reserve(bytes, what)?;
        self.used += bytes;
        Ok(())
    }

    fn reserve(&self, bytes: u64, what: &str) -> Result<()> {
        match self.used.checked_add(bytes) {
            Some(total) if total <= self.ceiling => Ok(()),
            _ => Err(io_err(
                self.name,
                format!(
                    "{what} needs {bytes} bytes at offset {}: past the limit of {} bytes a file may decode to",
                    self.pos, self.ceiling
                ),
            )),
        }
    }

    /// Fills `buf` as far as the data goes; returns how many bytes it holds (fewer only at the
    /// end of the data). Gzip errors and trailing junk after the last member are `Err`s.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            let n = match &mut self.src {
                Source::Plain(rest) => {
                    let n = rest.len().min(buf.len() - got);
                    buf[got..got + n].copy_from_slice(&rest[..n]);
                    *rest = &rest[n..];
                    n
                }
                Source::Gzip(dec) => {
                    let n = dec
                        .read(&mut buf[got..])
                        .map_err(|e| io_err(self.name, format!("corrupt gzip data: {e}")))?;
                    if n == 0 {
                        // This member is done (its CRC and length checked): another member,
                        // the end, or junk.
                        let rest = *dec.get_ref();
                        if rest.is_empty() {
                            break;
                        }
                        if !rest.starts_with(&GZIP_MAGIC) {
                            return Err(io_err(
                                self.name,
                                format!(
                                    "{} bytes of trailing junk after the gzip data (not another gzip member)",
                                    rest.len()
                                ),
                            ));
                        }
                        **dec = GzDecoder::new(rest);
                        continue;
                    }
                    n
                }
            };
            if n == 0 {
                break;
            }
            got += n;
        }
        self.pos += got as u64;
        self.used += got as u64;
        Ok(got)
    }

    /// Exactly `N` bytes, or `Ok(None)` where the data ends first (after consuming the rest).
    pub(crate) fn array<const N: usize>(&mut self, what: &str) -> Result<Option<[u8; N]>> {
        self.reserve(N as u64, what)?;
        let mut b = [0u8; N];
        Ok((self.fill(&mut b)? == N).then_some(b))
    }

    /// Up to `n` bytes: exactly `n` unless the data ends first. The ceiling is checked before
    /// anything is read, and the buffer grows with the data, never to a size only declared.
    pub(crate) fn up_to(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        self.reserve(n, what)?;
        if let Source::Plain(rest) = &self.src {
            // Already in memory: the copy is as large as the data, whatever `n` says.
            let k = usize::try_from(n).map_or(rest.len(), |n| n.min(rest.len()));
            let mut v = vec![0u8; k];
            self.fill(&mut v)?;
            return Ok(v);
        }
        let mut v = Vec::new();
        while (v.len() as u64) < n {
            let start = v.len();
            let step = usize::try_from(n - start as u64).map_or(CHUNK, |left| left.min(CHUNK));
            v.resize(start + step, 0);
            let got = self.fill(&mut v[start..])?;
            v.truncate(start + got);
            if got < step {
                break;
            }
        }
        Ok(v)
    }

    /// Whether data follows: `None` at the clean end of the input (every gzip member checked),
    /// else how much follows, counted up to a limit ("4 bytes", "more than 65536 bytes").
    pub(crate) fn trailing(&mut self) -> Result<Option<String>> {
        let mut count = 0u64;
        let mut buf = [0u8; 4096];
        while count <= TRAILING_COUNT_LIMIT {
            // Trailing bytes are counted, not kept: they do not count against the ceiling.
            let (pos, used) = (self.pos, self.used);
            let got = self.fill(&mut buf)?;
            (self.pos, self.used) = (pos, used);
            if got == 0 {
                break;
            }
            count += got as u64;
        }
        Ok(match count {
            0 => None,
            c if c > TRAILING_COUNT_LIMIT => {
                Some(format!("more than {TRAILING_COUNT_LIMIT} bytes"))
            }
            c => Some(format!("{c} bytes")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use std::io::Write;

    pub(crate) fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn msg<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(Error::Io { path, msg }) => {
                assert_eq!(path, "f");
                msg
            }
            other => panic!("expected an Io error, got {other:?}"),
        }
    }

    #[test]
    fn plain_and_gzip_read_the_same_and_members_chain() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let (a, b) = data.split_at(70_001);
        let multi = [gz(a), gz(b), gz(&[])].concat();
        for bytes in [data.clone(), gz(&data), multi] {
            let mut i = Input::new(&bytes, "f");
            assert_eq!(i.array::<3>("head").unwrap(), Some([0, 31, 62]));
            // More than there is: the data, and no more.
            assert_eq!(i.up_to(1 << 20, "rest").unwrap(), data[3..]);
            assert_eq!(i.pos(), data.len() as u64);
            assert_eq!(i.trailing().unwrap(), None);
        }
    }

    #[test]
    fn the_ceiling_is_checked_before_reading() {
        let zeros = gz(&vec![0u8; 1 << 20]);
        let mut i = Input::with_ceiling(&zeros, "f", 1000);
        let e = msg(i.up_to(1001, "the data"));
        assert!(
            e.contains("the data needs 1001 bytes") && e.contains("limit of 1000"),
            "{e}"
        );
        let mut i = Input::with_ceiling(&zeros, "f", 1000);
        assert_eq!(i.up_to(600, "a").unwrap().len(), 600);
        i.charge(300, "b").unwrap();
        assert!(msg(i.charge(101, "c")).contains("c needs 101 bytes at offset 600"));
        assert!(msg(i.array::<101>("d")).contains("limit"));
        // Trailing data is counted, not kept, and reported with a bound.
        assert_eq!(i.trailing().unwrap().unwrap(), "more than 65536 bytes");
        let plain = [1u8, 2, 3];
        let mut i = Input::with_ceiling(&plain, "f", 10);
        assert_eq!(i.up_to(5, "x").unwrap(), [1, 2, 3]);
    }

    #[test]
    fn junk_truncation_and_corruption_are_errors() {
        let z = gz(b"hello");
        let junk = [z.clone(), b"junk".to_vec()].concat();
        let mut i = Input::new(&junk, "f");
        let e = msg(i.up_to(10, "x"));
        assert!(
            e.contains("4 bytes of trailing junk after the gzip data"),
            "{e}"
        );
        // The junk shows even when the reader stops exactly at the data's end.
        let mut i = Input::new(&junk, "f");
        assert_eq!(i.up_to(5, "x").unwrap(), b"hello");
        assert!(msg(i.trailing()).contains("trailing junk"));
        let zeros = [z.clone(), vec![0; 3]].concat();
        assert!(msg(Input::new(&zeros, "f").up_to(9, "x")).contains("trailing junk"));
        for cut in [z.len() - 1, z.len() - 5, 12, 3] {
            let mut i = Input::new(&z[..cut], "f");
            assert!(msg(i.up_to(5, "x").and_then(|_| i.trailing())).contains("corrupt gzip"));
        }
        // A second member cut short.
        let two = [z.clone(), z[..z.len() - 2].to_vec()].concat();
        assert!(msg(Input::new(&two, "f").up_to(20, "x")).contains("corrupt gzip"));
        let mut flipped = z.clone();
        flipped[z.len() - 6] ^= 1; // the CRC
        assert!(msg(Input::new(&flipped, "f").up_to(20, "x")).contains("corrupt gzip"));
    }
}
