//! A confusion matrix: what a classifier predicted for each true class, with the scores derived
//! from it (accuracy, accuracy over a subset of classes, per-class precision and recall), a
//! plain-text table and an SVG heat map.

use crate::error::{Error, Result};

/// Counts of (true class, predicted class) pairs; row = true class, column = prediction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    classes: usize,
    counts: Vec<u64>,
}

fn invalid(msg: String) -> Error {
    Error::Invalid(format!("confusion matrix: {msg}"))
}

impl ConfusionMatrix {
    /// An empty matrix over `classes` classes (at least 1).
    pub fn new(classes: usize) -> Result<ConfusionMatrix> {
        if classes == 0 {
            return Err(invalid("needs at least one class".into()));
        }
        Ok(ConfusionMatrix {
            classes,
            counts: vec![0; classes * classes],
        })
    }

    /// The matrix of `truth[i]` vs `predicted[i]`; the slices must have the same length and
    /// every label must be below `classes`.
    pub fn from_predictions(
        classes: usize,
        truth: &[u32],
        predicted: &[u32],
    ) -> Result<ConfusionMatrix> {
        if truth.len() != predicted.len() {
            return Err(invalid(format!(
                "{} true labels but {} predictions",
                truth.len(),
                predicted.len()
            )));
        }
        let mut m = ConfusionMatrix::new(classes)?;
        for (&t, &p) in truth.iter().zip(predicted) {
            m.add(t as usize, p as usize)?;
        }
        Ok(m)
    }

    /// A matrix from its counts, row-major (row = true class); `counts.len()` must be a square.
    pub fn from_counts(counts: Vec<u64>) -> Result<ConfusionMatrix> {
        let classes = counts.len().isqrt();
        if classes == 0 || classes * classes != counts.len() {
            return Err(invalid(format!(
                "{} counts are not a non-empty square",
                counts.len()
            )));
        }
        Ok(ConfusionMatrix { classes, counts })
    }

    /// Counts one sample of class `truth` predicted as `predicted`.
    pub fn add(&mut self, truth: usize, predicted: usize) -> Result<()> {
        self.check(truth, "true label")?;
        self.check(predicted, "prediction")?;
        self.counts[truth * self.classes + predicted] += 1;
        Ok(())
    }

