//! Issue 16 on the compile side: sizes the kernels cannot index, attributes their 32-bit
//! arithmetic would wrap, values and `Training`s not of the graph are `Err`s naming the node,
//! pass or unit; attributes that merely look hostile compute the right answer. The graph-building
//! side is `hostile_graph.rs`.

mod common;

use std::collections::HashMap;

use common::{assert_close, each_device};
use wgtrain::compile::Options;
use wgtrain::graph::{Graph, Out, Primitive, Value};
use wgtrain::launch::Prepared;
use wgtrain::ops::prelu::PRelu;
use wgtrain::ops::shape::{SliceRange, UpsampleMode, UpsampleSize};
use wgtrain::reference::Array;
use wgtrain::*;

fn err_names<T>(r: Result<T>, words: &[&str]) -> Error {
    let Err(e) = r else {
        panic!("expected an Err naming {words:?}")
    };
    let s = e.to_string();
    assert!(
        words.iter().all(|w| s.contains(w)),
        "{words:?} not all in: {s}"
    );
    e
}

#[test]
fn values_past_the_u32_element_limit_are_refused_before_allocating() {
    each_device("u32 elements", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[1, 4]).unwrap();
        let w = g.input("wide", &[1 << 17, 1 << 16]).unwrap();
        let y = g.unary("y", UnaryOp::Relu, x).unwrap();
        let big = g.unary("big", UnaryOp::Relu, w).unwrap();
        let e = err_names(
            g.compile(dev, &[y, big], &Options::default()),
            &["wide", "elements"],
        );
        assert!(
            matches!(e, Error::TooLarge { unit: Unit::Elements, limit, .. } if limit == u32::MAX as u64)
        );
        // The small part alone compiles: only live values count.
        g.compile(dev, &[y], &Options::default()).unwrap();
    });
}

/// Intermediates live at once whose arena passes the device's buffer limit, each within the
/// binding limit: an `Err` naming the arena and the limit before anything is allocated.
#[test]
fn an_arena_past_the_buffer_limit_is_refused_before_allocating() {
    each_device("arena limit", |dev| {
        let caps = dev.caps();
        // Values of at most a quarter of the binding limit (and of the buffer limit), f32.
        let each = (caps.max_storage_binding.min(caps.max_buffer_size) / 4 / 4) as usize;
        // Past two arenas' worth: the values live at once are spread over both arenas
        // (`compile::colour`), and whichever way, one arena then holds more than the limit.
        let count = (2 * (caps.max_buffer_size / (4 * each as u64)) + 2) as usize;
        let mut g = Graph::new();
        let x = g.input("x", &[each]).unwrap();
        // Every square is read by the sums after all of them are made: all live at once.
        let squares: Vec<Value> = (0..count)
            .map(|i| g.unary(&format!("sq{i}"), UnaryOp::Square, x).unwrap())
            .collect();
        let mut sum = squares[0];
        for (i, &s) in squares.iter().enumerate().skip(1) {
            sum = g.binary(&format!("sum{i}"), BinaryOp::Add, sum, s).unwrap();
        }
        let e = err_names(
            g.compile(dev, &[sum], &Options::default()),
            &["activation arena"],
        );
        assert!(
            matches!(e, Error::TooLarge { unit: Unit::BufferBytes, limit, .. } if limit == caps.max_buffer_size),
            "{e}"
        );
    });
}

/// Geometries whose output is small but whose stride or padding the kernels would wrap (u32
/// words, i32 coordinates).
#[test]
fn conv_and_pool_coordinates_past_the_kernel_range_are_refused_at_compile() {
    each_device("conv range", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[1, 1, 3, 3]).unwrap();
        let far = Padding::Explicit {
            top: 1 << 40,
            bottom: 0,
            left: 0,
            right: 0,
        };
        let mut c = Conv2d::new(1, 1, (1, 1));
        (c.stride, c.padding) = ((1 << 40, 1), far);
        let y = g.conv2d("conv", x, c).unwrap();
        assert_eq!(g.shape(y).unwrap(), &[1, 1, 2, 3]);
        let e = err_names(
            g.compile(dev, &[y], &Options::default()),
            &["conv", "coordinate range"],
        );
        assert!(matches!(e, Error::Shape { .. }), "{e:?}");
        let p = Pool2d {
            padding: far,
            ..Pool2d::avg((1, 1), (1 << 40, 1), true)
        };
        let z = g.pool("pool", x, p).unwrap();
        err_names(
            g.compile(dev, &[z], &Options::default()),
            &["pool", "coordinate range"],
        );
    });
}

#[test]
fn upsample_axes_past_the_kernel_arithmetic_are_refused_at_compile() {
    each_device("upsample range", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[1, 1, 1, 40_000]).unwrap();
        let op = Upsample {
            mode: UpsampleMode::Nearest,
            size: UpsampleSize::Scale(1, 1),
        };
        let y = g.upsample("up", x, op).unwrap();
        err_names(
            g.compile(dev, &[y], &Options::default()),
            &["up", "upsample", "32-bit"],
        );
    });
}

