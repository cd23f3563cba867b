//! Checkpoints: resume is bit-identical to training straight through; the file reads like a
//! PyTorch `state_dict`; every truncated, corrupt or mismatched file is an `Err` naming the file
//! and the tensor; writes are atomic. Also the data sources that fill the arena.

mod common;
#[path = "common/ckpt.rs"]
mod ckpt;

use std::path::{Path, PathBuf};

use common::each_device;
use safetensors::tensor::{Dtype, SafeTensors};
use wgtrain::optim::{Algorithm, GradOptions, Optimizer, OptimizerConfig, ParamGroup, Schedule};
use wgtrain::reference::Array;
use wgtrain::weights::checkpoint::{self, RngState, TrainState};
use wgtrain::weights::{
    DataSource, FanMode, Init, InitSource, Nonlinearity, ParamLayout, sync_sources, upload,
};
use wgtrain::{DType, Device, Tensor};

const SEED: u64 = 7;

fn params_of(shapes: &[(&'static str, Vec<usize>)]) -> ParamLayout {
    let v: Vec<(&str, &[usize])> = shapes.iter().map(|(n, s)| (*n, s.as_slice())).collect();
    ParamLayout::packed(&v, 64).unwrap()
}

fn shapes() -> Vec<(&'static str, Vec<usize>)> {
    vec![
        ("conv1.weight", vec![4, 3, 3, 3]),
        ("conv1.bias", vec![4]),
        ("fc.weight", vec![10, 33]),
        ("fc.bias", vec![10]),
        ("norm.weight", vec![7]),
    ]
}

fn layout() -> ParamLayout {
    params_of(&shapes())
}

fn sources(layout: &ParamLayout) -> Vec<Box<dyn DataSource>> {
    layout
        .entries()
        .iter()
        .map(|e| {
            let init = match (e.name.as_str(), e.shape.len()) {
                ("norm.weight", _) => Init::Constant(1.0),
                (_, 1) => Init::Uniform {
                    low: -0.1,
                    high: 0.1,
                },
                _ => Init::KaimingUniform {
                    mode: FanMode::FanIn,
                    nonlinearity: Nonlinearity::Relu,
                },
            };
            Box::new(InitSource::new(&e.name, &e.shape, init, SEED)) as Box<dyn DataSource>
        })
        .collect()
}

/// No weight decay on biases and norms, as usual.
fn groups(layout: &ParamLayout) -> Vec<ParamGroup> {
    vec![
        ParamGroup::new(layout.ranges(|e| e.shape.len() > 1)).weight_decay(0.05),
        ParamGroup::new(layout.ranges(|e| e.shape.len() == 1)).lr_scale(0.5),
    ]
}

fn adam_config() -> OptimizerConfig {
    OptimizerConfig {
        algorithm: Algorithm::AdamW {
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            amsgrad: true,
        },
        lr: 0.01,
        schedule: Schedule::warmup(
            2,
            0.2,
            Schedule::Cosine {
                t_max: 4,
                eta_min: 1e-4,
            },
        ),
        grad: GradOptions {
            rescale: 0.5,
            clip_value: None,
            clip_norm: Some(0.5),
        },
    }
}

fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgtrain-ckpt-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A model: the arena filled by the data sources, a gradient arena, an optimizer.
struct Model {
    params: Tensor,
    grads: Tensor,
    opt: Optimizer,
}

fn model(dev: &Device, layout: &ParamLayout, cfg: &OptimizerConfig) -> Model {
    let params = Tensor::zeros(dev, &[layout.len()], DType::F32).unwrap();
    upload(layout, &mut sources(layout), &params).unwrap();
    let grads = Tensor::zeros(dev, &[layout.len()], DType::F32).unwrap();
    let opt = Optimizer::new(dev, cfg.clone(), groups(layout), layout.len()).unwrap();
    Model { params, grads, opt }
}

impl Model {
    /// Steps `from..to`, the gradient of step s a function of s only (as data at a position is).
    fn train(&mut self, from: usize, to: usize) {
        for s in from..to {
            let g = Array::seeded(&[self.params.numel()], 1000 + s as u64).to_f32();
            self.grads.write_f32(&g).unwrap();
            self.opt.step(&self.params, &self.grads).unwrap();
        }
    }

    /// The bits of every parameter and every state slot of it (the gaps between are not part of
    /// the model).
    fn bits(&self, layout: &ParamLayout) -> Vec<u32> {
        let n = layout.len();
        let p = self.params.to_f32().unwrap();
        let s = self.opt.read_state().unwrap();
        let mut out = Vec::new();
        for e in layout.entries() {
            out.extend(p[e.range()].iter().map(|x| x.to_bits()));
            for k in 0..self.opt.slot_names().len() {
                let r = e.range();
                out.extend(
                    s[k * n + r.start..k * n + r.end]
                        .iter()
                        .map(|x| x.to_bits()),
                );
            }
        }
        out
    }
}

fn train_state(step: u64) -> TrainState {
    let mut t = TrainState {
        global_step: step,
        ..Default::default()
    };
    t.rng.insert(
        "dropout".into(),
        RngState {
            seed: 11,
            counter: 3 * step,
        },
    );
    t.rng.insert(
        "shuffle".into(),
        RngState {
            seed: 12,
            counter: 1,
        },
    );
    t.metadata.insert("epoch".into(), "0".into());
    t
}

#[test]
fn resume_is_bit_identical() {
    each_device("resume_is_bit_identical", |dev| {
        let d = dir("resume");
        let l = layout();
        let sgd = OptimizerConfig {
            algorithm: Algorithm::Sgd {
                momentum: 0.9,
                dampening: 0.0,
                nesterov: true,
            },
            lr: 0.05,
            schedule: Schedule::Step {
                step_size: 2,
                gamma: 0.5,
            },
            grad: GradOptions::default(),
        };
        let rms = OptimizerConfig::new(
            Algorithm::RmsProp {
                alpha: 0.9,
                eps: 1e-8,
                momentum: 0.5,
                centered: true,
            },
            0.01,
        );
        for (k, cfg) in [adam_config(), sgd, rms].iter().enumerate() {
            let (n, m) = (3, 3);
            let mut straight = model(dev, &l, cfg);
            straight.train(0, n + m);

            let mut first = model(dev, &l, cfg);
            first.train(0, n);
            let path = d.join(format!("run{k}.safetensors"));
            checkpoint::save(
                &path,
                &l,
                &first.params,
                Some(&first.opt),
                &train_state(n as u64),
            )
            .unwrap();
            drop(first);

            // Fresh tensors and optimizer (initialised differently, to be sure all is overwritten).
            let mut resumed = model(dev, &l, cfg);
            resumed.params.write_f32(&vec![9.0; l.len()]).unwrap();
            let t = checkpoint::load(&path, &l, &resumed.params, Some(&mut resumed.opt)).unwrap();
            assert_eq!(t, train_state(n as u64));
            assert_eq!(resumed.opt.step_count(), n as u64);
            assert_eq!(resumed.opt.schedule_position(), n as u64);
            resumed.train(n, n + m);
            assert!(
                resumed.bits(&l) == straight.bits(&l),
                "{}: {n} steps + save/load + {m} steps differs from {} straight",
                cfg.algorithm.name(),
                n + m
            );
        }
        std::fs::remove_dir_all(&d).unwrap();
    });
}

#[test]
fn the_file_reads_like_a_pytorch_state_dict() {
    each_device("the_file_reads_like_a_pytorch_state_dict", |dev| {
        let d = dir("layout");
        let l = layout();
        let mut m = model(dev, &l, &adam_config());
        m.train(0, 2);
        let path = d.join("model.safetensors");
        checkpoint::save(&path, &l, &m.params, Some(&m.opt), &train_state(2)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let arena = m.params.to_f32().unwrap();
        let state = m.opt.read_state().unwrap();
        for e in l.entries() {
            let t = st.tensor(&e.name).unwrap();
            assert_eq!((t.dtype(), t.shape()), (Dtype::F32, e.shape.as_slice()));
            let v: Vec<f32> = bytemuck::pod_collect_to_vec(t.data());
            assert_eq!(v, arena[e.range()], "{}", e.name);
            // exp_avg_sq is slot 1 of AdamW with AMSGrad.
            let t = st.tensor(&format!("optim.{}.exp_avg_sq", e.name)).unwrap();
            let v: Vec<f32> = bytemuck::pod_collect_to_vec(t.data());
            let r = e.range();
            assert_eq!(v, state[l.len() + r.start..l.len() + r.end]);
            let step = st.tensor(&format!("optim.{}.step", e.name)).unwrap();
            assert_eq!((step.dtype(), step.shape()), (Dtype::I64, &[][..]));
            assert_eq!(step.data(), 2i64.to_le_bytes());
        }
        assert_eq!(st.len(), l.entries().len() * 5);
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = meta.metadata().clone().unwrap();
        assert_eq!(meta["format"], "wgtrain-checkpoint");
        assert_eq!(meta["format_version"], "1");
        assert_eq!(meta["optimizer"], "adamw");
        assert_eq!(meta["optimizer.slots"], "exp_avg,exp_avg_sq,max_exp_avg_sq");
        assert_eq!(meta["rng.dropout"], "11:6");

        // Weights only, into a fresh arena; and one tensor as an initialiser.
        let fresh = Tensor::zeros(dev, &[l.len()], DType::F32).unwrap();
        checkpoint::load_weights(&path, &l, &fresh).unwrap();
        assert_eq!(fresh.to_f32().unwrap(), arena);
        let init = Init::Checkpoint {
            path: path.clone(),
            tensor: None,
        };
        let fc = l.get("fc.weight").unwrap();
        assert_eq!(
            init.values("fc.weight", &fc.shape, 0).unwrap(),
            arena[fc.range()]
        );
        let e = init
            .values("fc.weight", &[33, 10], 0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fc.weight") && e.contains("shape") && e.contains("model.safetensors"),
            "{e}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    });
}

/// Loads `path` into a fresh model; the error's text. The arena must be untouched on failure.
fn load_err(dev: &Device, path: &Path, l: &ParamLayout, cfg: &OptimizerConfig) -> String {
    let mut m = model(dev, l, cfg);
    let before = m.params.to_f32().unwrap();
    let e = checkpoint::load(path, l, &m.params, Some(&mut m.opt))
        .unwrap_err()
        .to_string();
    assert_eq!(
        m.params.to_f32().unwrap(),
        before,
        "a failed load wrote weights: {e}"
    );
    assert_eq!(m.opt.step_count(), 0);
    assert!(
        e.contains(&path.display().to_string()),
        "the error does not name the file: {e}"
    );
    e
}

#[test]
fn bad_checkpoints_are_errors_naming_file_and_tensor() {
    each_device("bad_checkpoints_are_errors_naming_file_and_tensor", |dev| {
        let d = dir("bad");
        let l = layout();
        let cfg = adam_config();
        let mut m = model(dev, &l, &cfg);
        m.train(0, 1);
        let good = d.join("good.safetensors");
        checkpoint::save(&good, &l, &m.params, Some(&m.opt), &train_state(1)).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let write = |name: &str, b: &[u8]| {
            let p = d.join(name);
            std::fs::write(&p, b).unwrap();
            p
        };

        let e = load_err(
            dev,
            &write("truncated.safetensors", &bytes[..bytes.len() - 9]),
            &l,
            &cfg,
        );
        assert!(e.contains("truncated or corrupt"), "{e}");
        let e = load_err(dev, &write("tiny.safetensors", &bytes[..5]), &l, &cfg);
        assert!(e.contains("truncated or corrupt"), "{e}");
        let mut header = bytes.clone();
        header[8] = b'#';
        let e = load_err(dev, &write("header.safetensors", &header), &l, &cfg);
        assert!(e.contains("truncated or corrupt"), "{e}");
        // A flipped bit in the last tensor's data: caught by its checksum, named.
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 0x10;
        let e = load_err(dev, &write("flipped.safetensors", &flipped), &l, &cfg);
        assert!(e.contains("checksum") && e.contains("tensor \""), "{e}");
        let e = load_err(dev, &d.join("absent.safetensors"), &l, &cfg);
        assert!(e.contains("cannot read"), "{e}");

        // Mismatches: a missing parameter, a wrong shape, an extra tensor.
        let mut fewer = shapes();
        fewer.retain(|(n, _)| *n != "fc.bias");
        let lf = params_of(&fewer);
        let mf = model(dev, &lf, &cfg);
        let p = d.join("fewer.safetensors");
        checkpoint::save(&p, &lf, &mf.params, Some(&mf.opt), &train_state(0)).unwrap();
        let e = load_err(dev, &p, &l, &cfg);
        assert!(e.contains("\"fc.bias\"") && e.contains("missing"), "{e}");
        let e = load_err(dev, &good, &lf, &cfg);
        assert!(
            e.contains("fc.bias") && e.contains("not part of this model"),
            "{e}"
        );

        let mut transposed = shapes();
        transposed[2].1 = vec![33, 10];
        let lt = params_of(&transposed);
        let e = load_err(dev, &good, &lt, &cfg);
        assert!(
            e.contains("\"fc.weight\"") && e.contains("[10, 33]") && e.contains("[33, 10]"),
            "{e}"
        );

        // The wrong dtype: the same file with conv1.bias stored as I32 (checksums recomputed);
        // F64, F16 and BF16 would be converted (tests/checkpoint_load_into.rs).
        let i32s = ckpt::rebuilt(&bytes, |t| {
            t.insert("conv1.bias".into(), (Dtype::I32, vec![4], vec![0; 16]));
        });
        let e = load_err(dev, &write("i32.safetensors", &i32s), &l, &cfg);
        assert!(e.contains("\"conv1.bias\"") && e.contains("I32"), "{e}");

        // Optimizer mismatches: other algorithm, no state saved, other slots.
        let e = load_err(
            dev,
            &good,
            &l,
            &OptimizerConfig::new(Algorithm::sgd(0.9), 0.1),
        );
        assert!(e.contains("adamw") && e.contains("sgd"), "{e}");
        let p = d.join("weights-only.safetensors");
        checkpoint::save(&p, &l, &m.params, None, &train_state(1)).unwrap();
        let e = load_err(dev, &p, &l, &cfg);
        assert!(e.contains("no optimizer state"), "{e}");
        let mut no_ams = adam_config();
        no_ams.algorithm = Algorithm::adamw();
        let e = load_err(dev, &good, &l, &no_ams);
        assert!(
            e.contains("slots \"exp_avg,exp_avg_sq,max_exp_avg_sq\"")
                && e.contains("has \"exp_avg,exp_avg_sq\""),
            "{e}"
        );
        // A plain safetensors file (not ours) is refused for resuming but fine for weights.
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let plain = safetensors::tensor::serialize(st.tensors(), None).unwrap();
        let p = write("plain.safetensors", &plain);
        let e = load_err(dev, &p, &l, &cfg);
        assert!(e.contains("not a wgtrain checkpoint"), "{e}");
        checkpoint::load_weights(&p, &l, &m.params).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    });
}

#[test]
fn writes_are_atomic() {
    each_device("writes_are_atomic", |dev| {
        let d = dir("atomic");
        let l = layout();
        let m = model(dev, &l, &adam_config());
        let path = d.join("ckpt.safetensors");
        for step in 0..3 {
            checkpoint::save(&path, &l, &m.params, Some(&m.opt), &train_state(step)).unwrap();
        }
        let names: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["ckpt.safetensors"], "temp files left behind");
        let t = checkpoint::load(&path, &l, &m.params, None).unwrap();
        assert_eq!(t.global_step, 2);
        // A target that cannot be replaced (a directory): an Err naming it, the old file intact,
        // no temp file left.
        let blocked = d.join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("keep"), b"x").unwrap();
        let e = checkpoint::save(&blocked, &l, &m.params, None, &train_state(0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("blocked"), "{e}");
        let mut names: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["blocked", "ckpt.safetensors"]);
        let e = checkpoint::save(
            &d.join("no/such/dir/x.safetensors"),
            &l,
            &m.params,
            None,
            &train_state(0),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no/such/dir"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    });
}

#[test]
fn data_sources_fill_the_arena_and_receive_trained_values() {
    each_device(
        "data_sources_fill_the_arena_and_receive_trained_values",
        |dev| {
            let l = layout();
            let params = Tensor::zeros(dev, &[l.len()], DType::F32).unwrap();
            let mut src = sources(&l);
            upload(&l, &mut src, &params).unwrap();
            let host = params.to_f32().unwrap();
            let conv = l.get("conv1.weight").unwrap();
            let want = Init::KaimingUniform {
                mode: FanMode::FanIn,
                nonlinearity: Nonlinearity::Relu,
            }
            .values("conv1.weight", &conv.shape, SEED)
            .unwrap();
            assert_eq!(host[conv.range()], want[..]);
            let covered: Vec<bool> = (0..l.len())
                .map(|i| l.entries().iter().any(|e| e.range().contains(&i)))
                .collect();
            assert!(
                host.iter().zip(&covered).all(|(&x, &c)| c || x == 0.0),
                "gaps not zero"
            );
            // Trained values flow back; uploading again gives them.
            let trained: Vec<f32> = (0..l.len()).map(|i| i as f32).collect();
            params.write_f32(&trained).unwrap();
            sync_sources(&l, &mut src, &params).unwrap();
            params.write_f32(&vec![0.0; l.len()]).unwrap();
            upload(&l, &mut src, &params).unwrap();
            let again = params.to_f32().unwrap();
            for e in l.entries() {
                assert_eq!(again[e.range()], trained[e.range()], "{}", e.name);
            }
            // Every parameter needs exactly one source of its shape.
            src.pop();
            let e = upload(&l, &mut src, &params).unwrap_err().to_string();
            assert!(
                e.contains("norm.weight") && e.contains("no data source"),
                "{e}"
            );
            src.push(Box::new(InitSource::new(
                "norm.weight",
                &[8],
                Init::Zeros,
                0,
            )));
            let e = upload(&l, &mut src, &params).unwrap_err().to_string();
            assert!(e.contains("norm.weight") && e.contains("[8]"), "{e}");
        },
    );
}

/// The model's bits and both optimizer counters: everything a load may change.
fn snapshot(m: &Model, l: &ParamLayout) -> (Vec<u32>, u64, u64) {
    (m.bits(l), m.opt.step_count(), m.opt.schedule_position())
}

/// Writes `bytes` as `name` in `d`, loads it into `m` and returns the error, asserting that it
/// names the file and that `m` is unchanged.
fn refused(d: &Path, name: &str, bytes: &[u8], l: &ParamLayout, m: &mut Model) -> String {
    let p = d.join(name);
    std::fs::write(&p, bytes).unwrap();
    let before = snapshot(m, l);
    let e = checkpoint::load(&p, l, &m.params, Some(&mut m.opt))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&p.display().to_string()),
        "{name}: no file in {e}"
    );
    assert!(
        snapshot(m, l) == before,
        "{name}: a refused load changed the model: {e}"
    );
    e
}

/// A checkpoint missing or mangling any entry the load needs changes nothing: not the weights,
/// not the optimizer state, not its counters (these were checked only after the weights and the
/// optimizer state had been replaced).
#[test]
fn a_refused_load_changes_nothing() {
    each_device("a_refused_load_changes_nothing", |dev| {
        let d = dir("nothing");
        let (l, cfg) = (layout(), adam_config());
        let mut saved = model(dev, &l, &cfg);
        saved.train(0, 3);
        let good = d.join("good.safetensors");
        checkpoint::save(&good, &l, &saved.params, Some(&saved.opt), &train_state(3)).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        // Loaded into a model trained otherwise, so that any write would show.
        let mut m = model(dev, &l, &cfg);
        m.train(10, 12);
        let cases: [(&str, Option<&str>, &str); 13] = [
            ("global_step", None, "\"global_step\" is missing"),
            ("optimizer.step", None, "\"optimizer.step\" is missing"),
            ("optimizer.schedule_position", None, "is missing"),
            ("format_version", None, "\"format_version\" is missing"),
            ("optimizer", None, "no optimizer state"),
            ("global_step", Some("+3"), "not a count"),
            ("global_step", Some("9223372036854775808"), "not a count"),
            ("optimizer.schedule_position", Some("-1"), "not a count"),
            (
                "optimizer.step",
                Some("4"),
                "\"optim.conv1.weight.step\" = 3",
            ),
            ("rng.dropout", Some("11"), "not <seed>:<counter>"),
            ("rng.dropout", Some("011:6"), "not <seed>:<counter>"),
            ("global_step", Some("03"), "not a count"),
            ("optimizer.slots", None, "\"optimizer.slots\" is missing"),
        ];
        for (k, (key, value, want)) in cases.into_iter().enumerate() {
            let b = ckpt::resealed(&bytes, |meta| match value {
                Some(v) => drop(meta.insert(key.into(), v.into())),
                None => drop(meta.remove(key)),
            });
            let e = refused(&d, &format!("case{k}.safetensors"), &b, &l, &mut m);
            assert!(e.contains(want), "{key} = {value:?}: {e}");
        }
        // The good file still loads, and does change the model.
        let before = snapshot(&m, &l);
        checkpoint::load(&good, &l, &m.params, Some(&mut m.opt)).unwrap();
        assert!(snapshot(&m, &l) != before);
        assert!(snapshot(&m, &l) == snapshot(&saved, &l));
        std::fs::remove_dir_all(&d).unwrap();
    });
}

/// The metadata has a checksum too, covering the tensors' checksums: an edited counter or a
/// deleted checksum is an `Err`, not a silent change.
#[test]
fn edited_metadata_and_missing_checksums_are_refused() {
    each_device("edited_metadata_and_missing_checksums_are_refused", |dev| {
        let d = dir("edited");
        let (l, cfg) = (layout(), adam_config());
        let mut saved = model(dev, &l, &cfg);
        saved.train(0, 2);
        let good = d.join("good.safetensors");
        checkpoint::save(&good, &l, &saved.params, Some(&saved.opt), &train_state(2)).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let mut m = model(dev, &l, &cfg);
        type Edit = fn(&mut std::collections::HashMap<String, String>);
        let edits: [(&str, Edit); 5] = [
            ("step", |m| drop(m.insert("global_step".into(), "3".into()))),
            ("rng", |m| {
                drop(m.insert("rng.dropout".into(), "11:0".into()))
            }),
            ("added", |m| drop(m.insert("user.note".into(), "x".into()))),
            ("hash", |m| drop(m.remove("hash.fc.bias"))),
            ("schedule", |m| {
                drop(m.insert("optimizer.schedule_position".into(), "0".into()))
            }),
        ];
        for (what, edit) in edits {
            let b = ckpt::edited(&bytes, |_, meta| edit(meta));
            let e = refused(&d, &format!("{what}.safetensors"), &b, &l, &mut m);
            assert!(e.contains("metadata checksum mismatch"), "{what}: {e}");
        }
        let b = ckpt::edited(&bytes, |_, meta| {
            drop(meta.remove(checkpoint::METADATA_HASH))
        });
        let e = refused(&d, "unsealed.safetensors", &b, &l, &mut m);
        assert!(e.contains("\"metadata_hash\" is missing"), "{e}");
        // A deleted tensor checksum, even with the metadata checksum redone, is refused (it
        // used to skip that tensor's check), and so is a checksum of no tensor.
        let b = ckpt::resealed(&bytes, |meta| drop(meta.remove("hash.fc.bias")));
        let e = refused(&d, "nohash.safetensors", &b, &l, &mut m);
        assert!(e.contains("tensor \"fc.bias\" has no checksum"), "{e}");
        let b = ckpt::resealed(&bytes, |meta| {
            drop(meta.insert("hash.ghost".into(), "0".repeat(16)))
        });
        let e = refused(&d, "ghost.safetensors", &b, &l, &mut m);
        assert!(
            e.contains("\"ghost\"") && e.contains("does not hold"),
            "{e}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    });
}

/// An error caused by one tensor names that tensor and the file.
#[test]
fn errors_name_the_file_and_the_tensor() {
    each_device("errors_name_the_file_and_the_tensor", |dev| {
        let d = dir("names");
        let (l, cfg) = (layout(), adam_config());
        let mut saved = model(dev, &l, &cfg);
        saved.train(0, 1);
        let good = d.join("good.safetensors");
        checkpoint::save(&good, &l, &saved.params, Some(&saved.opt), &train_state(1)).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let mut m = model(dev, &l, &cfg);
        let state = "optim.fc.weight.exp_avg";
        let b = ckpt::edited(&bytes, |t, _| t.get_mut(state).unwrap().2[5] ^= 1);
        let e = refused(&d, "corrupt.safetensors", &b, &l, &mut m);
        assert!(
            e.contains(&format!("tensor {state:?}")) && e.contains("checksum"),
            "{e}"
        );
        let b = ckpt::rebuilt(&bytes, |t| t.get_mut(state).unwrap().1 = vec![330]);
        let e = refused(&d, "shape.safetensors", &b, &l, &mut m);
        assert!(
            e.contains(&format!("tensor {state:?} has shape [330]")),
            "{e}"
        );
        let step = "optim.norm.weight.step";
        let b = ckpt::rebuilt(&bytes, |t| {
            t.get_mut(step).unwrap().2 = (-1i64).to_le_bytes().to_vec()
        });
        let e = refused(&d, "step.safetensors", &b, &l, &mut m);
        assert!(e.contains(&format!("tensor {step:?} = -1")), "{e}");
        let b = ckpt::rebuilt(&bytes, |t| drop(t.remove("optim.conv1.bias.exp_avg_sq")));
        let e = refused(&d, "gone.safetensors", &b, &l, &mut m);
        assert!(
            e.contains("tensor \"optim.conv1.bias.exp_avg_sq\" is missing"),
            "{e}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    });
}

/// Temp files of interrupted saves to the same path are removed by the next successful save;
/// those of other targets and other files stay.
#[test]
fn stale_temp_files_are_removed() {
    each_device("stale_temp_files_are_removed", |dev| {
        let d = dir("stale");
        let l = layout();
        let m = model(dev, &l, &adam_config());
        let stale = [
            ".ckpt.safetensors.tmp-1-0",
            ".ckpt.safetensors.tmp-4194304-17",
        ];
        let others = [
            ".other.safetensors.tmp-1-0",
            ".ckpt.safetensors.tmp-x-1",
            ".ckpt.safetensors.tmp-1-",
            "ckpt.safetensors.tmp-1-0",
            ".ckpt.safetensors.tmp-1-0.keep",
        ];
        for f in stale.iter().chain(&others) {
            std::fs::write(d.join(f), b"half a checkpoint").unwrap();
        }
        checkpoint::save(
            &d.join("ckpt.safetensors"),
            &l,
            &m.params,
            None,
            &train_state(0),
        )
        .unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut want: Vec<String> = others.iter().map(|s| s.to_string()).collect();
        want.push("ckpt.safetensors".into());
        want.sort();
        assert_eq!(names, want);
        std::fs::remove_dir_all(&d).unwrap();
    });
}

/// NaN or infinity in a weight or an optimizer state, even with every checksum redone, is an
/// `Err` naming the file and the tensor: a poisoned checkpoint is never loaded.
#[test]
fn non_finite_tensors_are_refused() {
    each_device("non_finite_tensors_are_refused", |dev| {
        let d = dir("nonfinite");
        let (l, cfg) = (layout(), adam_config());
        let mut saved = model(dev, &l, &cfg);
        saved.train(0, 1);
        let good = d.join("good.safetensors");
        checkpoint::save(&good, &l, &saved.params, Some(&saved.opt), &train_state(1)).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let mut m = model(dev, &l, &cfg);
        for (name, value) in [
            ("fc.bias", f32::NAN),
            ("optim.fc.weight.exp_avg_sq", f32::INFINITY),
        ] {
            let b = ckpt::rebuilt(&bytes, |t| {
                t.get_mut(name).unwrap().2[..4].copy_from_slice(&value.to_le_bytes())
            });
            let e = refused(&d, "poisoned.safetensors", &b, &l, &mut m);
            assert!(
                e.contains(&format!("{name:?}")) && e.contains("poisoned.safetensors"),
                "{name}: {e}"
            );
        }
        std::fs::remove_dir_all(&d).unwrap();
    });
}
