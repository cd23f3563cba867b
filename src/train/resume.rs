//! The training loop's part of a checkpoint: the epoch, the random streams and the graph's
//! persistent states (batch-norm running statistics) as metadata entries. `ResumePoint::parse`
//! checks all of them before `Trainer::load` changes anything.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::weights::checkpoint::{MAX_COUNTER, RngState, TrainState};
pub(super) use crate::weights::checkpoint::{decode_state, encode_state, state_key};

/// The random streams a trainer saves: the shuffle of each epoch and the dropout masks, both
/// from the run's seed.
pub(super) fn rng_streams(seed: u64, epoch: u64, dropout_steps: u64) -> BTreeMap<String, RngState> {
    let mut rng = BTreeMap::new();
    rng.insert(
        "data_order".to_string(),
        RngState {
            seed,
            counter: epoch,
        },
    );
    rng.insert(
        "dropout".to_string(),
        RngState {
            seed,
            counter: dropout_steps,
        },
    );
    rng
}

/// Everything `Trainer::load` sets besides what `Checkpoint::apply` writes, parsed and checked.
pub(super) struct ResumePoint {
    pub epoch: usize,
    pub global_step: u64,
    /// The compiled graph's step counter, which the dropout masks follow.
    pub dropout_steps: u64,
    /// Each persistent state node's name and values.
    pub states: Vec<(String, Vec<f32>)>,
}

impl ResumePoint {
    /// Parses `ts` for a trainer of `seed` whose graph has the persistent `states` (name,
    /// element count): the epoch, both random streams (of this seed, the shuffle at the epoch),
    /// and every state of its length, no more. The error names `path` and the entry.
    pub fn parse(
        path: &Path,
        ts: &TrainState,
        seed: u64,
        states: &[(String, usize)],
    ) -> Result<ResumePoint> {
        let bad = |msg: String| Error::Io {
            path: path.display().to_string(),
            msg,
        };
        let epoch_text = ts
            .metadata
            .get("epoch")
            .ok_or_else(|| bad("checkpoint lacks the epoch (metadata \"user.epoch\")".into()))?;
        // Digits as `save` writes them: no sign, no leading zero.
        let canonical = |s: &&str| match s.as_bytes() {
            [] | [b'0', _, ..] => false,
            b => b.iter().all(u8::is_ascii_digit),
        };
        let epoch = Some(epoch_text.as_str())
            .filter(canonical)
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|&e| e <= MAX_COUNTER)
            .and_then(|e| usize::try_from(e).ok())
            .ok_or_else(|| {
                bad(format!(
                    "metadata \"user.epoch\" = {epoch_text:?} is not an epoch count"
                ))
            })?;
        let stream = |name: &str| -> Result<RngState> {
            let r = *ts.rng.get(name).ok_or_else(|| {
                bad(format!(
                    "checkpoint lacks the {name} stream (metadata \"rng.{name}\")"
                ))
            })?;
            if r.seed != seed {
                return Err(bad(format!(
                    "stream {name:?} has seed {}, this trainer's seed is {seed}: the resumed run would not continue the saved one",
                    r.seed
                )));
            }
            Ok(r)
        };
        let order = stream("data_order")?;
        if order.counter != epoch as u64 {
            return Err(bad(format!(
                "the data_order stream is at epoch {}, the checkpoint's epoch is {epoch}",
                order.counter
            )));
        }
        let dropout_steps = stream("dropout")?.counter;
        let mut parsed = Vec::with_capacity(states.len());
        for (name, n) in states {
            let key = state_key(name);
            let hex = ts.metadata.get(&key).ok_or_else(|| {
                bad(format!(
                    "checkpoint lacks state {name:?} (metadata \"user.{key}\")"
                ))
            })?;
            let v = decode_state(hex, *n).ok_or_else(|| {
                bad(format!(
                    "state {name:?} (metadata \"user.{key}\") is not {n} values as 8 hex digits each ({} bytes)",
                    hex.len()
                ))
            })?;
            parsed.push((name.clone(), v));
        }
        if let Some(k) = ts
            .metadata
            .keys()
            .filter_map(|k| k.strip_prefix("state."))
            .find(|k| !states.iter().any(|(n, _)| n == k))
        {
            return Err(bad(format!(
                "state {k:?} is not a persistent state of this graph"
            )));
        }
        Ok(ResumePoint {
            epoch,
            global_step: ts.global_step,
            dropout_steps,
            states: parsed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_bit_exact_and_bad_hex_is_refused() {
        let v = [
            0.0f32,
            -0.0,
            1.5,
            f32::NAN,
            f32::INFINITY,
            f32::MIN_POSITIVE,
        ];
        let hex = encode_state(&v);
        let back = decode_state(&hex, v.len()).unwrap();
        assert!(v.iter().zip(&back).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(decode_state(&hex, v.len() - 1).is_none());
        assert!(decode_state(&hex[..hex.len() - 1], v.len()).is_none());
        assert!(decode_state("", 0).unwrap().is_empty());
        assert!(
            decode_state("+0000000", 1).is_none(),
            "from_str_radix takes a sign"
        );
        // A multi-byte character straddling a value boundary: refused, not a panic.
        let mut odd = "0".repeat(7);
        odd.push('é');
        odd.push_str(&"0".repeat(7));
        assert_eq!(odd.len(), 16);
        assert!(decode_state(&odd, 2).is_none());
        assert!(decode_state("0000000g", 1).is_none());
        assert!(decode_state("00000000", usize::MAX).is_none());
    }
}
