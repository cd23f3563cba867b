//! Mutation fuzzing of the data readers (`Idx::from_bytes`, `Har::from_bytes` and the windows
//! cut from what it reads): from the seeds in `tests/fuzz/corpus/{idx,har}/`, every mutant must
//! give `Ok` with consistent content or an `Error::Io` naming the input — never a panic, never
//! a hang. `WGTRAIN_FUZZ_ITERS` / `WGTRAIN_FUZZ_SEED` for longer runs (see `common/fuzz.rs`).

#[path = "common/fuzz.rs"]
mod fuzz;

use std::time::Duration;

use fuzz::{Rng, Stats, Watchdog};
use wgtrain::Error;
use wgtrain::data::{Har, Idx, WindowLabel};

/// What errors call the input.
const NAME: &str = "fuzz-input";

/// Inputs per target in CI: a few seconds each on the 2-core CI machine.
const CI_ITERS: usize = 100_000;

/// A parse taking this long is a hang (they take microseconds).
const LIMIT: Duration = Duration::from_secs(5);

/// Checks an `Err` is the reader's: an `Io` error naming the input.
fn check_err(e: &Error) -> Result<(), String> {
    match e {
        Error::Io { path, .. } if path == NAME => Ok(()),
        other => Err(format!("an Err not naming the input: {other:?}")),
    }
}

fn check_idx(idx: &Idx) -> Result<(), String> {
    let n = idx.dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if idx.dims.is_empty() || n != Some(idx.data.len()) {
        return Err(format!(
            "Ok with dims {:?} and {} bytes",
            idx.dims,
            idx.data.len()
        ));
    }
    match Idx::from_bytes(&idx.to_bytes(), NAME) {
        Ok(again) if again == *idx => Ok(()),
        other => Err(format!("Ok, but its encoding reads back as {other:?}")),
    }
}

/// The windows every reader's result is cut into by the examples, at a few sizes.
type Windows = Vec<wgtrain::Result<wgtrain::data::HarWindows>>;

fn har_and_windows(input: &[u8]) -> wgtrain::Result<(Har, Windows)> {
    let h = Har::from_bytes(input, NAME)?;
    let w = [(1, 1, WindowLabel::Last), (3, 2, WindowLabel::Majority)]
        .into_iter()
        .map(|(len, hop, rule)| h.windows(len, hop, rule))
        .collect();
    Ok((h, w))
}

fn check_har(h: &Har, windows: &Windows) -> Result<(), String> {
    let c = h.channels();
    if c == 0 || h.channel_units.len() != c || h.label_names.is_empty() {
        return Err(format!(
            "Ok with {c} channels, {} units, {} labels",
            h.channel_units.len(),
            h.label_names.len()
        ));
    }
    for (i, r) in h.recordings.iter().enumerate() {
        if r.signals.len() != r.len() * c
            || r.labels.iter().any(|&l| l as usize >= h.label_names.len())
        {
            return Err(format!("Ok with an inconsistent recording {i}"));
        }
    }
    for w in windows {
        let w = w
            .as_ref()
            .map_err(|e| format!("windows of a good file: {e}"))?;
        if w.x.len() != w.n * w.channels * w.len
            || w.labels.len() != w.n
            || w.labels
                .iter()
                .any(|&l| l as usize + 1 >= h.label_names.len())
        {
            return Err("inconsistent windows".into());
        }
    }
    Ok(())
}

/// Fuzzes one reader: `parse` under the watchdog, `check` on `Ok`, `check_err` on `Err`.
fn fuzz<T>(
    target: &'static str,
    parse: impl Fn(&[u8]) -> wgtrain::Result<T>,
    check: impl Fn(&T) -> Result<(), String>,
) -> Stats {
    let seeds = fuzz::corpus(target);
    let dog = Watchdog::new(target, LIMIT);
    let mut rng = Rng::new(fuzz::seed() ^ fuzz::corpus_dir(target).as_os_str().len() as u64);
    let mut stats = Stats::default();
    let n = fuzz::iterations(CI_ITERS);
    // The seeds themselves first, then mutants.
    let inputs = seeds
        .iter()
        .map(|(name, b)| (format!("seed {name}"), b.clone()))
        .chain((0..n).map(|k| {
            let (seed, b) = fuzz::mutant(&mut rng, &seeds);
            (format!("mutant {k} of {seed}"), b)
        }));
    for (what, input) in inputs {
        let (r, dt) = dog.run(&what, &input, || parse(&input));
        stats.inputs += 1;
        stats.slowest = stats.slowest.max(dt);
        let verdict = match r {
            Err(panic) => Err(format!("panicked: {panic}")),
            Ok(Ok(v)) => {
                stats.ok += 1;
                check(&v)
            }
            Ok(Err(e)) => {
                stats.count_err(&e.to_string(), NAME);
                check_err(&e)
            }
        };
        if let Err(why) = verdict {
            stats.failures.push((format!("{what}: {why}"), input));
        }
    }
    stats
}

