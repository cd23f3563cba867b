//! The shipped data sets through the public API: they load, match the source data, and split
//! without leaking users.

use wgtrain::data::{Har, Idx, Mnist, WindowLabel};

/// Values read from the package's pickle (float64) by `scripts/convert_har.py`'s source frames.
#[test]
fn har_matches_source_samples() {
    let h = Har::embedded().unwrap();
    let check = |rec: usize, t: usize, want: [f64; 6], label: u8| {
        let r = &h.recordings[rec];
        for (c, w) in want.iter().enumerate() {
            let tol = if c < 3 { 1e-6 } else { 0.5 / 3200.0 + 1e-6 };
            let got = r.channel(c)[t] as f64;
            assert!(
                (got - w).abs() <= tol,
                "rec {rec} t {t} ch {c}: {got} vs {w}"
            );
        }
        assert_eq!(r.labels[t], label);
    };
    check(
        0,
        0,
        [
            0.918055590,
            -0.112499999,
            0.509722251,
            -0.054977871,
            -0.069638640,
            -0.030848695,
        ],
        0,
    );
    let last = h.recordings.len() - 1;
    assert_eq!(
        (h.recordings[last].user, h.recordings[last].experiment),
        (30, 61)
    );
    assert_eq!(h.recordings[last].len(), 19_082);
    check(
        last,
        5000,
        [
            0.072222226,
            0.805555590,
            0.608333332,
            0.012522737,
            0.000610865,
            0.007024950,
        ],
        6,
    );
}

#[test]
fn har_user_split_is_disjoint_and_windows_have_shape() {
    let h = Har::embedded().unwrap();
    let (train, test) = h.split_by_user(|u| u % 5 == 0);
    let (tu, vu) = (train.users(), test.users());
    assert_eq!(vu, [5, 10, 15, 20, 25, 30]);
    assert!(tu.iter().all(|u| !vu.contains(u)));
    assert_eq!(tu.len() + vu.len(), 30);

    let (train, test) = h.split_default();
    let wt = train.windows(128, 64, WindowLabel::Majority).unwrap();
    let wv = test.windows(128, 64, WindowLabel::Last).unwrap();
    for w in [&wt, &wv] {
        assert_eq!((w.channels, w.len), (6, 128));
        assert_eq!(w.x.len(), w.n * 6 * 128);
        assert!(
            w.labels
                .iter()
                .all(|&l| (l as usize) < h.class_names().len())
        );
        assert!(w.x.iter().all(|v| v.is_finite() && v.abs() <= 10.1));
    }
    assert!(wt.users.iter().all(|&u| u <= 24) && wv.users.iter().all(|&u| u >= 25));
    // About 0.73 of the samples are labelled; windows at hop 64 number roughly labelled / 64.
    let total = wt.n + wv.n;
    assert!((11_000..14_000).contains(&total), "{total} windows");
}

