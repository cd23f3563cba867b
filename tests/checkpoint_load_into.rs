//! Checkpoints PyTorch users hand over: F64, F16 and BF16 tensors converted to f32 on load (and
//! refused, naming the tensor, where the value does not fit); and `checkpoint::load_into`, which
//! loads by name into any compiled graph — an inference twin compiled without the training
//! option — all or nothing.

mod common;
#[path = "common/ckpt.rs"]
mod ckpt;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use common::each_device;
use safetensors::tensor::{Dtype, TensorView};
use wgtrain::graph::{Graph, Value};
use wgtrain::reference::Array;
use wgtrain::weights::checkpoint::{self, LoadTarget, TrainState};
use wgtrain::weights::{ParamLayout, ParamStore};
use wgtrain::{Compiled, Device, Options, Tensor};

fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgtrain-load-into-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A plain safetensors file (as PyTorch's `save_file` writes) of `(name, dtype, shape, bytes)`.
fn write_plain(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: BTreeMap<&str, TensorView> = tensors
        .iter()
        .map(|(n, dt, s, b)| (*n, TensorView::new(*dt, s.clone(), b).unwrap()))
        .collect();
    let bytes = safetensors::tensor::serialize(views, None).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
        .collect()
}

fn bf16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
        .collect()
}

#[test]
fn f64_f16_bf16_tensors_are_converted_to_f32() {
    let d = dir("convert");
    let path = d.join("mixed.safetensors");
    // Values exact in each dtype, so the converted f32 is known exactly.
    let w64 = [1.5f64, -2.25, 1e-3, 3.0e38];
    let w16 = [0.5f32, -1.0, 65504.0, 6.1035156e-5];
    let wb16 = [1.0f32, -3.0e38, 0.0078125, 2.0];
    write_plain(
        &path,
        &[
            ("a", Dtype::F64, vec![2, 2], f64_bytes(&w64)),
            ("b", Dtype::F16, vec![4], f16_bytes(&w16)),
            ("c", Dtype::BF16, vec![1, 4], bf16_bytes(&wb16)),
        ],
    );
    let a = checkpoint::read_tensor(&path, "a", &[2, 2]).unwrap();
    assert_eq!(a, w64.iter().map(|&x| x as f32).collect::<Vec<_>>());
    assert_eq!(checkpoint::read_tensor(&path, "b", &[4]).unwrap(), w16);
    let c = checkpoint::read_tensor(&path, "c", &[1, 4]).unwrap();
    assert_eq!(c, wb16.map(|x| half::bf16::from_f32(x).to_f32()));
    // The arena path converts too.
    let layout =
        ParamLayout::packed(&[("a", &[2, 2][..]), ("b", &[4]), ("c", &[1, 4])], 1).unwrap();
    each_device("load_weights converts", |dev| {
        let arena = Tensor::zeros(dev, &[layout.len()], wgtrain::DType::F32).unwrap();
        checkpoint::load_weights(&path, &layout, &arena).unwrap();
        let got = arena.read_all().unwrap();
        assert_eq!(&got[layout.entries()[1].range()], &w16);
    });
    // A mis-shaped converted tensor is still refused by shape.
    let e = checkpoint::read_tensor(&path, "b", &[5])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"b\"") && e.contains("[4]") && e.contains("[5]"),
        "{e}"
    );
}

