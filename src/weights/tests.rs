use super::*;

#[test]
fn fans_follow_pytorch() {
    assert_eq!(fans(&[16, 8, 3, 3]).unwrap(), (72, 144)); // conv OIHW
    assert_eq!(fans(&[10, 784]).unwrap(), (784, 10)); // dense (out, in)
    assert_eq!(fans(&[4, 2, 5]).unwrap(), (10, 20)); // conv1d OIL
    assert!(fans(&[7]).is_err());
}

#[test]
fn gains() {
    assert_eq!(Nonlinearity::Relu.gain(), 2f64.sqrt());
    assert_eq!(Nonlinearity::LeakyRelu(0.0).gain(), 2f64.sqrt());
    assert!((Nonlinearity::LeakyRelu(0.2).gain() - (2.0 / 1.04f64).sqrt()).abs() < 1e-15);
    assert_eq!(Nonlinearity::Tanh.gain(), 5.0 / 3.0);
}

fn mean_std(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let s = (v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n).sqrt();
    (m, s)
}

#[test]
fn initialisers_have_the_right_statistics_and_bounds() {
    let shape = [64, 32, 3, 3]; // fan_in 288, fan_out 576
    let relu = Nonlinearity::Relu;
    let kn = Init::KaimingNormal {
        mode: FanMode::FanIn,
        nonlinearity: relu,
    }
    .values("w", &shape, 1)
    .unwrap();
    let (m, s) = mean_std(&kn);
    let want = 2f64.sqrt() / 288f64.sqrt();
    assert!(
        m.abs() < 0.01 * want * 10.0 && (s / want - 1.0).abs() < 0.02,
        "{m} {s} {want}"
    );

    let ku = Init::KaimingUniform {
        mode: FanMode::FanOut,
        nonlinearity: relu,
    }
    .values("w", &shape, 1)
    .unwrap();
    let b = 2f64.sqrt() * (3.0 / 576.0f64).sqrt();
    assert!(ku.iter().all(|&x| (x as f64).abs() <= b));
    let (_, s) = mean_std(&ku);
    assert!((s / (b / 3f64.sqrt()) - 1.0).abs() < 0.02);

    let xu = Init::XavierUniform { gain: 1.0 }
        .values("w", &shape, 2)
        .unwrap();
    let b = (6.0 / 864.0f64).sqrt();
    assert!(xu.iter().all(|&x| (x as f64).abs() <= b));
    let xn = Init::XavierNormal { gain: 2.0 }
        .values("w", &shape, 2)
        .unwrap();
    let (_, s) = mean_std(&xn);
    assert!((s / (2.0 * (2.0 / 864.0f64).sqrt()) - 1.0).abs() < 0.02);

    let u = Init::Uniform {
        low: -0.5,
        high: 2.0,
    }
    .values("b", &[1000], 3)
    .unwrap();
    assert!(u.iter().all(|&x| (-0.5..2.0).contains(&x)));
    assert_eq!(Init::Zeros.values("b", &[3], 0).unwrap(), [0.0; 3]);
    assert_eq!(
        Init::Constant(0.25).values("b", &[2], 0).unwrap(),
        [0.25; 2]
    );
    // Fans need a weight, not a bias.
    let e = Init::XavierUniform { gain: 1.0 }
        .values("fc.bias", &[10], 0)
        .unwrap_err();
    assert!(e.to_string().contains("fc.bias"), "{e}");
}

#[test]
fn initialisers_are_deterministic_per_seed_and_name() {
    let init = Init::KaimingUniform {
        mode: FanMode::FanIn,
        nonlinearity: Nonlinearity::Relu,
    };
    let a = init.values("conv1.weight", &[4, 3, 3, 3], 42).unwrap();
    assert_eq!(a, init.values("conv1.weight", &[4, 3, 3, 3], 42).unwrap());
    assert_ne!(a, init.values("conv1.weight", &[4, 3, 3, 3], 43).unwrap());
    assert_ne!(a, init.values("conv2.weight", &[4, 3, 3, 3], 42).unwrap());
    // Odd counts use half a Box–Muller pair.
    assert_eq!(
        Init::Normal {
            mean: 1.0,
            std: 0.0
        }
        .values("x", &[7], 5)
        .unwrap(),
        [1.0; 7]
    );
}

#[test]
fn layouts_pack_align_and_reject_overlaps() {
    let l =
        ParamLayout::packed(&[("a.weight", &[3, 5]), ("a.bias", &[3]), ("b", &[1])], 64).unwrap();
    let offs: Vec<usize> = l.entries().iter().map(|e| e.offset).collect();
    assert_eq!(offs, [0, 64, 128]);
    assert_eq!(l.len(), 129);
    assert_eq!(l.ranges(|e| e.shape.len() == 1), vec![64..67, 128..129]);
    let dup = ParamLayout::packed(&[("a", &[1]), ("a", &[1])], 1).unwrap_err();
    assert!(dup.to_string().contains("\"a\""), "{dup}");
    let e = |name: &str, offset| ParamEntry {
        name: name.into(),
        shape: vec![4],
        offset,
    };
    assert!(ParamLayout::new(vec![e("x", 0), e("y", 3)], 8).is_err());
    assert!(ParamLayout::new(vec![e("x", 0), e("y", 5)], 8).is_err());
    assert!(ParamLayout::new(vec![e("x", 0), e("y", 4)], 8).is_ok());
}

#[test]
fn init_source_keeps_trained_values_across_purge() {
    let mut s = InitSource::new("w", &[2, 2], Init::Constant(1.0), 0);
    let mut out = [0.0; 4];
    assert!(s.init(&mut out).is_err());
    s.load().unwrap();
    s.init(&mut out).unwrap();
    assert_eq!(out, [1.0; 4]);
    s.purge();
    s.update(&[1.0, 2.0, 3.0, 4.0]).unwrap();
    s.load().unwrap();
    s.init(&mut out).unwrap();
    assert_eq!(out, [1.0, 2.0, 3.0, 4.0]);
}
