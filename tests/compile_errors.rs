//! Compile errors keep their kind and gain context: a lowering error stays what it was and names
//! the node and the pass; each limit error names its unit.

mod common;

use common::each_device;
use wgtrain::compile::Options;
use wgtrain::graph::{Graph, Value};
use wgtrain::ops::elementwise::UnaryOp;
use wgtrain::reference::Array;

/// An op whose lowering always fails with a shape error (what a kernel refusing its operands
/// looks like), taking any number of inputs.
#[derive(Debug)]
struct Unlowerable;

impl wgtrain::graph::Primitive for Unlowerable {
    fn infer(&self, ins: &[&[usize]]) -> wgtrain::Result<Vec<wgtrain::graph::Out>> {
        Ok(vec![(ins[0].to_vec(), wgtrain::DType::F32)])
    }

    fn lower(
        &self,
        _: &[&wgtrain::Tensor],
        _: &[&wgtrain::Tensor],
        _: &[UnaryOp],
        _: u64,
    ) -> wgtrain::Result<wgtrain::launch::Prepared> {
        wgtrain::error::shape_err("unlowerable", "no kernel for these operands")
    }

    fn reference(
        &self,
        _: &[&Array],
        _: &[wgtrain::graph::Out],
        _: u64,
    ) -> wgtrain::Result<Vec<Array>> {
        Err(wgtrain::Error::Invalid("no reference".into()))
    }

    fn vjp(&self, _: &mut Graph, _: usize, _: Value) -> wgtrain::Result<Vec<Option<Value>>> {
        Err(wgtrain::Error::Invalid("no gradient".into()))
    }
}

#[test]
fn compile_errors_keep_their_kind_and_name_the_node_and_unit() {
    each_device("compile errors", |dev| {
        // A lowering error stays a shape error, now naming the node and the pass.
        let mut g = Graph::new();
        let x = g.input("x", &[2, 3]).unwrap();
        let y = g.add("broken", Unlowerable, &[x]).unwrap();
        let e = g.compile(dev, &[y], &Options::default()).err().unwrap();
        let s = e.to_string();
        assert!(
            matches!(&e, wgtrain::Error::Shape { op, .. } if op.contains("\"broken\"")),
            "{e:?}"
        );
        assert!(
            s.contains("broken") && s.contains("lower") && s.contains("no kernel"),
            "{s}"
        );
        // More storage bindings than a shader stage allows: counted in bindings, not bytes.
        // Adapters whose limit is in the hundreds of thousands (NVIDIA: 524,288) would need that
        // many inputs; the unit's wording is checked below on every adapter regardless.
        let limit = dev.caps().max_storage_buffers_per_stage as usize;
        if limit > 1024 {
            eprintln!(
                "binding-count check skipped: {limit} bindings per stage is too many to exceed"
            );
            return;
        }
        let mut g = Graph::new();
        let ins: Vec<Value> = (0..limit)
            .map(|k| g.input(&format!("x{k}"), &[2]).unwrap())
            .collect();
        let y = g.add("wide", Unlowerable, &ins).unwrap();
        let e = g.compile(dev, &[y], &Options::default()).err().unwrap();
        let s = e.to_string();
        assert!(
            matches!(
                e,
                wgtrain::Error::TooLarge {
                    unit: wgtrain::Unit::Bindings,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            s.contains("wide")
                && s.contains(&format!("{} storage bindings per shader stage", limit + 1))
                && !s.contains("bytes"),
            "{s}"
        );
    });
    // Each limit names its unit.
    let e = wgtrain::Error::TooLarge {
        what: "kernels".into(),
        amount: 32768,
        limit: 16384,
        unit: wgtrain::Unit::WorkgroupBytes,
    };
    assert!(
        e.to_string().ends_with("16384 bytes of workgroup memory"),
        "{e}"
    );
}

/// Shapes whose element or byte count overflows are refused (a wrapped product used to give a
/// 4-byte buffer for 2^62 elements in release builds).
#[test]
fn overflowing_tensor_shapes_are_errors() {
    each_device("overflowing_tensor_shapes_are_errors", |dev| {
        use wgtrain::{DType, Tensor};
        for shape in [
            vec![1usize << 31, 1 << 31, 4],
            vec![usize::MAX, 2],
            vec![1 << 40, 1 << 40],
        ] {
            let e = Tensor::zeros(dev, &shape, DType::F32).err();
            let e = e.unwrap_or_else(|| panic!("{shape:?} was allocated"));
            assert!(e.to_string().contains(&format!("{shape:?}")), "{e}");
        }
        let t = Tensor::zeros(dev, &[4], DType::F32).unwrap();
        assert!(t.reshape(&[usize::MAX, 2]).is_err());
        assert!(Tensor::from_f32(dev, &[usize::MAX, 2], &[0.0; 4]).is_err());
    });
}