#[test]
fn values_that_do_not_fit_f32_are_refused_naming_the_tensor() {
    let d = dir("overflow");
    let cases: [(&str, Dtype, Vec<u8>, &str); 5] = [
        (
            "big",
            Dtype::F64,
            f64_bytes(&[1.0, 1e39]),
            "past the f32 range",
        ),
        (
            "neg",
            Dtype::F64,
            f64_bytes(&[-3.5e38, 0.0]),
            "past the f32 range",
        ),
        ("nan64", Dtype::F64, f64_bytes(&[0.0, f64::NAN]), "NaN"),
        ("inf16", Dtype::F16, f16_bytes(&[f32::INFINITY, 1.0]), "inf"),
        ("nanbf", Dtype::BF16, bf16_bytes(&[1.0, f32::NAN]), "NaN"),
    ];
    for (name, dt, bytes, why) in cases {
        let path = d.join(format!("{name}.safetensors"));
        write_plain(&path, &[(name, dt, vec![2], bytes)]);
        let e = checkpoint::read_tensor(&path, name, &[2])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("{name:?}")) && e.contains(why) && e.contains("element"),
            "{name}: {e}"
        );
    }
    // Integer tensors are not weights.
    let path = d.join("int.safetensors");
    write_plain(
        &path,
        &[("i", Dtype::I32, vec![1], 7i32.to_le_bytes().to_vec())],
    );
    let e = checkpoint::read_tensor(&path, "i", &[1])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"i\"") && e.contains("I32") && e.contains("F64"),
        "{e}"
    );
}

/// The tiny classifier's training graph (batch norm with running statistics, dense head),
/// compiled with its parameters in the arena, and its logits.
fn trained(dev: &Device) -> (Compiled, Value, Graph) {
    let c = ckpt::tiny_classifier(2);
    let mut g = c.graph;
    let forward = g.clone();
    let training = g.training(c.loss).unwrap();
    let opts = Options {
        training: Some(&training),
        ..Options::default()
    };
    let step = g.compile(dev, &[c.loss, c.output], &opts).unwrap();
    (step, c.output, forward)
}

/// Distinct values for every parameter and state of `g` (as training would leave them).
fn values(g: &Graph, seed: u64) -> HashMap<String, Vec<f32>> {
    let mut out = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if matches!(n.op, wgtrain::graph::Op::Param | wgtrain::graph::Op::State) {
            let a = Array::seeded(&n.outputs[0].0, seed + i as u64);
            // Running variances must stay positive.
            let v = a.to_f32().iter().map(|x| x.abs() + 0.25).collect();
            out.insert(n.name.clone(), v);
        }
    }
    out
}

/// Saves `step`'s weights as the training loop does, with the batch-norm running statistics
/// in the metadata (`user.state.<name>`).
fn save(path: &Path, step: &Compiled, states: &HashMap<String, Vec<f32>>) {
    let mut metadata = BTreeMap::new();
    for (name, v) in states {
        metadata.insert(checkpoint::state_key(name), checkpoint::encode_state(v));
    }
    let ts = TrainState {
        metadata,
        ..TrainState::default()
    };
    checkpoint::save(path, step.param_layout().unwrap(), step, None, &ts).unwrap();
}

/// The inference twin of `forward`, compiled separately for `logits`, and its input.
fn inference(dev: &Device, forward: &Graph, logits: Value) -> Compiled {
    let c = forward
        .for_inference()
        .compile(dev, &[logits], &Options::default())
        .unwrap();
    let x: Vec<f32> = (0..12).map(|i| i as f32 / 6.0 - 1.0).collect();
    c.set("image", &x).unwrap();
    c
}

/// Every held parameter and state of `c`, as bits.
fn contents(c: &Compiled) -> Vec<(String, Vec<u32>)> {
    c.entries()
        .iter()
        .filter(|e| e.held)
        .map(|e| {
            let v = c.graph.find(&e.name).unwrap();
            let bits = c.read(v).unwrap().iter().map(|x| x.to_bits()).collect();
            (e.name.clone(), bits)
        })
        .collect()
}

