//! What a run leaves behind for a person: a JSON-lines metrics file (one record per logged step and
//! per epoch) and an SVG plot of loss and accuracy per epoch that any browser opens.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One line of the metrics file.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Epoch, 1-based.
    pub epoch: usize,
    /// Optimizer steps so far.
    pub step: u64,
    /// Training loss (mean per sample).
    pub loss: f64,
    /// Test accuracy, on epoch records.
    pub accuracy: Option<f64>,
    /// Training throughput, in images per second.
    pub images_per_s: f64,
}

impl Record {
    fn json(&self) -> String {
        let acc = self
            .accuracy
            .map_or("null".to_string(), |a| format!("{a:.6}"));
        format!(
            "{{\"epoch\":{},\"step\":{},\"loss\":{:.6},\"accuracy\":{},\"images_per_s\":{:.1}}}",
            self.epoch, self.step, self.loss, acc, self.images_per_s
        )
    }
}

/// Appends records to `metrics.jsonl` and redraws `curves.svg` from the epoch records.
pub struct Metrics {
    path: PathBuf,
    svg: PathBuf,
    epochs: Vec<Record>,
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

impl Metrics {
    /// Opens `dir/metrics.jsonl`: emptied for a fresh run, appended to when `resume` (a
    /// resumed run continues the same file).
    pub fn open(dir: &Path, resume: bool) -> Result<Metrics> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let path = dir.join("metrics.jsonl");
        if !resume {
            std::fs::write(&path, b"").map_err(|e| io(&path, e))?;
        }
        Ok(Metrics {
            path: dir.join("metrics.jsonl"),
            svg: dir.join("curves.svg"),
            epochs: Vec::new(),
        })
    }

    /// Appends `r` to the JSON lines file and, for an epoch record, redraws the plot.
    pub fn log(&mut self, r: &Record) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| io(&self.path, e))?;
        writeln!(f, "{}", r.json()).map_err(|e| io(&self.path, e))?;
        if r.accuracy.is_some() {
            self.epochs.push(r.clone());
            std::fs::write(&self.svg, plot(&self.epochs)).map_err(|e| io(&self.svg, e))?;
        }
        Ok(())
    }

    /// Where the plot is written.
    pub fn svg_path(&self) -> &Path {
        &self.svg
    }
}

/// Loss (left axis) and accuracy (right axis) per epoch as an SVG document.
pub fn plot(epochs: &[Record]) -> String {
    let (w, h, m) = (640.0, 360.0, 50.0);
    let n = epochs.len().max(2) as f64;
    let max_loss = epochs.iter().map(|r| r.loss).fold(1e-9, f64::max);
    let x = |i: usize| m + (w - 2.0 * m) * i as f64 / (n - 1.0);
    let y = |v: f64| h - m - (h - 2.0 * m) * v;
    let line = |vals: Vec<f64>| -> String {
        vals.iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let loss = line(epochs.iter().map(|r| r.loss / max_loss).collect());
    let acc = line(epochs.iter().map(|r| r.accuracy.unwrap_or(0.0)).collect());
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <line x1=\"{m}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <line x1=\"{m}\" y1=\"{m}\" x2=\"{m}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <line x1=\"{r}\" y1=\"{m}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <text x=\"{m}\" y=\"30\" fill=\"#c0392b\">loss (max {max_loss:.4})</text>\n\
         <text x=\"{t}\" y=\"30\" fill=\"#2471a3\">test accuracy (0–100%)</text>\n\
         <text x=\"{cx}\" y=\"{lx}\" text-anchor=\"middle\">epoch</text>\n\
         <polyline fill=\"none\" stroke=\"#c0392b\" stroke-width=\"2\" points=\"{loss}\"/>\n\
         <polyline fill=\"none\" stroke=\"#2471a3\" stroke-width=\"2\" points=\"{acc}\"/>\n",
        b = h - m,
        r = w - m,
        t = w - m - 160.0,
        cx = w / 2.0,
        lx = h - 15.0,
    );
    for (i, r) in epochs.iter().enumerate() {
        s += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            x(i),
            h - m + 15.0,
            r.epoch
        );
    }
    if let Some(last) = epochs.last() {
        s += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#2471a3\" text-anchor=\"end\">{:.2}%</text>\n",
            x(epochs.len() - 1),
            y(last.accuracy.unwrap_or(0.0)) - 6.0,
            100.0 * last.accuracy.unwrap_or(0.0)
        );
    }
    s + "</svg>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_jsonl_and_svg() {
        let dir = std::env::temp_dir().join(format!("wgtrain-metrics-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut m = Metrics::open(&dir, false).unwrap();
        m.log(&Record {
            epoch: 1,
            step: 10,
            loss: 0.5,
            accuracy: None,
            images_per_s: 100.0,
        })
        .unwrap();
        m.log(&Record {
            epoch: 1,
            step: 20,
            loss: 0.4,
            accuracy: Some(0.91),
            images_per_s: 120.0,
        })
        .unwrap();
        m.log(&Record {
            epoch: 2,
            step: 40,
            loss: 0.2,
            accuracy: Some(0.95),
            images_per_s: 120.0,
        })
        .unwrap();
        let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .contains("\"accuracy\":0.910000")
        );
        let svg = std::fs::read_to_string(m.svg_path()).unwrap();
        assert!(
            svg.starts_with("<svg")
                && svg.contains("95.00%")
                && svg.matches("<polyline").count() == 2
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
