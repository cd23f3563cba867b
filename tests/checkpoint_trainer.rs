//! `Trainer::load` checks the whole checkpoint — weights, optimizer, counters, the run's seed,
//! every running statistic — before it changes anything: a bad file is an `Err` naming the file
//! and the entry, and the trainer is left exactly as it was.

mod common;
#[path = "common/ckpt.rs"]
mod ckpt;

use std::collections::HashMap;

use common::each_device;

type Edit = Box<dyn Fn(&mut HashMap<String, String>)>;

fn set(key: &'static str, value: &'static str) -> Edit {
    Box::new(move |m| drop(m.insert(key.into(), value.into())))
}

fn remove(key: &'static str) -> Edit {
    Box::new(move |m| drop(m.remove(key)))
}

#[test]
fn a_refused_trainer_load_changes_nothing() {
    each_device("a_refused_trainer_load_changes_nothing", |dev| {
        let d = std::env::temp_dir().join(format!("wgtrain-ckpt-trainer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let data = ckpt::tiny_data();
        let mut saved = ckpt::tiny_trainer(dev, 5);
        saved.train_epoch(&data, None).unwrap();
        let good = d.join("good.safetensors");
        saved.save(&good).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let mean = ckpt::metadata(&bytes)["user.state.bn.running_mean"].clone();
        // A character of two bytes where two hex digits were: the old parser sliced the string
        // by bytes and panicked ("byte index is not a char boundary").
        let accented: &'static str = Box::leak(format!("0é{}", &mean[3..]).into_boxed_str());
        let short: &'static str = Box::leak(mean[8..].to_string().into_boxed_str());
        // A trainer trained further, so that any write would show.
        let mut t = ckpt::tiny_trainer(dev, 5);
        for _ in 0..2 {
            t.train_epoch(&data, None).unwrap();
        }
        let cases: Vec<(&str, Edit, &str)> = vec![
            ("epoch", remove("user.epoch"), "lacks the epoch"),
            ("epoch-text", set("user.epoch", "one"), "not an epoch count"),
            ("epoch-zero", set("user.epoch", "01"), "not an epoch count"),
            ("dropout", remove("rng.dropout"), "lacks the dropout stream"),
            (
                "order",
                remove("rng.data_order"),
                "lacks the data_order stream",
            ),
            ("order-epoch", set("rng.data_order", "5:2"), "at epoch 2"),
            (
                "seed",
                set("rng.dropout", "6:3"),
                "seed 6, this trainer's seed is 5",
            ),
            (
                "state",
                remove("user.state.bn.running_var"),
                "\"bn.running_var\"",
            ),
            (
                "non-ascii",
                set("user.state.bn.running_mean", accented),
                "\"bn.running_mean\"",
            ),
            (
                "short",
                set("user.state.bn.running_mean", short),
                "is not 3 values",
            ),
            (
                "extra",
                set("user.state.bn2.running_mean", "00000000"),
                "\"bn2.running_mean\"",
            ),
            (
                "global",
                remove("global_step"),
                "\"global_step\" is missing",
            ),
            (
                "schedule",
                remove("optimizer.schedule_position"),
                "schedule_position",
            ),
        ];
        for (name, edit, want) in cases {
            let p = d.join(format!("{name}.safetensors"));
            std::fs::write(&p, ckpt::resealed(&bytes, edit)).unwrap();
            let before = ckpt::trainer_state(&t);
            let e = t.load(&p).unwrap_err().to_string();
            assert!(
                e.contains(&p.display().to_string()) && e.contains(want),
                "{name}: {e}"
            );
            assert!(
                ckpt::trainer_state(&t) == before,
                "{name}: a refused load changed the trainer: {e}"
            );
        }
        // Another run's checkpoint (another seed): refused, the trainer unchanged.
        let mut other = ckpt::tiny_trainer(dev, 6);
        let before = ckpt::trainer_state(&other);
        let e = other.load(&good).unwrap_err().to_string();
        assert!(e.contains("this trainer's seed is 6"), "{e}");
        assert!(ckpt::trainer_state(&other) == before);
        // The good file loads and restores everything.
        t.load(&good).unwrap();
        assert!(ckpt::trainer_state(&t) == ckpt::trainer_state(&saved));
        std::fs::remove_dir_all(&d).unwrap();
    });
}
