//! Mutation fuzzing of checkpoint loading into the smallest trainer with running statistics
//! (`common/ckpt.rs`): from the seeds in `tests/fuzz/corpus/checkpoint/`, mutants at the byte
//! level (caught by the format and the checksums) and at the structure level — metadata entries
//! removed, added or set to boundary values, tensors removed, renamed, retyped, reshaped or
//! changed, then the checksums recomputed as a tool editing on purpose would, so that the
//! checks behind them are reached. Every input must leave `Trainer::load` either `Ok` with the
//! file's content (saving again gives the same tensors and entries) or an `Err` naming the file
//! with the trainer unchanged; `load_weights` and `read_tensor` must not panic either.

mod common;
#[path = "common/ckpt.rs"]
mod ckpt;
#[path = "common/fuzz.rs"]
mod fuzz;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use common::each_device;
use fuzz::{Rng, Stats, Watchdog};
use safetensors::Dtype;
use safetensors::tensor::{SafeTensors, TensorView};
use wgtrain::checkpoint::{self, METADATA_HASH, metadata_checksum, tensor_checksum};
use wgtrain::train::Trainer;
use wgtrain::{DType, Tensor};

/// Inputs in CI: loads on the software GPU take milliseconds; this keeps the file near 15 s.
const CI_ITERS: usize = 2_000;

/// A load taking this long is a hang.
const LIMIT: Duration = Duration::from_secs(20);

/// The tiny trainer's seed (the corpus was saved by trainers of this seed).
const SEED: u64 = 5;

type Tensors = BTreeMap<String, ckpt::Owned>;

/// Metadata values at the edges of what the loader parses.
const VALUES: [&str; 30] = [
    "",
    "0",
    "1",
    "2",
    "-1",
    "+1",
    " 1",
    "01",
    "1e3",
    "0x10",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "é",
    "0é000000",
    "00000000",
    "7fc00000",
    "ffffffff",
    "000000000000000000000000",
    "0000000000000000000000000",
    "0:0",
    "5:0",
    "5:1",
    ":",
    "5:",
    "5:9223372036854775808",
    "adam",
    "exp_avg,exp_avg_sq",
    "wgtrain-checkpoint",
];

const DTYPES: [Dtype; 7] = [
    Dtype::F32,
    Dtype::F16,
    Dtype::BF16,
    Dtype::F64,
    Dtype::I64,
    Dtype::I32,
    Dtype::U8,
];

fn parse(bytes: &[u8]) -> Option<(Tensors, HashMap<String, String>)> {
    let st = SafeTensors::deserialize(bytes).ok()?;
    let (_, m) = SafeTensors::read_metadata(bytes).ok()?;
    let t = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, (t.dtype(), t.shape().to_vec(), t.data().to_vec())))
        .collect();
    Some((t, m.metadata().clone().unwrap_or_default()))
}

fn serialize(t: &Tensors, meta: HashMap<String, String>) -> Option<Vec<u8>> {
    let views: Option<BTreeMap<&String, TensorView>> = t
        .iter()
        .map(|(n, (dt, s, d))| Some((n, TensorView::new(*dt, s.clone(), d).ok()?)))
        .collect();
    safetensors::tensor::serialize(views?, Some(meta)).ok()
}

/// Bytes of `shape` elements of `dtype`, when small.
fn bytes_of(dtype: Dtype, shape: &[usize]) -> Option<usize> {
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
    let b = n.checked_mul(dtype.bitsize())? / 8;
    (b <= 1 << 16).then_some(b)
}