#[test]
fn fuzz_idx_reader() {
    let stats = fuzz("idx", |b| Idx::from_bytes(b, NAME), check_idx);
    fuzz::report("idx", &stats);
    assert!(stats.ok > 0 && stats.err > 0, "{stats:?}");
}

#[test]
fn fuzz_har_reader() {
    let stats = fuzz("har", har_and_windows, |(h, w)| check_har(h, w));
    fuzz::report("har", &stats);
    assert!(stats.ok > 0 && stats.err > 0, "{stats:?}");
}

/// Every seed named `ok-*` reads; the others (edge cases) are errors. Keeps the corpus honest
/// when the formats change.
#[test]
fn seeds_read_as_their_names_say() {
    for (target, read) in [
        (
            "idx",
            (|b| Idx::from_bytes(b, NAME).map(drop)) as fn(&[u8]) -> wgtrain::Result<()>,
        ),
        ("har", |b| Har::from_bytes(b, NAME).map(drop)),
    ] {
        for (name, bytes) in fuzz::corpus(target) {
            let r = read(&bytes);
            assert_eq!(r.is_ok(), name.starts_with("ok-"), "{target}/{name}: {r:?}");
        }
    }
}

/// One recording of `har_file`: user, samples of the two channels, labels.
type Rec<'a> = (u16, &'a [[i16; 2]], &'a [u8]);

/// The HAR file format (`data/har/README.md`) for the seed corpus: two channels.
fn har_file(recordings: &[Rec], labels: &[&str]) -> Vec<u8> {
    let mut b = b"WHAR".to_vec();
    b.extend(1u16.to_le_bytes());
    b.extend(2u16.to_le_bytes());
    b.extend((recordings.len() as u32).to_le_bytes());
    b.extend(50f32.to_le_bytes());
    for (scale, name, unit) in [(100f32, "acc", "g"), (10f32, "gyro", "rad/s")] {
        b.extend(scale.to_le_bytes());
        b.push(name.len() as u8);
        b.extend(name.bytes());
        b.push(unit.len() as u8);
        b.extend(unit.bytes());
    }
    b.push(labels.len() as u8);
    for l in labels {
        b.push(l.len() as u8);
        b.extend(l.bytes());
    }
    for (user, xs, ls) in recordings {
        b.extend(user.to_le_bytes());
        b.extend(1u16.to_le_bytes());
        b.extend((xs.len() as u32).to_le_bytes());
        for c in 0..2 {
            let mut prev = 0i16;
            for s in *xs {
                b.extend(s[c].wrapping_sub(prev).to_le_bytes());
                prev = s[c];
            }
        }
        b.extend(*ls);
    }
    b
}

/// Rewrites `tests/fuzz/corpus/{idx,har}/` (run by hand after a format change:
/// `cargo test --test fuzz_readers -- --ignored write_seed_corpus`).
#[test]
#[ignore]
fn write_seed_corpus() {
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = fuzz::corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let labels = Idx::new(vec![6], vec![3, 1, 4, 1, 5, 9])
        .unwrap()
        .to_bytes();
    let images = Idx::new(vec![3, 4, 5], (0..60).collect())
        .unwrap()
        .to_bytes();
    write("idx", "ok-labels.idx", &labels);
    write("idx", "ok-images.idx.gz", &fuzz::gzip(&images, None));
    write(
        "idx",
        "ok-images-two-members.idx.gz",
        &fuzz::gzip(&images, Some(13)),
    );
    write(
        "idx",
        "ok-empty-dim.idx",
        &Idx::new(vec![0, 28, 28], vec![]).unwrap().to_bytes(),
    );
    write(
        "idx",
        "ok-rank4.idx",
        &Idx::new(vec![1, 2, 1, 3], vec![9; 6]).unwrap().to_bytes(),
    );
    let mut truncated = images.clone();
    truncated.truncate(30);
    write("idx", "bad-truncated.idx", &truncated);
    write(
        "idx",
        "bad-junk.idx.gz",
        &[fuzz::gzip(&labels, None), b"junk".to_vec()].concat(),
    );
    write(
        "idx",
        "bad-i32.idx",
        &[0, 0, 0x0c, 1, 0, 0, 0, 1, 0, 0, 0, 7],
    );

    let walk: Vec<[i16; 2]> = (0..12).map(|t| [t * 90 - 400, 300 - t * t]).collect();
    let ls = [0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 0, 0];
    let har = har_file(
        &[(3, &walk, &ls), (4, &[[1, 2], [3, -4]], &[2, 2])],
        &["NONE", "UP", "DOWN"],
    );
    write("har", "ok-small.har", &har);
    write("har", "ok-small.har.gz", &fuzz::gzip(&har, Some(40)));
    write(
        "har",
        "ok-empty-recording.har",
        &har_file(&[(1, &[], &[]), (2, &[[0, 0]], &[1])], &["NONE", "A"]),
    );
    write("har", "ok-no-recordings.har", &har_file(&[], &["NONE"]));
    write(
        "har",
        "bad-label.har",
        &har_file(&[(1, &[[0, 0]], &[3])], &["NONE", "A"]),
    );
    write("har", "bad-truncated.har", &har[..har.len() - 3]);
}