/// A slice step past u32 (the kernels' words) or past usize once multiplied by the axis's
/// stride takes one element of the axis, forward and backward.
#[test]
fn slice_steps_past_u32_compute_the_right_answer() {
    each_device("slice step", |dev| {
        for step in [1 << 32, (1 << 32) + 1, usize::MAX] {
            let mut g = Graph::new();
            let x = g.param("x", &[6, 2]).unwrap();
            let r = |start, end, step| SliceRange { start, end, step };
            let s = Slice {
                ranges: vec![r(2, 6, step), r(0, 2, 1)],
            };
            let y = g.slice("s", x, s).unwrap();
            let loss = g.sum("loss", y, 1).unwrap();
            let t = g.training(loss).unwrap();
            let opts = Options {
                training: Some(&t),
                gradients_only: true,
                ..Options::default()
            };
            let c = g.compile(dev, &[y], &opts).unwrap();
            let xs: Vec<f32> = (1..=12).map(|v| v as f32).collect();
            c.set("x", &xs).unwrap();
            c.step().unwrap();
            assert_eq!(c.read(y).unwrap(), vec![5.0, 6.0], "step {step}");
            let grad = &c.param_arena().unwrap().grads.to_f32().unwrap()[..12];
            let mut want = [0.0; 12];
            want[4..6].fill(1.0);
            assert_eq!(grad, &want, "step {step}");
        }
    });
}

#[test]
fn values_and_trainings_not_of_the_graph_are_errors() {
    each_device("bad values", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[2, 3]).unwrap();
        let w = g.param("w", &[3, 2]).unwrap();
        let y = g.matmul("y", x, w).unwrap();
        let loss = g.sum("loss", y, 1).unwrap();
        let t = g.training(loss).unwrap();
        for bad in [
            Value { node: 99, port: 0 },
            Value {
                node: y.node,
                port: 3,
            },
        ] {
            err_names(
                g.compile(dev, &[bad], &Options::default()),
                &["compile", "not a value"],
            );
        }
        let c = g.compile(dev, &[y], &Options::default()).unwrap();
        assert!(c.read(Value { node: 99, port: 0 }).is_err());
        assert!(c.tensor(Value { node: 99, port: 0 }).is_err());
        let tampered: [fn(&mut Training, Value); 4] = [
            |t, _| t.loss = Value { node: 99, port: 0 },
            |t, v| t.params.push(v),
            |t, v| t.grads[0] = v,
            |t, _| t.params.push(t.params[0]),
        ];
        for (k, edit) in tampered.iter().enumerate() {
            let mut bad = t.clone();
            edit(&mut bad, x);
            let opts = Options {
                training: Some(&bad),
                ..Options::default()
            };
            assert!(g.compile(dev, &[loss], &opts).is_err(), "edit {k}");
        }
    });
}

/// Found by the fuzzer: a just-in-time training graph asked for a gradient as an output looked
/// the gradient up in the arena, where it is not.
#[test]
fn just_in_time_training_may_return_a_gradient() {
    each_device("jit grad output", |dev| {
        let mut g = Graph::new();
        let x = g.input("x", &[1, 6]).unwrap();
        let y = g.prelu("p", x, PRelu::new(1).unwrap()).unwrap();
        let loss = g.sum("loss", y, 1).unwrap();
        let t = g.training(loss).unwrap();
        let opts = Options {
            training: Some(&t),
            residency: Residency::JustInTime,
            ..Options::default()
        };
        let mut c = g.compile(dev, &[t.grads[0], loss], &opts).unwrap();
        let layout = c.param_layout().unwrap().clone();
        let groups = vec![ParamGroup::new(layout.ranges(|_| true))];
        let config = OptimizerConfig::new(Algorithm::sgd(0.0), 0.0);
        let mut opt = c.optimizer(config, groups).unwrap();
        c.attach_optimizer(&opt).unwrap();
        c.set("p.weight", &[0.25]).unwrap();
        c.set("x", &[1.0, -2.0, 3.0, -4.0, 0.5, -1.0]).unwrap();
        opt.prepare_step().unwrap();
        c.step().unwrap();
        // d/da sum(prelu(x)) = sum of the negative inputs.
        assert_close(
            "dloss/da",
            &c.read(t.grads[0]).unwrap(),
            &[-7.0],
            1e-6,
            1e-6,
        );
    });
}

/// A custom op claiming to be a view of nothing, or a neuron with no input: compiled without
/// indexing its missing input.
#[derive(Debug)]
struct ViewOfNothing;

impl Primitive for ViewOfNothing {
    fn infer(&self, _: &[&[usize]]) -> Result<Vec<Out>> {
        Ok(vec![(vec![2], DType::F32)])
    }
    fn lower(&self, _: &[&Tensor], _: &[&Tensor], _: &[UnaryOp], _: u64) -> Result<Prepared> {
        Ok(Prepared::default())
    }
    fn reference(&self, _: &[&Array], _: &[Out], _: u64) -> Result<Vec<Array>> {
        Ok(vec![Array::zeros(&[2])])
    }
    fn vjp(&self, _: &mut Graph, _: usize, _: Value) -> Result<Vec<Option<Value>>> {
        Ok(vec![])
    }
    fn is_view(&self) -> bool {
        true
    }
    fn as_neuron(&self) -> Option<UnaryOp> {
        Some(UnaryOp::Relu)
    }
}

#[test]
fn custom_views_and_neurons_without_inputs_compile() {
    each_device("view of nothing", |dev| {
        let mut g = Graph::new();
        let v = g.add("v", ViewOfNothing, &[]).unwrap();
        let y = g.unary("y", UnaryOp::Tanh, v).unwrap();
        let c = g.compile(dev, &[y], &Options::default()).unwrap();
        c.step().unwrap();
        assert_eq!(c.read(y).unwrap(), vec![0.0, 0.0]);
        let out = g.eval_reference(&HashMap::new(), &[y]).unwrap();
        assert_eq!(out[0].data, vec![0.0, 0.0]);
    });
}
