//! A deterministic mutation fuzzer for ordinary `cargo test` (cargo-fuzz needs nightly): seed
//! files from `tests/fuzz/corpus/<target>/`, mutated by a seeded generator (bit flips, byte
//! inserts and deletes, truncation, splices of other seeds, header fields set to boundary
//! values), each input run under `catch_unwind` with a watchdog for hangs.
//!
//! `WGTRAIN_FUZZ_ITERS` sets the inputs per target (default: each target's CI budget),
//! `WGTRAIN_FUZZ_SEED` the generator's seed (default 1), `WGTRAIN_FUZZ_VERBOSE=1` prints how
//! many errors of each kind the inputs met (how deep the mutants reach). A panic fails the test listing the
//! inputs, written to `target/tmp/fuzz-<target>-<n>.bin` to become regression tests; a hang
//! aborts the process naming its input (a thread cannot be stopped from outside).
#![allow(dead_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// SplitMix64: tiny, seedable, and the same on every platform and `rand` release.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Values a length, count or dimension field gets: the edges of every integer width.
pub const BOUNDARY_U32: [u32; 12] = [
    0,
    1,
    2,
    7,
    255,
    256,
    65_535,
    65_536,
    (1 << 31) - 1,
    1 << 31,
    u32::MAX - 1,
    u32::MAX,
];

/// Inputs per target: `WGTRAIN_FUZZ_ITERS`, else `default`.
pub fn iterations(default: usize) -> usize {
    std::env::var("WGTRAIN_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The generator's seed: `WGTRAIN_FUZZ_SEED`, else 1.
pub fn seed() -> u64 {
    std::env::var("WGTRAIN_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// The seed files of `target`, sorted by name.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{}: no seed files", dir.display());
    out
}

pub fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target)
}

/// Gzip, one member or (with `split`) one per part.
pub fn gzip(bytes: &[u8], split: Option<usize>) -> Vec<u8> {
    let one = |b: &[u8]| {
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut z, b).unwrap();
        z.finish().unwrap()
    };
    match split {
        Some(k) if k <= bytes.len() => [one(&bytes[..k]), one(&bytes[k..])].concat(),
        _ => one(bytes),
    }
}

/// The payload of gzip `bytes`, when they are gzip that inflates cleanly.
pub fn gunzip(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return None;
    }
    let mut out = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(flate2::read::MultiGzDecoder::new(bytes), 1 << 24),
        &mut out,
    )
    .ok()?;
    Some(out)
}