/// One structural edit of the tensors or the metadata.
fn edit(rng: &mut Rng, t: &mut Tensors, meta: &mut HashMap<String, String>) {
    let names: Vec<String> = t.keys().cloned().collect();
    let keys: Vec<String> = meta.keys().cloned().collect();
    match rng.below(11) {
        0 if !keys.is_empty() => drop(meta.remove(rng.pick(&keys))),
        1 | 2 if !keys.is_empty() => {
            let k = rng.pick(&keys).clone();
            meta.insert(k, rng.pick(&VALUES).to_string());
        }
        3 if !keys.is_empty() => {
            // A value mutated byte by byte (as text: the header is JSON).
            let k = rng.pick(&keys).clone();
            let mut v = meta[&k].clone().into_bytes();
            fuzz::mutate_bytes(rng, &mut v, &[]);
            meta.insert(k, String::from_utf8_lossy(&v).into_owned());
        }
        4 => {
            let prefix = rng.pick(&["user.state.", "user.", "rng.", "hash.", "optim", ""]);
            let name = rng.pick(&["bn.running_mean", "epoch", "dropout", "fc.bias", "x", ""]);
            meta.insert(format!("{prefix}{name}"), rng.pick(&VALUES).to_string());
        }
        5 if !names.is_empty() => drop(t.remove(rng.pick(&names))),
        6 if !names.is_empty() => {
            let from = rng.pick(&names).clone();
            let v = t[&from].clone();
            let other = rng.pick(&names).clone();
            let to = rng
                .pick(&[
                    format!("{from}x"),
                    from.replace("fc", "bn"),
                    format!("optim.{from}"),
                    other,
                ])
                .clone();
            if rng.chance(50) {
                t.remove(&from);
            }
            t.insert(to, v);
        }
        7 if !names.is_empty() => {
            let n = rng.pick(&names).clone();
            let e = t.get_mut(&n).unwrap();
            let dt = *rng.pick(&DTYPES);
            if let Some(b) = bytes_of(dt, &e.1) {
                e.0 = dt;
                e.2.resize(b, 0);
            }
        }
        8 if !names.is_empty() => {
            let n = rng.pick(&names).clone();
            let e = t.get_mut(&n).unwrap();
            let numel: usize = e.1.iter().product();
            let shape = rng
                .pick(&[
                    e.1.iter().rev().copied().collect(),
                    vec![numel],
                    [&e.1[..], &[1]].concat(),
                    vec![],
                    vec![0],
                    vec![numel + 1],
                    vec![1 << 20, 1 << 20],
                ])
                .clone();
            if let Some(b) = bytes_of(e.0, &shape) {
                e.1 = shape;
                e.2.resize(b, 0);
            }
        }
        9 if !names.is_empty() => {
            let n = rng.pick(&names).clone();
            let d = &mut t.get_mut(&n).unwrap().2;
            if d.len() >= 4 {
                let at = 4 * rng.below(d.len() / 4);
                let v = *rng.pick(&[0x7fc0_0000u32, 0x7f80_0000, 0xffff_ffff, 0, 1]);
                d[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        _ => {
            let n = format!(
                "optim.{}.step",
                rng.pick(&["fc.weight", "bn.bias", "ghost"])
            );
            let v = *rng.pick(&[0i64, -1, 1, i64::MAX, i64::MIN]);
            t.insert(n, (Dtype::I64, vec![], v.to_le_bytes().to_vec()));
        }
    }
}

/// A mutant of a seed: byte-level (30%), or 1 to 3 structural edits with the checksums then
/// recomputed (mostly: those of removed tensors dropped too), left stale, or only the
/// metadata's recomputed.
fn mutant(rng: &mut Rng, seeds: &[(String, Vec<u8>)]) -> (String, Vec<u8>) {
    if rng.chance(30) {
        return fuzz::mutant(rng, seeds);
    }
    let (name, seed) = rng.pick(seeds).clone();
    let Some((mut t, mut meta)) = parse(&seed) else {
        return fuzz::mutant(rng, seeds);
    };
    for _ in 0..1 + rng.below(3) {
        edit(rng, &mut t, &mut meta);
    }
    match rng.below(10) {
        0 => {}
        1 => drop(meta.insert(METADATA_HASH.into(), metadata_checksum(&meta))),
        _ => {
            let had: Vec<String> = t
                .keys()
                .filter(|n| meta.contains_key(&format!("hash.{n}")) || rng.chance(90))
                .cloned()
                .collect();
            for n in had {
                meta.insert(format!("hash.{n}"), tensor_checksum(&t[&n].2));
            }
            if rng.chance(90) {
                meta.retain(|k, _| k.strip_prefix("hash.").is_none_or(|n| t.contains_key(n)));
            }
            if meta.contains_key(METADATA_HASH) || rng.chance(90) {
                meta.insert(METADATA_HASH.into(), metadata_checksum(&meta));
            }
        }
    }
    let bytes = serialize(&t, meta).unwrap_or(seed);
    (format!("{name} (structural)"), bytes)
}

/// A float tensor as the F32 tensor it loads as (`None` for other dtypes).
fn as_f32((dt, shape, b): &(Dtype, Vec<usize>, Vec<u8>)) -> Option<(Dtype, Vec<usize>, Vec<u8>)> {
    let v: Vec<f32> = match dt {
        Dtype::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        Dtype::F16 => b
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => return None,
    };
    let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Some((Dtype::F32, shape.clone(), bytes))
}

/// After an `Ok` load: saving again gives the input's tensors and metadata entries (those a
/// save writes, but the format version, which may be older, and the metadata checksum).
fn check_loaded(t: &Trainer, input: &[u8], again: &Path) -> Result<(), String> {
    t.save(again).map_err(|e| format!("save after load: {e}"))?;
    let saved = std::fs::read(again).unwrap();
    let (st, sm) = parse(&saved).unwrap();
    let (it, im) = parse(input).ok_or("Ok from an unparseable file")?;
    for (n, v) in &st {
        // F64, F16 and BF16 load converted: the save writes their f32 values.
        if it.get(n) != Some(v) && it.get(n).and_then(as_f32) != Some(v.clone()) {
            return Err(format!("Ok, but tensor {n:?} differs from the file's"));
        }
    }
    // A converted tensor's checksum is of its new bytes.
    let converted = |k: &str| {
        k.strip_prefix("hash.")
            .and_then(|n| it.get(n))
            .is_some_and(|(dt, _, _)| *dt != Dtype::F32)
    };
    for (k, v) in &sm {
        if k != METADATA_HASH && k != "format_version" && !converted(k) && im.get(k) != Some(v) {
            return Err(format!(
                "Ok, but {k:?} = {v:?} is {:?} in the file",
                im.get(k)
            ));
        }
    }
    Ok(())
}

#[test]
fn fuzz_checkpoint_loading() {
    each_device("fuzz_checkpoint_loading", |dev| {
        let dir = std::env::temp_dir().join(format!("wgtrain-fuzz-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (path, again) = (dir.join("input.safetensors"), dir.join("again.safetensors"));
        let file = path.display().to_string();
        let seeds = fuzz::corpus("checkpoint");
        let dog = Watchdog::new("checkpoint", LIMIT);
        let mut rng = Rng::new(fuzz::seed() ^ 0xC4EC);
        let mut t = ckpt::tiny_trainer(dev, SEED);
        let layout = t.layout().clone();
        let arena = Tensor::zeros(dev, &[layout.len()], DType::F32).unwrap();
        let mut state = ckpt::trainer_state(&t);
        let mut stats = Stats::default();
        let n = fuzz::iterations(CI_ITERS);
        let inputs = seeds
            .iter()
            .map(|(name, b)| (format!("seed {name}"), b.clone()))
            .chain((0..n).map(|k| {
                let (seed, b) = mutant(&mut rng, &seeds);
                (format!("mutant {k} of {seed}"), b)
            }));
        for (what, input) in inputs {
            std::fs::write(&path, &input).unwrap();
            let (r, dt) = dog.run(&what, &input, || {
                let weights = checkpoint::load_weights(&path, &layout, &arena);
                let one = checkpoint::read_tensor(&path, "fc.weight", &[2, 6]);
                (t.load(&path), weights, one)
            });
            stats.inputs += 1;
            stats.slowest = stats.slowest.max(dt);
            let verdict = match r {
                Err(panic) => {
                    // The trainer may be half-written: start again from a fresh one.
                    t = ckpt::tiny_trainer(dev, SEED);
                    state = ckpt::trainer_state(&t);
                    Err(format!("panicked: {panic}"))
                }
                Ok((load, weights, one)) => {
                    let named = [weights.err(), one.err()]
                        .into_iter()
                        .flatten()
                        .map(|e| e.to_string())
                        .find(|e| !e.contains(&file));
                    match (load, named) {
                        (_, Some(e)) => Err(format!("an Err not naming the file: {e}")),
                        (Ok(()), None) => {
                            stats.ok += 1;
                            let r = check_loaded(&t, &input, &again);
                            state = ckpt::trainer_state(&t);
                            r
                        }
                        (Err(e), None) => {
                            let e = e.to_string();
                            stats.count_err(&e, &file);
                            if !e.contains(&file) {
                                Err(format!("an Err not naming the file: {e}"))
                            } else if ckpt::trainer_state(&t) != state {
                                state = ckpt::trainer_state(&t);
                                Err(format!("a refused load changed the trainer: {e}"))
                            } else {
                                Ok(())
                            }
                        }
                    }
                }
            };
            if let Err(why) = verdict {
                stats.failures.push((format!("{what}: {why}"), input));
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
        fuzz::report("checkpoint", &stats);
        assert!(stats.ok > 0 && stats.err > 0, "{stats:?}");
    });
}

/// Every seed named `ok-*` loads into the tiny trainer; the others are errors. Keeps the corpus
/// honest when the format or the tiny graph changes (then run `write_seed_corpus`).
#[test]
fn seeds_load_as_their_names_say() {
    each_device("seeds_load_as_their_names_say", |dev| {
        let mut t = ckpt::tiny_trainer(dev, SEED);
        for (name, _) in fuzz::corpus("checkpoint") {
            let r = t.load(&fuzz::corpus_dir("checkpoint").join(&name));
            assert_eq!(r.is_ok(), name.starts_with("ok-"), "{name}: {r:?}");
        }
    });
}

/// Rewrites `tests/fuzz/corpus/checkpoint/` (by hand after a format change:
/// `cargo test --test fuzz_checkpoint -- --ignored write_seed_corpus`).
#[test]
#[ignore]
fn write_seed_corpus() {
    each_device("write_seed_corpus", |dev| {
        let dir = fuzz::corpus_dir("checkpoint");
        std::fs::create_dir_all(&dir).unwrap();
        let mut t = ckpt::tiny_trainer(dev, SEED);
        t.save(&dir.join("ok-fresh.safetensors")).unwrap();
        t.train_epoch(&ckpt::tiny_data(), None).unwrap();
        t.save(&dir.join("ok-trained.safetensors")).unwrap();
        let layout = t.layout().clone();
        let c = t.compiled();
        checkpoint::save(
            &dir.join("bad-weights-only.safetensors"),
            &layout,
            c,
            None,
            &checkpoint::TrainState::default(),
        )
        .unwrap();
        // Weights alone, no metadata, as PyTorch writes them.
        let all = wgtrain::weights::ParamStore::read_all(c).unwrap();
        let mut tensors = Tensors::new();
        for e in layout.entries() {
            let data = all[e.range()]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            tensors.insert(e.name.clone(), (Dtype::F32, e.shape.clone(), data));
        }
        let plain = serialize(&tensors, HashMap::new()).unwrap();
        std::fs::write(dir.join("bad-plain.safetensors"), plain).unwrap();
        ckpt::tiny_trainer(dev, SEED + 1)
            .save(&dir.join("bad-other-seed.safetensors"))
            .unwrap();
    });
}