    fn check(&self, class: usize, what: &str) -> Result<()> {
        if class >= self.classes {
            return Err(invalid(format!(
                "{what} {class} out of range for {} classes",
                self.classes
            )));
        }
        Ok(())
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The counts, row-major: `counts()[truth * classes() + predicted]`.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Samples of class `truth` predicted as `predicted` (0 when either is out of range).
    pub fn count(&self, truth: usize, predicted: usize) -> u64 {
        if truth < self.classes && predicted < self.classes {
            self.counts[truth * self.classes + predicted]
        } else {
            0
        }
    }

    /// All samples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Samples whose true class is `class` (its row's sum).
    pub fn support(&self, class: usize) -> u64 {
        (0..self.classes).map(|p| self.count(class, p)).sum()
    }

    /// Samples predicted as `class` (its column's sum).
    pub fn predicted(&self, class: usize) -> u64 {
        (0..self.classes).map(|t| self.count(t, class)).sum()
    }

    /// Fraction predicted correctly (0 for an empty matrix).
    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..self.classes).map(|c| self.count(c, c)).sum();
        correct as f64 / self.total().max(1) as f64
    }

    /// Fraction predicted correctly among the samples whose true class is in `classes`; a
    /// prediction of a class outside the subset counts as wrong (the classifier still chose among
    /// all classes). 0 when the subset has no samples; `Err` for a class out of range.
    pub fn accuracy_over(&self, classes: &[usize]) -> Result<f64> {
        let (mut correct, mut total) = (0, 0);
        for &c in classes {
            self.check(c, "class")?;
            correct += self.count(c, c);
            total += self.support(c);
        }
        Ok(correct as f64 / total.max(1) as f64)
    }

    /// Of the samples predicted as `class`, the fraction that were that class; `None` if none
    /// were predicted as it (or it is out of range).
    pub fn precision(&self, class: usize) -> Option<f64> {
        let p = self.predicted(class);
        (p > 0).then(|| self.count(class, class) as f64 / p as f64)
    }

    /// Of the samples of `class`, the fraction predicted as it; `None` if there were none.
    pub fn recall(&self, class: usize) -> Option<f64> {
        let s = self.support(class);
        (s > 0).then(|| self.count(class, class) as f64 / s as f64)
    }

    fn check_names(&self, names: &[String]) -> Result<()> {
        if names.len() != self.classes {
            return Err(invalid(format!(
                "{} class names for {} classes",
                names.len(),
                self.classes
            )));
        }
        Ok(())
    }

    /// A plain-text table: one row per true class (name, counts per predicted class, recall),
    /// columns numbered by class with a legend, and a precision row.
    pub fn table(&self, names: &[String]) -> Result<String> {
        self.check_names(names)?;
        let k = self.classes;
        let name_w = names.iter().map(|n| n.len()).max().unwrap_or(0).max(10);
        let cell_w = self
            .counts
            .iter()
            .map(|c| c.to_string().len())
            .max()
            .unwrap_or(1)
            .max(k.to_string().len())
            .max(3)
            + 1;
        let pct = |v: Option<f64>| v.map_or("  -".to_string(), |v| format!("{:.1}", 100.0 * v));
        let mut s = format!("{:<w$}", "true\\predicted", w = name_w + 4);
        for p in 0..k {
            s += &format!("{p:>cell_w$}");
        }
        s += "  recall%\n";
        for (t, name) in names.iter().enumerate() {
            s += &format!("{t:>2} {name:<name_w$} ");
            for p in 0..k {
                s += &format!("{:>cell_w$}", self.count(t, p));
            }
            s += &format!("  {:>7}\n", pct(self.recall(t)));
        }
        s += &format!("{:<w$}", "precision%", w = name_w + 4);
        for p in 0..k {
            // One decimal does not fit a narrow column; whole percents do.
            let v = self
                .precision(p)
                .map_or("-".to_string(), |v| format!("{:.0}", 100.0 * v));
            s += &format!("{v:>cell_w$}");
        }
        s.push('\n');
        Ok(s)
    }

    /// An SVG heat map: each cell shaded by the fraction of its true class (row-normalised, so
    /// rare classes are as visible as common ones) and labelled with its count.
    pub fn svg(&self, names: &[String], title: &str) -> Result<String> {
        self.check_names(names)?;
        let k = self.classes as f64;
        let cell = 44.0;
        let left = 12.0 + 7.0 * names.iter().map(|n| n.len()).max().unwrap_or(0) as f64;
        let top = 60.0;
        let bottom =
            top + cell * k + 8.0 + 7.0 * names.iter().map(|n| n.len()).max().unwrap_or(0) as f64;
        let (w, h) = (left + cell * k + 20.0, bottom + 20.0);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" \
             font-family=\"sans-serif\" font-size=\"11\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"{left:.0}\" y=\"20\" font-size=\"14\">{}</text>\n\
             <text x=\"{left:.0}\" y=\"38\">rows: true class; columns: predicted; \
             accuracy {:.2}% of {}</text>\n",
            xml_escape(title),
            100.0 * self.accuracy(),
            self.total()
        );
        for (t, name) in names.iter().enumerate() {
            let y = top + cell * t as f64;
            s += &format!(
                "<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
                left - 6.0,
                y + cell / 2.0 + 4.0,
                xml_escape(name)
            );
            let x = left + cell * t as f64 + cell / 2.0 + 4.0;
            let yl = top + cell * k + 8.0;
            s += &format!(
                "<text x=\"{x:.1}\" y=\"{yl:.1}\" transform=\"rotate(90 {x:.1} {yl:.1})\">{}</text>\n",
                xml_escape(name)
            );
            let row = self.support(t).max(1) as f64;
            for p in 0..self.classes {
                let n = self.count(t, p);
                let f = n as f64 / row;
                // White to deep blue; the text turns white on the dark half.
                let shade = |c0: f64, c1: f64| (c0 + (c1 - c0) * f).round() as u8;
                let fill = format!(
                    "#{:02x}{:02x}{:02x}",
                    shade(255.0, 8.0),
                    shade(255.0, 48.0),
                    shade(255.0, 107.0)
                );
                let ink = if f > 0.5 { "white" } else { "black" };
                let x = left + cell * p as f64;
                s += &format!(
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cell}\" height=\"{cell}\" \
                     fill=\"{fill}\" stroke=\"#ccc\"/>\n\
                     <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{ink}\">{n}</text>\n",
                    x + cell / 2.0,
                    y + cell / 2.0 + 4.0
                );
            }
        }
        Ok(s + "</svg>\n")
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|i| format!("class{i}")).collect()
    }

    /// truth 0,0,0,1,1,2 predicted 0,0,1,1,2,2:
    /// row 0: [2 1 0], row 1: [0 1 1], row 2: [0 0 1].
    fn small() -> ConfusionMatrix {
        ConfusionMatrix::from_predictions(3, &[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2]).unwrap()
    }

    #[test]
    fn counts_and_scores_of_a_known_matrix() {
        let m = small();
        assert_eq!(m.counts(), &[2, 1, 0, 0, 1, 1, 0, 0, 1]);
        assert_eq!((m.total(), m.count(0, 1), m.count(1, 0)), (6, 1, 0));
        assert_eq!((m.support(0), m.predicted(2)), (3, 2));
        assert!((m.accuracy() - 4.0 / 6.0).abs() < 1e-12);
        assert!((m.accuracy_over(&[0, 1]).unwrap() - 3.0 / 5.0).abs() < 1e-12);
        assert_eq!(m.accuracy_over(&[2]).unwrap(), 1.0);
        assert_eq!(m.precision(0), Some(1.0));
        assert_eq!(m.precision(1), Some(0.5));
        assert_eq!(m.precision(2), Some(0.5));
        assert!((m.recall(0).unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.recall(1), Some(0.5));
        assert_eq!(m.recall(2), Some(1.0));
        assert_eq!(
            ConfusionMatrix::from_counts(m.counts().to_vec()).unwrap(),
            m
        );
    }

    #[test]
    fn empty_classes_have_no_precision_or_recall() {
        let m = ConfusionMatrix::from_predictions(3, &[0, 0], &[0, 1]).unwrap();
        assert_eq!(m.recall(2), None);
        assert_eq!(m.precision(2), None);
        assert_eq!(m.accuracy_over(&[2]).unwrap(), 0.0);
        assert_eq!(ConfusionMatrix::new(4).unwrap().accuracy(), 0.0);
    }

    #[test]
    fn bad_sizes_and_labels_are_errors() {
        assert!(ConfusionMatrix::new(0).is_err());
        let e = ConfusionMatrix::from_predictions(3, &[0, 1], &[0]).unwrap_err();
        assert!(
            e.to_string().contains("2 true labels but 1 predictions"),
            "{e}"
        );
        let e = ConfusionMatrix::from_predictions(3, &[0, 3], &[0, 0]).unwrap_err();
        assert!(e.to_string().contains("true label 3 out of range"), "{e}");
        let e = ConfusionMatrix::from_predictions(3, &[0], &[7]).unwrap_err();
        assert!(e.to_string().contains("prediction 7"), "{e}");
        assert!(ConfusionMatrix::from_counts(vec![1, 2, 3]).is_err());
        assert!(ConfusionMatrix::from_counts(vec![]).is_err());
        let m = small();
        assert!(m.accuracy_over(&[0, 3]).is_err());
        assert!(m.table(&names(2)).is_err());
        assert!(m.svg(&names(4), "t").is_err());
    }

    #[test]
    fn table_lists_counts_recall_and_precision() {
        let t = small().table(&names(3)).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5, "{t}");
        let cells = |l: &str| -> Vec<String> { l.split_whitespace().map(String::from).collect() };
        assert_eq!(cells(lines[1]), ["0", "class0", "2", "1", "0", "66.7"]);
        assert_eq!(cells(lines[2]), ["1", "class1", "0", "1", "1", "50.0"]);
        assert_eq!(cells(lines[3]), ["2", "class2", "0", "0", "1", "100.0"]);
        assert_eq!(cells(lines[4]), ["precision%", "100", "50", "50"]);
    }

    #[test]
    fn svg_has_a_cell_per_pair_and_escapes_names() {
        let mut n = names(3);
        n[1] = "a<b".into();
        let svg = small().svg(&n, "test & title").unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<rect").count(), 1 + 9);
        assert!(svg.contains("a&lt;b") && svg.contains("test &amp; title"));
        assert!(svg.contains("accuracy 66.67% of 6"));
    }
}
