//! Checkpoint test helpers shared by `tests/checkpoint.rs` and `tests/fuzz_checkpoint.rs`
//! (included with `#[path]`, so the other test crates do not compile it): editing a
//! checkpoint's metadata as a tool would on purpose (checksum recomputed, so the edit reaches
//! the checks behind the checksum), and the smallest classifier with persistent states.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::{SafeTensors, TensorView};
use wgtrain::checkpoint::{METADATA_HASH, metadata_checksum, tensor_checksum};
use wgtrain::data::HarWindows;
use wgtrain::graph::Graph;
use wgtrain::optim::{Algorithm, OptimizerConfig};
use wgtrain::train::{Network, TrainConfig, Trainer};
use wgtrain::weights::ParamStore;
use wgtrain::{BatchNorm, Device, FullyConnected, Loss, LossKind, Reduction};

/// The metadata of a safetensors file.
pub fn metadata(bytes: &[u8]) -> HashMap<String, String> {
    let (_, m) = SafeTensors::read_metadata(bytes).unwrap();
    m.metadata().clone().unwrap_or_default()
}

/// A tensor as `rebuilt` hands it out: dtype, shape, bytes.
pub type Owned = (safetensors::Dtype, Vec<usize>, Vec<u8>);

fn tensors(bytes: &[u8]) -> BTreeMap<String, Owned> {
    SafeTensors::deserialize(bytes)
        .unwrap()
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, (t.dtype(), t.shape().to_vec(), t.data().to_vec())))
        .collect()
}

fn serialize(tensors: &BTreeMap<String, Owned>, meta: HashMap<String, String>) -> Vec<u8> {
    let views: BTreeMap<&String, TensorView> = tensors
        .iter()
        .map(|(n, (dt, shape, data))| (n, TensorView::new(*dt, shape.clone(), data).unwrap()))
        .collect();
    safetensors::tensor::serialize(views, Some(meta)).unwrap()
}

/// `bytes` with its tensors and metadata edited and no checksum recomputed: what corruption or
/// a careless edit gives.
pub fn edited(
    bytes: &[u8],
    edit: impl FnOnce(&mut BTreeMap<String, Owned>, &mut HashMap<String, String>),
) -> Vec<u8> {
    let (mut t, mut meta) = (tensors(bytes), metadata(bytes));
    edit(&mut t, &mut meta);
    serialize(&t, meta)
}

/// `bytes` with its metadata edited and the metadata checksum recomputed (tensor checksums
/// left as they are), as a tool editing on purpose would.
pub fn resealed(bytes: &[u8], edit: impl FnOnce(&mut HashMap<String, String>)) -> Vec<u8> {
    let (t, mut meta) = (tensors(bytes), metadata(bytes));
    edit(&mut meta);
    meta.insert(METADATA_HASH.into(), metadata_checksum(&meta));
    serialize(&t, meta)
}

/// `bytes` with its tensors edited, then every tensor checksum (`hash.<name>` for the tensors
/// there are, no others) and the metadata checksum recomputed.
pub fn rebuilt(bytes: &[u8], edit: impl FnOnce(&mut BTreeMap<String, Owned>)) -> Vec<u8> {
    let (mut t, mut meta) = (tensors(bytes), metadata(bytes));
    edit(&mut t);
    meta.retain(|k, _| !k.starts_with("hash."));
    for (name, (_, _, data)) in &t {
        meta.insert(format!("hash.{name}"), tensor_checksum(data));
    }
    meta.insert(METADATA_HASH.into(), metadata_checksum(&meta));
    serialize(&t, meta)
}

/// The smallest classifier the loop takes with a persistent state: `image` (N, 3, 2) → batch
/// norm `bn` (running statistics `bn.running_mean`, `bn.running_var`) → flatten → dense `fc`
/// (6 → 2) → softmax cross-entropy.
pub fn tiny_classifier(batch: usize) -> Network {
    let mut g = Graph::new();
    let x = g.input("image", &[batch, 3, 2]).unwrap();
    let labels = g.input_u32("labels", &[batch]).unwrap();
    let weights = g.input("weights", &[batch]).unwrap();
    let h = g.batch_norm("bn", x, BatchNorm::default()).unwrap();
    let h = g.flatten("flat", h).unwrap();
    let logits = g.dense("fc", h, FullyConnected::new(6, 2)).unwrap();
    let kind = LossKind::SoftmaxCrossEntropy {
        label_smoothing: 0.0,
        class_weights: None,
    };
    let loss = g
        .loss(
            "loss",
            logits,
            labels,
            Some(weights),
            Loss {
                kind,
                reduction: Reduction::SumByNonZeroWeights,
            },
        )
        .unwrap();
    Network {
        graph: g,
        output: logits,
        loss,
    }
}

/// Six windows of (3, 2) for `tiny_classifier`, two classes.
pub fn tiny_data() -> HarWindows {
    HarWindows {
        x: (0..36).map(|i| ((i * 7) % 11) as f32 / 5.0 - 1.0).collect(),
        labels: vec![0, 1, 1, 0, 1, 0],
        users: vec![1; 6],
        n: 6,
        channels: 3,
        len: 2,
    }
}

/// A trainer of `tiny_classifier` (batch 2, Adam) with `seed`.
pub fn tiny_trainer(dev: &Device, seed: u64) -> Trainer {
    let cfg = TrainConfig {
        epochs: 3,
        batch: 2,
        seed,
        progress: false,
        log_every: 1,
        ..TrainConfig::default()
    };
    let opt = OptimizerConfig::new(Algorithm::adam(), 0.01);
    Trainer::new(dev, tiny_classifier(2), opt, cfg).unwrap()
}

/// Everything a load may change in a trainer, as bits: weights, optimizer state, running
/// statistics, then epoch, global step, optimizer step, schedule position and dropout counter.
pub fn trainer_state(t: &Trainer) -> Vec<u64> {
    let c = t.compiled();
    let bits = |v: Vec<f32>| v.into_iter().map(|x| u64::from(x.to_bits()));
    let mut out: Vec<u64> = bits(ParamStore::read_all(c).unwrap()).collect();
    out.extend(bits(t.optimizer().read_state().unwrap()));
    for s in ["bn.running_mean", "bn.running_var"] {
        out.extend(bits(c.read(c.graph.find(s).unwrap()).unwrap()));
    }
    out.extend([
        t.epoch() as u64,
        t.global_step(),
        t.optimizer().step_count(),
        t.optimizer().schedule_position(),
        c.step_count(),
    ]);
    out
}