#[test]
fn a_training_checkpoint_loads_into_its_inference_twin() {
    each_device("load_into", |dev| {
        let d = dir("twin");
        let (step, logits, forward) = trained(dev);
        let vals = values(&step.graph, 3);
        let mut states = HashMap::new();
        for (name, v) in &vals {
            step.set(name, v).unwrap();
            if name.contains("running") {
                states.insert(name.clone(), v.clone());
            }
        }
        let path = d.join("ck.safetensors");
        save(&path, &step, &states);

        // The twin loaded from the file gives the same logits as one given the values directly.
        let loaded = inference(dev, &forward, logits);
        checkpoint::load_into(&path, &loaded).unwrap();
        loaded.step().unwrap();
        let direct = inference(dev, &forward, logits);
        for (name, v) in &vals {
            direct.set(name, v).unwrap();
        }
        direct.step().unwrap();
        let (a, b) = (loaded.read(logits).unwrap(), direct.read(logits).unwrap());
        assert_eq!(a, b);
        // And the running statistics arrived bit for bit (inference normalises with them).
        let rm = loaded
            .read(loaded.graph.find("bn.running_mean").unwrap())
            .unwrap();
        assert_eq!(rm, vals["bn.running_mean"]);
        // The reference agrees (so the logits are not, say, both zero).
        let mut feeds: HashMap<String, Array> = vals
            .iter()
            .map(|(n, v)| {
                let s = forward.shape(forward.find(n).unwrap()).unwrap();
                (n.clone(), Array::from_f32(s, v))
            })
            .collect();
        let x: Vec<f32> = (0..12).map(|i| i as f32 / 6.0 - 1.0).collect();
        feeds.insert("image".into(), Array::from_f32(&[2, 3, 2], &x));
        feeds.insert("labels".into(), Array::zeros(&[2]));
        feeds.insert("weights".into(), Array::zeros(&[2]));
        let want = forward
            .for_inference()
            .eval_reference(&feeds, &[logits])
            .unwrap();
        common::assert_close("twin logits", &a, &want[0].data, 1e-5, 1e-4);
        assert!(a.iter().any(|v| v.abs() > 1e-3), "{a:?}");
    });
}

#[test]
fn a_bad_file_is_refused_and_changes_nothing() {
    each_device("load_into refused", |dev| {
        let d = dir("refused");
        let (step, logits, forward) = trained(dev);
        let vals = values(&step.graph, 5);
        let mut states = HashMap::new();
        for (name, v) in &vals {
            step.set(name, v).unwrap();
            if name.contains("running") {
                states.insert(name.clone(), v.clone());
            }
        }
        let good = d.join("good.safetensors");
        save(&good, &step, &states);
        let bytes = std::fs::read(&good).unwrap();
        let twin = inference(dev, &forward, logits);
        let before = contents(&twin);
        let refused = |name: &str, bytes: Vec<u8>| -> String {
            let p = d.join(name);
            std::fs::write(&p, bytes).unwrap();
            let e = checkpoint::load_into(&p, &twin).unwrap_err().to_string();
            assert_eq!(
                contents(&twin),
                before,
                "{name}: a refused load wrote something"
            );
            assert!(e.contains(name), "{name}: the error names the file: {e}");
            e
        };
        // fc.bias is the graph's last parameter: everything before it would be written by a
        // one-at-a-time loader.
        let e = refused(
            "missing.safetensors",
            ckpt::rebuilt(&bytes, |t| {
                t.remove("fc.bias");
            }),
        );
        assert!(e.contains("\"fc.bias\"") && e.contains("missing"), "{e}");
        let e = refused(
            "extra.safetensors",
            ckpt::rebuilt(&bytes, |t| {
                let b = t["fc.bias"].clone();
                t.insert("fc2.bias".into(), b);
            }),
        );
        assert!(
            e.contains("\"fc2.bias\"") && e.contains("not a parameter"),
            "{e}"
        );
        let e = refused(
            "shape.safetensors",
            ckpt::rebuilt(&bytes, |t| {
                let b = t.get_mut("fc.bias").unwrap();
                b.1 = vec![1, 2];
            }),
        );
        assert!(
            e.contains("\"fc.bias\"") && e.contains("[1, 2]") && e.contains("[2]"),
            "{e}"
        );
        let e = refused(
            "nostate.safetensors",
            ckpt::resealed(&bytes, |m| {
                m.remove("user.state.bn.running_var");
            }),
        );
        assert!(
            e.contains("\"bn.running_var\"") && e.contains("missing"),
            "{e}"
        );
        let e = refused(
            "badstate.safetensors",
            ckpt::resealed(&bytes, |m| {
                m.insert("user.state.bn.running_var".into(), "00".into());
            }),
        );
        assert!(
            e.contains("\"bn.running_var\"") && e.contains("8 hex digits"),
            "{e}"
        );
        let e = refused(
            "extrastate.safetensors",
            ckpt::resealed(&bytes, |m| {
                m.insert("user.state.bn2.running_mean".into(), "00000000".into());
            }),
        );
        assert!(
            e.contains("\"bn2.running_mean\"") && e.contains("not a persistent"),
            "{e}"
        );
        let e = refused(
            "corrupt.safetensors",
            ckpt::edited(&bytes, |t, _| {
                t.get_mut("fc.weight").unwrap().2[0] ^= 1;
            }),
        );
        assert!(e.contains("\"fc.weight\"") && e.contains("checksum"), "{e}");

        // A plain safetensors file with the states as tensors (PyTorch's state_dict) loads too,
        // converted from F64.
        let plain = d.join("plain.safetensors");
        let names: Vec<String> = vals.keys().cloned().collect();
        let t: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = names
            .iter()
            .map(|n| {
                let s = forward.shape(forward.find(n).unwrap()).unwrap().to_vec();
                let v: Vec<f64> = vals[n].iter().map(|&x| x as f64).collect();
                (n.as_str(), Dtype::F64, s, f64_bytes(&v))
            })
            .collect();
        write_plain(&plain, &t);
        checkpoint::load_into(&plain, &twin).unwrap();
        let rv = twin
            .read(twin.graph.find("bn.running_var").unwrap())
            .unwrap();
        assert_eq!(rv, vals["bn.running_var"]);
    });
}