#[test]
fn mnist_embedded_round_trips_through_idx() {
    let m = Mnist::embedded().unwrap();
    assert_eq!((m.train.len(), m.test.len()), (8000, 2000));
    let dir = std::env::temp_dir().join(format!("wgtrain-data-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let names = wgtrain::data::mnist::MNIST_FILES;
    for (set, (img, lab)) in [
        (&m.train, (names[0], names[1])),
        (&m.test, (names[2], names[3])),
    ] {
        let images = Idx::new(vec![set.n, set.rows, set.cols], set.images.clone()).unwrap();
        images.write(dir.join(img), false).unwrap();
        let labels = Idx::new(vec![set.n], set.labels.clone()).unwrap();
        labels.write(dir.join(format!("{lab}.gz")), true).unwrap();
    }
    assert_eq!(Mnist::from_dir(&dir).unwrap(), m);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Windows built by hand whose fields disagree are an `Err` when a batch is drawn, not an index
/// panic.
#[test]
fn inconsistent_windows_are_refused_by_the_loop() {
    use wgtrain::data::HarWindows;
    use wgtrain::train::{Dataset, Inputs};
    let good = HarWindows {
        x: vec![0.0; 2 * 3 * 4],
        labels: vec![0, 1],
        users: vec![1, 2],
        n: 2,
        channels: 3,
        len: 4,
    };
    let mut batch = Inputs::new();
    good.fill(&[1, 0], &mut batch).unwrap();
    let (x, y) = (
        batch.get_f32("image").unwrap(),
        batch.get_u32("labels").unwrap(),
    );
    assert_eq!((x.len(), y), (24, &[1, 0][..]));
    let short = HarWindows {
        x: vec![0.0; 20],
        ..good.clone()
    };
    let huge = HarWindows {
        channels: usize::MAX,
        ..good.clone()
    };
    let unlabelled = HarWindows {
        labels: vec![0],
        ..good.clone()
    };
    let unowned = HarWindows {
        users: vec![1],
        ..good.clone()
    };
    for mut bad in [short, huge, unlabelled, unowned] {
        let e = bad.fill(&[0], &mut batch).unwrap_err().to_string();
        assert!(e.contains("need"), "{e}");
        // Every other reader of the fields refuses them too, instead of indexing past the end.
        let e = bad.subset(&[0]).unwrap_err().to_string();
        assert!(e.contains("need"), "{e}");
        let e = bad.channel_stats().unwrap_err().to_string();
        assert!(e.contains("need"), "{e}");
        let e = bad.normalize(&[0.0; 3], &[1.0; 3]).unwrap_err().to_string();
        assert!(e.contains("need"), "{e}");
    }
}

fn gzip(parts: &[&[u8]]) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for p in parts {
        std::io::Write::write_all(&mut z, p).unwrap();
    }
    z.finish().unwrap()
}

/// 50 MB of zeros behind a header declaring a 2×2 tensor (or a one-recording HAR file) gzip to
/// a few hundred KB; the readers used to inflate all of it before looking at the header (a 5 MB bomb took
/// 5.3 GB and 20 s). They stop a little past the declared size now, at once.
#[test]
fn gzip_bombs_are_refused_at_once() {
    let zeros = vec![0u8; 50 << 20];
    let idx = Idx::new(vec![2, 2], vec![1, 2, 3, 4]).unwrap().to_bytes();
    let mut har = b"WHAR".to_vec();
    har.extend(1u16.to_le_bytes()); // version
    har.extend(1u16.to_le_bytes()); // channels
    har.extend(1u32.to_le_bytes()); // recordings
    har.extend(50f32.to_le_bytes());
    har.extend(1f32.to_le_bytes()); // scale
    har.extend([1, b'a', 1, b'g', 1, 4, b'N', b'O', b'N', b'E']); // names, one label
    har.extend([1, 0, 1, 0, 1, 0, 0, 0, 5, 0, 0]); // user, experiment, 1 sample, label
    assert!(wgtrain::data::Har::from_bytes(&har, "ok").is_ok());
    for (what, header) in [("idx", &idx), ("har", &har)] {
        let bomb = gzip(&[header, &zeros]);
        assert!(bomb.len() < zeros.len() / 100, "{} bytes", bomb.len());
        let t = std::time::Instant::now();
        let e = match what {
            "idx" => Idx::from_bytes(&bomb, "bomb.gz").unwrap_err(),
            _ => wgtrain::data::Har::from_bytes(&bomb, "bomb.gz").unwrap_err(),
        }
        .to_string();
        let secs = t.elapsed().as_secs_f64();
        assert!(
            e.contains("bomb.gz") && e.contains("trailing garbage: more than 65536 bytes"),
            "{what}: {e}"
        );
        assert!(secs < 2.0, "{what}: {secs:.2} s to refuse a bomb");
    }
    // A header declaring more than the ceiling is refused before anything is inflated.
    let mut huge = idx.clone();
    huge[4..8].copy_from_slice(&(1u32 << 31).to_be_bytes());
    let e = Idx::from_bytes(&gzip(&[&huge, &zeros[..1000]]), "huge.gz")
        .unwrap_err()
        .to_string();
    let limit = format!("limit of {} bytes", wgtrain::data::MAX_DECODED_BYTES);
    assert!(e.contains("huge.gz") && e.contains(&limit), "{e}");
}

/// pigz and bgzip write several gzip members; they read as the one stream they are. Junk after
/// the last member and a cut stream are errors naming the file.
#[test]
fn multi_member_gzip_reads_and_junk_or_truncation_is_refused() {
    let a = Idx::new(vec![5, 3, 2], (0..30).collect()).unwrap();
    let b = a.to_bytes();
    let single = Idx::from_bytes(&gzip(&[&b]), "single.gz").unwrap();
    let members = [gzip(&[&b[..9]]), gzip(&[]), gzip(&[&b[9..]])].concat();
    assert_eq!(Idx::from_bytes(&members, "multi.gz").unwrap(), single);
    assert_eq!(single, a);
    let junk = [gzip(&[&b]), b"\n".to_vec()].concat();
    let e = Idx::from_bytes(&junk, "junk.gz").unwrap_err().to_string();
    assert!(
        e.contains("junk.gz") && e.contains("1 bytes of trailing junk"),
        "{e}"
    );
    let z = gzip(&[&b]);
    for cut in [z.len() - 1, z.len() - 8, z.len() / 2, 10] {
        let e = Idx::from_bytes(&z[..cut], "cut.gz")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cut.gz") && e.contains("corrupt gzip"),
            "cut at {cut}: {e}"
        );
    }
    let e = Idx::from_bytes(&members[..members.len() - 3], "cut2.gz")
        .unwrap_err()
        .to_string();
    assert!(e.contains("cut2.gz") && e.contains("corrupt gzip"), "{e}");
}