/// One byte-level mutation of `b` (`others`: seeds to splice from).
pub fn mutate_bytes(rng: &mut Rng, b: &mut Vec<u8>, others: &[(String, Vec<u8>)]) {
    let len = b.len();
    match rng.below(10) {
        0 if len > 0 => {
            let i = rng.below(len);
            b[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            b[i] = *rng.pick(&[0, 1, 0x7f, 0x80, 0xff, b'0', b'9', b'a', 0xc3]);
        }
        2 => {
            let i = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let ins: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            b.splice(i..i, ins);
        }
        3 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            b.drain(i..i + n);
        }
        4 => b.truncate(rng.below(len + 1)),
        5 if !others.is_empty() => {
            let (_, other) = rng.pick(others);
            if !other.is_empty() {
                let s = rng.below(other.len());
                let n = 1 + rng.below((other.len() - s).min(256));
                let at = rng.below(len + 1);
                if rng.chance(50) {
                    b.splice(at..at, other[s..s + n].iter().copied());
                } else {
                    let end = (at + n).min(len);
                    b.splice(at..end, other[s..s + n].iter().copied());
                }
            }
        }
        6 | 7 if len >= 4 => {
            // A header field: an aligned word near the start, in either byte order.
            let words = (len / 4).min(if rng.chance(80) { 16 } else { usize::MAX });
            let at = 4 * rng.below(words);
            let v = *rng.pick(&BOUNDARY_U32);
            let bytes = if rng.chance(50) {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            b[at..at + 4].copy_from_slice(&bytes);
        }
        8 if len >= 2 => {
            let at = rng.below(len - 1);
            let v = *rng.pick(&[0u16, 1, 2, 255, 256, 0x7fff, 0x8000, 0xffff]);
            b[at..at + 2].copy_from_slice(&v.to_le_bytes());
        }
        _ if len > 0 => {
            // Repeat a range: lengths that disagree with their data.
            let s = rng.below(len);
            let n = 1 + rng.below((len - s).min(64));
            let copy = b[s..s + n].to_vec();
            let at = rng.below(len + 1);
            b.splice(at..at, copy);
        }
        _ => b.push(rng.next() as u8),
    }
}

/// A seed mutated 1 to 4 times at the byte level; a gzipped seed is mutated either in its
/// payload (then gzipped again, in one member or two) or as it is.
pub fn mutant(rng: &mut Rng, seeds: &[(String, Vec<u8>)]) -> (String, Vec<u8>) {
    let (name, seed) = rng.pick(seeds);
    let rounds = 1 + rng.below(4);
    let inner = if rng.chance(70) { gunzip(seed) } else { None };
    let mut b = inner.clone().unwrap_or_else(|| seed.clone());
    for _ in 0..rounds {
        mutate_bytes(rng, &mut b, seeds);
    }
    if inner.is_some() {
        let split = rng.chance(30).then(|| rng.below(b.len() + 1));
        b = gzip(&b, split);
        if rng.chance(10) {
            mutate_bytes(rng, &mut b, seeds);
        }
    }
    (name.clone(), b)
}

/// What one fuzzing run saw.
#[derive(Debug, Default)]
pub struct Stats {
    pub inputs: usize,
    pub ok: usize,
    pub err: usize,
    pub slowest: Duration,
    /// How many `Err`s of each kind (the message with names and numbers blanked).
    pub kinds: std::collections::BTreeMap<String, usize>,
    /// (description, input) of each panic or broken property.
    pub failures: Vec<(String, Vec<u8>)>,
}

/// The input being run: since when, what it is, its bytes.
type Running = (Instant, String, Vec<u8>);

impl Stats {
    /// Counts an `Err` by kind: its message without the file, quoted names and numbers.
    pub fn count_err(&mut self, message: &str, file: &str) {
        let mut kind = String::new();
        let mut quoted = false;
        for ch in message.replace(file, "").chars() {
            match ch {
                '"' => {
                    quoted = !quoted;
                    if quoted {
                        kind.push('…');
                    }
                }
                _ if quoted => {}
                '0'..='9' => {
                    if !kind.ends_with('#') {
                        kind.push('#');
                    }
                }
                _ => kind.push(ch),
            }
        }
        let kind: String = kind.chars().take(70).collect();
        *self.kinds.entry(kind).or_default() += 1;
        self.err += 1;
    }
}

/// A watchdog over `run`: if one input runs past `limit` it writes the input to `target/tmp`,
/// prints its description and aborts the process (a hung thread cannot be interrupted).
pub struct Watchdog {
    current: Arc<Mutex<Option<Running>>>,
    done: Arc<AtomicBool>,
}

impl Watchdog {
    pub fn new(target: &'static str, limit: Duration) -> Watchdog {
        let current: Arc<Mutex<Option<Running>>> = Arc::default();
        let done = Arc::new(AtomicBool::new(false));
        let (c, d) = (current.clone(), done.clone());
        std::thread::spawn(move || {
            while !d.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                if let Some((t, what, input)) = &*c.lock().unwrap_or_else(|e| e.into_inner())
                    && t.elapsed() > limit
                {
                    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                        .join(format!("fuzz-{target}-hang.bin"));
                    let _ = std::fs::write(&p, input);
                    eprintln!(
                        "[fuzz {target}] HANG: {what} ran past {limit:?}; input in {}",
                        p.display()
                    );
                    std::process::abort();
                }
            }
        });
        Watchdog { current, done }
    }

    /// Runs `f` on `input` (`what` describes it): a panic is caught and returned as `Err`.
    pub fn run<T>(
        &self,
        what: &str,
        input: &[u8],
        f: impl FnOnce() -> T,
    ) -> (std::result::Result<T, String>, Duration) {
        let t = Instant::now();
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((t, what.to_string(), input.to_vec()));
        let r = catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
            p.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into())
        });
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
        (r, t.elapsed())
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// Fails the test if `stats` recorded failures, each input written to `target/tmp`.
pub fn report(target: &str, stats: &Stats) {
    eprintln!(
        "[fuzz {target}] {} inputs: {} Ok, {} Err, {} failures; slowest {:?}",
        stats.inputs,
        stats.ok,
        stats.err,
        stats.failures.len(),
        stats.slowest
    );
    if std::env::var("WGTRAIN_FUZZ_VERBOSE").as_deref() == Ok("1") {
        let mut kinds: Vec<(&String, &usize)> = stats.kinds.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1));
        for (kind, n) in kinds {
            eprintln!("[fuzz {target}]   {n:>8} × {kind}");
        }
    }
    if stats.failures.is_empty() {
        return;
    }
    // (the build machine's target dir is absent where only the test binary was copied)
    let dir = Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let mut list = String::new();
    for (k, (what, input)) in stats.failures.iter().enumerate() {
        let p = dir.join(format!("fuzz-{target}-{k}.bin"));
        std::fs::write(&p, input).unwrap();
        let head: String = input.iter().take(48).map(|b| format!("{b:02x}")).collect();
        list.push_str(&format!(
            "\n  {what}\n    {} ({} bytes: {head}…)",
            p.display(),
            input.len()
        ));
    }
    panic!(
        "[fuzz {target}] {} failing inputs:{list}",
        stats.failures.len()
    );
}