/// A PyTorch state dict carries `num_batches_tracked` (int64, rank 0) per batch norm: ignored
/// for a norm the graph has, refused for one it has not.
#[test]
fn pytorch_batch_norm_counters_are_ignored() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3, 4, 4]).unwrap();
    let c = g
        .conv2d("c", x, wgtrain::Conv2d::out(2, 1).no_bias())
        .unwrap();
    let y = g
        .batch_norm("bn", c, wgtrain::BatchNorm::default())
        .unwrap();
    let gi = g.for_inference();
    let d = dir("counters");
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let mut tensors = vec![
        ("c.weight", Dtype::F32, vec![2, 3, 1, 1], f32s(&[0.5; 6])),
        ("bn.weight", Dtype::F32, vec![2], f32s(&[2.0, 3.0])),
        ("bn.bias", Dtype::F32, vec![2], f32s(&[0.0, 1.0])),
        ("bn.running_mean", Dtype::F32, vec![2], f32s(&[0.0, 0.0])),
        ("bn.running_var", Dtype::F32, vec![2], f32s(&[1.0, 1.0])),
        (
            "bn.num_batches_tracked",
            Dtype::I64,
            vec![],
            7i64.to_le_bytes().to_vec(),
        ),
    ];
    let path = d.join("torch.safetensors");
    write_plain(&path, &tensors);
    each_device("bn counters", |dev| {
        let step = gi.compile(dev, &[y], &Options::default()).unwrap();
        checkpoint::load_into(&path, &step).unwrap();
        let bn_w = step.read(gi.find("bn.weight").unwrap()).unwrap();
        assert_eq!(bn_w, vec![2.0, 3.0]);
    });
    tensors.push((
        "other.num_batches_tracked",
        Dtype::I64,
        vec![],
        1i64.to_le_bytes().to_vec(),
    ));
    let bad = d.join("extra.safetensors");
    write_plain(&bad, &tensors);
    each_device("bn counters extra", |dev| {
        let step = gi.compile(dev, &[y], &Options::default()).unwrap();
        let e = checkpoint::load_into(&bad, &step).unwrap_err().to_string();
        assert!(e.contains("other.num_batches_tracked"), "{e}");
    });
    let _ = std::fs::remove_dir_all(&d);
}
