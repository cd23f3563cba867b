//! Messages that say what was given and what would fit: feeding an input the other dtype, loss
//! labels of the wrong shape or dtype, and the device description read once.

mod common;

use common::each_device;
use wgtrain::ops::loss::{Loss, LossKind, Reduction};
use wgtrain::{Graph, Options};

fn mse() -> Loss {
    Loss::new(LossKind::MeanSquaredError, Reduction::Mean).unwrap()
}

/// `set` into a u32 input and `set_u32` into an f32 input name the input, what it holds and the
/// call that fits; neither writes anything.
#[test]
fn feeding_the_other_dtype_names_the_call_that_fits() {
    let mut g = Graph::new();
    let x = g.input("image", &[4, 3]).unwrap();
    let labels = g.input_u32("labels", &[4]).unwrap();
    let loss = g
        .loss(
            "loss",
            x,
            labels,
            None,
            Loss::softmax_cross_entropy(Reduction::Mean),
        )
        .unwrap();
    each_device("feeding the other dtype", |dev| {
        let c = g.compile(dev, &[loss], &Options::default()).unwrap();
        c.set_u32("labels", &[0, 1, 2, 1]).unwrap();
        c.set("image", &[0.5; 12]).unwrap();

        let e = c
            .set("labels", &[0.0, 1.0, 2.0, 1.0])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("input \"labels\" holds u32")
                && e.contains("`input_u32`")
                && e.contains("`set` wrote f32")
                && e.contains("write them with `set_u32`"),
            "{e}"
        );
        let e = c.set_u32("image", &[1; 12]).unwrap_err().to_string();
        assert!(
            e.contains("input \"image\" holds f32")
                && e.contains("`set_u32` wrote u32")
                && e.contains("write them with `set`")
                && e.contains("`input_u32` if it holds class indices"),
            "{e}"
        );
        assert!(!e.contains("expected a"), "{e}");
        // Nothing was written: the labels are still the u32 values set first.
        assert_eq!(c.tensor(labels).unwrap().to_u32().unwrap(), [0, 1, 2, 1]);

        // Straight into the tensor, the message is said from the writer's side too.
        let e = c.tensor(labels).unwrap().write_f32(&[0.0; 4]).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("write_f32: F32 values written into a U32 tensor [4]"),
            "{e}"
        );
        let e = c.tensor(x).unwrap().write_u32(&[0; 12]).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("write_u32: U32 values written into a F32 tensor [4, 3]"),
            "{e}"
        );
    });
}

/// An elementwise loss between two shapes says they must match, not that class indices need a
/// cross-entropy; one value per sample still mentions class indices.
#[test]
fn elementwise_loss_labels_must_match_the_logits() {
    let mut g = Graph::new();
    let x = g.input("x", &[4, 1, 28, 28]).unwrap();
    let t = g.input("t", &[4, 1, 27, 27]).unwrap();
    let e = g.loss("mse", x, t, None, mse()).unwrap_err().to_string();
    assert!(
        e.contains("element by element")
            && e.contains(
                "labels (4, 1, 27, 27) and logits (4, 1, 28, 28) must have the same shape"
            ),
        "{e}"
    );
    assert!(!e.contains("categorical") && !e.contains("class"), "{e}");

    let per_sample = g.input("per_sample", &[4]).unwrap();
    let e = g.loss("mse2", x, per_sample, None, mse()).unwrap_err();
    let e = e.to_string();
    assert!(
        e.contains("labels (4) and logits (4, 1, 28, 28) must have the same shape")
            && e.contains("class indices, which only the softmax and categorical"),
        "{e}"
    );
    // The gradient op infers the same way.
    let mut h = Graph::new();
    let x = h.input("x", &[2, 3]).unwrap();
    let t = h.input("t", &[2, 3]).unwrap();
    let l = h.loss("mse", x, t, None, mse()).unwrap();
    assert!(h.gradients(l, &[x]).is_ok());
}

/// Cross-entropy labels of neither form say both forms; f32 labels with one value per sample
/// (meant as class indices) suggest `input_u32`.
#[test]
fn class_index_labels_of_the_wrong_shape_or_dtype_say_what_fits() {
    let ce = || Loss::softmax_cross_entropy(Reduction::Mean);
    let mut g = Graph::new();
    let x = g.input("x", &[4, 1, 28, 28]).unwrap();
    let t = g.input("t", &[4, 1, 27, 27]).unwrap();
    let e = g.loss("ce", x, t, None, ce()).unwrap_err().to_string();
    assert!(
        e.contains("labels (4, 1, 27, 27) fit neither form")
            && e.contains("the logits' shape (4, 1, 28, 28)")
            && e.contains("are (4) u32 (`input_u32`)"),
        "{e}"
    );

    let mut g = Graph::new();
    let x = g.input("x", &[4, 10]).unwrap();
    let labels = g.input("labels", &[4]).unwrap(); // f32: `input`, not `input_u32`
    let loss = g.loss("loss", x, labels, None, ce()).unwrap();
    each_device("f32 class indices", |dev| {
        let Err(e) = g.compile(dev, &[loss], &Options::default()) else {
            panic!("f32 labels (4) compiled for a softmax cross-entropy");
        };
        let e = e.to_string();
        assert!(
            e.contains("labels (4) are f32, one value per sample")
                && e.contains("must be u32")
                && e.contains("`input_u32`")
                && e.contains("`set_u32`")
                && e.contains("(4, 10)"),
            "{e}"
        );
    });
}

/// `describe` starts with the adapter's name, unlabelled, so a caller's `adapter: ` reads once.
#[test]
fn describe_leaves_the_label_to_the_caller() {
    each_device("describe", |dev| {
        let d = dev.describe();
        assert!(d.starts_with(&dev.name()), "{d}");
        assert!(!d.contains("adapter:"), "{d}");
        assert!(d.contains("\n  driver: ") && d.contains("limits: "), "{d}");
    });
}
